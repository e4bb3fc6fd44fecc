"""Maximum-likelihood fits: oracle (statsmodels), recovery, penalties, the online rule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import statsmodels.api as sm

import probsnn as ps
from conftest import make_network, random_inputs
from probsnn import kernels
from probsnn.design import build_design, coef_to_params, params_to_coef
from probsnn.inference import fit_ml, fit_ml_online, ml_rule
from probsnn.inference.likelihood.online import MLSignals


@pytest.mark.parametrize("kind", ["sparse_separate_feedback", "inputs"])
def test_fit_equals_statsmodels_logit(kind, x64):
    spec = make_network(kind)
    params = spec.init_params(jax.random.key(0), rate=60.0)
    inputs = random_inputs(spec, jax.random.key(1), 3000, n_trials=2)
    spikes = ps.sample(spec, params, jax.random.key(2), 3000, n_trials=2, inputs=inputs)
    spikes = jnp.asarray(spikes, jnp.float64)
    inputs = None if inputs is None else jnp.asarray(inputs, jnp.float64)
    fit = fit_ml(spec, spikes, inputs, tol=1e-13)
    assert fit.info.converged
    design = build_design(spec, spikes, inputs)
    x, y, mask = np.asarray(design.x), np.asarray(design.targets), np.asarray(design.mask)
    coef = np.asarray(params_to_coef(spec, fit.params))
    total = 0.0
    for i in range(spec.n_neurons):
        oracle = sm.Logit(y[:, i], x[:, mask[:, i]]).fit(
            disp=0, method="newton", tol=1e-12, maxiter=100
        )
        np.testing.assert_allclose(coef[mask[:, i], i], oracle.params, atol=1e-4, rtol=0)
        assert -fit.info.objective[i] == pytest.approx(oracle.llf, abs=1e-4)
        total += oracle.llf
    assert fit.info.log_likelihood == pytest.approx(total, abs=1e-4)
    assert fit.info.log_likelihood == pytest.approx(
        float(ps.log_likelihood(spec, fit.params, spikes, inputs)), abs=1e-6
    )


def test_design_round_trip(x64):
    for kind in ("dense", "sparse_separate_feedback", "inputs"):
        spec = make_network(kind)
        params = jax.tree.map(
            lambda a: jnp.asarray(a, jnp.float64), spec.init_params(jax.random.key(3))
        )
        back = coef_to_params(spec, params_to_coef(spec, params))
        for a, b in zip(back, params, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-15)
        # u = X B reproduces the potentials
        inputs = random_inputs(spec, jax.random.key(4), 50)
        spikes = ps.sample(spec, params, jax.random.key(5), 50, inputs=inputs)
        design = build_design(spec, jnp.asarray(spikes, jnp.float64), inputs)
        u = design.x @ params_to_coef(spec, params)
        expected = ps.potentials(spec, params, jnp.asarray(spikes, jnp.float64), inputs)
        np.testing.assert_allclose(np.asarray(u), np.asarray(expected), atol=1e-10)


@pytest.mark.slow
def test_coupling_kernels_recovered_from_1e5_bins():
    basis = kernels.raised_cosine(4, 1, 15)
    spec = ps.Network(10, basis, dt=2e-3)
    truth = spec.init_params(jax.random.key(10), rate=20.0, weight_scale=1.0, refractory=3.0)
    spikes = ps.sample(spec, truth, jax.random.key(11), 100_000)
    fit = fit_ml(spec, spikes)
    assert fit.info.converged
    mask = spec.connectivity
    true_kernels = np.asarray(spec.coupling_kernels(truth))[mask]
    fitted = np.asarray(spec.coupling_kernels(fit.params))[mask]
    r = np.corrcoef(true_kernels.ravel(), fitted.ravel())[0, 1]
    assert r > 0.95, r
    r_fb = np.corrcoef(
        np.asarray(spec.feedback_kernels(truth)).ravel(),
        np.asarray(spec.feedback_kernels(fit.params)).ravel(),
    )[0, 1]
    assert r_fb > 0.95, r_fb


def test_l2_penalty_satisfies_its_stationarity_condition(x64):
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0), rate=50.0)
    spikes = jnp.asarray(ps.sample(spec, params, jax.random.key(1), 2000), jnp.float64)
    l2 = 25.0
    fit = fit_ml(spec, spikes, l2=l2, tol=1e-13)
    grad = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes))(fit.params)
    # ∇ log-lik = λ θ for every penalised coefficient, 0 for the bias
    np.testing.assert_allclose(np.asarray(grad.w), l2 * np.asarray(fit.params.w), atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad.v), l2 * np.asarray(fit.params.v), atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad.bias), 0.0, atol=1e-6)
    unpenalised = fit_ml(spec, spikes)
    assert np.sum(np.asarray(fit.params.w) ** 2) < np.sum(np.asarray(unpenalised.params.w) ** 2)


def test_l1_penalty_satisfies_its_kkt_conditions(x64):
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0), rate=50.0, weight_scale=0.5)
    spikes = jnp.asarray(ps.sample(spec, params, jax.random.key(1), 2000), jnp.float64)
    l1 = 8.0
    fit = fit_ml(spec, spikes, l1=l1, tol=1e-14)
    assert fit.info.converged
    grad = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes))(fit.params)
    g = np.concatenate([np.asarray(grad.w)[spec.connectivity].ravel(), np.asarray(grad.v).ravel()])
    b = np.concatenate(
        [np.asarray(fit.params.w)[spec.connectivity].ravel(), np.asarray(fit.params.v).ravel()]
    )
    active = b != 0
    assert (~active).sum() > 0, "a penalty this strong zeroes some coefficients"
    np.testing.assert_allclose(g[active], l1 * np.sign(b[active]), atol=1e-4)
    assert np.all(np.abs(g[~active]) <= l1 + 1e-4)
    np.testing.assert_allclose(np.asarray(grad.bias), 0.0, atol=1e-4)


def test_fit_rejects_bad_arguments():
    spec = make_network("dense")
    spikes = jnp.zeros((50, 5))
    with pytest.raises(ValueError, match="l2"):
        fit_ml(spec, spikes, l2=-1.0)
    with pytest.raises(ValueError, match="l1"):
        fit_ml(spec, spikes, l1=np.nan)
    hidden = ps.Network(5, spec.synapse_basis, visible=np.arange(5) < 3)
    with pytest.raises(ValueError, match="hidden"):
        fit_ml(hidden, spikes)
    with pytest.raises(ValueError, match="binary"):
        fit_ml(spec, spikes.at[0, 0].set(3.0))
    with pytest.raises(ValueError, match=r"neurons \[0, 1, 2, 3, 4\] are all 0"):
        fit_ml(spec, spikes)
    assert np.isfinite(fit_ml(spec, spikes, l2=1.0).info.log_likelihood)


def test_local_rule_sums_to_the_exact_gradient():
    """Σ_t (pre-trace × (s − σ(u))) over all bins and trials equals jax.grad of log p."""
    spec = make_network("inputs")
    params = spec.init_params(jax.random.key(0), rate=60.0)
    inputs = random_inputs(spec, jax.random.key(1), 400, n_trials=2)
    spikes = ps.sample(spec, params, jax.random.key(2), 400, n_trials=2, inputs=inputs)
    x = ps.traces(spec, spikes, inputs)
    rule = ml_rule(spec, kappa=0.0)

    def one_bin(t):
        signals = MLSignals(ps.Traces(*(None if a is None else a[:, t] for a in x)), spikes[:, t])
        updates, _ = rule.update(signals, rule.init(params), params)
        return updates

    summed = jax.tree.map(lambda a: a.sum(0), jax.lax.map(one_bin, jnp.arange(400)))
    exact = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes, inputs))(params)
    for name, got, want in zip(ps.Params._fields, summed, exact, strict=True):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-3, err_msg=name
        )


def test_rule_chains_with_optax_and_eligibility_filters():
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0))
    x = ps.traces(spec, jnp.ones((3, 5)))
    signals = MLSignals(ps.Traces(x.syn[1], None, None), jnp.ones(5))
    rule = ml_rule(spec, kappa=0.75)
    state = rule.init(params)
    first, state = rule.update(signals, state, params)
    second, _ = rule.update(signals, state, params)
    # e_1 = (1 − κ) g, e_2 = κ e_1 + (1 − κ) g = (1 − κ²) g
    np.testing.assert_allclose(np.asarray(second.bias), (1 + 0.75) * np.asarray(first.bias))
    chained = optax.chain(ml_rule(spec), optax.scale(0.1))
    updates, _ = chained.update(signals, chained.init(params), params)
    new = optax.apply_updates(params, updates)
    grad = ml_rule(spec).update(signals, ml_rule(spec).init(params), params)[0]
    np.testing.assert_allclose(
        np.asarray(new.bias), np.asarray(params.bias + 0.1 * grad.bias), rtol=1e-6
    )
    with pytest.raises(ValueError, match="kappa"):
        ml_rule(spec, kappa=1.0)


def test_online_fit_streams_and_increases_the_likelihood():
    spec = ps.Network(4, kernels.raised_cosine(2, 1, 6), dt=1e-3)
    truth = spec.init_params(jax.random.key(0), rate=80.0, weight_scale=2.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), 20_000, n_trials=2)
    start = spec.init_params(jax.random.key(2), rate=80.0, weight_scale=0.0, refractory=0.0)
    online = fit_ml_online(spec, start, spikes, learning_rate=2e-3, kappa=0.5)
    assert online.log_likelihood.shape == (20_000,)
    before = float(ps.log_likelihood(spec, start, spikes))
    after = float(ps.log_likelihood(spec, online.params, spikes))
    best = fit_ml(spec, spikes).info.log_likelihood
    assert after > before
    # it closes most of the gap to the batch optimum
    assert (best - after) < 0.2 * (best - before)
    # another learning rate and other data of the same shape reuse the compiled stream
    from probsnn.inference.likelihood.online import _stream

    compiled = _stream._cache_size()
    fit_ml_online(spec, online.params, spikes[::-1], learning_rate=1e-3, kappa=0.5)
    assert _stream._cache_size() == compiled


def test_newton_step_compiles_once_per_design_shape():
    from probsnn.inference.likelihood.newton import newton_step

    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0), rate=80.0)
    for seed in (1, 2):
        spikes = ps.sample(spec, params, jax.random.key(seed), 500)
        fit = fit_ml(spec, spikes)
        assert fit.info.n_iterations > 1
        if seed == 1:
            compiled = newton_step._cache_size()
    assert newton_step._cache_size() == compiled
