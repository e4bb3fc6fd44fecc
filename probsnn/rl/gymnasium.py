"""Any gymnasium environment, driven in a Python loop: bring your own task.

:class:`GymnasiumEnvironment` wraps a gymnasium vector environment (Towers et al. 2024,
"Gymnasium: a standard interface for reinforcement learning environments") with the attributes a
policy is sized by — the observation size and encoding ranges, the action space, the reward
threshold and the episode limit — the same as :func:`probsnn.rl.make`'s environments.
:func:`gymnasium_rollout` samples episodes in it: each environment step is one call of the
policy's ``act``, compiled once and vectorised over the sub-environments, then one
``step`` of the vector environment, and it returns the :class:`probsnn.rl.Trajectory` of
:func:`probsnn.rl.rollout`:

    alive_0 = 1,   alive_{t+1} = alive_t · (1 − done_t),   reward_t = alive_t r_t,

with done_t = terminated_t ∨ truncated_t; a finished episode keeps its last observation and its
later steps are masked out. The policy draws with the keys :func:`probsnn.rl.rollout` gives it, so
in a deterministic environment both return the same trajectory. The environment itself cannot be
compiled: the loop costs a Python round trip per step (benchmarks/rl_rollout_throughput.py).

Observations: a ``Box`` is flattened; a ``Discrete`` observation becomes its one-hot vector.
Actions: ``Discrete(n, start)`` (the policy's action a is sent as a + start) or a ``Box`` of one
element (continuous). gymnasium is in the ``rl`` extra: ``pip install "probsnn[rl]"``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.rl.environments import _ALIASES, ENVIRONMENTS, BaseEnvironment
from probsnn.rl.episodes import Trajectory
from probsnn.rl.policy import _range

DEFAULT_ENVS = 16


class GymnasiumEnvironment(BaseEnvironment):
    """A gymnasium vector environment with the attributes of a probsnn environment.

    Args:
        env_id_or_env: a registered id (``"CartPole-v1"``, made by ``gymnasium.make_vec``), a
            ``gymnasium.vector.VectorEnv``, a ``gymnasium.Env`` (one sub-environment) or a
            function returning a new ``gymnasium.Env`` (``n_envs`` of them, stepped by a
            ``SyncVectorEnv``).
        n_envs: sub-environments stepped together (default 16; a VectorEnv's own number).
        observation_low, observation_high: ``(n_observations,)`` encoding ranges. Default: the
            ranges of :data:`probsnn.rl.ENVIRONMENTS` for the tasks it knows, else the
            observation space's bounds, which must then be finite.
        reward_threshold: the return counted as solved (default the spec's, if any).
        max_steps: the episode limit (default the spec's ``max_episode_steps``).
        **make_options: passed to ``gymnasium.make_vec`` with an id (``vectorization_mode``,
            the environment's keyword arguments).

    It has the attributes of a probsnn environment (``env``, the vector environment; ``name``,
    ``n_envs``, ``n_observations``, ``n_actions``, None when continuous; ``continuous``;
    ``action_low``/``action_high``, continuous only; ``observation_low``/``observation_high``,
    float32; ``reward_threshold``; ``max_steps``), so policies are sized for it by
    ``for_environment``; it is stepped by :func:`gymnasium_rollout`, not compiled.

    Raises:
        ValueError: an id gymnasium does not know, ``n_envs`` below 1 or unlike the VectorEnv's,
            an unsupported space, unbounded observations without ranges, ranges of another
            shape or with low >= high, no episode limit. TypeError: anything else for
            ``env_id_or_env``, ``make_options`` without an id.
        ImportError: gymnasium is not installed.
    """

    compiled = False

    def __init__(
        self,
        env_id_or_env,
        n_envs: int | None = None,
        *,
        observation_low=None,
        observation_high=None,
        reward_threshold=None,
        max_steps: int | None = None,
        **make_options,
    ):
        import gymnasium  # the rl extra; imported here so probsnn imports without it

        if n_envs is not None:
            n_envs = _checks.positive_int(n_envs, "n_envs")
        if make_options and not isinstance(env_id_or_env, str):
            raise TypeError(
                f"make_options {sorted(make_options)} are for gymnasium.make_vec: pass a "
                f"registered id, got {type(env_id_or_env).__name__}"
            )
        self.env = _vector_env(gymnasium, env_id_or_env, n_envs, make_options)
        self.n_envs = int(self.env.num_envs)
        if n_envs is not None and n_envs != self.n_envs:
            raise ValueError(
                f"n_envs must equal the vector environment's num_envs {self.n_envs}, got {n_envs}"
            )
        first = getattr(self.env, "envs", [self.env])[0]  # a SyncVectorEnv's first sub-env
        spec = self.env.spec or first.spec
        self.name = spec.id if spec is not None else type(first.unwrapped).__name__
        known = ENVIRONMENTS.get(_ALIASES.get(self.name.lower(), ""))

        observations = self.env.single_observation_space
        if isinstance(observations, gymnasium.spaces.Discrete):
            self._one_hot = (int(observations.n), int(observations.start))
            low, high = np.zeros(observations.n), np.ones(observations.n)
        elif isinstance(observations, gymnasium.spaces.Box):
            self._one_hot = None
            low, high = observations.low.reshape(-1), observations.high.reshape(-1)
        else:
            raise ValueError(
                f"env_id_or_env must have a Box or Discrete observation space, got {observations}"
            )
        self.n_observations = int(low.size)
        if known is not None and len(known.observation_low) == self.n_observations:
            low, high = known.observation_low, known.observation_high
        if observation_low is None and not np.all(np.isfinite(low)):
            raise ValueError(
                f"observation_low is needed: the observation space of {self.name} is unbounded "
                f"below in dimensions {np.flatnonzero(~np.isfinite(low)).tolist()}"
            )
        if observation_high is None and not np.all(np.isfinite(high)):
            raise ValueError(
                f"observation_high is needed: the observation space of {self.name} is unbounded "
                f"above in dimensions {np.flatnonzero(~np.isfinite(high)).tolist()}"
            )
        d = self.n_observations
        self.observation_low = _range(
            low if observation_low is None else observation_low, 0.0, d, "observation_low"
        )
        self.observation_high = _range(
            high if observation_high is None else observation_high, 1.0, d, "observation_high"
        )
        if not np.all(self.observation_low < self.observation_high):
            raise ValueError("observation_low must be below observation_high in every dimension")

        actions = self.env.single_action_space
        if isinstance(actions, gymnasium.spaces.Discrete) and actions.n >= 2:
            self.continuous = False
            self.n_actions, self._action_start = int(actions.n), int(actions.start)
            self.action_low = self.action_high = None
        elif isinstance(actions, gymnasium.spaces.Box) and actions.shape in ((), (1,)):
            self.continuous = True
            self.n_actions = None
            self.action_low = _checks.finite_float(actions.low.item(), "action space low")
            self.action_high = _checks.finite_float(actions.high.item(), "action space high")
        else:
            raise ValueError(
                "env_id_or_env must have a Discrete action space of >= 2 actions or a Box of "
                f"one element, got {actions}"
            )

        if reward_threshold is None and spec is not None:
            reward_threshold = spec.reward_threshold
        self.reward_threshold = (
            None
            if reward_threshold is None
            else _checks.finite_float(reward_threshold, "reward_threshold")
        )
        if max_steps is None:
            max_steps = None if spec is None else spec.max_episode_steps
            if max_steps is None:
                raise ValueError(
                    f"max_steps is needed: {self.name} has no max_episode_steps in its spec"
                )
        self.max_steps = _checks.positive_int(max_steps, "max_steps")

    def observations(self, raw) -> np.ndarray:
        """The vector environment's observations as float32 ``(n_envs, n_observations)``.

        Raises:
            ValueError: observations of another shape than the observation space's.
        """
        raw = np.asarray(raw)
        if self._one_hot is not None:
            if raw.shape != (self.n_envs,):
                raise ValueError(
                    f"{self.name} must return observations of shape ({self.n_envs},), got "
                    f"{raw.shape}"
                )
            n, start = self._one_hot
            return np.eye(n, dtype=np.float32)[raw - start]
        if raw.size != self.n_envs * self.n_observations:
            raise ValueError(
                f"{self.name} must return observations of {self.n_envs} x {self.n_observations} "
                f"values, got shape {raw.shape}"
            )
        return raw.astype(np.float32).reshape(self.n_envs, self.n_observations)

    def actions(self, actions) -> np.ndarray:
        """The policy's actions ``(n_envs,)`` as the vector environment takes them."""
        actions = np.asarray(actions)
        if self.continuous:
            space = self.env.single_action_space
            return actions.astype(space.dtype).reshape(self.n_envs, *space.shape)
        return actions.astype(np.int64) + self._action_start

    def close(self) -> None:
        """Close the vector environment (its windows, worker processes)."""
        self.env.close()

    def __repr__(self):
        return f"GymnasiumEnvironment({self.name!r}, n_envs={self.n_envs})"


def _vector_env(gymnasium, env, n_envs, make_options):
    if isinstance(env, str):
        try:
            return gymnasium.make_vec(env, num_envs=n_envs or DEFAULT_ENVS, **make_options)
        except gymnasium.error.Error as error:
            raise ValueError(
                f"env_id_or_env must be a registered gymnasium id (e.g. 'CartPole-v1'), got "
                f"{env!r}: {error}"
            ) from error
    if isinstance(env, gymnasium.vector.VectorEnv):
        return env
    if isinstance(env, gymnasium.Env):
        if n_envs not in (None, 1):
            raise ValueError(
                f"n_envs must be 1 for one gymnasium.Env (pass a function that makes the "
                f"environment, or its id, for more), got {n_envs}"
            )
        return gymnasium.vector.SyncVectorEnv([lambda: env])
    if callable(env):
        return gymnasium.vector.SyncVectorEnv([env] * (n_envs or DEFAULT_ENVS))
    raise TypeError(
        "env_id_or_env must be a gymnasium id, a gymnasium.Env, a gymnasium.vector.VectorEnv or "
        f"a function returning a gymnasium.Env, got {type(env).__name__}"
    )


def check_gymnasium(environment, name: str = "environment") -> GymnasiumEnvironment:
    """Return ``environment``, raising TypeError unless it is a :class:`GymnasiumEnvironment`."""
    if not isinstance(environment, GymnasiumEnvironment):
        raise TypeError(
            f"{name} must be a probsnn.rl.GymnasiumEnvironment (use probsnn.rl.rollout for "
            f"probsnn.rl.make's environments), got {type(environment).__name__}"
        )
    return environment


def gymnasium_rollout(
    policy, params, environment: GymnasiumEnvironment, key, n_episodes: int, n_steps=None, seed=None
) -> Trajectory:
    """Sample ``n_episodes`` episodes of ``policy`` in a gymnasium environment, in rounds of
    ``environment.n_envs`` episodes (the sub-environments of the last round beyond
    ``n_episodes`` are stepped and discarded).

    Args:
        policy: a policy (:class:`probsnn.rl.SpikingPolicy`, :class:`probsnn.rl.MLPPolicy`) for
            the environment's observation size and action space. params: its parameters.
        environment: a :class:`GymnasiumEnvironment`.
        key: a PRNG key; episode b acts with the keys :func:`probsnn.rl.rollout` gives episode
            b. n_episodes: B >= 1. n_steps: H, default ``environment.max_steps``.
        seed: the seed of the vector environment's first reset (default: drawn from ``key``),
            later rounds continue its random stream.

    Returns:
        A :class:`probsnn.rl.Trajectory` with leaves ``(B, H, ...)`` on which
        ``policy.log_prob`` is evaluated as after :func:`probsnn.rl.rollout`.

    Raises:
        TypeError: a key that is not a PRNG key, an environment that is not a
            :class:`GymnasiumEnvironment`, a seed that is not an int. ValueError: B, H or seed
            out of range, a policy sized for other observations or actions, params of another
            policy, observations of the wrong shape from the environment.
    """
    key = _checks.prng_key(key, "key")
    check_gymnasium(environment)
    n_episodes = _checks.positive_int(n_episodes, "n_episodes")
    n_steps = environment.max_steps if n_steps is None else _checks.positive_int(n_steps, "n_steps")
    for size in ("n_observations", "n_actions"):
        if getattr(policy, size) != getattr(environment, size):
            raise ValueError(
                f"policy must have {size}={getattr(environment, size)} for {environment.name}, "
                f"got {getattr(policy, size)}"
            )
    params = policy.check_params(params)
    if seed is not None:
        seed = _checks.positive_int(seed, "seed", minimum=0)

    n = environment.n_envs
    n_rounds = -(-n_episodes // n)
    keys, drawn_seed = _keys(key, n_episodes, n_rounds, n, n_steps)
    seed = int(drawn_seed) if seed is None else seed
    rounds = [
        _round(policy, params, environment, keys, r, n_steps, seed if r == 0 else None)
        for r in range(n_rounds)
    ]
    return jax.tree.map(lambda *leaves: jnp.asarray(np.concatenate(leaves)[:n_episodes]), *rounds)


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _keys(key, n_episodes, n_rounds, n_envs, n_steps):
    """The policy's keys ``(rounds, n_envs, H)`` under :func:`probsnn.rl.rollout`'s schedule
    (episodes past B repeat the first ones: padding, discarded) and a seed for gymnasium drawn
    from ``key``."""

    def episode(k):
        _, key_steps = jax.random.split(k)
        return jax.vmap(lambda step_key: jax.random.split(step_key)[0])(
            jax.random.split(key_steps, n_steps)
        )

    keys = jax.vmap(episode)(jax.random.split(key, n_episodes))
    keys = jnp.concatenate([keys, keys[: n_rounds * n_envs - n_episodes]])
    return keys.reshape(n_rounds, n_envs, n_steps), jax.random.randint(
        jax.random.fold_in(key, 1), (), 0, 2**31 - 1
    )


@partial(jax.jit, static_argnums=0)
def _act(policy, params, carry, observations, keys, r, t):
    """``policy.act`` for every sub-environment at once, with the keys ``keys[r, :, t]``."""
    act = jax.vmap(policy.act, in_axes=(None, 0, 0, 0))
    return act(params, carry, observations, keys[r, :, t])


def _round(policy, params, environment, keys, r, n_steps, seed):
    """Round ``r``: one episode per sub-environment, leaves ``(n_envs, H, ...)``."""
    from gymnasium.vector import AutoresetMode

    env, n = environment.env, environment.n_envs
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    raw, _ = env.reset(seed=seed)
    observation = environment.observations(raw)
    carry = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), policy.initial_carry())
    alive = np.ones(n, bool)
    steps = []
    for t in range(n_steps):
        carry, action, record = _act(policy, params, carry, observation, keys, r, t)
        reward = np.zeros(n, np.float32)
        out = (observation, action, alive, record)
        if alive.any():  # once every episode has ended, only the policy runs on
            raw, raw_reward, terminated, truncated, info = env.step(environment.actions(action))
            done = np.logical_or(terminated, truncated)
            if mode == AutoresetMode.SAME_STEP and done.any():  # the final observation
                raw = np.stack([info["final_obs"][i] if done[i] else raw[i] for i in range(n)])
            reward = np.where(alive, np.asarray(raw_reward, np.float32), 0.0).astype(np.float32)
            observation = np.where(alive[:, None], environment.observations(raw), observation)
            if mode == AutoresetMode.DISABLED and done.any():
                env.reset(options={"reset_mask": done})
            alive = alive & ~done
        steps.append((*out, reward))
    observations, actions, alive, records, rewards = zip(*steps, strict=True)
    stack = partial(np.stack, axis=1)  # on the host: no compilation per horizon
    return Trajectory(
        stack(observations),
        stack(actions),
        stack(rewards),
        stack(alive),
        jax.tree.map(lambda *leaves: stack(leaves), *records),
    )
