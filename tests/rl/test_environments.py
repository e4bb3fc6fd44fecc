"""Environments (probsnn/rl/environments.py) and compiled rollouts (probsnn/rl/episodes.py).

Tabular MDPs are checked against their transition and reward tables with binomial tolerances;
rollouts against their contract (determinism under a key, a prefix alive mask, no reward after
the end, a held final observation) and rewards-to-go against a NumPy loop.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn.rl as rl
from probsnn.rl.environments import check_observation

MDP = dict(
    transitions=[
        [[0.6, 0.2, 0.2], [0.1, 0.5, 0.4]],
        [[0.3, 0.6, 0.1], [0.2, 0.2, 0.6]],
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
    ],
    rewards=[[0.5, 1.0], [-1.0, 1.5], [0.0, 0.0]],
    initial=[0.3, 0.7, 0.0],
    horizon=4,
    terminal=np.array([False, False, True]),
)
N_DRAWS = 4000


def within_binomial(counts, probabilities, n, sigmas=4.0):
    """|frequency − p| <= sigmas · sqrt(p (1 − p) / n) for every outcome."""
    frequency = np.asarray(counts) / n
    p = np.asarray(probabilities)
    tolerance = sigmas * np.sqrt(p * (1 - p) / n) + 1e-12
    return np.all(np.abs(frequency - p) <= tolerance)


@pytest.fixture(scope="module")
def mdp():
    return rl.TabularMDP(**MDP)


@pytest.fixture(scope="module")
def cartpole():
    return rl.make("cartpole")


# -- gymnax environments -----------------------------------------------------------------------
def test_make_knows_short_names_and_gymnax_ids(cartpole):
    assert rl.make("CartPole-v1") == cartpole == rl.make("CARTPOLE")
    assert (cartpole.n_observations, cartpole.n_actions, cartpole.continuous) == (4, 2, False)
    assert (cartpole.reward_threshold, cartpole.max_steps) == (475.0, 500)
    assert cartpole.observation_low.shape == cartpole.observation_high.shape == (4,)
    assert np.all(cartpole.observation_low < cartpole.observation_high)
    pendulum = rl.make("pendulum")
    assert pendulum.continuous and pendulum.n_actions is None
    assert (pendulum.action_low, pendulum.action_high) == (-2.0, 2.0)
    assert set(rl.ENVIRONMENTS) == {"cartpole", "acrobot", "mountaincar", "pendulum"}


@pytest.mark.parametrize("name", ["cartpol", "CartPole-v0", ""])
def test_unknown_environment_names_list_the_available_ones(name):
    with pytest.raises(ValueError, match="environment must be one of") as error:
        rl.make(name)
    for known in ("acrobot", "cartpole", "mountaincar", "pendulum", "CartPole-v1"):
        assert known in str(error.value)


def test_non_environments_are_refused():
    with pytest.raises(TypeError, match="environment"):
        rl.check_environment("cartpole")
    with pytest.raises(TypeError, match="environment"):
        rl.SpikingPolicy.for_environment("cartpole")


def test_check_observation():
    assert check_observation(np.zeros(3, int), 3).dtype == jnp.float32
    for shape in ((5, 3), (2,), ()):
        with pytest.raises(ValueError, match=r"observation must have shape \(3,\)"):
            check_observation(np.zeros(shape), 3)
    with pytest.raises(ValueError, match="finite"):
        check_observation(np.array([0.0, np.nan, 1.0]), 3)
    with pytest.raises(TypeError, match="real"):
        check_observation(np.zeros(3, complex), 3)


# -- tabular MDPs ------------------------------------------------------------------------------
def test_tabular_reset_draws_the_initial_distribution(mdp):
    observations, (states, t) = jax.vmap(mdp.reset)(jax.random.split(jax.random.key(0), N_DRAWS))
    np.testing.assert_array_equal(observations, np.eye(3, dtype=np.float32)[states])
    assert np.all(t == 0)
    assert within_binomial(np.bincount(states, minlength=3), MDP["initial"], N_DRAWS)


@pytest.mark.parametrize("state, action", [(0, 0), (0, 1), (1, 1)])
def test_tabular_step_follows_its_tables(mdp, state, action):
    keys = jax.random.split(jax.random.key(state * 2 + action), N_DRAWS)

    def step(key):
        return mdp.step(key, (jnp.int32(state), jnp.int32(0)), jnp.int32(action))

    observations, (nxt, t), reward, done = jax.vmap(step)(keys)
    np.testing.assert_array_equal(observations, np.eye(3, dtype=np.float32)[nxt])
    assert np.all(t == 1)
    np.testing.assert_allclose(reward, MDP["rewards"][state][action])
    assert within_binomial(
        np.bincount(nxt, minlength=3), MDP["transitions"][state][action], N_DRAWS
    )
    np.testing.assert_array_equal(done, nxt == 2)  # only the terminal state ends step 1 of 4


def test_tabular_episodes_end_at_the_horizon(mdp):
    _, (_, _), _, done = mdp.step(jax.random.key(0), (jnp.int32(0), jnp.int32(3)), 0)
    assert bool(done)
    _, (_, _), _, done = mdp.step(jax.random.key(0), (jnp.int32(2), jnp.int32(0)), 0)
    assert bool(done)  # from the terminal state, the only next state is terminal


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(transitions=np.ones((3, 2, 2)) / 2), "transitions must have shape"),
        (dict(transitions=np.ones((3, 1, 3)) / 3), "at least 2 actions"),
        (dict(transitions=np.full((3, 2, 3), 0.5)), "transitions must be probabilities"),
        (dict(rewards=np.zeros((2, 2))), "rewards must have shape"),
        (dict(rewards=[[0.0, np.inf], [0, 0], [0, 0]]), "rewards must be finite"),
        (dict(initial=[0.5, 0.5]), "initial must have shape"),
        (dict(initial=[1.5, -0.5, 0.0]), "initial must be probabilities"),
        (dict(horizon=0), "horizon"),
        (dict(terminal=np.array([0, 0, 1])), "terminal must be a bool"),
        (dict(transitions=np.zeros((3, 2, 3), complex)), "real"),
    ],
)
def test_tabular_mdp_refuses_bad_tables(change, words):
    with pytest.raises((ValueError, TypeError), match=words):
        rl.TabularMDP(**(MDP | change))


# -- rollouts ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def policies(mdp, cartpole):
    """(policy, params, environment) of each kind."""
    spiking = rl.SpikingPolicy.for_environment(mdp, n_hidden=3, micro_steps=2, receptive_fields=2)
    mlp = rl.MLPPolicy.for_environment(mdp, n_hidden=4)
    mlp_params = mlp.init_params(jax.random.key(0))
    mlp_params = mlp_params._replace(w2=jax.random.normal(jax.random.key(1), (4, 2)))
    cart = rl.SpikingPolicy.for_environment(cartpole, n_hidden=4, receptive_fields=3)
    return {
        "spiking": (spiking, spiking.init_params(jax.random.key(0), rate=200.0), mdp),
        "mlp": (mlp, mlp_params, mdp),
        "cartpole": (cart, cart.init_params(jax.random.key(0)), cartpole),
    }


def steps_of(environment):
    return 30 if environment.name == "cartpole" else None


@pytest.mark.parametrize("kind", ["spiking", "mlp", "cartpole"])
def test_rollouts_are_deterministic_under_a_key(policies, kind):
    policy, params, environment = policies[kind]
    n_steps = steps_of(environment)
    first = rl.rollout(policy, params, environment, jax.random.key(7), 64, n_steps)
    again = rl.rollout(policy, params, environment, jax.random.key(7), 64, n_steps)
    other = rl.rollout(policy, params, environment, jax.random.key(8), 64, n_steps)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.actions, other.actions)
    assert not np.array_equal(first.observations, other.observations)
    # episodes in a batch differ from each other too (each has its own key)
    assert len({tuple(np.asarray(a)) for a in first.actions}) > 1


@pytest.mark.parametrize("kind", ["spiking", "mlp", "cartpole"])
def test_rollouts_mask_the_steps_after_the_end(policies, kind):
    policy, params, environment = policies[kind]
    n_steps = steps_of(environment) or environment.max_steps
    trajectory = rl.rollout(policy, params, environment, jax.random.key(3), 64, n_steps)
    observations, rewards, alive = (
        np.asarray(x) for x in (trajectory.observations, trajectory.rewards, trajectory.alive)
    )
    batch, horizon = alive.shape
    assert (batch, horizon) == (64, n_steps) and alive.dtype == np.bool_
    assert trajectory.actions.shape == (64, n_steps)
    lengths = alive.sum(-1)
    np.testing.assert_array_equal(alive, np.arange(horizon) < lengths[:, None])  # a prefix
    assert np.all(lengths >= 1)
    assert np.all(rewards[~alive] == 0.0)
    np.testing.assert_array_equal(rl.episode_lengths(trajectory), lengths)
    np.testing.assert_allclose(rl.episode_returns(trajectory), rewards.sum(-1))
    ended = lengths < horizon
    assert ended.any()  # some episode ended early: the mask was exercised
    for b in np.flatnonzero(ended):  # the final observation is held after the end
        held = observations[b, lengths[b] :]
        np.testing.assert_array_equal(held, np.broadcast_to(held[0], held.shape))
    if environment.name == "cartpole":
        np.testing.assert_array_equal(rewards[alive], 1.0)
    else:
        states = observations.argmax(-1)
        table = np.asarray(MDP["rewards"], np.float32)
        np.testing.assert_allclose(
            rewards[alive], table[states[alive], np.asarray(trajectory.actions)[alive]]
        )
        # an episode ends early only by entering the terminal state
        np.testing.assert_array_equal(states[ended, lengths[ended]], 2)


def test_evaluate_scores_full_episodes(policies):
    policy, params, environment = policies["spiking"]
    scores = rl.evaluate(policy, params, environment, jax.random.key(3), 64)
    trajectory = rl.rollout(policy, params, environment, jax.random.key(3), 64)
    np.testing.assert_array_equal(scores, rl.episode_returns(trajectory))


def rewards_to_go_loop(rewards, alive, gamma):
    out = np.zeros_like(rewards)
    for b in range(rewards.shape[0]):
        g = 0.0
        for t in reversed(range(rewards.shape[1])):
            g = rewards[b, t] + gamma * g if alive[b, t] else 0.0
            out[b, t] = g
    return out


@pytest.mark.parametrize("gamma", [0.0, 0.7, 1.0])
def test_rewards_to_go_against_a_loop(gamma):
    rng = np.random.default_rng(0)
    alive = np.arange(6) < rng.integers(1, 7, size=(5, 1))
    rewards = rng.normal(size=(5, 6)) * alive
    got = rl.rewards_to_go(jnp.asarray(rewards), jnp.asarray(alive), gamma)
    np.testing.assert_allclose(got, rewards_to_go_loop(rewards, alive, gamma), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [-0.1, 1.5, float("nan")])
def test_rewards_to_go_refuses_a_discount_outside_the_unit_interval(gamma):
    with pytest.raises(ValueError, match="gamma"):
        rl.rewards_to_go(jnp.zeros((2, 3)), jnp.ones((2, 3), bool), gamma)


def test_rollout_refuses_bad_input(policies, cartpole):
    policy, params, mdp = policies["spiking"]
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="PRNG key"):
        rl.rollout(policy, params, mdp, 0, 2)
    with pytest.raises(ValueError, match="n_episodes"):
        rl.rollout(policy, params, mdp, key, 0)
    with pytest.raises(ValueError, match="n_steps"):
        rl.rollout(policy, params, mdp, key, 2, 0)
    with pytest.raises(TypeError, match="environment"):
        rl.rollout(policy, params, "tabular", key, 2)
    with pytest.raises(ValueError, match="observations of size"):
        rl.rollout(policy, params, cartpole, key, 2)
    with pytest.raises(ValueError, match="3 actions"):
        rl.rollout(rl.SpikingPolicy(4, 3), None, cartpole, key, 2)
    with pytest.raises(ValueError, match="continuous action"):
        rl.rollout(rl.SpikingPolicy(3, 2), None, rl.make("pendulum"), key, 2)
    mlp, mlp_params, _ = policies["mlp"]
    with pytest.raises(TypeError, match=r"probsnn\.Params"):
        rl.rollout(policy, mlp_params, mdp, key, 2)
    with pytest.raises(TypeError, match="MLPParams"):
        rl.rollout(mlp, params, mdp, key, 2)
    with pytest.raises(ValueError, match=r"params\.bias"):
        rl.rollout(policy, params._replace(bias=params.bias * np.nan), mdp, key, 2)
    with pytest.raises(TypeError, match="PRNG key"):
        rl.evaluate(policy, params, mdp, 0)
