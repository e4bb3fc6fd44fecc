"""Spiking equilibrium propagation (installed as ``probsnn.inference.energy.spiking_ep``).

O'Connor, Gavves & Welling (2019, AISTATS, "Training a spiking neural network with equilibrium
propagation"): the neurons of an energy network (:mod:`probsnn.models.energy`) send binary spikes
instead of their rates ρ(s). Each neuron keeps a real state ``s`` and updates it from the spikes
it receives, with an annealed step size,

    s_{t+1} = P(s_t − ε_t [s_t − ρ'(s_t) ⊙ h(q_t) + β ∂C/∂s]),    ε_t = ε₀ / (1 + t/τ)^κ,

where ``h(q)`` is :func:`probsnn.models.energy.layer_drives` evaluated at the spikes ``q_t`` of the
neighbouring layers (the input is spike-coded too). Two codes turn a rate ``a = ρ(s) ∈ [0, 1]``
into spikes ``q ∈ {0, 1}``:

* ``"bernoulli"``: ``q ~ Bernoulli(a)``, so ``E[q] = a`` and the update is a Robbins–Monro
  stochastic approximation of the real-valued relaxation (Robbins & Monro 1951);
* ``"sigma_delta"``: ``r ← r + a; q = [r ≥ ½]; r ← r − q``, a first-order sigma-delta modulator
  whose running sum of spikes stays within ½ of the running sum of rates.

With ``Σ ε_t = ∞`` and ``ε_t → 0`` (κ ∈ (½, 1]) the states converge to the real-valued fixed point,
so the phase states feed the same EP update (:func:`probsnn.inference.energy.ep.ep_gradient`). κ = 0
keeps the step constant (no annealing): the states then jitter around the fixed point.
Rates must lie in [0, 1], so the activation must be ``"hard_sigmoid"`` or ``"sigmoid"``.
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
from probsnn.inference.energy import ep
from probsnn.models import energy as em

CODINGS = ("sigma_delta", "bernoulli")


class SpikingRelaxation(NamedTuple):
    """A spiking relaxation of exactly ``n_steps`` steps with ``ε_t = step_size / (1 + t /
    anneal_steps) ** decay``, spike code ``coding``; ``converged`` reports whether the real-valued
    residual ``max_batch ‖s − T(s)‖/ε₀`` at the end is at most ``tol``."""

    n_steps: int = 200
    step_size: float = 0.5
    anneal_steps: float = 10.0
    decay: float = 1.0
    coding: str = "sigma_delta"
    tol: float = 1e-2


DEFAULT_SPIKING_RELAXATION = SpikingRelaxation()


class SpikingInfo(NamedTuple):
    """Diagnostics of a spiking relaxation: steps, the final real-valued residual, whether it is
    within ``tol``, and the mean number of spikes per neuron per step."""

    steps: jax.Array
    residual: jax.Array
    converged: jax.Array
    spike_rate: jax.Array


class SpikingPhaseInfo(NamedTuple):
    """Diagnostics of the free phase and of the K nudged phases (fields of shape (K,))."""

    free: SpikingInfo
    nudged: SpikingInfo


def check_spiking_relaxation(spec, relaxation, name: str = "relaxation") -> SpikingRelaxation:
    """Validate a :class:`SpikingRelaxation` against ``spec``; raise naming the bad field."""
    if not isinstance(relaxation, SpikingRelaxation):
        raise TypeError(f"{name} must be a SpikingRelaxation, got {type(relaxation).__name__}")
    n_steps, step_size, anneal_steps, decay, coding, tol = relaxation
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"{name}.n_steps must be an integer >= 1, got {n_steps!r}")
    if not 0 < _checks.finite_float(step_size, f"{name}.step_size") <= 1:
        raise ValueError(f"{name}.step_size must lie in (0, 1], got {step_size}")
    _checks.positive_float(anneal_steps, f"{name}.anneal_steps")
    if not 0 <= _checks.finite_float(decay, f"{name}.decay") <= 1:
        raise ValueError(f"{name}.decay must lie in [0, 1], got {decay}")
    _checks.option(coding, f"{name}.coding", CODINGS)
    _checks.positive_float(tol, f"{name}.tol")
    if spec.activation not in ("hard_sigmoid", "sigmoid"):
        raise ValueError(
            "spiking EP needs rates in [0, 1]: activation must be 'hard_sigmoid' or 'sigmoid', "
            f"got {spec.activation!r}"
        )
    return relaxation


def step_sizes(relaxation: SpikingRelaxation) -> jax.Array:
    """The annealed step sizes ``ε_t``, t = 0..n_steps−1."""
    t = jnp.arange(relaxation.n_steps, dtype=jnp.float32)
    return relaxation.step_size / (1.0 + t / relaxation.anneal_steps) ** relaxation.decay


def encode(rates, residues, key, coding: str):
    """Spikes for ``rates`` in [0, 1]; returns ``(spikes, new_residues)`` (residues are the
    sigma-delta integrators, passed through unchanged by the Bernoulli code)."""
    if coding == "bernoulli":
        return jax.random.bernoulli(key, jnp.clip(rates, 0.0, 1.0)).astype(rates.dtype), residues
    residues = residues + rates
    spikes = (residues >= 0.5).astype(rates.dtype)
    return spikes, residues - spikes


def init_residues(spec, batch_size: int, dtype=jnp.float32) -> tuple[jax.Array, ...]:
    """Zero sigma-delta integrators for the input and every free layer.

    Raises:
        TypeError, ValueError: a batch size that is not an integer >= 1.
    """
    batch_size = _checks.positive_int(batch_size, "batch_size")
    return tuple(jnp.zeros((batch_size, n), dtype) for n in (spec.n_inputs, *spec.state_sizes))


def _spiking_relax(spec, params, inputs, states, residues, key, targets, beta, relaxation):
    coding = relaxation.coding
    slope = spec.activation_fns.slope
    keys = jax.random.split(key, relaxation.n_steps)

    def step(carry, scan_input):
        current, residues, spikes_sent = carry
        eps, step_key = scan_input
        rates = (inputs, *em.activities(spec, current))
        layer_keys = jax.random.split(step_key, len(rates))
        coded = [
            encode(r, z, k, coding) for r, z, k in zip(rates, residues, layer_keys, strict=True)
        ]
        spikes = tuple(c[0] for c in coded)
        drives = em.layer_drives(spec, params, spikes[0], spikes[1:])
        gradient = [s - slope(s) * h for s, h in zip(current, drives, strict=True)]
        if targets is not None:
            nudge = em.cost_gradient(spec, params, current, targets)
            gradient = [g + beta * c for g, c in zip(gradient, nudge, strict=True)]
        moved = em.project(spec, tuple(s - eps * g for s, g in zip(current, gradient, strict=True)))
        sent = spikes_sent + sum(jnp.sum(q) for q in spikes)
        return (moved, tuple(c[1] for c in coded), sent), None

    start = (tuple(states), tuple(residues), jnp.zeros((), inputs.dtype))
    (final, residues, sent), _ = jax.lax.scan(step, start, (step_sizes(relaxation), keys))
    settled = ep.fixed_point_map(spec, params, inputs, final, targets, beta, relaxation.step_size)
    squares = sum(jnp.sum((a - b) ** 2, axis=-1) for a, b in zip(final, settled, strict=True))
    residual = jnp.max(jnp.sqrt(squares)) / relaxation.step_size
    n_units = inputs.shape[0] * (spec.n_inputs + sum(spec.state_sizes))
    info = SpikingInfo(
        jnp.asarray(relaxation.n_steps, jnp.int32),
        residual,
        residual <= relaxation.tol,
        sent / (n_units * relaxation.n_steps),
    )
    return final, residues, info


_spiking_relax_jit = jax.jit(_spiking_relax, static_argnames=("spec", "relaxation"))


def spiking_relax(
    spec,
    params,
    inputs,
    key,
    states=None,
    residues=None,
    targets=None,
    beta: float = 0.0,
    relaxation: SpikingRelaxation = DEFAULT_SPIKING_RELAXATION,
):
    """Relax with spiking communication (jitted). Returns ``(states, residues, SpikingInfo)``.

    Args:
        key: PRNG key for the Bernoulli spikes (unused by sigma-delta, still required).
        states, residues: start (zeros when None); ``residues`` are the sigma-delta integrators of
            the input and free layers (:func:`init_residues`).
        targets, beta: the nudge; ``targets`` are required when ``beta != 0``.

    Raises:
        ValueError: bad shapes, non-finite values, a bad relaxation or activation.
        TypeError: a non-real array or a relaxation of the wrong type.
    """
    inputs, targets = em.check_batch(spec, inputs, targets)
    em.check_params(spec, params)
    check_spiking_relaxation(spec, relaxation)
    key = _checks.prng_key(key, "key")
    batch = inputs.shape[0]
    states = em.init_states(spec, batch, inputs.dtype) if states is None else states
    states = em.check_states(spec, states, batch)
    if residues is None:
        residues = init_residues(spec, batch, inputs.dtype)
    else:
        expected = tuple((batch, n) for n in (spec.n_inputs, *spec.state_sizes))
        got = tuple(np.shape(r) for r in residues) if isinstance(residues, tuple | list) else None
        if got != expected:
            raise ValueError(
                f"residues must be a tuple of arrays with shapes {expected} (input and free "
                f"layers), got {got}"
            )
        residues = tuple(_checks.real_array(r, "residues") for r in residues)
    beta = _checks.finite_float(beta, "beta")
    if beta == 0.0:
        targets = None
    elif targets is None:
        raise ValueError(f"targets are needed for a nudged relaxation (beta={beta})")
    return _spiking_relax_jit(
        spec, params, inputs, states, residues, key, targets, beta, relaxation
    )


def _spiking_phases(spec, params, inputs, targets, key, nudging, free, nudged):
    batch = inputs.shape[0]
    free_key, nudge_key = jax.random.split(key)
    start = em.init_states(spec, batch, inputs.dtype)
    residues = init_residues(spec, batch, inputs.dtype)
    free_states, residues, free_info = _spiking_relax(
        spec, params, inputs, start, residues, free_key, None, 0.0, free
    )

    def nudge(beta):  # the same spike noise for every β (common random numbers)
        states, _, info = _spiking_relax(
            spec, params, inputs, free_states, residues, nudge_key, targets, beta, nudged
        )
        return states, info

    nudged_states, nudged_info = jax.vmap(nudge)(nudging.betas)
    signals = ep.EPSignals(inputs, targets, free_states, nudged_states, nudging)
    return signals, SpikingPhaseInfo(free_info, nudged_info)


class SpikingEPConfig(NamedTuple):
    """Settings of spiking EP training (estimator ``"one_sided"``, ``"symmetric"`` or
    ``"random_sign"``)."""

    estimator: str = "symmetric"
    beta: float = 0.5
    free: SpikingRelaxation = SpikingRelaxation(n_steps=150)
    nudged: SpikingRelaxation = SpikingRelaxation(n_steps=60)


DEFAULT_SPIKING_CONFIG = SpikingEPConfig()


def _check_config(spec, config: SpikingEPConfig) -> float:
    if not isinstance(config, SpikingEPConfig):
        raise TypeError(f"config must be a SpikingEPConfig, got {type(config).__name__}")
    if config.estimator == "holomorphic":
        raise ValueError("spiking EP has real states: estimator='holomorphic' is not available")
    beta = ep.check_estimator(spec, config.estimator, config.beta)
    check_spiking_relaxation(spec, config.free, "config.free")
    check_spiking_relaxation(spec, config.nudged, "config.nudged")
    return beta


def spiking_ep_estimate(spec, params, inputs, targets, key, config=DEFAULT_SPIKING_CONFIG):
    """Spiking free and nudged phases and the EP estimate of ``dL/dθ``.

    The loss is :func:`probsnn.inference.energy.ep.ep_rule`'s, ``L = mean_batch C(θ, s⁰(θ))``
    (the cost at the real-valued free fixed point, which the annealed spiking phases approach);
    the estimate has the sign of ``jax.grad`` and chains with a descent optimiser like
    ``ep_rule``'s (docs/learning.md).

    Returns ``(gradient_estimate, EPSignals, SpikingPhaseInfo)``.

    Raises:
        ValueError, TypeError: bad shapes, non-finite inputs or params, missing targets, a bad
            config, a key that is not a PRNG key.
    """
    inputs, targets = em.check_batch(spec, inputs, targets)
    if targets is None:
        raise ValueError("targets are needed for equilibrium propagation, got None")
    _checks.finite_tree(em.check_params(spec, params), "params")
    _check_config(spec, config)
    key = _checks.prng_key(key, "key")
    return _estimate_jit(spec, params, inputs, targets, key, config)


@jax.jit(static_argnames=("spec", "config"))
def _estimate_jit(spec, params, inputs, targets, key, config):
    sign_key, phase_key = jax.random.split(key)
    nudging = ep.nudging_plan(config.estimator, config.beta, sign_key)
    signals, info = _spiking_phases(
        spec, params, inputs, targets, phase_key, nudging, config.free, config.nudged
    )
    return ep.ep_gradient(spec, params, signals), signals, info


def spiking_ep_trainer(
    spec: em.EnergyNetwork,
    optimizer: optax.GradientTransformation,
    config: SpikingEPConfig = DEFAULT_SPIKING_CONFIG,
) -> Trainer:
    """Spiking EP as a :class:`~probsnn.inference._training.Trainer`, like
    :func:`probsnn.inference.energy.ep.ep_trainer` (same loss, state and batches).

    ``step(key, state, batch)`` runs the spiking free phase from zero and the spiking nudged
    phases (``key`` draws the spikes and, for ``"random_sign"``, the sign of β) and follows
    ``optax.chain(ep_rule(spec), optimizer)``. Predict with :func:`spiking_predict`.

    Returns:
        ``Trainer(init, step)``: ``init(params) -> EPState`` (no particles);
        ``step(key, EPState, batch) -> (EPState, EPInfo)`` with :class:`SpikingInfo`
        diagnostics; ``batch`` an :class:`~probsnn.inference.energy.ep.EPBatch` or
        ``(inputs, targets)`` (an index is ignored).

    Raises:
        ValueError: a holomorphic estimator, β = 0, a bad relaxation or activation; at init,
            non-finite params; at step, an empty batch.
        TypeError: a config that is not a SpikingEPConfig, an optimizer that is not an optax
            transformation (e.g. a string); at step, a key that is not a PRNG key.
    """
    ep._check_spec(spec)
    beta = _check_config(spec, config)
    _checks.optimizer(optimizer)
    rule = optax.chain(ep.ep_rule(spec), optimizer)

    def init(params):
        _checks.finite_tree(em.check_params(spec, params), "params")
        return ep.EPState(params, rule.init(params), None, jnp.asarray(0, jnp.int32))

    @jax.jit
    def step(key, state, batch):
        inputs, targets, _ = ep.batch_arrays(spec, batch)
        sign_key, phase_key = jax.random.split(key)
        nudging = ep.nudging_plan(config.estimator, beta, sign_key)
        signals, info = _spiking_phases(
            spec, state.params, inputs, targets, phase_key, nudging, config.free, config.nudged
        )
        loss, accuracy = ep.batch_metrics(spec, state.params, signals.free_states, targets)
        updates, opt_state = rule.update(signals, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = ep.EPState(params, opt_state, None, state.step + 1)
        return new_state, ep.EPInfo(loss, accuracy, info.free, info.nudged)

    return Trainer(init, checked(step, lambda state, batch: ep.batch_arrays(spec, batch)))


@jax.jit(static_argnames=("spec", "relaxation"))
def _spiking_predict(spec, params, inputs, key, relaxation):
    batch = inputs.shape[0]
    start = em.init_states(spec, batch, inputs.dtype)
    residues = init_residues(spec, batch, inputs.dtype)
    states, _, _ = _spiking_relax(spec, params, inputs, start, residues, key, None, 0.0, relaxation)
    return em.output_scores(spec, params, states)


def spiking_predict(
    spec: em.EnergyNetwork,
    params: em.EnergyParams,
    inputs,
    relaxation: SpikingRelaxation = DEFAULT_SPIKING_CONFIG.free,
    *,
    key=None,
) -> jax.Array:
    """Output scores ``(batch, n_outputs)`` after a spiking free phase from zero (jitted).

    ``key`` draws Bernoulli spikes; None uses ``jax.random.key(0)``, so the prediction is
    deterministic (sigma-delta spikes need no key). Use it with
    :func:`probsnn.inference.energy.ep.classification_accuracy` through
    ``functools.partial(spiking_predict, spec, relaxation=config.free)``.

    Raises:
        ValueError: bad shapes, non-finite inputs, a bad relaxation or activation.
        TypeError: a non-real array or a relaxation of the wrong type.
    """
    inputs, _ = em.check_batch(spec, inputs)
    _checks.finite_tree(em.check_params(spec, params), "params")
    check_spiking_relaxation(spec, relaxation)
    key = jax.random.key(0) if key is None else _checks.prng_key(key, "key")
    return _spiking_predict(spec, params, inputs, key, relaxation)
