"""Evolution strategies: a gradient estimate from perturbed copies of the parameters.

OpenAI-ES (Salimans, Ho, Chen, Sidor & Sutskever 2017) treats the episode return as a black-box
fitness F(θ) of the flattened parameters θ ∈ ℝ^d and follows the gradient of its Gaussian
smoothing F_σ(θ) = E_ε[F(θ + σε)], ε ~ N(0, I):

    ∇F_σ(θ) = (1/σ) E_ε[F(θ + σε) ε] ≈ (1/(Pσ)) Σ_i f_i ε_i,

over a population of P members θ_i = θ + σε_i. **Antithetic** sampling (mirrored pairs
ε_{i+P/2} = −ε_i) turns the sum into (1/(Pσ)) Σ_{i<P/2} (f_i − f_{i+P/2}) ε_i, whose even-order
terms of F cancel: for a quadratic F it is (2/P) Σ_{i<P/2} ε_i ε_iᵀ ∇F exactly, with mean ∇F and
covariance ((|∇F|² I + ∇F ∇Fᵀ)/(P/2)). **Fitness shaping** replaces f_i by its centred rank
u_i = rank(f_i)/(P − 1) − ½ ∈ [−½, ½] (ties broken by order), which makes the step invariant to
monotone transformations of the return and robust to outliers (Wierstra et al. 2014); with
``fitness_shaping="none"`` the raw fitness is used and the estimate is unbiased for ∇F_σ.

The trainer feeds the gradient of the LOSS, −ĝ (``jax.grad``'s sign), to an optax optimizer.
A member's fitness is the mean return of its ``n_episodes`` episodes, sampled by the compiled
rollouts of :mod:`probsnn.rl.episodes`, all members at once (``jax.vmap``); every step costs
P × ``n_episodes`` episodes and no gradient of the policy (the policy may be non-differentiable:
first-to-spike decoding, a spiking network, an MLP alike). Only free parameters are perturbed:
for a :class:`probsnn.rl.SpikingPolicy` the synaptic weights outside the connectivity mask stay
where they are.

**Defaults.** σ and the step size are in the units of the parameters, for a spiking policy the
GLM's logit-scale weights (input weights ~0.2, biases ~−3), not the normalised networks of
Salimans et al. (σ = 0.02): σ = 0.3 and ``optax.adam(0.1)``, measured on CartPole-v1 with
``SpikingPolicy.for_environment`` (P = 32, one episode each; three seeds) to reach a
100-episode evaluation mean >= 475 after 960–2,240 episodes (3–6 s on two CPU cores), where
σ = 0.05 took 4,500 or more (one seed not within 5,000) and σ = 0.1 1,900–4,800.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from probsnn import _checks
from probsnn.rl import episodes as rollouts
from probsnn.rl.environments import BaseEnvironment

from .._training import Trainer
from ._episodic import episodic_trainer

FITNESS_SHAPINGS = ("centered_ranks", "none")


class EvolutionState(NamedTuple):
    """params: the population's centre θ; opt_state: the optimizer's; episodes: episodes
    sampled so far (P × ``n_episodes`` per step)."""

    params: Any
    opt_state: Any
    episodes: jax.Array


class EvolutionInfo(NamedTuple):
    """Per step: loss (−mean fitness over the population), mean_return (over all the members'
    episodes), episode_length (mean), spikes_per_step (mean spikes per alive environment step),
    best_return (the fittest member's mean return), grad_norm (|ĝ|)."""

    loss: jax.Array
    mean_return: jax.Array
    episode_length: jax.Array
    spikes_per_step: jax.Array
    best_return: jax.Array
    grad_norm: jax.Array


def perturbations(key, n_params: int, population: int, antithetic: bool = True):
    """Standard normal directions ε ``(P, d)``; when ``antithetic``, rows ``P/2 + i`` are
    ``−ε_i`` (P must be even). Unchecked: the trainer validates its arguments."""
    if not antithetic:
        return jax.random.normal(key, (population, n_params))
    half = jax.random.normal(key, (population // 2, n_params))
    return jnp.concatenate([half, -half])


def centered_ranks(fitness):
    """u_i = rank(f_i)/(P − 1) − ½ ``(P,)`` (module docstring; the lowest fitness gets −½)."""
    ranks = jnp.argsort(jnp.argsort(fitness))
    return ranks.astype(jnp.float32) / (fitness.shape[0] - 1) - 0.5


def es_gradient(noise, fitness, sigma: float, fitness_shaping: str = "centered_ranks"):
    """The gradient of the loss −F_σ: −(1/(Pσ)) Σ_i u_i ε_i ``(d,)``.

    Args:
        noise: ε ``(P, d)`` (:func:`perturbations`). fitness: f ``(P,)`` of the members
            θ + σε_i. sigma: σ > 0. fitness_shaping: ``"centered_ranks"`` (u = centred ranks)
            or ``"none"`` (u = f).
    """
    shaped = centered_ranks(fitness) if fitness_shaping == "centered_ranks" else fitness
    return -(shaped @ noise) / (noise.shape[0] * sigma)


def free_mask(policy, params):
    """1 where a parameter is free, 0 where it is fixed: a pytree shaped like ``params``; a
    :class:`probsnn.rl.SpikingPolicy`'s synapses outside the connectivity mask are fixed."""
    mask = jax.tree.map(jnp.ones_like, params)
    network = getattr(policy, "network", None)
    if network is not None:
        mask = network.masked(mask)
    return mask


def evolution_strategies_trainer(
    policy,
    environment: BaseEnvironment,
    optimizer: optax.GradientTransformation | None = None,
    *,
    population: int = 32,
    sigma: float = 0.3,
    n_episodes: int = 1,
    n_steps: int | None = None,
    antithetic: bool = True,
    fitness_shaping: str = "centered_ranks",
) -> Trainer:
    """OpenAI-ES (module docstring) as a :class:`~probsnn.inference.Trainer` whose
    ``step(key, state, batch=None)`` samples P perturbations, ``n_episodes`` episodes of each
    member, and takes one optimizer step on −ĝ.

    Args:
        policy: :class:`probsnn.rl.SpikingPolicy` or :class:`probsnn.rl.MLPPolicy`.
        environment: :func:`probsnn.rl.make`'s environment (or a :class:`probsnn.rl.TabularMDP`).
        optimizer: default ``optax.adam(0.1)``.
        population: P >= 2 members per step, even when ``antithetic``.
        sigma: σ > 0, the perturbation scale in parameter units.
        n_episodes: episodes per member (its fitness is their mean return).
        n_steps: horizon H (default the environment's limit).
        antithetic: mirrored pairs θ ± σε.
        fitness_shaping: ``"centered_ranks"`` or ``"none"``.

    Returns:
        A Trainer; State :class:`EvolutionState`, Info :class:`EvolutionInfo`.

    Raises:
        TypeError: an environment that is not a probsnn environment, an optimizer that is not
            an optax transformation, non-integer sizes, a non-bool ``antithetic``.
        ValueError: population < 2 or odd with ``antithetic``, σ <= 0 or not finite, sizes
            below 1, an unknown ``fitness_shaping``; ``step`` with a batch.
    """
    rollouts.check_pair(policy, environment)
    optimizer = _checks.optimizer(optax.adam(0.1) if optimizer is None else optimizer)
    population = _checks.positive_int(population, "population", minimum=2)
    if not isinstance(antithetic, bool):
        raise TypeError(f"antithetic must be True or False, got {antithetic!r}")
    if antithetic and population % 2:
        raise ValueError(
            f"population must be even with antithetic=True (mirrored pairs), got {population}"
        )
    sigma = _checks.positive_float(sigma, "sigma")
    n_episodes = _checks.positive_int(n_episodes, "n_episodes")
    n_steps = environment.max_steps if n_steps is None else _checks.positive_int(n_steps, "n_steps")
    fitness_shaping = _checks.option(fitness_shaping, "fitness_shaping", FITNESS_SHAPINGS)

    def init(params):
        params = policy.check_params(params)
        return EvolutionState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

    @jax.jit
    def step(key, state):
        theta, unravel = ravel_pytree(state.params)
        free, _ = ravel_pytree(free_mask(policy, state.params))
        key_noise, key_episodes = jax.random.split(key)
        noise = perturbations(key_noise, theta.shape[0], population, antithetic) * free
        members = jax.vmap(unravel)(theta + sigma * noise)
        trajectory = jax.vmap(
            lambda p, k: rollouts._rollout(policy, p, environment, k, n_episodes, n_steps)
        )(members, jax.random.split(key_episodes, population))
        returns = rollouts.episode_returns(trajectory)  # (P, n_episodes)
        fitness = returns.mean(-1)
        gradient = es_gradient(noise, fitness, sigma, fitness_shaping)
        grads = unravel(gradient)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        alive = trajectory.alive
        info = EvolutionInfo(
            loss=-fitness.mean(),
            mean_return=returns.mean(),
            episode_length=alive.sum(-1).mean(),
            spikes_per_step=rollouts.spikes_per_step(policy, trajectory),
            best_return=fitness.max(),
            grad_norm=jnp.linalg.norm(gradient),
        )
        new_state = EvolutionState(
            optax.apply_updates(state.params, updates),
            opt_state,
            state.episodes + population * n_episodes,
        )
        return new_state, info

    return episodic_trainer(init, step, "evolution_strategies_trainer")
