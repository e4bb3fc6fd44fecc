"""Spiking policies (probsnn/rl/policy.py) and the MLP reference (probsnn/rl/mlp.py).

Log-probabilities against the network's own likelihood (probsnn.log_likelihood), the encoder
against the receptive-field equation, the decoders against their definitions (statistical tests
with binomial tolerances for the random choices).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
import probsnn.rl as rl

N_DRAWS = 4000

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


def within_binomial(counts, probabilities, n, sigmas=4.0):
    frequency = np.asarray(counts) / n
    p = np.asarray(probabilities)
    return np.all(np.abs(frequency - p) <= sigmas * np.sqrt(p * (1 - p) / n) + 1e-12)


def draw_decoded(policy, spikes, n=N_DRAWS):
    """n decoder draws on the same spikes (M, N): (actions, log-probabilities)."""
    keys = jax.random.split(jax.random.key(0), n)
    spikes = jnp.asarray(spikes, jnp.uint8)
    return jax.vmap(lambda k: policy.decode(spikes, k))(keys)


def spikes_of(policy, outputs, hidden_value=1):
    """A step's spikes (M, N): the given outputs (M, O) and every hidden neuron at hidden_value."""
    outputs = np.asarray(outputs, np.uint8)
    hidden = np.full((outputs.shape[0], policy.n_hidden), hidden_value, np.uint8)
    return np.concatenate([hidden, outputs], 1)


# -- architecture and encoding -----------------------------------------------------------------
@pytest.mark.parametrize("recurrent", [False, True])
def test_network_layout(recurrent):
    policy = rl.SpikingPolicy(
        3, 2, n_hidden=4, group_size=3, receptive_fields=5, recurrent=recurrent
    )
    assert policy.n_neurons == 4 + 2 * 3 and policy.outputs == slice(4, 10)
    assert policy.n_inputs == 3 * 5
    mask = np.asarray(policy.network.connectivity)
    np.testing.assert_array_equal(mask[:4, 4:], True)  # hidden -> outputs
    np.testing.assert_array_equal(mask[4:], False)  # outputs drive nothing
    np.testing.assert_array_equal(mask[:4, :4], recurrent & ~np.eye(4, dtype=bool))


def test_for_environment_sizes_the_policy():
    cartpole = rl.make("cartpole")
    policy = rl.SpikingPolicy.for_environment(cartpole, n_hidden=5)
    assert (policy.n_observations, policy.n_actions, policy.n_hidden) == (4, 2, 5)
    np.testing.assert_array_equal(policy.observation_low, cartpole.observation_low)
    np.testing.assert_array_equal(policy.observation_high, cartpole.observation_high)
    pendulum = rl.SpikingPolicy.for_environment(rl.make("pendulum"))
    assert pendulum.decoder == "population" and pendulum.n_actions is None
    assert pendulum.action_range == (-2.0, 2.0)
    mlp = rl.MLPPolicy.for_environment(rl.make("pendulum"))
    assert mlp.action_range == (-2.0, 2.0) and mlp.n_outputs == 1


def receptive_fields(observation, low, high, n_fields, p_max):
    x = np.clip((observation - low) / (high - low), 0.0, 1.0)
    centres = np.arange(n_fields) / (n_fields - 1)
    return (p_max * np.exp(-0.5 * ((x[:, None] - centres) * (n_fields - 1)) ** 2)).reshape(-1)


def test_rate_encoding_is_the_receptive_field_equation():
    low, high = np.array([-1.0, 0.0]), np.array([1.0, 4.0])
    policy = rl.SpikingPolicy(
        2, 2, observation_low=low, observation_high=high, receptive_fields=4, micro_steps=3
    )
    for observation in ([0.3, 1.0], [-5.0, 9.0], [1.0, 0.0]):  # inside, clipped, at the edges
        expected = receptive_fields(np.asarray(observation), low, high, 4, 0.9)
        got = policy.encode(jnp.asarray(observation, jnp.float32), jax.random.key(0))
        np.testing.assert_allclose(got, np.broadcast_to(expected, (3, 8)), rtol=1e-6)


def test_population_encoding_draws_bernoulli_spikes_of_the_fields():
    policy = rl.SpikingPolicy(2, 2, receptive_fields=3, micro_steps=2, encoding="population")
    observation = jnp.asarray([0.2, 0.9], jnp.float32)
    keys = jax.random.split(jax.random.key(1), N_DRAWS)
    inputs = np.asarray(jax.vmap(lambda k: policy.encode(observation, k))(keys))
    assert set(np.unique(inputs)) <= {0.0, 1.0}
    p = receptive_fields(np.asarray(observation), 0.0, 1.0, 3, 0.9)
    for counts in inputs.sum(0):  # each bin separately
        assert within_binomial(counts, p, N_DRAWS)
    # bins are independent draws
    assert not np.array_equal(inputs[:, 0], inputs[:, 1])


def test_a_recursive_policy_acts_on_trace_states_as_the_ring_buffer_does(mdp):
    """Exponential synapses as a RecursiveBasis (trace states, event-driven) and as its matrix
    (ring buffer): the same rollout for the same key, and the log-probabilities agree."""
    basis = ps.kernels.recursive_exponential([2e-3, 8e-3], 1e-3)
    options = {"n_hidden": 4, "receptive_fields": 2, "micro_steps": 3, "recurrent": True}
    fast = rl.SpikingPolicy.for_environment(mdp, synapse_basis=basis, **options)
    ring = rl.SpikingPolicy.for_environment(mdp, synapse_basis=np.asarray(basis), **options)
    assert fast.network.recursive and not ring.network.recursive
    params = fast.init_params(jax.random.key(0), rate=200.0, weight_scale=2.0)
    first = rl.rollout(fast, params, mdp, jax.random.key(1), 4)
    second = rl.rollout(ring, params, mdp, jax.random.key(1), 4)
    assert 0 < float(first.records.spikes.mean()) < 1
    np.testing.assert_array_equal(first.records.spikes, second.records.spikes)
    np.testing.assert_allclose(
        fast.log_prob(params, first), ring.log_prob(params, second), rtol=1e-5
    )


# -- log-probabilities -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mdp():
    return rl.TabularMDP(**MDP)


@pytest.mark.parametrize("encoding, recurrent", [("rates", False), ("population", True)])
def test_log_prob_is_the_networks_log_likelihood_of_the_spikes(mdp, encoding, recurrent):
    policy = rl.SpikingPolicy.for_environment(
        mdp,
        n_hidden=3,
        receptive_fields=2,
        micro_steps=3,
        group_size=2,
        encoding=encoding,
        recurrent=recurrent,
        inverse_temperature=1.3,
    )
    params = policy.init_params(jax.random.key(0), rate=200.0, weight_scale=2.0)
    trajectory = rl.rollout(policy, params, mdp, jax.random.key(1), 4)
    record = trajectory.records
    b, h, m, n = record.spikes.shape
    assert (b, h, m, n) == (4, 4, 3, policy.n_neurons)
    assert record.inputs.shape == (4, 4, 3, policy.n_inputs)
    spikes = np.asarray(record.spikes).reshape(b, h * m, n)
    inputs = np.asarray(record.inputs, np.float32).reshape(b, h * m, policy.n_inputs)
    assert 0 < spikes.mean() < 1
    per_step = np.asarray(policy.spike_log_prob(params, trajectory))
    assert per_step.shape == (4, 4)
    for episode in range(b):
        expected = ps.log_likelihood(policy.network, params, spikes[episode], inputs[episode])
        np.testing.assert_allclose(per_step[episode].sum(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        policy.log_prob(params, trajectory), per_step + np.asarray(record.action_log_prob), 1e-6
    )
    np.testing.assert_array_equal(
        policy.spike_counts(trajectory), np.asarray(record.spikes).sum((-1, -2))
    )
    # the count decoder's record: log softmax(β n)[a], n the groups' counts over the step
    counts = np.asarray(record.spikes)[..., 3:].reshape(b, h, m, 2, 2).sum((2, 4))
    log_softmax = np.asarray(jax.nn.log_softmax(1.3 * jnp.asarray(counts, jnp.float32)))
    actions = np.asarray(trajectory.actions)[..., None]
    np.testing.assert_allclose(
        record.action_log_prob, np.take_along_axis(log_softmax, actions, -1)[..., 0], 1e-5, 1e-6
    )
    if encoding == "rates":  # noiseless: the fields of the observation, in every bin
        fields = [
            receptive_fields(np.asarray(o), 0.0, 1.0, 2, 0.9)
            for o in np.asarray(trajectory.observations).reshape(-1, 3)
        ]
        np.testing.assert_allclose(
            np.asarray(record.inputs).reshape(b * h, m, -1)[:, 0], fields, rtol=1e-6
        )
    else:
        assert set(np.unique(record.inputs)) <= {0.0, 1.0}


def test_mlp_log_prob_is_the_log_softmax_of_its_forward_pass(mdp):
    policy = rl.MLPPolicy.for_environment(mdp, n_hidden=4)
    rng = np.random.default_rng(0)
    params = rl.MLPParams(
        *(jnp.asarray(rng.normal(size=s), jnp.float32) for s in [(3, 4), (4,), (4, 2), (2,)])
    )
    trajectory = rl.rollout(policy, params, mdp, jax.random.key(2), 8)
    x = 2.0 * np.asarray(trajectory.observations) - 1.0  # ranges [0, 1] -> [-1, 1]
    logits = np.tanh(x @ params.w1 + params.b1) @ params.w2 + params.b2
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_p, np.asarray(trajectory.actions)[..., None], -1)[..., 0]
    np.testing.assert_allclose(policy.log_prob(params, trajectory), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(policy.spike_counts(trajectory), 0)


# -- decoders ----------------------------------------------------------------------------------
def test_count_decoder_draws_softmax_of_beta_counts():
    policy = rl.SpikingPolicy(
        2, 3, n_hidden=2, micro_steps=2, group_size=2, inverse_temperature=0.7
    )
    # group spike counts over the step: 3, 1, 0 (hidden spikes do not count)
    outputs = [[1, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0]]
    actions, log_probs = draw_decoded(policy, spikes_of(policy, outputs))
    expected = np.asarray(jax.nn.log_softmax(0.7 * jnp.array([3.0, 1.0, 0.0])))
    assert within_binomial(np.bincount(actions, minlength=3), np.exp(expected), N_DRAWS)
    np.testing.assert_allclose(log_probs, expected[np.asarray(actions)], rtol=1e-6)


FIRST = rl.SpikingPolicy(2, 3, n_hidden=1, micro_steps=3, group_size=2, decoder="first")


@pytest.mark.parametrize(
    "outputs, winners",
    [
        # group 2 fires in bin 0, group 0 only in bin 1: group 2 wins alone
        ([[0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], [2]),
        # groups 0 and 1 tie in bin 1 (either neuron of a group counts)
        ([[0, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]], [0, 1]),
        # silence: all groups
        ([[0] * 6] * 3, [0, 1, 2]),
    ],
)
def test_first_to_spike_picks_the_earliest_group_ties_uniformly(outputs, winners):
    actions, log_probs = draw_decoded(FIRST, spikes_of(FIRST, outputs))
    p = np.zeros(3)
    p[winners] = 1.0 / len(winners)
    counts = np.bincount(actions, minlength=3)
    assert within_binomial(counts, p, N_DRAWS)
    np.testing.assert_array_equal(counts[p == 0], 0)
    np.testing.assert_allclose(log_probs, -np.log(len(winners)), rtol=1e-6)


def test_first_to_spike_in_rollouts(mdp):
    policy = rl.SpikingPolicy.for_environment(
        mdp, n_hidden=1, micro_steps=2, group_size=1, decoder="first"
    )
    params = policy.init_params(jax.random.key(0), rate=300.0)
    trajectory = rl.rollout(policy, params, mdp, jax.random.key(5), 32)
    out = np.asarray(trajectory.records.spikes)[..., 1:]  # (B, H, M, A)
    first = np.where(out.any(2), out.argmax(2), 2)
    winners = first == first.min(-1, keepdims=True)
    actions = np.asarray(trajectory.actions)
    assert np.all(np.take_along_axis(winners, actions[..., None], -1))
    np.testing.assert_allclose(
        trajectory.records.action_log_prob, -np.log(winners.sum(-1)), rtol=1e-6
    )
    assert np.any(winners.sum(-1) > 1) and np.any(winners.sum(-1) == 1)


def test_population_decoder_gives_the_count_weighted_preferred_value():
    policy = rl.SpikingPolicy(
        2, action_range=(-2.0, 2.0), decoder="population", n_outputs=5, n_hidden=2, micro_steps=2
    )
    preferred = np.linspace(-2.0, 2.0, 5)
    outputs = np.array([[1, 0, 0, 1, 0], [1, 0, 0, 0, 1]])
    counts = outputs.sum(0)
    action, log_prob = policy.decode(jnp.asarray(spikes_of(policy, outputs), jnp.uint8), None)
    np.testing.assert_allclose(action, counts @ preferred / counts.sum(), rtol=1e-6)
    assert float(log_prob) == 0.0
    silent, _ = policy.decode(jnp.asarray(spikes_of(policy, np.zeros((2, 5)))), None)
    assert float(silent) == 0.0  # the middle of the range


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, options, words",
    [
        ((4, 2), dict(decoder="population"), "population"),
        ((4,), dict(action_range=(-1.0, 1.0), decoder="count"), "discrete action"),
        ((4,), dict(action_range=(-1.0, 1.0), decoder="first"), "discrete action"),
        ((4,), dict(action_range=(1.0, -1.0), decoder="population"), "low < high"),
        ((4, 1), {}, "n_actions"),
        ((0, 2), {}, "n_observations"),
        ((4, 2), dict(decoder="softmax"), "decoder"),
        ((4, 2), dict(encoding="spikes"), "encoding"),
        ((4, 2), dict(receptive_fields=1), "receptive_fields"),
        ((4, 2), dict(micro_steps=0), "micro_steps"),
        ((4, 2), dict(group_size=0), "group_size"),
        ((4, 2), dict(n_hidden=-1), "n_hidden"),
        ((4, 2), dict(max_probability=1.0), "max_probability"),
        ((4, 2), dict(inverse_temperature=0.0), "inverse_temperature"),
        ((4, 2), dict(observation_low=np.zeros(3)), "observation_low"),
        ((2, 2), dict(observation_low=[0.0, 1.0], observation_high=[1.0, 1.0]), "below"),
    ],
)
def test_policy_refuses_bad_options(args, options, words):
    with pytest.raises((ValueError, TypeError), match=words):
        rl.SpikingPolicy(*args, **options)


def test_action_spaces_the_decoder_cannot_serve():
    with pytest.raises(ValueError, match="decoder='count' serves a discrete action"):
        rl.SpikingPolicy.for_environment(rl.make("pendulum"), decoder="count")
    with pytest.raises(ValueError, match="decoder='population' serves a continuous action"):
        rl.SpikingPolicy.for_environment(rl.make("cartpole"), decoder="population")
    with pytest.raises(ValueError, match="n_actions"):
        rl.MLPPolicy(3, 2, action_range=(0.0, 1.0))


@pytest.mark.parametrize("kind", ["spiking", "mlp"])
@pytest.mark.parametrize("shape", [(1,), (4,), (3, 1), (2, 3)])
def test_act_refuses_observations_of_the_wrong_shape(kind, shape):
    if kind == "spiking":
        policy = rl.SpikingPolicy(3, 2, n_hidden=2, receptive_fields=2, micro_steps=2)
    else:
        policy = rl.MLPPolicy(3, 2, n_hidden=2)
    params = policy.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match=r"observation.*3"):
        policy.act(params, policy.initial_carry(), jnp.zeros(shape), jax.random.key(1))


def test_init_params_refuses_integer_keys():
    with pytest.raises(TypeError, match="PRNG key"):
        rl.SpikingPolicy(3, 2).init_params(0)
    with pytest.raises(TypeError, match="PRNG key"):
        rl.MLPPolicy(3, 2).init_params(0)
