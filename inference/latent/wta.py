"""Learning rules for networks of winner-take-all units (Jang, Skatchkovsky & Simeone 2020).

For one unit and bin, log p(s_t | u_t) = Σ_b s^b u^b − log(1 + Σ_b e^{u^b}) (docs/theory.md
§2), so its gradient — the score — is local: presynaptic trace × the unit's symbol error
s^b − softmax_b:

    ∂/∂w_{j,a,i,b,k} = x^{syn}_{j,a,k,t} (s^b_{i,t} − p^b_{i,t}),
    ∂/∂v_{i,a,b,k}   = x^{fb}_{i,a,k,t} (s^b_{i,t} − p^b_{i,t}),
    ∂/∂c_{m,i,b,k}   = x^{in}_{m,k,t} (s^b_{i,t} − p^b_{i,t}),
    ∂/∂γ_{i,b}       = s^b_{i,t} − p^b_{i,t},        p^b = e^{u^b} / (1 + Σ_{b'} e^{u^{b'}}).

:func:`wta_local_gradient` computes it (∇ log p, the building block; like
:func:`probsnn.inference.likelihood.online.local_gradient` it is not a loss gradient). The
rules are gradient estimators (docs/learning.md): each returns the gradient of a loss to
minimise, so ``optax.chain(rule, optax.adam(lr))`` descends it.

* :func:`wta_ml_rule` — the online maximum-likelihood rule, loss −log p(s_t | u_t) of the bin,
  with eligibility traces e_t = κ e_{t−1} + (1 − κ) ∇(−log p(s_t | u_t)).
* :func:`wta_variational_gradient` / :func:`wta_variational_rule` — hidden WTA units with the
  causally conditioned q(h‖x) (docs/theory.md §3), loss −Σ_sequences ELBO: visible parameters
  follow the visible units' local gradient, hidden ones the learning signal
  ℓ = Σ_t Σ_{i∈X} log p(x_{i,t} | u_{i,t}) times the hidden units' score,
  (ℓ − b) Σ_t Σ_{i∈H} ∇ log p(h_{i,t} | u_{i,t}), with the per-parameter variance-optimal
  baseline b of :mod:`probsnn.inference.score`. Samples are ``(B, K, T, N, C)``: K completions
  of each of B sequences, a trailing symbol axis.

The trainer of WTA networks is :func:`probsnn.inference.latent.trainer.wta_trainer`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
from probsnn.glm import Traces
from probsnn.inference._training import require_params
from probsnn.inference.likelihood.online import MLSignals, eligibility_rule
from probsnn.inference.likelihood.online import check_signals as check_channel_signals
from probsnn.inference.score import (
    BaselineState,
    check_kappa,
    init_baseline,
    optimal_baseline,
    score_gradient,
)
from probsnn.wta import (
    WTANetwork,
    WTAParams,
    channel_traces,
    check_one_hot,
    contract,
    symbol_probabilities,
    wta_log_prob,
)


class WTAVariationalSignals(NamedTuple):
    """What the variational rule reads: K completions of each of B sequences.

    Attributes:
        spikes: one-hot ``(B, K, T, N, C)``, visible units clamped to the data of sequence b and
            hidden units drawn from q(h‖x) (:func:`probsnn.wta.sample` with ``clamp``).
        inputs: ``(B, T, M)`` exogenous inputs of the sequences, or None for a network without
            inputs.
    """

    spikes: jax.Array
    inputs: jax.Array | None


def wta_local_gradient(spec: WTANetwork, params: WTAParams, signals: MLSignals, units=None):
    """The score ∇_θ Σ log p(s_{i,t} | u_{i,t}), summed over the signals' leading dims and the
    units — the gradient of the log-likelihood (an ascent direction), the building block of the
    rules, which return loss gradients.

    Args:
        spec, params: the network. signals: :class:`~probsnn.inference.MLSignals` with channel
            traces (syn ``(..., N·C, K_syn)``, as from :func:`probsnn.wta.channel_traces` or the
            ring buffers) and one-hot spikes ``(..., N, C)``; the leading dims may include time.
        units: optional ``(N,)`` bool, the units whose terms count (default all).

    Returns:
        :class:`~probsnn.wta.WTAParams` of gradients.

    Raises:
        TypeError, ValueError: signals that are not :class:`MLSignals` of this network
            (spikes not one-hot ``(..., N, C)``, traces of the wrong shapes or non-finite),
            params of the wrong shapes or non-finite (when concrete), ``units`` not ``(N,)``.
    """
    _check_ml_signals(spec, signals)
    _checks.finite_tree(spec.check_params(params), "params")
    if units is not None and np.shape(units) != (spec.n_units,):
        raise ValueError(f"units must have shape ({spec.n_units},), got {np.shape(units)}")
    error = _symbol_error(spec, params, signals, units)
    return _outer(spec, params, signals.traces, error)


def wta_ml_rule(spec: WTANetwork, kappa: float = 0.0) -> optax.GradientTransformation:
    """The online ML rule for WTA networks, a gradient estimator of the loss −log p(s_t | u_t).

    **Loss.** The negative log-likelihood of the bin, −Σ log p(s_{i,t} | u_{i,t}) summed over
    the signals' leading dims (trials, and time when a whole raster is passed) and the units.
    The rule returns the eligibility trace e_t = κ e_{t−1} + (1 − κ) ∇(−log p(s_t | u_t)): the
    exact loss gradient for κ = 0, a low-pass filtered one otherwise (Jang, Skatchkovsky &
    Simeone 2020).

    Args:
        spec: the network. kappa: eligibility decay κ in [0, 1) (0: the bin's gradient).

    Returns:
        ``init(params) -> EligibilityState``; ``update(signals: MLSignals, state, params) ->
        (grads, state)`` with grads = e_t (the sign of ``jax.grad`` of the loss).

    Raises:
        ValueError: κ outside [0, 1); at update, missing params or signals that are not
            :class:`MLSignals` of this network (see :func:`wta_local_gradient`).
    """
    _check_spec(spec)
    return eligibility_rule(partial(wta_local_gradient, spec), kappa, "wta_ml_rule")


def wta_variational_gradient(
    spec: WTANetwork, params: WTAParams, signals: WTAVariationalSignals, baseline=0.0
):
    """Monte-Carlo gradient of the loss −Σ_b ELBO(x_b) with hidden WTA units (docs/theory.md §3).

        ĝ = −Σ_b mean_k [ Σ_t Σ_{i∈X} ∇ log p(x_{i,t} | u)
                          + (ℓ_{bk} − b) Σ_t Σ_{i∈H} ∇ log p(h_{i,t} | u) ]

    An unbiased estimate for any b independent of the samples (Williams 1992); the sign of
    ``jax.grad`` of the loss.

    Args:
        spec, params: the network. signals: :class:`WTAVariationalSignals`, spikes
            ``(B, K, T, N, C)``.
        baseline: b, a scalar or a :class:`~probsnn.wta.WTAParams` of per-parameter baselines.

    Returns:
        ``(gradient, learning_signal)``: a :class:`~probsnn.wta.WTAParams` and ℓ ``(B, K)``.

    Raises:
        ValueError, TypeError: spikes not one-hot ``(B, K, T, N, C)``, bad inputs or params
            (wrong shapes, non-finite or complex values when concrete).
    """
    _checks.finite_tree(spec.check_params(params), "params")
    _check_signals(spec, signals)
    jax.tree.map(lambda b: _checks.real_array(b, "baseline", min_ndim=0), baseline)
    return _variational_gradient(spec, params, signals, baseline)


@partial(jax.jit, static_argnums=0)
def _variational_gradient(spec, params, signals, baseline):
    visible, signal, scores = _variational_terms(spec, params, signals)
    n_sequences = signal.shape[0]
    hidden = score_gradient(signal.reshape(-1), scores, baseline)
    return _loss_gradient(visible, hidden, n_sequences), signal


def wta_variational_rule(
    spec: WTANetwork, baseline_kappa: float = 0.9
) -> optax.GradientTransformation:
    """:func:`wta_variational_gradient` with the variance-optimal baseline, a gradient estimator
    of the loss −Σ_sequences ELBO.

    The per-parameter baseline b = E[ℓ e²] / E[e²] comes from moving averages over *earlier*
    updates (zero at the first), so every update is an unbiased estimate of the loss gradient.

    Args:
        spec: the network. baseline_kappa: κ_b in [0, 1), the forgetting factor of the baseline's
            moving averages (:func:`probsnn.inference.score.optimal_baseline`).

    Returns:
        ``init(params) -> BaselineState``; ``update(signals: WTAVariationalSignals, state,
        params) -> (grads, state)``, grads the estimate of ∇(−Σ_b ELBO).

    Raises:
        ValueError: κ_b outside [0, 1); at update, missing params or signals of the wrong
            shape (TypeError: not :class:`WTAVariationalSignals`).
    """
    _check_spec(spec)
    baseline_kappa = check_kappa(baseline_kappa, "baseline_kappa")

    def init(params):
        return init_baseline(params)

    def update(signals, state: BaselineState, params=None):
        require_params(params, "wta_variational_rule")
        _check_signals(spec, signals)
        grads, state, _ = _variational_step(spec, baseline_kappa, params, signals, state)
        return grads, state

    return optax.GradientTransformation(init, update)


def _variational_step(spec, kappa, params, signals, baseline_state: BaselineState):
    """The loss gradient of :func:`wta_variational_rule`, the new baseline state and ℓ
    ``(B, K)`` (traceable; the signals are not validated).

    The baseline is the ratio of the moving averages *before* this batch (zero at first), so it
    is independent of the batch's samples and the estimate stays unbiased; the batch then enters
    the averages.
    """
    visible, signal, scores = _variational_terms(spec, params, signals)
    flat = signal.reshape(-1)
    baseline, baseline_state = optimal_baseline(baseline_state, flat, scores, kappa)
    hidden = score_gradient(flat, scores, baseline)
    return _loss_gradient(visible, hidden, signal.shape[0]), baseline_state, signal


# --------------------------------------------------------------------------------------------
def _symbol_error(spec, params, signals: MLSignals, units):
    u = contract(spec, params, signals.traces)  # (..., N, C)
    error = jnp.asarray(signals.spikes, u.dtype) - symbol_probabilities(u)[..., 1:]
    if units is not None:
        error = error * jnp.asarray(units, u.dtype)[:, None]
    return error


def _outer(spec, params, x: Traces, error) -> WTAParams:
    """Σ over leading dims of trace × error, one term per parameter group."""
    n, c = spec.n_units, spec.n_symbols

    def by_unit(a):
        return a.reshape(*a.shape[:-2], n, c, a.shape[-1])

    syn = by_unit(x.syn)
    fb = syn if x.fb is None else by_unit(x.fb)
    mask = jnp.asarray(spec.units.connectivity, error.dtype)[:, None, :, None, None]
    grad_w = jnp.einsum("...jak,...ib->jaibk", syn, error) * mask
    grad_v = jnp.einsum("...iak,...ib->iabk", fb, error)
    if x.inputs is None:
        grad_c = jnp.zeros_like(params.c, error.dtype)
    else:
        grad_c = jnp.einsum("...mk,...ib->mibk", x.inputs, error)
    bias = jnp.sum(error.reshape(-1, n, c), axis=0)
    return WTAParams(w=grad_w, v=grad_v, c=grad_c, bias=bias)


def _variational_terms(spec, params, signals: WTAVariationalSignals):
    """The visible units' score Σ_b mean_k, the hidden units' per-sample scores (leaves
    ``(B·K, ...)``) and the learning signal ℓ ``(B, K)``."""
    spikes = signals.spikes
    n_samples = spikes.shape[1]
    inputs = signals.inputs
    if inputs is not None:
        inputs = jnp.broadcast_to(inputs[:, None], (*spikes.shape[:2], *inputs.shape[1:]))
    x = channel_traces(spec, spikes, inputs)
    error = _symbol_error(spec, params, MLSignals(x, spikes), None)
    visible = jnp.asarray(spec.visible, error.dtype)[:, None]
    visible_grad = jax.tree.map(lambda g: g / n_samples, _outer(spec, params, x, error * visible))

    def flat(a):
        return a.reshape(-1, *a.shape[2:])

    scores = jax.vmap(lambda xs, err: _outer(spec, params, xs, err))(
        jax.tree.map(flat, x), flat(error * (1.0 - visible))
    )
    u = contract(spec, params, x)
    signal = _visible_signal(spec, wta_log_prob(spikes, u))
    return visible_grad, signal, scores


def _loss_gradient(visible, hidden_mean, n_sequences):
    """−(Σ_b mean_k visible score + Σ_b mean_k hidden term), the hidden term given as the mean
    over all B·K samples."""
    return jax.tree.map(lambda v, h: -(v + n_sequences * h), visible, hidden_mean)


def _visible_signal(spec, log_p):
    """ℓ = Σ_t Σ_{i∈X} log p(x_{i,t} | u_{i,t}) from per-unit log-probs ``(..., T, N)``."""
    return jnp.sum(log_p * jnp.asarray(spec.visible, log_p.dtype), axis=(-2, -1))


def _check_spec(spec):
    if not isinstance(spec, WTANetwork):
        raise TypeError(f"spec must be a probsnn.wta.WTANetwork, got {type(spec).__name__}")


def _check_ml_signals(spec, signals):
    """One bin's :class:`MLSignals` of a WTA network: one-hot spikes ``(..., N, C)`` and the
    traces of the N·C symbol channels (checked against ``spec.channels``)."""
    if not isinstance(signals, MLSignals):
        raise TypeError(
            f"signals must be MLSignals(traces, spikes) of one bin, got {type(signals).__name__}"
        )
    spikes = check_one_hot(signals.spikes, "signals.spikes", spec.n_symbols)
    if spikes.shape[-2] != spec.n_units:
        raise ValueError(
            f"signals.spikes must have shape (..., {spec.n_units}, {spec.n_symbols}) (units, "
            f"symbols last), got {tuple(spikes.shape)}"
        )
    channels = jnp.reshape(spikes, (*spikes.shape[:-2], -1))
    check_channel_signals(spec.channels, MLSignals(signals.traces, channels))


def _check_signals(spec, signals):
    if not isinstance(signals, WTAVariationalSignals):
        raise TypeError(f"signals must be a WTAVariationalSignals, got {type(signals).__name__}")
    spikes = check_one_hot(signals.spikes, "signals.spikes", spec.n_symbols, spec.n_units)
    if spikes.ndim != 5:
        raise ValueError(
            "signals.spikes must have shape (B, K, T, N, C) (K samples of B sequences), "
            f"got {tuple(spikes.shape)}"
        )
    n_seq, _, n_steps = spikes.shape[:3]
    expected = (n_seq, n_steps, spec.n_inputs) if spec.n_inputs else None
    got = None if signals.inputs is None else tuple(np.shape(signals.inputs))
    if got != expected:
        raise ValueError(f"signals.inputs must have shape {expected} (B, T, M), got {got}")
    _checks.nonempty(spikes, "signals.spikes")
    if signals.inputs is not None:
        _checks.real_array(signals.inputs, "signals.inputs")
