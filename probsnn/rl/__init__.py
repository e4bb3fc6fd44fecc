"""Spiking networks that act: policies, environments and compiled rollouts.

* :class:`SpikingPolicy` — a GLM network policy (receptive-field encoding, M bins per step,
  count / first-to-spike / population decoding) with exact log-probabilities of everything it
  samples; :class:`MLPPolicy` — the non-spiking reference.
* :func:`make` — gymnax environments by name (``cartpole``, ``acrobot``, ``mountaincar``,
  ``pendulum``); :class:`GymnasiumEnvironment` — any gymnasium environment, in a Python loop.
* :func:`rollout` / :func:`evaluate` — batches of episodes in one compiled scan.

The learning criteria are in :mod:`probsnn.inference.reinforcement`. Needs the ``rl`` extra
(gymnax, gymnasium) for the environments.
"""

from probsnn.rl.environments import (
    ENVIRONMENTS,
    BaseEnvironment,
    Environment,
    TabularMDP,
    check_environment,
    make,
)
from probsnn.rl.episodes import (
    Trajectory,
    check_pair,
    episode_lengths,
    episode_returns,
    evaluate,
    rewards_to_go,
    rollout,
    spikes_per_step,
    stop_when_solved,
)
from probsnn.rl.gymnasium import GymnasiumEnvironment, gymnasium_rollout
from probsnn.rl.mlp import MLPParams, MLPPolicy
from probsnn.rl.policy import SpikeRecord, SpikingPolicy

__all__ = [
    "ENVIRONMENTS",
    "BaseEnvironment",
    "Environment",
    "GymnasiumEnvironment",
    "MLPParams",
    "MLPPolicy",
    "SpikeRecord",
    "SpikingPolicy",
    "TabularMDP",
    "Trajectory",
    "check_environment",
    "check_pair",
    "episode_lengths",
    "episode_returns",
    "evaluate",
    "gymnasium_rollout",
    "make",
    "rewards_to_go",
    "rollout",
    "spikes_per_step",
    "stop_when_solved",
]
