"""The sampler: calibration, reproducibility, independence, inputs, bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from conftest import make_network, random_inputs


def test_sampling_is_calibrated():
    """Given the history, spikes are Bernoulli(σ(u)): binned frequencies match predictions."""
    spec = make_network("dense", 8)
    params = spec.init_params(jax.random.key(0), rate=80.0, weight_scale=2.0)
    spikes = ps.sample(spec, params, jax.random.key(1), 4000, n_trials=4)
    p = np.asarray(jax.nn.sigmoid(ps.potentials(spec, params, spikes))).ravel()
    s = np.asarray(spikes, np.float64).ravel()
    # Overall: Σ s − Σ p is a sum of independent centred terms with variance Σ p(1 − p).
    z = (s.sum() - p.sum()) / np.sqrt(np.sum(p * (1 - p)))
    assert abs(z) < 4
    # Per decile of predicted probability.
    edges = np.quantile(p, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for b in range(10):
        sel = which == b
        z = (s[sel].sum() - p[sel].sum()) / np.sqrt(np.sum(p[sel] * (1 - p[sel])))
        assert abs(z) < 4.5, (b, z)


def test_same_key_same_spikes_different_keys_differ_and_dtype():
    spec = make_network("feedforward")
    params = spec.init_params(jax.random.key(0), rate=100.0)
    a = ps.sample(spec, params, jax.random.key(7), 500, n_trials=2)
    b = ps.sample(spec, params, jax.random.key(7), 500, n_trials=2)
    c = ps.sample(spec, params, jax.random.key(8), 500, n_trials=2)
    assert a.dtype == jnp.uint8 and a.shape == (2, 500, 5)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.any(np.asarray(a) != np.asarray(c))
    single = ps.sample(spec, params, jax.random.key(7), 500)
    assert single.shape == (500, 5)


def test_trials_are_independent():
    """An uncoupled network at p = 0.2: trial-to-trial correlation of the same bin is ~0."""
    spec = make_network("dense", 4)
    params = spec.init_params(jax.random.key(0), weight_scale=0.0, refractory=0.0, rate=200.0)
    spikes = np.asarray(ps.sample(spec, params, jax.random.key(3), 5000, n_trials=2), float)
    r = np.corrcoef(spikes[0].ravel(), spikes[1].ravel())[0, 1]
    assert abs(r) < 4 / np.sqrt(spikes[0].size)
    # and each trial fires at σ(bias) = 0.2 within 4 binomial standard errors
    for trial in spikes:
        assert abs(trial.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / trial.size)


def test_inputs_shared_or_per_trial_and_potentials_returned():
    spec = make_network("inputs")
    params = spec.init_params(jax.random.key(0), rate=50.0)
    shared = random_inputs(spec, jax.random.key(1), 300)
    spikes, u = ps.sample(
        spec, params, jax.random.key(2), 300, n_trials=3, inputs=shared, return_potentials=True
    )
    per_trial = jnp.broadcast_to(shared, (3, 300, 2))
    spikes2 = ps.sample(spec, params, jax.random.key(2), 300, n_trials=3, inputs=per_trial)
    np.testing.assert_array_equal(np.asarray(spikes), np.asarray(spikes2))
    np.testing.assert_allclose(
        np.asarray(ps.potentials(spec, params, spikes, shared)), np.asarray(u), atol=2e-5
    )


def test_state_memory_does_not_grow_with_time():
    spec = make_network("dense")
    state = ps.init_state(spec)
    assert state.spikes.shape == (spec.n_lags, spec.n_neurons)


def test_sampler_bad_arguments():
    spec = make_network("inputs")
    params = spec.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match="inputs of shape"):
        ps.sample(spec, params, jax.random.key(0), 10)
    with pytest.raises(ValueError, match="inputs must have shape"):
        ps.sample(spec, params, jax.random.key(0), 10, n_trials=2, inputs=jnp.zeros((3, 10, 2)))
    with pytest.raises(ValueError, match="n_steps"):
        ps.sample(spec, params, jax.random.key(0), 0, inputs=jnp.zeros((0, 2)))
    with pytest.raises(TypeError, match="n_trials"):
        ps.sample(spec, params, jax.random.key(0), 10, n_trials=2.5, inputs=jnp.zeros((10, 2)))


def test_sampler_compiles_once_per_spec_and_size():
    from probsnn.simulate import _sample

    spec = make_network("sparse_separate_feedback")
    first = spec.init_params(jax.random.key(0))
    second = spec.init_params(jax.random.key(1), rate=30.0)
    ps.sample(spec, first, jax.random.key(2), 64, n_trials=2)
    compiled = _sample._cache_size()
    ps.sample(spec, second, jax.random.key(3), 64, n_trials=2)
    ps.sample(make_network("sparse_separate_feedback"), first, jax.random.key(4), 64, n_trials=2)
    assert _sample._cache_size() == compiled


def test_clamped_sampling_fixes_visible_and_draws_hidden_from_their_conditionals():
    """Hidden neurons 0, 1 feed visible 2..4 only: with the same key, the hidden draws equal the
    free sampler's, the visible neurons equal the clamp, and the returned potentials are those of
    the full raster (so the clamped spikes entered the past)."""
    connectivity = ps.topology.feedforward([2, 3])
    spec = ps.Network(
        5,
        ps.kernels.raised_cosine(3, 1, 8),
        connectivity=connectivity,
        visible=np.array([False, False, True, True, True]),
        dt=1e-3,
    )
    params = spec.init_params(jax.random.key(0), rate=80.0, weight_scale=2.0)
    clamp = jax.random.bernoulli(jax.random.key(1), 0.1, (3, 400, 3)).astype(jnp.uint8)
    free = ps.sample(spec, params, jax.random.key(2), 400, n_trials=3)
    spikes, u = ps.sample(
        spec, params, jax.random.key(2), 400, n_trials=3, clamp=clamp, return_potentials=True
    )
    np.testing.assert_array_equal(np.asarray(spikes[..., 2:]), np.asarray(clamp))
    np.testing.assert_array_equal(np.asarray(spikes[..., :2]), np.asarray(free[..., :2]))
    np.testing.assert_allclose(
        np.asarray(ps.potentials(spec, params, spikes)), np.asarray(u), atol=2e-5
    )
    shared = ps.sample(spec, params, jax.random.key(2), 400, n_trials=3, clamp=clamp[0])
    np.testing.assert_array_equal(np.asarray(shared[0]), np.asarray(spikes[0]))


def test_clamp_bad_shape_and_values():
    spec = ps.Network(3, ps.kernels.raised_cosine(2, 1, 6), visible=np.array([True, False, True]))
    params = spec.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match="clamp must have 2 neurons"):
        ps.sample(spec, params, jax.random.key(0), 10, clamp=jnp.zeros((10, 3)))
    with pytest.raises(ValueError, match="clamp must have shape"):
        ps.sample(spec, params, jax.random.key(0), 10, n_trials=2, clamp=jnp.zeros((3, 10, 2)))
    with pytest.raises(ValueError, match="binary"):
        ps.sample(spec, params, jax.random.key(0), 10, clamp=jnp.full((10, 2), 0.5))


def test_the_sampler_is_the_clamped_step_bin_by_bin():
    """``ps.sample`` scans ``ps.step``: the same keys give the same spikes and potentials, with
    and without a clamp, and one bin's ``contract`` of ring traces gives the step's potential."""
    spec = ps.Network(
        4,
        ps.kernels.raised_cosine(2, 1, 5),
        visible=np.array([True, False, True, False]),
        dt=1e-3,
    )
    params = spec.init_params(jax.random.key(0), rate=100.0, weight_scale=2.0)
    n_steps = 30
    clamp = jax.random.bernoulli(jax.random.key(3), 0.3, (2, n_steps, 2)).astype(jnp.uint8)
    full_clamp = jnp.zeros((2, n_steps, 4), jnp.uint8).at[..., [0, 2]].set(clamp)
    for given in (None, clamp):
        spikes, u = ps.sample(
            spec, params, jax.random.key(1), n_steps, 2, clamp=given, return_potentials=True
        )
        state = ps.init_state(spec, (2,))
        for t, key in enumerate(jax.random.split(jax.random.key(1), n_steps)):
            clamp_t = None if given is None else full_clamp[:, t]
            x = ps.glm.ring_traces(spec, state)
            state, (spikes_t, u_t) = ps.step(spec, params, state, key, clamp_t=clamp_t)
            np.testing.assert_array_equal(np.asarray(spikes_t), np.asarray(spikes[:, t]))
            np.testing.assert_allclose(np.asarray(u_t), np.asarray(u[:, t]), atol=1e-5)
            one_bin = ps.glm.contract(spec, params, x)
            np.testing.assert_allclose(np.asarray(one_bin), np.asarray(u_t), atol=1e-5)
        if given is not None:
            np.testing.assert_array_equal(np.asarray(spikes[..., [0, 2]]), np.asarray(clamp))
