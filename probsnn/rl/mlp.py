"""A non-spiking reference policy: a one-hidden-layer perceptron with a softmax (or Gaussian)
action, run through the same rollouts and estimators as :class:`probsnn.rl.SpikingPolicy`.

    h = tanh(W₁ x + b₁),   logits = W₂ h + b₂,   a ~ softmax(logits)

with x the observation mapped to [−1, 1] by the environment's ranges (Williams 1992). For a
continuous action, a ~ Normal(low + (high − low) σ(W₂ h + b₂), s²) clipped by the environment,
with a fixed standard deviation s (a fraction of the range).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.rl.environments import BaseEnvironment, check_environment, check_observation


class MLPParams(NamedTuple):
    """``w1 (D, H)``, ``b1 (H,)``, ``w2 (H, A)``, ``b2 (A,)`` (A = 1 for a continuous action)."""

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array


@jax.tree_util.register_static
class MLPPolicy:
    """A tanh MLP policy (static, hashable) following the policy protocol of
    :mod:`probsnn.rl.policy`.

    Args:
        n_observations: D >= 1. n_actions: A >= 2, or None with ``action_range`` (continuous).
        n_hidden: H >= 1. observation_low, observation_high: ``(D,)`` ranges (default [0, 1]).
        action_std: s as a fraction of the action range (continuous only), in (0, 1].

    Raises:
        ValueError, TypeError: naming the argument.
    """

    def __init__(
        self,
        n_observations: int,
        n_actions: int | None = None,
        *,
        action_range=None,
        n_hidden: int = 32,
        observation_low=None,
        observation_high=None,
        action_std: float = 0.1,
    ):
        from probsnn.rl.policy import _range

        self.n_observations = _checks.positive_int(n_observations, "n_observations")
        if (n_actions is None) == (action_range is None):
            raise ValueError(
                "pass n_actions (discrete) or action_range (continuous), exactly one, got "
                f"n_actions={n_actions!r}, action_range={action_range!r}"
            )
        self.n_actions = (
            None if n_actions is None else _checks.positive_int(n_actions, "n_actions", 2)
        )
        self.action_range = None
        if action_range is not None:
            low, high = (_checks.finite_float(v, "action_range") for v in action_range)
            if not low < high:
                raise ValueError(f"action_range must have low < high, got {action_range!r}")
            self.action_range = (low, high)
        self.n_hidden = _checks.positive_int(n_hidden, "n_hidden")
        self.action_std = _checks.probability(action_std, "action_std")
        self.observation_low = _range(observation_low, 0.0, self.n_observations, "observation_low")
        self.observation_high = _range(
            observation_high, 1.0, self.n_observations, "observation_high"
        )
        self._key = (
            self.n_observations,
            self.n_actions,
            self.action_range,
            self.n_hidden,
            self.action_std,
            self.observation_low.tobytes(),
            self.observation_high.tobytes(),
        )

    @classmethod
    def for_environment(cls, environment: BaseEnvironment, **options) -> MLPPolicy:
        """An MLP sized for ``environment``; ``options`` as the constructor."""
        check_environment(environment)
        sizes = (
            {"action_range": (environment.action_low, environment.action_high)}
            if environment.continuous
            else {"n_actions": environment.n_actions}
        )
        return cls(
            environment.n_observations,
            observation_low=environment.observation_low,
            observation_high=environment.observation_high,
            **sizes,
            **options,
        )

    @property
    def n_outputs(self) -> int:
        return 1 if self.n_actions is None else self.n_actions

    def init_params(self, key) -> MLPParams:
        """Glorot-scaled weights with zero biases and a zero output layer (a uniform policy)."""
        key = _checks.prng_key(key, "key")
        d, h = self.n_observations, self.n_hidden
        w1 = jax.random.normal(key, (d, h), jnp.float32) / np.sqrt(d)
        return MLPParams(
            w1, jnp.zeros(h), jnp.zeros((h, self.n_outputs)), jnp.zeros(self.n_outputs)
        )

    def initial_carry(self):
        return ()

    def _features(self, observations):
        low, high = jnp.asarray(self.observation_low), jnp.asarray(self.observation_high)
        return 2.0 * (observations - low) / (high - low) - 1.0

    def _outputs(self, params: MLPParams, observations):
        hidden = jnp.tanh(self._features(observations) @ params.w1 + params.b1)
        return hidden @ params.w2 + params.b2

    def _mean(self, outputs):
        low, high = self.action_range
        return low + (high - low) * jax.nn.sigmoid(outputs[..., 0])

    def act(self, params: MLPParams, carry, observation, key):
        """``(carry, action, record)``; the record is empty (the log-probability is recomputed
        from the observations and actions). Raises ValueError/TypeError for an observation
        that is not a real ``(D,)`` array."""
        observation = check_observation(observation, self.n_observations)
        outputs = self._outputs(params, observation)
        if self.n_actions is not None:
            return carry, jax.random.categorical(key, outputs).astype(jnp.int32), ()
        low, high = self.action_range
        noise = self.action_std * (high - low) * jax.random.normal(key)
        return carry, (self._mean(outputs) + noise).astype(jnp.float32), ()

    def log_prob(self, params: MLPParams, trajectory):
        """log π(a_t | o_t), ``(B, H)``."""
        outputs = self._outputs(params, trajectory.observations)
        if self.n_actions is not None:
            log_p = jax.nn.log_softmax(outputs)
            return jnp.take_along_axis(log_p, trajectory.actions[..., None], -1)[..., 0]
        low, high = self.action_range
        std = self.action_std * (high - low)
        z = (trajectory.actions - self._mean(outputs)) / std
        return -0.5 * z**2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi)

    def spike_counts(self, trajectory):
        """An MLP emits no spikes: zeros ``(B, H)``."""
        return jnp.zeros(trajectory.rewards.shape, jnp.int32)

    def check_params(self, params) -> MLPParams:
        shapes = MLPParams(
            (self.n_observations, self.n_hidden),
            (self.n_hidden,),
            (self.n_hidden, self.n_outputs),
            (self.n_outputs,),
        )
        _checks.params_of_shapes(params, MLPParams, shapes, "probsnn.rl.MLPParams")
        return _checks.finite_tree(params, "params")

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, MLPPolicy) and other._key == self._key

    def __repr__(self):
        return f"MLPPolicy(D={self.n_observations}, H={self.n_hidden}, A={self.n_outputs})"
