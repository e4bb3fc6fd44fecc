"""Multi-sample learning and marginal-likelihood estimation for networks with hidden neurons.

With K completions h_k ~ q(h‖x) of a visible sequence x (the network's hidden dynamics with x
clamped), the importance log-weights are w_k = log p(x, h_k) − log q(h_k‖x) = ℓ_k, the learning
signal (docs/theory.md §3; Jang & Simeone 2020, arXiv 2007.11894). Then

* the importance-weighted bound IW_K = E[log (1/K) Σ_k e^{w_k}] (Burda et al. 2016) satisfies
  ELBO = IW_1 ≤ IW_K ≤ IW_{K+1} ≤ log p(x), and IW_K → log p(x) as K grows;
* **VIMCO** (Mnih & Rezende 2016) estimates ∇ IW_K = E[Σ_k softmax(w)_k ∇ℓ_k + Σ_k ŝ_k ∇log q(h_k)]
  with the leave-one-out signals ŝ_k of :func:`probsnn.inference.score.vimco_signals`;
* **GEM** (Jang & Simeone 2020) estimates ∇ log p(x) = E_{p(h|x)}[∇ log p(x, h)] (Fisher's
  identity) by Σ_k softmax(w)_k ∇ log p(x, h_k), self-normalised importance sampling.

Both are gradient estimators reading
:class:`~probsnn.inference.latent.variational.VariationalSignals` (:func:`multisample_rule`); like
every gradient estimator of probsnn (docs/learning.md) they return the gradient of a loss to
minimise: −Σ_sequences IW_K for VIMCO, −Σ_sequences log p(x) for GEM.

**log p(x) for evaluation**, each with a standard error:

* :func:`log_marginal_is` — importance sampling with proposal q: log (1/K) Σ_k e^{ℓ_k};
* :func:`log_marginal_smc` — a bootstrap particle filter over the hidden spikes (Gordon, Salmond
  & Smith 1993): particles propagate with the network's hidden dynamics, are weighted bin by bin
  by p(x_t | past) and resampled (systematically) when the effective sample size drops; the
  product of the bins' mean weights is unbiased for p(x) (Del Moral 2004);
* :func:`iw_bound_estimate` — the mean of independent draws of the K-sample bound (K = 1: the
  ELBO);
* :func:`exact_log_marginal`, :func:`exact_elbo` — by enumeration of every hidden raster, for
  tiny networks (N_hidden · T ≤ 16); both differentiable in the parameters.

The estimators of log p(x) average unbiased estimates Ẑ_r of p(x) and report
log mean_r Ẑ_r with the delta-method standard error sd(Ẑ) / (√R mean Ẑ).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import logsumexp

from probsnn import _checks, history
from probsnn.glm import bernoulli_log_prob, emit_spikes
from probsnn.glm import traces as filter_traces
from probsnn.inference._training import stateless_rule
from probsnn.inference.latent.variational import (
    VariationalSignals,
    VariationalTerms,
    _log_probs,
    _sample_completions,
    _split_terms,
    check_signals,
    signal_traces,
)
from probsnn.inference.score import _real_values, iw_bound, vimco_signals
from probsnn.models.hidden import check_hidden_spec, check_visible
from probsnn.network import Network, Params
from probsnn.simulate import check_propagation, initial_state, step_parts

MAX_ENUMERATED_BITS = 16
METHODS = ("gem", "vimco")


class Estimate(NamedTuple):
    """An estimate and its standard error, shaped like the sequences' batch dims (scalars for
    one unbatched sequence)."""

    value: jax.Array
    standard_error: jax.Array


# --------------------------------------------------------------------------------------------
# Multi-sample rules
# --------------------------------------------------------------------------------------------


def multisample_gradient(spec: Network, params: Params, signals, method: str = "vimco") -> Params:
    """The VIMCO or GEM estimate of the gradient of a loss, from K completions of each sequence.

    With ℓ_{b,k} the learning signal of completion k of sequence b and α = softmax_k(ℓ_b):

        vimco: −Σ_b Σ_k [α_{bk} ∇ℓ_{bk} + ŝ_{bk} ∇log q(h_{bk}‖x_b)]   (ŝ: leave-one-out signals)
        gem:   −Σ_b Σ_k α_{bk} [∇ℓ_{bk} + ∇log q(h_{bk}‖x_b)]

    computed as one gradient of −Σ (stopped weight) × log-probability. The VIMCO estimate is
    unbiased for ∇ of the loss −Σ_b IW_K(x_b) (Mnih & Rezende 2016); GEM's is consistent (as
    K → ∞) for ∇ of −Σ_b log p(x_b) (Jang & Simeone 2020).

    Args:
        spec, params: the network. signals: :class:`VariationalSignals` with spikes
            ``(B, K, T, N)``. method: ``"vimco"`` (K >= 2) or ``"gem"``.

    Returns:
        A :class:`~probsnn.Params` of loss gradients (the sign of ``jax.grad``).

    Raises:
        ValueError: an unknown method, K < 2 for VIMCO, signals of the wrong shape or not
            binary, non-finite params (when concrete).
        TypeError: signals that are not VariationalSignals, complex values.
    """
    check_hidden_spec(spec)
    _checks.option(method, "method", METHODS)
    _checks.finite_tree(spec.check_params(params), "params")
    signals = check_signals(spec, signals)
    n_samples = signals.spikes.shape[1]
    if method == "vimco" and n_samples < 2:
        raise ValueError(f"VIMCO needs K >= 2 samples per sequence, got K={n_samples}")
    x = signal_traces(spec, signals)
    visible = jnp.asarray(spec.visible, x.syn.dtype)

    def sums(p):
        log_probs = _log_probs(spec, p, x, signals.spikes)
        return (
            jnp.sum(log_probs * visible, axis=(-2, -1)),
            jnp.sum(log_probs * (1 - visible), axis=(-2, -1)),
        )

    signal, _ = sums(params)  # (B, K)
    importance = jax.nn.softmax(signal, axis=1)
    hidden_weight = importance if method == "gem" else vimco_signals(signal.T).T

    def surrogate_loss(p):
        signal_p, log_q = sums(p)
        return -jnp.sum(importance * signal_p + hidden_weight * log_q)

    return spec.masked(jax.grad(surrogate_loss)(params))


class MultisampleRule(optax.GradientTransformation):
    """The ``(init, update)`` pair of :func:`multisample_rule`: a plain
    ``optax.GradientTransformation`` whose type tells
    :func:`~probsnn.inference.latent.trainer.variational_trainer` that the loss it descends is a
    multi-sample bound (reported as −IW_K), not the ELBO."""

    __slots__ = ()


def multisample_rule(spec: Network, method: str = "vimco") -> MultisampleRule:
    """:func:`multisample_gradient` as a stateless gradient estimator reading
    :class:`VariationalSignals` (use it as the ``rule`` of
    :func:`~probsnn.inference.latent.trainer.variational_trainer`).

    **Loss.** ``"vimco"``: −Σ_sequences IW_K, the K-sample importance-weighted bound (unbiased
    estimate of its gradient). ``"gem"``: −Σ_sequences log p(x) (self-normalised importance
    sampling, consistent as K grows). K is the signals' sample axis.

    Returns:
        :class:`MultisampleRule`: ``init(params) -> optax.EmptyState``;
        ``update(signals, state, params) -> (grads, state)``.

    Raises:
        ValueError: an unknown method or a spec without hidden neurons; at update, what
            :func:`multisample_gradient` raises.
    """
    check_hidden_spec(spec)
    _checks.option(method, "method", METHODS)

    def gradient(params, signals):
        return multisample_gradient(spec, params, signals, method)

    return stateless_rule(gradient, "multisample_rule", MultisampleRule)


# --------------------------------------------------------------------------------------------
# Estimators of log p(x) and of the bounds
# --------------------------------------------------------------------------------------------


def log_mean_exp(log_values, axis: int = -1) -> Estimate:
    """log of the mean of e^{v} over ``axis``, with the delta-method standard error
    sd(e^v) / (√n mean(e^v)) (sample sd, n − 1 degrees of freedom). Needs n >= 2; refuses
    complex values (TypeError) and NaN or +inf (ValueError, when concrete)."""
    log_values = _real_values(log_values, "log_values", allow="-inf")
    if log_values.ndim == 0:
        raise ValueError("log_values must have at least one axis, got a scalar")
    n = _checks.positive_int(int(log_values.shape[axis]), "the number of values", 2)
    value = logsumexp(log_values, axis=axis) - jnp.log(n)
    ratio = jnp.exp(log_values - jnp.expand_dims(value, axis))  # e^v / mean e^v
    return Estimate(value, jnp.std(ratio, axis=axis, ddof=1) / jnp.sqrt(n))


@partial(jax.jit, static_argnums=(0, 5))
def _completion_signals(spec, params, key, visible, inputs, n_samples):
    """Learning signals ℓ ``(B, n)`` of n completions of each validated sequence."""
    spikes = _sample_completions(spec, params, key, visible, inputs, n_samples)
    signals = VariationalSignals(spikes.astype(params.bias.dtype), inputs)
    x = signal_traces(spec, signals)
    return _split_terms(spec, _log_probs(spec, params, x, signals.spikes)).signal


def _check_estimator_inputs(spec, params, visible, inputs, key=None):
    """The checks shared by the estimators of log p(x): a hidden-neuron spec, finite params of
    its shapes, non-empty data, a PRNG key (when one is taken); returns the key."""
    check_hidden_spec(spec)
    _checks.finite_tree(spec.check_params(params), "params")
    _checks.nonempty(visible, "visible")
    if inputs is not None:
        _checks.nonempty(inputs, "inputs")
    return None if key is None else _checks.prng_key(key, "key")


def _finish(estimate: Estimate, batched: bool) -> Estimate:
    return estimate if batched else Estimate(estimate.value[0], estimate.standard_error[0])


def log_marginal_is(
    spec: Network, params: Params, visible, *, key, n_samples: int, inputs=None
) -> Estimate:
    """Importance-sampling estimate of log p(x) with proposal q(h‖x): log (1/K) Σ_k e^{ℓ_k}.

    Its value is one draw of the K-sample bound (biased low by about SE²/2).

    Args:
        spec, params: the network. visible: ``(T, N_visible)`` or ``(B, T, N_visible)``.
        key: PRNG key. n_samples: K >= 2. inputs: exogenous inputs when the network has them.

    Returns:
        :class:`Estimate`, per sequence.

    Raises:
        ValueError, TypeError: bad data (empty, non-binary:
            :func:`probsnn.models.hidden.check_visible`), non-finite params, K < 2, a key that is
            not a PRNG key.
    """
    key = _check_estimator_inputs(spec, params, visible, inputs, key)
    n_samples = _checks.positive_int(n_samples, "n_samples", 2)
    visible, inputs, batched = check_visible(spec, visible, inputs)
    signal = _completion_signals(spec, params, key, visible, inputs, n_samples)
    return _finish(log_mean_exp(signal, axis=1), batched)


def iw_bound_estimate(
    spec: Network,
    params: Params,
    visible,
    *,
    key,
    n_samples: int,
    n_repeats: int = 16,
    inputs=None,
) -> Estimate:
    """Monte-Carlo estimate of IW_K = E[log (1/K) Σ_k e^{ℓ_k}]: the mean of ``n_repeats``
    independent draws, standard error sd / √R. ``n_samples=1`` estimates the ELBO.

    Args:
        spec, params, visible, key, inputs: as :func:`log_marginal_is`.
        n_samples: K >= 1. n_repeats: R >= 2 draws.

    Raises:
        ValueError, TypeError: bad data, non-finite params, K < 1, R < 2, a bad key.
    """
    key = _check_estimator_inputs(spec, params, visible, inputs, key)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    n_repeats = _checks.positive_int(n_repeats, "n_repeats", 2)
    visible, inputs, batched = check_visible(spec, visible, inputs)
    signal = _completion_signals(spec, params, key, visible, inputs, n_samples * n_repeats)
    draws = iw_bound(signal.reshape(signal.shape[0], n_repeats, n_samples), axis=2)
    standard_error = jnp.std(draws, axis=1, ddof=1) / np.sqrt(n_repeats)
    return _finish(Estimate(jnp.mean(draws, axis=1), standard_error), batched)


def log_marginal_smc(
    spec: Network,
    params: Params,
    visible,
    *,
    key,
    n_particles: int,
    n_repeats: int = 8,
    ess_threshold: float = 0.5,
    inputs=None,
) -> Estimate:
    """Bootstrap particle-filter estimate of log p(x), over the hidden spikes.

    Each bin t: every particle's potentials u_t from its past; incremental weight
    p(x_t | u_t) = Π_{i∈X} σ((2x_{i,t} − 1) u_{i,t}); log Ẑ += log Σ_p W_p p(x_t | u_t^p)
    (W the normalised weights); systematic resampling when the effective sample size
    1 / Σ W² falls below ``ess_threshold`` · P; then h_t ~ p(h_t | u_t) for every particle.
    A particle's past is the sampler's (:func:`probsnn.simulate.step_parts`): J trace
    states per neuron for recursive bases, whatever the kernels' length, else the last L bins.
    ``n_repeats`` independent filters give log mean_r Ẑ_r and its standard error.

    Args:
        spec, params, visible, key, inputs: as :func:`log_marginal_is`.
        n_particles: P >= 1 particles per filter. n_repeats: R >= 2 filters.
        ess_threshold: in [0, 1]; 1 resamples every bin, 0 never (plain importance sampling).

    Returns:
        :class:`Estimate`, per sequence.

    Raises:
        ValueError, TypeError: bad data, non-finite params, P < 1, R < 2, a threshold outside
            [0, 1], a bad key.
    """
    key = _check_estimator_inputs(spec, params, visible, inputs, key)
    n_particles = _checks.positive_int(n_particles, "n_particles")
    n_repeats = _checks.positive_int(n_repeats, "n_repeats", 2)
    ess_threshold = _checks.finite_float(ess_threshold, "ess_threshold")
    if not 0.0 <= float(ess_threshold) <= 1.0:
        raise ValueError(f"ess_threshold must lie in [0, 1], got {ess_threshold}")
    visible, inputs, batched = check_visible(spec, visible, inputs)
    dtype = params.bias.dtype
    visible = visible.astype(dtype)
    log_z = _particle_filter(
        spec, n_particles, n_repeats, params, key, visible, inputs, float(ess_threshold)
    )
    return _finish(log_mean_exp(log_z, axis=0), batched)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _particle_filter(spec, n_particles, n_repeats, params, key, visible, inputs, ess_threshold):
    """log Ẑ ``(R, B)`` of R independent filters per sequence."""
    n_seq = visible.shape[0]
    batch = (n_repeats, n_seq, n_particles)
    dtype = visible.dtype
    propagation, capacity = check_propagation(spec, "auto", None, math.prod(batch))
    potential, deliver = step_parts(spec, params, propagation, capacity, dtype=dtype)
    visible_index = np.flatnonzero(spec.visible)
    xs = (jnp.swapaxes(visible, 0, 1), None if inputs is None else jnp.swapaxes(inputs, 0, 1))

    def body(carry, x_t):
        state, log_w, log_z = carry
        visible_t, input_t = x_t
        resample_key, draw_key = jax.random.split(jax.random.fold_in(key, state.t))
        u = potential(state)  # (R, B, P, N)
        observed = visible_t[None, :, None, :]
        increment = jnp.sum(bernoulli_log_prob(observed, u[..., visible_index]), axis=-1)
        joint = log_w + increment
        step_log_z = logsumexp(joint, axis=-1)
        log_w = joint - step_log_z[..., None]
        ess = 1.0 / jnp.sum(jnp.exp(2.0 * log_w), axis=-1)
        resample = ess < ess_threshold * n_particles
        ancestors = jnp.where(
            resample[..., None],
            _systematic_resample(resample_key, log_w),
            jnp.arange(n_particles),
        )
        log_w = jnp.where(resample[..., None], -jnp.log(float(n_particles)), log_w)
        state = history.take(state, ancestors)
        u = jnp.take_along_axis(u, ancestors[..., None], axis=2)
        clamp_t = (
            jnp.zeros(u.shape, dtype)
            .at[..., visible_index]
            .set(jnp.broadcast_to(observed, (*u.shape[:-1], visible_index.size)))
        )
        spikes_t = emit_spikes(draw_key, u, clamp_t, spec.visible).astype(dtype)
        if input_t is not None:
            input_t = jnp.broadcast_to(input_t[None, :, None, :], (*batch, input_t.shape[-1]))
        return (deliver(state, spikes_t, input_t), log_w, log_z + step_log_z), None

    start = (
        initial_state(spec, batch, propagation, dtype),
        jnp.full(batch, -jnp.log(float(n_particles)), dtype),
        jnp.zeros(batch[:2], dtype),
    )
    (_, _, log_z), _ = jax.lax.scan(body, start, xs)
    return log_z


def _systematic_resample(key, log_w):
    """Ancestor indices ``(..., P)`` by systematic resampling of normalised log-weights."""
    n = log_w.shape[-1]
    cumulative = jnp.cumsum(jnp.exp(log_w), axis=-1)
    offsets = jax.random.uniform(key, (*log_w.shape[:-1], 1), log_w.dtype)
    positions = (jnp.arange(n, dtype=log_w.dtype) + offsets) / n
    flat_c = cumulative.reshape(-1, n)
    flat_p = positions.reshape(-1, n) * flat_c[:, -1:]  # guard against round-off in the total
    ancestors = jax.vmap(jnp.searchsorted)(flat_c, flat_p)
    return jnp.minimum(ancestors, n - 1).reshape(log_w.shape)


# --------------------------------------------------------------------------------------------
# Exact values by enumeration
# --------------------------------------------------------------------------------------------


def enumerate_terms(spec: Network, params: Params, visible, inputs=None) -> VariationalTerms:
    """ℓ and log q(h‖x) of every hidden raster h ∈ {0,1}^{T × N_hidden}, for tiny networks.

    Args:
        spec, params: the network. visible: ``(T, N_visible)`` or ``(B, T, N_visible)``.
        inputs: exogenous inputs when the network has them.

    Returns:
        :class:`~probsnn.inference.latent.variational.VariationalTerms` with fields ``(C,)`` or
        ``(B, C)``, C = 2^{T · N_hidden}, configuration c having h_{t,j} = bit (t · N_hidden + j)
        of c. Differentiable in ``params``.

    Raises:
        ValueError: T · N_hidden > 16, bad (empty, non-binary) data, non-finite params (when
            concrete: the function is differentiable in ``params``).
    """
    _check_estimator_inputs(spec, params, visible, inputs)
    visible, inputs, batched = check_visible(spec, visible, inputs)
    n_steps = visible.shape[1]
    n_hidden = int(np.sum(spec.hidden))
    n_bits = n_steps * n_hidden
    if n_bits > MAX_ENUMERATED_BITS:
        raise ValueError(
            f"exact enumeration needs T * N_hidden <= {MAX_ENUMERATED_BITS}, got "
            f"T={n_steps} and N_hidden={n_hidden}"
        )
    terms = _enumerated(spec, params, visible, inputs)
    return terms if batched else VariationalTerms(terms.signal[0], terms.log_q[0])


@partial(jax.jit, static_argnums=0)
def _enumerated(spec, params, visible, inputs):
    """Terms ``(B, C)`` of every hidden raster of each validated sequence."""
    n_steps, n_hidden = visible.shape[1], int(np.sum(spec.hidden))
    dtype = params.bias.dtype
    n_codes = 2 ** (n_steps * n_hidden)
    codes = jnp.arange(n_codes, dtype=jnp.int32)[:, None]
    bits = (codes >> jnp.arange(n_steps * n_hidden, dtype=jnp.int32)) & 1
    rasters = jnp.zeros((n_codes, n_steps, spec.n_neurons), dtype)
    rasters = rasters.at[..., np.flatnonzero(spec.hidden)].set(
        bits.reshape(-1, n_steps, n_hidden).astype(dtype)
    )

    def one_sequence(data):
        visible_s, inputs_s = data
        spikes = rasters.at[..., np.flatnonzero(spec.visible)].set(visible_s.astype(dtype))
        if inputs_s is not None:
            inputs_s = jnp.broadcast_to(inputs_s, (n_codes, *inputs_s.shape))
        x = filter_traces(spec, spikes, inputs_s)
        return _split_terms(spec, _log_probs(spec, params, x, spikes))

    return jax.lax.map(one_sequence, (visible, inputs))


def exact_log_marginal(spec: Network, params: Params, visible, inputs=None):
    """log p(x) = log Σ_h p(x, h) by enumeration (see :func:`enumerate_terms`): a scalar, or
    ``(B,)`` for batched ``visible``. Differentiable in ``params``."""
    terms = enumerate_terms(spec, params, visible, inputs)
    return logsumexp(terms.signal + terms.log_q, axis=-1)


def exact_elbo(spec: Network, params: Params, visible, inputs=None):
    """ELBO = Σ_h q(h‖x) ℓ(x, h) by enumeration: a scalar, or ``(B,)``. Differentiable in
    ``params`` (through ℓ and through q)."""
    terms = enumerate_terms(spec, params, visible, inputs)
    return jnp.sum(jnp.exp(terms.log_q) * terms.signal, axis=-1)
