"""Compiled rollouts: batches of episodes of a policy in a gymnax environment, in one scan.

:func:`rollout` runs B episodes side by side (``jax.vmap``) for H environment steps
(``lax.scan``), all inside one jitted function; a finished episode is held where it ended and its
later steps are masked out (``alive``). Everything the policy sampled is kept in
``Trajectory.records``, so ``policy.log_prob(params, trajectory)`` is the exact log-probability
of the episode given its observations, and the same key always gives the same trajectory.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from probsnn import _checks
from probsnn.rl.environments import BaseEnvironment, check_environment


class Trajectory(NamedTuple):
    """B episodes of H steps (every leaf leads with ``(B, H)``).

    Attributes:
        observations: ``(B, H, D)`` float32, the observation each action was chosen on.
        actions: ``(B, H)`` int32 (discrete) or float32 (continuous).
        rewards: ``(B, H)`` float32, zero after the episode's end.
        alive: ``(B, H)`` bool, True for the steps of the episode (up to and including the one
            that ended it).
        records: the policy's samples, a pytree with leaves ``(B, H, ...)`` (e.g.
            :class:`probsnn.rl.SpikeRecord`).
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    alive: jax.Array
    records: Any


def rollout(policy, params, environment: BaseEnvironment, key, n_episodes: int, n_steps=None):
    """Sample ``n_episodes`` episodes of ``policy`` in ``environment``.

    Args:
        policy: a policy (:class:`probsnn.rl.SpikingPolicy`, :class:`probsnn.rl.MLPPolicy`).
        params: its parameters. environment: :func:`probsnn.rl.make`'s environment.
        key: a PRNG key; episode b uses its own split. n_episodes: B >= 1.
        n_steps: H, default the environment's episode limit.

    Returns:
        A :class:`Trajectory`.

    Raises:
        TypeError: a key that is not a PRNG key, an environment that is not a probsnn.rl
            environment. ValueError: B or H below 1, params of another policy, a policy that
            reads other observations or serves another action space than the environment's.
    """
    key = _checks.prng_key(key, "key")
    check_pair(policy, environment)
    n_episodes = _checks.positive_int(n_episodes, "n_episodes")
    n_steps = environment.max_steps if n_steps is None else _checks.positive_int(n_steps, "n_steps")
    policy.check_params(params)
    return _rollout(policy, params, environment, key, n_episodes, n_steps)


def check_pair(policy, environment) -> None:
    """Raise unless ``policy`` can act in ``environment`` inside compiled code: TypeError for an
    environment of another kind or one stepped from Python (gymnasium); ValueError when the
    policy reads another observation size or serves another action space (naming both)."""
    check_environment(environment)
    if not environment.compiled:
        raise TypeError(
            f"{environment!r} is stepped from Python: use probsnn.rl.gymnasium_rollout, not "
            "the compiled rollouts and trainers"
        )
    if policy.n_observations != environment.n_observations:
        raise ValueError(
            f"the policy reads observations of size {policy.n_observations} but {environment!r} "
            f"gives observations of size {environment.n_observations}"
        )
    if environment.continuous != (policy.n_actions is None) or (
        not environment.continuous and policy.n_actions != environment.n_actions
    ):
        wanted = (
            f"a continuous action in [{environment.action_low}, {environment.action_high}]"
            if environment.continuous
            else f"{environment.n_actions} discrete actions"
        )
        served = (
            "a continuous action" if policy.n_actions is None else f"{policy.n_actions} actions"
        )
        raise ValueError(f"{environment!r} needs {wanted}; the policy serves {served}")


@partial(jax.jit, static_argnums=(0, 2, 4, 5))
def _rollout(policy, params, environment, key, n_episodes, n_steps):
    return jax.vmap(lambda k: _episode(policy, params, environment, k, n_steps))(
        jax.random.split(key, n_episodes)
    )


def _episode(policy, params, environment, key, n_steps):
    """One episode of H steps, unbatched (leaves ``(H, ...)``)."""
    key_reset, key_steps = jax.random.split(key)
    observation, env_state = environment.reset(key_reset)

    def body(carry, step_key):
        env_state, observation, policy_carry, alive = carry
        key_act, key_env = jax.random.split(step_key)
        policy_carry, action, record = policy.act(params, policy_carry, observation, key_act)
        stepped = environment.step(key_env, env_state, action)
        next_observation, next_state, reward, done = stepped
        out = (observation, action, jnp.where(alive, reward, 0.0), alive, record)
        # a finished episode stays where it ended (its later steps are masked out)
        next_state, next_observation = jax.tree.map(
            lambda new, old: jnp.where(alive, new, old),
            (next_state, next_observation),
            (env_state, observation),
        )
        return (next_state, next_observation, policy_carry, alive & ~done), out

    carry = (env_state, observation, policy.initial_carry(), jnp.bool_(True))
    _, (obs, actions, rewards, alive, records) = jax.lax.scan(
        body, carry, jax.random.split(key_steps, n_steps)
    )
    return Trajectory(obs, actions, rewards, alive, records)


def episode_returns(trajectory: Trajectory):
    """Undiscounted return of each episode, ``(B,)``."""
    return trajectory.rewards.sum(-1)


def episode_lengths(trajectory: Trajectory):
    """Number of steps of each episode, ``(B,)`` int32."""
    return trajectory.alive.sum(-1, dtype=jnp.int32)


def spikes_per_step(policy, trajectory: Trajectory):
    """Mean spikes of the policy's neurons per environment step over the episodes' steps
    (``alive``), a float32 scalar (zero for a policy without spikes)."""
    alive = trajectory.alive
    total = jnp.sum(policy.spike_counts(trajectory) * alive)
    return (total / jnp.maximum(alive.sum(), 1)).astype(jnp.float32)


def stop_when_solved(policy, environment, key, *, n_episodes: int = 100, threshold=None):
    """A :func:`probsnn.inference.fit` callback that stops training once the policy is solved:
    when a training batch's mean return (``Info.mean_return``) reaches ``threshold`` (default
    the environment's reward threshold), the policy is evaluated on ``n_episodes`` fresh
    episodes (:func:`evaluate`, with ``key``), and training stops if their mean reaches it too.

    Raises:
        ValueError: no threshold given for an environment that has none.
    """
    threshold = environment.reward_threshold if threshold is None else threshold
    if threshold is None:
        raise ValueError(f"{environment!r} has no reward threshold: pass threshold=")
    threshold = _checks.finite_float(threshold, "threshold")

    def callback(epoch, state, info):
        del epoch
        if info["mean_return"] < threshold:
            return False
        returns = evaluate(policy, state.params, environment, key, n_episodes)
        return float(returns.mean()) >= threshold

    return callback


def check_discount(gamma, name: str = "gamma") -> float:
    """A discount factor γ in [0, 1]; TypeError for a non-number, ValueError outside or NaN."""
    gamma = _checks.finite_float(gamma, name)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {gamma}")
    return gamma


def rewards_to_go(rewards, alive, gamma: float):
    """G_t = Σ_{t' ≥ t} γ^{t'−t} r_{t'} within the episode, ``(B, H)`` (zero after its end).

    Args:
        rewards, alive: ``(B, H)`` as in :class:`Trajectory`. gamma: γ in [0, 1].

    Raises:
        ValueError, TypeError: γ outside [0, 1] or not a real number.
    """
    gamma = check_discount(gamma)

    def back(g_next, x):
        r, a = x
        g = jnp.where(a, r + gamma * g_next, 0.0)
        return g, g

    _, g = jax.lax.scan(
        back, jnp.zeros(rewards.shape[:-1], rewards.dtype), (rewards.T, alive.T), reverse=True
    )
    return g.T


def evaluate(policy, params, environment: BaseEnvironment, key, n_episodes: int = 100):
    """Returns ``(n_episodes,)`` of full-length episodes of the (stochastic) policy; their mean
    is the evaluation score compared with ``environment.reward_threshold``. Raises as
    :func:`rollout`."""
    return episode_returns(rollout(policy, params, environment, key, n_episodes))
