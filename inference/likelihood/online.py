"""The online maximum-likelihood rule: presynaptic trace × postsynaptic error.

For one bin, the score of the Bernoulli likelihood log p(s_t | u_t) = log σ((2s_t − 1) u_t) is
local (Jang, Simeone, Gardner & Grüning 2019, IEEE SPM 36(6):64; docs/theory.md §2):

    ∂/∂w_{j,i,k} log p = x^{syn}_{j,k,t} (s_{i,t} − σ(u_{i,t})),
    ∂/∂v_{i,k}   log p = x^{fb}_{i,k,t} (s_{i,t} − σ(u_{i,t})),
    ∂/∂c_{m,i,k} log p = x^{in}_{m,k,t} (s_{i,t} − σ(u_{i,t})),
    ∂/∂γ_i       log p = s_{i,t} − σ(u_{i,t}).

:func:`local_gradient` is this score, ∇_θ log p (the variational, information and
winner-take-all rules reuse it). :func:`ml_rule` is the gradient estimator of the learning
interface (docs/learning.md): it returns the gradient of the bin's **loss** −log p(s_t | u_t),
g_t = −score, through the eligibility e_t = κ e_{t−1} + (1 − κ) g_t, so
``optax.chain(ml_rule(spec), optax.sgd(η))`` is the online rule θ ← θ − η e_t.
:func:`ml_online_trainer` streams it over the bins of mini-batches of trials.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from probsnn import _checks, history
from probsnn.glm import Traces, bernoulli_log_prob, check_data, contract
from probsnn.inference._steps import checked
from probsnn.inference._training import Trainer, require_params
from probsnn.inference.score import blend, check_kappa
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


def check_signals(spec: Network, signals, name: str = "signals") -> MLSignals:
    """Validate :class:`MLSignals` of one bin against ``spec`` (traceable: shapes always, values
    when concrete).

    The spikes ``(..., N)`` must be 0/1 (bool, integer or float); the traces real and finite,
    with the spikes' leading dims: syn ``(..., N, K_syn)``, fb ``(..., N, K_fb)`` (None when the
    network shares the synapse basis), inputs ``(..., M, K_in)`` exactly when the network has
    inputs.

    Raises:
        TypeError: signals that are not MLSignals (of Traces), complex or non-numeric arrays.
        ValueError: wrong shapes, non-binary spikes, non-finite traces, inputs traces given to
            a network without inputs or missing for one with inputs.
    """
    if not isinstance(signals, MLSignals):
        raise TypeError(
            f"{name} must be MLSignals(traces, spikes) of one bin, got {type(signals).__name__}"
        )
    traces, spikes = signals
    if not isinstance(traces, Traces):
        raise TypeError(
            f"{name}.traces must be a probsnn.Traces (e.g. from probsnn.history.traces), got "
            f"{type(traces).__name__}"
        )
    spikes = _checks.spike_array(spikes, f"{name}.spikes", spec.n_neurons, min_ndim=1)
    lead = tuple(spikes.shape[:-1])
    expected = {
        "syn": (spec.n_neurons, spec.synapse_basis.shape[0]),
        "fb": None if spec.shares_basis else (spec.n_neurons, spec.feedback_basis.shape[0]),
        "inputs": (spec.n_inputs, spec.input_basis.shape[0]) if spec.n_inputs else None,
    }
    for field, tail in expected.items():
        value = getattr(traces, field)
        where = f"{name}.traces.{field}"
        if value is None:
            if tail is not None:
                raise ValueError(f"{where} is required by this network, shape {(*lead, *tail)}")
            continue
        if field == "fb" and tail is None:
            tail = expected["syn"]
        if tail is None:
            raise ValueError(f"{where} must be None: the network has no exogenous inputs")
        value = _checks.real_array(value, where, min_ndim=2)
        if tuple(value.shape) != (*lead, *tail):
            raise ValueError(
                f"{where} must have shape {(*lead, *tail)} to match {name}.spikes "
                f"{tuple(spikes.shape)}, got {tuple(value.shape)}"
            )
    return signals


def local_gradient(spec: Network, params: Params, signals: MLSignals) -> Params:
    """The score ∇_θ log p(s_t | u_t) of one bin, summed over the signals' leading batch dims.

    The gradient of the log-likelihood itself (the module equations); :func:`ml_rule` returns
    its negative, the gradient of the loss.

    Args:
        spec, params: the network and its :class:`~probsnn.Params`.
        signals: :class:`MLSignals`, traces ``(..., N, K)`` and spikes ``(..., N)``.

    Returns:
        :class:`~probsnn.Params` shaped like ``params`` (w zero outside the connectivity).

    Raises:
        TypeError, ValueError: signals that are not valid :class:`MLSignals` for ``spec``
            (:func:`check_signals`), params of the wrong shapes or (when concrete) non-finite.
    """
    check_signals(spec, signals)
    _checks.finite_tree(spec.check_params(params), "params")
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
    """The online maximum-likelihood rule, a gradient estimator (docs/learning.md).

    Loss of bin t: L_t(θ) = −Σ_{batch, i} log p(s_{i,t} | u_{i,t}), the negative log-likelihood
    of the bin summed over the signals' leading batch dims and the neurons. The update is the
    eligibility

        e_t = κ e_{t−1} + (1 − κ) ∇_θ L_t(θ),

    with ∇_θ L_t = −:func:`local_gradient`: at κ = 0 exactly ∇_θ L_t (the sign of ``jax.grad``);
    for κ > 0, at fixed θ, the gradient of the discounted loss Σ_{τ≤t} (1 − κ) κ^{t−τ} L_τ.
    Chain an optimizer after it: ``optax.chain(ml_rule(spec), optax.sgd(η))`` descends the
    negative log-likelihood bin by bin (Jang et al. 2019, IEEE SPM 36(6):64; docs/theory.md §2).

    Args:
        spec: the network.
        kappa: eligibility decay κ in [0, 1); κ = 0 gives the instantaneous gradient.

    Returns:
        ``optax.GradientTransformation``: ``init(params) -> EligibilityState``;
        ``update(signals: MLSignals, state, params) -> (grads: Params, state)``, signals with
        traces ``(..., N, K)`` and spikes ``(..., N)`` of one bin.

    Raises:
        ValueError: κ outside [0, 1); ``update`` called without params, or with signals that are
            not :class:`MLSignals` of this network (non-binary spikes, wrong shapes:
            :func:`check_signals`; TypeError for a wrong type or complex values).
    """
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    return eligibility_rule(partial(local_gradient, spec), kappa, "ml_rule")


def eligibility_rule(score, kappa: float, name: str) -> optax.GradientTransformation:
    """A gradient estimator that low-pass filters the negative of a per-bin score,

        e_t = κ e_{t−1} + (1 − κ) (−score(θ, signals_t)),   e_0 = 0,

    the form of the online ML rules (:func:`ml_rule`, and the WTA network's
    :func:`~probsnn.inference.latent.wta.wta_ml_rule`): with score = ∇_θ log p(s_t | u_t), e_t is
    the eligibility trace of the loss gradient.

    Args:
        score: ``score(params, signals) -> grads``, the ascent direction of the bin.
        kappa: eligibility decay κ in [0, 1).
        name: the rule's name, for errors.

    Returns:
        ``optax.GradientTransformation``: ``init(params) -> EligibilityState`` (zeros);
        ``update(signals, state, params) -> (e_t, state)``.

    Raises:
        ValueError: κ outside [0, 1), or ``update`` called without params.
    """
    kappa = check_kappa(kappa)

    def init(params):
        return EligibilityState(jax.tree.map(jnp.zeros_like, params))

    def update(signals, state, params=None):
        require_params(params, name)
        loss_grad = jax.tree.map(jnp.negative, score(params, signals))
        eligibility = blend(state.eligibility, loss_grad, kappa)
        return eligibility, EligibilityState(eligibility)

    return optax.GradientTransformation(init, update)


# --------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------
class OnlineMLState(NamedTuple):
    """State of :func:`ml_online_trainer`: the parameters and the optimizer's state."""

    params: Params
    opt_state: optax.OptState


class OnlineMLInfo(NamedTuple):
    """Diagnostics of one step of :func:`ml_online_trainer`.

    Attributes:
        loss: negative log-likelihood per bin and trial (summed over neurons), each bin
            evaluated before its update — the online (prequential) loss of the batch.
        log_likelihood: ``(T,)`` log-likelihood of each bin, summed over the batch's trials and
            neurons, evaluated before the bin's update.
    """

    loss: jax.Array
    log_likelihood: jax.Array


def ml_online_trainer(
    spec: Network, optimizer: optax.GradientTransformation, kappa: float = 0.0
) -> Trainer:
    """The online ML rule as a trainer: one optimizer update per bin, streamed over a batch.

    ``step(key, state, batch)`` runs through the bins of a batch of trials in parallel, from an
    empty past, in constant memory in T (traces come from :mod:`probsnn.history`: recursive trace
    states for :class:`~probsnn.kernels.RecursiveBasis` bases, else ring buffers of the last L
    bins): in
    each bin t it applies ``optax.chain(ml_rule(spec, kappa), optimizer)`` to the bin's signals
    (the gradient of −log p(s_t | u_t) summed over the batch's trials), so a batch of T bins
    makes T updates. The eligibility starts at zero with each batch, like the traces; the
    optimizer's state carries over. One long recording is one step with a batch of one trial,
    and ``info.log_likelihood`` is its per-bin log-likelihood trace.

    The step is jitted once per trainer and batch shape: build the trainer once (the
    optimizer, learning rate included, is part of it), e.g. ``optax.sgd(η)`` for the plain
    rule θ ← θ − η e_t (divide η by the batch size for a per-trial rate).

    Args:
        spec: the network (every neuron observed).
        optimizer: an optax transformation applied after the rule (it receives loss gradients).
        kappa: eligibility decay κ in [0, 1).

    Returns:
        :class:`~probsnn.inference.Trainer`: ``init(params) -> OnlineMLState``;
        ``step(key, state, batch) -> (OnlineMLState, OnlineMLInfo)`` with ``batch`` spikes
        ``(B, T, N)``, or ``(spikes, inputs)`` with inputs ``(B, T, M)`` when the network has
        inputs; ``key`` is unused (the rule is deterministic).

    Raises:
        ValueError: hidden neurons, κ outside [0, 1); at init, params of the wrong shapes or
            non-finite; (at the first step) a batch whose shapes do not match the network or
            that is empty.
        TypeError: a spec that is not a Network, an optimizer that is not an optax
            transformation (e.g. a string).
    """
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    _checks.fully_observed(spec, "ml_online_trainer")
    _checks.optimizer(optimizer)
    rule = ml_rule(spec, kappa)

    def init(params) -> OnlineMLState:
        params = _checks.finite_tree(spec.check_params(params), "params")
        return OnlineMLState(params, optimizer.init(params))

    def check_batch(state, batch):
        spikes, inputs = batch if isinstance(batch, tuple | list) else (batch, None)
        _checks.nonempty(spikes, "batch spikes")
        spikes, inputs = check_data(spec, spikes, inputs)
        if spikes.ndim != 3:
            raise ValueError(f"batch spikes must be (B, T, N), got shape {tuple(spikes.shape)}")
        return spikes, inputs

    @jax.jit
    def step(key, state: OnlineMLState, batch):
        del key  # the rule is deterministic
        spikes, inputs = check_batch(state, batch)
        dtype = state.params.bias.dtype
        spikes = jnp.swapaxes(jnp.asarray(spikes, dtype), 0, 1)  # (T, B, N)
        if inputs is not None:
            inputs = jnp.swapaxes(jnp.asarray(inputs, dtype), 0, 1)

        def body(carry, x_t):
            params, eligibility, opt_state, past = carry
            spikes_t, input_t = x_t
            signals = MLSignals(history.traces(spec, past), spikes_t)
            log_lik = jnp.sum(bernoulli_log_prob(spikes_t, contract(spec, params, signals.traces)))
            grads, eligibility = rule.update(signals, eligibility, params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            past = history.push(spec, past, spikes_t, input_t)
            return (params, eligibility, opt_state, past), log_lik

        past = history.init(spec, (spikes.shape[1],), dtype)
        carry = (state.params, rule.init(state.params), state.opt_state, past)
        (params, _, opt_state, _), log_lik = jax.lax.scan(body, carry, (spikes, inputs))
        loss = -jnp.sum(log_lik) / (spikes.shape[0] * spikes.shape[1])
        return OnlineMLState(params, opt_state), OnlineMLInfo(loss, log_lik)

    return Trainer(init, checked(step, check_batch, uses_key=False))
