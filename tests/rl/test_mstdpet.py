"""Reward-modulated STDP with an eligibility trace (inference/reinforcement/mstdpet.py).

Oracles: the eligibility-gated deltas against :func:`probsnn.inference.reward_stdp` run by
:func:`probsnn.inference.plasticity.stdp.run_stdp` on the same pre/post trains, and against the
module equation written out in NumPy; the reward signal against hand-computed advantages; the
trainer's step against the deltas of its own episodes.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
import probsnn.rl as rl
from probsnn import kernels
from probsnn.inference.plasticity.stdp import pair_stdp, reward_stdp, run_stdp
from probsnn.inference.reinforcement.mstdpet import (
    balanced_a_minus,
    modulation,
    mstdpet_deltas,
    mstdpet_trainer,
)
from probsnn.inference.reinforcement.policy_gradient import policy_gradient_loss
from probsnn.rl import episodes as rollouts

TWO_STATES = dict(
    transitions=[[[0.8, 0.2], [0.3, 0.7]], [[0.5, 0.5], [0.1, 0.9]]],
    rewards=[[1.0, -0.5], [0.2, 2.0]],
    initial=[0.6, 0.4],
    horizon=5,
)
WINDOW = dict(a_plus=0.7, a_minus=0.4, tau_plus_ms=2.0, tau_minus_ms=5.0, tau_eligibility_ms=3.0)


def tiny_policy(mdp, **options):
    options = dict(n_hidden=3, receptive_fields=2, micro_steps=3, group_size=2) | options
    return rl.SpikingPolicy(mdp.n_states, mdp.n_actions, **options)


def eligibility_oracle(pre, post, reward, dt_ms=1.0):
    """Σ_t r_t e_t of the module equation, by a loop over bins (pre (T, J), post (T, I))."""
    d_plus, d_minus, d_e = (
        np.exp(-dt_ms / WINDOW[name])
        for name in ("tau_plus_ms", "tau_minus_ms", "tau_eligibility_ms")
    )
    x, y = np.zeros(pre.shape[1]), np.zeros(post.shape[1])
    e = np.zeros((pre.shape[1], post.shape[1]))
    total = np.zeros_like(e)
    for pre_t, post_t, r_t in zip(pre, post, reward, strict=True):
        x, y = x * d_plus, y * d_minus
        xi = WINDOW["a_plus"] * np.outer(x, post_t) - WINDOW["a_minus"] * np.outer(pre_t, y)
        e = e * d_e + xi
        total = total + r_t * e
        x, y = x + pre_t, y + post_t
    return total


def test_deltas_are_reward_stdp_on_the_inputs_and_the_networks_spikes():
    """c: input channels (pre) × every neuron (post); w: spikes × spikes within the mask
    (hidden → outputs and hidden → hidden); averaged over the episodes; v and bias untouched."""
    mdp = rl.TabularMDP(**TWO_STATES)
    policy = tiny_policy(mdp, encoding="population", recurrent=True)
    params = policy.init_params(jax.random.key(0), rate=200.0)
    trajectory = rl.rollout(policy, params, mdp, jax.random.key(1), 3)
    n_bins = TWO_STATES["horizon"] * policy.micro_steps
    reward = jax.random.normal(jax.random.key(2), (3, n_bins))
    rule = reward_stdp(**WINDOW)
    deltas = mstdpet_deltas(policy, rule, trajectory, reward)

    spikes = np.asarray(trajectory.records.spikes, np.float32).reshape(3, n_bins, -1)
    inputs = np.asarray(trajectory.records.inputs).reshape(3, n_bins, -1)
    mask = policy.network.connectivity
    zeros_c, zeros_w = np.zeros((policy.n_inputs, policy.n_neurons)), np.zeros(mask.shape)
    by_rule = [
        (run_stdp(rule, zeros_c, x, s, r).w, run_stdp(rule, zeros_w, s, s, r).w * mask)
        for x, s, r in zip(inputs, spikes, np.asarray(reward), strict=True)
    ]
    by_loop = [
        (eligibility_oracle(x, s, r), eligibility_oracle(s, s, r) * mask)
        for x, s, r in zip(inputs, spikes, np.asarray(reward), strict=True)
    ]
    for oracle in (by_rule, by_loop):
        c, w = (np.mean(parts, 0) for parts in zip(*oracle, strict=True))
        np.testing.assert_allclose(deltas.c[..., 0], c, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(deltas.w[..., 0], w, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(deltas.w)[mask]).max() > 0 and np.abs(deltas.c).max() > 0
    np.testing.assert_array_equal(np.asarray(deltas.w)[~mask], 0.0)
    np.testing.assert_array_equal(deltas.v, 0.0)
    np.testing.assert_array_equal(deltas.bias, 0.0)


def hand_trajectory():
    """Three episodes of lengths 2, 3 and 1 with reward 1 per step (H = 3)."""
    alive = np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0]], bool)
    return rollouts.Trajectory(
        None, None, jnp.asarray(alive, jnp.float32), jnp.asarray(alive), None
    )


def test_to_go_signal_is_the_advantage_over_the_other_running_episodes():
    # G = [[2, 1, ·], [3, 2, 1], [1, ·, ·]]; step 0: all run, means of the others 2, 1.5, 2.5;
    # step 1: episodes 0 and 1 run; step 2: episode 1 runs alone -> 0
    advantage = np.array([[0.0, -1.0, 0.0], [1.5, 1.0, 0.0], [-1.5, 0.0, 0.0]])
    expected = advantage / np.sqrt((advantage**2).sum() / 6)  # RMS over the 6 running steps
    r = np.asarray(modulation(hand_trajectory(), 1.0, "to_go", 2))
    np.testing.assert_allclose(r, np.repeat(expected, 2, axis=1), rtol=1e-6)


def test_return_signal_arrives_once_in_the_last_bin_of_each_episode():
    # returns 2, 3, 1: minus the others' mean 2, 1.5, 2.5 -> 0, 1.5, −1.5; RMS over 3 episodes
    r = np.asarray(modulation(hand_trajectory(), 1.0, "return", 2))
    expected = np.zeros((3, 6))
    expected[0, 3], expected[1, 5], expected[2, 1] = 0.0, 1.5, -1.5
    np.testing.assert_allclose(r, expected / np.sqrt(4.5 / 3), rtol=1e-6)
    # discounting: returns 1 + γ, 1 + γ + γ², 1
    gamma = 0.5
    returns = np.array([1.5, 1.75, 1.0])
    advantage = returns - (returns.sum() - returns) / 2
    r = np.asarray(modulation(hand_trajectory(), gamma, "return", 2))
    np.testing.assert_allclose(r[[0, 1, 2], [3, 5, 1]], advantage / np.sqrt(np.mean(advantage**2)))


def test_balanced_window_has_equal_trace_sums():
    a_minus = balanced_a_minus(1.0, 1.0, 20.0, 1.0)
    d_plus, d_minus = np.exp(-1.0), np.exp(-1 / 20)
    np.testing.assert_allclose(a_minus * d_minus / (1 - d_minus), d_plus / (1 - d_plus))
    # so independent trains drift by 0 on average: Σξ over 64 pairs of independent Bernoulli
    # trains, its mean within 4 standard errors of 0 (the initial transient, ≈ −0.1, is far
    # below the error), while the potentiation alone is ≈ T ρ² d₊/(1 − d₊) ≈ 29
    trains = (jax.random.uniform(jax.random.key(0), (2, 64, 5000, 1)) < 0.1).astype(jnp.float32)
    window = dict(a_plus=1.0, tau_plus_ms=1.0, tau_minus_ms=20.0)

    def total(a_minus):
        rule = pair_stdp(a_minus=a_minus, **window)
        run = jax.vmap(lambda x, y: run_stdp(rule, jnp.zeros((1, 1)), x, y).w[0, 0])
        return np.asarray(run(*trains))

    drift, potentiation = total(a_minus), total(0.0)
    assert abs(drift.mean()) < 4 * drift.std(ddof=1) / np.sqrt(64), drift
    np.testing.assert_allclose(potentiation.mean(), 5000 * 0.01 * d_plus / (1 - d_plus), rtol=0.1)


@functools.cache
def small_problem():
    mdp = rl.TabularMDP(**TWO_STATES)
    policy = tiny_policy(mdp)
    trainer = mstdpet_trainer(policy, mdp, n_episodes=4, learning_rate=0.3, **WINDOW)
    return policy, mdp, trainer


@pytest.mark.parametrize("signal", ["to_go", "return"])
def test_trainer_step_adds_the_deltas_of_its_own_episodes(signal):
    mdp = rl.TabularMDP(**TWO_STATES)
    policy = tiny_policy(mdp)
    params = policy.init_params(jax.random.key(0), rate=200.0)
    trainer = mstdpet_trainer(
        policy, mdp, n_episodes=4, learning_rate=0.3, gamma=0.9, signal=signal, **WINDOW
    )
    key = jax.random.key(3)
    state, info = trainer.step(key, trainer.init(params))
    trajectory = rl.rollout(policy, params, mdp, key, 4)
    reward = modulation(trajectory, 0.9, signal, policy.micro_steps)
    deltas = mstdpet_deltas(policy, reward_stdp(**WINDOW), trajectory, reward)
    for field in ps.Params._fields:
        expected = getattr(params, field) + 0.3 * getattr(deltas, field)
        np.testing.assert_allclose(getattr(state.params, field), expected, rtol=1e-5, atol=1e-6)
    returns = np.asarray(rl.episode_returns(trajectory))
    alive = np.asarray(trajectory.alive)
    spikes = np.asarray(trajectory.records.spikes).sum((-1, -2))
    np.testing.assert_allclose(info.loss, -returns.mean(), rtol=1e-6)
    np.testing.assert_allclose(info.mean_return, returns.mean(), rtol=1e-6)
    np.testing.assert_allclose(info.episode_length, alive.sum(-1).mean(), rtol=1e-6)
    np.testing.assert_allclose(info.spikes_per_step, (spikes * alive).sum() / alive.sum(), 1e-6)
    assert int(state.episodes) == 4
    assert float(info.delta_norm) > 0
    np.testing.assert_array_equal(state.params.bias, params.bias)


def test_trainer_is_deterministic_under_the_same_key():
    policy, _, trainer = small_problem()
    state = trainer.init(policy.init_params(jax.random.key(0), rate=200.0))
    a, info_a = trainer.step(jax.random.key(1), state)
    b, info_b = trainer.step(jax.random.key(1), state)
    c, _ = trainer.step(jax.random.key(2), state)
    for x, y in zip(jax.tree.leaves((a, info_a)), jax.tree.leaves((b, info_b)), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.params.c, c.params.c)


def test_default_window_follows_the_policy_gradient_on_cartpole():
    """On one batch of CartPole episodes, with the return signal and an eligibility that keeps
    every pairing, Δθ = (R − b̄) Σ ξ points along REINFORCE's gradient of the same episodes
    with the same advantage: the balanced window's increments estimate the score (module
    docstring; measured over four keys: cosine 0.83–0.88 for w, 0.40–0.48 for c), Florian's
    symmetric window's do not (0.04–0.27, −0.11–0.04)."""
    env = rl.make("cartpole")
    policy = rl.SpikingPolicy.for_environment(env)
    params = policy.init_params(jax.random.key(0))
    trajectory = rl.rollout(policy, params, env, jax.random.key(0), 32, 100)
    reward = modulation(trajectory, 1.0, "return", policy.micro_steps)
    per_episode = reward.sum(1, keepdims=True)
    advantage = jnp.broadcast_to(per_episode, trajectory.alive.shape) * trajectory.alive
    gradient = jax.grad(lambda p: policy_gradient_loss(policy, p, trajectory, advantage))(params)

    def cosines(**window):
        rule = reward_stdp(**window, tau_eligibility_ms=1e9)
        deltas = mstdpet_deltas(policy, rule, trajectory, reward)
        return [
            float(jnp.vdot(getattr(deltas, f), -getattr(gradient, f)))
            / float(jnp.linalg.norm(getattr(deltas, f)) * jnp.linalg.norm(getattr(gradient, f)))
            for f in ("w", "c")
        ]

    balanced = cosines(
        a_plus=1.0,
        a_minus=balanced_a_minus(1.0, 1.0, 20.0, 1.0),
        tau_plus_ms=1.0,
        tau_minus_ms=20.0,
    )
    symmetric = cosines(a_plus=1.0, a_minus=1.0, tau_plus_ms=20.0, tau_minus_ms=20.0)
    assert balanced[0] > 0.7 and balanced[1] > 0.25, balanced
    assert symmetric[0] < balanced[0] - 0.3 and symmetric[1] < balanced[1] - 0.2, symmetric


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, error, words",
    [
        (dict(n_episodes=1), ValueError, "n_episodes"),
        (dict(learning_rate=0.0), ValueError, "learning_rate"),
        (dict(gamma=1.5), ValueError, "gamma"),
        (dict(signal="reward"), ValueError, "signal"),
        (dict(a_plus=-1.0), ValueError, "a_plus"),
        (dict(a_minus=-0.1), ValueError, "a_minus"),
        (dict(tau_plus_ms=0.0), ValueError, "tau_plus_ms"),
        (dict(tau_minus_ms=-1.0), ValueError, "tau_minus_ms"),
        (dict(tau_eligibility_ms=0.0), ValueError, "tau_eligibility_ms"),
        (dict(n_steps=0), ValueError, "n_steps"),
        (dict(learning_rate="fast"), TypeError, "learning_rate"),
    ],
)
def test_trainer_refuses_bad_options(options, error, words):
    mdp = rl.TabularMDP(**TWO_STATES)
    with pytest.raises(error, match=words):
        mstdpet_trainer(tiny_policy(mdp), mdp, **options)


def test_trainer_refuses_other_policies_environments_keys_and_batches():
    mdp = rl.TabularMDP(**TWO_STATES)
    policy = tiny_policy(mdp)
    with pytest.raises(TypeError, match="SpikingPolicy"):
        mstdpet_trainer(rl.MLPPolicy.for_environment(mdp), mdp)
    with pytest.raises(ValueError, match="one-lag synapse basis"):
        mstdpet_trainer(tiny_policy(mdp, synapse_basis=kernels.raw_lags(2)), mdp)
    with pytest.raises(ValueError, match="one-lag input basis"):
        mstdpet_trainer(tiny_policy(mdp, input_basis=kernels.raw_lags(2)), mdp)
    with pytest.raises(TypeError, match="environment"):
        mstdpet_trainer(policy, "cartpole")
    with pytest.raises(ValueError, match="observations of size"):
        mstdpet_trainer(rl.SpikingPolicy(3, 2), mdp)
    policy, _, trainer = small_problem()
    with pytest.raises(TypeError, match=r"probsnn\.Params"):
        trainer.init(rl.MLPPolicy.for_environment(mdp).init_params(jax.random.key(0)))
    state = trainer.init(policy.init_params(jax.random.key(0)))
    with pytest.raises(TypeError, match="key"):
        trainer.step(0, state)
    with pytest.raises(ValueError, match="batch=None"):
        trainer.step(jax.random.key(0), state, jnp.zeros(3))
