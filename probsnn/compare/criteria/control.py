"""Control criteria: learners of a policy that samples its own episodes (docs/theory.md §11).

Each adapter wraps a trainer of :mod:`probsnn.inference.reinforcement` around a policy of
:mod:`probsnn.rl` sized for the task's environment: a spiking policy
(:meth:`probsnn.rl.SpikingPolicy.for_environment`: Gaussian receptive fields, a GLM network run
for M bins per environment step, spike-count decoding) or the non-spiking
:class:`probsnn.rl.MLPPolicy`:

* ``policy-gradient`` — REINFORCE with the exact spike log-probabilities and a leave-one-out
  baseline (:func:`~probsnn.inference.reinforcement.policy_gradient_trainer`, Williams 1992);
* ``mlp-policy-gradient`` — the same estimator on a tanh MLP, the non-spiking reference;
* ``actor-critic`` — online actor-critic, the TD error as the third factor with eligibility
  traces (:func:`~probsnn.inference.reinforcement.actor_critic.actor_critic_trainer`;
  Frémaux, Sprekeler & Gerstner 2013);
* ``mstdpet`` — reward-modulated STDP with eligibility traces
  (:func:`~probsnn.inference.reinforcement.mstdpet.mstdpet_trainer`; Florian 2007);
* ``evolution-strategies`` — OpenAI-ES on the spiking policy's parameters
  (:func:`~probsnn.inference.reinforcement.evolution.evolution_strategies_trainer`; Salimans
  et al. 2017).

Training (:func:`train_to_threshold`) runs :func:`probsnn.inference.fit`, one trainer step per
epoch, within the task's episode budget, and stops as soon as the policy is *solved*: a
training batch's mean return reached the environment's reward threshold and a
100-episode evaluation confirms it. The learning curve is the evaluation return against
training episodes.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn.compare.criteria.base import Criterion, Curve, NotApplicable, checkpoint_spacing
from probsnn.compare.tasks import merge_config
from probsnn.inference._training import fit

#: Why a policy learner does not run on a data set.
NOT_DATA = "learns a policy from its own episodes in an environment, not from a data set"

#: Why a learner of a data set does not run on a control task.
NOT_CONTROL = "learns from a data set: a control task has an environment to act in instead"

#: Environment steps of the first evaluation episode kept as the cell's raster.
RASTER_STEPS = 50


def train_to_threshold(
    curve: Curve,
    trainer,
    params,
    *,
    key,
    threshold: float,
    max_episodes: int,
    episodes_per_step: int,
):
    """Train a policy with :func:`probsnn.inference.fit` until it is solved or the episode
    budget is spent; return the trained params.

    Each epoch is one trainer step of ``episodes_per_step`` episodes, for at most
    ⌊max_episodes / episodes_per_step⌋ steps. The curve's checkpoints (evaluation return against
    training episodes) are taken every :func:`~probsnn.compare.criteria.base.checkpoint_spacing`
    steps, after the last one, and after every step whose training batch's mean return
    (``Info.mean_return``) reached ``threshold``; training stops at the first checkpoint whose
    evaluation return reaches ``threshold``. The clock and the checkpoint/resume of the cell
    are those of :func:`~probsnn.compare.criteria.base.train`.

    Raises:
        ValueError: a budget smaller than one step.
    """
    if max_episodes < episodes_per_step:
        raise ValueError(
            f"max_episodes={max_episodes} is below the {episodes_per_step} episodes of one "
            "training step"
        )
    epochs = max_episodes // episodes_per_step
    spacing = checkpoint_spacing(epochs)
    curve.start()

    def callback(epoch, state, info):
        done = epoch + 1
        batch_solved = info["mean_return"] >= threshold
        if not (batch_solved or done % spacing == 0 or done == epochs):
            return False
        curve.checkpoint(done * episodes_per_step, state.params)
        return curve.values[-1] >= threshold

    checkpoint = curve.next_checkpoint_path()
    resume = checkpoint if checkpoint is not None and checkpoint.is_file() else None
    result = fit(
        trainer,
        params,
        None,
        key=key,
        epochs=epochs,
        callback=callback,
        progress=False,
        checkpoint=checkpoint,
        every=spacing,
        resume=resume,
    )
    return result.params


class ControlCriterion(Criterion):
    """Shared policy, training loop and evaluation of the control adapters.

    Class attributes (besides :class:`~probsnn.compare.criteria.base.Criterion`'s):
        spiking: whether the policy is a :class:`probsnn.rl.SpikingPolicy` (else an MLP).
        per_task: task name -> settings that replace the control defaults for that task.
    """

    spiking: ClassVar[bool] = True
    per_task: ClassVar[dict[str, dict]] = {}
    not_applicable: ClassVar[dict] = {
        "classification": NOT_DATA,
        "pattern": NOT_DATA,
        "recording": NOT_DATA,
    }

    def config(self, task, quick: bool = False, overrides: dict | None = None) -> dict:
        """Settings for ``task``: the control defaults with the task's own entries
        (:attr:`per_task`), then the ``--quick`` entries, then ``overrides``.

        Raises:
            SelectionError: an override key that is not a setting, listing the valid ones.
        """
        defaults = {**self.defaults[task.kind], **self.per_task.get(task.name, {})}
        quick_entries = self.quick.get(task.kind, {}) if quick else {}
        return merge_config(defaults, quick_entries, overrides, self.name)

    def policy(self, environment, config: dict):
        """The policy of ``environment``: a spiking policy with ``n_hidden`` hidden neurons and
        ``micro_steps`` bins per step, or an MLP with ``n_hidden`` tanh units."""
        from probsnn import rl

        if not self.spiking:
            return rl.MLPPolicy.for_environment(environment, n_hidden=config["n_hidden"])
        return rl.SpikingPolicy.for_environment(
            environment, n_hidden=config["n_hidden"], micro_steps=config["micro_steps"]
        )

    def make_trainer(self, policy, environment, config: dict):
        """The trainer of :mod:`probsnn.inference.reinforcement` with this criterion's
        settings."""
        raise NotImplementedError

    def episodes_per_step(self, config: dict) -> int:
        """Episodes one trainer step samples."""
        return config["n_episodes"]

    def fit(self, task, data, config, key, curve):
        environment = data.environment
        policy = self.policy(environment, config)
        key_init, key_fit = jax.random.split(key)
        trainer = self.memo(
            lambda: self.make_trainer(policy, environment, config), (policy, environment), config
        )
        return train_to_threshold(
            curve,
            trainer,
            policy.init_params(key_init),
            key=key_fit,
            threshold=task.target,
            max_episodes=data.max_episodes,
            episodes_per_step=self.episodes_per_step(config),
        )

    def score(self, task, model, data, config, key) -> float:
        """The evaluation return: the mean return of ``eval_episodes`` episodes."""
        from probsnn import rl

        policy = self.policy(data.environment, config)
        returns = rl.evaluate(policy, model, data.environment, key, data.eval_episodes)
        return float(jnp.mean(returns))

    def evaluate(self, task, model, data, config, key) -> dict:
        """The evaluation return, spikes per environment step and the spikes of the first
        :data:`RASTER_STEPS` steps of the first evaluation episode (bins × neurons)."""
        from probsnn import rl

        policy = self.policy(data.environment, config)
        trajectory = rl.rollout(policy, model, data.environment, key, data.eval_episodes)
        metrics = {"return": float(jnp.mean(rl.episode_returns(trajectory)))}
        if not self.spiking:
            metrics["spikes_per_step"] = NotApplicable("a non-spiking network")
            return metrics
        metrics["spikes_per_step"] = float(rl.spikes_per_step(policy, trajectory))
        steps = min(RASTER_STEPS, int(trajectory.alive[0].sum()))
        spikes = np.asarray(trajectory.records.spikes[0, :steps], np.uint8)
        metrics["raster"] = spikes.reshape(-1, spikes.shape[-1])
        return metrics


_SPIKING_POLICY = {"n_hidden": 32, "micro_steps": 4}


class PolicyGradient(ControlCriterion):
    """REINFORCE on a spiking policy
    (:func:`probsnn.inference.reinforcement.policy_gradient_trainer`): batches of
    ``n_episodes`` episodes, leave-one-out baseline, Adam. Acrobot (a reward only for ending
    early) takes 32 episodes per batch, so that most batches hold an episode that swung up,
    and γ = 0.99."""

    name = "policy-gradient"
    title = "REINFORCE with exact spike log-probabilities, GLM spiking policy"
    local = (
        "partly: pre-trace x post-error x a broadcast advantage (three-factor form), but the "
        "advantage needs the episode's later rewards and the batch's other episodes"
    )
    defaults: ClassVar[dict] = {
        "control": {
            **_SPIKING_POLICY,
            "learning_rate": 2e-2,
            "n_episodes": 8,
            "gamma": 1.0,
            "baseline": "leave_one_out",
        }
    }
    per_task: ClassVar[dict] = {"acrobot": {"n_episodes": 32, "gamma": 0.99}}

    def make_trainer(self, policy, environment, config):
        from probsnn.inference.reinforcement import policy_gradient_trainer

        return policy_gradient_trainer(
            policy,
            environment,
            optax.adam(config["learning_rate"]),
            n_episodes=config["n_episodes"],
            gamma=config["gamma"],
            baseline=config["baseline"],
        )


class MLPPolicyGradient(PolicyGradient):
    """The same REINFORCE estimator on a non-spiking tanh MLP policy
    (:class:`probsnn.rl.MLPPolicy`), the reference."""

    name = "mlp-policy-gradient"
    title = "REINFORCE, non-spiking tanh MLP policy (reference)"
    local = "no: the gradient is backpropagated through the MLP"
    spiking = False
    defaults: ClassVar[dict] = {
        "control": {
            "n_hidden": 32,
            "learning_rate": 2e-2,
            "n_episodes": 8,
            "gamma": 1.0,
            "baseline": "leave_one_out",
        }
    }


class ActorCritic(ControlCriterion):
    """Online actor-critic on a spiking policy
    (:func:`probsnn.inference.reinforcement.actor_critic.actor_critic_trainer`): a linear
    TD(λ) critic on receptive-field features, the TD error as the third factor of the actor's
    eligibility traces; ``n_episodes`` episodes side by side, updates at every step."""

    name = "actor-critic"
    title = "online actor-critic (TD error x eligibility traces), GLM spiking policy"
    local = (
        "yes: pre-trace x post-error summed in an eligibility trace, times the broadcast TD error"
    )
    defaults: ClassVar[dict] = {
        "control": {
            **_SPIKING_POLICY,
            "learning_rate": 3e-3,
            "n_episodes": 16,
            "gamma": 0.99,
            "lam": 0.9,
            "critic_rate": 0.01,
        }
    }

    def make_trainer(self, policy, environment, config):
        from probsnn.inference.reinforcement.actor_critic import actor_critic_trainer

        return actor_critic_trainer(
            policy,
            environment,
            optax.adam(config["learning_rate"]),
            n_episodes=config["n_episodes"],
            gamma=config["gamma"],
            lam=config["lam"],
            critic_rate=config["critic_rate"],
        )


class EvolutionStrategies(ControlCriterion):
    """OpenAI-ES on a spiking policy's free parameters
    (:func:`probsnn.inference.reinforcement.evolution.evolution_strategies_trainer`):
    ``population`` antithetic perturbations of scale ``sigma``, ``n_episodes`` episodes each,
    centred-rank fitness, Adam."""

    name = "evolution-strategies"
    title = "evolution strategies (OpenAI-ES), GLM spiking policy"
    local = "partly: each weight moves by its own perturbation x a broadcast fitness rank"
    defaults: ClassVar[dict] = {
        "control": {
            **_SPIKING_POLICY,
            "learning_rate": 5e-2,
            "population": 32,
            "sigma": 0.1,
            "n_episodes": 1,
        }
    }

    def episodes_per_step(self, config):
        return config["population"] * config["n_episodes"]

    def make_trainer(self, policy, environment, config):
        from probsnn.inference.reinforcement.evolution import evolution_strategies_trainer

        return evolution_strategies_trainer(
            policy,
            environment,
            optax.adam(config["learning_rate"]),
            population=config["population"],
            sigma=config["sigma"],
            n_episodes=config["n_episodes"],
        )


class MSTDPET(ControlCriterion):
    """Reward-modulated STDP with an eligibility trace on a spiking policy's synapses
    (:func:`probsnn.inference.reinforcement.mstdpet.mstdpet_trainer`, Florian 2007): pair-STDP
    increments summed in a decaying trace per synapse, gated by the reward-to-go minus a
    leave-one-out baseline; a plasticity rule (no optimizer)."""

    name = "mstdpet"
    title = "reward-modulated STDP with eligibility traces (MSTDPET), GLM spiking policy"
    local = "yes: an STDP eligibility trace per synapse, gated by a broadcast reward signal"
    defaults: ClassVar[dict] = {
        "control": {
            **_SPIKING_POLICY,
            "learning_rate": 1e-3,
            "n_episodes": 16,
            "gamma": 1.0,
            "tau_eligibility_ms": 25.0,
            "signal": "to_go",
        }
    }
    per_task: ClassVar[dict] = {"acrobot": {"n_episodes": 32, "gamma": 0.99}}

    def make_trainer(self, policy, environment, config):
        from probsnn.inference.reinforcement.mstdpet import mstdpet_trainer

        return mstdpet_trainer(
            policy,
            environment,
            n_episodes=config["n_episodes"],
            learning_rate=config["learning_rate"],
            gamma=config["gamma"],
            tau_eligibility_ms=config["tau_eligibility_ms"],
            signal=config["signal"],
        )
