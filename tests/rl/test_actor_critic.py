"""Online actor-critic (inference/reinforcement/actor_critic.py).

Oracles: the per-step scores against ``jax.grad`` of the policy's exact log-probability of a
whole rollout; the critic of a frozen policy against the dynamic-programming value V^π of a chain
MDP, solved exactly from the policy's softmax probabilities; the compiled step's memory against
the episode length.
"""

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import probsnn.rl as rl
from probsnn import kernels
from probsnn.inference import fit
from probsnn.inference.reinforcement.actor_critic import (
    actor_critic_trainer,
    critic_features,
    score_past,
    step_score,
)

# A chain 0-1-2-3 and a terminal state 4: "left" (0) moves down (0 stays), "right" (1) moves up;
# the step from 3 to 4 pays 1 and ends the episode. Starts uniform over 0..3.
N_CHAIN = 5
CHAIN_GAMMA = 0.9


def chain():
    p = np.zeros((N_CHAIN, 2, N_CHAIN))
    for s in range(N_CHAIN - 1):
        p[s, 0, max(s - 1, 0)] = 1.0
        p[s, 1, s + 1] = 1.0
    p[N_CHAIN - 1, :, N_CHAIN - 1] = 1.0
    r = np.zeros((N_CHAIN, 2))
    r[N_CHAIN - 2, 1] = 1.0
    initial = np.r_[np.full(N_CHAIN - 1, 1 / (N_CHAIN - 1)), 0.0]
    terminal = np.arange(N_CHAIN) == N_CHAIN - 1
    return rl.TabularMDP(p, r, initial, horizon=200, terminal=terminal)


def action_probabilities(policy, params, n_states):
    """π(a | s) ``(S, A)`` of a discrete policy on one-hot observations, from its log_prob."""
    obs = jnp.broadcast_to(jnp.eye(n_states)[:, None], (n_states, policy.n_actions, n_states))
    actions = jnp.broadcast_to(jnp.arange(policy.n_actions), (n_states, policy.n_actions))
    zeros = jnp.zeros(actions.shape)
    trajectory = rl.Trajectory(obs, actions, zeros, zeros > -1, ())
    return np.exp(np.asarray(policy.log_prob(params, trajectory), np.float64))


def dp_value(mdp, pi, gamma):
    """V^π of the non-terminal states: (I − γ P_π) V = r_π, entering a terminal state ends."""
    live = ~mdp.terminal
    p_pi = np.einsum("sa,sat->st", pi, mdp.transitions)[np.ix_(live, live)]
    r_pi = np.sum(pi * mdp.rewards, axis=1)[live]
    return np.linalg.solve(np.eye(live.sum()) - gamma * p_pi, r_pi)


def chain_policy():
    """An MLP with state-dependent probabilities of "right" between 0.4 and 0.7: the expected
    time to the terminal state is 7 to 14 steps, and P(an episode outlasts the horizon of 200)
    < 1e-8, so the horizon (which the critic does not see) does not bias V^π."""
    policy = rl.MLPPolicy(N_CHAIN, 2, n_hidden=4)
    params = policy.init_params(jax.random.key(3))
    w2 = 0.5 * jax.random.normal(jax.random.key(6), (4, 2))
    return policy, params._replace(w2=w2, b2=jnp.array([0.0, 0.4]))


def test_critic_of_a_frozen_policy_converges_to_the_dynamic_programming_value():
    mdp = chain()
    policy, params = chain_policy()
    pi = action_probabilities(policy, params, N_CHAIN)
    assert 0.4 < pi[:-1, 1].min() and pi[:-1, 1].max() < 0.7  # stochastic in every state
    v_pi = dp_value(mdp, pi, CHAIN_GAMMA)
    rate, n_episodes = 0.02, 32
    trainer = actor_critic_trainer(
        policy,
        mdp,
        optax.set_to_zero(),  # the actor is frozen: TD(λ) policy evaluation
        n_episodes=n_episodes,
        gamma=CHAIN_GAMMA,
        lam=0.8,
        critic_rate=rate,
        features="observation",
    )
    state = trainer.init(params)
    step = jax.jit(trainer.step)
    values = []
    for key in jax.random.split(jax.random.key(0), 400):
        state, _ = step(key, state)
        values.append(np.asarray(state.value))
    assert jax.tree.all(jax.tree.map(jnp.array_equal, state.params, params))
    # the terminal state is only ever the state after the last step: no update sees it
    assert np.all(np.stack(values)[:, -1] == 0.0)
    # With one-hot features the critic is tabular and TD(λ) has V^π as its only fixed point.
    # At a constant step size α the iterate fluctuates about it with a standard deviation of
    # order sqrt(α) (measured: 0.02-0.03 here) and a correlation time of ~1/(α · updates of a
    # state per step) ≈ 5 steps, so the mean over the last 300 steps has a standard deviation
    # of about 0.025 · sqrt(2 · 5 / 300) ≈ 0.005; updating within episodes adds an O(α) bias
    # (measured on three seeds: |error| <= 0.01). 0.03 is 6 standard deviations of the mean.
    estimate = np.mean(values[100:], axis=0)[:-1]
    np.testing.assert_allclose(estimate, v_pi, atol=0.03)
    assert np.max(np.abs(values[0][:-1] - v_pi)) > 0.1  # it did have something to learn


@pytest.mark.parametrize("kind", ["spiking", "recursive", "mlp"])
def test_step_scores_weighted_and_summed_equal_autodiff_of_the_episode_log_prob(kind):
    """Also for a policy on recursive (alpha) synapses, whose sampler carries postsynaptic
    trace states: the score's own past holds the presynaptic traces."""
    env = rl.make("cartpole")
    if kind == "spiking":
        policy = rl.SpikingPolicy.for_environment(env, n_hidden=4, micro_steps=2, recurrent=True)
    elif kind == "recursive":
        policy = rl.SpikingPolicy.for_environment(
            env,
            n_hidden=4,
            micro_steps=3,
            recurrent=True,
            synapse_basis=kernels.recursive_alpha([2e-3, 6e-3], 1e-3),
        )
    else:
        policy = rl.MLPPolicy.for_environment(env, n_hidden=8)
    params = policy.init_params(jax.random.key(0))
    trajectory = rl.rollout(policy, params, env, jax.random.key(1), 2, n_steps=8)
    weights = jax.random.normal(jax.random.key(2), trajectory.rewards.shape)

    def episode_scores(observations, actions, records):
        def body(past, step):
            past, score = step_score(policy, params, past, *step)
            return past, score

        return jax.lax.scan(body, score_past(policy), (observations, actions, records))[1]

    scores = jax.vmap(episode_scores)(
        trajectory.observations, trajectory.actions, trajectory.records
    )
    local = jax.tree.map(lambda g: jnp.tensordot(weights, g, 2), scores)
    exact = jax.grad(lambda p: jnp.sum(weights * policy.log_prob(p, trajectory)))(params)
    for ours, theirs in zip(jax.tree.leaves(local), jax.tree.leaves(exact), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(exact)) > 0.1


def test_returns_lengths_and_features_are_accounted_per_alive_step():
    # every step pays 1, so each episode's return is its length; no spikes from an MLP
    mdp = rl.TabularMDP(
        [[[0.7, 0.3], [0.7, 0.3]], [[0.0, 1.0], [0.0, 1.0]]],
        [[1.0, 1.0], [0.0, 0.0]],
        [1.0, 0.0],
        horizon=6,
        terminal=np.array([False, True]),
    )
    policy = rl.MLPPolicy(2, 2, n_hidden=3)
    trainer = actor_critic_trainer(policy, mdp, n_episodes=8, features="observation")
    state, info = trainer.step(
        jax.random.key(0), trainer.init(policy.init_params(jax.random.key(1)))
    )
    assert float(info.mean_return) == float(info.episode_length)
    assert 1.0 <= float(info.episode_length) <= 6.0
    assert float(info.spikes_per_step) == 0.0
    assert float(info.td_error) > 0 and float(info.loss) >= float(info.td_error) ** 2
    assert float(state.value[1]) == 0.0 and int(state.episodes) == 8
    rf = critic_features(policy, jnp.eye(2))
    assert rf.shape == (2, 2 * 8 + 1) and np.all(np.asarray(rf[:, -1]) == 1.0)


def array_sizes(jaxpr):
    """The element counts of every value a jaxpr (and the jaxprs inside it) computes."""
    sizes = []
    for eqn in jaxpr.eqns:
        sizes += [int(np.prod(v.aval.shape)) for v in eqn.outvars if hasattr(v.aval, "shape")]
        for param in eqn.params.values():
            for inner in param if isinstance(param, tuple | list) else (param,):
                if isinstance(inner, jex.core.ClosedJaxpr):
                    sizes += array_sizes(inner.jaxpr)
                elif isinstance(inner, jex.core.Jaxpr):
                    sizes += array_sizes(inner)
    return sizes


def test_memory_does_not_grow_with_the_episode_length():
    # the step loop is a while loop whose carry is the episodes' current state: the program
    # for a horizon of 10 steps computes arrays of exactly the sizes of the one for 5000
    env = rl.make("cartpole")
    policy = rl.SpikingPolicy.for_environment(env, n_hidden=4, micro_steps=2)
    params = policy.init_params(jax.random.key(0))
    programs = []
    for n_steps in (10, 5000):
        trainer = actor_critic_trainer(policy, env, n_episodes=3, n_steps=n_steps)
        state = trainer.init(params)
        programs.append(jax.make_jaxpr(trainer.step)(jax.random.key(0), state).jaxpr)
    short, long = (sorted(array_sizes(program)) for program in programs)
    assert short == long
    assert len(short) > 100 and max(short) < 5000  # it did look inside the loop


@pytest.fixture(scope="module")
def cartpole():
    """CartPole, the default spiking policy and the default trainer (compiled once)."""
    env = rl.make("cartpole")
    policy = rl.SpikingPolicy.for_environment(env)
    return env, policy, actor_critic_trainer(policy, env)


def test_same_key_same_run_and_another_key_another(cartpole):
    _, policy, trainer = cartpole
    state = trainer.init(policy.init_params(jax.random.key(0)))
    first = trainer.step(jax.random.key(1), state)
    again = trainer.step(jax.random.key(1), state)
    other = trainer.step(jax.random.key(2), state)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, first, again))
    assert not jnp.array_equal(first[0].value, other[0].value)
    assert not jax.tree.all(jax.tree.map(jnp.array_equal, first[0].params, state.params))


def test_learning_raises_the_cartpole_return_of_a_spiking_policy(cartpole):
    env, policy, trainer = cartpole
    params = policy.init_params(jax.random.key(0))
    before = float(rl.evaluate(policy, params, env, jax.random.key(9), 100).mean())
    result = fit(trainer, params, None, key=jax.random.key(1), epochs=40, progress=False)
    after = float(rl.evaluate(policy, result.params, env, jax.random.key(9), 100).mean())
    # a random policy balances ~20 steps (100-episode means have a standard error of ~1);
    # 640 episodes of the default actor-critic reach several times that (about 250 for this
    # seed; the defaults solve CartPole, a mean of 475, in 1500-2900 episodes)
    assert before < 30
    assert after > 100, (before, after, result.history["mean_return"])
    assert np.all(result.history["spikes_per_step"] > 0)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"gamma": 1.5}, ValueError, "gamma"),
        ({"lam": -0.1}, ValueError, "lam"),
        ({"critic_rate": -1.0}, ValueError, "critic_rate"),
        ({"features": "spikes"}, ValueError, "features"),
        ({"n_episodes": 0}, ValueError, "n_episodes"),
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"optimizer": "adam"}, TypeError, "optimizer"),
    ],
)
def test_bad_options_are_refused(options, error, match):
    env = rl.make("cartpole")
    with pytest.raises(error, match=match):
        actor_critic_trainer(rl.MLPPolicy.for_environment(env), env, **options)


def test_bad_environment_policy_and_step_arguments_are_refused():
    env = rl.make("cartpole")
    policy = rl.MLPPolicy.for_environment(env)
    with pytest.raises(TypeError, match="environment"):
        actor_critic_trainer(policy, "cartpole")
    with pytest.raises(ValueError, match="observations of size 3"):
        actor_critic_trainer(rl.MLPPolicy(3, 2), env)
    trainer = actor_critic_trainer(policy, env, n_episodes=2)
    state = trainer.init(policy.init_params(jax.random.key(0)))
    with pytest.raises(ValueError, match="batch=None"):
        trainer.step(jax.random.key(0), state, jnp.zeros(3))
    with pytest.raises(TypeError, match="key"):
        trainer.step(0, state)


def test_a_policy_on_recursive_bases_trains_with_the_local_score():
    """The trainer on a policy whose sampler keeps postsynaptic trace states (it raised an
    AttributeError when the score read the policy's carry as ring buffers): the same key gives
    the same step, and the parameters move."""
    env = rl.make("cartpole")
    policy = rl.SpikingPolicy.for_environment(
        env, n_hidden=6, synapse_basis=kernels.recursive_exponential([3e-3, 10e-3], 1e-3)
    )
    trainer = actor_critic_trainer(policy, env, n_episodes=2, n_steps=30)
    params = policy.init_params(jax.random.key(0))
    state = trainer.init(params)
    first, info = trainer.step(jax.random.key(1), state)
    again, _ = trainer.step(jax.random.key(1), state)
    assert np.isfinite(float(info.loss)) and float(info.spikes_per_step) > 0
    for ours, theirs in zip(
        jax.tree.leaves(first.params), jax.tree.leaves(again.params), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)
    moved = [
        jnp.abs(a - b).max()
        for a, b in zip(jax.tree.leaves(first.params), jax.tree.leaves(params), strict=True)
    ]
    assert max(float(m) for m in moved) > 0
