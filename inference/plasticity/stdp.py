"""Spike-timing-dependent plasticity: trace-based pair, triplet and reward-modulated rules.

Pair STDP with Δt = t_post − t_pre (docs/theory.md §8; Bi & Poo 1998; Song, Miller & Abbott
2000):

    Δw = A₊ exp(−Δt/τ₊)   for Δt > 0,        Δw = −A₋ exp(Δt/τ₋)   for Δt < 0,

implemented with a presynaptic trace x (decay τ₊) and a postsynaptic trace y (decay τ₋). In bin t,
with x̃_t = x_{t−1} e^{−Δ/τ₊} and ỹ_t = y_{t−1} e^{−Δ/τ₋} (only spikes of earlier bins),

    Δw_{j,i,t} = A₊ s^{post}_{i,t} x̃_{j,t} − A₋ s^{pre}_{j,t} ỹ_{i,t},

then x_t = x̃_t + s^{pre}_t (all-to-all pairing) or x_t = 1 where s^{pre}_t = 1 (nearest-spike
pairing, symmetric: each spike pairs with the latest earlier spike of the other side; Morrison,
Diesmann & Gerstner 2008), likewise y. Pairs within one bin (Δt = 0) do not contribute.

Weight dependence: additive (A₊, A₋ fixed, optionally clipped to the hard bounds [0, w_max]) or
multiplicative / soft-bounded (A₊ (w_max − w), A₋ w; van Rossum, Bi & Turrigiano 2000) and then
clipped to [0, w_max].

These are **plasticity rules** (docs/learning.md): each is an ``(init, update)`` pair in the
shape of an ``optax.GradientTransformation`` whose "updates" input is the bin's
:class:`STDPSignals` and whose ``params`` is the weight matrix ``w`` ``(N_pre, N_post)``, and it
returns **terminal weight deltas** Δw — already scaled by the amplitudes and, when ``w_max`` is
given, bounded so that w + Δw stays in [0, w_max] — not the gradient of a loss. Apply them
with ``optax.apply_updates(w, Δw)`` (or ``w + Δw``) and nothing else: chaining an optimizer
after them is a mistake. The rules run inside ``lax.scan``.

Time: the STDP layer works in milliseconds, and every time argument carries its unit in its name
(``tau_plus_ms``, ``dt_ms``, ``lags_ms``; lags counted in bins are ``lags_bins``).

Also here: :func:`run_stdp` (a rule over fixed spike trains) and :func:`measure_window` (the
window from simulated pairings). The closed-loop experiment of Song, Miller & Abbott (2000) is
:func:`probsnn.experiments.song_experiment`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks

PAIRINGS = ("all", "nearest")
WEIGHT_DEPENDENCES = ("additive", "multiplicative")


class STDPSignals(NamedTuple):
    """What an STDP rule reads in one bin.

    Attributes:
        pre: ``(N_pre,)`` presynaptic spikes of the bin (0/1).
        post: ``(N_post,)`` postsynaptic spikes of the bin (0/1).
        reward: scalar or ``(N_post,)`` reward signal (read by :func:`reward_stdp` only).
    """

    pre: jax.Array
    post: jax.Array
    reward: jax.Array | None = None


class PairState(NamedTuple):
    """Traces of :func:`pair_stdp`: pre ``(N_pre,)`` (decay τ₊), post ``(N_post,)`` (τ₋)."""

    pre_trace: jax.Array
    post_trace: jax.Array


class TripletState(NamedTuple):
    """Traces of :func:`triplet_stdp`: r₁ (τ₊), r₂ (τ_x) ``(N_pre,)``; o₁ (τ₋), o₂ (τ_y)
    ``(N_post,)``."""

    r1: jax.Array
    r2: jax.Array
    o1: jax.Array
    o2: jax.Array


class RewardState(NamedTuple):
    """State of :func:`reward_stdp`: the pair traces and the eligibility ``(N_pre, N_post)``."""

    traces: PairState
    eligibility: jax.Array


def decay_factor(tau_ms: float, dt_ms: float, name: str) -> float:
    """e^{−Δ/τ} for a time constant ``tau_ms`` and bin width ``dt_ms`` (both ms, > 0).

    Raises:
        ValueError/TypeError: naming ``name`` (or ``dt_ms``) if either is not a positive number.
    """
    tau = _checks.positive_float(tau_ms, name)
    dt = _checks.positive_float(dt_ms, "dt_ms")
    return float(np.exp(-dt / tau))


def _check_amplitude(value, name):
    if isinstance(value, bool) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def _check_choice(value, name, choices):
    return _checks.option(value, name, choices)


def _check_w_max(w_max, required: bool, why: str):
    if w_max is None:
        if required:
            raise ValueError(f"w_max is required for {why}")
        return None
    return _checks.positive_float(w_max, "w_max")


def check_signals(signals: STDPSignals, w) -> None:
    """Validate one bin's spikes (and reward, when given) against ``w`` ``(N_pre, N_post)``:
    shapes always, values when concrete.

    Raises:
        ValueError: if ``pre``/``post`` are not 1-D of length N_pre/N_post or are not binary,
            a reward that is not a scalar or ``(N_post,)`` or not finite, weights that are not
            finite.
        TypeError: signals that are not :class:`STDPSignals`, a non-numeric or complex dtype.
    """
    if not isinstance(signals, STDPSignals):
        raise TypeError(f"signals must be STDPSignals(pre, post), got {type(signals).__name__}")
    shape = np.shape(w)
    if len(shape) != 2:
        raise ValueError(f"params (the weights w) must have shape (N_pre, N_post), got {shape}")
    _checks.real_array(w, "params (the weights w)", min_ndim=2)
    for name, spikes, n in (("pre", signals.pre, shape[0]), ("post", signals.post, shape[1])):
        if np.ndim(spikes) != 1 or np.shape(spikes)[0] != n:
            raise ValueError(
                f"signals.{name} must have shape ({n},) to match w {shape}, got {np.shape(spikes)}"
            )
        _checks.spike_array(jnp.asarray(spikes)[None], f"signals.{name}", min_ndim=2)
    if signals.reward is not None:
        reward = _checks.real_array(signals.reward, "signals.reward", min_ndim=0)
        if np.shape(reward) not in ((), (shape[1],)):
            raise ValueError(
                f"signals.reward must be a scalar or ({shape[1]},), one per postsynaptic neuron, "
                f"got shape {np.shape(reward)}"
            )


def _check_weights(w):
    """The rules' ``init(w)``: a real 2-D weight matrix (finite when concrete)."""
    w = _checks.real_array(w, "params (the weights w)", min_ndim=2)
    if np.ndim(w) != 2:
        raise ValueError(f"params (the weights w) must have shape (N_pre, N_post), got {w.shape}")
    return jnp.asarray(w)


def _bounded(delta, w, w_max):
    if w_max is None:
        return delta
    return jnp.clip(w + delta, 0.0, w_max) - w


def _impulse(trace, spikes, pairing):
    if pairing == "all":
        return trace + spikes
    return jnp.where(spikes > 0, 1.0, trace)


def _as_float(signals, dtype):
    return jnp.asarray(signals.pre, dtype), jnp.asarray(signals.post, dtype)


def _need_params(params, rule):
    if params is None:
        raise ValueError(f"{rule}.update needs params (the current weights w)")


def pair_stdp(
    a_plus: float = 0.01,
    a_minus: float = 0.0105,
    tau_plus_ms: float = 16.8,
    tau_minus_ms: float = 33.7,
    dt_ms: float = 1.0,
    *,
    pairing: str = "all",
    weight_dependence: str = "additive",
    w_max: float | None = None,
) -> optax.GradientTransformation:
    """Trace-based pair STDP (module equation) as an ``(init, update)`` plasticity rule.

    Args:
        a_plus, a_minus: A₊, A₋ ≥ 0 (for the multiplicative rule, per unit of w_max − w and w).
        tau_plus_ms, tau_minus_ms: τ₊, τ₋ in ms (> 0); defaults from Bi & Poo (1998).
        dt_ms: the bin width in ms.
        pairing: ``"all"`` (all-to-all) or ``"nearest"`` (symmetric nearest-spike).
        weight_dependence: ``"additive"`` or ``"multiplicative"`` (soft bounds).
        w_max: upper hard bound; the weights are kept in [0, w_max]. Required for the
            multiplicative rule; ``None`` leaves the additive rule unbounded.

    Returns:
        ``optax.GradientTransformation``: ``init(w) -> PairState`` (zero traces);
        ``update(signals: STDPSignals, state, w) -> (Δw (N_pre, N_post), state)``, Δw a
        terminal weight delta (scaled, bounded; apply it as is, docs/learning.md).

    Raises:
        ValueError/TypeError: naming the argument for negative amplitudes, non-positive time
            constants, dt_ms or w_max, or an unknown pairing / weight dependence.
    """
    a_plus = _check_amplitude(a_plus, "a_plus")
    a_minus = _check_amplitude(a_minus, "a_minus")
    d_plus = decay_factor(tau_plus_ms, dt_ms, "tau_plus_ms")
    d_minus = decay_factor(tau_minus_ms, dt_ms, "tau_minus_ms")
    _check_choice(pairing, "pairing", PAIRINGS)
    _check_choice(weight_dependence, "weight_dependence", WEIGHT_DEPENDENCES)
    w_max = _check_w_max(w_max, weight_dependence == "multiplicative", "multiplicative STDP")

    def init(w):
        w = _check_weights(w)
        return PairState(jnp.zeros(w.shape[0], w.dtype), jnp.zeros(w.shape[1], w.dtype))

    def update(signals, state, w=None):
        _need_params(w, "pair_stdp")
        check_signals(signals, w)
        pre, post = _as_float(signals, state.pre_trace.dtype)
        x = state.pre_trace * d_plus
        y = state.post_trace * d_minus
        ltp = a_plus * x[:, None] * post[None, :]
        ltd = a_minus * pre[:, None] * y[None, :]
        if weight_dependence == "multiplicative":
            delta = ltp * (w_max - w) - ltd * w
        else:
            delta = ltp - ltd
        delta = _bounded(delta, w, w_max)
        return delta, PairState(_impulse(x, pre, pairing), _impulse(y, post, pairing))

    return optax.GradientTransformation(init, update)


def triplet_stdp(
    a2_plus: float = 5e-10,
    a3_plus: float = 6.2e-3,
    a2_minus: float = 7e-3,
    a3_minus: float = 2.3e-4,
    tau_plus_ms: float = 16.8,
    tau_minus_ms: float = 33.7,
    tau_x_ms: float = 101.0,
    tau_y_ms: float = 125.0,
    dt_ms: float = 1.0,
    *,
    w_max: float | None = None,
) -> optax.GradientTransformation:
    """The all-to-all triplet rule (Pfister & Gerstner 2006, J. Neurosci. 26:9673).

    Pre traces r₁ (τ₊), r₂ (τ_x), post traces o₁ (τ₋), o₂ (τ_y), each +1 per spike and read before
    the bin's own spikes are added:

        Δw = s^{post}_t r₁(t) [A₂⁺ + A₃⁺ o₂(t − ε)] − s^{pre}_t o₁(t) [A₂⁻ + A₃⁻ r₂(t − ε)],

    clipped to [0, w_max] when ``w_max`` is given. Defaults: the visual-cortex all-to-all fit of
    the paper (Table 4).

    Returns:
        ``optax.GradientTransformation``: ``init(w) -> TripletState``,
        ``update(signals: STDPSignals, state, w) -> (Δw, state)``, Δw a terminal weight delta
        (scaled, bounded; apply it as is, docs/learning.md).

    Raises:
        ValueError/TypeError: naming the argument for negative amplitudes, non-positive time
            constants, dt_ms or w_max.
    """
    amps = [
        _check_amplitude(v, n)
        for v, n in (
            (a2_plus, "a2_plus"),
            (a3_plus, "a3_plus"),
            (a2_minus, "a2_minus"),
            (a3_minus, "a3_minus"),
        )
    ]
    a2p, a3p, a2m, a3m = amps
    decays = [
        decay_factor(t, dt_ms, n)
        for t, n in (
            (tau_plus_ms, "tau_plus_ms"),
            (tau_x_ms, "tau_x_ms"),
            (tau_minus_ms, "tau_minus_ms"),
            (tau_y_ms, "tau_y_ms"),
        )
    ]
    w_max = _check_w_max(w_max, False, "")

    def init(w):
        w = _check_weights(w)
        pre, post = jnp.zeros(w.shape[0], w.dtype), jnp.zeros(w.shape[1], w.dtype)
        return TripletState(pre, pre, post, post)

    def update(signals, state, w=None):
        _need_params(w, "triplet_stdp")
        check_signals(signals, w)
        pre, post = _as_float(signals, state.r1.dtype)
        r1, r2, o1, o2 = (tr * d for tr, d in zip(state, decays, strict=True))
        ltp = r1[:, None] * (post * (a2p + a3p * o2))[None, :]
        ltd = (pre * (a2m + a3m * r2))[:, None] * o1[None, :]
        delta = _bounded(ltp - ltd, w, w_max)
        return delta, TripletState(r1 + pre, r2 + pre, o1 + post, o2 + post)

    return optax.GradientTransformation(init, update)


def reward_stdp(
    a_plus: float = 0.01,
    a_minus: float = 0.0105,
    tau_plus_ms: float = 16.8,
    tau_minus_ms: float = 33.7,
    tau_eligibility_ms: float = 1000.0,
    dt_ms: float = 1.0,
    *,
    pairing: str = "all",
    w_max: float | None = None,
) -> optax.GradientTransformation:
    """Reward-modulated STDP (Izhikevich 2007, Cereb. Cortex 17:2443; Florian 2007).

    The additive pair-STDP increment ξ_t (module equation) feeds an eligibility trace that the
    reward r_t gates:

        e_t = e_{t−1} e^{−Δ/τ_e} + ξ_t,        Δw_t = r_t e_t,

    clipped to [0, w_max] when ``w_max`` is given. r_t is ``signals.reward`` (a scalar or one per
    postsynaptic neuron); zero reward gives zero weight change.

    Returns:
        ``optax.GradientTransformation``: ``init(w) -> RewardState``,
        ``update(signals: STDPSignals, state, w) -> (Δw, state)``, Δw a terminal weight delta
        (scaled, bounded; apply it as is, docs/learning.md).

    Raises:
        ValueError/TypeError: as :func:`pair_stdp`, and for a non-positive ``tau_eligibility_ms``;
            ``update`` raises ValueError if ``signals.reward`` is None.
    """
    stdp = pair_stdp(a_plus, a_minus, tau_plus_ms, tau_minus_ms, dt_ms, pairing=pairing)
    d_e = decay_factor(tau_eligibility_ms, dt_ms, "tau_eligibility_ms")
    w_max = _check_w_max(w_max, False, "")

    def init(w):
        return RewardState(stdp.init(w), jnp.zeros_like(_check_weights(w)))

    def update(signals, state, w=None):
        _need_params(w, "reward_stdp")
        check_signals(signals, w)
        if signals.reward is None:
            raise ValueError("reward_stdp needs signals.reward (the reward r_t)")
        xi, traces = stdp.update(signals, state.traces, w)
        eligibility = state.eligibility * d_e + xi
        delta = jnp.asarray(signals.reward, eligibility.dtype) * eligibility
        return _bounded(delta, w, w_max), RewardState(traces, eligibility)

    return optax.GradientTransformation(init, update)


class STDPRun(NamedTuple):
    """Result of :func:`run_stdp`: final weights ``(N_pre, N_post)`` and the weight trajectory
    ``(T, N_pre, N_post)`` (after each bin) when requested, else None."""

    w: jax.Array
    history: jax.Array | None


def run_stdp(
    rule: optax.GradientTransformation,
    w,
    pre_spikes,
    post_spikes,
    reward=None,
    *,
    keep_history: bool = False,
) -> STDPRun:
    """Apply ``rule`` bin by bin to fixed spike trains with ``lax.scan`` (open loop).

    Args:
        rule: an STDP rule of this module (or any rule reading :class:`STDPSignals`).
        w: ``(N_pre, N_post)`` initial weights.
        pre_spikes: ``(T, N_pre)``; post_spikes: ``(T, N_post)`` (0/1).
        reward: ``(T,)`` or ``(T, N_post)`` reward signal, or None.
        keep_history: also return the weights after every bin.

    Returns:
        :class:`STDPRun`.

    Raises:
        ValueError: for mismatched shapes, empty trains, non-binary spikes, non-finite weights
            or rewards; TypeError for a bad or complex dtype, or a rule without init/update.
    """
    _check_rule(rule)
    w = _checks.real_array(w, "w", min_ndim=2)
    w = jnp.asarray(w, jnp.result_type(float))
    if w.ndim != 2:
        raise ValueError(f"w must have shape (N_pre, N_post), got {w.shape}")
    pre = _checks.spike_array(pre_spikes, "pre_spikes", n_neurons=w.shape[0])
    post = _checks.spike_array(post_spikes, "post_spikes", n_neurons=w.shape[1])
    _checks.nonempty(pre, "pre_spikes")
    _checks.nonempty(post, "post_spikes")
    if pre.ndim != 2 or post.ndim != 2 or pre.shape[0] != post.shape[0]:
        raise ValueError(
            "pre_spikes and post_spikes must be (T, N_pre) and (T, N_post) with the same T, "
            f"got {pre.shape} and {post.shape}"
        )
    if reward is not None:
        reward = jnp.asarray(_checks.real_array(reward, "reward"), w.dtype)
        if reward.shape[0] != pre.shape[0] or reward.ndim > 2:
            raise ValueError(f"reward must have shape (T,) or (T, N_post), got {reward.shape}")
    pre = jnp.asarray(pre, w.dtype)
    post = jnp.asarray(post, w.dtype)
    return _run(rule, w, pre, post, reward, keep_history)


def _check_rule(rule):
    if not (callable(getattr(rule, "init", None)) and callable(getattr(rule, "update", None))):
        raise TypeError(f"rule must be a plasticity rule with init/update, got {rule!r}")


def _run(rule, w, pre, post, reward, keep_history):
    def body(carry, xs):
        w, state = carry
        signals = STDPSignals(*xs) if reward is not None else STDPSignals(xs[0], xs[1])
        delta, state = rule.update(signals, state, w)
        w = w + delta
        return (w, state), (w if keep_history else None)

    xs = (pre, post) if reward is None else (pre, post, reward)
    (w, _), history = jax.lax.scan(body, (w, rule.init(w)), xs)
    return STDPRun(w=w, history=history)


def pair_window(lags_ms, a_plus, a_minus, tau_plus_ms, tau_minus_ms):
    """The analytical pair window W(Δt) (module equation) at ``lags_ms`` (Δt = t_post − t_pre),
    with W(0) = 0. Returns a float array shaped like ``lags_ms``.

    Raises:
        ValueError/TypeError: naming the argument for negative or non-finite amplitudes,
            non-positive time constants, non-finite or complex lags.
    """
    lags = np.asarray(_checks.real_array(lags_ms, "lags_ms", min_ndim=0), dtype=float)
    a_plus = _check_amplitude(a_plus, "a_plus")
    a_minus = _check_amplitude(a_minus, "a_minus")
    tau_plus = _checks.positive_float(tau_plus_ms, "tau_plus_ms")
    tau_minus = _checks.positive_float(tau_minus_ms, "tau_minus_ms")
    return np.where(
        lags > 0,
        a_plus * np.exp(-lags / tau_plus),
        np.where(lags < 0, -a_minus * np.exp(lags / tau_minus), 0.0),
    )


def measure_window(rule: optax.GradientTransformation, lags_bins, w0: float = 0.5):
    """Simulate one pre/post pairing per lag (Δt = lag bins, t_post − t_pre) through ``rule`` on a
    single synapse starting at ``w0`` and return the measured Δw per lag (numpy, shape of
    ``lags_bins``). The pairs sit in a window of 2·max|lag| + 3 bins; all lags run in one vmap.

    Raises:
        ValueError: lags that are not a non-empty 1-D array of integers, a non-finite ``w0``.
        TypeError: a rule without init/update.
    """
    _check_rule(rule)
    w0 = _checks.finite_float(w0, "w0")
    lags = np.asarray(lags_bins)
    if (
        lags.ndim != 1
        or lags.size == 0
        or not (np.issubdtype(lags.dtype, np.integer) or np.all(np.mod(lags, 1) == 0))
    ):
        raise ValueError(f"lags_bins must be a non-empty 1-D integer array, got {lags!r}")
    lags = lags.astype(int)
    _checks.allocation(lags.size * (2 * int(np.max(np.abs(lags))) + 3), "the pairing trains")
    span = int(np.max(np.abs(lags)))
    n_steps = 2 * span + 3
    center = span + 1
    t_pre = center - np.maximum(lags, 0)
    t_post = t_pre + lags
    pre = np.zeros((lags.size, n_steps, 1), np.float32)
    post = np.zeros((lags.size, n_steps, 1), np.float32)
    pre[np.arange(lags.size), t_pre, 0] = 1
    post[np.arange(lags.size), t_post, 0] = 1
    w = jnp.full((1, 1), w0, jnp.float32)
    run = jax.jit(jax.vmap(lambda p, q: _run(rule, w, p, q, None, False).w[0, 0]))
    return np.asarray(run(jnp.asarray(pre), jnp.asarray(post))) - w0
