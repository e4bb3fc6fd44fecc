import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probsnn import kernels


def test_raised_cosine_matches_formula_and_peaks():
    basis = kernels.raised_cosine(5, first_peak=2, last_peak=40, offset=1.5)
    centres = np.linspace(np.log(3.5), np.log(41.5), 5)
    spacing = centres[1] - centres[0]
    lags = np.arange(1, basis.shape[1] + 1)
    for k in range(5):
        phase = np.clip((np.log(lags + 1.5) - centres[k]) * np.pi / (2 * spacing), -np.pi, np.pi)
        np.testing.assert_allclose(basis[k], 0.5 * np.cos(phase) + 0.5, atol=1e-14)
    assert np.argmax(basis[0]) + 1 == 2
    assert np.argmax(basis[-1]) + 1 == 40
    assert basis[0, 1] == pytest.approx(1.0)
    # The window holds the last bump whole: it has returned to zero at the end.
    assert basis[-1, -1] == pytest.approx(0.0, abs=1e-12)


def test_raised_cosine_rejects_a_window_that_cuts_the_last_bump():
    with pytest.raises(ValueError, match="length"):
        kernels.raised_cosine(6, 1, 40, length=100)
    with pytest.raises(ValueError, match="offset"):
        kernels.raised_cosine(3, 1, 10, offset=0.0)
    with pytest.raises(ValueError, match="last_peak"):
        kernels.raised_cosine(3, 10, 5)


def test_orthonormal_basis_spans_the_same_space():
    basis = kernels.raised_cosine(4, 1, 20)
    ortho = kernels.raised_cosine(4, 1, 20, orthonormal=True)
    np.testing.assert_allclose(ortho @ ortho.T, np.eye(4), atol=1e-12)
    projector = ortho.T @ ortho
    np.testing.assert_allclose(basis @ projector, basis, atol=1e-12)
    with pytest.raises(ValueError, match="dependent"):
        kernels.orthonormalize(np.vstack([basis, basis[:1]]))


def test_exponential_alpha_raw_and_boxcar():
    dt = 1e-3
    expo = kernels.exponential([0.01, 0.02], 30, dt)
    np.testing.assert_allclose(expo[1, 4], np.exp(-5 * dt / 0.02))
    alpha = kernels.alpha(0.005, 20, dt)
    assert alpha.shape == (1, 20) and np.argmax(alpha[0]) + 1 == 5
    assert alpha[0, 4] == pytest.approx(1.0)
    np.testing.assert_array_equal(kernels.raw_lags(3), np.eye(3))
    box = kernels.boxcar([1, 3, 6])
    np.testing.assert_array_equal(box, [[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]])
    for bad in ([0.01, -1.0], [np.nan]):
        with pytest.raises(ValueError, match="time_constants"):
            kernels.exponential(bad, 10, dt)
    with pytest.raises(ValueError, match="dt"):
        kernels.alpha(0.01, 10, dt=0.0)
    with pytest.raises(ValueError, match="edges"):
        kernels.boxcar([3, 2])


def direct_double_loop(spikes, basis):
    *batch, n_steps, n = spikes.shape
    out = np.zeros((*batch, n_steps, n, basis.shape[0]))
    for t in range(n_steps):
        for lag in range(1, basis.shape[1] + 1):
            if t - lag >= 0:
                out[..., t, :, :] += spikes[..., t - lag, :, None] * basis[None, :, lag - 1]
    return out


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
def test_filtering_equals_a_double_loop(method, x64):
    rng = np.random.default_rng(0)
    spikes = (rng.random((2, 60, 3)) < 0.2).astype(np.float64)
    basis = kernels.raised_cosine(3, 1, 6)
    expected = direct_double_loop(spikes, basis)
    got = kernels.filter_spikes(jnp.asarray(spikes), basis, method)
    assert got.shape == (2, 60, 3, 3)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-10)


def test_filtering_is_strictly_causal_and_float32_by_default():
    spikes = jnp.zeros((20, 1), jnp.uint8).at[5, 0].set(1)
    traces = kernels.filter_spikes(spikes, kernels.raw_lags(4))
    assert traces.dtype == jnp.float32
    assert np.all(np.asarray(traces[:6]) == 0)
    np.testing.assert_array_equal(np.asarray(traces[6:10, 0]), np.eye(4))
    fft = kernels.filter_spikes(spikes, kernels.raw_lags(4), "fft")
    np.testing.assert_allclose(np.asarray(fft), np.asarray(traces), atol=1e-6)


def test_filtering_rejects_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        kernels.filter_spikes(jnp.zeros((5, 2)), kernels.raw_lags(2), "fast")
    with pytest.raises(ValueError, match="spikes"):
        kernels.filter_spikes(jnp.zeros(5), kernels.raw_lags(2))
    with pytest.raises(ValueError, match="weights"):
        kernels.combine(jnp.zeros((2, 3)), kernels.raw_lags(2))


def test_combine_builds_kernels_from_weights():
    basis = kernels.raised_cosine(3, 1, 8)
    weights = jax.random.normal(jax.random.key(0), (4, 3))
    np.testing.assert_allclose(
        np.asarray(kernels.combine(weights, basis)), np.asarray(weights) @ basis, rtol=1e-5
    )
