"""Equilibrium propagation (installed as ``probsnn.inference.energy.ep``).

Scellier & Bengio (2017, Front. Comput. Neurosci. 11:24), docs/theory.md §7. For a network of
:mod:`probsnn.models.energy` with total energy ``F(θ, β, s) = E(θ, s) + β C(θ, s)``:

* **Relaxation** (:func:`relax`): projected gradient descent ``s ← P(s − ε ∂F/∂s)`` (``P`` clips
  onto the activation's box, identity for smooth activations), run in a ``lax.while_loop`` until the
  residual ``max_batch ‖s_k − s_{k+1}‖₂ / ε`` (the projected gradient norm) is at most ``tol`` or
  ``max_steps`` is reached, or in a ``lax.fori_loop`` for exactly ``max_steps``. The free phase
  has β = 0; a nudged phase starts from the free fixed point ``s⁰`` and relaxes with β ≠ 0.
* **Estimators** of ``dL/dθ``, ``L = mean_batch C(θ, s⁰(θ))``, all of the form
  ``Re[c₀ ∂F/∂θ(0, s⁰) + Σ_k c_k ∂F/∂θ(β_k, s^{β_k})]`` (:func:`nudging_plan`):

  - ``"one_sided"``: ``(1/β)[∂F/∂θ(β, s^β) − ∂F/∂θ(0, s⁰)]``, bias O(β);
  - ``"symmetric"``: ``(1/2β)[∂F/∂θ(β, s^β) − ∂F/∂θ(−β, s^{−β})]``, bias O(β²)
    (Laborieux et al. 2021, Front. Neurosci. 15:633674);
  - ``"random_sign"``: one-sided with the sign of β drawn per update (same reference);
  - ``"holomorphic"``: ``(1/(N|β|)) Σ_k e^{−2πik/N} ∂F/∂θ(β_k, s^{β_k})``,
    ``β_k = |β| e^{2πik/N}``, bias O(|β|^N) (Laborieux & Zenke 2022, NeurIPS); needs a
    holomorphic activation (sigmoid, tanh).

  Because ``∂E/∂W_l = −ρ(s_{l−1})ᵀρ(s_l)`` and ``∂E/∂b_l = −ρ(s_l)``, the one-sided estimate is
  the local contrastive Hebbian rule ``ΔW ∝ (1/β)[ρρ^β − ρρ⁰]`` of docs/theory.md §7.

**Sign convention** (docs/learning.md). EP is a gradient estimator: every estimator, and
:func:`ep_rule`'s update, returns an estimate of the gradient ``dL/dθ`` of the loss to minimise,
``L(θ) = mean_batch C(θ, s⁰(θ))``, the cost at the free fixed point, with the sign of
``jax.grad``. Chain it with a descent optimiser: ``optax.chain(ep_rule(spec), optax.adam(lr))``.

Gradient checks compare the estimators with the exact gradient of the same loss, by implicit
differentiation at the free fixed point (:func:`implicit_gradient`) or by backpropagation through
time along the relaxation (:func:`bptt_gradient`); :func:`recurrent_backprop_errors` gives the error
signals of recurrent backprop that ``(1/β) ds^β/dt`` tracks (Scellier & Bengio 2019, Neural Comput.
31:312).

Training follows the trainer protocol of :mod:`probsnn.inference._training`: :func:`ep_trainer`
(EP, optionally with persistent free states) and :func:`backprop_trainer` (BPTT through the same
free relaxation, the baseline) return a ``Trainer(init, step)`` with :class:`EPState` and
:class:`EPInfo`; :func:`probsnn.inference.fit` runs the epochs on :func:`classification_data`;
:func:`predict` and :func:`classification_accuracy` evaluate the free fixed point.

Example::

    spec = EnergyNetwork((64, 128, 10), cost="cross_entropy")
    params = init_params(spec, jax.random.key(0), gain=0.5)
    config = EPConfig(estimator="symmetric", beta=0.5)
    trainer = ep_trainer(spec, optax.adam(2e-3), config)
    data = classification_data(spec, images, labels)
    result = fit(trainer, params, data, key=jax.random.key(1), epochs=10, batch_size=32)
    predictor = functools.partial(predict, spec, relaxation=config.free)
    accuracy = classification_accuracy(predictor, result.params, test_images, test_labels)
"""

from __future__ import annotations

from functools import partial
from itertools import pairwise
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
from probsnn.inference._steps import checked
from probsnn.inference._training import Trainer, stateless_rule
from probsnn.models import energy as em

ESTIMATORS = ("one_sided", "symmetric", "random_sign", "holomorphic")


# --------------------------------------------------------------------------------------------
# Relaxation
# --------------------------------------------------------------------------------------------


class Relaxation(NamedTuple):
    """How to relax: step size ε, step cap, residual tolerance, and adaptive (stop at ``tol``) or
    fixed (exactly ``max_steps``) stepping. In both modes ``converged`` reports residual <= tol."""

    step_size: float = 0.5
    max_steps: int = 100
    tol: float = 1e-3
    adaptive: bool = True


DEFAULT_RELAXATION = Relaxation()


class RelaxInfo(NamedTuple):
    """Diagnostics of one relaxation: steps taken, final residual ``max_batch ‖Δs‖/ε`` and
    whether it is at most ``tol``. A diverged relaxation has a non-finite residual and
    ``converged=False``."""

    steps: jax.Array
    residual: jax.Array
    converged: jax.Array


def check_relaxation(relaxation: Relaxation, name: str = "relaxation") -> Relaxation:
    """Validate a :class:`Relaxation`; raise TypeError/ValueError naming the bad field."""
    if not isinstance(relaxation, Relaxation):
        raise TypeError(f"{name} must be a Relaxation, got {type(relaxation).__name__}")
    step_size, max_steps, tol, adaptive = relaxation
    step_size = _checks.finite_float(step_size, f"{name}.step_size")
    if not 0 < step_size <= 1:
        raise ValueError(f"{name}.step_size must lie in (0, 1], got {step_size}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"{name}.max_steps must be an integer >= 1, got {max_steps!r}")
    _checks.positive_float(tol, f"{name}.tol")
    if not isinstance(adaptive, bool):
        raise TypeError(f"{name}.adaptive must be a bool, got {adaptive!r}")
    return relaxation


def fixed_point_map(spec, params, inputs, states, targets=None, beta=0.0, step_size=0.5):
    """One relaxation step ``T(s) = P(s − ε [∂E/∂s + β ∂C/∂s])`` for every free layer."""
    gradient = em.energy_gradient(spec, params, inputs, states)
    if targets is not None:
        nudge = em.cost_gradient(spec, params, states, targets)
        gradient = tuple(g + beta * c for g, c in zip(gradient, nudge, strict=True))
    moved = tuple(s - step_size * g for s, g in zip(states, gradient, strict=True))
    return em.project(spec, moved)


def _step_residual(old, new, step_size):
    squares = sum(jnp.sum(jnp.abs(a - b) ** 2, axis=-1) for a, b in zip(old, new, strict=True))
    return jnp.max(jnp.sqrt(squares)) / step_size


def _relax(spec, params, inputs, states, targets, beta, relaxation: Relaxation):
    """Traceable relaxation; ``targets=None`` means the free phase."""
    eps, max_steps, tol, adaptive = relaxation
    real_dtype = jnp.real(states[0]).dtype

    def step(current):
        new = fixed_point_map(spec, params, inputs, current, targets, beta, eps)
        return new, _step_residual(current, new, eps).astype(real_dtype)

    start = (tuple(states), jnp.asarray(jnp.inf, real_dtype))
    if adaptive:

        def keep_going(carry):
            _, steps, residual = carry
            unsettled = (residual > tol) & jnp.isfinite(residual)
            return (steps < max_steps) & ((steps == 0) | unsettled)

        def body(carry):
            current, steps, _ = carry
            new, residual = step(current)
            return new, steps + 1, residual

        final, steps, residual = jax.lax.while_loop(keep_going, body, (start[0], 0, start[1]))
    else:
        final, residual = jax.lax.fori_loop(0, max_steps, lambda _, c: step(c[0]), start)
        steps = jnp.asarray(max_steps)
    return final, RelaxInfo(jnp.asarray(steps, jnp.int32), residual, residual <= tol)


_relax_jit = jax.jit(_relax, static_argnames=("spec", "relaxation"))


def relax(
    spec: em.EnergyNetwork,
    params: em.EnergyParams,
    inputs,
    states=None,
    targets=None,
    beta: float = 0.0,
    relaxation: Relaxation = DEFAULT_RELAXATION,
):
    """Relax the states to a fixed point of ``F = E + β C`` (jitted).

    Args:
        inputs: clamped input ``(batch, n_inputs)``.
        states: initial free-layer states (tuple of ``(batch, n_l)``); zeros when None.
        targets: ``(batch, n_outputs)``; required when ``beta != 0``, ignored when ``beta == 0``.
        beta: nudging strength (real; 0 for the free phase).
        relaxation: a :class:`Relaxation`.

    Returns:
        ``(states, RelaxInfo)``.

    Raises:
        ValueError: bad shapes, non-finite values, a non-finite β, or ``beta != 0`` without
            targets.
        TypeError: a non-real array or a ``relaxation`` that is not a :class:`Relaxation`.
    """
    inputs, targets = em.check_batch(spec, inputs, targets)
    em.check_params(spec, params)
    check_relaxation(relaxation)
    if states is None:
        states = em.init_states(spec, inputs.shape[0], inputs.dtype)
    states = em.check_states(spec, states, inputs.shape[0])
    beta = _checks.finite_float(beta, "beta")
    if beta == 0.0:
        targets = None
    elif targets is None:
        raise ValueError(f"targets are needed for a nudged relaxation (beta={beta})")
    return _relax_jit(spec, params, inputs, states, targets, beta, relaxation)


def free_phase(spec, params, inputs, states=None, relaxation: Relaxation = DEFAULT_RELAXATION):
    """Free phase: relax with β = 0 from ``states`` (zeros when None).

    Returns ``(states, RelaxInfo)``.
    """
    return relax(spec, params, inputs, states, None, 0.0, relaxation)


def nudged_phase(spec, params, inputs, targets, beta, free_states, relaxation=DEFAULT_RELAXATION):
    """Nudged phase: relax ``F = E + β C`` from the free fixed point ``free_states``.

    Raises:
        ValueError: when ``beta == 0`` (that is the free phase) or is not finite.
    """
    if _checks.finite_float(beta, "beta") == 0.0:
        raise ValueError("beta must be nonzero for a nudged phase, got 0")
    return relax(spec, params, inputs, free_states, targets, beta, relaxation)


def trajectory(spec, params, inputs, states, targets=None, beta=0.0, step_size=0.5, n_steps=50):
    """States after each of ``n_steps`` relaxation steps (a ``lax.scan``), including the start.

    Returns a tuple over layers of ``(n_steps + 1, batch, n_l)`` arrays. Used to plot relaxation
    dynamics and to compare ``(1/β)(s_{k+1} − s_k)/ε`` with :func:`recurrent_backprop_errors`.

    Raises:
        ValueError, TypeError: bad shapes or (when concrete) non-finite inputs or states,
            ``n_steps`` < 1, a step size outside (0, 1], a non-finite β, β != 0 without targets.
    """
    inputs, targets = em.check_batch(spec, inputs, targets)
    em.check_params(spec, params)
    states = em.check_states(spec, states, inputs.shape[0])
    n_steps = _checks.positive_int(n_steps, "n_steps")
    if _checks.is_concrete(step_size):
        step_size = _checks.finite_float(step_size, "step_size")
        if not 0 < step_size <= 1:
            raise ValueError(f"step_size must lie in (0, 1], got {step_size}")
    if _checks.is_concrete(beta):
        beta = _checks.finite_float(beta, "beta")
        if beta != 0.0 and targets is None:
            raise ValueError(f"targets are needed for a nudged trajectory (beta={beta})")
    states = tuple(states)
    nudged_targets = None if beta == 0.0 else targets

    def step(current, _):
        new = fixed_point_map(spec, params, inputs, current, nudged_targets, beta, step_size)
        return new, new

    _, path = jax.lax.scan(step, states, None, length=n_steps)
    return tuple(jnp.concatenate([s[None], p]) for s, p in zip(states, path, strict=True))


def rate_derivative_increments(spec, inputs, path, beta):
    """Per-step weight increments of EP applied continuously in the nudged phase
    (docs/theory.md §8).

    ``ΔW_k = (1/β) [ρ̄_preᵀ Δρ_post + Δρ_preᵀ ρ̄_post]`` summed over the batch, with
    ``Δρ = ρ(s_{k+1}) − ρ(s_k)`` and ``ρ̄ = (ρ(s_k) + ρ(s_{k+1}))/2``: presynaptic rate times the
    rate of change of postsynaptic rate, the rate-derivative form of STDP (Xie & Seung 2000;
    Bengio et al. 2015). The midpoint rates make the sum over a phase telescope exactly to the
    EP update ``(1/β)[ρρ^β − ρρ⁰]`` (Scellier & Bengio 2017).

    Args:
        path: a nudged-phase :func:`trajectory` (tuple of ``(n_steps + 1, batch, n_l)``).

    Returns:
        A tuple over the energy's weight matrices of ``(n_steps, n_{l-1}, n_l)`` increments.
    """
    return tuple(
        pre_rate_post_change + pre_change_post_rate
        for pre_rate_post_change, pre_change_post_rate in rate_derivative_terms(
            spec, inputs, path, beta
        )
    )


def rate_derivative_terms(spec, inputs, path, beta):
    """The two terms of :func:`rate_derivative_increments`, kept apart.

    Returns:
        A tuple over the energy's weight matrices of pairs
        ``((1/β) ρ̄_preᵀ Δρ_post, (1/β) Δρ_preᵀ ρ̄_post)``, each ``(n_steps, n_{l-1}, n_l)`` and
        summed over the batch.

    Raises:
        ValueError: β zero or not finite, a path that is not a nudged trajectory of ``inputs``.
    """
    if _checks.is_concrete(beta) and _checks.finite_float(beta, "beta") == 0.0:
        raise ValueError("beta must be nonzero (the nudged phase's β), got 0")
    if not isinstance(path, tuple | list) or len(path) != len(spec.state_sizes):
        raise ValueError(
            f"path must be a trajectory: a tuple of {len(spec.state_sizes)} arrays "
            "(n_steps + 1, batch, n_l)"
        )
    inputs, _ = em.check_batch(spec, inputs)
    for layer, (states, size) in enumerate(zip(path, spec.state_sizes, strict=True)):
        if np.ndim(states) != 3 or np.shape(states)[1:] != (inputs.shape[0], size):
            raise ValueError(
                f"path[{layer}] must have shape (n_steps + 1, {inputs.shape[0]}, {size}), got "
                f"{np.shape(states)}"
            )
    rates = [jnp.broadcast_to(inputs, (path[0].shape[0], *inputs.shape))]
    rates += [spec.activation_fns.rho(p) for p in path]
    terms = []
    for pre, post in pairwise(rates):
        mean_pre, mean_post = (pre[1:] + pre[:-1]) / 2, (post[1:] + post[:-1]) / 2
        change_pre, change_post = jnp.diff(pre, axis=0), jnp.diff(post, axis=0)
        terms.append(
            (
                jnp.einsum("kbi,kbj->kij", mean_pre, change_post) / beta,
                jnp.einsum("kbi,kbj->kij", change_pre, mean_post) / beta,
            )
        )
    return tuple(terms)


# --------------------------------------------------------------------------------------------
# Estimators and the learning rule
# --------------------------------------------------------------------------------------------


class Nudging(NamedTuple):
    """Nudging strengths ``β_k`` (K,), their coefficients ``c_k`` (K,) and the free-phase
    coefficient ``c₀``: the estimate is ``Re[c₀ ∂F/∂θ(0, s⁰) + Σ_k c_k ∂F/∂θ(β_k, s^{β_k})]``."""

    betas: jax.Array
    coefficients: jax.Array
    free_coefficient: jax.Array


def check_estimator(spec, estimator: str, beta, n_points: int = 4) -> float:
    """Validate an estimator name, its β (finite, nonzero) and ``n_points``; return β as float."""
    _checks.option(estimator, "estimator", ESTIMATORS)
    beta = _checks.finite_float(beta, "beta")
    if beta == 0.0:
        raise ValueError("beta must be nonzero for a nudged phase, got 0")
    if estimator == "holomorphic":
        if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
            raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}")
        if not spec.activation_fns.holomorphic:
            raise ValueError(
                "estimator='holomorphic' needs a holomorphic activation ('sigmoid' or 'tanh'), "
                f"got activation={spec.activation!r}"
            )
    return beta


def nudging_plan(estimator: str, beta: float, key=None, n_points: int = 4) -> Nudging:
    """The phases and coefficients of an estimator (see the module docstring).

    ``key`` draws the sign for ``"random_sign"`` (required there); ``n_points`` is N for
    ``"holomorphic"``. β is assumed validated (:func:`check_estimator`).

    Raises:
        ValueError: an unknown estimator, no key for ``"random_sign"``. TypeError: a key that is
            not a PRNG key.
    """
    _checks.option(estimator, "estimator", ESTIMATORS)
    beta = jnp.asarray(beta)
    if estimator in ("one_sided", "random_sign"):
        if estimator == "random_sign":
            if key is None:
                raise ValueError("estimator='random_sign' needs a PRNG key, got key=None")
            key = _checks.prng_key(key, "key")
            beta = jnp.where(jax.random.bernoulli(key), beta, -beta)
        return Nudging(beta[None], (1.0 / beta)[None], -1.0 / beta)
    if estimator == "symmetric":
        betas = jnp.stack([beta, -beta])
        return Nudging(betas, 0.5 / betas, jnp.zeros_like(beta))
    rotations = jnp.exp(2j * np.pi * np.arange(n_points) / n_points)
    radius = jnp.abs(beta)
    return Nudging(
        radius * rotations, jnp.conj(rotations) / (n_points * radius), jnp.zeros_like(beta)
    )


class EPSignals(NamedTuple):
    """What the EP rule reads: the clamped batch, the free fixed point ``s⁰`` (tuple of
    ``(batch, n_l)``), the nudged fixed points (tuple of ``(K, batch, n_l)``) and the plan."""

    inputs: jax.Array
    targets: jax.Array
    free_states: tuple
    nudged_states: tuple
    nudging: Nudging


class PhaseInfo(NamedTuple):
    """Relaxation diagnostics of the free phase and of the K nudged phases (fields (K,))."""

    free: RelaxInfo
    nudged: RelaxInfo


def _ep_phases(spec, params, inputs, targets, states, nudging, free, nudged):
    free_states, free_info = _relax(spec, params, inputs, states, None, 0.0, free)
    start = free_states
    if jnp.iscomplexobj(nudging.betas):
        start = tuple(s.astype(jnp.result_type(s.dtype, jnp.complex64)) for s in free_states)

    def nudge(beta):
        return _relax(spec, params, inputs, start, targets, beta, nudged)

    nudged_states, nudged_info = jax.vmap(nudge)(nudging.betas)
    signals = EPSignals(inputs, targets, free_states, nudged_states, nudging)
    return signals, PhaseInfo(free_info, nudged_info)


def ep_gradient(spec, params, signals: EPSignals):
    """The EP estimate of ``dL/dθ`` from the phase states (a pytree like ``params``).

    ``Re[c₀ Σ_b ∂E/∂θ(s⁰) + Σ_k c_k Σ_b ∂F/∂θ(β_k, s^{β_k})] / batch``; the states are constants.

    Raises:
        TypeError: signals that are not :class:`EPSignals`, params that are not EnergyParams.
        ValueError: params of the wrong shapes.
    """
    if not isinstance(signals, EPSignals):
        raise TypeError(
            "signals must be EPSignals(inputs, targets, free_states, nudged_states, nudging), "
            f"got {type(signals).__name__}"
        )
    em.check_params(spec, params)
    inputs, targets, free_states, nudged_states, (betas, coefficients, free_coefficient) = signals

    def contrast(p):
        free_term = free_coefficient * jnp.sum(em.energy(spec, p, inputs, free_states))

        def phase_energy(states, beta):
            return jnp.sum(em.total_energy(spec, p, inputs, states, targets, beta))

        nudged_terms = jax.vmap(phase_energy)(nudged_states, betas)
        return jnp.real(free_term + jnp.sum(coefficients * nudged_terms)) / inputs.shape[0]

    return jax.grad(contrast)(params)


def ep_rule(spec: em.EnergyNetwork) -> optax.GradientTransformation:
    """Equilibrium propagation as a gradient estimator (docs/learning.md): an optax
    transformation whose ``updates`` input is an :class:`EPSignals`.

    ``update(signals, state, params)`` returns ``(ep_gradient(spec, params, signals), state)``, an
    estimate of ``dL/dθ`` for the loss ``L(θ) = mean_batch C(θ, s⁰(θ))``, the cost at the free
    fixed point ``s⁰`` (same sign as ``jax.grad``; bias O(β) one-sided, O(β²) symmetric,
    O(|β|^N) holomorphic). Chain it with a descent optimiser,
    ``optax.chain(ep_rule(spec), optax.adam(1e-3))``. Stateless (``optax.EmptyState``).

    Raises:
        ValueError: from ``update`` when ``params`` is not given.
    """

    return stateless_rule(partial(ep_gradient, spec), "ep_rule")


def _ep_estimate(
    spec, params, inputs, targets, states, key, estimator, beta, n_points, free, nudged
):
    nudging = nudging_plan(estimator, beta, key, n_points)
    signals, info = _ep_phases(spec, params, inputs, targets, states, nudging, free, nudged)
    return ep_gradient(spec, params, signals), signals, info


_ep_estimate_jit = jax.jit(
    _ep_estimate, static_argnames=("spec", "estimator", "n_points", "free", "nudged")
)


def ep_estimate(
    spec,
    params,
    inputs,
    targets,
    *,
    estimator: str = "symmetric",
    beta: float = 0.1,
    key=None,
    n_points: int = 4,
    free: Relaxation = DEFAULT_RELAXATION,
    nudged: Relaxation = DEFAULT_RELAXATION,
    states=None,
):
    """Run the free and nudged phases and return ``(gradient_estimate, EPSignals, PhaseInfo)``.

    Raises:
        ValueError: bad shapes, non-finite inputs, an unknown estimator, β = 0, or a missing key
            for ``"random_sign"``.
        TypeError: a non-real array, a key that is not a PRNG key, or a relaxation that is not a
            :class:`Relaxation`.
    """
    inputs, targets = em.check_batch(spec, inputs, targets)
    if targets is None:
        raise ValueError("targets are needed for equilibrium propagation, got None")
    _checks.finite_tree(em.check_params(spec, params), "params")
    beta = check_estimator(spec, estimator, beta, n_points)
    check_relaxation(free, "free")
    check_relaxation(nudged, "nudged")
    if estimator == "random_sign" and key is None:
        raise ValueError("estimator='random_sign' needs a PRNG key, got key=None")
    if key is not None:
        key = _checks.prng_key(key, "key")
    if states is None:
        states = em.init_states(spec, inputs.shape[0], inputs.dtype)
    states = em.check_states(spec, states, inputs.shape[0])
    return _ep_estimate_jit(
        spec, params, inputs, targets, states, key, estimator, beta, n_points, free, nudged
    )


# --------------------------------------------------------------------------------------------
# Exact gradients and checks
# --------------------------------------------------------------------------------------------


def _flatten(states):
    return jnp.concatenate(states, axis=-1)


def _unflatten(spec, vector):
    splits = np.cumsum(spec.state_sizes)[:-1]
    return tuple(jnp.split(vector, splits, axis=-1))


def implicit_gradient(spec, params, inputs, targets, free_states):
    """Exact ``dL/dθ`` at a free fixed point by implicit differentiation (jitted).

    With the fixed-point map ``T(s, θ) = P(s − ∂E/∂s)`` (:func:`fixed_point_map`, ε = 1) and
    ``J = ∂T/∂s`` per example: solve ``(I − Jᵀ) λ = ∂C/∂s`` and return
    ``(Σ_b ∂C/∂θ + λᵀ ∂T/∂θ) / batch``. Dense per-example Jacobians, so O(batch · n³): meant for
    checks on small networks. ``free_states`` must be converged (see :func:`relax`).

    Raises:
        ValueError, TypeError: bad shapes, missing targets, non-finite inputs, targets, states
            or params.
    """
    inputs, targets = _reference_batch(spec, params, inputs, targets)
    free_states = em.check_states(spec, free_states, inputs.shape[0], "free_states")
    return _implicit_gradient(spec, params, inputs, targets, free_states)


def _reference_batch(spec, params, inputs, targets):
    """The checks of the exact gradients: a labelled batch and finite params."""
    inputs, targets = em.check_batch(spec, inputs, targets)
    if targets is None:
        raise ValueError("targets are needed for the gradient of the cost, got None")
    _checks.finite_tree(em.check_params(spec, params), "params")
    return inputs, targets


@jax.jit(static_argnames="spec")
def _implicit_gradient(spec, params, inputs, targets, free_states):

    def single_map(vector, x):
        states = _unflatten(spec, vector[None])
        return _flatten(fixed_point_map(spec, params, x[None], states, step_size=1.0))[0]

    vectors = _flatten(free_states)
    jacobians = jax.vmap(jax.jacfwd(single_map))(vectors, inputs)
    cost_grad = _flatten(em.cost_gradient(spec, params, free_states, targets))
    eye = jnp.eye(vectors.shape[-1], dtype=vectors.dtype)
    adjoint = jnp.linalg.solve(eye - jnp.swapaxes(jacobians, 1, 2), cost_grad[..., None])[..., 0]

    def mapped(p):
        return _flatten(fixed_point_map(spec, p, inputs, free_states, step_size=1.0))

    _, pullback = jax.vjp(mapped, params)
    (through_states,) = pullback(adjoint)
    direct = jax.grad(lambda p: jnp.sum(em.cost(spec, p, free_states, targets)))(params)
    batch = inputs.shape[0]
    return jax.tree.map(lambda a, b: (a + b) / batch, through_states, direct)


def bptt_gradient(
    spec, params, inputs, targets, relaxation: Relaxation = DEFAULT_RELAXATION, states=None
):
    """``dL/dθ`` by backpropagation through ``relaxation.max_steps`` free-phase steps
    (fixed stepping, a ``fori_loop`` that reverse-mode differentiates as a scan; jitted).

    Raises:
        ValueError, TypeError: bad shapes, missing targets, non-finite inputs, targets, states
            or params, a bad relaxation.
    """
    inputs, targets = _reference_batch(spec, params, inputs, targets)
    check_relaxation(relaxation)
    if states is not None:
        states = em.check_states(spec, states, inputs.shape[0])
    return _bptt_gradient(spec, params, inputs, targets, relaxation, states)


@jax.jit(static_argnames=("spec", "relaxation"))
def _bptt_gradient(spec, params, inputs, targets, relaxation, states):
    fixed = relaxation._replace(adaptive=False)
    if states is None:
        states = em.init_states(spec, inputs.shape[0], inputs.dtype)

    def loss(p):
        final, _ = _relax(spec, p, inputs, states, None, 0.0, fixed)
        return jnp.mean(em.cost(spec, p, final, targets))

    return jax.grad(loss)(params)


def recurrent_backprop_errors(spec, params, inputs, targets, free_states, step_size, n_steps):
    """Error signals of recurrent backprop ``S̄_k = (Jᵀ)^k ∂C/∂s``, k = 0..n_steps−1, where
    ``J = ∂T/∂s`` at the free fixed point for ``T`` of step ``step_size`` (Almeida 1987;
    Pineda 1987).

    Scellier & Bengio (2019): in the nudged phase ``(1/β)(s_{k+1} − s_k)/ε → −S̄_k`` as β → 0 (on
    the units not pinned at a box bound). Returns a tuple over layers of ``(n_steps, batch, n_l)``.
    """
    free_states = tuple(free_states)
    _, pullback = jax.vjp(
        lambda s: fixed_point_map(spec, params, inputs, s, step_size=step_size), free_states
    )

    def step(error, _):
        return pullback(error)[0], error

    start = em.cost_gradient(spec, params, free_states, targets)
    _, errors = jax.lax.scan(step, start, None, length=n_steps)
    return errors


def _tree_vector(tree):
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def _compared_vectors(estimate, reference):
    """The two pytrees flattened, after checking that they match and are finite and real."""
    if jax.tree.structure(estimate) != jax.tree.structure(reference):
        raise ValueError(
            "estimate and reference must have the same structure, got "
            f"{jax.tree.structure(estimate)} and {jax.tree.structure(reference)}"
        )
    for leaf_a, leaf_b in zip(jax.tree.leaves(estimate), jax.tree.leaves(reference), strict=True):
        if np.shape(leaf_a) != np.shape(leaf_b):
            raise ValueError(
                f"estimate and reference leaves must have equal shapes, got {np.shape(leaf_a)} "
                f"and {np.shape(leaf_b)}"
            )
    _checks.finite_tree(estimate, "estimate")
    _checks.finite_tree(reference, "reference")
    if not jax.tree.leaves(reference):
        raise ValueError("estimate and reference must hold at least one array")
    return _tree_vector(estimate), _tree_vector(reference)


def cosine_similarity(estimate, reference) -> float:
    """Cosine similarity between two pytrees of the same structure (flattened).

    Raises:
        ValueError: structures or shapes that differ, non-finite values, a zero vector (its
            direction is undefined). TypeError: complex values.
    """
    a, b = _compared_vectors(estimate, reference)
    norms = float(jnp.linalg.norm(a)), float(jnp.linalg.norm(b))
    if 0.0 in norms:
        raise ValueError(
            f"the cosine is undefined for a zero vector (norms of estimate and reference {norms})"
        )
    return float(jnp.dot(a, b) / (norms[0] * norms[1]))


def relative_error(estimate, reference) -> float:
    """``‖estimate − reference‖ / ‖reference‖`` over flattened pytrees.

    Raises:
        ValueError: structures or shapes that differ, non-finite values, a zero reference.
        TypeError: complex values.
    """
    a, b = _compared_vectors(estimate, reference)
    norm = float(jnp.linalg.norm(b))
    if norm == 0.0:
        raise ValueError("the relative error is undefined for a zero reference")
    return float(jnp.linalg.norm(a - b) / norm)


def error_slope(betas, errors) -> float:
    """Least-squares slope of ``log(error)`` against ``log(β)``: ≈ 1 for O(β), ≈ 2 for O(β²).

    Raises:
        ValueError: unequal or too short arrays, β = 0, errors <= 0 or non-finite values.
        TypeError: complex values.
    """
    betas = np.asarray(_checks.real_array(betas, "betas"), float)
    errors = np.asarray(_checks.real_array(errors, "errors"), float)
    if betas.shape != errors.shape or betas.ndim != 1 or betas.size < 2:
        raise ValueError(
            f"betas and errors must be 1-D of equal length >= 2, got {betas.shape}, {errors.shape}"
        )
    if np.any(betas == 0) or np.any(errors <= 0):
        raise ValueError(
            "the log-log slope needs betas != 0 and errors > 0, got "
            f"betas={betas.tolist()}, errors={errors.tolist()}"
        )
    return float(np.polyfit(np.log(np.abs(betas)), np.log(errors), 1)[0])


CHECK_RELAXATION = Relaxation(step_size=0.5, max_steps=2000, tol=1e-5)


class GradientCheck(NamedTuple):
    """Cosine similarity and relative error of each estimator against the reference, per β."""

    betas: np.ndarray
    cosine: dict
    relative_error: dict
    reference: object


def gradient_check(
    spec,
    params,
    inputs,
    targets,
    betas,
    *,
    estimators=("one_sided", "symmetric"),
    relaxation: Relaxation = CHECK_RELAXATION,
    reference: str = "implicit",
    n_points: int = 4,
    key=None,
) -> GradientCheck:
    """Compare EP estimators with the exact gradient (``"implicit"`` or ``"bptt"``) over ``betas``.

    The nudged phases use ``relaxation`` too. Raises ValueError if the free phase or a nudged
    phase does not converge (the comparison would be meaningless), or on a bad estimator, an
    empty or non-finite list of β, missing targets, non-finite params or a bad reference;
    TypeError on a key that is not a PRNG key.
    """
    _checks.option(reference, "reference", ("implicit", "bptt"))
    inputs, targets = em.check_batch(spec, inputs, targets)
    if targets is None:
        raise ValueError("targets are needed for a gradient check, got None")
    _checks.finite_tree(em.check_params(spec, params), "params")
    betas = np.asarray(_checks.real_array(betas, "betas"), float)
    if betas.ndim != 1 or np.any(betas == 0):
        raise ValueError(f"betas must be a 1-D array of nonzero values, got {betas.tolist()}")
    if isinstance(estimators, str):
        raise TypeError(f"estimators must be a sequence of names, got the string {estimators!r}")
    for name in estimators:
        check_estimator(spec, name, float(betas[0]), n_points)
    key = jax.random.key(0) if key is None else _checks.prng_key(key, "key")
    free_states, info = free_phase(spec, params, inputs, relaxation=relaxation)
    if not bool(info.converged):
        raise ValueError(
            f"the free phase did not converge (residual {float(info.residual):.3g} after "
            f"{int(info.steps)} steps); raise relaxation.max_steps or relaxation.tol"
        )
    if reference == "implicit":
        exact = implicit_gradient(spec, params, inputs, targets, free_states)
    else:
        exact = bptt_gradient(spec, params, inputs, targets, relaxation)
    cosine, error = {}, {}
    for name in estimators:
        cosine[name], error[name] = [], []
        for beta in betas:
            estimate, _, phase_info = ep_estimate(
                spec,
                params,
                inputs,
                targets,
                estimator=name,
                beta=float(beta),
                key=key,
                n_points=n_points,
                free=relaxation,
                nudged=relaxation,
                states=free_states,
            )
            if not bool(jnp.all(phase_info.nudged.converged)):
                raise ValueError(
                    f"a nudged phase of {name!r} at beta={float(beta)} did not converge "
                    f"(residuals {phase_info.nudged.residual}); raise relaxation.max_steps"
                )
            cosine[name].append(cosine_similarity(estimate, exact))
            error[name].append(relative_error(estimate, exact))
        cosine[name], error[name] = np.array(cosine[name]), np.array(error[name])
    return GradientCheck(np.asarray(betas, float), cosine, error, exact)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


class EPConfig(NamedTuple):
    """Settings of EP training. ``persistent`` keeps each training item's free state between
    epochs and starts its next free phase there (Scellier & Bengio 2017)."""

    estimator: str = "symmetric"
    beta: float = 0.5
    n_points: int = 4
    free: Relaxation = Relaxation(step_size=0.5, max_steps=60, tol=1e-3)
    nudged: Relaxation = Relaxation(step_size=0.5, max_steps=30, tol=1e-3)
    persistent: bool = False


DEFAULT_CONFIG = EPConfig()


class EPBatch(NamedTuple):
    """A mini-batch of labelled items, the ``batch`` of the energy trainers' ``step``.

    Attributes:
        inputs: ``(B, n_inputs)`` clamped inputs.
        targets: ``(B, n_outputs)`` one-hot targets.
        index: ``(B,)`` int, the items' rows in the training set, read by persistent free
            states (``EPConfig(persistent=True)``); None otherwise. A plain
            ``(inputs, targets)`` tuple is a batch too.
    """

    inputs: jax.Array
    targets: jax.Array
    index: jax.Array | None = None


class EPState(NamedTuple):
    """State of the energy trainers: parameters, optimiser state, the persistent free states
    (tuple of ``(n_train, n_l)``, or None) and the number of steps taken."""

    params: em.EnergyParams
    opt_state: object
    particles: tuple | None
    step: jax.Array


class EPInfo(NamedTuple):
    """Per-step metrics of the energy trainers.

    Attributes:
        loss: mean cost ``C`` at the free fixed point, before the update (the loss minimised).
        accuracy: fraction of the batch whose argmax output matches the argmax target.
        free: diagnostics of the free phase (:class:`RelaxInfo`, or
            :class:`~probsnn.inference.energy.spiking_ep.SpikingInfo` for spiking EP); a
            free-phase ``residual`` far above ``tol`` points at a too-large relaxation step.
        nudged: the same for the K nudged phases (fields ``(K,)``); None without nudged phases
            (the backprop baseline).
    """

    loss: jax.Array
    accuracy: jax.Array
    free: RelaxInfo
    nudged: RelaxInfo | None


def _check_spec(spec):
    if not isinstance(spec, em.EnergyNetwork):
        raise TypeError(f"spec must be an EnergyNetwork, got {type(spec).__name__}")


def batch_metrics(spec, params, states, targets):
    """Mean cost and accuracy (argmax of the output against argmax of the targets) of a batch."""
    loss = jnp.mean(em.cost(spec, params, states, targets))
    hits = em.predict(spec, params, states) == jnp.argmax(targets, axis=-1)
    return loss, jnp.mean(hits)


def classification_data(spec, images, labels, *, indexed: bool = False) -> EPBatch:
    """Labelled images as the training data of the energy trainers (for
    :func:`probsnn.inference.fit`).

    Args:
        images: ``(n, ...)`` real, flattening to ``(n, spec.n_inputs)``.
        labels: ``(n,)`` integers in ``0 .. spec.n_outputs − 1``.
        indexed: also carry the items' indices ``arange(n)``, needed by persistent free states.

    Returns:
        :class:`EPBatch` of host arrays: float32 inputs ``(n, n_inputs)``, one-hot float32
        targets ``(n, n_outputs)``, int32 indices ``(n,)`` or None.

    Raises:
        ValueError: images that do not flatten to ``n_inputs`` or are not finite, labels of the
            wrong shape, type or range.
    """
    images = _checks.real_array(images, "images", min_ndim=1)
    _checks.nonempty(images, "images")
    images = np.asarray(images, np.float32)
    images = images.reshape(len(images), -1)
    labels = np.asarray(labels)
    if images.shape[1] != spec.n_inputs:
        raise ValueError(f"images must flatten to {spec.n_inputs} inputs, got {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= spec.n_outputs:
        raise ValueError(f"labels must lie in 0..{spec.n_outputs - 1}")
    if not np.all(np.isfinite(images)):
        raise ValueError("images must be finite, found NaN or inf")
    targets = np.eye(spec.n_outputs, dtype=np.float32)[labels]
    index = np.arange(len(images), dtype=np.int32) if indexed else None
    return EPBatch(images, targets, index)


def batch_arrays(spec, batch, needs_index: bool = False):
    """``(inputs, targets, index)`` of a trainer's ``batch`` (an :class:`EPBatch` or an
    ``(inputs, targets)`` tuple), shapes checked (traceable: runs once per compilation).

    Raises:
        TypeError: a batch that is not such a tuple.
        ValueError: wrong shapes, or no ``index`` when ``needs_index`` (persistent states).
    """
    if not isinstance(batch, tuple) or len(batch) not in (2, 3):
        raise TypeError(
            "batch must be (inputs, targets) or an EPBatch(inputs, targets, index), got "
            f"{type(batch).__name__}"
        )
    inputs, targets = em.check_batch(spec, batch[0], batch[1])
    _checks.nonempty(inputs, "batch inputs")
    index = batch[2] if len(batch) == 3 else None
    if index is None:
        if needs_index:
            raise ValueError(
                "persistent free states need the items' indices: pass EPBatch(inputs, targets, "
                "index) batches, e.g. classification_data(spec, images, labels, indexed=True)"
            )
    elif jnp.shape(index) != (inputs.shape[0],):
        raise ValueError(
            f"batch index must have shape ({inputs.shape[0]},), got {jnp.shape(index)}"
        )
    return inputs, targets, index


def ep_trainer(
    spec: em.EnergyNetwork,
    optimizer: optax.GradientTransformation,
    config: EPConfig = DEFAULT_CONFIG,
    *,
    n_train: int | None = None,
) -> Trainer:
    """Equilibrium propagation as a :class:`~probsnn.inference._training.Trainer`.

    Each ``step(key, state, batch)`` relaxes the free phase (from zero, or from the items'
    persistent free states), the nudged phases of ``config.estimator``, and follows the EP
    estimate of ``dL/dθ`` with ``optax.chain(ep_rule(spec), optimizer)``: ``optimizer`` is a
    descent optimiser such as ``optax.adam(1e-3)`` (docs/learning.md). The loss is
    ``L = mean_batch C(θ, s⁰(θ))``, the cost at the free fixed point. ``key`` draws the sign of β
    for ``"random_sign"`` (unused otherwise).

    Args:
        spec: the :class:`~probsnn.models.energy.EnergyNetwork`.
        optimizer: an optax transformation that turns gradients into updates.
        config: an :class:`EPConfig`.
        n_train: the training-set size; required with ``config.persistent``, which then keeps
            ``(n_train, n_l)`` free states and needs batches with indices (:class:`EPBatch`).

    Returns:
        ``Trainer(init, step)``: ``init(params) -> EPState``; ``step(key, EPState, batch) ->
        (EPState, EPInfo)`` (jitted), ``batch`` an :class:`EPBatch` or ``(inputs, targets)``.

    Raises:
        ValueError: a bad estimator, β or relaxation; ``config.persistent`` without ``n_train``
            or ``n_train`` without it; at init, non-finite params; at step, an empty batch.
        TypeError: a config that is not an :class:`EPConfig`, an optimizer that is not an optax
            transformation (e.g. a string); at step, a key that is not a PRNG key.
    """
    _check_spec(spec)
    if not isinstance(config, EPConfig):
        raise TypeError(f"config must be an EPConfig, got {type(config).__name__}")
    _checks.optimizer(optimizer)
    if not isinstance(config.persistent, bool):
        raise TypeError(f"config.persistent must be a bool, got {config.persistent!r}")
    beta = check_estimator(spec, config.estimator, config.beta, config.n_points)
    check_relaxation(config.free, "config.free")
    check_relaxation(config.nudged, "config.nudged")
    if config.persistent:
        if n_train is None:
            raise ValueError("config.persistent=True needs n_train (the training-set size)")
        n_train = _checks.positive_int(n_train, "n_train")
    elif n_train is not None:
        raise ValueError("n_train is only used with config.persistent=True")
    rule = optax.chain(ep_rule(spec), optimizer)

    def init(params):
        _checks.finite_tree(em.check_params(spec, params), "params")
        particles = None
        if config.persistent:
            particles = em.init_states(spec, n_train, jnp.result_type(float))
        return EPState(params, rule.init(params), particles, jnp.asarray(0, jnp.int32))

    @jax.jit
    def step(key, state, batch):
        inputs, targets, index = batch_arrays(spec, batch, config.persistent)
        if state.particles is None:
            start = em.init_states(spec, inputs.shape[0], inputs.dtype)
        else:
            start = tuple(p[index] for p in state.particles)
        nudging = nudging_plan(config.estimator, beta, key, config.n_points)
        signals, info = _ep_phases(
            spec, state.params, inputs, targets, start, nudging, config.free, config.nudged
        )
        loss, accuracy = batch_metrics(spec, state.params, signals.free_states, targets)
        updates, opt_state = rule.update(signals, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        particles = state.particles
        if particles is not None:
            particles = tuple(
                p.at[index].set(s) for p, s in zip(particles, signals.free_states, strict=True)
            )
        new_state = EPState(params, opt_state, particles, state.step + 1)
        return new_state, EPInfo(loss, accuracy, info.free, info.nudged)

    return Trainer(
        init, checked(step, lambda state, batch: batch_arrays(spec, batch, config.persistent))
    )


def backprop_trainer(
    spec: em.EnergyNetwork,
    optimizer: optax.GradientTransformation,
    relaxation: Relaxation = DEFAULT_CONFIG.free,
) -> Trainer:
    """The baseline on the same network: exact gradients of ``L = mean_batch C(θ, s(θ))`` by
    backpropagation through ``relaxation.max_steps`` fixed free-phase steps from zero (BPTT,
    :func:`bptt_gradient`), followed by ``optimizer`` (e.g. ``optax.adam(1e-3)``).

    Returns:
        ``Trainer(init, step)`` like :func:`ep_trainer`'s (``EPState`` without particles,
        ``EPInfo`` with ``nudged=None``); ``step`` does not use its key, and ignores a batch's
        ``index``. Predict with ``relaxation._replace(adaptive=False)`` (:func:`predict`), the
        dynamics it was trained through.

    Raises:
        ValueError / TypeError: a bad ``relaxation``, an optimizer that is not an optax
            transformation (e.g. a string); at init, non-finite params; at step, an empty batch.
    """
    _check_spec(spec)
    _checks.optimizer(optimizer)
    check_relaxation(relaxation)
    fixed = relaxation._replace(adaptive=False)

    def init(params):
        _checks.finite_tree(em.check_params(spec, params), "params")
        return EPState(params, optimizer.init(params), None, jnp.asarray(0, jnp.int32))

    @jax.jit
    def step(key, state, batch):
        del key
        inputs, targets, _ = batch_arrays(spec, batch)
        start = em.init_states(spec, inputs.shape[0], inputs.dtype)

        def loss(p):
            states, info = _relax(spec, p, inputs, start, None, 0.0, fixed)
            return jnp.mean(em.cost(spec, p, states, targets)), (states, info)

        grads, (states, info) = jax.grad(loss, has_aux=True)(state.params)
        loss_value, accuracy = batch_metrics(spec, state.params, states, targets)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = EPState(params, opt_state, None, state.step + 1)
        return new_state, EPInfo(loss_value, accuracy, info, None)

    return Trainer(
        init, checked(step, lambda state, batch: batch_arrays(spec, batch), uses_key=False)
    )


@jax.jit(static_argnames=("spec", "relaxation"))
def _predict(spec, params, inputs, relaxation):
    start = em.init_states(spec, inputs.shape[0], inputs.dtype)
    states, _ = _relax(spec, params, inputs, start, None, 0.0, relaxation)
    return em.output_scores(spec, params, states)


def predict(
    spec: em.EnergyNetwork,
    params: em.EnergyParams,
    inputs,
    relaxation: Relaxation = DEFAULT_CONFIG.free,
) -> jax.Array:
    """The network's output scores at the free fixed point reached from zero states (jitted).

    Args:
        inputs: ``(batch, n_inputs)``.
        relaxation: the free phase's :class:`Relaxation` (``EPConfig.free`` for EP; for the
            backprop baseline its fixed-step relaxation).

    Returns:
        ``(batch, n_outputs)`` scores (output states, or the readout's logits).

    Raises:
        ValueError / TypeError: bad shapes, non-finite inputs, a bad relaxation.
    """
    inputs, _ = em.check_batch(spec, inputs)
    _checks.finite_tree(em.check_params(spec, params), "params")
    check_relaxation(relaxation)
    return _predict(spec, params, inputs, relaxation)


def classification_accuracy(predictor, params, images, labels, batch_size: int = 512) -> float:
    """Fraction of ``labels`` matched by the argmax of ``predictor(params, inputs)``.

    Args:
        predictor: ``(params, inputs (b, n_inputs)) -> scores (b, n_outputs)``, e.g.
            ``functools.partial(predict, spec, relaxation=config.free)`` or
            :func:`probsnn.inference.energy.spiking_ep.spiking_predict` likewise.
        images: ``(n, ...)`` flattening to ``(n, n_inputs)``; labels: ``(n,)`` integers.
        batch_size: items per call of ``predictor``.

    Raises:
        ValueError: no images, non-finite images, labels whose length differs from the images'
            or that are not integers.
        TypeError: a predictor that is not callable, complex images.
    """
    if not callable(predictor):
        raise TypeError(f"predictor must be callable (params, inputs) -> scores, got {predictor!r}")
    images = _checks.real_array(images, "images", min_ndim=1)
    _checks.nonempty(images, "images")
    inputs = np.asarray(images, np.float32).reshape(len(images), -1)
    labels = np.asarray(labels)
    if labels.shape != (len(inputs),):
        raise ValueError(f"labels must have shape ({len(inputs)},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    hits = 0
    for start in range(0, len(inputs), batch_size):
        scores = predictor(params, jnp.asarray(inputs[start : start + batch_size]))
        hits += int(np.sum(np.argmax(np.asarray(scores), -1) == labels[start : start + batch_size]))
    return hits / len(inputs)
