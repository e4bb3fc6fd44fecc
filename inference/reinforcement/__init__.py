"""Reinforcement learning with spiking policies (docs/theory.md §11): every criterion is a
:class:`~probsnn.inference.Trainer` whose ``step(key, state, batch=None)`` samples its own
episodes of a :mod:`probsnn.rl` policy in an environment, with the key it is given.

* :func:`policy_gradient_trainer` — REINFORCE with the exact spike log-probabilities, its
  baselines, and the local three-factor form (:func:`three_factor_gradient`).
* :func:`actor_critic_trainer` — the TD error of a linear critic as the third factor, with
  eligibility traces, online at every environment step in constant memory.
* :func:`mstdpet_trainer` — reward-modulated STDP with an eligibility trace (a plasticity rule:
  terminal weight changes).
* :func:`evolution_strategies_trainer` — OpenAI-ES, the gradient-free baseline.

The non-spiking reference is :class:`probsnn.rl.MLPPolicy` under the same trainers.
"""

from .actor_critic import ActorCriticInfo, ActorCriticState, actor_critic_trainer
from .evolution import EvolutionInfo, EvolutionState, evolution_strategies_trainer
from .mstdpet import MSTDPETInfo, MSTDPETState, mstdpet_trainer
from .policy_gradient import (
    BASELINES,
    PolicyGradientInfo,
    PolicyGradientState,
    advantages,
    policy_gradient_loss,
    policy_gradient_trainer,
    three_factor_gradient,
)

__all__ = [
    "BASELINES",
    "ActorCriticInfo",
    "ActorCriticState",
    "EvolutionInfo",
    "EvolutionState",
    "MSTDPETInfo",
    "MSTDPETState",
    "PolicyGradientInfo",
    "PolicyGradientState",
    "actor_critic_trainer",
    "advantages",
    "evolution_strategies_trainer",
    "mstdpet_trainer",
    "policy_gradient_loss",
    "policy_gradient_trainer",
    "three_factor_gradient",
]
