"""The online maximum-likelihood rule: presynaptic trace × postsynaptic error.

For one bin, the gradient of log p(s_t | u_t) = log σ((2s_t − 1) u_t) is local
(Jang, Simeone, Gardner & Grüning 2019, IEEE SPM 36(6):64, eq. for ∇ log p):

    ∂/∂w_{j,i,k} = x^{syn}_{j,k,t} (s_{i,t} − σ(u_{i,t})),
    ∂/∂v_{i,k}   = x^{fb}_{i,k,t} (s_{i,t} − σ(u_{i,t})),
    ∂/∂c_{m,i,k} = x^{in}_{m,k,t} (s_{i,t} − σ(u_{i,t})),
    ∂/∂γ_i       = s_{i,t} − σ(u_{i,t}),

and the online rule follows the eligibility trace e_t = κ e_{t−1} + (1 − κ) ∇ log p(s_t | u_t),
θ ← θ + η e_t. :func:`ml_rule` is this as an optax gradient transformation whose "updates" input
is the bin's :class:`MLSignals`; it returns ascent deltas, so
``optax.chain(ml_rule(spec), optax.scale(η))`` followed by ``optax.apply_updates`` is the rule.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from probsnn import _checks
from probsnn.glm import (
    Traces,
    advance,
    bernoulli_log_prob,
    check_data,
    contract,
    init_state,
    ring_traces,
)
from probsnn.inference.score import check_kappa
from probsnn.network import Network, Params


class MLSignals(NamedTuple):
    """What the ML rule reads in one bin (leading batch dims, e.g. trials, are summed over).

    Attributes:
        traces: :class:`~probsnn.Traces` of the bin, syn ``(..., N, K_syn)`` etc.
        spikes: ``(..., N)`` the bin's spikes s_t.
    """

    traces: Traces
    spikes: jax.Array


class EligibilityState(NamedTuple):
    """Eligibility traces e, one per parameter (a :class:`~probsnn.Params`)."""

    eligibility: Params


def local_gradient(spec: Network, params: Params, signals: MLSignals) -> Params:
    """∇_θ log p(s_t | u_t) for one bin, summed over the signals' leading batch dims."""
    x = signals.traces
    u = contract(spec, params, x)  # (..., N)
    error = jnp.asarray(signals.spikes, u.dtype) - jax.nn.sigmoid(u)  # (..., N)
    batch = tuple(range(error.ndim - 1))
    mask = jnp.asarray(spec.connectivity, u.dtype)[:, :, None]
    grad_w = jnp.einsum("...jk,...i->jik", x.syn, error)
    feedback_traces = x.syn if x.fb is None else x.fb
    grad_v = jnp.einsum("...ik,...i->ik", feedback_traces, error)
    if x.inputs is None:
        grad_c = jnp.zeros_like(params.c)
    else:
        grad_c = jnp.einsum("...mk,...i->mik", x.inputs, error)
    return Params(w=grad_w * mask, v=grad_v, c=grad_c, bias=jnp.sum(error, axis=batch))


def ml_rule(spec: Network, kappa: float = 0.0) -> optax.GradientTransformation:
    """The online ML rule as an ``(init, update)`` pair.

    Args:
        spec: the network.
        kappa: eligibility decay κ in [0, 1); κ = 0 gives the instantaneous gradient.

    Returns:
        ``optax.GradientTransformation``: ``init(params) -> EligibilityState``;
        ``update(signals: MLSignals, state, params) -> (updates: Params, state)`` with
        updates = e_t, the ascent direction of the log-likelihood.

    Raises:
        ValueError: if κ is outside [0, 1).
    """
    kappa = check_kappa(kappa)

    def init(params):
        return EligibilityState(jax.tree.map(jnp.zeros_like, params))

    def update(signals, state, params=None):
        if params is None:
            raise ValueError("ml_rule.update needs params (the current network parameters)")
        grad = local_gradient(spec, params, signals)
        eligibility = jax.tree.map(
            lambda e, g: kappa * e + (1.0 - kappa) * g, state.eligibility, grad
        )
        return eligibility, EligibilityState(eligibility)

    return optax.GradientTransformation(init, update)


class OnlineFit(NamedTuple):
    """Result of :func:`fit_ml_online`: final params and the per-bin log-likelihood ``(T,)``
    (summed over trials and neurons, evaluated before each bin's update)."""

    params: Params
    log_likelihood: jax.Array


def fit_ml_online(
    spec: Network,
    params: Params,
    spikes,
    inputs=None,
    *,
    learning_rate: float = 1e-2,
    kappa: float = 0.0,
    optimizer: optax.GradientTransformation | None = None,
) -> OnlineFit:
    """Stream over the bins of ``spikes`` applying the online ML rule after every bin.

    Memory is constant in T: traces come from ring buffers of the last L bins.

    Args:
        spec, params: the network and its starting parameters.
        spikes: ``(T, N)`` or ``(trials, T, N)`` observed spikes (trials are processed in
            parallel and their gradients summed). inputs: matching ``(..., T, M)``.
        learning_rate: η, used when ``optimizer`` is None (``optax.scale(η)``).
        kappa: eligibility decay κ.
        optimizer: an optax transformation applied after the rule (receives ascent directions),
            e.g. ``optax.scale(1e-2)``.

    Returns:
        :class:`OnlineFit`.
    """
    spec.check_params(params)
    spikes, inputs = check_data(spec, spikes, inputs)
    learning_rate = _checks.positive_float(learning_rate, "learning_rate")
    kappa = check_kappa(kappa)
    squeeze = spikes.ndim == 2
    spikes = jnp.asarray(spikes, jnp.float32)
    spikes = spikes[None] if squeeze else spikes
    if inputs is not None:
        inputs = jnp.asarray(inputs, jnp.float32)
        inputs = inputs[None] if squeeze else inputs
    final, log_lik = _stream(spec, kappa, optimizer, learning_rate, params, spikes, inputs)
    return OnlineFit(params=final, log_likelihood=log_lik)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _stream(spec, kappa, optimizer, learning_rate, params, spikes, inputs):
    """One compilation per (spec, κ, optimizer, shapes): the learning rate is traced."""
    optimizer = optax.scale(learning_rate) if optimizer is None else optimizer
    rule = optax.chain(ml_rule(spec, kappa), optimizer)
    states = init_state(spec, (spikes.shape[0],))
    xs = (jnp.swapaxes(spikes, 0, 1), None if inputs is None else jnp.swapaxes(inputs, 0, 1))

    def body(carry, x_t):
        params, opt_state, states = carry
        spikes_t, input_t = x_t
        signals = MLSignals(ring_traces(spec, states), spikes_t)
        u = contract(spec, params, signals.traces)
        log_lik = jnp.sum(bernoulli_log_prob(spikes_t, u))
        updates, opt_state = rule.update(signals, opt_state, params)
        params = optax.apply_updates(params, updates)
        states = advance(states, spikes_t, input_t)
        return (params, opt_state, states), log_lik

    (params, _, _), log_lik = jax.lax.scan(body, (params, rule.init(params), states), xs)
    return params, log_lik
