"""STDP equivalences: ML window vs oracle and jax.grad, rate derivative ⇔ window, EP ⇒ STDP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from probsnn import kernels
from probsnn.inference import equivalence as eq
from probsnn.inference.energy import ep
from probsnn.inference.plasticity import stdp
from probsnn.models import energy as em


def glm_pair():
    dt = 1e-3
    syn = kernels.exponential([10e-3], length=60, dt=dt)
    fb = kernels.exponential([5e-3], length=60, dt=dt)
    spec = ps.Network(2, syn, feedback_basis=fb, dt=dt)
    params = spec.init_params(jax.random.key(0))
    params = params._replace(
        w=jnp.zeros_like(params.w).at[0, 1, 0].set(1.5),
        v=jnp.full_like(params.v, -4.0),
        bias=jnp.full_like(params.bias, -4.0),
    )
    return spec, params


def lagged(kernel, delay):
    """kernel[δ − 1] at delays δ = 1..L, else 0 (the library's causal convention)."""
    inside = (delay >= 1) & (delay <= kernel.size)
    return np.where(inside, kernel[np.clip(delay - 1, 0, kernel.size - 1)], 0.0)


def test_ml_window_equals_oracle_grad_and_has_stdp_signs():
    spec, params = glm_pair()
    lags = np.arange(-40, 41)
    result = eq.ml_window(spec, params, lags)
    eps, eta = result.synaptic_kernel, result.feedback_kernel
    sigmoid = lambda u: 1 / (1 + np.exp(-u))  # noqa: E731
    for i in (0, 30, 39, 40, 41, 45, 70):
        lag, length = lags[i], eps.size
        t_pre = length + max(-lag, 0)
        t_post = t_pre + lag
        n_steps = 2 * length + 40 + 1
        t = np.arange(n_steps)
        e, h = lagged(eps, t - t_pre), lagged(eta, t - t_post)
        u = -4.0 + e + h  # eps already carries the weight (g = 1)
        s = (t == t_post).astype(float)
        oracle = np.sum(e * (s - sigmoid(u)))
        assert result.dw[i] == pytest.approx(oracle, rel=1e-4, abs=1e-5)
        # the same number as jax.grad of the network log-likelihood along w[0, 1]
        spikes = np.zeros((n_steps, 2), np.float32)
        spikes[t_pre, 0] = spikes[t_post, 1] = 1
        grad = jax.grad(lambda p, s=spikes: ps.log_likelihood(spec, p, s))(params)
        assert float(grad.w[0, 1, 0]) * 1.5 == pytest.approx(result.dw[i], rel=1e-4, abs=1e-5)
    dw = dict(zip(lags.tolist(), result.dw, strict=True))
    assert dw[3] > 0 and dw[5] > 0  # potentiation for pre-before-post
    assert all(dw[k] < 0 for k in range(-40, 1))  # depression for post-before-pre
    assert dw[40] < 0  # a long delay only pays the rate term
    # the depression lobe is carved by the refractory kernel: weakest just after the post spike
    assert abs(dw[-1]) < abs(dw[-10]) < abs(dw[-40])
    # the potentiation lobe follows the synaptic kernel: peak within the first bins, then decay
    assert np.argmax(result.dw) - 40 in (1, 2, 3)
    with pytest.raises(ValueError, match="connected"):
        eq.ml_window(spec, params, lags, pre=1, post=1)
    with pytest.raises(ValueError, match="lags_bins"):
        eq.ml_window(spec, params, np.array([0.5]))


def test_window_change_correlates_with_rate_derivative_prediction():
    dt_ms = 1.0
    rates = eq.random_slow_rates(jax.random.key(1), 64, 2000, dt_ms)
    lags = np.arange(-150, 151)
    window = stdp.pair_window(lags * dt_ms, 1.0, 1.0, 20.0, 20.0)  # balanced: Σ K = 0
    change = eq.window_weight_change(lags, window, rates[:32], rates[32:], dt_ms)
    assert np.abs(change.rate_term).max() < 1e-9
    assert np.corrcoef(change.window, change.derivative)[0, 1] > 0.95
    np.testing.assert_allclose(
        change.window, change.derivative, atol=0.08 * np.abs(change.window).max()
    )
    # an unbalanced window adds the rate term r_pre · r_post · Σ K
    skewed = stdp.pair_window(lags * dt_ms, 1.0, 0.5, 20.0, 40.0)
    change = eq.window_weight_change(lags, skewed, rates[:32], rates[32:], dt_ms)
    residual = change.window - change.rate_term
    assert np.corrcoef(residual, change.derivative)[0, 1] > 0.95
    with pytest.raises(ValueError, match="depth"):
        eq.random_slow_rates(jax.random.key(0), 2, 10, 1.0, depth=1.5)
    with pytest.raises(ValueError, match="2·max"):
        eq.window_weight_change(lags, window, rates[:2, :100], rates[2:4, :100], dt_ms)


def test_rate_derivative_rule_gives_antisymmetric_window():
    rates = eq.random_slow_rates(jax.random.key(2), 160, 4000, 1.0, mean_hz=30.0, max_freq_hz=3.0)
    result = eq.rate_derivative_window(
        jax.random.key(3), rates[:80], rates[80:], 1.0, max_lag_ms=100.0, n_bins=10
    )
    assert np.all(result.counts > 50)
    assert np.all(result.dw[:4] < 0) and np.all(result.dw[6:] > 0)  # depression ↔ potentiation
    assert np.sign(result.lags_ms[0]) == -1


def test_ep_continuous_rule_integrates_to_ep_update():
    spec = em.EnergyNetwork((4, 6, 3), "sigmoid", "squared_error")
    keys = jax.random.split(jax.random.key(0), 3)
    params = em.init_params(spec, keys[0], gain=0.6, dtype=jnp.float32)
    inputs = jax.random.uniform(keys[1], (5, 4))
    targets = jax.nn.one_hot(jax.random.randint(keys[2], (5,), 0, 3), 3)
    result = eq.ep_stdp(
        spec, params, inputs, targets, beta=0.2, n_steps=300, free=ep.Relaxation(0.5, 600, 1e-7)
    )
    for a, b, total, update in zip(*result, strict=True):
        np.testing.assert_allclose(jnp.sum(a + b, 0), total, atol=1e-6)
        assert float(jnp.abs(update).max()) > 1e-3
        np.testing.assert_allclose(total, update, atol=2e-5)
        # each term alone is a rate-derivative rule: ρ_pre · dρ_post (first) and dρ_pre · ρ_post
        assert float(jnp.abs(a).sum()) > 0
    assert float(jnp.abs(result.pre_change_times_post[0]).max()) == 0.0  # inputs are clamped


def test_ml_window_equals_monte_carlo_estimate_from_sampled_trains():
    """W_ML(Δt) = Σ_t ε(t − t_pre)(D_t − σ(u_t(D))) for the pair train D. Each σ(u_t(D)) is the
    probability that the GLM, sampled by probsnn.sample with the presynaptic spike clamped,
    fires at t given that its last L_fb bins equal D's (u_t depends on nothing else); the
    fraction of matching sampled trains that fire is an unbiased estimate of it given the past,
    so E[Ŵ] = W_ML and the bins' errors are uncorrelated martingale differences, giving the
    standard error Σ_t ε² h(1 − h)/n_t. Every lag must agree within 4 SE, the estimate alone
    must show the STDP sign structure, and windows with a misplaced synaptic kernel or without
    the feedback kernel must be rejected (the check has power)."""
    spec, params = glm_pair()
    lags = np.arange(-40, 41)
    exact = eq.ml_window(spec, params, lags).dw
    mc = eq.ml_window_monte_carlo(jax.random.key(7), spec, params, lags, 50_000)
    np.testing.assert_array_equal(mc.lags_bins, lags)
    assert np.all(mc.n_matched >= 100)
    assert np.all(mc.stderr < 0.06)
    assert np.max(np.abs(mc.dw - exact) / mc.stderr) < 4.0
    # sign structure of the sampled estimate: potentiation within the synaptic kernel,
    # depression for post-before-pre and at delays the synaptic kernel has forgotten
    lower, upper = mc.dw - 4 * mc.stderr, mc.dw + 4 * mc.stderr
    assert np.all(lower[41:46] > 0)  # Δt = 1..5
    assert np.all(upper[:41] < 0)  # Δt = −40..0
    assert np.all(upper[-10:] < 0)  # Δt = 31..40
    # the refractory kernel carves the depression: weakest just after the post spike
    assert upper[0] < lower[39]  # W(−40) < W(−1)
    # power: the window one bin late, or with the refractory kernel removed, is rejected
    assert np.max(np.abs(mc.dw[1:] - exact[:-1]) / mc.stderr[1:]) > 10
    no_feedback = eq.ml_window(spec, params._replace(v=jnp.zeros_like(params.v)), lags).dw
    assert np.max(np.abs(mc.dw - no_feedback) / mc.stderr) > 10
    with pytest.raises(TypeError, match="n_samples"):
        eq.ml_window_monte_carlo(jax.random.key(0), spec, params, lags, 0.5)
    with pytest.raises(ValueError, match="connected"):
        eq.ml_window_monte_carlo(jax.random.key(0), spec, params, lags, 10, pre=1, post=1)
