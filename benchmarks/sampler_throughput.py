"""Sampling throughput of probsnn.sample and its FLOP rate vs the machine's float32 matmul rate.

Setting (issue 2): N = 1,000 neurons, 16 trials, 10,000 bins, 4 raised-cosine bases (L = 63 lags)
shared by synapses and feedback, dense coupling. Per trial and bin the sampler does the ring-
buffer traces (2 N L K flops) and the coupling product (2 N K N flops). Two reference rates are
measured in the same process: a square float32 matmul (the machine's peak), and the product the
sampler must do every bin, (trials, K N) x (K N, N), repeated in a lax.scan — memory-bound,
since the 16 MB weight matrix is streamed once per bin for only 16 rows.

Run: python benchmarks/sampler_throughput.py [--neurons 1000 --trials 16 --steps 10000]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from _header import print_header
from _timing import best_time

import probsnn as ps
from probsnn import kernels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    print_header(
        "Sampling throughput of probsnn.sample vs the float32 matmul rate",
        {
            "reference": "a jitted 2048 x 2048 float32 matmul (the machine's peak) and the "
            "sampler's per-bin product in a lax.scan"
        },
    )

    size = 2048
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    matmul_rate = 2 * size**3 / best_time(lambda: matmul(a), 5, warmup=True)[1]

    basis = kernels.raised_cosine(4, first_peak=1, last_peak=15)
    n_basis, n_lags = basis.shape
    n = args.neurons
    weights = jax.random.normal(jax.random.key(3), (n_basis * n, n), jnp.float32) * 0.01

    @jax.jit
    def repeated_product(x):
        def body(carry, _):
            u = carry @ weights
            return carry + 1e-30 * u[:, :1], None  # depends on u, so nothing is hoisted

        return jax.lax.scan(body, x, None, length=args.steps)[0]

    x0 = jnp.ones((args.trials, n_basis * n), jnp.float32)
    skinny_rate = (
        2
        * args.trials
        * n_basis
        * n
        * n
        * args.steps
        / best_time(lambda: repeated_product(x0), 2, warmup=True)[1]
    )
    spec = ps.Network(args.neurons, basis, dt=1e-3)
    params = spec.init_params(jax.random.key(1), rate=10.0, weight_scale=0.5)
    _, seconds = best_time(
        lambda: ps.sample(spec, params, jax.random.key(2), args.steps, n_trials=args.trials),
        2,
        warmup=True,
    )
    flops_per_bin = 2 * n * n_lags * n_basis + 2 * n * n_basis * n
    total_flops = flops_per_bin * args.trials * args.steps
    rate = total_flops / seconds
    print(f"setting: N={n}, trials={args.trials}, steps={args.steps}, K={n_basis}, L={n_lags}")
    print(f"float32 matmul ({size}x{size}) rate: {matmul_rate / 1e9:.1f} GFLOP/s")
    print(
        f"float32 ({args.trials}, {n_basis * n}) x ({n_basis * n}, {n}) per bin, scanned: "
        f"{skinny_rate / 1e9:.1f} GFLOP/s ({100 * skinny_rate / matmul_rate:.0f} % of square)"
    )
    print(
        f"probsnn.sample: {seconds:.2f} s, "
        f"{n * args.trials * args.steps / seconds / 1e6:.1f} M neuron-steps/s, "
        f"{rate / 1e9:.1f} GFLOP/s = {100 * rate / matmul_rate:.0f} % of the square matmul rate, "
        f"{100 * rate / skinny_rate:.0f} % of the per-bin product's rate"
    )


if __name__ == "__main__":
    main()
