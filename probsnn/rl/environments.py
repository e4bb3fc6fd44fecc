"""Environments a policy acts in: gymnax's compiled classic-control tasks, by short names.

:func:`make` wraps a gymnax environment (Lange 2022, "gymnax: a JAX-based reinforcement learning
environment library") with what a spiking policy needs to encode its observations — a range per
observation dimension, mapped to [0, 1] — and what a comparison needs to score it: the reward
threshold at which the task counts as solved and the episode length. gymnax steps are pure JAX
functions, so whole batches of episodes run inside one ``lax.scan`` (:func:`probsnn.rl.rollout`).

Any gymnasium environment can be driven instead through :class:`probsnn.rl.GymnasiumEnvironment`
(a Python loop over a vector environment), for tasks gymnax does not have.

gymnax and gymnasium are in the ``rl`` extra: ``pip install "probsnn[rl]"``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks


class EnvironmentInfo(NamedTuple):
    """The fixed facts of one task (see :data:`ENVIRONMENTS`)."""

    gymnax_id: str
    observation_low: tuple[float, ...]
    observation_high: tuple[float, ...]
    reward_threshold: float | None
    continuous: bool


# Encoding ranges cover the states a controlled episode visits; values outside are clipped by the
# encoder (a receptive field at the edge keeps responding). Thresholds are gymnasium's.
ENVIRONMENTS: dict[str, EnvironmentInfo] = {
    "cartpole": EnvironmentInfo(
        "CartPole-v1", (-2.4, -3.0, -0.21, -3.5), (2.4, 3.0, 0.21, 3.5), 475.0, False
    ),
    "acrobot": EnvironmentInfo(
        "Acrobot-v1",
        (-1.0, -1.0, -1.0, -1.0, -4 * np.pi, -9 * np.pi),
        (1.0, 1.0, 1.0, 1.0, 4 * np.pi, 9 * np.pi),
        -100.0,
        False,
    ),
    "mountaincar": EnvironmentInfo("MountainCar-v0", (-1.2, -0.07), (0.6, 0.07), -110.0, False),
    "pendulum": EnvironmentInfo("Pendulum-v1", (-1.0, -1.0, -8.0), (1.0, 1.0, 8.0), None, True),
}

_ALIASES = {info.gymnax_id.lower(): name for name, info in ENVIRONMENTS.items()}


class BaseEnvironment:
    """The environment protocol of the rollouts: ``reset(key) -> (observation, state)``,
    ``step(key, state, action) -> (observation, state, reward, done)`` (pure JAX functions), and
    the attributes ``name``, ``n_observations``, ``n_actions`` (None when continuous),
    ``continuous``, ``action_low``/``action_high``, ``observation_low``/``observation_high``,
    ``reward_threshold`` and ``max_steps``. Subclasses are static (hashable) jit arguments,
    except those stepped from Python (``compiled = False``: :class:`probsnn.rl.gymnasium.
    GymnasiumEnvironment`)."""

    compiled = True


def check_environment(environment, name: str = "environment") -> BaseEnvironment:
    """Return ``environment``, raising TypeError unless it is a probsnn environment."""
    if not isinstance(environment, BaseEnvironment):
        raise TypeError(
            f"{name} must be a probsnn.rl environment (probsnn.rl.make(...) or "
            f"probsnn.rl.TabularMDP), got {type(environment).__name__}"
        )
    return environment


@jax.tree_util.register_static
class Environment(BaseEnvironment):
    """A gymnax environment with its encoding ranges and reward threshold (hashable, static).

    Attributes:
        name: the short name (``"cartpole"``). env, env_params: gymnax's environment and params.
        n_observations: the observation size. n_actions: the number of discrete actions, or
            None for a continuous (Box) action.
        action_low, action_high: the bounds of a continuous action (None for discrete).
        observation_low, observation_high: ``(n_observations,)`` float32 encoding ranges.
        reward_threshold: the return that counts as solved (None where the task has none).
        max_steps: the episode length limit.
    """

    def __init__(self, name: str):
        key = name.lower() if isinstance(name, str) else name
        key = _ALIASES.get(key, key)
        if key not in ENVIRONMENTS:
            raise ValueError(
                f"environment must be one of {sorted(ENVIRONMENTS)} (or their gymnax ids "
                f"{sorted(info.gymnax_id for info in ENVIRONMENTS.values())}), got {name!r}"
            )
        import gymnax  # the rl extra; imported here so probsnn imports without it

        info = ENVIRONMENTS[key]
        self.name = key
        self.env, self.env_params = gymnax.make(info.gymnax_id)
        self.n_observations = int(np.prod(self.env.observation_space(self.env_params).shape))
        self.continuous = info.continuous
        space = self.env.action_space(self.env_params)
        if info.continuous:
            self.n_actions = None
            self.action_low = float(np.min(space.low))
            self.action_high = float(np.max(space.high))
        else:
            self.n_actions = int(space.n)
            self.action_low = self.action_high = None
        self.observation_low = np.asarray(info.observation_low, np.float32)
        self.observation_high = np.asarray(info.observation_high, np.float32)
        self.reward_threshold = info.reward_threshold
        self.max_steps = int(self.env_params.max_steps_in_episode)

    def reset(self, key) -> tuple[jax.Array, Any]:
        """``(observation (n_observations,), env_state)`` of a new episode."""
        obs, state = self.env.reset(key, self.env_params)
        return jnp.asarray(obs, jnp.float32).reshape(-1), state

    def step(self, key, state, action):
        """One environment step: ``(observation, env_state, reward, done)``, ``done`` when the
        episode terminated or reached its step limit (no automatic reset: :func:`rollout` holds
        a finished episode where it ended)."""
        obs, state, reward, terminated, _ = self.env.step_env(key, state, action, self.env_params)
        done = jnp.logical_or(terminated, self.env.is_truncated(state, self.env_params))
        return jnp.asarray(obs, jnp.float32).reshape(-1), state, jnp.float32(reward), done

    def normalise(self, observations):
        """Observations mapped to [0, 1] by the encoding ranges (clipped), ``(..., n_obs)``."""
        low, high = jnp.asarray(self.observation_low), jnp.asarray(self.observation_high)
        return jnp.clip((observations - low) / (high - low), 0.0, 1.0)

    def __hash__(self):
        return hash(("probsnn.rl.Environment", self.name))

    def __eq__(self, other):
        return isinstance(other, Environment) and other.name == self.name

    def __repr__(self):
        return f"Environment({self.name!r})"


def make(name: str) -> Environment:
    """The environment ``name``: one of ``cartpole``, ``acrobot``, ``mountaincar``,
    ``pendulum`` or their gymnax ids (``"CartPole-v1"``).

    Raises:
        ValueError: an unknown name (the message lists the available ones).
        ImportError: gymnax is not installed (``pip install "probsnn[rl]"``).
    """
    return Environment(name)


def check_observation(observation, n_observations: int, name: str = "observation"):
    """One observation as a float32 array ``(n_observations,)``; raises TypeError for complex or
    non-numeric data and ValueError for another shape or (outside jit) non-finite values."""
    array = _checks.real_array(observation, name, min_ndim=0)
    if tuple(array.shape) != (n_observations,):
        raise ValueError(f"{name} must have shape ({n_observations},), got {tuple(array.shape)}")
    return jnp.asarray(array, jnp.float32)


@jax.tree_util.register_static
class TabularMDP(BaseEnvironment):
    """A finite Markov decision process with one-hot observations, for exact checks.

    From state s, action a gives reward R[s, a] and the next state s' ~ P[s, a, :]; an episode
    starts in s_0 ~ ``initial`` and ends after ``horizon`` steps or on entering a ``terminal``
    state. The observation is the one-hot vector of the state, ``(S,)`` float32.

    Args:
        transitions: P ``(S, A, S)``, rows summing to 1. rewards: R ``(S, A)``, finite.
        initial: ``(S,)`` start distribution. horizon: the episode limit H >= 1.
        terminal: optional ``(S,)`` bool, states that end the episode when entered.
        reward_threshold: the return counted as solved (optional).

    Raises:
        ValueError: shapes that disagree, probabilities that are negative or do not sum to 1,
            non-finite rewards, fewer than 2 actions.
    """

    def __init__(
        self, transitions, rewards, initial, horizon: int, terminal=None, reward_threshold=None
    ):
        p = np.asarray(_checks.real_array(transitions, "transitions", min_ndim=3), np.float64)
        if p.ndim != 3 or p.shape[0] != p.shape[2]:
            raise ValueError(f"transitions must have shape (S, A, S), got {p.shape}")
        n_states, n_actions = p.shape[:2]
        if n_actions < 2:
            raise ValueError(f"transitions must have at least 2 actions, got {n_actions}")
        r = np.asarray(_checks.real_array(rewards, "rewards", min_ndim=2), np.float64)
        if r.shape != (n_states, n_actions):
            raise ValueError(f"rewards must have shape ({n_states}, {n_actions}), got {r.shape}")
        p0 = np.asarray(_checks.real_array(initial, "initial"), np.float64)
        if p0.shape != (n_states,):
            raise ValueError(f"initial must have shape ({n_states},), got {p0.shape}")
        for name, probs in (("transitions", p), ("initial", p0)):
            if np.any(probs < 0) or not np.allclose(probs.sum(-1), 1.0, atol=1e-6):
                raise ValueError(f"{name} must be probabilities summing to 1 over the last axis")
        done = np.zeros(n_states, bool) if terminal is None else np.asarray(terminal)
        if done.shape != (n_states,) or done.dtype != np.bool_:
            raise ValueError(f"terminal must be a bool ({n_states},) array, got {done.shape}")
        self.transitions, self.rewards, self.initial, self.terminal = p, r, p0, done
        self.name = "tabular"
        self.n_observations = n_states
        self.n_actions = n_actions
        self.continuous = False
        self.action_low = self.action_high = None
        self.observation_low = np.zeros(n_states, np.float32)
        self.observation_high = np.ones(n_states, np.float32)
        self.max_steps = _checks.positive_int(horizon, "horizon")
        self.reward_threshold = (
            None
            if reward_threshold is None
            else _checks.finite_float(reward_threshold, "reward_threshold")
        )
        self._key = (p.tobytes(), r.tobytes(), p0.tobytes(), done.tobytes(), self.max_steps)

    @property
    def n_states(self) -> int:
        return self.n_observations

    def _observation(self, state):
        return jax.nn.one_hot(state, self.n_states, dtype=jnp.float32)

    def reset(self, key):
        state = jax.random.categorical(key, jnp.log(jnp.asarray(self.initial, jnp.float32)))
        return self._observation(state), (state, jnp.zeros((), jnp.int32))

    def step(self, key, state, action):
        s, t = state
        p = jnp.asarray(self.transitions, jnp.float32)[s, action]
        nxt = jax.random.categorical(key, jnp.log(p))
        reward = jnp.asarray(self.rewards, jnp.float32)[s, action]
        done = jnp.asarray(self.terminal)[nxt] | (t + 1 >= self.max_steps)
        return self._observation(nxt), (nxt, t + 1), reward, done

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, TabularMDP) and other._key == self._key

    def __repr__(self):
        return f"TabularMDP(S={self.n_states}, A={self.n_actions}, H={self.max_steps})"
