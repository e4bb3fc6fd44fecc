"""Trainers of the latent family: hidden neurons (GLM networks) and hidden WTA units.

Both follow the one trainer protocol of docs/learning.md (blackjax's shape):

    trainer = variational_trainer(spec, optax.adam(1e-2), n_samples=8)
    state = trainer.init(params)
    state, info = trainer.step(key, state, batch)
    result = probsnn.inference.fit(trainer, params, data, key=key, epochs=20, batch_size=16)

Each step draws K completions h ~ q(h‖x) of every sequence of the batch — the network's own
hidden dynamics with the visible neurons clamped to the data (docs/theory.md §3) — and follows
a gradient estimator of the criterion's loss through the optimiser:

* :func:`variational_trainer` — GLM networks with hidden neurons; the rule is
  :func:`~probsnn.inference.latent.variational.variational_rule` (loss −ELBO) by default, or
  :func:`~probsnn.inference.latent.multisample.multisample_rule` (loss −IW_K, or −log p(x) for
  GEM);
* :func:`wta_trainer` — networks of winner-take-all units, the rule
  :func:`~probsnn.inference.latent.wta.wta_variational_rule` (loss −ELBO; plain maximum
  likelihood when every unit is visible).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
from probsnn.inference._steps import checked
from probsnn.inference._training import Trainer
from probsnn.inference.latent.multisample import MultisampleRule
from probsnn.inference.latent.variational import (
    VariationalSignals,
    _log_probs,
    _sample_completions,
    _split_terms,
    signal_traces,
    variational_rule,
)
from probsnn.inference.latent.wta import WTAVariationalSignals, _variational_step
from probsnn.inference.score import check_kappa, init_baseline, iw_bound
from probsnn.models.hidden import check_hidden_spec, check_visible
from probsnn.network import Network, Params
from probsnn.wta import WTANetwork, WTAParams, check_one_hot
from probsnn.wta import sample as wta_sample

# --------------------------------------------------------------------------------------------
# GLM networks with hidden neurons
# --------------------------------------------------------------------------------------------


class VariationalState(NamedTuple):
    """State of :func:`variational_trainer`: the parameters and the chained rule + optimiser
    state."""

    params: Params
    opt_state: optax.OptState


class VariationalInfo(NamedTuple):
    """Per-step metrics, from the samples of the step (before the update), per sequence.

    Attributes:
        loss: the estimate of the loss the rule descends, per sequence: −``elbo`` for the ELBO
            rules, −``iw_bound`` for :func:`~probsnn.inference.latent.multisample.multisample_rule`.
        elbo: mean over sequences and samples of ℓ — an estimate of the ELBO.
        iw_bound: mean over sequences of log (1/K) Σ_k e^{ℓ_k}, a draw of the K-sample bound
            (equal to ``elbo`` for K = 1).
        hidden_rate: mean hidden firing rate in Hz.
    """

    loss: jax.Array
    elbo: jax.Array
    iw_bound: jax.Array
    hidden_rate: jax.Array


def variational_trainer(
    spec: Network,
    optimizer: optax.GradientTransformation,
    *,
    n_samples: int = 1,
    rule: optax.GradientTransformation | None = None,
) -> Trainer:
    """A trainer that samples K completions h ~ q(h‖x) per sequence and follows ``rule``.

    Each step draws K hidden completions of every sequence of the batch
    (:func:`~probsnn.inference.latent.variational.sample_hidden`), builds
    :class:`~probsnn.inference.latent.variational.VariationalSignals` ``(B, K, T, N)``, and
    applies ``optax.chain(rule, optimizer)`` (Jang, Simeone, Gardner & Grüning 2019).

    Args:
        spec: the network (at least one visible and one hidden neuron).
        optimizer: an optax optimizer (it receives the rule's loss gradients), e.g.
            ``optax.adam(0.05)`` or ``optax.sgd(0.05)``.
        n_samples: K >= 1 completions per sequence (VIMCO needs K >= 2).
        rule: any gradient estimator reading ``VariationalSignals``; default
            :func:`~probsnn.inference.latent.variational.variational_rule` ``(spec)``; see also
            :func:`~probsnn.inference.latent.multisample.multisample_rule`.

    Returns:
        :class:`~probsnn.inference.Trainer`: ``init(params) -> VariationalState``;
        ``step(key, state, batch) -> (VariationalState, VariationalInfo)`` (jitted), ``batch``
        the visible spikes ``(B, T, N_visible)`` or a pair ``(visible, inputs)`` with inputs
        ``(B, T, M)``.

    Raises:
        ValueError, TypeError: a spec without hidden neurons, K < 1, an optimizer or rule that
            is not an optax transformation (e.g. a string); at init, non-finite params; at step,
            a key that is not a PRNG key, an empty batch or one of the wrong shape.
    """
    check_hidden_spec(spec)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    _checks.optimizer(optimizer)
    if rule is not None and not (
        callable(getattr(rule, "init", None)) and callable(getattr(rule, "update", None))
    ):
        raise TypeError(
            "rule must be a gradient estimator reading VariationalSignals (an optax "
            f"GradientTransformation such as variational_rule(spec)), got {type(rule).__name__}"
        )
    rule = variational_rule(spec) if rule is None else rule
    descends_bound = isinstance(rule, MultisampleRule)
    transform = optax.chain(rule, optimizer)
    hidden = np.asarray(spec.hidden)

    def init(params):
        _checks.finite_tree(spec.check_params(params), "params")
        return VariationalState(params, transform.init(params))

    def check_batch(state, batch):
        visible, inputs = batch if isinstance(batch, tuple | list) else (batch, None)
        _checks.nonempty(visible, "batch")
        visible, inputs, batched = check_visible(spec, visible, inputs)
        if not batched:
            raise ValueError(
                f"batch must hold sequences, visible spikes (B, T, {visible.shape[-1]}), got "
                f"shape {visible.shape[1:]}"
            )
        return visible, inputs

    @jax.jit
    def step(key, state, batch):
        visible, inputs = check_batch(state, batch)
        spikes = _sample_completions(spec, state.params, key, visible, inputs, n_samples)
        signals = VariationalSignals(spikes.astype(state.params.bias.dtype), inputs)
        x = signal_traces(spec, signals)
        signal = _split_terms(spec, _log_probs(spec, state.params, x, signals.spikes)).signal
        elbo = jnp.mean(signal)
        bound = jnp.mean(iw_bound(signal, axis=1))
        info = VariationalInfo(
            loss=-(bound if descends_bound else elbo),
            elbo=elbo,
            iw_bound=bound,
            hidden_rate=jnp.mean(signals.spikes[..., hidden]) / spec.dt,
        )
        updates, opt_state = transform.update(signals, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return VariationalState(params, opt_state), info

    return Trainer(init, checked(step, check_batch))


# --------------------------------------------------------------------------------------------
# WTA networks
# --------------------------------------------------------------------------------------------


class WTAState(NamedTuple):
    """State of :func:`wta_trainer`: parameters, the baseline's moving averages
    (:class:`~probsnn.inference.score.BaselineState`) and the optimiser state."""

    params: WTAParams
    baseline: object
    opt_state: optax.OptState


class WTAInfo(NamedTuple):
    """Per-step metrics of :func:`wta_trainer`, from the step's samples (before the update).

    Attributes:
        loss: −ELBO per sequence, the mean over sequences and samples of −ℓ (the negative
            log-likelihood per sequence when every unit is visible).
    """

    loss: jax.Array


def wta_trainer(
    spec: WTANetwork,
    optimizer: optax.GradientTransformation,
    *,
    n_samples: int = 1,
    baseline_kappa: float = 0.9,
) -> Trainer:
    """A trainer of WTA networks on visible data: K hidden completions per sequence and
    :func:`~probsnn.inference.latent.wta.wta_variational_rule` (loss −Σ_sequences ELBO).

    Each step draws K completions of every sequence from q(h‖x) (:func:`probsnn.wta.sample`
    with the visible units clamped), estimates the loss gradient with the lagged
    variance-optimal baseline, and applies ``optimizer``. Without hidden units this is
    stochastic-gradient maximum likelihood (Jang, Skatchkovsky & Simeone 2020).

    Args:
        spec: the WTA network. optimizer: an optax optimizer, e.g. ``optax.adam(1e-2)``.
        n_samples: K >= 1 completions per sequence.
        baseline_kappa: forgetting factor in [0, 1) of the baseline's moving averages.

    Returns:
        :class:`~probsnn.inference.Trainer`: ``init(params) -> WTAState``;
        ``step(key, state, batch) -> (WTAState, WTAInfo)`` (jitted), ``batch`` one-hot visible
        spikes ``(B, T, N_visible, C)`` (units in the order of ``numpy.flatnonzero(
        spec.visible)``) or a pair ``(visible, inputs)`` with inputs ``(B, T, M)``.

    Raises:
        ValueError, TypeError: K < 1, κ_b outside [0, 1), an optimizer that is not an optax
            transformation (e.g. a string); at init, non-finite params; at step, a key that is
            not a PRNG key, an empty batch or one of the wrong shape, inputs that do not match.
    """
    if not isinstance(spec, WTANetwork):
        raise TypeError(f"spec must be a probsnn.wta.WTANetwork, got {type(spec).__name__}")
    n_samples = _checks.positive_int(n_samples, "n_samples")
    baseline_kappa = check_kappa(baseline_kappa, "baseline_kappa")
    _checks.optimizer(optimizer)
    n_visible = int(np.sum(spec.visible))

    def init(params):
        _checks.finite_tree(spec.check_params(params), "params")
        return WTAState(params, init_baseline(params), optimizer.init(params))

    def check_batch(state, batch):
        visible, inputs = batch if isinstance(batch, tuple | list) else (batch, None)
        visible = check_one_hot(visible, "batch", spec.n_symbols, n_visible)
        if visible.ndim != 4:
            raise ValueError(
                f"batch must have shape (B, T, {n_visible}, {spec.n_symbols}), got "
                f"{tuple(visible.shape)}"
            )
        _checks.nonempty(visible, "batch")
        expected = (*visible.shape[:2], spec.n_inputs) if spec.n_inputs else None
        got = None if inputs is None else tuple(np.shape(inputs))
        if got != expected:
            raise ValueError(f"batch inputs must have shape {expected} (B, T, M), got {got}")
        if inputs is not None:
            inputs = _checks.real_array(inputs, "batch inputs")
        return visible, inputs

    @jax.jit
    def step(key, state, batch):
        visible, inputs = check_batch(state, batch)
        n_seq, n_steps = visible.shape[:2]
        clamp = jnp.repeat(visible, n_samples, axis=0)
        repeated = None if inputs is None else jnp.repeat(inputs, n_samples, axis=0)
        spikes = wta_sample(
            spec, state.params, key, n_steps, n_seq * n_samples, repeated, clamp=clamp
        )
        dtype = state.params.bias.dtype
        signals = WTAVariationalSignals(
            spikes.reshape(n_seq, n_samples, *spikes.shape[1:]),
            None if inputs is None else jnp.asarray(inputs, dtype),
        )
        grads, baseline, signal = _variational_step(
            spec, baseline_kappa, state.params, signals, state.baseline
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return WTAState(params, baseline, opt_state), WTAInfo(loss=-jnp.mean(signal))

    return Trainer(init, checked(step, check_batch))
