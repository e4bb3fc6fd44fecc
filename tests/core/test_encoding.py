"""Spike generators and codes: rates, intervals, dead times and round trips against theory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from probsnn import data, encoding, stats

DT = 1e-3


def binomial_bound(n, p, sd=4.0):
    """|count − np| below this holds with probability > 1 − 6e-5 (normal approximation)."""
    return sd * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("method", ["dense", "sparse"])
def test_binned_poisson_rate_in_binomial_interval(method):
    rate = 20.0
    spikes = encoding.poisson_spikes(jax.random.key(0), rate, DT, (10, 2000, 10), method=method)
    assert spikes.dtype == jnp.bool_ and spikes.shape == (10, 2000, 10)
    p = 1 - np.exp(-rate * DT)
    n = spikes.size
    assert abs(int(spikes.sum()) - n * p) < binomial_bound(n, p)


def test_binned_poisson_follows_a_time_varying_rate():
    t = np.arange(400) * DT
    rate = np.stack([50 + 40 * np.sin(2 * np.pi * 5 * t), np.full_like(t, 5.0)], axis=1)
    spikes = encoding.poisson_spikes(jax.random.key(1), rate, DT, (1000, 400, 2))
    p = 1 - np.exp(-rate * DT)
    counts = np.asarray(spikes.sum(axis=0))
    z = (counts - 1000 * p) / np.sqrt(1000 * p * (1 - p))
    # Σ z² over 800 independent bins is chi-square with 800 degrees of freedom.
    assert np.sum(z**2) < scipy.stats.chi2.ppf(0.9999, z.size)


@pytest.mark.parametrize("capacity", [None, 7])
def test_sparse_sampler_intervals_are_geometric(capacity):
    p_rate, shape = 50.0, (20, 3000, 3)
    if capacity is None:  # the public path
        spikes = encoding.poisson_spikes(jax.random.key(13), p_rate, DT, shape, method="sparse")
    else:  # tiny chunks: many rounds of the while loop must still give the same law
        rate = jnp.asarray(p_rate, jnp.float32)
        spikes = encoding._geometric(jax.random.key(13), rate, DT, shape, 0, capacity)
    hist = stats.isi_histogram(spikes, 60)
    counts = np.asarray(hist.counts).sum(axis=1)
    n = counts.sum() + int(hist.longer.sum())
    p = 1 - np.exp(-p_rate * DT)
    expected = n * p * (1 - p) ** np.arange(60)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < scipy.stats.chi2.ppf(0.9999, 60)
    # the first spike of each train lands at bin K - 1 with K geometric, too
    first = np.argmax(np.asarray(spikes), axis=1).ravel()
    assert abs(first.mean() - (1 / p - 1)) < 4 * np.sqrt(1 - p) / p / np.sqrt(first.size)


@pytest.mark.parametrize("capacity", [None, 50])
def test_one_rate_draws_all_bins_as_one_train(capacity):
    """Equal rates: the bins are drawn as one geometric train of prod(shape) bins. Counts per
    bin, per neuron and of neighbouring pairs (adjacent in that train) are those of i.i.d.
    Bernoulli(p) bins, also when the gaps come in many small rounds (capacity 50)."""
    rate, shape = 30.0, (40, 500, 8)
    p = 1 - np.exp(-rate * DT)
    if capacity is None:
        spikes = encoding.poisson_spikes(jax.random.key(5), rate, DT, shape, method="sparse")
    else:
        flat = (int(np.prod(shape)), 1)
        one = jnp.asarray([[rate]], jnp.float32)
        spikes = encoding._geometric(jax.random.key(5), one, DT, flat, 0, capacity)
    spikes = np.asarray(spikes).reshape(shape)
    n = spikes.size
    assert abs(int(spikes.sum()) - n * p) < binomial_bound(n, p)
    per_neuron = spikes.sum(axis=(0, 1))  # 8 cells of 20,000 bins: chi-square with 8 dof
    m = shape[0] * shape[1]
    assert np.sum((per_neuron - m * p) ** 2 / (m * p * (1 - p))) < scipy.stats.chi2.ppf(0.9999, 8)
    both = int(np.sum(spikes[..., 1:] & spikes[..., :-1]))  # neighbours in one bin
    pairs = spikes[..., 1:].size
    assert abs(both - pairs * p * p) < binomial_bound(pairs, p * p)


def test_one_train_longer_than_int32_sums():
    """2·10⁶ bins and a capacity of ~2·10⁴ gaps: the running positions saturate instead of
    overflowing int32, and spikes reach the last rows."""
    rate, shape = 10.0, (2000, 1000)
    spikes = encoding.poisson_spikes(jax.random.key(8), rate, DT, shape)
    p = 1 - np.exp(-rate * DT)
    assert abs(int(spikes.sum()) - spikes.size * p) < binomial_bound(spikes.size, p)
    rows = np.asarray(spikes.sum(axis=1))
    assert rows[-100:].sum() > 0.5 * 100 * 1000 * p


def test_poisson_spikes_method_choice():
    with pytest.raises(ValueError, match="constant along time"):
        encoding.poisson_spikes(
            jax.random.key(0), jnp.arange(20.0).reshape(10, 2), DT, (10, 2), method="sparse"
        )
    with pytest.raises(ValueError, match="method must be"):
        encoding.poisson_spikes(jax.random.key(0), 1.0, DT, (10, 2), method="fast")


def test_poisson_times_intervals_are_exponential():
    rate = 30.0
    trains = encoding.poisson_times(jax.random.key(2), rate, 20.0, shape=(50,))
    times = np.asarray(trains.times)
    intervals = np.concatenate([np.diff(row[np.isfinite(row)], prepend=0.0) for row in times])
    assert intervals.size > 20_000
    assert scipy.stats.kstest(intervals, "expon", args=(0, 1 / rate)).pvalue > 1e-3
    assert int(trains.counts.sum()) == intervals.size
    expected = 50 * rate * 20.0
    assert abs(intervals.size - expected) < 4 * np.sqrt(expected)


def test_fano_factor_of_poisson_counts_is_one():
    n_trials, rate, duration = 400, 20.0, 2.0
    trains = encoding.poisson_times(jax.random.key(3), rate, duration, shape=(n_trials, 8))
    counts = np.asarray(trains.counts, float)
    fano = counts.var(axis=0, ddof=1) / counts.mean(axis=0)
    # sd of one Fano estimate ≈ sqrt(2/(R − 1)); 8 independent neurons averaged.
    assert abs(fano.mean() - 1.0) < 4 * np.sqrt(2 / (n_trials - 1)) / np.sqrt(8)


def test_thinning_reproduces_rate_in_psth():
    n_trials, duration, window = 400, 1.0, 0.02

    def rate_fn(t):
        return 30.0 + 25.0 * jnp.sin(2 * jnp.pi * 2.0 * t)

    trains = encoding.thinned_times(jax.random.key(4), rate_fn, 55.0, duration, shape=(n_trials,))
    counts = data.bin_spike_times(trains.times[:, None], window, duration, policy="count")
    psth_counts = counts[:, :, 0].sum(axis=0)
    edges = np.arange(0, duration + window / 2, window)
    integral = 30.0 * window - 25.0 / (4 * np.pi) * np.diff(np.cos(4 * np.pi * edges))
    expected = n_trials * integral
    z = (psth_counts - expected) / np.sqrt(expected)
    assert np.sum(z**2) < scipy.stats.chi2.ppf(0.9999, z.size)


def test_thinning_rejects_a_rate_above_its_bound():
    with pytest.raises(ValueError, match="rate_max"):
        encoding.thinned_times(jax.random.key(0), lambda t: 10.0 + 0 * t, 5.0, 1.0, shape=(2,))


@pytest.mark.parametrize(("refractory", "method"), [(2e-3, "dense"), (4.5e-3, "sparse")])
def test_binned_refractory_period_is_never_violated(refractory, method):
    spikes = np.asarray(
        encoding.poisson_spikes(
            jax.random.key(5), 300.0, DT, (4, 3000, 5), refractory=refractory, method=method
        )
    )
    intervals = np.concatenate(
        [np.diff(np.flatnonzero(spikes[r, :, i])) for r in range(4) for i in range(5)]
    )
    assert intervals.min() * DT >= refractory - 1e-12
    # in bins the dead-time process has mean interval n_dead + 1/p exactly
    n_dead = int(np.ceil(refractory / DT - 1e-9)) - 1
    p = 1 - np.exp(-300.0 * DT)
    mean, sd = n_dead + 1 / p, np.sqrt(1 - p) / p
    assert abs(intervals.mean() - mean) < 4 * sd / np.sqrt(intervals.size)


def test_continuous_refractory_period_is_never_violated():
    rate, dead = 100.0, 5e-3
    trains = encoding.poisson_times(jax.random.key(6), rate, 5.0, shape=(20,), refractory=dead)
    times = np.asarray(trains.times)
    gaps = np.concatenate([np.diff(row[np.isfinite(row)]) for row in times])
    assert gaps.min() >= dead - 1e-6
    # dead-time process: mean rate λ/(1 + λd); the count sd is below the Poisson one
    expected = 20 * 5.0 * rate / (1 + rate * dead)
    assert abs(int(trains.counts.sum()) - expected) < 4 * np.sqrt(expected)

    thinned = encoding.thinned_times(
        jax.random.key(7), lambda t: 80.0 + 0 * t, 100.0, 2.0, shape=(5,), refractory=dead
    )
    rows = np.asarray(thinned.times)
    assert min(np.diff(r[np.isfinite(r)]).min() for r in rows) >= dead - 1e-6


def test_poisson_generators_reject_bad_rates():
    with pytest.raises(ValueError, match="rate must be >= 0"):
        encoding.poisson_spikes(jax.random.key(0), jnp.array([1.0, -1.0]), DT, (10, 2))
    with pytest.raises(ValueError, match="rate must be finite"):
        encoding.poisson_spikes(jax.random.key(0), jnp.array([1.0, np.nan]), DT, (10, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        encoding.poisson_spikes(jax.random.key(0), jnp.ones(3), DT, (10, 2))
    with pytest.raises(ValueError, match="rate must be >= 0"):
        encoding.poisson_times(jax.random.key(0), -2.0, 1.0)
    with pytest.raises(ValueError, match="max_spikes is too small"):
        encoding.poisson_times(jax.random.key(0), 100.0, 1.0, max_spikes=10)
    with pytest.raises(ValueError, match="dt must be"):
        encoding.poisson_spikes(jax.random.key(0), 1.0, -DT, (10, 2))


def test_generators_and_encoders_run_under_jit():
    rate = jnp.full((3,), 40.0)
    spikes = jax.jit(lambda k, r: encoding.poisson_spikes(k, r, DT, (2, 100, 3)))(
        jax.random.key(0), rate
    )
    assert spikes.shape == (2, 100, 3)
    values = jnp.linspace(0, 1, 4)
    encoded = jax.jit(lambda k, v: encoding.rate_encode(k, v, 50, dt=DT, max_rate=100.0))(
        jax.random.key(1), values
    )
    assert encoded.shape == (50, 4)
    trains = jax.jit(lambda k, r: encoding.poisson_times(k, r, 1.0, shape=(3,), max_spikes=200))(
        jax.random.key(2), rate
    )
    assert trains.times.shape == (3, 200) and not bool(trains.overflow.any())


def test_rate_code_round_trip_within_binomial_resolution():
    values = jnp.linspace(0.05, 0.95, 19)
    n_steps, max_rate = 20_000, 100.0
    spikes = encoding.rate_encode(jax.random.key(8), values, n_steps, dt=DT, max_rate=max_rate)
    decoded = encoding.rate_decode(spikes, dt=DT, max_rate=max_rate)
    p = 1 - np.exp(-max_rate * np.asarray(values) * DT)
    slope = max_rate * DT * np.exp(-max_rate * np.asarray(values) * DT)  # dp/dx
    sd = np.sqrt(p * (1 - p) / n_steps) / slope
    assert np.all(np.abs(np.asarray(decoded) - np.asarray(values)) < 4 * sd)


def test_rate_code_on_images_keeps_batch_shape():
    images, _ = data.load_digits()
    flat = images[:3].reshape(3, -1)
    spikes = encoding.rate_encode(jax.random.key(0), flat, 25, dt=DT, max_rate=200.0)
    assert spikes.shape == (3, 25, 64) and spikes.dtype == jnp.bool_


def test_linear_latency_round_trip_within_half_a_bin():
    values = jax.random.uniform(jax.random.key(9), (5, 40))
    n_steps = 101
    spikes = encoding.latency_encode(values, n_steps, dt=DT)
    assert np.all(np.asarray(spikes.sum(axis=-2)) == 1)
    decoded = encoding.latency_decode(spikes, dt=DT)
    assert np.max(np.abs(decoded - values)) <= 0.5 / (n_steps - 1) + 1e-6


def test_log_latency_round_trip_keeps_the_spike_bin():
    kw = dict(dt=DT, code="log", tau=0.02, threshold=0.2)
    values = jnp.linspace(0.0, 1.0, 201)
    spikes = encoding.latency_encode(values, 100, **kw)
    decoded = encoding.latency_decode(spikes, **kw)
    again = encoding.latency_encode(decoded, 100, **kw)
    assert np.array_equal(np.asarray(spikes), np.asarray(again))
    # larger values fire earlier, values at or below threshold stay silent
    first = np.argmax(np.asarray(spikes), axis=0)
    fired = np.asarray(spikes.any(axis=0))
    assert not fired[np.asarray(values) <= 0.2].any()
    assert np.all(np.diff(first[fired]) <= 0)


def test_phase_code_round_trip_within_resolution():
    values = jax.random.uniform(jax.random.key(10), (3, 25))
    period = 40
    spikes = encoding.phase_encode(values, 400, period=period)
    assert np.all(np.asarray(spikes.sum(axis=-2)) == 10)
    decoded = encoding.phase_decode(spikes, period=period)
    assert np.max(np.abs(decoded - values)) <= 0.5 / (period - 1) + 1e-5


def test_population_code_error_near_cramer_rao_bound():
    values = jnp.linspace(0.1, 0.9, 17)
    n_steps, m, max_rate, min_rate = 2000, 12, 80.0, 2.0
    kw = dict(dt=DT, max_rate=max_rate, min_rate=min_rate)
    spikes = encoding.population_encode(jax.random.key(11), values, n_steps, m, **kw)
    assert spikes.shape == (n_steps, 17 * m)
    decoded = encoding.population_decode(spikes, m, **kw)
    # Fisher information of Bernoulli bins: T Σ_m p'² / (p (1 − p))
    x = np.asarray(values)[:, None]
    centres = np.linspace(0, 1, m)
    width = 1 / (m - 1)
    bump = np.exp(-0.5 * ((x - centres) / width) ** 2)
    rate = min_rate + (max_rate - min_rate) * bump
    p = 1 - np.exp(-rate * DT)
    dp = DT * np.exp(-rate * DT) * (max_rate - min_rate) * bump * -(x - centres) / width**2
    sd = 1 / np.sqrt(n_steps * np.sum(dp**2 / (p * (1 - p)), axis=1))
    assert np.all(np.abs(np.asarray(decoded) - np.asarray(values)) < 4 * sd + 1e-3)


def test_synchrony_code_sets_the_correlation_coefficient():
    values = jnp.array([0.0, 0.2, 0.5, 0.9])
    n_steps, m, rate = 10_000, 8, 40.0
    spikes = encoding.synchrony_encode(jax.random.key(12), values, n_steps, m, dt=DT, rate=rate)
    groups = np.asarray(spikes, float).reshape(n_steps, 4, m)
    p = 1 - np.exp(-rate * DT)
    # every neuron fires at the rate; the pairwise correlation is the value
    assert abs(groups.mean() - p) < binomial_bound(groups.size, p) / groups.size
    corr = np.corrcoef(groups[:, 2, :].T)[np.triu_indices(m, 1)].mean()
    assert abs(corr - 0.5) < 0.05
    decoded = np.asarray(encoding.synchrony_decode(spikes, m))
    # delta-method sd of the coincidence ratio: K ~ Bin(M, c) per mother event
    for x, xhat in zip(np.asarray(values), decoded, strict=True):
        c = p + (1 - p) * x
        k = np.arange(m + 1)
        pmf = scipy.stats.binom.pmf(k, m, c)
        y = k * (k - 1) - c * (m - 1) * k
        var_y = np.sum(pmf * y**2) - np.sum(pmf * y) ** 2
        events = n_steps * p / c
        sd = np.sqrt(var_y / events) / (m * (m - 1) * c) / (1 - p)
        assert abs(xhat - x) < 4 * sd + 2 * np.sqrt(p / (n_steps * m))


def test_encoders_reject_values_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\]"):
        encoding.rate_encode(jax.random.key(0), jnp.array([0.5, 1.5]), 10, dt=DT, max_rate=10.0)
    with pytest.raises(ValueError, match="values must be finite"):
        encoding.latency_encode(jnp.array([np.nan]), 10, dt=DT)
    with pytest.raises(ValueError, match="code must be"):
        encoding.latency_encode(jnp.array([0.5]), 10, dt=DT, code="cubic")
    with pytest.raises(ValueError, match="multiple of n_neurons"):
        encoding.synchrony_decode(jnp.zeros((10, 7), bool), 4)
    with pytest.raises(ValueError, match="max_rate must exceed min_rate"):
        encoding.rate_encode(
            jax.random.key(0), jnp.array([0.5]), 10, dt=DT, max_rate=1.0, min_rate=2.0
        )
