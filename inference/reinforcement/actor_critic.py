"""Online actor-critic: the TD error as the third factor, with eligibility traces.

B episodes run side by side; at every environment step t of each episode the policy acts, a
linear critic V_ψ(φ) = ψ·φ scores the features φ_t = φ(o_t) of the observation, and

    δ_t = r_t + γ (1 − done_t) V_ψ(φ_{t+1}) − V_ψ(φ_t)                      (the TD error)
    z^ψ_t = γλ z^ψ_{t−1} + φ_t,   z^θ_t = γλ z^θ_{t−1} + ∇_θ log π_θ(step t)   (eligibilities)
    ψ ← ψ + α_V · mean_b δ_{b,t} z^ψ_{b,t}
    θ ← optimizer step on ∇L_t = −mean_b δ_{b,t} z^θ_{b,t}

(Sutton & Barto 2018, §12.2 semi-gradient TD(λ) and §13.6 actor-critic with eligibility traces,
without the γ^t factor on the actor's score; Frémaux, Sprekeler & Gerstner 2013, whose spiking
actor-critic uses the TD error as the neuromodulatory third factor). The means run over the
episodes still alive at t (``done_t`` counts as alive: the step that ends an episode updates;
the steps after it do not update the parameters, the traces or anything else). The parameters
change at every step, inside the episodes; nothing of an episode is stored, so the memory is
constant in its length (the state carried from step to step is the environments', the
policies' carries, the two eligibilities ``(B, |θ|)`` and ``(B, F)``, the parameters and the
optimizer state). ``done`` includes reaching the environment's step limit, which the critic
treats as an end (it does not see the time).

For a :class:`probsnn.rl.SpikingPolicy` the score of a step is local: replaying the step's M
bins through the presynaptic traces of the network's past (:mod:`probsnn.history`, carried
beside the policy's own state: :func:`score_past`), it is

    ∇_w log π(step t) = Σ_{bins of t} (s_i − σ(u_i)) x_{jk},   likewise v, c, and γ (x = 1),

the per-bin score of :func:`probsnn.inference.likelihood.online.local_gradient` (the action
given the spikes does not depend on θ), so the update is pre-trace × post-error, summed into an
eligibility, × the TD error. For other policies (:class:`probsnn.rl.MLPPolicy`) it is
``jax.grad`` of the step's log-probability.

Critic features (``features``): ``"receptive_fields"`` (default) — the observation through
Gaussian receptive fields, 8 per dimension, and a constant
(:func:`~probsnn.inference.reinforcement.policy_gradient.value_features`): the place-cell code
that feeds the critic in Frémaux et al. 2013, fixed and known at o_{t+1} before the next action,
so δ_t is available at step t (a critic reading the policy's own spikes would need the next
step's spikes and would drift as the actor learns); ``"observation"`` — φ(o) = o itself, for
observations that already are features (the one-hot states of :class:`probsnn.rl.TabularMDP`,
where the linear critic is tabular and TD(λ) converges to V^π).

References: Frémaux, Sprekeler & Gerstner (2013), PLoS Comput. Biol. 9:e1003024; Sutton & Barto
(2018), *Reinforcement Learning: An Introduction*, 2nd ed., MIT Press.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from probsnn import _checks, history
from probsnn.inference.likelihood.online import MLSignals, local_gradient
from probsnn.rl import episodes as rollouts
from probsnn.rl.environments import BaseEnvironment
from probsnn.rl.episodes import Trajectory, check_discount

from .._training import Trainer
from ._episodic import episodic_trainer
from .policy_gradient import value_features

FEATURES = ("receptive_fields", "observation")


class ActorCriticState(NamedTuple):
    """params: the policy's; opt_state: the optimizer's; value: the critic's weights ψ ``(F,)``;
    episodes: episodes sampled so far."""

    params: Any
    opt_state: Any
    value: jax.Array
    episodes: jax.Array


class ActorCriticInfo(NamedTuple):
    """Per trainer step (B episodes): loss, the mean squared TD error over the alive steps
    (what the critic minimises; it falls as the critic learns and grows with the returns);
    mean_return, the undiscounted return averaged over the episodes; episode_length (mean);
    spikes_per_step, mean spikes per environment step over the alive steps; td_error, the mean
    |δ| over the alive steps."""

    loss: jax.Array
    mean_return: jax.Array
    episode_length: jax.Array
    spikes_per_step: jax.Array
    td_error: jax.Array


class _Episode(NamedTuple):
    """What one running episode carries from step to step (constant size)."""

    env_state: Any
    observation: jax.Array
    carry: Any  # the policy's
    past: Any  # the presynaptic traces' (score_past)
    alive: jax.Array
    z_value: jax.Array  # (F,)
    z_actor: Any  # shaped like the params


def critic_features(policy, observations, features: str = "receptive_fields"):
    """φ(o) ``(..., F)`` of the critic for observations ``(..., D)`` (module docstring): F =
    8·D + 1 for ``"receptive_fields"``, D for ``"observation"``."""
    features = _checks.option(features, "features", FEATURES)
    if features == "observation":
        return observations
    return value_features(policy, observations)


def score_past(policy):
    """The empty past that :func:`step_score` carries through an episode: for a spiking policy
    the presynaptic trace history of its network (:func:`probsnn.history.init`, trace states
    for recursive bases), else ``()``."""
    if hasattr(policy, "network"):
        return history.init(policy.network)
    return ()


def step_score(policy, params, past, observation, action, record):
    """∇_θ log π_θ(step t) of one environment step of one episode, and the past after it.

    Args:
        policy: :class:`probsnn.rl.SpikingPolicy` or :class:`probsnn.rl.MLPPolicy`.
        params: its parameters. past: the scoring past *before* the step (from
            :func:`score_past` at the start of the episode, then what this returned).
        observation: ``(D,)``. action, record: what ``act`` returned.

    Returns:
        ``(past, score)``: for a spiking policy the past advanced through the step's M bins,
        and the score, shaped like ``params``. Summed over an episode's steps with weights A_t
        it equals ``jax.grad`` of Σ_t A_t ``policy.log_prob`` (tests/rl).
    """
    if hasattr(policy, "network"):
        spec = policy.network
        bins = []
        for spikes, inputs in zip(record.spikes, record.inputs, strict=True):
            bins.append(history.traces(spec, past))
            past = history.push(spec, past, spikes, inputs)
        traces = jax.tree.map(lambda *leaves: jnp.stack(leaves), *bins)  # (M, ...) per field
        return past, local_gradient(spec, params, MLSignals(traces, record.spikes))
    single = Trajectory(
        observation[None, None],
        jnp.asarray(action)[None, None],
        jnp.zeros((1, 1), jnp.float32),
        jnp.ones((1, 1), bool),
        jax.tree.map(lambda leaf: leaf[None, None], record),
    )
    return past, jax.grad(lambda p: policy.log_prob(p, single).sum())(params)


def actor_critic_trainer(
    policy,
    environment: BaseEnvironment,
    optimizer: optax.GradientTransformation | None = None,
    *,
    n_episodes: int = 16,
    gamma: float = 0.99,
    lam: float = 0.98,
    critic_rate: float = 0.001,
    n_steps: int | None = None,
    features: str = "receptive_fields",
) -> Trainer:
    """Online actor-critic (module docstring): a :class:`~probsnn.inference.Trainer` whose
    ``step(key, state, batch=None)`` runs ``n_episodes`` episodes in parallel, updating the
    actor and the critic at every environment step. The step loop stops when every episode
    has ended (or after ``n_steps`` steps). With the defaults a
    ``SpikingPolicy.for_environment(make("cartpole"))`` reaches a 100-episode mean of 475 in
    1500-2900 episodes (five seeds); λ near 1 leans on the sampled returns where the additive
    receptive-field critic cannot represent the value.

    Args:
        policy: :class:`probsnn.rl.SpikingPolicy` or :class:`probsnn.rl.MLPPolicy` of the
            environment's observation size.
        environment: :func:`probsnn.rl.make`'s environment or a
            :class:`probsnn.rl.TabularMDP`.
        optimizer: the actor's, on the loss gradient −mean_b δ z^θ; default ``optax.adam(1e-3)``.
            ``optax.set_to_zero()`` freezes the actor (policy evaluation by TD(λ)).
        n_episodes: B, episodes per trainer step. gamma: discount γ in [0, 1].
        lam: λ in [0, 1] of the eligibility traces (0: one-step TD; 1: Monte Carlo-like).
        critic_rate: α_V >= 0, the critic's step size (0 freezes the critic). Stable while
            α_V |φ|² / (1 − γλ) stays well below 1 (|φ|² ≈ 1.8 D + 1 for receptive fields).
        n_steps: the horizon H (default the environment's episode limit).
        features: ``"receptive_fields"`` (default) or ``"observation"`` (module docstring).

    Returns:
        Trainer: ``init(params) -> ActorCriticState``; ``step(key, state, batch=None) ->
        (ActorCriticState, ActorCriticInfo)``.

    Raises:
        TypeError: an environment that is not a probsnn environment, an optimizer that is not
            an optax transformation, a key that is not a PRNG key.
        ValueError: γ or λ outside [0, 1], a negative critic rate, n_episodes or n_steps below
            1, an unknown ``features``, a policy of another observation size, a batch passed to
            ``step``, params of another policy.
    """
    rollouts.check_pair(policy, environment)
    optimizer = _checks.optimizer(optax.adam(1e-3) if optimizer is None else optimizer)
    n_episodes = _checks.positive_int(n_episodes, "n_episodes")
    gamma = check_discount(gamma)
    lam = check_discount(lam, "lam")
    critic_rate = _checks.nonnegative_float(critic_rate, "critic_rate")
    n_steps = environment.max_steps if n_steps is None else _checks.positive_int(n_steps, "n_steps")
    features = _checks.option(features, "features", FEATURES)
    n_features = critic_features(policy, jnp.zeros(policy.n_observations), features).shape[-1]
    decay = gamma * lam

    def init(params):
        params = policy.check_params(params)
        return ActorCriticState(
            params, optimizer.init(params), jnp.zeros(n_features), jnp.zeros((), jnp.int32)
        )

    def act(params, value, episode, key):
        """One step of one episode: act, step the environment, δ, the eligibilities."""
        env_state, observation, carry, past, alive, z_value, z_actor = episode
        key_act, key_env = jax.random.split(key)
        new_carry, action, record = policy.act(params, carry, observation, key_act)
        past, score = step_score(policy, params, past, observation, action, record)
        next_observation, next_state, reward, done = environment.step(key_env, env_state, action)
        phi = critic_features(policy, observation, features)
        phi_next = critic_features(policy, next_observation, features)
        delta = reward + gamma * jnp.where(done, 0.0, phi_next @ value) - phi @ value
        stepped = _Episode(
            next_state,
            next_observation,
            new_carry,
            past,
            alive & ~done,
            decay * z_value + phi,
            jax.tree.map(lambda z, g: decay * z + g, z_actor, score),
        )
        # a finished episode stays where it ended, its traces frozen
        episode = jax.tree.map(lambda new, old: jnp.where(alive, new, old), stepped, episode)
        spikes = policy.spike_counts(Trajectory(observation, action, reward, alive, record))
        return episode, jnp.where(alive, delta, 0.0), jnp.where(alive, reward, 0.0), spikes

    def body(loop):
        t, key, params, opt_state, value, episodes, totals = loop
        key, step_key = jax.random.split(key)
        alive = episodes.alive
        episodes, delta, reward, spikes = jax.vmap(act, (None, None, 0, 0))(
            params, value, episodes, jax.random.split(step_key, n_episodes)
        )
        n_alive = alive.sum().astype(delta.dtype)  # >= 1: the loop runs while one is alive
        value = value + critic_rate * (delta @ episodes.z_value) / n_alive
        grads = jax.tree.map(lambda z: -jnp.tensordot(delta, z, 1) / n_alive, episodes.z_actor)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        returns, lengths, squared, absolute, n_spikes = totals
        totals = (
            returns + reward,
            lengths + alive,
            squared + jnp.sum(delta**2),
            absolute + jnp.sum(jnp.abs(delta)),
            n_spikes + jnp.sum(jnp.where(alive, spikes, 0)),
        )
        return t + 1, key, params, opt_state, value, episodes, totals

    def running(loop):
        t, episodes = loop[0], loop[5]
        return (t < n_steps) & episodes.alive.any()

    @jax.jit
    def step(key, state):
        key_reset, key_steps = jax.random.split(key)

        def start(key):
            observation, env_state = environment.reset(key)
            z_actor = jax.tree.map(jnp.zeros_like, state.params)
            return _Episode(
                env_state,
                observation,
                policy.initial_carry(),
                score_past(policy),
                jnp.bool_(True),
                jnp.zeros(n_features),
                z_actor,
            )

        episodes = jax.vmap(start)(jax.random.split(key_reset, n_episodes))
        totals = (
            jnp.zeros(n_episodes),
            jnp.zeros(n_episodes, jnp.int32),
            jnp.zeros(()),
            jnp.zeros(()),
            jnp.zeros((), jnp.int32),
        )
        loop = (jnp.int32(0), key_steps, state.params, state.opt_state, state.value, episodes)
        _, _, params, opt_state, value, _, totals = jax.lax.while_loop(
            running, body, (*loop, totals)
        )
        returns, lengths, squared, absolute, n_spikes = totals
        n_alive = jnp.maximum(lengths.sum(), 1)
        info = ActorCriticInfo(
            loss=squared / n_alive,
            mean_return=returns.mean(),
            episode_length=lengths.mean(dtype=jnp.float32),
            spikes_per_step=(n_spikes / n_alive).astype(jnp.float32),
            td_error=absolute / n_alive,
        )
        return ActorCriticState(params, opt_state, value, state.episodes + n_episodes), info

    return episodic_trainer(init, step, "actor_critic_trainer")
