"""One bin of presynaptic traces at a time: recursive trace states equal the ring buffer and the
all-bins convolution, for every recursive basis kind, separate feedback bases and inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from probsnn import history, kernels
from probsnn.glm import SamplerState
from probsnn.propagation import ModeState

DT = 1e-3
BASES = {
    "exponential": kernels.recursive_exponential([5e-3, 20e-3, 50e-3], DT),
    "alpha": kernels.recursive_alpha([3e-3, 12e-3], DT),
    "difference": kernels.difference_of_exponentials([1e-3, 2e-3], [6e-3, 25e-3], DT),
    "sum": kernels.RecursiveBasis([0.9, 0.6, 0.97], [[1.0, -0.5, 0.2], [0.0, 1.0, 0.3]], [0, 1, 0]),
}


def _tight(basis):
    return kernels.RecursiveBasis(basis.decays, basis.mixing, basis.orders, tolerance=1e-14)


def _replay(spec, spikes, inputs=None, method="auto"):
    """Every bin's traces from the one-bin history, pushed bin by bin; (B, T, ...) per field."""
    state = history.init(spec, (spikes.shape[0],), spikes.dtype, method)
    xs = (jnp.swapaxes(spikes, 0, 1), None if inputs is None else jnp.swapaxes(inputs, 0, 1))

    def body(state, x_t):
        spikes_t, input_t = x_t
        return history.push(spec, state, spikes_t, input_t), history.traces(spec, state)

    _, bins = jax.lax.scan(body, state, xs)
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), bins)


@pytest.mark.parametrize("name", sorted(BASES))
def test_recursive_history_equals_the_convolution_and_the_ring_over_a_long_run(x64, name):
    """10,000 bins at 30 % firing, feedback through its own (exponential) basis, raised-cosine
    inputs: every bin's traces equal probsnn.glm.traces (the causal convolution with the
    matrix) to round-off, and the ring history of the same matrices to round-off too."""
    feedback = _tight(kernels.recursive_exponential([2e-3], DT))
    spec = ps.Network(
        5,
        _tight(BASES[name]),
        feedback_basis=feedback,
        input_basis=kernels.raised_cosine(2, 1, 6),
        n_inputs=2,
        dt=DT,
    )
    spikes = jax.random.bernoulli(jax.random.key(1), 0.3, (2, 10_000, 5)).astype(jnp.float64)
    inputs = jax.random.normal(jax.random.key(2), (2, 10_000, 2), jnp.float64)
    exact = ps.glm.traces(spec, spikes, inputs, method="direct")
    recursive = _replay(spec, spikes, inputs)
    ring = _replay(spec, spikes, inputs, method="ring")
    assert isinstance(history.init(spec, (2,)), ModeState)
    for ours in (recursive, ring):
        for field in ("syn", "fb", "inputs"):
            np.testing.assert_allclose(
                getattr(ours, field), getattr(exact, field), rtol=1e-11, atol=1e-11
            )
    assert float(jnp.abs(recursive.syn).max()) > 0.5  # the traces are not trivially small


def test_shared_basis_and_float32_round_off():
    """Feedback sharing the synapse basis has no feedback traces of its own; in float32 the
    recursion stays within round-off of the float64 convolution after 20,000 bins."""
    spec = ps.Network(4, BASES["difference"], dt=DT)
    spikes = jax.random.bernoulli(jax.random.key(3), 0.2, (3, 20_000, 4)).astype(jnp.float32)
    ours = _replay(spec, spikes)
    assert ours.fb is None and ours.inputs is None
    assert ours.syn.dtype == jnp.float32
    exact = np.asarray(ps.glm.traces(spec, np.asarray(spikes, np.float64), method="direct").syn)
    np.testing.assert_allclose(ours.syn, exact, rtol=0, atol=2e-6 * np.abs(exact).max())


def test_array_bases_take_the_ring_and_take_selects_trials_of_either_state():
    """An array basis keeps the ring buffer; ``take`` reorders trials identically in both
    states (the traces of the selected trials are those of the original trials)."""
    basis = BASES["alpha"]
    plain = ps.Network(3, np.asarray(basis), dt=DT)
    assert isinstance(history.init(plain, (2,)), SamplerState)
    spikes = jax.random.bernoulli(jax.random.key(4), 0.4, (2, 3, 50, 3)).astype(jnp.float32)
    index = jnp.array([[2, 2, 0], [1, 0, 1]])
    for spec in (plain, ps.Network(3, basis, dt=DT)):
        state = history.init(spec, (2, 3))
        for t in range(50):
            state = history.push(spec, state, spikes[:, :, t])
        before = history.traces(spec, state).syn
        after = history.traces(spec, history.take(state, index)).syn
        expected = jnp.take_along_axis(before, index[..., None, None], axis=1)
        np.testing.assert_array_equal(np.asarray(after), np.asarray(expected))
        assert float(jnp.abs(before).max()) > 0.1


def test_bad_history_arguments_are_refused():
    spec = ps.Network(3, np.asarray(BASES["alpha"]), dt=DT)
    with pytest.raises(ValueError, match="method='recursive' needs RecursiveBasis"):
        history.init(spec, (2,), method="recursive")
    with pytest.raises(ValueError, match="method"):
        history.init(spec, (2,), method="fast")
    with pytest.raises(TypeError, match="batch_shape"):
        history.init(spec, 2)
    with pytest.raises(ValueError, match="batch_shape"):
        history.init(spec, (0,))
    with pytest.raises(TypeError, match="dtype"):
        history.init(spec, (2,), jnp.int32)
