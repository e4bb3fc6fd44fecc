"""GymnasiumEnvironment and gymnasium_rollout: gymnax's dynamics against gymnasium's, the Python
loop against the compiled rollout, and what a trajectory records."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from probsnn import rl
from probsnn.rl.gymnasium import GymnasiumEnvironment, gymnasium_rollout

gym = pytest.importorskip("gymnasium")

CARTPOLE_X, CARTPOLE_THETA = 2.4, 12 * 2 * np.pi / 360  # gymnasium's termination bounds


def replay(name, fields, seed, actions):
    """Reset gymnasium's ``name`` with ``seed``, copy its state into gymnax's, then step both
    with ``actions`` (an int sequence, or a rule of the gymnasium observation whose choices are
    recorded and replayed in gymnax) until either ends. Returns both sides' observations,
    rewards and done flags, one row per step."""
    env = gym.make(name)
    obs, _ = env.reset(seed=seed)
    gymnax_env = rl.make(name)
    _, state = gymnax_env.reset(jax.random.key(0))
    start = np.asarray(env.unwrapped.state)  # float64 (CartPole) or float32 (Acrobot)
    state = state.replace(**{f: jnp.asarray(float(v)) for f, v in zip(fields, start, strict=True)})
    step = jax.jit(gymnax_env.step)
    theirs, ours = [], []
    for t in range(gymnax_env.max_steps):
        action = actions(obs) if callable(actions) else int(actions[t])
        obs, reward, terminated, truncated, _ = env.step(action)
        theirs.append((obs, reward, terminated or truncated))
        gymnax_obs, state, gymnax_reward, done = step(jax.random.key(t), state, jnp.int32(action))
        ours.append((np.asarray(gymnax_obs), float(gymnax_reward), bool(done)))
        if theirs[-1][2] or ours[-1][2]:
            break
    return theirs, ours


def assert_same_episode(theirs, ours, atol):
    assert len(theirs) == len(ours) and theirs[-1][2] and ours[-1][2]
    for (obs, reward, done), (gymnax_obs, gymnax_reward, gymnax_done) in zip(
        theirs, ours, strict=True
    ):
        np.testing.assert_allclose(gymnax_obs, obs, rtol=0, atol=atol)
        assert gymnax_reward == reward and gymnax_done == done


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_gymnax_and_gymnasium_cartpole_give_the_same_episodes_under_the_same_actions(
    precision, request
):
    # Both integrate the same Euler step; gymnasium in float64 and returns float32 observations.
    # In float32, gymnax rounds each step (relative 6e-8) and the unstable pole amplifies it by
    # about e^{4.4 t/s} (sqrt(g/l)) over the < 1 s these episodes last; measured <= 2.4e-7.
    # In float64 both compute the same numbers: the observations agree to float32 rounding.
    if precision == "float64":
        request.getfixturevalue("x64")
    atol = 1e-5 if precision == "float32" else 1e-7
    fields = ("x", "x_dot", "theta", "theta_dot")
    lengths = []
    for seed in range(5):
        actions = np.random.default_rng(seed).integers(0, 2, 500)
        theirs, ours = replay("CartPole-v1", fields, seed, actions)
        assert_same_episode(theirs, ours, atol)
        lengths.append(len(ours))
    assert min(lengths) > 5  # the episodes ran for a while before the pole fell


def test_gymnax_and_gymnasium_acrobot_give_the_same_episodes_under_the_same_actions(x64):
    # Both take one RK4 step of dt = 0.2 s of the book dynamics. The acrobot is chaotic: in
    # float32 gymnax's rounding grows to ~6e-4 by the end of these episodes (measured), so the
    # comparison runs gymnax in float64, where both compute the same numbers. Random torques
    # rarely swing the tip up within 500 steps; the actions are those of a pumping rule (torque
    # along the second joint's velocity) in gymnasium, replayed in gymnax: episodes of 65-122
    # steps that end by termination.
    fields = ("joint_angle1", "joint_angle2", "velocity_1", "velocity_2")
    for seed in range(5):
        theirs, ours = replay("Acrobot-v1", fields, seed, lambda obs: 2 if obs[5] > 0 else 0)
        assert_same_episode(theirs, ours, atol=1e-6)
        assert len(ours) < 500 and ours[-1][1] == 0.0  # terminated: no step penalty


# -- a deterministic chain: the Python loop must give the compiled rollout's trajectory --------

N_STATES, START, HORIZON = 4, 2, 3
CHAIN_REWARDS = np.random.default_rng(0).normal(size=(N_STATES, 3)).round(2)


class Chain(gym.Env):
    """States 0..3 (observed as 10..13), actions -1 / 0 / +1 move along the chain (clipped),
    state 3 terminates."""

    observation_space = gym.spaces.Discrete(N_STATES, start=10)
    action_space = gym.spaces.Discrete(3, start=-1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = START
        return self.state + 10, {}

    def step(self, action):
        reward = float(CHAIN_REWARDS[self.state, action + 1])
        self.state = min(max(self.state + int(action), 0), N_STATES - 1)
        return self.state + 10, reward, self.state == N_STATES - 1, False, {}


def chain_mdp():
    moves = np.zeros((N_STATES, 3, N_STATES))
    for s in range(N_STATES):
        for a in range(3):
            moves[s, a, min(max(s + a - 1, 0), N_STATES - 1)] = 1.0
    terminal = np.arange(N_STATES) == N_STATES - 1
    return rl.TabularMDP(moves, CHAIN_REWARDS, np.eye(N_STATES)[START], HORIZON, terminal)


def chain_environment(autoreset_mode):
    def make():
        return gym.wrappers.TimeLimit(Chain(), max_episode_steps=HORIZON)

    vector = gym.vector.SyncVectorEnv([make] * 3, autoreset_mode=autoreset_mode)
    return GymnasiumEnvironment(vector, max_steps=HORIZON)


@pytest.mark.parametrize(
    "policy, autoreset_mode",
    [
        pytest.param(
            rl.SpikingPolicy(N_STATES, 3, n_hidden=4, receptive_fields=2, micro_steps=2),
            mode,
            id=f"spiking-{mode}",
        )
        for mode in ("NextStep", "SameStep", "Disabled")
    ]
    + [pytest.param(rl.MLPPolicy(N_STATES, 3, n_hidden=8), "NextStep", id="mlp-NextStep")],
)
def test_rollout_in_a_deterministic_environment_is_the_compiled_rollout(policy, autoreset_mode):
    # The same keys reach the policy in both loops, the chain has no randomness, so every field
    # agrees: 5 episodes in rounds of 3 sub-environments (one padded), 5 steps of which the
    # last 2 follow the 3-step limit (the policy runs on, masked), episodes that reach state 3
    # end by termination, the others by truncation, under each autoreset mode.
    environment = chain_environment(autoreset_mode)
    params = policy.init_params(jax.random.key(3))
    key = jax.random.key(4)
    ours = gymnasium_rollout(policy, params, environment, key, 5, n_steps=HORIZON + 2)
    compiled = rl.rollout(policy, params, chain_mdp(), key, 5, n_steps=HORIZON + 2)
    environment.close()
    lengths = np.asarray(rl.episode_lengths(compiled))
    final = np.asarray(compiled.observations[:, -1]).argmax(-1)  # the state each episode ended in
    assert np.any(final == N_STATES - 1) and np.any(final != N_STATES - 1)  # both endings occur
    assert lengths.max() == HORIZON and lengths.min() < HORIZON
    for name, mine, theirs in zip(
        ("observations", "actions", "rewards", "alive"), ours[:4], compiled[:4], strict=True
    ):
        np.testing.assert_array_equal(mine, theirs, err_msg=name)
    for mine, theirs in zip(
        jax.tree.leaves(ours.records), jax.tree.leaves(compiled.records), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        policy.log_prob(params, ours), policy.log_prob(params, compiled), rtol=1e-5, atol=1e-5
    )


@pytest.fixture(scope="module")
def cartpole_rollout():
    policy = rl.SpikingPolicy.for_environment(rl.make("cartpole"), n_hidden=8)
    params = policy.init_params(jax.random.key(0), rate=200.0)
    environment = GymnasiumEnvironment("CartPole-v1", n_envs=3)
    trajectory = gymnasium_rollout(policy, params, environment, jax.random.key(1), 4, n_steps=60)
    environment.close()
    return policy, params, trajectory


def test_cartpole_attributes_are_the_gymnax_task_s():
    environment = GymnasiumEnvironment("CartPole-v1", n_envs=2)
    gymnax_env = rl.make("cartpole")
    for name in ("n_observations", "n_actions", "continuous", "reward_threshold", "max_steps"):
        assert getattr(environment, name) == getattr(gymnax_env, name), name
    np.testing.assert_array_equal(environment.observation_low, gymnax_env.observation_low)
    np.testing.assert_array_equal(environment.observation_high, gymnax_env.observation_high)
    assert GymnasiumEnvironment(environment.env).n_envs == 2
    environment.close()
    assert GymnasiumEnvironment(gym.make("CartPole-v1")).n_envs == 1


def test_spiking_rollout_records_give_the_network_log_likelihood(cartpole_rollout):
    policy, params, trajectory = cartpole_rollout
    record = trajectory.records
    n_episodes, n_steps = trajectory.rewards.shape
    spike_log_prob = policy.log_prob(params, trajectory) - record.action_log_prob
    for b in range(n_episodes):  # each episode's spikes are one GLM trajectory from an empty past
        spikes = record.spikes[b].reshape(n_steps * policy.micro_steps, policy.n_neurons)
        inputs = record.inputs[b].reshape(n_steps * policy.micro_steps, policy.n_inputs)
        expected = ps.log_likelihood(policy.network, params, spikes, inputs)
        np.testing.assert_allclose(spike_log_prob[b].sum(), expected, rtol=1e-5)
    # the count decoder's action probability, from the spikes of the same step
    out = np.asarray(record.spikes[..., policy.outputs], np.float64)
    counts = out.reshape(*out.shape[:-1], policy.n_actions, policy.group_size).sum((-3, -1))
    logits = policy.inverse_temperature * counts
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    chosen = np.take_along_axis(log_softmax, np.asarray(trajectory.actions)[..., None], -1)
    np.testing.assert_allclose(record.action_log_prob, chosen[..., 0], rtol=1e-5, atol=1e-6)
    assert np.asarray(record.spikes[..., policy.outputs]).any()  # the decoder saw spikes


def test_cartpole_rollout_masks_after_the_pole_falls(cartpole_rollout):
    _, _, trajectory = cartpole_rollout
    alive = np.asarray(trajectory.alive)
    obs = np.asarray(trajectory.observations)
    np.testing.assert_array_equal(trajectory.rewards, alive.astype(np.float32))  # +1 per step
    lengths = alive.sum(1)
    np.testing.assert_array_equal(alive, np.arange(alive.shape[1]) < lengths[:, None])
    assert lengths.max() < alive.shape[1]  # every episode ended within the 60 steps
    for b, length in enumerate(lengths):
        out = (np.abs(obs[b, :, 0]) > CARTPOLE_X) | (np.abs(obs[b, :, 2]) > CARTPOLE_THETA)
        assert not out[:length].any() and out[length]  # the last observation is the fall
        np.testing.assert_array_equal(
            obs[b, length:], np.broadcast_to(obs[b, length], obs[b, length:].shape)
        )


def test_seed_fixes_the_starts_and_the_key_the_rest(cartpole_rollout):
    policy, params, _ = cartpole_rollout
    environment = GymnasiumEnvironment("CartPole-v1", n_envs=3)
    run = [
        gymnasium_rollout(policy, params, environment, jax.random.key(k), 3, n_steps=30, seed=7)
        for k in (1, 1, 2)
    ]
    environment.close()
    for a, b in zip(jax.tree.leaves(run[0]), jax.tree.leaves(run[1]), strict=True):
        np.testing.assert_array_equal(a, b)  # a fixed seed and key: the same trajectory
    np.testing.assert_array_equal(run[0].observations[:, 0], run[2].observations[:, 0])
    assert not np.array_equal(run[0].actions, run[2].actions)  # another key, other actions
    with pytest.raises(ValueError, match="seed must be >= 0"):
        gymnasium_rollout(policy, params, environment, jax.random.key(0), 3, seed=-1)


def test_continuous_actions_reach_pendulum():
    # Pendulum's reward is -(θ² + 0.1 θ'² + 0.001 u²) of the state the action was chosen in and
    # the clipped torque u: an oracle for the action passed as a (n_envs, 1) Box action.
    environment = GymnasiumEnvironment("Pendulum-v1", n_envs=2)
    assert environment.continuous and environment.n_actions is None
    policy = rl.SpikingPolicy(
        3,
        action_range=(environment.action_low, environment.action_high),
        decoder="population",
        observation_low=environment.observation_low,
        observation_high=environment.observation_high,
        n_hidden=0,
    )
    params = policy.init_params(jax.random.key(0), rate=300.0)
    trajectory = gymnasium_rollout(policy, params, environment, jax.random.key(1), 2, n_steps=20)
    environment.close()
    obs, u = np.asarray(trajectory.observations), np.asarray(trajectory.actions)
    assert np.unique(u).size > 5 and np.all(np.abs(u) <= 2.0)
    theta = np.arctan2(obs[..., 1], obs[..., 0])
    expected = -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * u**2)
    np.testing.assert_allclose(trajectory.rewards, expected, rtol=1e-5, atol=1e-5)


class Unbounded(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,))
    action_space = gym.spaces.Discrete(2)


class ShortObservations(gym.vector.SyncVectorEnv):
    def reset(self, **options):
        obs, info = super().reset(**options)
        return obs[:, :3], info


def test_bad_input_is_refused_naming_the_argument(cartpole_rollout):
    policy, params, _ = cartpole_rollout
    with pytest.raises(ValueError, match=r"registered gymnasium id.*'NoSuchTask-v0'"):
        GymnasiumEnvironment("NoSuchTask-v0")
    with pytest.raises(TypeError, match="env_id_or_env must be a gymnasium id"):
        GymnasiumEnvironment(3.5)
    with pytest.raises(ValueError, match="n_envs must be >= 1"):
        GymnasiumEnvironment("CartPole-v1", n_envs=0)
    with pytest.raises(ValueError, match=r"n_envs must be 1 for one gymnasium\.Env"):
        GymnasiumEnvironment(gym.make("CartPole-v1"), n_envs=2)
    with pytest.raises(TypeError, match="make_options"):
        GymnasiumEnvironment(Unbounded, g=9.81)
    with pytest.raises(ValueError, match=r"observation_low is needed.*\[0, 1\]"):
        GymnasiumEnvironment(Unbounded, max_steps=10)
    with pytest.raises(ValueError, match=r"observation_high must have shape \(2,\)"):
        GymnasiumEnvironment(
            Unbounded, max_steps=10, observation_low=[-1, -1], observation_high=[1]
        )
    with pytest.raises(ValueError, match="max_steps is needed"):
        GymnasiumEnvironment(Unbounded, observation_low=[-1, -1], observation_high=[1, 1])
    bounded = GymnasiumEnvironment(
        Unbounded, 2, max_steps=10, observation_low=[-1, -1], observation_high=[1, 1]
    )
    assert (bounded.n_envs, bounded.n_observations, bounded.name) == (2, 2, "Unbounded")

    environment = GymnasiumEnvironment("CartPole-v1", n_envs=2)
    acrobot_policy = rl.SpikingPolicy.for_environment(rl.make("acrobot"))
    acrobot_params = acrobot_policy.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match=r"policy must have n_observations=4.*got 6"):
        gymnasium_rollout(acrobot_policy, acrobot_params, environment, jax.random.key(0), 2)
    with pytest.raises(TypeError, match="GymnasiumEnvironment"):
        gymnasium_rollout(policy, params, rl.make("cartpole"), jax.random.key(0), 2)
    with pytest.raises(TypeError, match=r"jax\.random\.key"):
        gymnasium_rollout(policy, params, environment, 0, 2)
    with pytest.raises(ValueError, match="n_episodes must be >= 1"):
        gymnasium_rollout(policy, params, environment, jax.random.key(0), 0)
    environment.close()
    short = GymnasiumEnvironment(ShortObservations([lambda: gym.make("CartPole-v1")] * 2))
    with pytest.raises(ValueError, match=r"must return observations of 2 x 4 values.*\(2, 3\)"):
        gymnasium_rollout(policy, params, short, jax.random.key(0), 2)
