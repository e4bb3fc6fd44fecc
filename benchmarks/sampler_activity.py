"""Sampling cost against activity: ring buffer, dense recursion and event-driven recursion.

Setting (issue 15): N = 1,000 neurons, dense random coupling, three exponential traces of 5, 20
and 50 ms at 1 ms bins (the ring buffer keeps ``--lags`` = 350 lags of the same exponentials),
a refractory feedback weight on the 5 ms trace, the firing probability per bin set by the bias
from ``--rates`` (the achieved rate is printed). For each rate and batch size it times
``probsnn.sample`` per bin with ``propagation="ring"``, ``"dense"``, ``"event"`` with the
capacity at N (never falls back: the pure event cost) and ``"auto"`` (on the CPU the event path
with the default capacity, ``probsnn.propagation.default_capacity``; on an accelerator the dense
product). The ring and dense costs should not depend on the rate, the event cost should grow
with it; the default capacity should follow the cheaper of the two.

Run: python benchmarks/sampler_activity.py [--neurons 1000 --steps 2000 --trials 1 16]
     [--methods ring dense event auto]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _header import print_header
from _timing import best_time

import probsnn as ps
from probsnn import kernels

TAUS = (5e-3, 20e-3, 50e-3)
DT = 1e-3


def network_params(n: int, rate: float, seed: int = 0) -> ps.Params:
    """Mixed-sign Gaussian coupling (no self-coupling), refractory feedback, bias logit(rate)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.5 / np.sqrt(3 * (n - 1)), (n, n, 3)).astype(np.float32)
    w[np.arange(n), np.arange(n)] = 0.0
    v = np.zeros((n, 3), np.float32)
    v[:, 0] = -2.0
    bias = np.full(n, np.log(rate / (1 - rate)), np.float32)
    return ps.Params(w=jnp.asarray(w), v=jnp.asarray(v), c=jnp.zeros((0, n, 0)), bias=bias)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--trials", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--lags", type=int, default=350)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.02, 0.04, 0.1, 0.2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["ring", "dense", "event", "auto"],
        choices=["ring", "dense", "event", "auto"],
        help="columns to time (on an accelerator the event loop is slow: leave it out at "
        "large batches)",
    )
    args = parser.parse_args()
    n = args.neurons
    print_header(
        "Sampling cost per bin against the firing rate: ring, dense and event-driven",
        {
            "network": f"N = {n}, 3 exponential traces (5, 20, 50 ms), dt = 1 ms, "
            f"{args.steps} bins; ring buffer of {args.lags} lags",
            "event": "capacity N (no fallback) and the default capacity N / (4 sqrt(trials))",
        },
    )
    recursive = ps.Network(n, kernels.recursive_exponential(TAUS, DT), dt=DT)
    ring = ps.Network(n, kernels.exponential(TAUS, args.lags, DT), dt=DT)
    methods = {
        "ring": (ring, "ring", None),
        "dense": (recursive, "dense", None),
        "event (no fallback)": (recursive, "event", n),
        "auto": (recursive, "auto", None),
    }
    methods = {name: methods[name] for name in methods if name.split()[0] in args.methods}
    print(f"\n{'trials':>6}  {'target':>6}  {'rate':>6}  " + "  ".join(f"{m:>14}" for m in methods))
    print("  (microseconds per bin; rate = achieved firing probability per bin and neuron)")
    for trials in args.trials:
        for target in args.rates:
            params = network_params(n, target)
            cells, achieved = [], None
            for spec, propagation, cap in methods.values():

                def run(spec=spec, propagation=propagation, cap=cap, params=params, trials=trials):
                    return ps.sample(
                        spec,
                        params,
                        jax.random.key(0),
                        args.steps,
                        n_trials=trials,
                        propagation=propagation,
                        capacity=cap,
                    )

                spikes, seconds = best_time(run, args.repeats, warmup=True)
                achieved = float(np.asarray(spikes).mean())
                cells.append(f"{seconds / args.steps * 1e6:14.0f}")
            print(f"{trials:>6}  {target:>6.2f}  {achieved:>6.3f}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
