"""The bin-by-bin learning paths on recursive trace states against the ring buffer.

Setting (issue 15, item 5): ``--neurons`` N = 200, three exponential traces of 5, 20 and 50 ms
at 1 ms bins, ``--trials`` 16 trials streamed in parallel, ``--steps`` 2,000 bins, about 4 %
firing. The ring buffer keeps ``--lags`` = 350 lags of the same exponentials
(``kernels.exponential``; what a user without :class:`~probsnn.kernels.RecursiveBasis` builds)
and recomputes each bin's traces from them; the recursion keeps 3 states per neuron
(``kernels.recursive_exponential``). Timed after compilation, best of 3, per bin:

* ``ml_online_trainer`` — one step over the batch: traces, the local rule, an SGD update per bin;
* ``fit_variational_online`` — the last N/2 neurons hidden: the hidden draw from q, the
  streaming variational rule, an update per bin;
* ``log_marginal_smc`` — the particle filter on the same visible data, ``--particles`` 16 ×
  ``--repeats`` 4 per sequence (its particles' past is the sampler's: postsynaptic trace states and
  event-driven delivery for recursive bases).

Run: python benchmarks/online_traces.py [--neurons 200 --trials 16 --steps 2000 --lags 350]
     [--particles 16 --repeats 4] [--paths ml variational smc]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import optax
from _header import print_header
from _timing import best_time

import probsnn as ps
from probsnn import kernels
from probsnn.inference.latent import multisample, variational
from probsnn.inference.likelihood.online import ml_online_trainer

TAUS = (5e-3, 20e-3, 50e-3)
DT = 1e-3


def networks(n: int, n_lags: int, visible=None):
    """The same network on recursive exponentials and on a ring of ``n_lags`` lags."""
    recursive = kernels.recursive_exponential(TAUS, DT)
    ring = kernels.exponential(TAUS, n_lags, DT)
    options = {} if visible is None else {"visible": visible}
    return {
        "ring": ps.Network(n, ring, dt=DT, **options),
        "recursive": ps.Network(n, recursive, dt=DT, **options),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=200)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lags", type=int, default=350)
    parser.add_argument("--particles", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--paths", nargs="+", default=["ml", "variational", "smc"])
    args = parser.parse_args()
    n, n_trials, n_steps = args.neurons, args.trials, args.steps
    print_header(
        "Online learning paths: recursive trace states vs the ring buffer",
        {"ring": f"kernels.exponential({TAUS}, {args.lags} lags), the same paths, float32"},
        packages=("optax",),
    )
    specs = networks(n, args.lags)
    params = specs["recursive"].init_params(jax.random.key(0), rate=40.0, weight_scale=0.5)
    spikes = ps.sample(specs["recursive"], params, jax.random.key(1), n_steps, n_trials=n_trials)
    print(f"N={n}, trials={n_trials}, T={n_steps}, firing {float(spikes.mean()):.3f} per bin\n")
    hidden_specs = networks(n, args.lags, visible=np.arange(n) < n // 2)
    visible = spikes[..., : n // 2]

    def ml(spec):
        trainer = ml_online_trainer(spec, optax.sgd(1e-3), kappa=0.5)
        state = trainer.init(params)
        return lambda: trainer.step(jax.random.key(2), state, spikes)[1].loss

    def streaming(spec):
        return lambda: (
            variational.fit_variational_online(
                spec, params, visible, key=jax.random.key(3), kappa=0.5, learning_rate=1e-3
            ).learning_signal
        )

    def particle_filter(spec):
        return lambda: (
            multisample.log_marginal_smc(
                spec,
                params,
                visible,
                key=jax.random.key(4),
                n_particles=args.particles,
                n_repeats=args.repeats,
            ).value
        )

    rows = {
        "ml": ("ml_online_trainer", ml, specs),
        "variational": ("fit_variational_online", streaming, hidden_specs),
        "smc": ("log_marginal_smc", particle_filter, hidden_specs),
    }
    print(f"{'path':<24}{'ring µs/bin':>14}{'recursive µs/bin':>18}{'ring / recursive':>18}")
    for path in args.paths:
        name, build, pair = rows[path]
        times = {}
        for kind, spec in pair.items():
            _, seconds = best_time(build(spec), warmup=True)
            times[kind] = seconds / n_steps * 1e6
        ratio = times["ring"] / times["recursive"]
        print(
            f"{name:<24}{times['ring']:>14.1f}{times['recursive']:>18.1f}{ratio:>17.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
