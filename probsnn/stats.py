"""Spike-train statistics and goodness of fit (docs/theory.md §9 and §6).

Binned spikes are ``(..., T, N)``; leading axes are trials and are pooled. PSTH, ISI histogram,
CV, Fano factor and cross-correlograms are vectorised jax (no loop over trials, neurons or bins).
Time rescaling (Brown, Barbieri, Ventura, Kass & Frank 2002, Neural Comput. 14:325) returns a
variable number of intervals and so runs in numpy float64.
"""

from __future__ import annotations

import math
from functools import partial
from statistics import NormalDist
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from probsnn import _checks
from probsnn.glm import potentials
from probsnn.kernels import fft_length


def _trials(spikes, name: str = "spikes"):
    """Validate and reshape ``(..., T, N)`` spikes to float32 ``(trials, T, N)``; raises
    ValueError naming ``name`` for non-binary spikes or an empty axis (no trials, bins or
    neurons)."""
    spikes = _checks.spike_array(spikes, name)
    _checks.nonempty(spikes, name)
    return jnp.asarray(spikes, jnp.float32).reshape(-1, *spikes.shape[-2:])


def _scale(dt) -> float:
    return 1.0 if dt is None else _checks.positive_float(dt, "dt")


# ---------------------------------------------------------------------------------------------
# PSTH


class PSTH(NamedTuple):
    """A peri-stimulus time histogram.

    Attributes:
        time: ``(T,)`` bin centres in seconds.
        rate: ``(T, N)`` trial-averaged (smoothed) rate in spikes/s.
        lower, upper: ``(T, N)`` pointwise confidence band (lower floored at 0).
        n_trials: number of trials averaged.
    """

    time: jax.Array
    rate: jax.Array
    lower: jax.Array
    upper: jax.Array
    n_trials: int


def gaussian_window(bandwidth, dt):
    """Gaussian smoothing weights g_j ∝ exp(−(jΔ)²/(2σ²)), j = −h..h, h = ceil(4σ/Δ), Σ g = 1."""
    half = math.ceil(4.0 * bandwidth / dt)
    lags = np.arange(-half, half + 1) * dt
    weights = np.exp(-0.5 * (lags / bandwidth) ** 2)
    return weights / weights.sum()


def _smooth(x, window):
    """y_t = Σ_j g_j x_{t+j} along axis 0 of ``(T, N)`` (zero outside), by FFT."""
    n_steps = x.shape[0]
    half = (window.shape[0] - 1) // 2
    size = fft_length(n_steps + window.shape[0] - 1)
    spectrum = jnp.fft.rfft(x, size, axis=0) * jnp.fft.rfft(window, size)[:, None]
    return jnp.fft.irfft(spectrum, size, axis=0)[half : half + n_steps]


@partial(jax.jit, static_argnames=("dt", "z"))
def _psth(spikes, window, dt, z):
    n_trials = spikes.shape[0]
    mean = jnp.mean(spikes, axis=0)
    var = mean * (1.0 - mean)
    if window is None:
        rate, var_rate = mean, var / n_trials
    else:
        window = window.astype(jnp.float32)
        norm = _smooth(jnp.ones((mean.shape[0], 1), jnp.float32), window)
        rate = _smooth(mean, window) / norm
        var_rate = _smooth(var, window**2) / norm**2 / n_trials
    half_width = z * jnp.sqrt(jnp.maximum(var_rate, 0.0))
    rate = jnp.maximum(rate, 0.0)
    lower = jnp.maximum(rate - half_width, 0.0)
    return rate / dt, lower / dt, (rate + half_width) / dt


def psth(spikes, *, dt, bandwidth=None, level=0.95) -> PSTH:
    """Trial-averaged firing rate, optionally Gaussian-smoothed, with a pointwise Wald band.

    With m_t the fraction of trials spiking in bin t and g a Gaussian window (σ = ``bandwidth``),
    renormalised at the edges (n_t = Σ_j g_j over bins inside the record):

        r_t = Σ_j g_j m_{t+j} / (n_t Δ),   Var r_t = Σ_j g_j² m_{t+j}(1 − m_{t+j}) / (n_t² R Δ²)

    treating the R trials and the bins as independent (Bernoulli counts); band r_t ± z σ_r with
    z = Φ⁻¹((1 + level)/2). Without ``bandwidth`` the raw binned rate m_t/Δ is returned.

    Args:
        spikes: binary ``(..., T, N)``; all leading axes are trials.
        dt: bin width in seconds.
        bandwidth: Gaussian σ in seconds, or None for no smoothing.
        level: confidence level of the band, in (0, 1).

    Returns:
        :class:`PSTH`.

    Raises:
        ValueError: non-binary or empty spikes (no trials, bins or neurons), dt or bandwidth <= 0,
            level outside (0, 1), a smoothing window too long to allocate.

    Reference: Shimazaki & Shinomoto (2010, J. Comput. Neurosci. 29:171) on kernel rate estimates.
    """
    trials = _trials(spikes)
    dt = _checks.positive_float(dt, "dt")
    level = _checks.probability(level, "level")
    window = None
    if bandwidth is not None:
        bandwidth = _checks.positive_float(bandwidth, "bandwidth")
        _checks.allocation(
            2 * math.ceil(4.0 * bandwidth / dt) + 1 + trials.shape[1],
            f"the smoothing window of bandwidth={bandwidth} s at dt={dt} s",
        )
        window = jnp.asarray(gaussian_window(bandwidth, dt))
    z = NormalDist().inv_cdf(0.5 + float(level) / 2.0)
    rate, lower, upper = _psth(trials, window, dt, z)
    time = (jnp.arange(trials.shape[1]) + 0.5) * dt
    return PSTH(time=time, rate=rate, lower=lower, upper=upper, n_trials=trials.shape[0])


# ---------------------------------------------------------------------------------------------
# intervals


def _previous_spike(spikes):
    """Index of the last spike strictly before each bin (−1 if none), ``(R, T, N)`` int32."""
    n_steps = spikes.shape[1]
    index = jnp.arange(n_steps, dtype=jnp.int32)[None, :, None]
    last = jax.lax.cummax(jnp.where(spikes > 0, index, -1), axis=1)
    return jnp.concatenate([jnp.full_like(last[:, :1], -1), last[:, :-1]], axis=1)


def _intervals(spikes):
    """ISI in bins ending at each spike, and the mask of bins where one ends."""
    previous = _previous_spike(spikes)
    index = jnp.arange(spikes.shape[1], dtype=jnp.int32)[None, :, None]
    valid = (spikes > 0) & (previous >= 0)
    return index - previous, valid


class ISIHistogram(NamedTuple):
    """Inter-spike-interval counts pooled over trials.

    Attributes:
        intervals: ``(L,)`` interval lengths 1..L bins (times Δ when ``dt`` is given).
        counts: ``(L, N)`` int32 number of intervals of each length per neuron.
        longer: ``(N,)`` int32 number of intervals longer than L bins.
    """

    intervals: jax.Array
    counts: jax.Array
    longer: jax.Array


@partial(jax.jit, static_argnames=("max_interval",))
def _isi_histogram(spikes, max_interval):
    isi, valid = _intervals(spikes)
    slot = jnp.minimum(isi, max_interval + 1) - 1
    neuron = jnp.broadcast_to(jnp.arange(spikes.shape[2]), isi.shape)
    counts = jnp.zeros((max_interval + 1, spikes.shape[2]), jnp.int32)
    counts = counts.at[slot.ravel(), neuron.ravel()].add(valid.ravel().astype(jnp.int32))
    return counts[:-1], counts[-1]


def isi_histogram(spikes, max_interval, *, dt=None) -> ISIHistogram:
    """Histogram of inter-spike intervals (within trials), 1..``max_interval`` bins.

    The interval ending at spike t is t − t', t' the previous spike of that neuron and trial,
    found for all bins at once with a cumulative maximum. For a Bernoulli(p) process the counts
    follow the geometric law p(1 − p)^(k−1).

    Raises:
        ValueError: non-binary or empty spikes, max_interval < 1 or too large to allocate,
            dt <= 0.
    """
    trials = _trials(spikes)
    max_interval = _checks.positive_int(max_interval, "max_interval")
    _checks.allocation(
        (max_interval + 1) * trials.shape[2], "the ISI histogram (max_interval + 1, N)"
    )
    counts, longer = _isi_histogram(trials, max_interval)
    intervals = jnp.arange(1, max_interval + 1) * _scale(dt)
    return ISIHistogram(intervals=intervals, counts=counts, longer=longer)


def interspike_intervals(spikes, *, dt=None) -> list[np.ndarray]:
    """Inter-spike intervals of each neuron, pooled over trials (intervals never span trials).

    Returns:
        A list of N float64 arrays (bins, or seconds when ``dt`` is given).
    """
    trials = _trials(spikes)
    isi, valid = jax.jit(_intervals)(trials)
    isi, valid = np.asarray(isi), np.asarray(valid)
    scale = _scale(dt)
    return [isi[..., i][valid[..., i]] * scale for i in range(isi.shape[-1])]


@jax.jit
def _cv(spikes):
    isi, valid = _intervals(spikes)
    isi = isi.astype(jnp.float32)
    n = jnp.sum(valid, axis=(0, 1))
    mean = jnp.sum(jnp.where(valid, isi, 0.0), axis=(0, 1)) / n
    square = jnp.sum(jnp.where(valid, (isi - mean) ** 2, 0.0), axis=(0, 1))
    return jnp.sqrt(square / (n - 1)) / mean


def cv(spikes):
    """Coefficient of variation of the ISIs per neuron, sd/mean (sd with n − 1), trials pooled.

    1 for a Poisson process in continuous time; for Bernoulli(p) bins sqrt(1 − p). Neurons with
    fewer than two intervals have no CV and give NaN.

    Returns:
        float32 ``(N,)``.
    """
    return _cv(_trials(spikes))


def fano_factor(spikes, window=None):
    """Fano factor Var(n)/E(n) of spike counts n across trials, per counting window and neuron.

    Counts are taken in consecutive windows of ``window`` bins (default: the whole record); mean
    and variance (n − 1 denominator) run over the R trials. A Poisson process gives 1 with
    sampling sd ≈ sqrt(2/(R − 1)) for large counts. Windows with no spike in any trial give NaN.

    Args:
        spikes: binary ``(R, T, N)`` with R >= 2 trials.
        window: bins per counting window; must divide T.

    Returns:
        float32 ``(T // window, N)``.

    Raises:
        ValueError: non-binary or empty spikes, fewer than two trials, or a window that does not
            divide T.
    """
    spikes = _checks.spike_array(spikes, "spikes", min_ndim=3)
    _checks.nonempty(spikes, "spikes")
    if spikes.ndim != 3 or spikes.shape[0] < 2:
        raise ValueError(f"spikes must be (trials >= 2, T, N), got shape {spikes.shape}")
    n_steps = spikes.shape[1]
    window = n_steps if window is None else _checks.positive_int(window, "window")
    if n_steps % window:
        raise ValueError(f"window must divide T={n_steps}, got {window}")
    return _fano(jnp.asarray(spikes, jnp.float32), window)


@partial(jax.jit, static_argnames=("window",))
def _fano(spikes, window):
    r, t, n = spikes.shape
    counts = spikes.reshape(r, t // window, window, n).sum(axis=2)
    return jnp.var(counts, axis=0, ddof=1) / jnp.mean(counts, axis=0)


# ---------------------------------------------------------------------------------------------
# cross-correlograms


class Correlogram(NamedTuple):
    """Cross-correlograms of all neuron pairs, summed over trials.

    Attributes:
        lags: ``(2L + 1,)`` lags −L..L in bins (times Δ when ``dt`` is given).
        counts: ``(2L + 1, N, N)`` int32, counts[l, i, j] = Σ_trials Σ_t s_{t,i} s_{t+lag_l,j}
            (neuron j spiking lag_l bins after neuron i). The diagonal holds autocorrelograms.
    """

    lags: jax.Array
    counts: jax.Array


@partial(jax.jit, static_argnames=("max_lag",))
def _xcorr_fft(spikes, max_lag):
    n_steps = spikes.shape[1]
    size = fft_length(n_steps + max_lag)
    spectra = jnp.fft.rfft(spikes, size, axis=1)
    cross = jnp.einsum("rfi,rfj->fij", jnp.conj(spectra), spectra)
    full = jnp.fft.irfft(cross, size, axis=0)
    window = jnp.concatenate([full[size - max_lag :], full[: max_lag + 1]], axis=0)
    return jnp.round(window).astype(jnp.int32)


@partial(jax.jit, static_argnames=("max_lag",))
def _xcorr_direct(spikes, max_lag):
    n_steps = spikes.shape[1]
    padded = jnp.pad(spikes, ((0, 0), (0, max_lag), (0, 0)))

    def one_lag(lag):
        shifted = jax.lax.dynamic_slice_in_dim(padded, lag, n_steps, axis=1)
        return jnp.einsum("rti,rtj->ij", spikes, shifted)

    positive = jax.lax.map(one_lag, jnp.arange(max_lag + 1))
    negative = jnp.swapaxes(positive[1:][::-1], 1, 2)
    return jnp.concatenate([negative, positive], axis=0).astype(jnp.int32)


def cross_correlogram(spikes, max_lag, *, dt=None, method="fft") -> Correlogram:
    """Cross-correlograms C_ij(τ) = Σ_trials Σ_t s_{t,i} s_{t+τ,j} for τ = −L..L, all pairs at once.

    ``"fft"``: one real FFT per trial and neuron (zero-padded so nothing wraps), the cross-spectra
    summed over trials as a batched matrix product per frequency, one inverse FFT; counts are
    rounded to integers (exact while float32 rounding stays below ½, i.e. up to ~10⁶ spikes per
    neuron). ``"direct"``: one matrix product per lag, exact up to 2²⁴ coincidences.
    C_ij(−τ) = C_ji(τ).

    Args:
        spikes: binary ``(..., T, N)``; leading axes are trials.
        max_lag: L >= 0 bins, smaller than T.
        dt: bin width for ``lags`` in seconds.
        method: ``"fft"`` or ``"direct"``.

    Raises:
        ValueError: non-binary or empty spikes, max_lag outside [0, T), an unknown method, a
            result too large to allocate.

    Reference: Perkel, Gerstein & Moore (1967), Biophys. J. 7:419.
    """
    trials = _trials(spikes)
    max_lag = _checks.positive_int(max_lag, "max_lag", minimum=0)
    if max_lag >= trials.shape[1]:
        raise ValueError(f"max_lag must be < T={trials.shape[1]}, got {max_lag}")
    method = _checks.option(method, "method", ("fft", "direct"))
    n_neurons = trials.shape[2]
    _checks.allocation(
        (2 * max_lag + 1) * n_neurons * n_neurons, "the correlograms (2 max_lag + 1, N, N)"
    )
    if method == "fft":
        counts = _xcorr_fft(trials, max_lag)
    else:
        counts = _xcorr_direct(trials, max_lag)
    lags = jnp.arange(-max_lag, max_lag + 1) * _scale(dt)
    return Correlogram(lags=lags, counts=counts)


# ---------------------------------------------------------------------------------------------
# time rescaling


class TimeRescaling(NamedTuple):
    """Time-rescaling goodness of fit (Brown et al. 2002).

    Attributes:
        intervals: ``(n,)`` rescaled intervals z_k, Exp(1) under a correct model.
        uniform: ``(n,)`` sorted u_(k) = 1 − exp(−z), Uniform(0, 1) under the model.
        expected: ``(n,)`` model quantiles b_k = (k − ½)/n to plot u_(k) against.
        ks: Kolmogorov–Smirnov statistic max_k max(k/n − u_(k), u_(k) − (k − 1)/n).
        band: 1.36/sqrt(n), the 95 % half-width: the model passes when ks < band.
        pvalue: exact two-sided KS p-value (scipy ``kstwo``).
    """

    intervals: np.ndarray
    uniform: np.ndarray
    expected: np.ndarray
    ks: float
    band: float
    pvalue: float


def _rescale(spikes: np.ndarray, q: np.ndarray, key) -> TimeRescaling:
    """Rescaled intervals from spikes and per-bin integrated intensities q = −log(1 − p)."""
    fired = np.moveaxis(spikes > 0, -1, 0).reshape(-1)
    q = np.moveaxis(q, -1, 0).reshape(-1)
    if key is None:
        spike_mass = q
    else:
        r = np.asarray(jax.random.uniform(key, q.shape, minval=1e-12), np.float64)
        spike_mass = -np.log1p(-r * -np.expm1(-q))
    before = np.cumsum(q) - q
    at_spike = np.where(fired, before + spike_mass, 0.0)
    start = np.maximum.accumulate(np.where(fired, before + q, 0.0))
    start = np.concatenate([[0.0], start[:-1]])
    z = (at_spike - start)[fired]
    n = z.size
    if n == 0:
        raise ValueError("spikes contain no spike: nothing to rescale")
    u = np.sort(-np.expm1(-z))
    k = np.arange(1, n + 1)
    ks = float(max(np.max(k / n - u), np.max(u - (k - 1) / n)))
    return TimeRescaling(
        intervals=z,
        uniform=u,
        expected=(k - 0.5) / n,
        ks=ks,
        band=1.36 / math.sqrt(n),
        pvalue=float(scipy.stats.kstwo.sf(ks, n)),
    )


def time_rescaling(spikes, p, *, key=None) -> TimeRescaling:
    """Time-rescaling goodness of fit of per-bin conditional spike probabilities.

    With q_t = −log(1 − p_t) the integrated intensity of bin t, the interval ending at spike t_k
    (from the previous spike t_{k−1}, or from the start of the trial) rescales to

        z_k = Σ_{t_{k−1} < t <= t_k} q_t           (Brown et al. 2002)

    which is Exp(1) when p is the true conditional probability, so u = 1 − e^{−z} is uniform and
    the sorted u_(k) lie within ±1.36/sqrt(n) of (k − ½)/n with 95 % probability. In discrete time
    z is discrete, which alone fails the KS test once n p is large; with ``key`` the spike bin's
    term is randomised to ξ = −log(1 − r(1 − e^{−q_{t_k}})), r ~ U(0, 1), which makes z exactly
    Exp(1) (Haslinger, Pipa & Brown 2010, Neural Comput. 22:2477). All trains (trials and
    neurons) are pooled by concatenating them in rescaled time: each is a unit-rate Poisson
    process under the model, so their concatenation is one, and an interval may span the end of
    one train and the start of the next. Only the interval after the very last spike is censored
    and dropped (dropping one per short train instead would bias z towards short intervals).
    Slice the arrays to test one neuron.

    Args:
        spikes: binary ``(..., T, N)``.
        p: ``(..., T, N)`` conditional spike probabilities in [0, 1), the same shape.
        key: optional PRNG key for the discrete-time correction.

    Returns:
        :class:`TimeRescaling`.

    Raises:
        ValueError: non-binary or empty spikes, p of another shape, non-finite or outside
            [0, 1), or no spikes at all.
        TypeError: a key that is not a PRNG key (e.g. an int seed), complex p.
    """
    key = None if key is None else _checks.prng_key(key, "key")
    spikes = _checks.spike_array(spikes, "spikes")
    _checks.nonempty(spikes, "spikes")
    spikes = np.asarray(spikes)
    p = np.asarray(_checks.real_array(p, "p", min_ndim=2), np.float64)
    if p.shape != spikes.shape:
        raise ValueError(f"p must have the shape of spikes {spikes.shape}, got {p.shape}")
    if np.any(p < 0) or np.any(p >= 1):
        raise ValueError(f"p must lie in [0, 1), found values in [{p.min()}, {p.max()}]")
    return _rescale(spikes, -np.log1p(-p), key)


def time_rescaling_glm(spec, params, spikes, inputs=None, *, key=None) -> TimeRescaling:
    """:func:`time_rescaling` of a GLM network: p = σ(u) with u = ``probsnn.potentials``.

    q = −log(1 − σ(u)) = softplus(u) is computed from the potentials directly (no rounding of p
    to 1). Arguments as :func:`probsnn.glm.potentials`; raises as it and :func:`time_rescaling`.
    """
    key = None if key is None else _checks.prng_key(key, "key")
    u = potentials(spec, params, spikes, inputs)
    q = np.asarray(jax.nn.softplus(u), np.float64)
    return _rescale(np.asarray(spikes), q, key)
