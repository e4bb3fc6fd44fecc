"""Winner-take-all units: probabilities, the C = 1 reduction, the parallel/sequential agreement,
the sampler's calibration and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from conftest import make_network, numpy_rng
from probsnn import kernels, topology, wta


def _coupled_network(n_symbols=3):
    """Four units, two input channels, a feedback basis of its own, recurrent layers."""
    return wta.WTANetwork(
        4,
        n_symbols,
        kernels.raised_cosine(3, 1, 8),
        feedback_basis=kernels.exponential([0.002, 0.01], 12, 1e-3),
        input_basis=kernels.raw_lags(3),
        n_inputs=2,
        connectivity=topology.layered_recurrent([2, 2]),
        dt=1e-3,
    )


def _as_wta(spec: ps.Network) -> wta.WTANetwork:
    return wta.WTANetwork(
        spec.n_neurons,
        1,
        spec.synapse_basis,
        feedback_basis=spec.feedback_basis,
        input_basis=spec.input_basis,
        n_inputs=spec.n_inputs,
        dt=spec.dt,
        connectivity=spec.connectivity,
        visible=spec.visible,
    )


def _as_wta_params(params: ps.Params) -> wta.WTAParams:
    return wta.WTAParams(
        w=params.w[:, None, :, None, :],
        v=params.v[:, None, None, :],
        c=params.c[:, :, None, :],
        bias=params.bias[:, None],
    )


def test_probabilities_sum_to_one_and_log_probs_are_exact_for_any_potential():
    u = jnp.array(
        [[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [1e30, 0.0, -1e30], [-1e30] * 3, [1e4, 1e4, -5.0]]
    )
    probs = np.asarray(wta.symbol_probabilities(u), np.float64)
    assert probs.shape == (5, 4) and np.all(np.isfinite(probs)) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    moderate = np.array([1.0, -2.0, 0.5])
    closed_form = np.exp(np.r_[0.0, moderate]) / (1 + np.exp(moderate).sum())
    np.testing.assert_allclose(probs[1], closed_form, rtol=1e-6)
    np.testing.assert_allclose(probs[2], [0, 1, 0, 0], atol=0)
    np.testing.assert_allclose(probs[3], [1, 0, 0, 0], atol=0)
    np.testing.assert_allclose(probs[4], [0, 0.5, 0.5, 0], atol=1e-7)
    every_outcome = wta.one_hot(jnp.arange(4), 3)  # silence, symbol 1, 2, 3
    log_p = np.asarray(wta.wta_log_prob(every_outcome[None], u[:, None]))  # (5, 4)
    assert np.all(np.isfinite(log_p))
    np.testing.assert_allclose(log_p[1], np.log(closed_form), rtol=1e-6)
    np.testing.assert_allclose(log_p[2], [-1e30, 0.0, -1e30, -2e30], rtol=1e-6)
    np.testing.assert_allclose(log_p[3], [0.0, -1e30, -1e30, -1e30], rtol=1e-6)
    np.testing.assert_allclose(log_p[4, 1], -np.log(2.0), rtol=1e-6)


def test_one_hot_and_symbols_round_trip():
    symbols = jnp.array([[0, 1, 3], [2, 0, 0]])
    spikes = wta.one_hot(symbols, 3)
    assert spikes.dtype == jnp.uint8 and spikes.shape == (2, 3, 3)
    np.testing.assert_array_equal(spikes.sum(-1), symbols > 0)
    np.testing.assert_array_equal(wta.to_symbols(spikes), symbols)


@pytest.mark.parametrize("kind", ["inputs", "sparse_separate_feedback"])
def test_one_symbol_is_the_binary_glm(kind, x64):
    """C = 1: the same initial parameters, potentials and log-likelihood as probsnn.glm."""
    spec = make_network(kind)
    unit_spec = _as_wta(spec)
    key = jax.random.key(0)
    params = spec.init_params(key, rate=40.0, dtype=jnp.float64)
    same_init = unit_spec.init_params(key, rate=40.0, dtype=jnp.float64)
    for name in wta.WTAParams._fields:
        np.testing.assert_allclose(
            getattr(same_init, name), getattr(_as_wta_params(params), name), rtol=1e-12
        )
    rng = numpy_rng(1)
    inputs = None if spec.n_inputs == 0 else rng.normal(size=(3, 60, spec.n_inputs))
    spikes = jnp.asarray(rng.random((3, 60, spec.n_neurons)) < 0.2, jnp.float64)
    unit_params = _as_wta_params(params)
    expected = ps.log_likelihood(spec, params, spikes, inputs)
    got = wta.log_likelihood(unit_spec, unit_params, spikes[..., None], inputs)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(
        wta.potentials(unit_spec, unit_params, spikes[..., None], inputs)[..., 0],
        ps.potentials(spec, params, spikes, inputs),
        rtol=1e-10,
        atol=1e-10,
    )


def test_sampler_is_calibrated_and_agrees_with_the_parallel_potentials():
    """The sampler's potentials equal the parallel ones on its own spikes, and every outcome's
    count minus the sum of its probabilities (silence included) is a martingale with variance
    Σ p(1 − p): each z-score lies within 4."""
    spec = _coupled_network()
    params = spec.init_params(jax.random.key(3), rate=200.0, weight_scale=2.0)
    params = params._replace(bias=params.bias + jnp.array([0.0, 1.0, -1.0]))  # unequal symbols
    inputs = jax.random.normal(jax.random.key(4), (200, 2))
    spikes, sampled_u = wta.sample(
        spec, params, jax.random.key(5), 200, 400, inputs, return_potentials=True
    )
    assert spikes.shape == (400, 200, 4, 3) and spikes.dtype == jnp.uint8
    assert int(spikes.sum(-1).max()) == 1
    u = wta.potentials(spec, params, spikes, inputs)
    np.testing.assert_allclose(u, sampled_u, atol=1e-4)
    probs = wta.symbol_probabilities(u)
    outcomes = jnp.concatenate([1 - spikes.sum(-1, keepdims=True), spikes], -1)
    excess = np.asarray(jnp.sum(outcomes - probs, axis=(0, 1)), np.float64)
    variance = np.asarray(jnp.sum(probs * (1 - probs), axis=(0, 1)), np.float64)
    z = excess / np.sqrt(variance)
    assert np.all(np.abs(z) < 4), z
    assert np.all(np.asarray(spikes.sum((0, 1))) > 100)  # every symbol of every unit is used


def test_clamped_sampling_keeps_the_visible_units():
    visible = np.array([True, False, True])
    spec = wta.WTANetwork(3, 2, kernels.raised_cosine(2, 1, 5), visible=visible)
    params = spec.init_params(jax.random.key(0), rate=300.0)
    clamp = wta.one_hot(jax.random.randint(jax.random.key(1), (5, 40, 2), 0, 3), 2)
    spikes = wta.sample(spec, params, jax.random.key(2), 40, 5, clamp=clamp)
    np.testing.assert_array_equal(spikes[:, :, [0, 2]], clamp)
    assert 0 < int(spikes[:, :, 1].sum()) < 5 * 40


def test_bad_input_raises_clear_errors():
    basis = kernels.raised_cosine(2, 1, 5)
    with pytest.raises(ValueError, match="n_symbols must be >= 1"):
        wta.WTANetwork(3, 0, basis)
    with pytest.raises(TypeError, match="n_symbols must be an integer"):
        wta.WTANetwork(3, 2.0, basis)
    with pytest.raises(ValueError, match="connectivity must have a False diagonal"):
        wta.WTANetwork(2, 2, basis, connectivity=np.ones((2, 2), bool))
    spec = wta.WTANetwork(3, 2, basis)
    params = spec.init_params(jax.random.key(0))
    good = np.zeros((10, 3, 2), np.uint8)
    two_at_once = good.copy()
    two_at_once[4, 1] = 1
    with pytest.raises(ValueError, match=r"one-hot .* found 2 symbols at index \(4, 1\)"):
        wta.log_likelihood(spec, params, two_at_once)
    not_binary = good.copy()
    not_binary[0, 0, 0] = 2
    with pytest.raises(ValueError, match="spikes must be binary"):
        wta.log_likelihood(spec, params, not_binary)
    with pytest.raises(ValueError, match="2 neurons on its last axis"):
        wta.log_likelihood(spec, params, np.zeros((10, 3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(..., T, 3, 2\)"):
        wta.log_likelihood(spec, params, np.zeros((10, 4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"params\.bias must have shape"):
        wta.log_likelihood(spec, params._replace(bias=jnp.zeros(3)), good)
    with pytest.raises(TypeError, match="WTAParams"):
        wta.log_likelihood(spec, ps.Params(*params), good)
    with pytest.raises(ValueError, match="inputs were given"):
        wta.log_likelihood(spec, params, good, inputs=np.zeros((10, 1)))
    with pytest.raises(ValueError, match="clamp must have shape"):
        wta.sample(spec, params, jax.random.key(0), 10, 2, clamp=np.zeros((9, 3, 2), np.uint8))
    with pytest.raises(ValueError, match=r"symbols must lie in 0\.\.2"):
        wta.one_hot(jnp.array([0, 3]), 2)
    with pytest.raises(TypeError, match="symbols must be integers"):
        wta.one_hot(jnp.array([0.0, 1.0]), 2)
