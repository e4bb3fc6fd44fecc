"""Recursive traces and event-driven propagation: equal to the ring buffer and the convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from probsnn import kernels
from probsnn.design import build_design
from probsnn.propagation import init_mode_state, mode_layout, mode_step, mode_weights
from probsnn.simulate import _sample, check_propagation

DT = 1e-3
BASES = {
    "exponential": kernels.recursive_exponential([5e-3, 20e-3, 50e-3], DT),
    "alpha": kernels.recursive_alpha([3e-3, 12e-3], DT),
    "difference": kernels.difference_of_exponentials([1e-3, 2e-3], [6e-3, 25e-3], DT),
    "sum": kernels.RecursiveBasis([0.9, 0.6, 0.97], [[1.0, -0.5, 0.2], [0.0, 1.0, 0.3]]),
}


def _network(basis, n=6, **options):
    return ps.Network(n, basis, dt=DT, **options)


def _params(spec, key=0, rate=40.0, scale=2.0):
    return spec.init_params(jax.random.key(key), rate=rate, weight_scale=scale)


def _recursive_potentials(spec, params, spikes, propagation="event", capacity=2):
    """u of every bin from the recursion, with every neuron clamped to ``spikes`` (B, T, N),
    in the dtype of ``spikes`` (float64 under x64)."""
    dtype = spikes.dtype
    layout, weights = mode_layout(spec), mode_weights(spec, params, dtype)
    state = init_mode_state(spec, (spikes.shape[0],), dtype)
    visible = np.ones(spec.n_neurons, bool)

    def body(state, spikes_t):
        state, (_, u) = mode_step(
            layout,
            weights,
            state,
            jax.random.key(0),
            None,
            spikes_t,
            visible,
            propagation,
            capacity,
        )
        return state, u

    _, u = jax.lax.scan(body, state, jnp.swapaxes(spikes, 0, 1))
    return jnp.swapaxes(u, 0, 1)


@pytest.mark.parametrize("name", sorted(BASES))
def test_recursive_basis_matrix_is_its_response_with_a_tail_below_tolerance(name):
    basis = BASES[name]
    n_basis, n_lags = basis.shape
    assert np.asarray(basis).shape == (n_basis, n_lags)
    long = basis.response(4 * n_lags)
    np.testing.assert_array_equal(long[:, :n_lags], basis.matrix)
    tail = np.abs(long[:, n_lags:]).sum(axis=1)
    assert np.all(tail <= basis.tolerance * np.abs(long).max(axis=1))
    # L is the shortest such window: one lag less violates the closed-form bound
    assert np.any(basis._tail_bound(n_lags - 1) > basis.tolerance * np.abs(long).max(axis=1))


def test_recursive_constructors_match_the_array_bases_and_peaks():
    taus = [5e-3, 50e-3]
    exponential = kernels.recursive_exponential(taus, DT)
    np.testing.assert_allclose(
        exponential.matrix, kernels.exponential(taus, exponential.shape[1], DT), rtol=1e-13
    )
    alpha = kernels.recursive_alpha(taus, DT)
    np.testing.assert_allclose(alpha.matrix, kernels.alpha(taus, alpha.shape[1], DT), rtol=1e-12)
    difference = kernels.difference_of_exponentials([1e-3, 2e-3], [6e-3, 25e-3], DT)
    # sampled on the bin grid, the continuous-time peak of 1 is approached from below
    assert np.all(difference.matrix.max(axis=1) <= 1 + 1e-12)
    assert np.all(difference.matrix.max(axis=1) > 0.97)


@pytest.mark.parametrize("name", sorted(BASES))
def test_recursive_potentials_equal_the_convolution_over_a_long_run(x64, name):
    """20,000 bins at a high rate: the recursion's u equals probsnn.potentials (the causal
    convolution with the matrix) to round-off, with the tail tolerance tightened to 1e-14."""
    basis = BASES[name]
    tight = kernels.RecursiveBasis(basis.decays, basis.mixing, basis.orders, tolerance=1e-14)
    spec = _network(tight)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), _params(spec))
    spikes = jax.random.bernoulli(jax.random.key(3), 0.3, (2, 20_000, 6)).astype(jnp.float64)
    expected = ps.potentials(spec, params, spikes, method="direct")
    for propagation in ("dense", "event"):
        u = _recursive_potentials(spec, params, spikes, propagation)
        np.testing.assert_allclose(u, expected, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", sorted(BASES))
def test_recursive_filtering_equals_the_convolution_within_the_dropped_tail(x64, name):
    """filter_spikes' prefix scan is the infinite kernel; the convolution stops at L lags, so
    they differ by at most the dropped tail Σ_{δ>L}|φ| per spike-free-or-not lag."""
    basis = BASES[name]
    spikes = jax.random.bernoulli(jax.random.key(4), 0.2, (2, 5_000, 3)).astype(jnp.float64)
    recursive = kernels.filter_spikes(spikes, basis, method="recursive")
    direct = kernels.filter_spikes(spikes, np.asarray(basis), method="direct")
    assert recursive.shape == direct.shape == (2, 5_000, 3, basis.n_basis)
    bound = basis._tail_bound(basis.shape[1]) + 1e-12
    assert np.all(np.abs(recursive - direct).max(axis=(0, 1, 2)) <= bound)
    np.testing.assert_array_equal(kernels.filter_spikes(spikes, basis), recursive)
    # float32: round-off relative to the trace's size
    single = kernels.filter_spikes(spikes.astype(jnp.float32), basis)
    np.testing.assert_allclose(single, recursive, rtol=0, atol=2e-6 * np.abs(recursive).max())


def test_recursive_likelihood_and_design_use_the_recursion_where_the_network_has_one():
    """A recursive synapse basis with raised-cosine inputs: method='recursive' filters the
    synapses by the scan and the inputs as 'auto'; potentials, log-likelihood and the design
    agree with the convolution to float32 round-off; array-basis networks refuse it."""
    spec = _network(
        BASES["alpha"],
        n_inputs=2,
        input_basis=kernels.raised_cosine(3, 1, 12),
    )
    params = _params(spec, key=5)
    spikes = jax.random.bernoulli(jax.random.key(6), 0.1, (3, 400, 6))
    inputs = jax.random.normal(jax.random.key(7), (3, 400, 2))
    exact = ps.potentials(spec, params, spikes, inputs, method="direct")
    for method in ("auto", "recursive"):
        u = ps.potentials(spec, params, spikes, inputs, method=method)
        np.testing.assert_allclose(u, exact, rtol=0, atol=5e-5)
    ll = ps.log_likelihood(spec, params, spikes, inputs, method="recursive")
    np.testing.assert_allclose(ll, ps.log_likelihood(spec, params, spikes, inputs), rtol=1e-6)
    design = build_design(spec, spikes, inputs, method="recursive")
    np.testing.assert_allclose(
        design.x, build_design(spec, spikes, inputs, method="direct").x, atol=5e-5
    )
    plain = _network(np.asarray(BASES["alpha"]))
    with pytest.raises(ValueError, match="method='recursive' needs a network"):
        ps.potentials(plain, _params(plain), spikes, method="recursive")
    with pytest.raises(ValueError, match="needs a RecursiveBasis"):
        kernels.filter_spikes(spikes, np.asarray(BASES["alpha"]), method="recursive")


def test_separate_feedback_and_input_bases_and_clamping_match_the_ring_sampler():
    """Alpha synapses, a difference-of-exponentials feedback, raised-cosine inputs, hidden
    neurons clamped: ring, dense and event give the same spikes for the same key and the same
    u to float32 round-off, and u is the potentials of the returned spikes."""
    spec = ps.Network(
        10,
        BASES["alpha"],
        feedback_basis=BASES["difference"],
        input_basis=kernels.raised_cosine(2, 1, 5),
        n_inputs=3,
        dt=DT,
        visible=np.arange(10) < 6,
    )
    params = _params(spec, rate=60.0)
    inputs = jax.random.normal(jax.random.key(5), (2, 3000, 3))
    clamp = jax.random.bernoulli(jax.random.key(6), 0.05, (2, 3000, 6))
    runs = {
        propagation: ps.sample(
            spec,
            params,
            jax.random.key(1),
            3000,
            n_trials=2,
            inputs=inputs,
            clamp=clamp,
            return_potentials=True,
            propagation=propagation,
            capacity=1,
        )
        for propagation in ("ring", "dense", "event")
    }
    ring_spikes, ring_u = runs["ring"]
    assert 0.02 < float(ring_spikes[..., 6:].mean()) < 0.5
    np.testing.assert_array_equal(np.asarray(ring_spikes[..., :6]), np.asarray(clamp))
    for propagation in ("dense", "event"):
        spikes, u = runs[propagation]
        np.testing.assert_array_equal(np.asarray(spikes), np.asarray(ring_spikes))
        np.testing.assert_allclose(u, ring_u, atol=5e-5)
    np.testing.assert_allclose(
        runs["event"][1], ps.potentials(spec, params, runs["event"][0], inputs), atol=5e-5
    )


def test_event_and_dense_propagation_give_identical_spikes_including_overflowing_bins():
    """With capacity 2 per trial some bins overflow to the dense product and some do not; the
    spikes are identical to the dense path's, bin by bin."""
    spec = _network(BASES["exponential"], n=40)
    params = _params(spec, rate=60.0, scale=3.0)
    dense = ps.sample(spec, params, jax.random.key(2), 4000, n_trials=3, propagation="dense")
    event = ps.sample(
        spec, params, jax.random.key(2), 4000, n_trials=3, propagation="event", capacity=2
    )
    np.testing.assert_array_equal(np.asarray(event), np.asarray(dense))
    per_bin = np.asarray(dense, np.int64).sum(axis=(0, 2))
    assert np.any(per_bin > 2 * 3) and np.any((per_bin > 0) & (per_bin <= 2 * 3))


def test_the_recursive_sampler_is_calibrated():
    """Given the history, spikes are Bernoulli(σ(u)) with u from the convolution."""
    spec = _network(BASES["sum"], n=8)
    params = _params(spec, rate=80.0)
    spikes = ps.sample(spec, params, jax.random.key(4), 5000, n_trials=2)
    p = np.asarray(jax.nn.sigmoid(ps.potentials(spec, params, spikes))).ravel()
    s = np.asarray(spikes, np.float64).ravel()
    assert abs((s.sum() - p.sum()) / np.sqrt(np.sum(p * (1 - p)))) < 4


def test_potentials_are_built_only_when_asked():
    spec = _network(BASES["exponential"])
    params = _params(spec)
    for propagation in ("ring", "event"):
        arguments = (spec, params, jax.random.key(0), 500, 4, None, None)
        options = {"propagation": propagation, "capacity": 2, "targets": None}
        lean = _sample.lower(*arguments, full=False, **options).compile().memory_analysis()
        full = _sample.lower(*arguments, full=True, **options).compile().memory_analysis()
        assert lean.output_size_in_bytes == 4 * 500 * 6  # the uint8 spikes alone
        assert full.output_size_in_bytes >= 4 * 500 * 6 * 5  # and the float32 u


def test_sum_of_exponentials_fit_reports_an_error_that_bounds_the_likelihood():
    """A raised-cosine basis fitted by 10 exponentials: the reported l1 error bounds every
    potential's change, so |log p − log p̂| <= Σ_{t,i} Σ_{j,k} |w_{j,i,k}| l1_k (feedback
    included through the diagonal)."""
    exact = kernels.raised_cosine(3, 1, 12)
    fit = kernels.fit_exponentials(exact, DT, n_modes=10)
    assert fit.basis.n_basis == 3 and np.all(fit.max_error < 0.05)
    assert np.all(fit.max_error <= fit.l1_error)
    long = max(exact.shape[1], fit.basis.shape[1])
    truth = np.pad(exact, ((0, 0), (0, long - exact.shape[1])))
    fitted = np.pad(fit.basis.matrix, ((0, 0), (0, long - fit.basis.shape[1])))
    np.testing.assert_allclose(np.abs(truth - fitted).max(axis=1), fit.max_error, rtol=1e-12)
    spec_exact, spec_fit = _network(exact, n=5), _network(fit.basis, n=5)
    params = _params(spec_exact, rate=50.0)
    spikes = ps.sample(spec_exact, params, jax.random.key(8), 3000, n_trials=2)
    gap = abs(
        float(ps.log_likelihood(spec_exact, params, spikes))
        - float(ps.log_likelihood(spec_fit, params, spikes))
    )
    w = (
        np.abs(np.asarray(params.w))
        + np.abs(np.asarray(params.v))[None, :, :] * np.eye(5)[:, :, None]
    )
    per_bin = np.einsum("jik,k->i", w, fit.l1_error).sum()
    bound = spikes.shape[0] * spikes.shape[1] * per_bin
    assert 0 < gap <= bound
    # the bound is not vacuous: a worse fit has a larger error and a larger gap
    coarse = kernels.fit_exponentials(exact, DT, n_modes=3)
    assert np.all(coarse.l1_error > fit.l1_error)


def test_bad_recursive_bases_and_propagation_options_are_refused():
    with pytest.raises(ValueError, match="decays must lie in"):
        kernels.RecursiveBasis([1.0], [[1.0]])
    with pytest.raises(ValueError, match=r"mixing must have shape \(K, 2\)"):
        kernels.RecursiveBasis([0.5, 0.6], [[1.0]])
    with pytest.raises(ValueError, match="all-zero row"):
        kernels.RecursiveBasis([0.5], [[0.0]])
    with pytest.raises(ValueError, match="orders must be"):
        kernels.RecursiveBasis([0.5], [[1.0]], orders=[2])
    with pytest.raises(ValueError, match="tolerance must be at most"):
        kernels.RecursiveBasis([0.5], [[1.0]], tolerance=0.5)
    with pytest.raises(TypeError, match="mixing"):
        kernels.RecursiveBasis([0.5], [[1j]])
    with pytest.raises(ValueError, match="time_constants"):
        kernels.recursive_exponential([-1.0], DT)
    with pytest.raises(ValueError, match="dt"):
        kernels.recursive_alpha([1e-2], 0.0)
    with pytest.raises(ValueError, match="smaller than decay"):
        kernels.difference_of_exponentials([5e-3], [2e-3], DT)
    with pytest.raises(ValueError, match="same size"):
        kernels.difference_of_exponentials([1e-3, 2e-3], [5e-3], DT)
    with pytest.raises(ValueError, match="n_modes"):
        kernels.fit_exponentials(kernels.raised_cosine(2, 1, 5), DT, n_modes=0)

    recursive = _network(BASES["exponential"])
    array = _network(kernels.exponential([5e-3], 30, DT))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="propagation must be one of"):
        ps.sample(recursive, _params(recursive), key, 10, propagation="sparse")
    with pytest.raises(ValueError, match="needs recursive synapse and feedback bases"):
        ps.sample(array, _params(array), key, 10, propagation="event")
    with pytest.raises(ValueError, match="capacity"):
        ps.sample(recursive, _params(recursive), key, 10, capacity=0)
    with pytest.raises(TypeError, match="capacity"):
        ps.sample(recursive, _params(recursive), key, 10, capacity=2.5)


def test_networks_with_recursive_and_array_bases_are_distinct_static_specs():
    basis = BASES["exponential"]
    assert _network(basis) == _network(kernels.recursive_exponential([5e-3, 20e-3, 50e-3], DT))
    assert _network(basis) != _network(basis.matrix)
    assert _network(basis).recursive and not _network(basis.matrix).recursive
    mixed = ps.Network(4, basis, feedback_basis=kernels.exponential([5e-3], 10, DT), dt=DT)
    assert not mixed.recursive


def test_auto_propagation_is_event_driven_on_the_cpu_and_dense_on_an_accelerator(monkeypatch):
    """ "auto" resolves by JAX's default backend: the event path on the CPU, the dense product
    on an accelerator (whose per-spike loop steps are kernel launches); array bases keep the
    ring either way, and a sampler run with "auto" is the resolved method's, key for key."""
    spec = _network(BASES["exponential"], n=12)
    plain = _network(np.asarray(BASES["exponential"]), n=12)
    params = _params(spec, rate=60.0)
    assert check_propagation(spec, "auto", None)[0] == "event"
    assert check_propagation(plain, "auto", None)[0] == "ring"
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert check_propagation(spec, "auto", None, n_trials=4)[0] == "dense"
    assert check_propagation(plain, "auto", None)[0] == "ring"
    assert check_propagation(spec, "event", None)[0] == "event"  # an explicit choice stands
    auto = ps.sample(spec, params, jax.random.key(3), 300, n_trials=2)
    dense = ps.sample(spec, params, jax.random.key(3), 300, n_trials=2, propagation="dense")
    np.testing.assert_array_equal(np.asarray(auto), np.asarray(dense))
