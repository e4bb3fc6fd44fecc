"""Sparse synapses: a SparseNetwork equals the dense Network with the same mask."""

import shutil
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from probsnn import _native, kernels, sparse, topology
from probsnn.propagation import _kernel_drive, _scatter_drive
from probsnn.sparse import Synapses, random_targets

DT = 1e-3
EXPONENTIAL = kernels.recursive_exponential([5e-3, 20e-3, 50e-3], DT)


def _pair(n=30, density=0.25, seed=1, **options):
    synapses = topology.random_sparse(n, density, seed=seed, sparse=True)
    spec = ps.SparseNetwork(n, synapses, options.pop("basis", EXPONENTIAL), dt=DT, **options)
    params = spec.init_params(jax.random.key(seed), rate=40.0, weight_scale=3.0)
    return spec, params, *spec.to_dense(params)


@pytest.mark.parametrize("feedback", ["shared", "own"])
def test_sparse_sampling_equals_the_dense_network_with_the_same_mask(feedback):
    """Same key: the same spikes, potentials equal to float32 round-off, also when a bin's
    spikes take many scatters (capacity 1) and with a feedback basis of its own."""
    options = {}
    if feedback == "own":
        options["feedback_basis"] = kernels.recursive_alpha([2e-3], DT)
    spec, params, dense, dense_params = _pair(**options)
    assert dense.connectivity.sum() == spec.synapses.n_synapses
    key = jax.random.key(5)
    spikes, u = ps.sample(spec, params, key, 1500, n_trials=3, return_potentials=True)
    expected, expected_u = ps.sample(
        dense, dense_params, key, 1500, n_trials=3, return_potentials=True, propagation="dense"
    )
    assert 0.05 < float(spikes.mean()) < 0.6
    np.testing.assert_array_equal(spikes, expected)
    scale = float(jnp.abs(expected_u).max())
    np.testing.assert_allclose(u, expected_u, rtol=0, atol=1e-5 * scale)
    one_at_a_time = ps.sample(spec, params, key, 1500, n_trials=3, capacity=1)
    np.testing.assert_array_equal(one_at_a_time, spikes)


def test_sparse_likelihood_and_its_gradient_equal_the_dense_ones():
    """With inputs: potentials and log-likelihood equal the dense network's; the gradient in w
    is the dense gradient read at the synapses (and ignores the padding)."""
    synapses = topology.random_sparse(12, 0.3, seed=3, sparse=True)
    spec = ps.SparseNetwork(
        12, synapses, EXPONENTIAL, n_inputs=2, input_basis=kernels.raised_cosine(2, 1, 8)
    )
    params = spec.init_params(jax.random.key(2), rate=30.0, weight_scale=2.0)
    dense, dense_params = spec.to_dense(params)
    spikes = jax.random.bernoulli(jax.random.key(4), 0.1, (2, 300, 12))
    inputs = jax.random.normal(jax.random.key(6), (2, 300, 2))
    np.testing.assert_allclose(
        ps.potentials(spec, params, spikes, inputs),
        ps.potentials(dense, dense_params, spikes, inputs),
        atol=2e-5,
    )
    ll = ps.log_likelihood(spec, params, spikes, inputs)
    np.testing.assert_allclose(ll, ps.log_likelihood(dense, dense_params, spikes, inputs), 1e-6)
    grad = jax.grad(ps.log_likelihood, argnums=1)(spec, params, spikes, inputs)
    dense_grad = jax.grad(ps.log_likelihood, argnums=1)(dense, dense_params, spikes, inputs)
    valid = synapses.valid
    rows = np.broadcast_to(np.arange(12)[:, None], valid.shape)[valid]
    np.testing.assert_allclose(
        grad.w[valid], dense_grad.w[rows, synapses.targets[valid]], rtol=1e-4, atol=1e-3
    )
    np.testing.assert_array_equal(grad.w[~valid], 0.0)
    np.testing.assert_allclose(grad.v, dense_grad.v, rtol=1e-4, atol=1e-3)


def test_synapses_round_trip_through_a_mask_and_validate_their_table():
    mask = topology.random_sparse(20, 0.3, seed=7)
    synapses = Synapses.from_mask(mask)
    np.testing.assert_array_equal(synapses.to_mask(), mask)
    assert synapses.n_synapses == mask.sum()
    np.testing.assert_array_equal(synapses.in_degrees(), mask.sum(axis=0))
    assert Synapses(synapses.targets) == synapses
    assert hash(Synapses(synapses.targets)) == hash(synapses)
    assert Synapses.from_mask(np.zeros((3, 3), bool)).fan_out == 0
    bad = {
        "self-connection": [[0, 3], [2, 3], [3, 3]],
        "repeats": [[1, 1], [0, 3], [3, 3]],
        "after its padding": [[3, 1], [3, 3], [3, 3]],
        r"lie in \[0, 3\]": [[1, 4], [3, 3], [3, 3]],
        r"\(N, F\)": [1, 2, 3],
    }
    for message, table in bad.items():
        with pytest.raises(ValueError, match=message):
            Synapses(np.array(table))
    with pytest.raises(TypeError, match="integers"):
        Synapses(np.array([[1.0], [0.0]]))


@pytest.mark.parametrize(("n", "fan_out"), [(7, 2), (7, 5)])
def test_fixed_fan_out_draws_every_target_set_equally_often(n, fan_out):
    """Sparse (repeats drawn again) and dense (permutation) rows: distinct targets, never the
    neuron itself, each of the C(n−1, F) sets about equally often (chi-square, 1,500 draws)."""
    counts = Counter()
    for seed in range(1500):
        table = topology.fixed_fan_out(n, fan_out, seed=seed).targets
        assert table.shape == (n, fan_out)
        assert not np.any(table == np.arange(n)[:, None])
        assert np.all(np.diff(table, axis=1) > 0)
        counts[tuple(table[3])] += 1
    n_sets = len(counts)
    assert n_sets == {2: 15, 5: 6}[fan_out]
    expected = 1500 / n_sets
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < n_sets - 1 + 5 * np.sqrt(2 * (n_sets - 1))  # mean + 5 sd of chi-square


def test_random_sparse_synapses_have_the_erdos_renyi_degree():
    n, density = 400, 0.05
    synapses = topology.random_sparse(n, density, seed=3, sparse=True)
    mean, sd = density * (n - 1), np.sqrt(density * (1 - density) * (n - 1) / n)
    assert abs(synapses.n_synapses / n - mean) < 5 * sd
    Synapses(synapses.targets)  # passes the full validation


def test_a_network_too_large_for_a_mask_samples_in_memory():
    """100,000 neurons, 10 synapses each: a dense mask alone would take 10 GB."""
    n = 100_000
    spec = ps.SparseNetwork(n, topology.fixed_fan_out(n, 10), EXPONENTIAL)
    params = spec.init_params(jax.random.key(0), rate=20.0)
    spikes = ps.sample(spec, params, jax.random.key(1), 30)
    assert spikes.shape == (30, n) and spikes.dtype == jnp.uint8
    assert 0.005 < float(spikes.mean()) < 0.05
    with pytest.raises(ValueError, match="connectivity mask would hold"):
        spec.to_dense()


def test_sparse_networks_refuse_what_they_cannot_do():
    synapses = topology.fixed_fan_out(5, 2)
    spec = ps.SparseNetwork(5, synapses, EXPONENTIAL)
    params = spec.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match="propagation='event'"):
        ps.sample(spec, params, jax.random.key(0), 10, propagation="ring")
    array_spec = ps.SparseNetwork(5, synapses, np.asarray(EXPONENTIAL))
    with pytest.raises(ValueError, match="recursive synapse and feedback bases"):
        ps.sample(array_spec, array_spec.init_params(jax.random.key(0)), jax.random.key(0), 10)
    with pytest.raises(ValueError, match="synapses has 5 neurons"):
        ps.SparseNetwork(6, synapses, EXPONENTIAL)
    with pytest.raises(TypeError, match=r"probsnn\.sparse\.Synapses"):
        ps.SparseNetwork(5, topology.dense(5), EXPONENTIAL)
    dense_params = spec.to_dense().init_params(jax.random.key(0))
    with pytest.raises(ValueError, match="w"):
        ps.sample(spec, dense_params, jax.random.key(0), 10)
    with pytest.raises(ValueError, match="fan_out must be at most"):
        topology.fixed_fan_out(5, 5)
    with pytest.raises(TypeError, match="sparse must be a bool"):
        topology.random_sparse(5, 0.1, sparse="yes")
    assert spec == ps.SparseNetwork(5, topology.fixed_fan_out(5, 2), EXPONENTIAL)
    assert spec != ps.SparseNetwork(5, topology.fixed_fan_out(5, 2, seed=1), EXPONENTIAL)


def _drive_inputs(n=60, trials=3, n_modes=3, rate=0.5, seed=0):
    """A padded table (random fan-outs, some empty rows), weights (N, F, J) and spikes."""
    counts = np.random.default_rng(seed).integers(0, 9, n)
    synapses = random_targets(n, counts, np.random.default_rng(seed + 1))
    w = jax.random.normal(jax.random.key(seed), (*synapses.targets.shape, n_modes))
    flat = jax.random.bernoulli(jax.random.key(seed + 1), rate, (trials, n)).astype(jnp.uint8)
    return flat, jnp.asarray(synapses.targets), w


@pytest.mark.parametrize(("n_modes", "rate"), [(3, 0.5), (1, 0.9), (5, 0.05), (3, 0.0)])
def test_compiled_kernel_drive_equals_the_xla_scatter_bit_for_bit(n_modes, rate):
    """The C kernel adds the XLA path's updates in its order: equal drives to the last bit
    (padding skipped, every trial, no spike at all), and equal forward-mode tangents."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine: sparse sampling uses XLA's scatter")
    assert sparse.compiled_kernel(), "the compiled sparse kernel should build where cc exists"
    flat, targets, w = _drive_inputs(n_modes=n_modes, rate=rate)
    kernel = jax.jit(_kernel_drive, static_argnums=3)(flat, targets, w, 4)
    expected = jax.jit(_scatter_drive, static_argnums=3)(flat, targets, w, 4)
    assert kernel.shape == (3, 60, n_modes)
    np.testing.assert_array_equal(kernel, expected)
    assert (float(jnp.abs(kernel).sum()) > 0) == (rate > 0)
    tangent = jax.random.normal(jax.random.key(9), w.shape)
    _, kernel_tangent = jax.jvp(lambda w: _kernel_drive(flat, targets, w, 4), (w,), (tangent,))
    _, scatter_tangent = jax.jvp(lambda w: _scatter_drive(flat, targets, w, 4), (w,), (tangent,))
    np.testing.assert_array_equal(kernel_tangent, scatter_tangent)


def test_sparse_sampling_gives_the_same_spikes_with_and_without_the_kernel(monkeypatch):
    spec, params, *_ = _pair(n=50, density=0.2, seed=4)
    key = jax.random.key(8)
    spikes, u = ps.sample(spec, params, key, 400, n_trials=2, return_potentials=True)
    monkeypatch.setattr(_native, "available", lambda: False)
    jax.clear_caches()  # the path is chosen when the sampler is traced
    expected, expected_u = ps.sample(spec, params, key, 400, n_trials=2, return_potentials=True)
    assert float(spikes.mean()) > 0.05
    np.testing.assert_array_equal(spikes, expected)
    np.testing.assert_array_equal(u, expected_u)


def test_the_kernel_lowers_only_for_the_cpu():
    """Nothing CPU-only: an accelerator's lowering of the same drive is XLA's scatter."""
    flat, targets, w = _drive_inputs()
    _native.available()
    traced = jax.jit(_kernel_drive, static_argnums=3).trace(flat, targets, w, 4)
    on_gpu = traced.lower(lowering_platforms=("cuda",)).as_text()
    assert _native.TARGET not in on_gpu and "scatter" in on_gpu
    if sparse.compiled_kernel():
        assert _native.TARGET in traced.lower(lowering_platforms=("cpu",)).as_text()


def test_a_missing_compiler_or_the_switch_falls_back_to_xla(monkeypatch, tmp_path):
    monkeypatch.setattr(_native, "_registered", None)
    monkeypatch.setenv(_native.ENV_SWITCH, "off")
    assert not sparse.compiled_kernel() and _native._registered is None  # nothing compiled
    monkeypatch.delenv(_native.ENV_SWITCH)
    monkeypatch.setenv("PROBSNN_CACHE_DIR", str(tmp_path / "jax"))  # no library built yet
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="compiled sparse-network kernel is unavailable"):
        assert not sparse.compiled_kernel()
    assert not list(tmp_path.rglob("*.so"))
    monkeypatch.setenv("CC", shutil.which("false") or "false")  # a compiler that fails
    monkeypatch.setattr(_native, "_registered", None)
    with pytest.warns(RuntimeWarning, match="failed"):
        assert not sparse.compiled_kernel()


def test_the_kernel_splits_a_busy_bin_over_threads_without_changing_a_bit():
    """Ascending rows: a bin of ~10⁶ synapse events is split over XLA's CPU threads by target
    ranges (slots found by binary search), and the drive still equals XLA's sequential scatter;
    a table whose rows do not ascend takes the one-thread loop, also exactly."""
    if not sparse.compiled_kernel():
        pytest.skip("the compiled sparse kernel is unavailable on this machine")
    synapses = topology.fixed_fan_out(3000, 300, seed=2)
    w = jax.random.normal(jax.random.key(3), (*synapses.targets.shape, 3))
    flat = jax.random.bernoulli(jax.random.key(4), 0.6, (2, 3000)).astype(jnp.uint8)
    for table, ascending in [(synapses.targets, True), (synapses.targets[:, ::-1], False)]:
        rows = Synapses(np.ascontiguousarray(table))
        assert rows.ascending == ascending
        targets, weights = jnp.asarray(rows.targets), w if ascending else w[:, ::-1]
        expected = _scatter_drive(flat, targets, weights, 256)
        drive = jax.jit(_kernel_drive, static_argnums=(3, 4))(
            flat, targets, weights, 256, ascending
        )
        np.testing.assert_array_equal(drive, expected)
