"""Binned Poisson spike generation: probsnn vs numpy ``rng.random(size) < p`` in one process.

Setting (issue 3): 1e8 bins, 1,000 neurons × 100,000 bins of 1 ms at 10 spikes/s (p ≈ 0.01).
numpy draws one float64 uniform per bin (its default) and compares; probsnn's default sampler
("auto") sees a rate that is constant in time and draws the geometric gaps between spikes, so its
work grows with the ~1e6 spikes rather than the 1e8 bins; its "dense" sampler (one 32-bit draw
per bin, the path for time-varying rates) is timed too. JAX timings are the best of the repeats
after one compile-and-run call. Output is a bool array of the same shape in every case.

Run: python benchmarks/poisson_generation.py [--neurons 1000] [--bins 100000] [--rate 10]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from _header import print_header
from _timing import best_time

from probsnn import encoding


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--bins", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--dt", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print_header(
        "Binned Poisson spike generation: probsnn vs numpy",
        {"numpy": "numpy.random.default_rng(0).random(size) < p (float64 uniforms), one thread"},
    )

    shape = (args.bins, args.neurons)
    p = -np.expm1(-args.rate * args.dt)
    print(
        f"setting: {args.neurons} neurons x {args.bins} bins = {np.prod(shape):.1e} bins, "
        f"rate {args.rate} /s, dt {args.dt} s, p = {p:.4g}; jax {jax.__version__} "
        f"on {jax.devices()[0].platform}, numpy {np.__version__}"
    )

    rng = np.random.default_rng(0)
    spikes_np, t_numpy = best_time(lambda: rng.random(shape) < p, args.repeats)
    print(f"numpy rng.random(size) < p:   {t_numpy:8.3f} s   rate {spikes_np.mean() / args.dt:.3f}")
    del spikes_np

    key = jax.random.key(0)
    for method in ("auto", "dense"):

        def generate(method=method):
            return encoding.poisson_spikes(
                key, args.rate, args.dt, shape, method=method
            ).block_until_ready()

        generate()
        spikes, t_jax = best_time(generate, args.repeats)
        print(
            f"probsnn poisson_spikes({method!r}): {t_jax:8.3f} s   rate "
            f"{float(spikes.mean()) / args.dt:.3f}   ratio numpy/probsnn = {t_numpy / t_jax:.2f}x"
        )
        del spikes


if __name__ == "__main__":
    main()
