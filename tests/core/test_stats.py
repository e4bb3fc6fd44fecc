"""Spike-train statistics against brute-force definitions and known processes."""

import jax
import numpy as np
import pytest
import scipy.stats

import probsnn as ps
from probsnn import encoding, kernels, stats

DT = 1e-3


@pytest.fixture(scope="module")
def small_spikes():
    rng = np.random.default_rng(0)
    return rng.random((3, 60, 4)) < 0.15


def test_psth_without_smoothing_is_the_trial_mean_over_dt(small_spikes):
    result = stats.psth(small_spikes, dt=DT)
    np.testing.assert_allclose(result.rate, small_spikes.mean(axis=0) / DT, rtol=1e-6)
    m = small_spikes.mean(axis=0)
    half = 1.959964 * np.sqrt(m * (1 - m) / 3) / DT
    np.testing.assert_allclose(result.upper, m / DT + half, rtol=1e-5)
    np.testing.assert_allclose(result.lower, np.maximum(m / DT - half, 0), rtol=1e-5, atol=1e-3)
    assert result.n_trials == 3
    np.testing.assert_allclose(result.time[:2], [0.5 * DT, 1.5 * DT])


def test_psth_smoothing_is_edge_normalised_gaussian(small_spikes):
    bandwidth = 3 * DT
    result = stats.psth(small_spikes, dt=DT, bandwidth=bandwidth)
    window = stats.gaussian_window(bandwidth, DT)
    m = small_spikes.mean(axis=0)
    smoothed = np.stack([np.convolve(m[:, i], window, "same") for i in range(4)], axis=1)
    norm = np.convolve(np.ones(60), window, "same")[:, None]
    np.testing.assert_allclose(result.rate, smoothed / norm / DT, rtol=1e-4, atol=1e-3)
    constant = stats.psth(np.ones((2, 50, 1), bool), dt=DT, bandwidth=bandwidth)
    np.testing.assert_allclose(constant.rate, 1 / DT, rtol=1e-5)


def test_psth_band_covers_the_true_rate():
    t = np.arange(1000) * DT
    rate = 40 + 30 * np.sin(2 * np.pi * 3 * t)[:, None] * np.ones(20)
    spikes = encoding.poisson_spikes(jax.random.key(0), rate, DT, (300, 1000, 20))
    bandwidth = 10 * DT
    result = stats.psth(spikes, dt=DT, bandwidth=bandwidth)
    # the estimator's target: the same edge-normalised smoothing of the true bin probability
    window = stats.gaussian_window(bandwidth, DT)
    p = 1 - np.exp(-rate[:, 0] * DT)
    target = np.convolve(p, window, "same") / np.convolve(np.ones(1000), window, "same") / DT
    inside = (np.asarray(result.lower) <= target[:, None]) & (target[:, None] <= result.upper)
    # 95 % pointwise band; 20 000 correlated points (~35-bin correlation), sd of coverage < 0.01
    assert 0.91 < inside.mean() < 0.99


def brute_intervals(train):
    return np.diff(np.flatnonzero(train))


def test_isi_histogram_and_intervals_match_brute_force(small_spikes):
    result = stats.isi_histogram(small_spikes, 10, dt=DT)
    for i in range(4):
        isi = np.concatenate([brute_intervals(small_spikes[r, :, i]) for r in range(3)])
        expected = np.bincount(np.minimum(isi, 11), minlength=12)
        np.testing.assert_array_equal(result.counts[:, i], expected[1:11])
        assert int(result.longer[i]) == expected[11]
        np.testing.assert_allclose(stats.interspike_intervals(small_spikes)[i], isi)
    np.testing.assert_allclose(result.intervals, np.arange(1, 11) * DT)


def test_cv_matches_definition_and_bernoulli_theory(small_spikes):
    for i, value in enumerate(np.asarray(stats.cv(small_spikes))):
        isi = np.concatenate([brute_intervals(small_spikes[r, :, i]) for r in range(3)])
        np.testing.assert_allclose(value, isi.std(ddof=1) / isi.mean(), rtol=1e-5)
    p = 0.05
    spikes = jax.random.uniform(jax.random.key(1), (4, 50_000, 2)) < p
    n = 4 * 50_000 * p
    # geometric intervals: CV = sqrt(1 − p); the sample CV has sd ≈ CV/sqrt(n)
    np.testing.assert_allclose(stats.cv(spikes), np.sqrt(1 - p), atol=4 / np.sqrt(n))


def test_fano_factor_definition_and_poisson_value(small_spikes):
    result = stats.fano_factor(small_spikes, window=20)
    counts = small_spikes.reshape(3, 3, 20, 4).sum(axis=2)
    np.testing.assert_allclose(result, counts.var(axis=0, ddof=1) / counts.mean(axis=0), rtol=1e-5)
    p, n_trials = 0.02, 200
    spikes = jax.random.uniform(jax.random.key(2), (n_trials, 1000, 10)) < p
    fano = np.asarray(stats.fano_factor(spikes))
    assert fano.shape == (1, 10)
    # binomial counts: F = 1 − p; each estimate has sd ≈ sqrt(2/(R − 1))
    assert abs(fano.mean() - (1 - p)) < 4 * np.sqrt(2 / (n_trials - 1) / 10)
    with pytest.raises(ValueError, match="window must divide"):
        stats.fano_factor(small_spikes, window=7)
    with pytest.raises(ValueError, match="trials >= 2"):
        stats.fano_factor(small_spikes[:1])


def brute_correlogram(spikes, max_lag):
    _, t, n = spikes.shape
    s = spikes.astype(int)
    out = np.zeros((2 * max_lag + 1, n, n), int)
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        for i in range(n):
            for j in range(n):
                if lag >= 0:
                    out[k, i, j] = np.sum(s[:, : t - lag, i] * s[:, lag:, j])
                else:
                    out[k, i, j] = np.sum(s[:, -lag:, i] * s[:, : t + lag, j])
    return out


@pytest.mark.parametrize("method", ["fft", "direct"])
def test_cross_correlogram_matches_brute_force(small_spikes, method):
    result = stats.cross_correlogram(small_spikes, 7, dt=DT, method=method)
    np.testing.assert_array_equal(result.counts, brute_correlogram(small_spikes, 7))
    np.testing.assert_allclose(result.lags, np.arange(-7, 8) * DT)


def test_cross_correlogram_finds_a_delayed_copy():
    source = np.asarray(jax.random.uniform(jax.random.key(3), (10, 5000)) < 0.02)
    copy = np.roll(source, 4, axis=1) & (np.random.default_rng(1).random(source.shape) < 0.5)
    spikes = np.stack([source, copy], axis=-1)
    counts = np.asarray(stats.cross_correlogram(spikes, 10).counts)
    assert np.argmax(counts[:, 0, 1]) == 10 + 4  # neuron 1 fires 4 bins after neuron 0
    assert np.argmax(counts[:, 1, 0]) == 10 - 4
    # away from the peak: chance coincidences ≈ R T p_0 p_1, within Poisson noise
    chance = np.delete(counts[:, 0, 1], 14)
    expected = source.sum() * copy.mean()
    assert np.all(np.abs(chance - expected) < 5 * np.sqrt(expected))


def test_cross_correlogram_rejects_bad_arguments(small_spikes):
    with pytest.raises(ValueError, match="max_lag must be < T"):
        stats.cross_correlogram(small_spikes, 60)
    with pytest.raises(ValueError, match="method must be"):
        stats.cross_correlogram(small_spikes, 3, method="loop")
    with pytest.raises(ValueError, match="binary"):
        stats.cross_correlogram(small_spikes * 2, 3)


def inhomogeneous_bernoulli(key, shape):
    t = np.arange(shape[-2])
    p = 0.03 + 0.025 * np.sin(2 * np.pi * t / 700)[:, None] * np.ones(shape[-1])
    p = np.broadcast_to(p, shape)
    return jax.random.uniform(key, shape) < p, p


def test_time_rescaling_passes_the_true_model_and_fails_a_wrong_one():
    spikes, p = inhomogeneous_bernoulli(jax.random.key(4), (8, 20_000, 3))
    good = stats.time_rescaling(spikes, p, key=jax.random.key(5))
    assert good.intervals.size == int(spikes.sum())  # only the very last interval is censored
    assert good.ks < good.band
    np.testing.assert_allclose(good.band, 1.36 / np.sqrt(good.intervals.size))
    assert abs(good.intervals.mean() - 1) < 4 / np.sqrt(good.intervals.size)
    flat = stats.time_rescaling(spikes, np.full(p.shape, p.mean()), key=jax.random.key(5))
    assert flat.ks > 2 * flat.band and flat.pvalue < 1e-6
    doubled = stats.time_rescaling(spikes, 2 * p, key=jax.random.key(5))
    assert doubled.ks > 2 * doubled.band


def test_time_rescaling_without_correction_is_exact_on_the_grid_for_small_p():
    spikes, p = inhomogeneous_bernoulli(jax.random.key(6), (2, 20_000, 2))
    p = p / 10
    spikes = jax.random.uniform(jax.random.key(7), p.shape) < p
    plain = stats.time_rescaling(spikes, p)
    # z is discrete; its CDF misses Exp(1) by at most max p = 0.0055 < band/3
    assert plain.ks < plain.band
    assert plain.ks == pytest.approx(
        scipy.stats.kstest(plain.intervals, "expon").statistic, abs=1e-9
    )


def test_time_rescaling_rejects_bad_probabilities(small_spikes):
    p = np.full(small_spikes.shape, 0.1)
    with pytest.raises(ValueError, match="p must have the shape"):
        stats.time_rescaling(small_spikes, p[:, :-1])
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\)"):
        stats.time_rescaling(small_spikes, np.where(small_spikes, 1.0, 0.1))
    with pytest.raises(ValueError, match="p must be finite"):
        stats.time_rescaling(small_spikes, np.where(small_spikes, np.nan, 0.1))
    with pytest.raises(ValueError, match="no spike"):
        stats.time_rescaling(np.zeros_like(small_spikes), p)


@pytest.mark.slow
def test_time_rescaling_of_a_glm_network_fitted_to_its_own_samples():
    from probsnn.inference import fit_ml

    basis = kernels.raised_cosine(n_basis=3, first_peak=1, last_peak=8)
    spec = ps.Network(n_neurons=3, synapse_basis=basis, dt=DT)
    true = spec.init_params(jax.random.key(0), rate=40.0)
    spikes = ps.sample(spec, true, jax.random.key(1), n_steps=20_000, n_trials=2)
    fit = fit_ml(spec, spikes)
    good = stats.time_rescaling_glm(spec, fit.params, spikes, key=jax.random.key(2))
    assert good.ks < good.band
    wrong = fit.params._replace(bias=fit.params.bias + 1.0)
    bad = stats.time_rescaling_glm(spec, wrong, spikes, key=jax.random.key(2))
    assert bad.ks > 2 * bad.band
