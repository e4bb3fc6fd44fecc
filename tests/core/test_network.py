import jax
import numpy as np
import pytest

import probsnn as ps
from probsnn import kernels, topology


def test_topologies():
    ff = topology.feedforward([2, 3, 1])
    assert ff.shape == (6, 6)
    assert ff[:2, 2:5].all() and ff[2:5, 5].all()
    assert ff.sum() == 2 * 3 + 3 * 1
    rec = topology.layered_recurrent([2, 3])
    assert rec[2:5, 2:5].sum() == 6 and not rec.diagonal().any() and rec[:2, 2:].all()
    assert not rec[2:, :2].any()
    sparse = topology.random_sparse(200, 0.1, seed=0)
    assert not sparse.diagonal().any()
    assert abs(sparse.sum() / (200 * 199) - 0.1) < 4 * np.sqrt(0.1 * 0.9 / (200 * 199))
    np.testing.assert_array_equal(topology.dense(3), ~np.eye(3, dtype=bool))
    with pytest.raises(ValueError, match="density"):
        topology.random_sparse(3, 1.5)
    with pytest.raises(ValueError, match="layer_sizes"):
        topology.feedforward([])


def test_network_validation_names_the_argument():
    basis = kernels.raised_cosine(3, 1, 8)
    with pytest.raises(ValueError, match="dt"):
        ps.Network(3, basis, dt=0.0)
    with pytest.raises(ValueError, match="dt"):
        ps.Network(3, basis, dt=-1e-3)
    with pytest.raises(TypeError, match="n_neurons"):
        ps.Network(3.0, basis)
    with pytest.raises(ValueError, match="synapse_basis"):
        ps.Network(3, np.ones(5))
    with pytest.raises(ValueError, match="synapse_basis must be finite"):
        ps.Network(3, np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="connectivity"):
        ps.Network(3, basis, connectivity=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="connectivity"):
        ps.Network(3, basis, connectivity=np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="input_basis is required"):
        ps.Network(3, basis, n_inputs=2)
    with pytest.raises(ValueError, match="visible"):
        ps.Network(3, basis, visible=np.ones(2, bool))


def test_network_is_hashable_by_content_and_static_under_jit():
    basis = kernels.raised_cosine(3, 1, 8)
    a, b = ps.Network(4, basis), ps.Network(4, basis.copy())
    assert a == b and hash(a) == hash(b)
    assert a != ps.Network(4, basis, dt=2e-3)
    params = a.init_params(jax.random.key(0))
    traces = []

    @jax.jit
    def kernel_sum(spec, params):
        traces.append(1)
        return spec.coupling_kernels(params).sum()

    kernel_sum(a, params)
    kernel_sum(b, params)
    assert len(traces) == 1  # equal specs reuse the compiled function


def test_init_params_shapes_rate_and_mask():
    spec = ps.Network(
        6,
        kernels.raised_cosine(3, 1, 8),
        input_basis=kernels.raw_lags(2),
        n_inputs=3,
        connectivity=topology.feedforward([3, 3]),
        dt=1e-3,
    )
    params = spec.init_params(jax.random.key(0), rate=20.0)
    assert params.w.shape == (6, 6, 3) and params.v.shape == (6, 3)
    assert params.c.shape == (3, 6, 2) and params.bias.shape == (6,)
    assert np.all(np.asarray(params.w)[~spec.connectivity] == 0)
    np.testing.assert_allclose(np.asarray(jax.nn.sigmoid(params.bias)), 20.0 * 1e-3, rtol=1e-5)
    assert spec.coupling_kernels(params).shape == (6, 6, spec.synapse_basis.shape[1])
    assert spec.input_kernels(params).shape == (3, 6, 2)
    with pytest.raises(ValueError, match="rate"):
        spec.init_params(jax.random.key(0), rate=2000.0)
