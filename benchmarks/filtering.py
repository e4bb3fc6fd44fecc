"""Causal filtering: direct convolution vs FFT, to place kernels.FFT_MIN_LAGS.

Filters 50 trains of 20,000 bins with 6 basis functions for several window lengths L and prints
both timings and their ratio. Run: python benchmarks/filtering.py
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from _header import print_header
from _timing import best_time

from probsnn import kernels


def main():
    print_header("Causal filtering: direct convolution vs FFT (both probsnn)")
    spikes = (jax.random.uniform(jax.random.key(0), (20_000, 50)) < 0.05).astype(jnp.float32)
    print(
        f"setting: T={spikes.shape[0]}, N={spikes.shape[1]}, K=6; FFT_MIN_LAGS="
        f"{kernels.FFT_MIN_LAGS}"
    )
    print(f"{'L':>5s} {'direct s':>10s} {'fft s':>10s} {'direct/fft':>11s}")
    for n_lags in (8, 16, 32, 48, 64, 128, 256, 512):
        basis = jax.random.uniform(jax.random.key(n_lags), (6, n_lags))
        direct = jax.jit(lambda s, b=basis: kernels.filter_spikes(s, b, "direct"))
        fft = jax.jit(lambda s, b=basis: kernels.filter_spikes(s, b, "fft"))
        _, t_direct = best_time(lambda direct=direct: direct(spikes), 5, warmup=True)
        _, t_fft = best_time(lambda fft=fft: fft(spikes), 5, warmup=True)
        print(f"{n_lags:5d} {t_direct:10.4f} {t_fft:10.4f} {t_direct / t_fft:11.2f}")


if __name__ == "__main__":
    main()
