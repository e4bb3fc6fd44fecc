"""REINFORCE with exact spike log-probabilities (inference/reinforcement/policy_gradient.py).

The oracle is the exact gradient of the expected return J(θ) of a spiking policy in a tiny MDP,
by enumerating every state, every spike of every bin and every action of every step. The
enumeration shares nothing with the policy's code but the GLM potentials
(:func:`probsnn.potentials`): the receptive fields, the decoders' action probabilities, the
transitions, the alive mask and the returns are written here from their definitions.
"""

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import probsnn as ps
import probsnn.rl as rl
from probsnn import kernels
from probsnn.inference import fit
from probsnn.inference.reinforcement import (
    advantages,
    policy_gradient_loss,
    policy_gradient_trainer,
    three_factor_gradient,
)

# Two states, two actions, three steps: the action changes where the agent goes and what it gets.
TWO_STATES = dict(
    transitions=[[[0.8, 0.2], [0.3, 0.7]], [[0.5, 0.5], [0.1, 0.9]]],
    rewards=[[1.0, -0.5], [0.2, 2.0]],
    initial=[0.6, 0.4],
    horizon=3,
)
# Three states, the last terminal: episodes of 1 or 2 steps (the alive mask matters).
WITH_TERMINAL = dict(
    transitions=[
        [[0.6, 0.2, 0.2], [0.1, 0.5, 0.4]],
        [[0.3, 0.6, 0.1], [0.2, 0.2, 0.6]],
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
    ],
    rewards=[[0.5, 1.0], [-1.0, 1.5], [0.0, 0.0]],
    initial=[0.5, 0.5, 0.0],
    horizon=2,
    terminal=np.array([False, False, True]),
)
BETA = 1.5
# (MDP, policy options): count decoding without hidden neurons; first-to-spike with one hidden
# neuron between the inputs and the outputs.
EXACT_CASES = {
    "count": (TWO_STATES, dict(n_hidden=0, decoder="count", inverse_temperature=BETA)),
    "first": (WITH_TERMINAL, dict(n_hidden=1, decoder="first")),
}


def tiny_policy(mdp, **options):
    return rl.SpikingPolicy(
        mdp.n_states, mdp.n_actions, receptive_fields=2, micro_steps=2, group_size=1, **options
    )


def receptive_fields(state, n_states, n_fields, p_max):
    """p_r(x) = p_max exp(−(x − r/(R − 1))² (R − 1)² / 2) of the one-hot observation, (S·R,)."""
    x = np.eye(n_states)[state]
    centres = np.arange(n_fields) / (n_fields - 1)
    return (p_max * np.exp(-0.5 * ((x[:, None] - centres) * (n_fields - 1)) ** 2)).reshape(-1)


def action_probabilities(outputs, decoder, beta):
    """p(a | spikes of a step) for outputs (P, M, A) of group size 1: (P, A)."""
    if decoder == "count":
        return np.asarray(jax.nn.softmax(beta * outputs.sum(1), axis=-1))
    n_bins = outputs.shape[1]
    first = np.where(outputs.any(1), outputs.argmax(1), n_bins)  # (P, A), M when silent
    winners = first == first.min(-1, keepdims=True)
    return winners / winners.sum(-1, keepdims=True)


def enumerate_paths(mdp, policy, decoder):
    """Every (state sequence, spike train) with its θ-free weight: the spike trains (P, H·M, N),
    their inputs (P, H·M, S·R) and Σ_actions p(s_0) Π_t p(a_t | spikes_t) P(s_{t+1} | s_t, a_t)
    × return (P,), so that J(θ) = Σ_P p_θ(spike train | inputs) × weight."""
    n_states, n_actions, horizon = mdp.n_states, mdp.n_actions, mdp.max_steps
    n_bins, n_neurons = policy.micro_steps, policy.n_neurons
    bits = np.array(list(itertools.product([0.0, 1.0], repeat=horizon * n_bins * n_neurons)))
    trains = bits.reshape(-1, horizon, n_bins, n_neurons)
    outputs = trains[..., policy.n_hidden :]  # (P, H, M, A)
    p_action = np.stack(
        [action_probabilities(outputs[:, t], decoder, BETA) for t in range(horizon)], 1
    )  # (P, H, A)
    spikes, inputs, weights = [], [], []
    for states in itertools.product(range(n_states), repeat=horizon):
        fields = [
            receptive_fields(s, n_states, policy.receptive_fields, policy.max_probability)
            for s in states
        ]
        entered = np.cumsum([False] + [mdp.terminal[s] for s in states[1:]])
        alive = entered == 0  # the step that enters a terminal state is the episode's last
        weight = np.zeros(len(trains))
        for actions in itertools.product(range(n_actions), repeat=horizon):
            factor = mdp.initial[states[0]]
            for t in range(horizon - 1):
                factor *= mdp.transitions[states[t], actions[t], states[t + 1]]
            ret = sum(
                mdp.rewards[s, a] for s, a, on in zip(states, actions, alive, strict=True) if on
            )
            chosen = np.prod(p_action[:, np.arange(horizon), list(actions)], -1)
            weight += factor * ret * chosen
        spikes.append(trains.reshape(len(trains), horizon * n_bins, n_neurons))
        per_bin = np.repeat(fields, n_bins, 0)  # (H·M, S·R)
        inputs.append(np.broadcast_to(per_bin, (len(trains), *per_bin.shape)))
        weights.append(weight)
    return np.concatenate(spikes), np.concatenate(inputs), np.concatenate(weights)


def exact_return_gradient(mdp, policy, decoder, params):
    """(J, ∇J) by enumeration, float64."""
    spikes, inputs, weights = enumerate_paths(mdp, policy, decoder)

    def expected_return(p):
        u = ps.potentials(policy.network, p, spikes, inputs)
        log_p = ps.bernoulli_log_prob(spikes, u).sum((1, 2))
        return jnp.sum(jnp.exp(log_p) * weights)

    return jax.value_and_grad(expected_return)(params)


def random_params(policy, seed=0):
    rng = np.random.default_rng(seed)
    params = ps.Params(*(jnp.asarray(rng.normal(0.0, 1.0, s)) for s in policy.network.param_shapes))
    return policy.network.masked(params)


@partial(jax.jit, static_argnums=(0, 3, 4))
def reinforce_gradients(policy, params, trajectory, baseline, gamma):
    """(the loss, jax.grad of it, its three-factor form) on one batch of episodes."""
    returns = rl.rewards_to_go(trajectory.rewards, trajectory.alive, gamma)
    advantage = advantages(returns, trajectory.alive, baseline)
    loss, auto = jax.value_and_grad(policy_gradient_loss, argnums=1)(
        policy, params, trajectory, advantage
    )
    local = three_factor_gradient(policy, params, trajectory, advantage)
    return loss, auto, local


@partial(jax.jit, static_argnums=0)
def per_batch_gradients(policy, params, batches):
    """Flattened loss gradients of every batch ``(K, P)``, baselines none and leave-one-out."""

    def gradient(batch, baseline):
        return flat(reinforce_gradients(policy, params, batch, baseline, 1.0)[1])

    return {b: jax.vmap(partial(gradient, baseline=b))(batches) for b in ("none", "leave_one_out")}


def flat(tree):
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def test_the_enumeration_uses_the_documented_architecture():
    """The oracle's network is the one the policy documents: inputs D·R, hidden neurons first,
    hidden → outputs only (no output → anything), one-lag bases."""
    mdp = rl.TabularMDP(**WITH_TERMINAL)
    policy = tiny_policy(mdp, n_hidden=1, decoder="first")
    mask = np.zeros((3, 3), bool)
    mask[0, 1:] = True
    lag = kernels.raw_lags(1)
    expected = ps.Network(3, lag, input_basis=lag, n_inputs=3 * 2, connectivity=mask)
    assert policy.network == expected
    assert policy.outputs == slice(1, 3)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_estimator_mean_is_the_exact_gradient_of_minus_the_expected_return(case, x64):
    mdp_options, policy_options = EXACT_CASES[case]
    mdp = rl.TabularMDP(**mdp_options)
    policy = tiny_policy(mdp, **policy_options)
    params = random_params(policy)
    value, exact = exact_return_gradient(mdp, policy, policy.decoder, params)
    exact = np.asarray(flat(exact))
    n_batches, batch = 1000, 8
    trajectory = rl.rollout(policy, params, mdp, jax.random.key(1), n_batches * batch)
    # the sampled returns estimate the same J (a check of the enumeration's weights)
    returns = np.asarray(rl.episode_returns(trajectory))
    assert abs(returns.mean() - value) < 4 * returns.std() / np.sqrt(returns.size)
    batches = jax.tree.map(lambda x: x.reshape(n_batches, batch, *x.shape[1:]), trajectory)
    for baseline, per_batch in per_batch_gradients(policy, params, batches).items():
        per_batch = np.asarray(per_batch, np.float64)
        mean = per_batch.mean(0)
        se = per_batch.std(0, ddof=1) / np.sqrt(n_batches)
        free = se > 0  # masked synapses: no gradient in either
        np.testing.assert_array_equal(mean[~free], 0.0)
        np.testing.assert_array_equal(exact[~free], 0.0)
        assert np.all(np.abs(mean + exact)[free] <= 4 * se[free]), baseline
        # the test has power: the largest coordinate is many standard errors from zero, with
        # the sign of −∇J (a loss to minimise)
        i = np.argmax(np.abs(exact) / np.where(free, se, np.inf))
        assert abs(exact[i]) > 10 * se[i]
        assert np.sign(mean[i]) == -np.sign(exact[i])


def test_batch_baseline_is_leave_one_out_shrunk_by_one_minus_one_over_b():
    """b = mean over all B episodes includes the episode's own return: A_batch = (1 − 1/B)
    A_loo exactly, so the batch baseline's gradient is (1 − 1/B) times an unbiased one."""
    rng = np.random.default_rng(0)
    returns = jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)
    alive = jnp.asarray(np.arange(4) < rng.integers(1, 5, size=(5, 1)))
    returns = returns * alive
    np.testing.assert_allclose(
        advantages(returns, alive, "batch"),
        0.8 * advantages(returns, alive, "leave_one_out"),
        rtol=1e-6,
        atol=1e-6,
    )


def test_advantages_against_their_definitions():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(4, 3))
    alive = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)
    g = g * alive
    values = rng.normal(size=(4, 3))
    loo = np.stack([g[i] - np.delete(g, i, 0).mean(0) for i in range(4)])
    cases = {
        "none": g,
        "batch": g - g.mean(0),
        "leave_one_out": loo,
        "value": g - values,
    }
    for baseline, expected in cases.items():
        got = advantages(jnp.asarray(g), jnp.asarray(alive), baseline, jnp.asarray(values))
        np.testing.assert_allclose(got, expected * alive, rtol=1e-5, atol=1e-6)


THREE_FACTOR_CASES = {
    "hidden": dict(n_hidden=2, group_size=2, micro_steps=3),
    "recurrent_population": dict(n_hidden=3, recurrent=True, encoding="population"),
    "separate_feedback_bases": dict(
        n_hidden=2,
        recurrent=True,
        synapse_basis=kernels.raw_lags(2),
        feedback_basis=kernels.exponential([0.002, 0.005], 3, 1e-3),
        input_basis=kernels.raw_lags(2),
        decoder="first",
    ),
}


def random_trajectory(policy, rng, n_episodes=6, n_steps=5):
    """Any spikes, inputs, rewards and prefix alive mask: the three-factor form is an identity
    at fixed weights, whatever the spikes."""
    bins = (n_episodes, n_steps, policy.micro_steps)
    spikes = rng.random((*bins, policy.n_neurons)) < 0.4
    inputs = rng.random((*bins, policy.n_inputs))
    if policy.encoding == "population":
        inputs = inputs < 0.5
    alive = np.arange(n_steps) < rng.integers(1, n_steps + 1, size=(n_episodes, 1))
    record = rl.SpikeRecord(
        jnp.asarray(inputs, jnp.float32),
        jnp.asarray(spikes, jnp.uint8),
        jnp.asarray(-rng.random((n_episodes, n_steps)), jnp.float32),
    )
    return rl.Trajectory(
        observations=jnp.zeros((n_episodes, n_steps, policy.n_observations)),
        actions=jnp.zeros((n_episodes, n_steps), jnp.int32),
        rewards=jnp.asarray(rng.normal(size=(n_episodes, n_steps)) * alive, jnp.float32),
        alive=jnp.asarray(alive),
        records=record,
    )


@pytest.mark.parametrize("case", sorted(THREE_FACTOR_CASES))
def test_three_factor_form_equals_autodiff(case):
    options = dict(receptive_fields=3, micro_steps=2, group_size=1) | THREE_FACTOR_CASES[case]
    policy = rl.SpikingPolicy(3, 2, **options)
    params = jax.tree.map(lambda x: x.astype(jnp.float32), random_params(policy, seed=2))
    trajectory = random_trajectory(policy, np.random.default_rng(3))
    _, auto, local = reinforce_gradients(policy, params, trajectory, "leave_one_out", 0.9)
    assert type(local) is type(auto)
    for field in ps.Params._fields:
        a, b = np.asarray(getattr(local, field)), np.asarray(getattr(auto, field))
        assert a.shape == b.shape, field
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * max(np.abs(b).max(), 1.0))
    assert np.abs(np.asarray(flat(auto))).max() > 0


@pytest.mark.parametrize("local", [False, True])
def test_trainer_step_is_reinforce_on_the_keys_episodes(local):
    """One step = rollout with the step's key, discounted rewards-to-go, the baseline, the
    loss's gradient (by autodiff or the three-factor form) and the optimizer's update; Info
    reports that batch."""
    mdp = rl.TabularMDP(**WITH_TERMINAL)
    policy = tiny_policy(mdp, n_hidden=2, recurrent=True, decoder="count")
    params = jax.tree.map(lambda x: x.astype(jnp.float32), random_params(policy, seed=4))
    trainer = policy_gradient_trainer(
        policy, mdp, optax.sgd(0.1), n_episodes=5, gamma=0.9, baseline="batch", local=local
    )
    key = jax.random.key(5)
    new_state, info = trainer.step(key, trainer.init(params))
    trajectory = rl.rollout(policy, params, mdp, key, 5)
    loss, grads, _ = reinforce_gradients(policy, params, trajectory, "batch", 0.9)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    for field in ps.Params._fields:
        np.testing.assert_allclose(
            getattr(new_state.params, field), getattr(expected, field), rtol=1e-5, atol=1e-5
        )
    alive = np.asarray(trajectory.alive)
    spikes = np.asarray(trajectory.records.spikes).sum((-1, -2))
    np.testing.assert_allclose(info.loss, loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info.mean_return, rl.episode_returns(trajectory).mean(), rtol=1e-6)
    np.testing.assert_allclose(info.episode_length, alive.sum(-1).mean(), rtol=1e-6)
    np.testing.assert_allclose(info.spikes_per_step, (spikes * alive).sum() / alive.sum(), 1e-6)
    assert int(new_state.episodes) == 5
    assert 0 < alive.sum() < alive.size  # the terminal state ended some episodes early
    assert np.abs(np.asarray(flat(grads))).max() > 0


@pytest.mark.slow
def test_spiking_policy_gradient_solves_cartpole():
    """CartPole-v1: a 100-episode evaluation mean >= 475 within 1,500 training episodes
    (fixed seed; measured: solved after 728 episodes)."""
    env = rl.make("cartpole")
    policy = rl.SpikingPolicy.for_environment(env)
    trainer = policy_gradient_trainer(policy, env, optax.adam(2e-2), n_episodes=8)
    scores = []

    def evaluate_when_promising(epoch, state, row):
        if row["mean_return"] >= env.reward_threshold:
            scores.append(float(rl.evaluate(policy, state.params, env, jax.random.key(1)).mean()))
            return scores[-1] >= env.reward_threshold
        return False

    result = fit(
        trainer,
        policy.init_params(jax.random.key(0)),
        None,
        key=jax.random.key(0),
        epochs=1500 // 8,
        callback=evaluate_when_promising,
        progress=False,
    )
    assert scores and scores[-1] >= env.reward_threshold, scores
    assert int(result.state.episodes) <= 1500


# -- bad input ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setting():
    mdp = rl.TabularMDP(**TWO_STATES)
    return mdp, tiny_policy(mdp)


@pytest.mark.parametrize(
    "options, error, words",
    [
        (dict(n_episodes=0), ValueError, "n_episodes"),
        (dict(baseline="mean"), ValueError, "baseline"),
        (dict(gamma=1.5), ValueError, "gamma"),
        (dict(gamma=-0.1), ValueError, "gamma"),
        (dict(gamma=float("nan")), ValueError, "gamma"),
        (dict(gamma="0.9"), TypeError, "gamma"),
        (dict(n_episodes=1), ValueError, "leave_one_out"),
        (dict(n_steps=0), ValueError, "n_steps"),
        (dict(optimizer="adam"), TypeError, "optimizer"),
    ],
)
def test_trainer_refuses_bad_options(setting, options, error, words):
    mdp, policy = setting
    with pytest.raises(error, match=words):
        policy_gradient_trainer(policy, mdp, **options)


def test_trainer_refuses_local_for_an_mlp_and_mismatched_environments(setting):
    mdp, policy = setting
    with pytest.raises(ValueError, match="local=True"):
        policy_gradient_trainer(rl.MLPPolicy.for_environment(mdp), mdp, local=True)
    with pytest.raises(ValueError, match="observations of size"):
        policy_gradient_trainer(rl.SpikingPolicy(3, 2), mdp)
    with pytest.raises(TypeError, match="environment"):
        policy_gradient_trainer(policy, "cartpole")


def test_trainer_refuses_bad_params_keys_and_batches(setting):
    mdp, policy = setting
    trainer = policy_gradient_trainer(policy, mdp, n_episodes=2)
    mlp = rl.MLPPolicy.for_environment(mdp)
    with pytest.raises(TypeError, match=r"probsnn\.Params"):
        trainer.init(mlp.init_params(jax.random.key(0)))
    params = policy.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match=r"params\.bias"):
        trainer.init(params._replace(bias=params.bias.at[0].set(jnp.nan)))
    state = trainer.init(params)
    with pytest.raises(TypeError, match="key"):
        trainer.step(0, state)
    with pytest.raises(ValueError, match="batch=None"):
        trainer.step(jax.random.key(0), state, jnp.zeros(3))


def test_advantages_refuse_bad_baselines():
    g, alive = jnp.zeros((1, 3)), jnp.ones((1, 3), bool)
    with pytest.raises(ValueError, match="baseline"):
        advantages(g, alive, "mean")
    with pytest.raises(ValueError, match="2 episodes"):
        advantages(g, alive, "leave_one_out")
    with pytest.raises(ValueError, match="values"):
        advantages(g, alive, "value")
