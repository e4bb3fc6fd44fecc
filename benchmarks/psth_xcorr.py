"""PSTH and cross-correlograms: probsnn vs a straightforward numpy implementation.

Setting (issue 3): 100 trials × 10,000 bins × 100 neurons of 1 ms (Bernoulli spikes at ~20/s).
Both compute the same two things:

* the trial-averaged PSTH smoothed by a 10 ms Gaussian (edge-normalised) with its Wald band;
* all 100 × 100 cross-correlograms C_ij(τ), τ = −L..L bins, summed over trials.

numpy follows the definitions: trial mean then ``np.convolve`` per neuron; one
``np.tensordot`` over (trials, time) per lag (BLAS). probsnn: FFT convolution for the PSTH;
for the correlograms one real FFT per trial and neuron, the cross-spectra summed over trials as
a batched matrix product, one inverse FFT. Results are checked to agree (integer counts equal).
JAX timings are the best of the repeats after one compile-and-run call.

Run: python benchmarks/psth_xcorr.py [--trials 100] [--bins 10000] [--neurons 100] [--max-lag 25]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from _header import print_header
from _timing import best_time

from probsnn import stats


def numpy_psth(spikes, dt, window, z=1.959964):
    n_trials, n_steps, n_neurons = spikes.shape
    mean = spikes.mean(axis=0)
    var = mean * (1 - mean)
    norm = np.convolve(np.ones(n_steps), window, "same")
    rate = np.empty_like(mean)
    half = np.empty_like(mean)
    for i in range(n_neurons):
        rate[:, i] = np.convolve(mean[:, i], window, "same") / norm
        half[:, i] = z * np.sqrt(np.convolve(var[:, i], window**2, "same") / norm**2 / n_trials)
    return rate / dt, np.maximum(rate - half, 0) / dt, (rate + half) / dt


def numpy_correlograms(spikes, max_lag):
    x = spikes.astype(np.float32)
    n_steps, n_neurons = x.shape[1:]
    out = np.empty((2 * max_lag + 1, n_neurons, n_neurons), np.int64)
    for lag in range(max_lag + 1):
        c = np.tensordot(x[:, : n_steps - lag], x[:, lag:], axes=([0, 1], [0, 1]))
        out[max_lag + lag] = np.rint(c)
        out[max_lag - lag] = np.rint(c.T)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--bins", type=int, default=10_000)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--max-lag", type=int, default=25)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print_header(
        "PSTH and cross-correlograms: probsnn vs numpy",
        {"numpy": "trial mean + np.convolve per neuron; one np.tensordot per lag (its BLAS)"},
    )
    dt, bandwidth = 1e-3, 10e-3

    rng = np.random.default_rng(0)
    spikes = rng.random((args.trials, args.bins, args.neurons)) < args.rate * dt
    print(
        f"setting: {args.trials} trials x {args.bins} bins x {args.neurons} neurons, "
        f"{int(spikes.sum())} spikes; PSTH with a {bandwidth * 1e3:.0f} ms Gaussian, "
        f"correlograms of all pairs at lags -{args.max_lag}..{args.max_lag}; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, numpy {np.__version__}"
    )

    window = stats.gaussian_window(bandwidth, dt)
    (np_rate, _, np_upper), t_np_psth = best_time(lambda: numpy_psth(spikes, dt, window), 1)
    np_counts, t_np_xcorr = best_time(lambda: numpy_correlograms(spikes, args.max_lag), 1)

    device_spikes = jax.device_put(spikes)

    def probsnn_both():
        psth = stats.psth(device_spikes, dt=dt, bandwidth=bandwidth)
        correlogram = stats.cross_correlogram(device_spikes, args.max_lag)
        return jax.block_until_ready((psth, correlogram))

    probsnn_both()
    (psth, correlogram), t_jax = best_time(probsnn_both, args.repeats)
    np.testing.assert_array_equal(np.asarray(correlogram.counts), np_counts)
    np.testing.assert_allclose(np.asarray(psth.rate), np_rate, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(np.asarray(psth.upper), np_upper, rtol=1e-3, atol=1e-2)

    t_np = t_np_psth + t_np_xcorr
    print(f"numpy:   PSTH {t_np_psth:7.3f} s + correlograms {t_np_xcorr:7.3f} s = {t_np:7.3f} s")
    print(f"probsnn: PSTH + correlograms {t_jax:7.3f} s (results agree)")
    print(f"ratio numpy/probsnn = {t_np / t_jax:.1f}x")


if __name__ == "__main__":
    main()
