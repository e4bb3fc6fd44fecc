"""Learning rules for networks of winner-take-all units (Jang, Skatchkovsky & Simeone 2020).

For one unit and bin, log p(s_t | u_t) = Σ_b s^b u^b − log(1 + Σ_b e^{u^b}) (MATH.md §2), so its
gradient is local — presynaptic trace × the unit's symbol error s^b − softmax_b:

    ∂/∂w_{j,a,i,b,k} = x^{syn}_{j,a,k,t} (s^b_{i,t} − p^b_{i,t}),
    ∂/∂v_{i,a,b,k}   = x^{fb}_{i,a,k,t} (s^b_{i,t} − p^b_{i,t}),
    ∂/∂c_{m,i,b,k}   = x^{in}_{m,k,t} (s^b_{i,t} − p^b_{i,t}),
    ∂/∂γ_{i,b}       = s^b_{i,t} − p^b_{i,t},        p^b = e^{u^b} / (1 + Σ_{b'} e^{u^{b'}}).

* :func:`wta_ml_rule` — the online maximum-likelihood rule with eligibility traces
  e_t = κ e_{t−1} + (1 − κ) ∇ log p(s_t | u_t), as an optax ``(init, update)`` pair.
* :func:`wta_variational_gradient` / :func:`wta_variational_rule` — hidden WTA units with the
  causally conditioned q(h‖x) (MATH.md §3): visible parameters follow the visible units' local
  gradient, hidden ones the learning signal ℓ = Σ_t Σ_{i∈X} log p(x_{i,t} | u_{i,t}) times the
  hidden units' score, (ℓ − b) Σ_t Σ_{i∈H} ∇ log p(h_{i,t} | u_{i,t}), with the per-parameter
  variance-optimal baseline b of :mod:`.score`.
* :func:`fit_wta` — a minibatch trainer over trials built on the variational rule (plain ML when
  every unit is visible).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from probsnn import _checks
from probsnn.glm import Traces
from probsnn.inference.likelihood.online import EligibilityState, MLSignals
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
    check_data,
    check_one_hot,
    contract,
    sample,
    symbol_probabilities,
    wta_log_prob,
)


class WTAVariationalSignals(NamedTuple):
    """What the variational rule reads: S samples of the whole sequence.

    Attributes:
        spikes: one-hot ``(S, T, N, C)``, visible units clamped to data and hidden units drawn
            from q(h‖x) (:func:`probsnn.wta.sample` with ``clamp``). The S samples may come from
            different data trials; the rule then estimates the gradient of their mean ELBO.
        inputs: ``(S, T, M)`` exogenous inputs, or None for a network without inputs.
    """

    spikes: jax.Array
    inputs: jax.Array | None


def wta_local_gradient(spec: WTANetwork, params: WTAParams, signals: MLSignals, units=None):
    """∇_θ Σ log p(s_{i,t} | u_{i,t}), summed over the signals' leading dims and the units.

    Args:
        spec, params: the network. signals: :class:`~probsnn.inference.MLSignals` with channel
            traces (syn ``(..., N·C, K_syn)``, as from :func:`probsnn.wta.channel_traces` or the
            ring buffers) and one-hot spikes ``(..., N, C)``; the leading dims may include time.
        units: optional ``(N,)`` bool, the units whose terms count (default all).

    Returns:
        :class:`~probsnn.wta.WTAParams` of gradients.
    """
    error = _symbol_error(spec, params, signals, units)
    return _outer(spec, params, signals.traces, error)


def wta_ml_rule(spec: WTANetwork, kappa: float = 0.0) -> optax.GradientTransformation:
    """The online ML rule for WTA networks as an ``(init, update)`` pair.

    Args:
        spec: the network. kappa: eligibility decay κ in [0, 1) (0: the bin's gradient).

    Returns:
        ``init(params) -> EligibilityState``; ``update(signals: MLSignals, state, params) ->
        (updates, state)`` with updates = e_t, an ascent direction of the log-likelihood.

    Raises:
        ValueError: κ outside [0, 1).
    """
    kappa = check_kappa(kappa)

    def init(params):
        return EligibilityState(jax.tree.map(jnp.zeros_like, params))

    def update(signals, state, params=None):
        _require_params(params, "wta_ml_rule")
        grad = wta_local_gradient(spec, params, signals)
        eligibility = jax.tree.map(
            lambda e, g: kappa * e + (1.0 - kappa) * g, state.eligibility, grad
        )
        return eligibility, EligibilityState(eligibility)

    return optax.GradientTransformation(init, update)


def wta_variational_gradient(
    spec: WTANetwork, params: WTAParams, signals: WTAVariationalSignals, baseline=0.0
):
    """Monte-Carlo gradient of the ELBO with hidden WTA units (MATH.md §3).

        ∇ELBO ≈ mean_s [ Σ_t Σ_{i∈X} ∇ log p(x_{i,t} | u)
                         + (ℓ_s − b) Σ_t Σ_{i∈H} ∇ log p(h_{i,t} | u) ]

    Args:
        spec, params: the network. signals: :class:`WTAVariationalSignals` of S samples.
        baseline: b, a scalar or a :class:`~probsnn.wta.WTAParams` of per-parameter baselines.

    Returns:
        ``(gradient, learning_signal)``: a :class:`~probsnn.wta.WTAParams` and ℓ ``(S,)``.

    Raises:
        ValueError, TypeError: spikes not one-hot ``(S, T, N, C)``, bad inputs or params.
    """
    spec.check_params(params)
    _check_signals(spec, signals)
    return _variational_gradient(spec, params, signals, baseline)


@partial(jax.jit, static_argnums=0)
def _variational_gradient(spec, params, signals, baseline):
    visible, signal, scores = _variational_terms(spec, params, signals)
    return _add(visible, score_gradient(signal, scores, baseline)), signal


def wta_variational_rule(
    spec: WTANetwork, baseline_kappa: float = 0.9
) -> optax.GradientTransformation:
    """The variational rule with the variance-optimal baseline as an ``(init, update)`` pair.

    The per-parameter baseline b = E[ℓ e²] / E[e²] comes from moving averages over *earlier*
    updates (zero at the first), so every update is an unbiased estimate of the ELBO gradient.

    Args:
        spec: the network. baseline_kappa: κ_b in [0, 1), the forgetting factor of the baseline's
            moving averages (:func:`probsnn.inference.score.optimal_baseline`).

    Returns:
        ``init(params) -> BaselineState``; ``update(signals: WTAVariationalSignals, state,
        params) -> (updates, state)``, updates the ascent direction of the ELBO.

    Raises:
        ValueError: κ_b outside [0, 1).
    """
    baseline_kappa = check_kappa(baseline_kappa, "baseline_kappa")

    def init(params):
        return init_baseline(params)

    def update(signals, state: BaselineState, params=None):
        _require_params(params, "wta_variational_rule")
        updates, state, _ = _variational_step(spec, baseline_kappa, params, signals, state)
        return updates, state

    return optax.GradientTransformation(init, update)


class WTAFit(NamedTuple):
    """Result of :func:`fit_wta`: final params and per-epoch history ``(n_epochs,)`` of the mean
    learning signal per trial (the ELBO estimate; the log-likelihood without hidden units)."""

    params: WTAParams
    history: np.ndarray


def fit_wta(
    spec: WTANetwork,
    params: WTAParams,
    key,
    spikes,
    inputs=None,
    *,
    n_epochs: int = 10,
    batch_size: int = 32,
    n_samples: int = 4,
    optimizer: optax.GradientTransformation | None = None,
    baseline_kappa: float = 0.9,
    progress: bool = False,
) -> WTAFit:
    """Train on visible data with :func:`wta_variational_rule`, in shuffled minibatches.

    For each minibatch of trials, ``n_samples`` hidden sequences per trial are drawn from q(h‖x)
    (the visible units clamped), and the optimizer (default ``optax.adam(1e-2)``) is applied to
    the negated ascent direction. Without hidden units this is stochastic-gradient ML.

    Args:
        spec, params: the network and starting parameters. key: PRNG key.
        spikes: one-hot visible spikes ``(n_trials, T, N_visible, C)``, units in the order of
            ``numpy.flatnonzero(spec.visible)``. inputs: ``(n_trials, T, M)`` or None.
        n_epochs, batch_size, n_samples: sizes (batch_size <= n_trials; trials beyond the last
            whole batch of an epoch's permutation are skipped that epoch).
        baseline_kappa: forgetting factor of the baseline. progress: show a progress bar.

    Returns:
        :class:`WTAFit`.

    Raises:
        ValueError, TypeError: on bad sizes, spikes or inputs.
    """
    spec.check_params(params)
    n_epochs = _checks.positive_int(n_epochs, "n_epochs")
    n_samples = _checks.positive_int(n_samples, "n_samples")
    n_visible = int(np.sum(spec.visible))
    visible = _visible_data(spec, spikes, n_visible)
    n_trials = visible.shape[0]
    batch_size = _checks.positive_int(batch_size, "batch_size")
    if batch_size > n_trials:
        raise ValueError(f"batch_size must be <= n_trials={n_trials}, got {batch_size}")
    n_steps = visible.shape[1]
    full = jnp.zeros((n_trials, n_steps, spec.n_units, spec.n_symbols), jnp.uint8)
    full = full.at[:, :, np.flatnonzero(spec.visible)].set(visible)
    _, inputs = check_data(spec, full, inputs)
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    baseline_kappa = check_kappa(baseline_kappa, "baseline_kappa")
    state = (init_baseline(params), optimizer.init(params))
    history = []
    for _ in tqdm(range(n_epochs), disable=not progress, desc="fit_wta"):
        key, epoch_key = jax.random.split(key)
        params, state, signal = _epoch(
            spec,
            optimizer,
            baseline_kappa,
            n_samples,
            batch_size,
            params,
            state,
            epoch_key,
            visible,
            inputs,
        )
        history.append(float(signal))
    return WTAFit(params=params, history=np.asarray(history))


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _epoch(spec, optimizer, kappa, n_samples, batch_size, params, state, key, visible, inputs):
    n_trials, n_steps = visible.shape[:2]
    n_batches = n_trials // batch_size
    order_key, sample_key = jax.random.split(key)
    order = jax.random.permutation(order_key, n_trials)[: n_batches * batch_size]
    batches = order.reshape(n_batches, batch_size)

    def body(carry, xs):
        params, (baseline_state, opt_state) = carry
        index, batch_key = xs
        clamp = jnp.repeat(visible[index], n_samples, axis=0)
        batch_inputs = None if inputs is None else jnp.repeat(inputs[index], n_samples, axis=0)
        spikes = sample(spec, params, batch_key, n_steps, len(clamp), batch_inputs, clamp=clamp)
        signals = WTAVariationalSignals(spikes, batch_inputs)
        ascent, baseline_state, signal = _variational_step(
            spec, kappa, params, signals, baseline_state
        )
        descent = jax.tree.map(jnp.negative, ascent)
        updates, opt_state = optimizer.update(descent, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, (baseline_state, opt_state)), jnp.mean(signal)

    keys = jax.random.split(sample_key, n_batches)
    (params, state), signals = jax.lax.scan(body, (params, state), (batches, keys))
    return params, state, jnp.mean(signals)


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
    """Visible gradient (mean over samples), hidden per-sample scores, learning signal ℓ."""
    x = channel_traces(spec, signals.spikes, signals.inputs)
    mlsignals = MLSignals(x, signals.spikes)
    error = _symbol_error(spec, params, mlsignals, None)
    visible = jnp.asarray(spec.visible, error.dtype)[:, None]
    n_samples = signals.spikes.shape[0]
    visible_grad = jax.tree.map(lambda g: g / n_samples, _outer(spec, params, x, error * visible))
    scores = jax.vmap(lambda xs, err: _outer(spec, params, xs, err))(x, error * (1.0 - visible))
    u = contract(spec, params, x)
    signal = _visible_signal(spec, wta_log_prob(signals.spikes, u))
    return visible_grad, signal, scores


def _variational_step(spec, kappa, params, signals, baseline_state: BaselineState):
    """Ascent direction, the new baseline state and ℓ ``(S,)``.

    The baseline is the ratio of the moving averages *before* this batch (zero at first), so it
    is independent of the batch's samples and the estimate stays unbiased; the batch then enters
    the averages.
    """
    visible, signal, scores = _variational_terms(spec, params, signals)
    baseline = jax.tree.map(
        lambda num, den: jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0),
        baseline_state.signal_moment,
        baseline_state.score_moment,
    )
    _, baseline_state = optimal_baseline(baseline_state, signal, scores, kappa)
    return _add(visible, score_gradient(signal, scores, baseline)), baseline_state, signal


def _visible_signal(spec, log_p):
    """ℓ_s = Σ_t Σ_{i∈X} log p(x_{i,t} | u_{i,t}) from per-unit log-probs ``(S, T, N)``."""
    return jnp.sum(log_p * jnp.asarray(spec.visible, log_p.dtype), axis=(-2, -1))


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def _require_params(params, name):
    if params is None:
        raise ValueError(f"{name}.update needs params (the current network parameters)")


def _check_signals(spec, signals):
    if not isinstance(signals, WTAVariationalSignals):
        raise TypeError(f"signals must be a WTAVariationalSignals, got {type(signals).__name__}")
    spikes, _ = check_data(spec, signals.spikes, signals.inputs)
    if spikes.ndim != 4:
        raise ValueError(
            f"signals.spikes must have shape (S, T, N, C) with S samples, got {spikes.shape}"
        )


def _visible_data(spec, spikes, n_visible):
    spikes = check_one_hot(spikes, "spikes", spec.n_symbols, n_visible)
    if spikes.ndim != 4:
        raise ValueError(
            f"spikes must have shape (n_trials, T, {n_visible}, {spec.n_symbols}), "
            f"got {tuple(spikes.shape)}"
        )
    return jnp.asarray(spikes, jnp.uint8)
