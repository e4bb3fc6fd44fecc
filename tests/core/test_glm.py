"""Potentials, log-likelihood and their agreement with the sequential form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from conftest import NETWORK_KINDS, make_network, random_inputs
from probsnn import kernels
from probsnn.glm import init_state, step


def reference_potentials(spec, params, spikes, inputs):
    """Plain numpy double loops over the module equation (independent of filter/contract)."""
    spikes = np.asarray(spikes, np.float64)
    n_steps = spikes.shape[0]
    w = np.asarray(spec.coupling_kernels(params), np.float64)  # (pre, post, L)
    v = np.asarray(spec.feedback_kernels(params), np.float64)
    u = np.tile(np.asarray(params.bias, np.float64), (n_steps, 1))
    for t in range(n_steps):
        for lag in range(1, w.shape[2] + 1):
            if t - lag >= 0:
                u[t] += spikes[t - lag] @ w[:, :, lag - 1]
        for lag in range(1, v.shape[1] + 1):
            if t - lag >= 0:
                u[t] += spikes[t - lag] * v[:, lag - 1]
        if spec.n_inputs:
            c = np.asarray(spec.input_kernels(params), np.float64)
            for lag in range(1, c.shape[2] + 1):
                if t - lag >= 0:
                    u[t] += np.asarray(inputs, np.float64)[t - lag] @ c[:, :, lag - 1]
    return u


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_parallel_potentials_equal_a_double_loop(kind):
    spec = make_network(kind)
    params = spec.init_params(jax.random.key(1), rate=50.0)
    inputs = random_inputs(spec, jax.random.key(2), 80)
    spikes = ps.sample(spec, params, jax.random.key(3), 80, inputs=inputs)
    expected = reference_potentials(spec, params, spikes, inputs)
    got = ps.potentials(spec, params, spikes, inputs)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_parallel_log_likelihood_equals_the_sequential_one(kind):
    spec = make_network(kind)
    params = spec.init_params(jax.random.key(4), rate=40.0)
    inputs = random_inputs(spec, jax.random.key(5), 150, n_trials=3)
    spikes, u_sampled = ps.sample(
        spec, params, jax.random.key(6), 150, n_trials=3, inputs=inputs, return_potentials=True
    )
    u_parallel = ps.potentials(spec, params, spikes, inputs)
    np.testing.assert_allclose(np.asarray(u_parallel), np.asarray(u_sampled), atol=2e-5)

    # The public step, scanned over the observed spikes of each trial.
    @jax.jit
    def scan_trial(spikes_trial, inputs_trial):
        def body(state, xs):
            s_t, in_t = xs
            new_state, (_, u) = step(spec, params, state, jax.random.key(0), in_t)
            new_state = new_state._replace(
                spikes=state.spikes.at[state.t % spec.n_lags].set(s_t.astype(jnp.float32))
            )
            return new_state, jnp.sum(ps.bernoulli_log_prob(s_t, u))

        _, ll = jax.lax.scan(body, init_state(spec), (spikes_trial, inputs_trial))
        return jnp.sum(ll)

    sequential = sum(scan_trial(spikes[r], None if inputs is None else inputs[r]) for r in range(3))
    parallel = ps.log_likelihood(spec, params, spikes, inputs)
    assert float(parallel) == pytest.approx(float(sequential), rel=1e-5)


def test_log_likelihood_is_finite_and_exact_for_huge_potentials(x64):
    spec = ps.Network(2, kernels.raw_lags(1), dt=1e-3)
    spikes = jnp.array([[1, 0], [0, 1], [1, 1]], jnp.float64)
    for bias, expected in ((1e4, -1e4 * 3), (-1e4, -1e4 * 3)):
        params = spec.init_params(jax.random.key(0), weight_scale=0.0, refractory=0.0)
        params = params._replace(bias=jnp.array([bias, -bias]))
        ll = ps.log_likelihood(spec, params, spikes)
        assert np.isfinite(float(ll))
        assert float(ll) == pytest.approx(expected, rel=1e-12)
    # float32, both signs, every spike/potential combination
    u = jnp.array([-1e4, 1e4, -1e4, 1e4], jnp.float32)
    s = jnp.array([0, 1, 1, 0], jnp.float32)
    np.testing.assert_array_equal(np.asarray(ps.bernoulli_log_prob(s, u)), [0, 0, -1e4, -1e4])


def test_gradient_matches_finite_differences(x64):
    spec = make_network("inputs")
    params = jax.tree.map(
        lambda a: jnp.asarray(a, jnp.float64), spec.init_params(jax.random.key(0), rate=60.0)
    )
    inputs = random_inputs(spec, jax.random.key(1), 200).astype(jnp.float64)
    spikes = ps.sample(spec, params, jax.random.key(2), 200, inputs=inputs).astype(jnp.float64)
    grad = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes, inputs))(params)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name in params._fields:
        leaf = getattr(params, name)
        for _ in range(3):
            index = tuple(rng.integers(0, n) for n in leaf.shape)
            if name == "w" and not spec.connectivity[index[0], index[1]]:
                assert float(getattr(grad, name)[index]) == 0.0
                continue
            plus = params._replace(**{name: leaf.at[index].add(eps)})
            minus = params._replace(**{name: leaf.at[index].add(-eps)})
            numeric = (
                ps.log_likelihood(spec, plus, spikes, inputs)
                - ps.log_likelihood(spec, minus, spikes, inputs)
            ) / (2 * eps)
            assert float(getattr(grad, name)[index]) == pytest.approx(float(numeric), abs=1e-6)


def test_bad_spikes_and_shapes_raise_naming_the_argument():
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0))
    good = jnp.zeros((10, 5), jnp.uint8)
    with pytest.raises(ValueError, match="spikes must be binary"):
        ps.log_likelihood(spec, params, good.astype(float).at[2, 1].set(2.0))
    with pytest.raises(ValueError, match=r"spikes must be binary.*NaN"):
        ps.log_likelihood(spec, params, good.astype(float).at[2, 1].set(np.nan))
    with pytest.raises(ValueError, match="spikes must have 5 neurons"):
        ps.log_likelihood(spec, params, jnp.zeros((10, 4)))
    with pytest.raises(ValueError, match=r"spikes must have shape"):
        ps.log_likelihood(spec, params, jnp.zeros(10))
    with pytest.raises(TypeError, match="spikes"):
        ps.log_likelihood(spec, params, jnp.zeros((10, 5), jnp.complex64))
    with pytest.raises(ValueError, match=r"params\.w"):
        ps.log_likelihood(spec, params._replace(w=params.w[:2]), good)
    with pytest.raises(TypeError, match="params"):
        ps.log_likelihood(spec, tuple(params), good)
    with pytest.raises(ValueError, match="inputs were given"):
        ps.log_likelihood(spec, params, good, jnp.zeros((10, 1)))
    with_inputs = make_network("inputs")
    p_in = with_inputs.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match="inputs of shape"):
        ps.log_likelihood(with_inputs, p_in, good)
    with pytest.raises(ValueError, match="inputs must have shape"):
        ps.log_likelihood(with_inputs, p_in, good, jnp.zeros((9, 2)))
    with pytest.raises(ValueError, match="inputs must be finite"):
        ps.log_likelihood(with_inputs, p_in, good, jnp.full((10, 2), jnp.nan))


def _dot_precisions(lowered) -> set[str]:
    """The precision of every dot_general in a lowered program's text."""
    text = lowered.as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert dots, "no matrix product in the program"
    return {line.split("precision = [", 1)[1].split(",")[0] for line in dots}


@pytest.mark.parametrize("kind", ["ring", "dense", "event", "sparse"])
def test_potentials_and_sampler_multiply_at_full_float32_precision(kind):
    """Every product on the path to u asks for precision HIGHEST, whatever JAX's default: GPUs
    otherwise multiply float32 in TF32 (a 10-bit mantissa), which moves u by ~1e-3 of its
    terms and makes the spikes depend on the backend."""
    from probsnn.glm import _potentials
    from probsnn.simulate import _sample

    n = 8
    dt = 1e-3
    recursive = kernels.recursive_exponential([5e-3, 20e-3], dt)
    inputs_basis = kernels.raised_cosine(2, 1, 5)
    if kind == "ring":
        spec = ps.Network(n, kernels.raised_cosine(3, 1, 10), n_inputs=2, input_basis=inputs_basis)
    elif kind == "sparse":
        synapses = ps.topology.fixed_fan_out(n, 3, seed=0)
        spec = ps.SparseNetwork(n, synapses, recursive, dt=dt)
    else:
        spec = ps.Network(n, recursive, n_inputs=2, input_basis=inputs_basis, dt=dt)
    params = spec.init_params(jax.random.key(0), rate=40.0)
    spikes = jnp.zeros((2, 50, n))
    inputs = None if kind == "sparse" else jnp.ones((2, 50, 2))
    propagation = {"ring": "ring", "sparse": "event"}.get(kind, kind)
    targets = getattr(getattr(spec, "synapses", None), "targets", None)
    sampler = _sample.lower(
        spec,
        params,
        jax.random.key(1),
        50,
        2,
        inputs,
        None,
        True,
        propagation,
        4,
        None if targets is None else jnp.asarray(targets),
    )
    assert _dot_precisions(sampler) == {"HIGHEST"}
    if kind != "event":
        method = "recursive" if kind in ("dense", "sparse") else "direct"
        lowered = _potentials.lower(spec, params, spikes, inputs, method)
        assert _dot_precisions(lowered) == {"HIGHEST"}
