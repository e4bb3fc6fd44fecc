"""Recordings read in chunks: halos make every chunk exact, and the streamed fit is the fit."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from probsnn import kernels, streaming
from probsnn.inference import fit_ml, fit_ml_streaming

SPEC = ps.Network(
    4,
    kernels.raised_cosine(3, 1, 10),
    n_inputs=1,
    input_basis=kernels.raised_cosine(2, 1, 5),
    dt=1e-3,
)


@pytest.fixture(scope="module")
def recording():
    truth = SPEC.init_params(jax.random.key(0), rate=40.0, weight_scale=2.0)
    inputs = jax.random.normal(jax.random.key(3), (2, 3000, 1))
    spikes = ps.sample(SPEC, truth, jax.random.key(1), 3000, 2, inputs=inputs)
    return truth, np.asarray(spikes), np.asarray(inputs)


def bursty(n_bins, n_neurons, period, rng):
    """Spikes with a burst of every neuron across each multiple of ``period`` (the chunk
    boundaries), sparse elsewhere."""
    spikes = rng.random((n_bins, n_neurons)) < 0.02
    for edge in range(period, n_bins, period):
        spikes[edge - 4 : edge + 4] = True
    return spikes.astype(np.float64)


def test_chunk_boundaries_inside_bursts_are_exact(x64):
    spec = ps.Network(3, kernels.raised_cosine(3, 1, 10), dt=1e-3)
    params = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=1.5)
    spikes = bursty(1000, 3, 64, np.random.default_rng(0))
    whole = np.asarray(ps.potentials(spec, params, spikes))
    covered = 0
    for chunk in streaming.chunks(spec, spikes, chunk_bins=64):
        assert chunk.halo == min(covered, spec.n_lags)  # the past the new bins read
        u = np.asarray(ps.potentials(spec, params, chunk.spikes))[chunk.halo :]
        np.testing.assert_allclose(u, whole[covered : covered + len(u)], rtol=1e-12, atol=1e-12)
        covered += len(u)
    assert covered == 1000
    exact = float(ps.log_likelihood(spec, params, spikes))
    assert streaming.log_likelihood(spec, params, spikes, chunk_bins=64) == pytest.approx(
        exact, rel=1e-13
    )


@pytest.mark.parametrize("preconditioner", ["neuron", "shared"])
def test_streamed_fit_equals_the_in_memory_fit(recording, preconditioner, x64):
    _, spikes, inputs = recording
    spikes, inputs = spikes.astype(np.float64), inputs.astype(np.float64)
    run = dict(l2=0.5, tol=1e-12, preconditioner=preconditioner)
    whole = fit_ml(SPEC, spikes, inputs, **run)
    streamed = fit_ml_streaming(SPEC, spikes, inputs, chunk_bins=700, **run)
    assert whole.info.converged and streamed.info.converged
    for a, b in zip(jax.tree.leaves(streamed.params), jax.tree.leaves(whole.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)
    assert streamed.info.log_likelihood == pytest.approx(whole.info.log_likelihood, rel=1e-10)
    np.testing.assert_allclose(streamed.info.objective, whole.info.objective, rtol=1e-10)


def test_memory_mapped_and_loader_sources(recording, tmp_path, x64):
    truth, spikes, inputs = recording
    spikes, inputs = spikes[0].astype(np.float64), inputs[0].astype(np.float64)
    exact = float(ps.log_likelihood(SPEC, truth, spikes, inputs))
    path = tmp_path / "spikes.bin"
    mapped = np.memmap(path, dtype=np.uint8, mode="w+", shape=spikes.shape)
    mapped[:] = spikes
    mapped.flush()
    on_disk = np.memmap(path, dtype=np.uint8, mode="r", shape=spikes.shape)
    got = streaming.log_likelihood(SPEC, truth, on_disk, inputs, chunk_bins=512)
    assert got == pytest.approx(exact, rel=1e-6)  # uint8 spikes are computed in float32
    edges = [0, 5, 400, 401, 1900, 3000]  # uneven pieces, one of a single bin

    def loader():
        for a, b in itertools.pairwise(edges):
            yield spikes[a:b], inputs[a:b]

    assert streaming.log_likelihood(SPEC, truth, loader) == pytest.approx(exact, rel=1e-12)
    fit = fit_ml_streaming(SPEC, loader, l2=0.5, tol=1e-10)
    whole = fit_ml(SPEC, spikes, inputs, l2=0.5, tol=1e-10)
    np.testing.assert_allclose(np.asarray(fit.params.w), np.asarray(whole.params.w), atol=1e-5)


def test_streaming_refusals(recording):
    truth, spikes, inputs = recording
    with pytest.raises(ValueError, match="chunk_bins"):
        streaming.log_likelihood(SPEC, truth, spikes, inputs, chunk_bins=0)
    with pytest.raises(TypeError, match="callable"):
        streaming.log_likelihood(SPEC, truth, [[0, 1]], inputs)
    with pytest.raises(TypeError, match="inside the chunks"):
        streaming.log_likelihood(SPEC, truth, lambda: iter(()), inputs)
    with pytest.raises(ValueError, match="do not match"):
        streaming.log_likelihood(SPEC, truth, spikes, inputs[:, :10])
    with pytest.raises(ValueError, match="empty"):
        fit_ml_streaming(SPEC, lambda: iter(()), l2=1.0)
    with pytest.raises(TypeError, match=r"spec must be a probsnn\.Network"):
        fit_ml_streaming("network", spikes[0], inputs[0], l2=1.0)
    for spec_like in ("network", SPEC.n_neurons):  # neither gets as far as an AttributeError
        with pytest.raises(TypeError, match=r"spec must be a probsnn\.Network or SparseNetwork"):
            streaming.log_likelihood(spec_like, truth, spikes, inputs)
        with pytest.raises(TypeError, match=r"spec must be a probsnn\.Network or SparseNetwork"):
            ps.log_likelihood(spec_like, truth, spikes, inputs)
    silent = np.zeros((500, 4))
    silent[::7, :3] = 1
    no_inputs = ps.Network(4, kernels.raised_cosine(3, 1, 10), dt=1e-3)
    with pytest.raises(ValueError, match=r"neurons \[3\]"):
        fit_ml_streaming(no_inputs, silent)
    with pytest.raises(ValueError, match="preconditioner"):
        fit_ml_streaming(no_inputs, silent, l2=1.0, preconditioner="lu")
    assert jnp.isfinite(fit_ml_streaming(no_inputs, silent, l2=1.0).info.log_likelihood)
