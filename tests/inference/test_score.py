"""Score-function gradients, baselines and multi-sample bounds against closed forms."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from probsnn.inference import score


def _bernoulli_batch(key, theta, n):
    """s ~ Bern(σ(θ)) per coordinate; the score ∇_θ log q(s) = s − σ(θ)."""
    s = jax.random.bernoulli(key, jax.nn.sigmoid(theta), (n, theta.size)).astype(jnp.float32)
    return s, s - jax.nn.sigmoid(theta)


def test_score_gradient_is_unbiased_and_the_optimal_baseline_reduces_variance():
    """f(s) = a·s + c: ∇_θ E f = a σ(θ)(1 − σ(θ)). The estimate lies within 4 standard errors
    with and without the baseline, and the baseline cuts the variance (c = 5 makes the plain
    estimator noisy)."""
    theta = jnp.array([-1.0, 0.5, 2.0])
    a, c = jnp.array([1.0, -2.0, 0.5]), 5.0
    exact = a * jax.nn.sigmoid(theta) * (1 - jax.nn.sigmoid(theta))
    state = score.init_baseline(theta)
    plain, centred = [], []
    for key in jax.random.split(jax.random.key(0), 400):
        s, e = _bernoulli_batch(key, theta, 16)
        signal = s @ a + c
        baseline, state = score.optimal_baseline(state, signal, e, kappa=0.9)
        plain.append(score.score_gradient(signal, e))
        centred.append(score.score_gradient(signal, e, baseline))
    for estimates in (np.asarray(plain), np.asarray(centred)):
        se = estimates.std(axis=0) / np.sqrt(len(estimates))
        assert np.all(np.abs(estimates.mean(axis=0) - exact) < 4 * se)
    ratio = np.asarray(plain).var(axis=0) / np.asarray(centred).var(axis=0)
    assert np.all(ratio > 5), ratio


def test_optimal_baseline_closed_form_and_pytrees():
    key = jax.random.key(1)
    scores = {"w": jax.random.normal(key, (8, 2, 3)), "b": jax.random.normal(key, (8,))}
    signal = jnp.arange(8.0)
    state = score.init_baseline({"w": jnp.zeros((2, 3)), "b": jnp.zeros(())})
    first, state = score.optimal_baseline(state, signal, scores, kappa=0.0)
    # lagged: nothing seen before the first batch, then the first batch's ratio
    assert all(np.all(np.asarray(leaf) == 0) for leaf in jax.tree.leaves(first))
    baseline, _ = score.optimal_baseline(state, -signal, scores, kappa=0.0)
    for name in ("w", "b"):
        e2 = np.asarray(scores[name]) ** 2
        f = np.asarray(signal).reshape((8,) + (1,) * (e2.ndim - 1))
        np.testing.assert_allclose(baseline[name], (f * e2).mean(0) / e2.mean(0), rtol=1e-5)
    gradient = score.score_gradient(signal, scores, baseline)
    centred = np.asarray(signal)[:, None, None] - np.asarray(baseline["w"])
    np.testing.assert_allclose(gradient["w"], (centred * scores["w"]).mean(0), rtol=1e-5)


def test_blend_moments_and_the_lagged_baseline_ratio():
    """The one exponential filter over pytrees, the moments it keeps, and their ratio with a
    fallback where no score has been seen."""
    blended = score.blend({"a": jnp.ones(2)}, {"a": jnp.zeros(2)}, 0.25)
    np.testing.assert_allclose(blended["a"], [0.25, 0.25])
    state = score.blend_moments(
        score.init_baseline(jnp.zeros(2)), jnp.array([2.0, 0.0]), jnp.array([4.0, 0.0]), 0.5
    )
    np.testing.assert_allclose(state.signal_moment, [1.0, 0.0])
    np.testing.assert_allclose(state.score_moment, [2.0, 0.0])
    np.testing.assert_allclose(score.baseline_ratio(state, -1.0), [0.5, -1.0])


def test_iw_bound_and_vimco_signals_against_loops():
    log_w = jax.random.normal(jax.random.key(2), (5, 3)) * 3
    np.testing.assert_allclose(score.iw_bound(log_w), logsumexp(log_w, 0) - np.log(5), rtol=1e-6)
    np.testing.assert_allclose(score.iw_bound(log_w[:1]), log_w[0], rtol=1e-6)
    signals = np.asarray(score.vimco_signals(log_w))
    lw = np.asarray(log_w, np.float64)
    for k, col in itertools.product(range(5), range(3)):
        others = np.delete(lw[:, col], k)
        replaced = lw[:, col].copy()
        replaced[k] = others.mean()
        expected = np.log(np.mean(np.exp(lw[:, col]))) - np.log(np.mean(np.exp(replaced)))
        np.testing.assert_allclose(signals[k, col], expected, rtol=1e-4, atol=1e-5)


def test_bad_arguments():
    e = jnp.zeros((4, 2))
    with pytest.raises(ValueError, match="kappa must be in"):
        score.optimal_baseline(score.init_baseline(jnp.zeros(2)), jnp.zeros(4), e, kappa=1.0)
    with pytest.raises(ValueError, match=r"signal must have shape \(4,\)"):
        score.score_gradient(jnp.zeros(3), e)
    with pytest.raises(ValueError, match="K must be >= 2"):
        score.vimco_signals(jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match="K >= 1"):
        score.iw_bound(jnp.zeros((0, 3)))
