"""Spike generators and neural codes: analog values in, spike trains out, and back.

Binned spike arrays have shape ``(..., T, N)`` (trials/batch leading, time, neurons) and dtype
bool. Continuous-time spike trains are :class:`EventTimes`: sorted times padded with ``+inf`` to a
static length, so that everything here is jit-able and batched. Every random function takes an
explicit PRNG key first.

Generators (docs/theory.md §9; Heeger 2000; Lewis & Shedler 1979):

* binned Poisson: s_t ~ Bernoulli(p_t), p_t = 1 − exp(−λ(t) Δ);
* continuous-time Poisson: intervals Exp(λ); inhomogeneous λ(t) ≤ λ_max by thinning;
* an absolute refractory period (dead time) d: no two spikes of a train closer than d; λ is then
  the intensity outside the dead time, so the mean rate is λ / (1 + λ d).

Codes for values x ∈ [0, 1] of shape ``(..., F)`` (flatten images first:
``images.reshape(n, -1)``): rate, time to first spike (linear or logarithmic latency), phase
relative to an oscillation, a Gaussian-tuned population, and population synchrony. Each encoder has
a decoder that inverts it within the code's resolution.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from probsnn import _checks

_MAX_THRESHOLD = 4294967040.0  # the largest float32 below 2**32


class EventTimes(NamedTuple):
    """Continuous-time spike trains in a static-shape layout.

    Attributes:
        times: ``(..., max_spikes)`` spike times in seconds, sorted, padded with ``+inf``.
        counts: ``(...)`` int32, the number of finite entries of each train.
        overflow: ``(...)`` bool, True where ``max_spikes`` was too small to hold the train up to
            ``duration`` (the public generators raise instead when called outside ``jax.jit``).
    """

    times: jax.Array
    counts: jax.Array
    overflow: jax.Array


# ---------------------------------------------------------------------------------------------
# validation helpers


def _shape(shape, name: str, min_ndim: int) -> tuple[int, ...]:
    if not isinstance(shape, tuple | list) or not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1 for n in shape
    ):
        raise TypeError(f"{name} must be a tuple of positive integers, got {shape!r}")
    if len(shape) < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} entries, got {tuple(shape)}")
    return tuple(int(n) for n in shape)


def _rates(rate, name: str, shape: tuple[int, ...]):
    rate = _checks.real_array(rate, name, min_ndim=0)
    try:
        broadcast = np.broadcast_shapes(rate.shape, shape)
    except ValueError:
        broadcast = None
    if broadcast != shape:
        raise ValueError(f"{name} of shape {rate.shape} does not broadcast to shape {shape}")
    if _checks.is_concrete(rate) and np.any(np.asarray(rate) < 0):
        raise ValueError(f"{name} must be >= 0 (spikes per second), found {np.min(rate)}")
    if _checks.is_concrete(rate):  # stays concrete under jit, so "auto" can see its values
        return np.asarray(rate, np.float32)
    return jnp.asarray(rate, jnp.float32)


def _nonnegative(value, name: str) -> float:
    if isinstance(value, bool) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def _unit_values(values, name: str = "values"):
    values = _checks.real_array(values, name, min_ndim=1)
    _checks.nonempty(values, name)
    if _checks.is_concrete(values):
        array = np.asarray(values)
        if np.any((array < 0) | (array > 1)):
            raise ValueError(
                f"{name} must lie in [0, 1], found values in [{array.min()}, {array.max()}]"
            )
    return jnp.asarray(values, jnp.float32)


def _spikes(spikes, name: str = "spikes"):
    """Binary spikes ``(..., T, F)`` with at least one bin, feature and trial."""
    spikes = _checks.spike_array(spikes, name)
    _checks.nonempty(spikes, name)
    return spikes


def _dead_bins(refractory: float, dt: float) -> int:
    """Silent bins after a spike so that intervals are >= refractory: ceil(d / Δ) − 1."""
    return max(math.ceil(refractory / dt - 1e-9) - 1, 0)


# ---------------------------------------------------------------------------------------------
# binned Poisson


def spike_probability(rate, dt):
    """p = 1 − exp(−λ Δ): the chance of at least one Poisson event in a bin of width Δ."""
    return -jnp.expm1(-jnp.asarray(rate, jnp.float32) * dt)


def _bits(key, shape):
    """Uniform uint32 words: Threefry-2x32 (Salmon et al. 2011) over a flat counter 0..n−1.

    For threefry keys this is the cipher applied directly, which on CPU runs ~3x faster than
    ``jax.random.bits`` with partitionable (per-index) counters; other key types use the latter.
    """
    size = math.prod(shape)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else key
    if data.shape != (2,) or size >= 2**32:
        return jax.random.bits(key, shape, jnp.uint32)
    counter = jax.lax.iota(jnp.uint32, size)
    return threefry_2x32(data, counter).reshape(shape)


@partial(jax.jit, static_argnames=("shape", "dt", "dead"))
def _bernoulli(key, rate, dt, shape, dead):
    p = spike_probability(rate, dt)
    threshold = jnp.minimum(jnp.floor(p * 2.0**32), _MAX_THRESHOLD).astype(jnp.uint32)
    bits = _bits(key, shape)
    if dead == 0:
        return bits < threshold
    threshold = jnp.broadcast_to(threshold, shape)

    def step(countdown, inputs):
        bits_t, threshold_t = inputs
        spike = (bits_t < threshold_t) & (countdown == 0)
        return jnp.where(spike, dead, jnp.maximum(countdown - 1, 0)), spike

    time_first = (jnp.moveaxis(bits, -2, 0), jnp.moveaxis(threshold, -2, 0))
    countdown = jnp.zeros(shape[:-2] + shape[-1:], jnp.int32)
    _, spikes = jax.lax.scan(step, countdown, time_first)
    return jnp.moveaxis(spikes, 0, -2)


@partial(jax.jit, static_argnames=("shape", "dt", "dead", "capacity"))
def _geometric(key, rate, dt, shape, dead, capacity):
    """Time-constant rates: place spikes by geometric gaps, O(spikes) random numbers."""
    *lead, n_steps, n_neurons = shape
    rate = jnp.broadcast_to(rate, (*lead, 1, n_neurons)).reshape(-1)
    log_q = jnp.log1p(-spike_probability(rate, dt))[:, None]
    train = jnp.arange(rate.shape[0])
    first_bin = (train // n_neurons * n_steps)[:, None]
    neuron = (train % n_neurons)[:, None]
    size = rate.shape[0] * n_steps

    def saturating_sum(a, b):
        return jnp.minimum(a + b, n_steps)

    def more(state):
        return jnp.any(state[1] < n_steps)

    def chunk(state):
        out, last, key = state
        key, sub = jax.random.split(key)
        u = jax.random.uniform(sub, (rate.shape[0], capacity), minval=jnp.finfo(jnp.float32).tiny)
        gaps = jnp.minimum(jnp.floor(jnp.log(u) / log_q) + 1, n_steps + 1).astype(jnp.int32)
        steps = (gaps + dead).at[:, 0].add(jnp.minimum(last, n_steps))
        # a scan of saturating sums: no int32 overflow, and faster than XLA's CPU cumsum
        position = jax.lax.associative_scan(saturating_sum, steps, axis=1)
        inside = position < n_steps
        flat = (first_bin + jnp.minimum(position, n_steps - 1)) * n_neurons + neuron
        out = out.at[jnp.where(inside, flat, size).ravel()].set(True, mode="drop")
        return out, position[:, -1], key

    start = (jnp.zeros(size, jnp.bool_), jnp.full(rate.shape[0], -1 - dead, jnp.int32), key)
    return jax.lax.while_loop(more, chunk, start)[0].reshape(shape)


def _sparse_capacity(rate, dt, shape, dead) -> int | None:
    """Gaps drawn per train and chunk, or None when the geometric sampler does not apply."""
    n_steps = shape[-2]
    constant_in_time = rate.ndim < 2 or rate.shape[-2] == 1
    if not (constant_in_time and _checks.is_concrete(rate)):
        return None
    p_max = float(-np.expm1(-np.max(rate, initial=0.0) * dt))
    capacity = min(_default_capacity(n_steps * p_max), n_steps)
    fits_int32 = 2 * n_steps + 2 + dead < 2**31 and math.prod(shape) < 2**31
    return capacity if fits_int32 else None


def _one_train(rate, shape, dead) -> tuple[int, int] | None:
    """The shape ``(size, 1)`` of all bins as one train when every bin has the same rate and
    there is no dead time (i.i.d. Bernoulli bins in any order), else None."""
    if dead or not _checks.is_concrete(rate) or math.prod(shape) == 0:
        return None
    values = np.asarray(rate)
    if values.size and not np.all(values == values.flat[0]):
        return None
    return (math.prod(shape), 1)


def poisson_spikes(key, rate, dt, shape, *, refractory=0.0, method="auto"):
    """Binned (inhomogeneous) Poisson spikes: s ~ Bernoulli(1 − exp(−λ Δ)) independently per bin.

    Two exact samplers (to float32 resolution of the uniforms):

    * ``"dense"``: one 32-bit Threefry word per bin compared with p as an integer threshold; with a
      dead time, a ``lax.scan`` over bins carries each train's refractory countdown.
    * ``"sparse"``: for rates constant in time, the gaps between spikes are drawn directly,
      K = n_dead + 1 + floor(log U / log(1 − p)) (geometric), so the work grows with the number
      of spikes, not of bins; chunks of gaps are drawn in a ``lax.while_loop`` until every train
      passes T (nothing is truncated). When every bin has the same rate and there is no dead
      time, all bins are i.i.d. and are drawn as one train of ``prod(shape)`` bins (row-major),
      so a short chunk of many neurons costs its spikes, not one capacity per neuron.
    * ``"auto"``: ``"sparse"`` when it applies (rate concrete and constant along time) and the
      expected spikes fill at most 1/8 of the bins, else ``"dense"``.

    Args:
        key: PRNG key.
        rate: λ in spikes/s, broadcastable to ``shape`` (a scalar, ``(N,)``, ``(T, N)``, ...).
        dt: bin width Δ in seconds.
        shape: output shape ``(..., T, N)``.
        refractory: absolute refractory period d in seconds; after a spike the next
            n_dead = ceil(d/Δ) − 1 bins are silent, so intervals are >= d. λ is the intensity
            outside it: the mean interval is n_dead + 1/p bins.
        method: ``"auto"``, ``"dense"`` or ``"sparse"`` (the same law, different draws).

    Returns:
        bool ``shape``.

    Raises:
        ValueError: negative or non-finite rates, a rate that does not broadcast to ``shape``,
            dt <= 0, refractory < 0, an unknown method, ``"sparse"`` for a time-varying or
            traced rate, or a shape too large to allocate.
        TypeError: a key that is not a PRNG key (pass ``jax.random.key(0)``), complex rates.

    Reference: Heeger (2000), "Poisson model of spike generation".
    """
    key = _checks.prng_key(key, "key")
    shape = _shape(shape, "shape", 2)
    _checks.allocation(math.prod(shape), f"the spikes of shape {shape}")
    dt = _checks.positive_float(dt, "dt")
    dead = _dead_bins(_nonnegative(refractory, "refractory"), dt)
    rate = _rates(rate, "rate", shape)
    method = _checks.option(method, "method", ("auto", "dense", "sparse"))
    trains = shape if method == "dense" else (_one_train(rate, shape, dead) or shape)
    if trains != shape:
        rate = np.asarray(rate).reshape(-1)[:1].reshape(1, 1)
    capacity = None if method == "dense" else _sparse_capacity(rate, dt, trains, dead)
    if method == "sparse" and capacity is None:
        raise ValueError(
            "method='sparse' needs a concrete rate that is constant along time (shape[-2] == 1)"
        )
    if capacity is not None and (method == "sparse" or capacity <= trains[-2] // 8):
        return _geometric(key, rate, dt, trains, dead, capacity).reshape(shape)
    return _bernoulli(key, rate, dt, shape, dead)


# ---------------------------------------------------------------------------------------------
# continuous time


def _default_capacity(expected: float) -> int:
    """Room for a Poisson count: mean + 10 sd + 10 (exceeded with probability < 1e-20)."""
    return math.ceil(expected + 10.0 * math.sqrt(expected) + 10.0)


def _events(times, duration) -> EventTimes:
    inside = times < duration
    return EventTimes(
        times=jnp.where(inside, times, jnp.inf),
        counts=jnp.sum(inside, axis=-1, dtype=jnp.int32),
        overflow=inside[..., -1],
    )


def _raise_on_overflow(overflow, name: str, duration: float) -> None:
    if _checks.is_concrete(overflow) and bool(jnp.any(overflow)):
        raise ValueError(f"{name} is too small: some trains did not reach duration={duration}")


def _exponential_times(key, rate, refractory, shape, max_spikes):
    draws = jax.random.exponential(key, (*shape, max_spikes))
    intervals = draws / rate[..., None]
    intervals = intervals.at[..., 1:].add(refractory)
    return jnp.cumsum(intervals, axis=-1)


@partial(jax.jit, static_argnames=("duration", "refractory", "shape", "max_spikes"))
def _poisson_times(key, rate, duration, refractory, shape, max_spikes):
    rate = jnp.broadcast_to(rate, shape)
    return _events(_exponential_times(key, rate, refractory, shape, max_spikes), duration)


def poisson_times(key, rate, duration, *, shape=(), max_spikes=None, refractory=0.0) -> EventTimes:
    """Homogeneous Poisson (or dead-time) spike times on [0, duration) from exponential intervals.

    Intervals are d + Exp(λ) (the first one Exp(λ)); with d = 0 this is a Poisson process.

    Args:
        key: PRNG key.
        rate: λ in spikes/s, broadcastable to ``shape``.
        duration: length of the trains in seconds.
        shape: leading shape of the trains, e.g. ``(trials, N)``.
        max_spikes: static capacity per train; default mean + 10 sd + 10 of the largest rate.
        refractory: dead time d in seconds.

    Returns:
        :class:`EventTimes` with ``times`` of shape ``(*shape, max_spikes)``.

    Raises:
        ValueError: negative or non-finite rate, a rate not broadcasting to ``shape``, duration <=
            0, a traced rate without ``max_spikes``, a capacity too small (outside jit) or too
            large to allocate.
        TypeError: a key that is not a PRNG key.
    """
    key = _checks.prng_key(key, "key")
    shape = _shape(shape, "shape", 0)
    duration = _checks.positive_float(duration, "duration")
    refractory = _nonnegative(refractory, "refractory")
    rate = _rates(rate, "rate", shape)
    if max_spikes is None:
        if not _checks.is_concrete(rate):
            raise ValueError("max_spikes is required when rate is traced (inside jax.jit)")
        max_spikes = _default_capacity(float(np.max(rate, initial=0.0)) * duration)
    max_spikes = _checks.positive_int(max_spikes, "max_spikes")
    _checks.allocation(math.prod(shape) * max_spikes, f"the spike times {(*shape, max_spikes)}")
    result = _poisson_times(key, rate, duration, refractory, shape, max_spikes)
    _raise_on_overflow(result.overflow, "max_spikes", duration)
    return result


@partial(
    jax.jit,
    static_argnames=("rate_fn", "rate_max", "duration", "shape", "max_candidates", "refractory"),
)
def _thinned(key, rate_fn, rate_max, duration, shape, max_candidates, refractory):
    key_times, key_keep = jax.random.split(key)
    rate = jnp.full(shape, rate_max, jnp.float32)
    candidates = _exponential_times(key_times, rate, 0.0, shape, max_candidates)
    rates = rate_fn(candidates)
    if rates.shape != candidates.shape:
        raise ValueError(
            f"rate_fn must map times of shape {candidates.shape} to rates of the same shape, "
            f"got {rates.shape}"
        )
    inside = candidates < duration
    bounds = (jnp.min(rates, where=inside, initial=0.0), jnp.max(rates, where=inside, initial=0.0))
    keep = jax.random.uniform(key_keep, candidates.shape) * rate_max < rates
    if refractory > 0:
        keep = _dead_time_filter(candidates, keep, refractory)
    result = _events(jnp.sort(jnp.where(keep, candidates, jnp.inf), axis=-1), duration)
    return result._replace(overflow=inside[..., -1]), bounds


def thinned_times(
    key, rate_fn, rate_max, duration, *, shape=(), max_candidates=None, refractory=0.0
) -> EventTimes:
    """Inhomogeneous Poisson (or dead-time) spike times by thinning (Lewis & Shedler 1979).

    Candidates come from a homogeneous process of rate λ_max; a candidate at t is kept with
    probability λ(t)/λ_max (and, with a dead time d, only if it lies >= d after the last kept
    spike, a scan over candidates).

    Args:
        key: PRNG key.
        rate_fn: jax-traceable, hashable λ(t) (a function; it is a static argument of the
            compiled sampler): maps candidate times ``(*shape, M)`` to rates of that shape.
        rate_max: λ_max >= λ(t) for all t, a positive number.
        duration: seconds.
        shape: leading shape of the trains.
        max_candidates: static candidate capacity M; default mean + 10 sd + 10 of λ_max·duration.
        refractory: dead time d in seconds.

    Returns:
        :class:`EventTimes` with ``times`` of shape ``(*shape, M)``; ``overflow`` flags trains
        whose candidates ended before ``duration``.

    Raises:
        ValueError: rate_fn negative or above rate_max at a candidate, or a capacity too small
            (both checked outside jit), bad duration/refractory/rate_max, a capacity too large
            to allocate.
        TypeError: a key that is not a PRNG key, a rate_fn that is not callable.
    """
    key = _checks.prng_key(key, "key")
    if not callable(rate_fn):
        raise TypeError(f"rate_fn must be a function of time, got {type(rate_fn).__name__}")
    shape = _shape(shape, "shape", 0)
    duration = _checks.positive_float(duration, "duration")
    rate_max = _checks.positive_float(rate_max, "rate_max")
    refractory = _nonnegative(refractory, "refractory")
    if max_candidates is None:
        max_candidates = _default_capacity(rate_max * duration)
    max_candidates = _checks.positive_int(max_candidates, "max_candidates")
    _checks.allocation(
        math.prod(shape) * max_candidates, f"the candidate times {(*shape, max_candidates)}"
    )
    result, (low, high) = _thinned(
        key, rate_fn, rate_max, duration, shape, max_candidates, refractory
    )
    if _checks.is_concrete(low) and (float(low) < 0 or float(high) > rate_max * (1 + 1e-6)):
        raise ValueError(
            f"rate_fn must stay in [0, rate_max={rate_max}], found values in "
            f"[{float(low)}, {float(high)}]"
        )
    _raise_on_overflow(result.overflow, "max_candidates", duration)
    return result


def _dead_time_filter(candidates, keep, refractory):
    def step(last, inputs):
        t, k = inputs
        accept = k & (t - last >= refractory)
        return jnp.where(accept, t, last), accept

    start = jnp.full(candidates.shape[:-1], -jnp.inf, candidates.dtype)
    inputs = (jnp.moveaxis(candidates, -1, 0), jnp.moveaxis(keep, -1, 0))
    _, accepted = jax.lax.scan(step, start, inputs)
    return jnp.moveaxis(accepted, 0, -1)


# ---------------------------------------------------------------------------------------------
# rate code


def rate_encode(key, values, n_steps, *, dt, max_rate, min_rate=0.0):
    """Rate code: value x drives a Poisson train of rate λ = λ_min + (λ_max − λ_min) x.

    Args:
        key: PRNG key.
        values: ``(..., F)`` in [0, 1] (images: flatten to ``(n, H*W)``).
        n_steps: T bins.
        dt: bin width in seconds.
        max_rate, min_rate: λ_max > λ_min >= 0 in spikes/s.

    Returns:
        bool ``(..., T, F)``.

    Raises:
        ValueError: values outside [0, 1], non-finite or empty, bad rates, n_steps < 1.
        TypeError: a key that is not a PRNG key, complex values.
    """
    key = _checks.prng_key(key, "key")
    values = _unit_values(values)
    n_steps = _checks.positive_int(n_steps, "n_steps")
    low, high = _rate_range(min_rate, max_rate)
    rate = low + (high - low) * values[..., None, :]
    return poisson_spikes(key, rate, dt, (*values.shape[:-1], n_steps, values.shape[-1]))


def rate_decode(spikes, *, dt, max_rate, min_rate=0.0):
    """Invert :func:`rate_encode` by maximum likelihood from the spike counts c over T bins.

    λ̂ = −log(1 − c/T)/Δ and x̂ = (λ̂ − λ_min)/(λ_max − λ_min); its sampling sd is
    sqrt(p(1 − p)/T) / (dp/dx) (binomial counts). Estimates are not clipped to [0, 1]; c = T gives
    inf.

    Args:
        spikes: binary ``(..., T, F)``.

    Returns:
        float32 ``(..., F)``.

    Raises:
        ValueError: non-binary or empty spikes (no bins, features or trials), bad dt or rates.
    """
    spikes = _spikes(spikes)
    dt = _checks.positive_float(dt, "dt")
    low, high = _rate_range(min_rate, max_rate)
    return _rate_decode(spikes, dt, low, high)


@partial(jax.jit, static_argnames=("dt", "low", "high"))
def _rate_decode(spikes, dt, low, high):
    fraction = jnp.mean(jnp.asarray(spikes, jnp.float32), axis=-2)
    rate = -jnp.log1p(-fraction) / dt
    return (rate - low) / (high - low)


def _rate_range(min_rate, max_rate) -> tuple[float, float]:
    low = _nonnegative(min_rate, "min_rate")
    high = _checks.positive_float(max_rate, "max_rate")
    if high <= low:
        raise ValueError(f"max_rate must exceed min_rate, got {high} <= {low}")
    return low, high


# ---------------------------------------------------------------------------------------------
# time-to-first-spike (latency) code


def _latency_params(code, tau, threshold):
    if _checks.option(code, "code", ("linear", "log")) == "linear":
        return None, None
    tau = _checks.positive_float(tau, "tau")
    threshold = _checks.positive_float(threshold, "threshold")
    if threshold >= 1:
        raise ValueError(f"threshold must be < 1 for the log code, got {threshold}")
    return tau, threshold


def latency_encode(values, n_steps, *, dt, code="linear", tau=None, threshold=None):
    """Time-to-first-spike code: one spike per feature, earlier for larger values.

    * ``"linear"``: latency t = (1 − x)(T − 1)Δ; every value spikes.
    * ``"log"``: the charging time of an RC membrane driven by x to a threshold θ,
      t = τ log(x / (x − θ)) for x > θ (Gerstner & Kistler 2002, ch. 4); x <= θ, or a latency
      beyond the window, gives no spike.

    The spike lands in bin round(t/Δ), so the resolution is half a bin in time.

    Args:
        values: ``(..., F)`` in [0, 1].
        n_steps: T bins; dt: bin width (s); tau, threshold: τ (s) and θ ∈ (0, 1) for ``"log"``.

    Returns:
        bool ``(..., T, F)`` with at most one spike per feature.

    Raises:
        ValueError: values outside [0, 1], an unknown code, or missing/bad tau and threshold.
    """
    values = _unit_values(values)
    n_steps = _checks.positive_int(n_steps, "n_steps")
    _checks.allocation(values.size * n_steps, "the spikes (..., n_steps, F)")
    dt = _checks.positive_float(dt, "dt")
    tau, threshold = _latency_params(code, tau, threshold)
    return _latency_encode(values, n_steps, dt, tau, threshold)


@partial(jax.jit, static_argnames=("n_steps", "dt", "tau", "threshold"))
def _latency_encode(values, n_steps, dt, tau, threshold):
    if tau is None:
        bins = jnp.round((1.0 - values) * (n_steps - 1))
    else:
        above = values > threshold
        safe = jnp.where(above, values, 1.0)
        latency = tau * jnp.log(safe / (safe - threshold))
        bins = jnp.where(above, jnp.round(latency / dt), n_steps)
    steps = jnp.arange(n_steps, dtype=jnp.float32)[:, None]
    return steps == bins[..., None, :]


def latency_decode(spikes, *, dt, code="linear", tau=None, threshold=None):
    """Invert :func:`latency_encode` from the first spike time t of each feature.

    ``"linear"``: x̂ = 1 − t/((T − 1)Δ); ``"log"``: x̂ = min(1, θ / (1 − exp(−t/τ))).
    Features without a spike decode to 0 (below threshold).

    Args:
        spikes: binary ``(..., T, F)``.

    Returns:
        float32 ``(..., F)``.
    """
    spikes = _spikes(spikes)
    dt = _checks.positive_float(dt, "dt")
    tau, threshold = _latency_params(code, tau, threshold)
    return _latency_decode(spikes, dt, tau, threshold)


@partial(jax.jit, static_argnames=("dt", "tau", "threshold"))
def _latency_decode(spikes, dt, tau, threshold):
    n_steps = spikes.shape[-2]
    active = jnp.asarray(spikes, bool)
    first = jnp.argmax(active, axis=-2).astype(jnp.float32)
    fired = jnp.any(active, axis=-2)
    if tau is None:
        decoded = 1.0 - first / max(n_steps - 1, 1)
    else:
        decoded = jnp.minimum(threshold / -jnp.expm1(-first * dt / tau), 1.0)
    return jnp.where(fired, decoded, 0.0)


# ---------------------------------------------------------------------------------------------
# phase code


def phase_encode(values, n_steps, *, period):
    """Phase-of-firing code: one spike per cycle of an oscillation cos(2π t / P) (P bins).

    A value x fires at phase φ(x) = 2π k / P with k = round((1 − x)(P − 1)): in every cycle, at
    bin c·P + k (larger values earlier in the cycle; cf. Hopfield 1995, Nature 376:33).

    Args:
        values: ``(..., F)`` in [0, 1].
        n_steps: T bins; period: P >= 2 bins per cycle.

    Returns:
        bool ``(..., T, F)``.
    """
    values = _unit_values(values)
    n_steps = _checks.positive_int(n_steps, "n_steps")
    _checks.allocation(values.size * n_steps, "the spikes (..., n_steps, F)")
    period = _checks.positive_int(period, "period", minimum=2)
    return _phase_encode(values, n_steps, period)


@partial(jax.jit, static_argnames=("n_steps", "period"))
def _phase_encode(values, n_steps, period):
    k = jnp.round((1.0 - values) * (period - 1))
    phase_bin = (jnp.arange(n_steps) % period).astype(jnp.float32)[:, None]
    return phase_bin == k[..., None, :]


def phase_decode(spikes, *, period):
    """Invert :func:`phase_encode` from the circular mean phase of each feature's spikes.

    φ̄ = arg Σ_t s_t exp(2πi t/P); k̂ = φ̄ P/(2π) (taken in [−½, P − ½)); x̂ = 1 − k̂/(P − 1).
    Features without a spike decode to 0.

    Returns:
        float32 ``(..., F)``.
    """
    spikes = _spikes(spikes)
    period = _checks.positive_int(period, "period", minimum=2)
    return _phase_decode(spikes, period)


@partial(jax.jit, static_argnames=("period",))
def _phase_decode(spikes, period):
    angle = 2.0 * jnp.pi * (jnp.arange(spikes.shape[-2]) % period) / period
    weights = jnp.asarray(spikes, jnp.float32)
    x = jnp.einsum("...tf,t->...f", weights, jnp.cos(angle))
    y = jnp.einsum("...tf,t->...f", weights, jnp.sin(angle))
    mean_bin = jnp.arctan2(y, x) * period / (2.0 * jnp.pi)
    mean_bin = jnp.mod(mean_bin + 0.5, period) - 0.5
    fired = jnp.any(jnp.asarray(spikes, bool), axis=-2)
    return jnp.where(fired, 1.0 - mean_bin / (period - 1), 0.0)


# ---------------------------------------------------------------------------------------------
# population (tuning-curve) code


def tuning_rates(values, n_neurons, *, max_rate, min_rate=0.0, width=None):
    """Gaussian tuning curves: λ_m(x) = λ_min + (λ_max − λ_min) exp(−(x − μ_m)² / (2 w²)).

    Preferred values μ_m = m/(M − 1), m = 0..M−1; default width w = 1/(M − 1).

    Returns:
        float32 ``(..., F, M)`` rates in spikes/s.

    Raises:
        TypeError: complex or non-numeric values. ValueError: non-finite values, M < 2, bad
            rates or width.
    """
    values = _checks.real_array(values, "values", min_ndim=0)
    n_neurons = _checks.positive_int(n_neurons, "n_neurons", minimum=2)
    low, high = _rate_range(min_rate, max_rate)
    width = 1.0 / (n_neurons - 1) if width is None else _checks.positive_float(width, "width")
    return _tuning_rates(values, n_neurons, low, high, width)


@partial(jax.jit, static_argnames=("n_neurons", "low", "high", "width"))
def _tuning_rates(values, n_neurons, low, high, width):
    centres = jnp.linspace(0.0, 1.0, n_neurons)
    distance = jnp.asarray(values, jnp.float32)[..., None] - centres
    return low + (high - low) * jnp.exp(-0.5 * (distance / width) ** 2)


def population_encode(key, values, n_steps, n_neurons, *, dt, max_rate, min_rate=0.0, width=None):
    """Population code: each feature drives M Poisson neurons with Gaussian tuning curves.

    Args:
        values: ``(..., F)`` in [0, 1]; n_steps: T; n_neurons: M >= 2 per feature;
        dt, max_rate, min_rate, width: see :func:`tuning_rates`.

    Returns:
        bool ``(..., T, F·M)``, neuron f·M + m coding feature f with preferred value μ_m
        (Pouget, Dayan & Zemel 2000, Nat. Rev. Neurosci. 1:125).

    Raises:
        TypeError: a key that is not a PRNG key. ValueError: as :func:`rate_encode`.
    """
    key = _checks.prng_key(key, "key")
    values = _unit_values(values)
    n_steps = _checks.positive_int(n_steps, "n_steps")
    rates = tuning_rates(values, n_neurons, max_rate=max_rate, min_rate=min_rate, width=width)
    rates = rates.reshape(*values.shape[:-1], 1, -1)
    shape = (*values.shape[:-1], n_steps, rates.shape[-1])
    return poisson_spikes(key, rates, dt, shape)


def population_decode(spikes, n_neurons, *, dt, max_rate, min_rate=0.0, width=None, n_grid=1001):
    """Maximum-likelihood decoder of :func:`population_encode` on a grid of ``n_grid`` values.

    x̂ = argmax_x Σ_m [c_m log p_m(x) + (T − c_m) log(1 − p_m(x))], p_m = 1 − exp(−λ_m(x)Δ),
    with c_m the count of neuron m over T bins. Its error approaches the Cramér–Rao bound
    1/sqrt(T Σ_m p_m'² / (p_m (1 − p_m))); the grid adds at most 1/(2(n_grid − 1)).

    Args:
        spikes: binary ``(..., T, F·M)``.

    Returns:
        float32 ``(..., F)``.

    Raises:
        ValueError: a neuron axis that is not a multiple of ``n_neurons``.
    """
    spikes = _spikes(spikes)
    dt = _checks.positive_float(dt, "dt")
    n_grid = _checks.positive_int(n_grid, "n_grid", minimum=2)
    _checks.allocation(n_grid * spikes.shape[-1], "the decoding grid (n_grid, F·M)")
    n_neurons = _group_size(spikes, n_neurons)
    grid = np.linspace(0.0, 1.0, n_grid)
    rates = tuning_rates(grid, n_neurons, max_rate=max_rate, min_rate=min_rate, width=width)
    return _population_decode(spikes, n_neurons, spike_probability(rates, dt), grid)


@partial(jax.jit, static_argnames=("n_neurons",))
def _population_decode(spikes, n_neurons, p, grid):
    counts = jnp.sum(jnp.asarray(spikes, jnp.float32), axis=-2)
    counts = counts.reshape(*counts.shape[:-1], -1, n_neurons)
    n_steps = spikes.shape[-2]
    log_lik = jnp.einsum("...fm,gm->...fg", counts, jax.scipy.special.xlogy(1.0, p)) + jnp.einsum(
        "...fm,gm->...fg", n_steps - counts, jnp.log1p(-p)
    )
    return grid[jnp.argmax(log_lik, axis=-1)]


def _group_size(spikes, n_neurons) -> int:
    n_neurons = _checks.positive_int(n_neurons, "n_neurons", minimum=2)
    if spikes.shape[-1] % n_neurons:
        raise ValueError(
            f"spikes must have a multiple of n_neurons={n_neurons} neurons, got {spikes.shape[-1]}"
        )
    return n_neurons


# ---------------------------------------------------------------------------------------------
# synchrony code


def synchrony_encode(key, values, n_steps, n_neurons, *, dt, rate):
    """Synchrony code: x sets the pairwise correlation of M Poisson neurons at a fixed rate.

    A multiple-interaction process (Kuhn, Aertsen & Rotter 2003, Neural Comput. 15:67) in bins:
    a shared "mother" train fires with probability p/c per bin and each of the M neurons copies
    each mother spike with probability c = p + (1 − p) x, where p = 1 − exp(−λΔ). Every neuron is
    then Bernoulli(p) and the correlation coefficient of any two neurons' bins is exactly x.

    Args:
        values: ``(..., F)`` in [0, 1]; n_steps: T; n_neurons: M >= 2 per feature;
        dt: bin width (s); rate: λ (spikes/s) of every neuron.

    Returns:
        bool ``(..., T, F·M)``, neuron f·M + m in group f.

    Raises:
        TypeError: a key that is not a PRNG key. ValueError: values outside [0, 1], non-finite
            or empty, bad sizes or rate, an output too large to allocate.
    """
    key = _checks.prng_key(key, "key")
    values = _unit_values(values)
    n_steps = _checks.positive_int(n_steps, "n_steps")
    n_neurons = _checks.positive_int(n_neurons, "n_neurons", minimum=2)
    _checks.allocation(values.size * n_steps * n_neurons, "the spikes (..., n_steps, F·M)")
    dt = _checks.positive_float(dt, "dt")
    p = float(spike_probability(_checks.positive_float(rate, "rate"), dt))
    return _synchrony_encode(key, values, n_steps, n_neurons, p)


@partial(jax.jit, static_argnames=("n_steps", "n_neurons", "p"))
def _synchrony_encode(key, values, n_steps, n_neurons, p):
    copy = p + (1.0 - p) * values
    lead = values.shape[:-1]
    key_mother, key_copy = jax.random.split(key)
    mother = jax.random.uniform(key_mother, (*lead, n_steps, values.shape[-1])) < (
        p / copy[..., None, :]
    )
    copies = jax.random.uniform(key_copy, (*lead, n_steps, values.shape[-1], n_neurons))
    spikes = mother[..., None] & (copies < copy[..., None, :, None])
    return spikes.reshape(*lead, n_steps, -1)


def synchrony_decode(spikes, n_neurons):
    """Invert :func:`synchrony_encode` from coincidences within each group of M neurons.

    With K_t the group's spike count in bin t: ĉ = Σ_t K_t(K_t − 1) / ((M − 1) Σ_t K_t) estimates
    the copy probability, p̂ = Σ_t K_t / (T M), and x̂ = (ĉ − p̂)/(1 − p̂). Silent groups decode
    to 0.

    Returns:
        float32 ``(..., F)``.
    """
    spikes = _spikes(spikes)
    return _synchrony_decode(spikes, _group_size(spikes, n_neurons))


@partial(jax.jit, static_argnames=("n_neurons",))
def _synchrony_decode(spikes, n_neurons):
    grouped = jnp.asarray(spikes, jnp.float32).reshape(*spikes.shape[:-1], -1, n_neurons)
    k = jnp.sum(grouped, axis=-1)
    total = jnp.sum(k, axis=-2)
    pairs = jnp.sum(k * (k - 1.0), axis=-2)
    safe = jnp.maximum(total, 1.0)
    copy = pairs / ((n_neurons - 1) * safe)
    p = total / (spikes.shape[-2] * n_neurons)
    return jnp.where(total > 0, (copy - p) / (1.0 - p), 0.0)
