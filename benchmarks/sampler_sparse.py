"""probsnn alone on the sparse network of ``sampler_sparse_brian2.py``, on JAX's default device.

For a machine without Brian2 (an accelerator): the same network — ``--neurons`` N = 100,000
Bernoulli GLM neurons, each projecting to ``--fan-out`` F = 1,000 others
(``topology.fixed_fan_out``), three exponential traces of 5, 20 and 50 ms at 1 ms bins, weights
w ~ Normal(0, g² / (K d_i)), a refractory self-weight, ``--rate`` 0.005 per bin (5 Hz) — sampled
with ``ps.sample`` for ``--steps`` bins and each batch size in ``--trials``. The bias is set by
``--calibration`` probsnn runs on the device (each moves it by logit(rate) − logit(measured)),
where the Brian2 script calibrates with a float64 NumPy simulation: the network is the same up to
that bias, which the achieved rate printed beside each time shows.

Printed per batch size: the compile time (the first call's time minus the best later one), the
best of ``--repeats`` calls, simulated seconds per wall second (per trial, and summed over the
batch), and the achieved rate; then the device's peak memory (``Device.memory_stats``, where the
backend reports it) and the process's peak resident set.

Run: python benchmarks/sampler_sparse.py [--neurons 100000] [--fan-out 1000] [--steps 1000]
     [--rate 0.005] [--trials 1 16] [--repeats 3] [--calibration 2]
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from _header import print_header
from _networks import DT_S, MASSES, REFRACTORY, TAUS_S, add_sparse_arguments, sparse_weights
from _timing import best_time, device_peak_bytes

import probsnn as ps
from probsnn import kernels, topology

SKIP = 200  # bins before the rate is measured: 4 time constants of the slowest trace


def device_peak_gib() -> str:
    """The default device's peak memory in GiB, or a note when its backend keeps no count."""
    peak = device_peak_bytes()
    return "not reported by this backend" if peak is None else f"{peak / 2**30:.2f} GiB"


def build(n: int, args):
    """The SparseNetwork and its float32 Params, with the bias calibrated on the device."""
    began = time.perf_counter()
    synapses = topology.fixed_fan_out(n, args.fan_out, seed=args.seed)
    w, v = sparse_weights(synapses, args.weight_scale, args.seed + 1)
    spec = ps.SparseNetwork(n, synapses, kernels.recursive_exponential(TAUS_S, DT_S), dt=DT_S)
    logit = np.log(args.rate / (1 - args.rate))
    bias = logit - REFRACTORY * MASSES[0] * args.rate  # mean field: the coupling has mean 0
    params = ps.Params(
        w=jnp.asarray(w),
        v=jnp.asarray(v),
        c=jnp.zeros((0, n, 0), jnp.float32),
        bias=jnp.full((n,), bias, jnp.float32),
    )
    del w
    print(f"build (synapses, weights, network): {time.perf_counter() - began:.1f} s")
    for round_ in range(args.calibration):
        spikes = ps.sample(spec, params, jax.random.key(100 + round_), args.steps)
        measured = float(jnp.mean(spikes[SKIP:], dtype=jnp.float32))
        bias += logit - np.log(measured / (1 - measured))
        params = params._replace(bias=jnp.full((n,), bias, jnp.float32))
        print(f"calibration run {round_ + 1}: rate {measured:.5f} -> bias {bias:.4f}")
    return spec, params


def time_batches(spec, params, args) -> None:
    """Compile time, best time and throughput of ``ps.sample`` for each batch size."""
    print(
        f"{'trials':>6} {'compile s':>9} {'run s':>8} {'sim s/wall s':>12} "
        f"{'x trials':>9} {'rate':>8}"
    )
    jax.clear_caches()  # the calibration compiled the one-trial sampler: time its compile too
    for trials in args.trials:
        n_trials = None if trials == 1 else trials

        def sample(key, n_trials=n_trials):
            return ps.sample(spec, params, key, args.steps, n_trials=n_trials)

        began = time.perf_counter()
        jax.block_until_ready(sample(jax.random.key(1)))
        first = time.perf_counter() - began
        spikes, seconds = best_time(lambda: sample(jax.random.key(2)), args.repeats)
        rate = float(jnp.mean(spikes[..., SKIP:, :], dtype=jnp.float32))
        simulated = args.steps * DT_S / seconds
        print(
            f"{trials:>6} {first - seconds:>9.2f} {seconds:>8.3f} {simulated:>12.2f} "
            f"{simulated * trials:>9.2f} {rate:>8.5f}",
            flush=True,
        )
        del spikes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sparse_arguments(parser)
    parser.add_argument("--trials", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print_header(
        "Sparse Bernoulli GLM network sampling: probsnn.sample alone on the default device",
        {"none": "probsnn alone; Brian2 beside it is sampler_sparse_brian2.py (CPU)"},
    )
    for n in args.neurons:
        print(
            f"\n== N={n}, fan-out {args.fan_out} ({n * args.fan_out:.3g} synapses), "
            f"{args.steps} bins of {DT_S * 1e3:g} ms, target rate {args.rate} per bin =="
        )
        spec, params = build(n, args)
        time_batches(spec, params, args)
        del spec, params
        jax.clear_caches()  # the compiled samplers keep their SparseNetwork (a static argument)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ndevice peak memory: {device_peak_gib()}; process peak RSS: {peak_rss:.2f} GiB")


if __name__ == "__main__":
    main()
