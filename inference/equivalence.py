"""Where gradient criteria become STDP (docs/theory.md §8): the analyses.

(a) **ML ⇒ STDP** (Pfister, Toyoizumi, Barber & Gerstner 2006, Neural Comput. 18:1318). For a GLM
neuron (docs/theory.md §2) asked to emit one postsynaptic spike at t_post (and none elsewhere)
given one presynaptic spike at t_pre, the likelihood gradient with respect to the synaptic
efficacy g (the kernel ε = g ε₀) is

    W_ML(Δt) = ∂ log p / ∂g = ε₀(Δt) − Σ_t ε₀(t − t_pre) σ(γ + g ε₀(t − t_pre) + η(t − t_post)),

Δt = t_post − t_pre: potentiation shaped by the synaptic kernel for pre-before-post, and, for
post-before-pre, a depression set by the rate term whose shape the feedback (refractory) kernel η
carves (:func:`ml_window`); :func:`ml_window_monte_carlo` estimates the same window from spike
trains sampled from the GLM.

(b) **Rate-derivative rule ⇔ STDP** (Xie & Seung 2000, NIPS 12; Bengio, Mesnard, Fischer, Zhang &
Wu 2015, arXiv 1509.05936). For Poisson spike trains with rates r_pre, r_post and a window K,

    E[ΔW] = Σ_{t,t'} K(t' − t) p_pre(t) p_post(t')
          ≈ Σ_t p_pre p_post · Σ_τ K(τ) + Σ_t p_pre ṗ_post · Σ_τ τ K(τ)

(p the spike probability per bin, τ in bins): for a balanced window (Σ K = 0) STDP is
"presynaptic rate × rate of change of postsynaptic rate" (:func:`window_weight_change`).
Conversely, applying ΔW_t = s_pre,t · ṙ_post(t) to Poisson trains and binning by the lag to the
nearest postsynaptic spike recovers an antisymmetric window (:func:`rate_derivative_window`).

(c) **EP ⇒ STDP**: the continuous nudged-phase rule (1/β) d/dt[ρ_i ρ_j] = (1/β)[ρ_i ρ̇_j + ρ̇_i ρ_j]
integrates exactly to the one-sided EP update (1/β)[ρρ^β − ρρ⁰]; each term is the rate-derivative
rule (:func:`ep_stdp`, built on :func:`probsnn.inference.energy.ep.rate_derivative_increments`).

Their pictures are :func:`probsnn.plot.stdp_window` and :func:`probsnn.plot.rate_derivative`.
Time: lags counted in bins are named ``lags_bins``, those in ms ``lags_ms``; rates are in Hz and
bin widths in ms (``dt_ms``), as in the rest of the STDP layer.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import probsnn as ps
from probsnn import _checks
from probsnn.glm import bernoulli_log_prob, contract
from probsnn.inference.energy import ep
from probsnn.models import energy as em

# ------------------------------------------------------------------------------- (a) ML ⇒ STDP


class MLWindow(NamedTuple):
    """:func:`ml_window` result: lags Δt in bins and in ms ``(L,)``, W_ML(Δt) ``(L,)``, and the
    synaptic kernel ε₀ ``(K_len,)`` and feedback kernel η ``(K_len,)`` at lags 1, 2, … bins."""

    lags_bins: np.ndarray
    lags_ms: np.ndarray
    dw: np.ndarray
    synaptic_kernel: np.ndarray
    feedback_kernel: np.ndarray


def ml_window(
    spec, params, lags_bins, *, pre: int = 0, post: int = 1, margin_bins: int | None = None
):
    """The ML ⇒ STDP window W_ML(Δt) of a GLM neuron (module equation (a)).

    For every lag a spike train is built with one spike of neuron ``pre`` at t_pre and one of
    neuron ``post`` at t_post = t_pre + lag, and ``margin_bins`` silent bins before the first
    and after the last spike; W_ML is the derivative of the log-likelihood of neuron ``post``
    with respect to a gain g on w[pre, post, :] at g = 1.

    Args:
        spec: a :class:`~probsnn.Network` without exogenous inputs; params: its Params.
        lags_bins: ``(L,)`` integer lags Δt = t_post − t_pre in bins.
        pre, post: the two neurons (``spec.connectivity[pre, post]`` must be True).
        margin_bins: the silent bins around the pair (default: the synaptic kernel's length).

    Returns:
        :class:`MLWindow`.

    Raises:
        ValueError: for an empty/non-integer lag array, bad neuron indices, an unconnected pair,
            or a network with inputs.
    """
    lags = _pair_lags(spec, params, lags_bins, pre, post)
    n = spec.n_neurons
    length = spec.synapse_basis.shape[1]
    margin = length if margin_bins is None else _checks.positive_int(margin_bins, "margin_bins")
    span = int(np.max(np.abs(lags)))
    n_steps = 2 * margin + span + 1
    t_pre = margin + np.maximum(-lags, 0)
    t_post = t_pre + lags
    spikes = np.zeros((lags.size, n_steps, n), np.float32)
    spikes[np.arange(lags.size), t_pre, pre] = 1
    spikes[np.arange(lags.size), t_post, post] = 1
    spikes = jnp.asarray(spikes)
    x = ps.traces(spec, spikes)
    direction = params.w[pre, post]

    def log_lik(gain):
        w = params.w.at[pre, post].set(gain * direction)
        u = contract(spec, params._replace(w=w), x)[..., post]
        return jnp.sum(bernoulli_log_prob(spikes[..., post], u), axis=-1)

    dw = jax.jacobian(log_lik)(jnp.asarray(1.0, params.w.dtype))
    synaptic = np.asarray(direction) @ np.asarray(spec.synapse_basis)
    feedback = np.asarray(params.v[post]) @ np.asarray(spec.feedback_basis)
    dt_ms = spec.dt * 1e3
    return MLWindow(lags, lags * dt_ms, np.asarray(dw), synaptic, feedback)


def _pair_lags(spec, params, lags_bins, pre, post) -> np.ndarray:
    """Validate the arguments shared by :func:`ml_window` and :func:`ml_window_monte_carlo`;
    return the lags as an integer array."""
    if not isinstance(spec, ps.Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    _checks.finite_tree(spec.check_params(params), "params")
    lags = np.asarray(lags_bins)
    if lags.ndim != 1 or lags.size == 0 or not np.issubdtype(lags.dtype, np.integer):
        raise ValueError(f"lags_bins must be a non-empty 1-D integer array, got {lags!r}")
    n = spec.n_neurons
    for name, index in (("pre", pre), ("post", post)):
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < n:
            raise ValueError(f"{name} must index a neuron in [0, {n}), got {index}")
    if pre == post or not bool(np.asarray(spec.connectivity)[pre, post]):
        raise ValueError(f"neurons pre={pre} and post={post} must be distinct and connected")
    if spec.n_inputs:
        raise ValueError("the ML window needs a network without exogenous inputs")
    return lags


class MLWindowMC(NamedTuple):
    """:func:`ml_window_monte_carlo` result, each ``(L,)``: lags Δt in bins, the Monte-Carlo
    estimate of W_ML(Δt), its standard error, and the fewest matched sampled histories behind
    any of its terms."""

    lags_bins: np.ndarray
    dw: np.ndarray
    stderr: np.ndarray
    n_matched: np.ndarray


def ml_window_monte_carlo(key, spec, params, lags_bins, n_samples: int, *, pre=0, post=1):
    """Monte-Carlo estimate of the ML ⇒ STDP window from spike trains sampled from the GLM.

    With D the pair train of :func:`ml_window` (default ``margin_bins``) and ε the synaptic kernel,

        W_ML(Δt) = Σ_t ε(t − t_pre) (D_post,t − h_t),   h_t = σ(u_post,t(D)),

    and h_t is a probability the sampler realises: u_post,t depends only on the clamped neurons
    and on the last L_fb bins of ``post``, so h_t = P(S_t = 1 | S_{t−L_fb..t−1} = D_{t−L_fb..t−1})
    for trains S of ``post`` drawn by :func:`probsnn.sample` with every other neuron clamped to
    D (silent except one spike of ``pre``). ``n_samples`` such trains are drawn once; for every
    bin t of the synaptic window and every history class (``post`` silent in the last L_fb
    bins, or with one spike j bins back) ĥ is the fraction of the n_t matching samples that spike
    at t, and Ŵ(Δt) = Σ_t ε(t − t_pre)(D_t − ĥ_t) takes the class of D at each t — the ML
    rule x_pre (s_post − σ(u_post)) with the expected spike replaced by the model's sampled
    spikes. Given everything before t, the matching samples spike independently with
    probability h_t, so E[ĥ_t] = h_t and E[Ŵ] = W_ML exactly, and the errors of different bins
    are uncorrelated (martingale differences): Var Ŵ = Σ_t ε² h_t(1 − h_t) E[1/n_t], estimated
    with ĥ and the observed n_t.

    Args:
        key: PRNG key for the sampler.
        spec, params, lags_bins, pre, post: as in :func:`ml_window`.
        n_samples: number of sampled trains (each L_fb + L_syn + 1 bins long).

    Returns:
        :class:`MLWindowMC`.

    Raises:
        ValueError: as :func:`ml_window`, and when some history class needed by a lag matched
            no sample (increase ``n_samples``). TypeError: for a non-integer ``n_samples``.

    Reference: Pfister, Toyoizumi, Barber & Gerstner (2006), Neural Comput. 18:1318 (W_ML).
    """
    key = _checks.prng_key(key, "key")
    lags = _pair_lags(spec, params, lags_bins, pre, post)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    n = spec.n_neurons
    syn_len, fb_len = spec.synapse_basis.shape[1], spec.feedback_basis.shape[1]
    t_pre = fb_len  # every window bin has its whole feedback history inside the record
    n_steps = t_pre + syn_len + 1
    others = np.arange(n) != post
    clamped = ps.Network(
        n,
        spec.synapse_basis,
        spec.feedback_basis,
        dt=spec.dt,
        connectivity=np.asarray(spec.connectivity),
        visible=others,
    )
    clamp = np.zeros((n_steps, n - 1), np.uint8)
    clamp[t_pre, np.flatnonzero(others) == pre] = 1
    spikes = ps.sample(clamped, params, key, n_steps, n_samples, clamp=clamp)
    s = np.asarray(spikes[..., post], np.int64)
    # before[:, t] = Σ_{t' < t} s_t' and Σ_{t' < t} t' s_t' (a single spike's time is the latter)
    zero = np.zeros((n_samples, 1), np.int64)
    counts = np.concatenate([zero, np.cumsum(s, axis=1)], axis=1)
    times = np.concatenate([zero, np.cumsum(s * np.arange(n_steps), axis=1)], axis=1)
    window = t_pre + 1 + np.arange(syn_len)
    in_history = counts[:, window] - counts[:, window - fb_len]
    spike_time = times[:, window] - times[:, window - fb_len]
    # history class: 0 = silent, j = one spike j bins back, −1 = more spikes (unused)
    history = np.where(in_history == 0, 0, np.where(in_history == 1, window - spike_time, -1))
    kept = history >= 0
    cell = (np.arange(syn_len) * (fb_len + 1) + history)[kept]
    size = syn_len * (fb_len + 1)
    matched = np.bincount(cell, minlength=size).reshape(syn_len, fb_len + 1)
    fired = np.bincount(cell, s[:, window][kept], minlength=size).reshape(syn_len, fb_len + 1)
    back = window - (t_pre + lags[:, None])  # (L, syn_len): bins since the post spike of D
    needed = np.where((back >= 1) & (back <= fb_len), back, 0)
    n_t = matched[np.arange(syn_len), needed]
    if np.any(n_t == 0):
        raise ValueError(
            f"n_samples={n_samples} is too small: some history needed by the lags matched no "
            "sampled train; increase n_samples"
        )
    h = fired[np.arange(syn_len), needed] / n_t
    eps = np.asarray(params.w[pre, post]) @ np.asarray(spec.synapse_basis)
    dw = np.sum(eps * ((back == 0) - h), axis=1)
    stderr = np.sqrt(np.sum(eps**2 * h * (1 - h) / n_t, axis=1))
    return MLWindowMC(lags, dw, stderr, n_t.min(axis=1))


# ---------------------------------------------------------------- (b) rate derivative ⇔ STDP


def random_slow_rates(
    key,
    n_samples: int,
    n_steps: int,
    dt_ms: float,
    *,
    mean_hz=20.0,
    depth=0.8,
    max_freq_hz=2.0,
    n_modes=3,
):
    """Random slowly varying rates ``(n_samples, n_steps)`` in Hz: mean · (1 + depth · Σ_m a_m
    sin(2π f_m t + φ_m)) with f_m ~ U(0, max_freq_hz), φ_m ~ U(0, 2π), Σ|a_m| = 1 (so rates stay
    ≥ mean · (1 − depth) ≥ 0).

    Raises:
        TypeError, ValueError: a key that is not a PRNG key, sizes < 1, non-positive rates,
            frequencies or bin width, a depth outside [0, 1].
    """
    key = _checks.prng_key(key, "key")
    n_samples = _checks.positive_int(n_samples, "n_samples")
    n_steps = _checks.positive_int(n_steps, "n_steps")
    n_modes = _checks.positive_int(n_modes, "n_modes")
    dt_ms = _checks.positive_float(dt_ms, "dt_ms")
    mean_hz = _checks.positive_float(mean_hz, "mean_hz")
    max_freq_hz = _checks.positive_float(max_freq_hz, "max_freq_hz")
    if not 0.0 <= _checks.finite_float(depth, "depth") <= 1.0:
        raise ValueError(f"depth must lie in [0, 1], got {depth}")
    _checks.allocation(n_samples * n_modes * n_steps, "the rates' modes")
    k_f, k_p, k_a = jax.random.split(key, 3)
    freqs = jax.random.uniform(k_f, (n_samples, n_modes, 1), maxval=max_freq_hz)
    phases = jax.random.uniform(k_p, (n_samples, n_modes, 1), maxval=2 * jnp.pi)
    amps = jax.random.uniform(k_a, (n_samples, n_modes, 1), minval=-1.0, maxval=1.0)
    amps = amps / jnp.sum(jnp.abs(amps), axis=1, keepdims=True)
    t_s = jnp.arange(n_steps) * dt_ms * 1e-3
    wave = jnp.sum(amps * jnp.sin(2 * jnp.pi * freqs * t_s + phases), axis=1)
    return np.asarray(mean_hz * (1.0 + depth * wave))


class WindowChange(NamedTuple):
    """:func:`window_weight_change` result, each ``(...)``: the exact expected ΔW under the
    window, the rate-derivative prediction Σ p_pre ṗ_post · Σ τK, and the rate term
    Σ p_pre p_post · Σ K."""

    window: np.ndarray
    derivative: np.ndarray
    rate_term: np.ndarray


def window_weight_change(window_lags_bins, window, rate_pre_hz, rate_post_hz, dt_ms):
    """Expected weight change of Poisson trains under an STDP window, and its rate-derivative
    approximation (module equation (b)).

    Args:
        window_lags_bins: ``(L,)`` integer lags τ = t_post − t_pre (bins) where K is given.
        window: ``(L,)`` K(τ).
        rate_pre_hz, rate_post_hz: ``(..., T)`` rates in Hz.
        dt_ms: bin width in ms.

    Only presynaptic bins at least max|τ| from both ends of the record count, so that every
    window lies inside it.

    Returns:
        :class:`WindowChange`.

    Raises:
        ValueError: lags that are not integers, a window and lags of different shapes, rates of
            different shapes or too short, non-finite values, a non-positive ``dt_ms``.
        TypeError: complex values.
    """
    lags = np.asarray(window_lags_bins)
    if lags.size and not (np.issubdtype(lags.dtype, np.integer) or np.all(np.mod(lags, 1) == 0)):
        raise ValueError(f"window_lags_bins must hold integers, got {lags!r}")
    lags = lags.astype(int)
    window = np.asarray(_checks.real_array(window, "window", min_ndim=0), dtype=float)
    if lags.shape != window.shape or lags.ndim != 1 or lags.size == 0:
        raise ValueError(
            f"window_lags_bins and window must be 1-D of equal length, got {lags.shape}, "
            f"{window.shape}"
        )
    dt_ms = _checks.positive_float(dt_ms, "dt_ms")
    p_pre = np.asarray(_checks.real_array(rate_pre_hz, "rate_pre_hz"), float) * dt_ms * 1e-3
    p_post = np.asarray(_checks.real_array(rate_post_hz, "rate_post_hz"), float) * dt_ms * 1e-3
    if p_pre.shape != p_post.shape:
        raise ValueError(f"rate shapes differ: {p_pre.shape} vs {p_post.shape}")
    n = p_pre.shape[-1]
    margin = int(np.max(np.abs(lags)))
    if n <= 2 * margin:
        raise ValueError(f"the rates need more than 2·max|lag| = {2 * margin} bins, got {n}")
    # only presynaptic bins whose whole window lies inside the record count (no edge effects)
    p_pre = p_pre * ((np.arange(n) >= margin) & (np.arange(n) < n - margin))
    size = 1 << int(np.ceil(np.log2(2 * n)))
    # c(τ) = Σ_t p_pre(t) p_post(t + τ), a cross-correlation by FFT
    corr = np.fft.irfft(np.conj(np.fft.rfft(p_pre, size)) * np.fft.rfft(p_post, size), size)
    exact = np.sum(window * corr[..., lags % size], axis=-1)
    slope = np.gradient(p_post, axis=-1)
    derivative = np.sum(p_pre * slope, axis=-1) * np.sum(lags * window)
    rate_term = np.sum(p_pre * p_post, axis=-1) * np.sum(window)
    return WindowChange(exact, derivative, rate_term)


class RateDerivativeWindow(NamedTuple):
    """:func:`rate_derivative_window` result: bin centres of Δt in ms ``(B,)``, mean ΔW per
    pre spike in each bin ``(B,)``, and the count of pre spikes per bin ``(B,)``."""

    lags_ms: np.ndarray
    dw: np.ndarray
    counts: np.ndarray


def rate_derivative_window(key, rate_pre_hz, rate_post_hz, dt_ms, *, max_lag_ms=100.0, n_bins=20):
    """Apply ΔW = s_pre · dr_post/dt to Poisson trains and bin by Δt = t_post − t_pre, the lag
    from each presynaptic spike to its nearest postsynaptic spike (Bengio et al. 2015, Fig. 1).

    Args:
        key: PRNG key for the Poisson spikes.
        rate_pre_hz, rate_post_hz: ``(trials, T)`` rates in Hz.
        dt_ms: bin width in ms. max_lag_ms, n_bins: the histogram of Δt over [−max, max].

    Returns:
        :class:`RateDerivativeWindow` (bins without spikes hold NaN: the mean of no value).

    Raises:
        ValueError: rates that are not both ``(trials, T)``, empty, negative or non-finite,
            non-positive sizes. TypeError: a key that is not a PRNG key, complex rates.
    """
    key = _checks.prng_key(key, "key")
    dt_ms = _checks.positive_float(dt_ms, "dt_ms")
    max_lag_ms = _checks.positive_float(max_lag_ms, "max_lag_ms")
    n_bins = _checks.positive_int(n_bins, "n_bins")
    r_pre = np.asarray(_checks.real_array(rate_pre_hz, "rate_pre_hz"), float)
    r_post = np.asarray(_checks.real_array(rate_post_hz, "rate_post_hz"), float)
    if r_pre.ndim != 2 or r_pre.shape != r_post.shape:
        raise ValueError(f"rates must both be (trials, T), got {r_pre.shape}, {r_post.shape}")
    _checks.nonempty(r_pre, "rate_pre_hz")
    if np.any(r_pre < 0) or np.any(r_post < 0):
        raise ValueError("rate_pre_hz and rate_post_hz must be >= 0 (rates in Hz)")
    k_pre, k_post = jax.random.split(key)
    s_pre = np.asarray(jax.random.uniform(k_pre, r_pre.shape) < r_pre * dt_ms * 1e-3)
    s_post = np.asarray(jax.random.uniform(k_post, r_post.shape) < r_post * dt_ms * 1e-3)
    slope = np.gradient(r_post, dt_ms * 1e-3, axis=-1)  # Hz/s
    edges = np.linspace(-max_lag_ms, max_lag_ms, n_bins + 1)
    sums, counts = np.zeros(n_bins), np.zeros(n_bins)
    for trial in range(r_pre.shape[0]):
        t_pre = np.flatnonzero(s_pre[trial])
        t_post = np.flatnonzero(s_post[trial])
        if t_pre.size == 0 or t_post.size == 0:
            continue
        idx = np.searchsorted(t_post, t_pre)
        before = t_post[np.clip(idx - 1, 0, t_post.size - 1)]
        after = t_post[np.clip(idx, 0, t_post.size - 1)]
        nearest = np.where(np.abs(after - t_pre) < np.abs(before - t_pre), after, before)
        lag_ms = (nearest - t_pre) * dt_ms
        which = np.digitize(lag_ms, edges) - 1
        ok = (which >= 0) & (which < n_bins)
        np.add.at(sums, which[ok], slope[trial, t_pre[ok]])
        np.add.at(counts, which[ok], 1)
    with np.errstate(invalid="ignore"):
        mean = sums / counts
    return RateDerivativeWindow((edges[1:] + edges[:-1]) / 2, mean, counts)


# ------------------------------------------------------------------------------- (c) EP ⇒ STDP


class EPSTDP(NamedTuple):
    """:func:`ep_stdp` result, tuples over weight matrices: the per-step presynaptic-rate ×
    postsynaptic-rate-change term ``(n_steps, n_pre, n_post)``, the mirrored term, their sum
    integrated over the phase ``(n_pre, n_post)``, and the one-sided EP weight update
    (1/β)[ρρ^β − ρρ⁰] (batch means)."""

    pre_times_post_change: tuple
    pre_change_times_post: tuple
    integrated: tuple
    ep_update: tuple


def ep_stdp(spec, params, inputs, targets, *, beta=0.3, step_size=0.5, n_steps=200, free=None):
    """EP ⇒ STDP (module equation (c)) on an :class:`~probsnn.models.energy.EnergyNetwork`.

    Runs the free phase (``free``: an :class:`~probsnn.inference.energy.ep.Relaxation`), then
    ``n_steps`` nudged-phase steps of size ``step_size`` from the free fixed point, and splits the
    increments of :func:`~probsnn.inference.energy.ep.rate_derivative_increments` into their two
    rate-derivative terms. ``ep_update`` is the one-sided EP estimate of
    :func:`~probsnn.inference.energy.ep.ep_estimate` (relaxed with ``free`` in both phases), negated
    into a weight change.

    Returns:
        :class:`EPSTDP`; ``integrated`` equals ``ep_update`` once the nudged phase has settled.

    Raises:
        ValueError, TypeError: β zero or not finite, bad shapes or non-finite inputs, targets
            or params, a step size outside (0, 1], ``n_steps`` < 1, a bad ``free`` relaxation.
    """
    beta = _checks.finite_float(beta, "beta")
    if beta == 0.0:
        raise ValueError(f"beta must be finite and non-zero, got {beta}")
    inputs, targets = em.check_batch(spec, inputs, targets)
    if targets is None:
        raise ValueError("targets are needed for the nudged phase, got None")
    _checks.finite_tree(em.check_params(spec, params), "params")
    free = ep.Relaxation(0.5, 500, 1e-6) if free is None else ep.check_relaxation(free, "free")
    states, _ = ep.free_phase(spec, params, inputs, relaxation=free)
    path = ep.trajectory(spec, params, inputs, states, targets, beta, step_size, n_steps)
    batch = inputs.shape[0]
    first, second, integrated = [], [], []
    for summed_a, summed_b in ep.rate_derivative_terms(spec, inputs, path, beta):
        a, b = summed_a / batch, summed_b / batch
        first.append(a)
        second.append(b)
        integrated.append(jnp.sum(a + b, axis=0))
    grads, _, _ = ep.ep_estimate(
        spec,
        params,
        inputs,
        targets,
        estimator="one_sided",
        beta=beta,
        free=free,
        nudged=free,
        states=states,
    )
    update = [-g for g in grads.weights]  # ΔW = −dL/dW = (1/β)[ρρ^β − ρρ⁰]
    return EPSTDP(tuple(first), tuple(second), tuple(integrated), tuple(update))
