"""Maximum-likelihood fits: oracle (statsmodels), recovery, penalties, the online rule, the
likelihood trainers (Newton, online), and the solver's honesty (converged only when the stopping
rule was met; warnings for separation and for stopping early)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import statsmodels.api as sm
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import probsnn as ps
from conftest import make_network, random_inputs
from probsnn import kernels
from probsnn.design import build_design, coef_to_params, params_to_coef
from probsnn.glm import contract
from probsnn.inference import (
    ConvergenceWarning,
    SeparationWarning,
    fit,
    fit_ml,
    fit_ml_streaming,
    ml_online_trainer,
    ml_rule,
    newton_trainer,
)
from probsnn.inference.likelihood import newton
from probsnn.inference.likelihood.newton import NewtonInfo, NewtonState, newton_step
from probsnn.inference.likelihood.online import MLSignals, local_gradient


@pytest.mark.parametrize("preconditioner", ["neuron", "shared"])
@pytest.mark.parametrize("kind", ["sparse_separate_feedback", "inputs"])
def test_fit_equals_statsmodels_logit(kind, preconditioner, x64):
    spec = make_network(kind)
    params = spec.init_params(jax.random.key(0), rate=60.0)
    inputs = random_inputs(spec, jax.random.key(1), 3000, n_trials=2)
    spikes = ps.sample(spec, params, jax.random.key(2), 3000, n_trials=2, inputs=inputs)
    spikes = jnp.asarray(spikes, jnp.float64)
    inputs = None if inputs is None else jnp.asarray(inputs, jnp.float64)
    fit = fit_ml(spec, spikes, inputs, tol=1e-13, preconditioner=preconditioner)
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


@pytest.mark.parametrize("preconditioner", ["neuron", "shared"])
def test_l2_penalty_satisfies_its_stationarity_condition(preconditioner, x64):
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0), rate=50.0)
    spikes = jnp.asarray(ps.sample(spec, params, jax.random.key(1), 2000), jnp.float64)
    l2 = 25.0
    fit = fit_ml(spec, spikes, l2=l2, tol=1e-13, preconditioner=preconditioner)
    grad = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes))(fit.params)
    # ∇ log-lik = λ θ for every penalised coefficient, 0 for the bias
    np.testing.assert_allclose(np.asarray(grad.w), l2 * np.asarray(fit.params.w), atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad.v), l2 * np.asarray(fit.params.v), atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad.bias), 0.0, atol=1e-6)
    unpenalised = fit_ml(spec, spikes)
    assert np.sum(np.asarray(fit.params.w) ** 2) < np.sum(np.asarray(unpenalised.params.w) ** 2)


@pytest.mark.parametrize("preconditioner", ["neuron", "shared"])
def test_l1_penalty_satisfies_its_kkt_conditions(preconditioner, x64):
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0), rate=50.0, weight_scale=0.5)
    spikes = jnp.asarray(ps.sample(spec, params, jax.random.key(1), 2000), jnp.float64)
    l1 = 8.0
    fit = fit_ml(spec, spikes, l1=l1, tol=1e-14, preconditioner=preconditioner)
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


@pytest.mark.parametrize("kind", ["dense", "sparse_separate_feedback"])
def test_shared_preconditioner_holds_one_factorisation(kind, monkeypatch, x64):
    """ "auto" shares one eigendecomposition above SHARED_ABOVE elements of per-neuron factors:
    P² + 2·P·N numbers instead of N·P². On the columns m_i a neuron uses it applies
    m_i ⊙ (d̄_i XᵀX + λ₂ I)⁻¹ (m_i ⊙ r): the exact inverse of the Gram Hessian for a neuron
    that uses every column, zero on the columns it does not use."""
    spec = make_network(kind)
    params = spec.init_params(jax.random.key(0), rate=50.0)
    spikes = jnp.asarray(ps.sample(spec, params, jax.random.key(1), 500), jnp.float64)
    design = build_design(spec, spikes)
    n_cols, n = design.mask.shape
    assert newton.check_preconditioner("auto", n, n_cols, None) == "neuron"
    monkeypatch.setattr(newton, "SHARED_ABOVE", n * n_cols**2 - 1)
    assert newton.check_preconditioner("auto", n, n_cols, None) == "shared"
    start = newton._initial_coef(spec, design, None)
    shared = newton.gram_preconditioner(design, start, 1.0, "shared")
    assert shared.q.shape == (n_cols, n_cols) and shared.inverse.shape == (n_cols, n)
    x, mask = np.asarray(design.x), np.asarray(design.mask)
    scale = np.asarray(newton._gram_scale(design, start))
    r = np.random.default_rng(0).normal(size=(n_cols, n)) * mask
    z = np.asarray(newton._precondition(shared, jnp.asarray(r)))
    assert np.all(z[~mask] == 0)
    for i in np.flatnonzero(mask.all(axis=0)):
        hessian = scale[i] * x.T @ x + np.eye(n_cols)
        np.testing.assert_allclose(hessian @ z[:, i], r[:, i], rtol=1e-8, atol=1e-8)
    assert (kind == "dense") == bool(mask.all())  # the dense network checks the inverse
    with pytest.raises(ValueError, match="preconditioner must be one of"):
        newton.check_preconditioner("cholesky", n, n_cols, None)


def test_conjugate_gradients_multiply_only_the_unsolved_columns(x64):
    """active_product gathers the active columns into the narrowest bucket (40, 20, 10) that
    holds them: the product is exact on every active column, and only that bucket's columns
    are multiplied (the rest come back zero)."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(30, 6)))
    weights = jnp.asarray(rng.uniform(0.5, 2.0, size=(30, 40)))  # a Hessian per column

    def product(v, columns):
        w = weights if columns is None else weights[:, columns]
        return x.T @ (w * (x @ v))

    assert newton.column_buckets(40) == (40, 20, 10)
    assert newton.column_buckets(16) == (16,) and newton.column_buckets(17) == (17, 9)
    v = jnp.asarray(rng.normal(size=(6, 40)))
    full = np.asarray(product(v, None))
    for n_active in (39, 21, 20, 11, 10, 1):
        active = np.zeros(40, bool)
        active[rng.choice(40, n_active, replace=False)] = True
        got = np.asarray(jax.jit(newton.active_product, static_argnums=0)(product, v, active))
        np.testing.assert_allclose(got[:, active], full[:, active], rtol=1e-12)
        width = min(w for w in (40, 20, 10) if w >= n_active)
        assert np.sum(np.any(got != 0, axis=0)) == width


def test_fits_multiply_at_full_float32_precision(monkeypatch):
    """fit_ml, the Newton trainer and the streamed fit trace their products under
    jax.default_matmul_precision("highest") (GPUs multiply float32 in TF32 by default, too
    coarse for Newton's stopping rule), leave the caller's setting as it was, and still warn at
    the caller's line."""
    from probsnn.inference.likelihood import streaming

    seen = []

    def spy(module, name):
        original = getattr(module, name)

        def recorded(*args, **kwargs):
            seen.append((name, jax.config.jax_default_matmul_precision))
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, recorded)

    spy(newton, "newton_step")
    spy(streaming, "_chunk_gradient")
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0), rate=50.0)
    spikes = ps.sample(spec, params, jax.random.key(1), 400)
    with pytest.warns(ConvergenceWarning) as caught:  # max_iter=2: stopped early
        fit_ml(spec, spikes, l2=1.0, max_iter=2)
        fit_ml_streaming(spec, spikes, l2=1.0, max_iter=2, chunk_bins=200)
    assert [warning.filename for warning in caught] == [__file__] * 2  # the caller's line
    trainer = newton_trainer(spec, spikes, l2=1.0)
    trainer.step(None, trainer.init())
    assert {name for name, _ in seen} == {"newton_step", "_chunk_gradient"}
    assert {precision for _, precision in seen} == {"highest"}
    assert jax.config.jax_default_matmul_precision is None


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


def test_rule_sums_to_the_gradient_of_the_negative_log_likelihood():
    """Σ_t ml_rule over all bins and trials equals jax.grad of −log p (the loss); the score
    local_gradient is its negative, jax.grad of log p."""
    spec = make_network("inputs")
    params = spec.init_params(jax.random.key(0), rate=60.0)
    inputs = random_inputs(spec, jax.random.key(1), 400, n_trials=2)
    spikes = ps.sample(spec, params, jax.random.key(2), 400, n_trials=2, inputs=inputs)
    x = ps.traces(spec, spikes, inputs)
    rule = ml_rule(spec, kappa=0.0)

    def one_bin(t):
        signals = MLSignals(ps.Traces(*(None if a is None else a[:, t] for a in x)), spikes[:, t])
        grads, _ = rule.update(signals, rule.init(params), params)
        return grads, local_gradient(spec, params, signals)

    grads, scores = jax.lax.map(one_bin, jnp.arange(400))
    summed, score = (jax.tree.map(lambda a: a.sum(0), tree) for tree in (grads, scores))
    loss_grad = jax.grad(lambda p: -ps.log_likelihood(spec, p, spikes, inputs))(params)
    for name, got, minus_score, want in zip(
        ps.Params._fields, summed, score, loss_grad, strict=True
    ):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-3, err_msg=name
        )
        np.testing.assert_allclose(np.asarray(minus_score), -np.asarray(got), err_msg=name)


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
    grad = ml_rule(spec).update(signals, ml_rule(spec).init(params), params)[0]
    # every neuron spiked: ∂/∂γ of the loss −log σ(u) is σ(u) − 1 < 0
    u = contract(spec, params, signals.traces)
    np.testing.assert_allclose(np.asarray(grad.bias), np.asarray(jax.nn.sigmoid(u) - 1), rtol=1e-6)
    chained = optax.chain(ml_rule(spec), optax.sgd(0.1))
    updates, _ = chained.update(signals, chained.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(
        np.asarray(new.bias), np.asarray(params.bias - 0.1 * grad.bias), rtol=1e-6
    )
    assert np.all(np.asarray(new.bias) > np.asarray(params.bias))
    with pytest.raises(ValueError, match="kappa"):
        ml_rule(spec, kappa=1.0)
    with pytest.raises(ValueError, match="params"):
        ml_rule(spec).update(signals, ml_rule(spec).init(params))


# neuron 0 spikes twice in 40 000 bins: its MLE is at infinity
@pytest.mark.filterwarnings("ignore::probsnn.inference.SeparationWarning")
def test_online_trainer_streams_and_increases_the_likelihood():
    spec = ps.Network(4, kernels.raised_cosine(2, 1, 6), dt=1e-3)
    truth = spec.init_params(jax.random.key(0), rate=80.0, weight_scale=2.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), 20_000, n_trials=2)
    start = spec.init_params(jax.random.key(2), rate=80.0, weight_scale=0.0, refractory=0.0)
    # the learning rate lives in the optimizer's state: changing it reuses the compiled step
    trainer = ml_online_trainer(
        spec, optax.inject_hyperparams(optax.sgd)(learning_rate=2e-3), kappa=0.5
    )
    state, info = trainer.step(jax.random.key(3), trainer.init(start), spikes)
    assert info.log_likelihood.shape == (20_000,)
    np.testing.assert_allclose(float(info.loss), -float(info.log_likelihood.sum()) / 40_000)
    before = float(ps.log_likelihood(spec, start, spikes))
    after = float(ps.log_likelihood(spec, state.params, spikes))
    best = fit_ml(spec, spikes).info.log_likelihood
    assert after > before
    # it closes most of the gap to the batch optimum
    assert (best - after) < 0.2 * (best - before)
    # another learning rate and other data of the same shape reuse the compiled step
    compiled = trainer.step._cache_size()
    state.opt_state.hyperparams["learning_rate"] = jnp.asarray(1e-3, jnp.float32)
    trainer.step(jax.random.key(4), state, spikes[::-1])
    assert trainer.step._cache_size() == compiled == 1


def test_online_trainer_step_is_the_rule_applied_bin_by_bin():
    """One step on (spikes, inputs) equals chain(ml_rule, sgd) applied to each bin's parallel
    traces in turn (the ring buffers reproduce ps.traces); fit drives it over mini-batches."""
    spec = make_network("inputs")
    params = spec.init_params(jax.random.key(0), rate=60.0)
    inputs = random_inputs(spec, jax.random.key(1), 30, n_trials=4)
    spikes = ps.sample(spec, params, jax.random.key(2), 30, n_trials=4, inputs=inputs)
    optimizer = optax.sgd(0.05)
    trainer = ml_online_trainer(spec, optimizer, kappa=0.3)
    state, info = trainer.step(jax.random.key(3), trainer.init(params), (spikes, inputs))

    rule = optax.chain(ml_rule(spec, 0.3), optimizer)
    x = ps.traces(spec, spikes, inputs)
    expected, rule_state, log_lik = params, rule.init(params), []
    for t in range(30):
        bin_traces = ps.Traces(*(None if a is None else a[:, t] for a in x))
        u = contract(spec, expected, bin_traces)
        log_lik.append(float(jnp.sum(ps.bernoulli_log_prob(spikes[:, t], u))))
        updates, rule_state = rule.update(MLSignals(bin_traces, spikes[:, t]), rule_state, expected)
        expected = optax.apply_updates(expected, updates)
    for name, got, want in zip(ps.Params._fields, state.params, expected, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(np.asarray(info.log_likelihood), log_lik, rtol=1e-5)

    result = fit(
        trainer,
        params,
        (spikes, inputs),
        key=jax.random.key(4),
        epochs=3,
        batch_size=2,
        progress=False,
    )
    assert result.history["loss"].shape == (3,)
    assert trainer.step._cache_size() == 2  # (4, 30) and (2, 30) batches

    with pytest.raises(ValueError, match="hidden"):
        ml_online_trainer(ps.Network(5, spec.synapse_basis, visible=np.arange(5) < 3), optimizer)
    with pytest.raises(ValueError, match="inputs"):
        trainer.step(jax.random.key(0), state, spikes)
    with pytest.raises(ValueError, match=r"\(B, T, N\)"):
        trainer.step(jax.random.key(0), state, (spikes[0], inputs[0]))


def test_newton_trainer_is_fit_ml_step_by_step():
    spec = make_network("inputs")
    params = spec.init_params(jax.random.key(0), rate=60.0)
    inputs = random_inputs(spec, jax.random.key(1), 1000, n_trials=2)
    spikes = ps.sample(spec, params, jax.random.key(2), 1000, n_trials=2, inputs=inputs)
    reference = fit_ml(spec, spikes, inputs, l2=0.5)
    trainer = newton_trainer(spec, spikes, inputs, l2=0.5)
    state = trainer.init(None)
    assert isinstance(state, NewtonState)
    infos = []

    def stop_when_converged(epoch, state, info):
        infos.append(info)
        return bool(info["converged"])

    result = fit(
        trainer,
        None,
        None,
        key=jax.random.key(3),
        epochs=50,
        callback=stop_when_converged,
        progress=False,
    )
    assert len(infos) == reference.info.n_iterations
    np.testing.assert_allclose(result.history["loss"], reference.info.history[1:], rtol=1e-6)
    for name, got, want in zip(ps.Params._fields, result.params, reference.params, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6, err_msg=name)
    # a state holds Params and coefficients of the same iterate; the loss is the objective
    _, info = trainer.step(None, result.state)
    assert isinstance(info, NewtonInfo) and bool(info.converged)
    np.testing.assert_allclose(
        np.asarray(params_to_coef(spec, result.state.params)), np.asarray(result.state.coef)
    )
    assert float(info.loss) == pytest.approx(float(np.sum(reference.info.objective)), rel=1e-5)
    with pytest.raises(ValueError, match="batch=None"):
        trainer.step(None, state, spikes)
    with pytest.raises(ValueError, match="l2"):
        newton_trainer(spec, spikes, inputs, l2=-1.0)


@pytest.mark.filterwarnings("ignore::probsnn.inference.SeparationWarning")  # seed 1: 500 bins
def test_newton_step_compiles_once_per_design_shape():
    spec = make_network("dense")
    params = spec.init_params(jax.random.key(0), rate=80.0)
    for seed in (1, 2):
        spikes = ps.sample(spec, params, jax.random.key(seed), 500)
        fit_result = fit_ml(spec, spikes)
        assert fit_result.info.n_iterations > 1
        if seed == 1:
            compiled = newton_step._cache_size()
    trainer = newton_trainer(spec, spikes)
    trainer.step(None, trainer.init(params))
    assert newton_step._cache_size() == compiled


# --------------------------------------------------------------------------------------------
# Solver honesty
# --------------------------------------------------------------------------------------------
SMALL = ps.Network(3, kernels.raw_lags(2), dt=1e-2)


def _small_spikes(seed=0, n_steps=300):
    params = SMALL.init_params(jax.random.key(seed), rate=20.0)
    return ps.sample(SMALL, params, jax.random.key(seed + 1), n_steps, n_trials=2)


def _separable_neurons(spec, spikes):
    """The neurons whose spikes some direction of the covariates separates (the MLE is at
    infinity), by linear programming: max Σ_r (2s_r − 1) x_r·d subject to every term >= 0 and
    |d| <= 1 is positive exactly then (Konis 2007)."""
    design = build_design(spec, spikes)
    x, y = np.asarray(design.x, np.float64), np.asarray(design.targets)
    mask = np.asarray(design.mask)
    found = []
    for neuron in range(spec.n_neurons):
        terms = x[:, mask[:, neuron]] * (2 * y[:, neuron : neuron + 1] - 1)
        result = linprog(-terms.sum(0), A_ub=-terms, b_ub=np.zeros(len(terms)), bounds=(-1, 1))
        if -result.fun > 1e-6:
            found.append(neuron)
    return found


def test_fit_checks_its_iteration_counts_and_tolerances():
    spikes = _small_spikes()
    for name, bad in [("max_iter", 0), ("max_iter", -2), ("max_cg", 0)]:
        with pytest.raises(ValueError, match=rf"{name} must be >= 1"):
            fit_ml(SMALL, spikes, **{name: bad})
    with pytest.raises(TypeError, match="max_iter must be an integer"):
        fit_ml(SMALL, spikes, max_iter=2.5)
    for bad in (0.0, -1e-7, np.nan, np.inf):
        with pytest.raises(ValueError, match="tol must be finite and > 0"):
            fit_ml(SMALL, spikes, tol=bad)
        with pytest.raises(ValueError, match="tol must be finite and > 0"):
            newton_trainer(SMALL, spikes, tol=bad)
    with pytest.raises(ValueError, match="max_cg must be >= 1"):
        newton_trainer(SMALL, spikes, max_cg=0)
    with pytest.raises(TypeError, match="progress must be a bool"):
        fit_ml(SMALL, spikes, progress="yes")


def test_converged_means_the_stopping_rule_was_met():
    spikes = _small_spikes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_result = fit_ml(SMALL, spikes)
    assert fit_result.info.converged and fit_result.info.criterion <= 1e-7
    with pytest.warns(ConvergenceWarning, match="max_iter=1 Newton iterations ran out"):
        early = fit_ml(SMALL, spikes, max_iter=1)
    assert not early.info.converged and early.info.criterion > 1e-7
    # float32 data resolve the objective to about 1e-8 nats per bin, the decrement to about
    # 1e-15: tol=1e-20 cannot be met; the solver stalls or runs out of iterations, and says so
    with pytest.warns(ConvergenceWarning, match="did not converge: .*(ran out|precision)"):
        tight = fit_ml(SMALL, spikes, tol=1e-20, max_iter=20)
    assert not tight.info.converged and tight.info.criterion > 1e-20


@pytest.mark.parametrize(
    "far",
    [
        {"bias": 1e4},
        {"bias": -1e4},
        {"bias": 1e30},
        {"w": 1e3},
        {"w": -1e3},
    ],
    ids=["bias 1e4", "bias -1e4", "bias 1e30", "w 1e3", "w -1e3"],
)
def test_a_far_away_start_converges_to_the_same_fit(far):
    """Where every fitted probability is numerically 0 or 1 the Hessian has no curvature; the
    solver restarts such neurons at the default start instead of returning the start with a NaN
    criterion."""
    spikes = _small_spikes()
    reference = fit_ml(SMALL, spikes)
    start = SMALL.init_params(jax.random.key(5))
    start = start._replace(
        **{name: jnp.full_like(getattr(start, name), value) for name, value in far.items()}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit_ml(SMALL, spikes, init=start)
    assert result.info.converged and np.isfinite(result.info.criterion)
    np.testing.assert_allclose(result.info.objective, reference.info.objective, rtol=1e-5)


def test_a_non_finite_criterion_warns_and_stops(monkeypatch):
    spikes = _small_spikes()
    real_step = newton.newton_step

    def broken_step(*args):
        state, info = real_step(*args)
        return state, info._replace(decrement=info.decrement * jnp.nan)

    monkeypatch.setattr(newton, "newton_step", broken_step)
    with pytest.warns(ConvergenceWarning, match="criterion .* became non-finite"):
        result = fit_ml(SMALL, spikes)
    assert not result.info.converged and result.info.n_iterations == 1


def test_separable_data_warn_that_the_mle_is_at_infinity():
    spec = ps.Network(2, kernels.raw_lags(1), dt=1e-2)
    rng = np.random.default_rng(0)
    complete = np.zeros((1000, 2), np.uint8)  # neuron 1 spikes exactly one bin after neuron 0
    complete[:, 0] = rng.random(1000) < 0.3
    complete[1:, 1] = complete[:-1, 0]
    quasi = np.zeros((2000, 2), np.uint8)  # neuron 1 never spikes right after neuron 0
    quasi[:, 0] = rng.random(2000) < 0.3
    quasi[1:, 1] = (rng.random(1999) < 0.3) & (quasi[:-1, 0] == 0)
    for spikes in (complete, quasi):
        assert _separable_neurons(spec, spikes) == [1]
        for options in ({}, {"tol": 1e-10}, {"max_iter": 10}):
            with pytest.warns(SeparationWarning, match=r"neurons \[1\] diverge"):
                result = fit_ml(spec, spikes, **options)
            assert not result.info.converged
        with warnings.catch_warnings():  # a penalty makes the MLE finite
            warnings.simplefilter("error")
            assert fit_ml(spec, spikes, l2=1.0).info.converged


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10**6))
def test_the_separation_warning_names_exactly_the_separable_neurons(seed):
    """Against a linear program on random small data sets (about two thirds of them separable):
    no false alarm, no separable neuron missed."""
    params = SMALL.init_params(jax.random.key(seed), rate=20.0, weight_scale=2.0)
    spikes = np.asarray(ps.sample(SMALL, params, jax.random.key(seed + 1), 200))
    counts = spikes.sum(axis=0)
    assume(np.all((counts > 0) & (counts < len(spikes))))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_ml(SMALL, spikes)
    flagged = [w for w in caught if issubclass(w.category, SeparationWarning)]
    expected = _separable_neurons(SMALL, spikes)
    if expected:
        assert len(flagged) == 1 and f"neurons {expected} diverge" in str(flagged[0].message)
        assert not result.info.converged
    else:
        assert not flagged
