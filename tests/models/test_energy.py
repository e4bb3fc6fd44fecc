"""Tests of the layered Hopfield-energy networks (probsnn.models.energy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probsnn.models import energy as em


def _batch(spec, key, batch=4):
    k1, k2, k3 = jax.random.split(key, 3)
    inputs = jax.random.uniform(k1, (batch, spec.n_inputs))
    states = tuple(
        jax.random.uniform(k, (batch, n), minval=0.05, maxval=0.95)
        for k, n in zip(jax.random.split(k2, len(spec.state_sizes)), spec.state_sizes, strict=True)
    )
    targets = jax.nn.one_hot(jax.random.randint(k3, (batch,), 0, spec.n_outputs), spec.n_outputs)
    return inputs, states, targets


def _random_params(spec, key):
    params = em.init_params(spec, key)
    biases = tuple(
        0.3 * jax.random.normal(k, b.shape)
        for k, b in zip(jax.random.split(key, len(params.biases)), params.biases, strict=True)
    )
    return params._replace(biases=biases)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layer_sizes": (4,)}, ValueError, "layer_sizes"),
        ({"layer_sizes": (4, 0, 2)}, ValueError, "layer_sizes"),
        ({"layer_sizes": 4}, TypeError, "layer_sizes"),
        ({"layer_sizes": (4, 2), "activation": "relu"}, ValueError, "activation"),
        ({"layer_sizes": (4, 2), "cost": "hinge"}, ValueError, "cost"),
        ({"layer_sizes": (4, 2), "cost": "cross_entropy"}, ValueError, "hidden"),
    ],
)
def test_network_rejects_bad_description(kwargs, error, match):
    with pytest.raises(error, match=match):
        em.EnergyNetwork(**kwargs)


def test_state_sizes_exclude_the_cross_entropy_readout():
    assert em.EnergyNetwork((4, 6, 5, 3)).state_sizes == (6, 5, 3)
    assert em.EnergyNetwork((4, 6, 5, 3), cost="cross_entropy").state_sizes == (6, 5)
    assert hash(em.EnergyNetwork([4, 6, 3])) == hash(em.EnergyNetwork((4, 6, 3)))


def test_init_params_shapes_and_gain():
    spec = em.EnergyNetwork((7, 5, 3))
    params = em.init_params(spec, jax.random.key(0))
    assert [w.shape for w in params.weights] == [(7, 5), (5, 3)]
    assert [b.shape for b in params.biases] == [(5,), (3,)]
    bound = np.sqrt(6.0 / 12)
    assert float(jnp.max(jnp.abs(params.weights[0]))) <= bound
    half = em.init_params(spec, jax.random.key(0), gain=0.5)
    np.testing.assert_allclose(half.weights[0], 0.5 * params.weights[0], rtol=1e-6)


def test_energy_matches_the_symmetric_hopfield_form():
    """docs/theory.md §7 with one symmetric matrix over all units (inputs clamped): the layered
    energy equals ½Σu² − ½ΣΣ W_ij ρ(u_i)ρ(u_j) − Σ b_i ρ(u_i) minus the constant ½‖x‖²."""
    spec = em.EnergyNetwork((3, 4, 2), activation="sigmoid")
    params = _random_params(spec, jax.random.key(1))
    inputs, states, _ = _batch(spec, jax.random.key(2))
    n = sum(spec.layer_sizes)
    full = np.zeros((n, n))
    full[0:3, 3:7] = params.weights[0]
    full[3:7, 7:9] = params.weights[1]
    full = full + full.T
    bias = np.concatenate([np.zeros(3), params.biases[0], params.biases[1]])
    u = np.concatenate([inputs, *states], axis=1)
    rates = np.concatenate([inputs, jax.nn.sigmoid(states[0]), jax.nn.sigmoid(states[1])], axis=1)
    hopfield = (
        0.5 * np.sum(u**2, 1)
        - 0.5 * np.einsum("bi,ij,bj->b", rates, full, rates)
        - rates @ bias
        - 0.5 * np.sum(np.asarray(inputs) ** 2, 1)
    )
    np.testing.assert_allclose(em.energy(spec, params, inputs, states), hopfield, rtol=1e-5)


@pytest.mark.parametrize("activation", ["hard_sigmoid", "sigmoid", "tanh"])
@pytest.mark.parametrize("cost", ["squared_error", "cross_entropy"])
def test_energy_gradient_is_the_derivative_of_the_energy(activation, cost):
    spec = em.EnergyNetwork((5, 6, 4, 3), activation, cost)
    params = _random_params(spec, jax.random.key(3))
    inputs, states, _ = _batch(spec, jax.random.key(4))
    explicit = em.energy_gradient(spec, params, inputs, states)
    autodiff = jax.grad(lambda s: jnp.sum(em.energy(spec, params, inputs, s)))(states)
    for a, b in zip(explicit, autodiff, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_costs_and_their_gradients():
    spec = em.EnergyNetwork((3, 4, 2))
    params = _random_params(spec, jax.random.key(5))
    _, states, targets = _batch(spec, jax.random.key(6))
    expected = 0.5 * jnp.sum((states[-1] - targets) ** 2, -1)
    np.testing.assert_allclose(em.cost(spec, params, states, targets), expected, rtol=1e-6)
    gradient = em.cost_gradient(spec, params, states, targets)
    np.testing.assert_allclose(gradient[-1], states[-1] - targets, rtol=1e-6)
    np.testing.assert_array_equal(gradient[0], 0.0)

    readout = em.EnergyNetwork((3, 4, 2), cost="cross_entropy")
    params = _random_params(readout, jax.random.key(7))
    _, states, targets = _batch(readout, jax.random.key(8))
    logits = jnp.clip(states[0], 0, 1) @ params.weights[1] + params.biases[1]
    expected = -jnp.sum(targets * jax.nn.log_softmax(logits), -1)
    np.testing.assert_allclose(em.cost(readout, params, states, targets), expected, rtol=1e-6)
    np.testing.assert_array_equal(em.predict(readout, params, states), jnp.argmax(logits, -1))


def test_total_energy_adds_the_nudge():
    spec = em.EnergyNetwork((3, 4, 2))
    params = _random_params(spec, jax.random.key(9))
    inputs, states, targets = _batch(spec, jax.random.key(10))
    total = em.total_energy(spec, params, inputs, states, targets, 0.3)
    expected = em.energy(spec, params, inputs, states) + 0.3 * em.cost(
        spec, params, states, targets
    )
    np.testing.assert_allclose(total, expected, rtol=1e-6)


def test_hard_sigmoid_box_and_slope():
    spec = em.EnergyNetwork((2, 3))
    s = jnp.array([[-0.5, 0.0, 0.5, 1.0, 1.5]])
    np.testing.assert_array_equal(em.hard_sigmoid(s), [[0.0, 0.0, 0.5, 1.0, 1.0]])
    slope = jax.vmap(jax.grad(em.hard_sigmoid))(s[0])
    np.testing.assert_array_equal(slope, [0.0, 1.0, 1.0, 1.0, 0.0])
    (projected,) = em.project(spec, (jnp.array([[-1.0, 0.5, 2.0]]),))
    np.testing.assert_array_equal(projected, [[0.0, 0.5, 1.0]])
    smooth = em.EnergyNetwork((2, 3), activation="tanh")
    (unchanged,) = em.project(smooth, (jnp.array([[-1.0, 0.5, 2.0]]),))
    np.testing.assert_array_equal(unchanged, [[-1.0, 0.5, 2.0]])


def test_check_batch_and_states_name_the_bad_argument():
    spec = em.EnergyNetwork((3, 4, 2))
    good = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 3\)"):
        em.check_batch(spec, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="inputs must be finite"):
        em.check_batch(spec, np.full((5, 3), np.nan))
    with pytest.raises(TypeError, match="inputs must be a real array"):
        em.check_batch(spec, np.zeros((5, 3), complex))
    with pytest.raises(ValueError, match="targets must have the batch size"):
        em.check_batch(spec, good, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="targets must be finite"):
        em.check_batch(spec, good, np.full((5, 2), np.inf))
    with pytest.raises(ValueError, match="states must be a tuple"):
        em.check_states(spec, (np.zeros((5, 4)),), 5)
    with pytest.raises(ValueError, match="states must be finite"):
        em.check_states(spec, (np.zeros((5, 4)), np.full((5, 2), np.nan)), 5)


def test_check_params_names_the_wrong_shape():
    spec = em.EnergyNetwork((3, 4, 2))
    params = em.init_params(spec, jax.random.key(0))
    assert em.check_params(spec, params) is params
    other = em.init_params(em.EnergyNetwork((3, 5, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match=r"params.weights must have shapes \[\(3, 4\), \(4, 2\)\]"):
        em.check_params(spec, other)
    with pytest.raises(ValueError, match=r"params\.biases"):
        em.check_params(spec, params._replace(biases=(params.biases[0], params.biases[0])))
    with pytest.raises(TypeError, match="EnergyParams"):
        em.check_params(spec, tuple(params))
