"""Multi-sample bounds, VIMCO and GEM (gradients of the losses −IW_K and −log p(x)), and the
estimators of log p(x) against exact enumeration."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import logsumexp
from tiny_hidden import TARGET, tiny_network

import probsnn as ps
from probsnn.inference import fit
from probsnn.inference.latent import multisample, variational
from probsnn.inference.latent.trainer import variational_trainer

SHORT = TARGET[:3]  # T = 3: 2^6 hidden rasters, 2^12 pairs


def test_enumeration_matches_brute_force_and_q_normalises():
    """T = 3: log p(x) from an itertools loop over hidden rasters through ps.log_likelihood; q
    sums to one; ELBO ≤ log p(x); batched sequences give the unbatched values; T·N_h > 16 raises."""
    spec, params = tiny_network()
    joint = []
    for bits in itertools.product([0, 1], repeat=6):
        raster = np.zeros((3, 4))
        raster[:, :2] = SHORT
        raster[:, 2:] = np.reshape(bits, (3, 2))
        joint.append(float(ps.log_likelihood(spec, params, raster)))
    exact = multisample.exact_log_marginal(spec, params, SHORT)
    assert float(exact) == pytest.approx(float(logsumexp(np.array(joint))), abs=1e-5)
    terms = multisample.enumerate_terms(spec, params, SHORT)
    assert terms.signal.shape == (64,)
    assert float(logsumexp(terms.log_q)) == pytest.approx(0.0, abs=1e-5)
    assert float(multisample.exact_elbo(spec, params, SHORT)) < float(exact)
    both = np.stack([SHORT, SHORT[::-1]])
    batched = multisample.exact_log_marginal(spec, params, both)
    assert batched.shape == (2,)
    assert float(batched[0]) == pytest.approx(float(exact), abs=1e-5)
    with pytest.raises(ValueError, match=r"T \* N_hidden <= 16, got T=9 and N_hidden=2"):
        multisample.exact_log_marginal(spec, params, np.zeros((9, 2)))


@pytest.mark.slow
def test_iw_bounds_sit_between_elbo_and_log_marginal_and_converge():
    """T = 8, 65 536 completions split into R draws of IW_K: IW_1 is the exact ELBO (4 SE), IW_K
    does not decrease in K (3 SE), stays below log p(x) (3 SE) and is within 0.05 nats of it at
    K = 1024."""
    spec, params = tiny_network()
    log_marginal = float(multisample.exact_log_marginal(spec, params, TARGET))
    elbo = float(multisample.exact_elbo(spec, params, TARGET))
    assert log_marginal - elbo > 1.0  # the hidden neurons matter
    estimates = {}
    for k in (1, 4, 16, 64, 256, 1024):
        estimates[k] = multisample.iw_bound_estimate(
            spec, params, TARGET, key=jax.random.key(k), n_samples=k, n_repeats=65_536 // k
        )
    print({k: round(float(e.value), 4) for k, e in estimates.items()}, log_marginal, elbo)
    assert abs(float(estimates[1].value) - elbo) < 4 * float(estimates[1].standard_error)
    ks = sorted(estimates)
    for small, large in itertools.pairwise(ks):
        a, b = estimates[small], estimates[large]
        assert float(b.value) > float(a.value) - 3 * float(
            np.hypot(a.standard_error, b.standard_error)
        )
    for e in estimates.values():
        assert float(e.value) < log_marginal + 3 * float(e.standard_error)
    assert abs(float(estimates[1024].value) - log_marginal) < 0.05
    assert float(estimates[4].value) > elbo + 0.3


@pytest.mark.slow
def test_importance_sampling_and_particle_filter_lie_within_three_se_of_exact():
    spec, params = tiny_network()
    exact_one = float(multisample.exact_log_marginal(spec, params, TARGET))
    sampled = multisample.log_marginal_is(
        spec, params, TARGET, key=jax.random.key(0), n_samples=65_536
    )
    assert abs(float(sampled.value) - exact_one) < 3 * float(sampled.standard_error)
    both = np.stack([TARGET, TARGET[::-1]])
    exact = np.asarray(multisample.exact_log_marginal(spec, params, both))
    for threshold in (0.5, 1.0):
        smc = multisample.log_marginal_smc(
            spec,
            params,
            both,
            key=jax.random.key(1),
            n_particles=128,
            n_repeats=32,
            ess_threshold=threshold,
        )
        assert smc.value.shape == smc.standard_error.shape == (2,)
        assert np.all(np.abs(np.asarray(smc.value) - exact) < 3 * np.asarray(smc.standard_error))
        assert np.all(np.asarray(smc.standard_error) < 0.1)
    print(f"exact {exact}, IS {sampled}, SMC {smc}")


def _pair_expectation(spec, params, function):
    """E over two independent completions h1, h2 ~ q of ``function(ℓ1, ℓ2)`` at T = 3, exactly."""
    terms = multisample.enumerate_terms(spec, params, SHORT)
    q = jnp.exp(terms.log_q)
    values = function(terms.signal[:, None], terms.signal[None, :])
    return jnp.sum(q[:, None] * q[None, :] * values)


def _mc_draws(spec, params, method, n_samples, n_repeats, key):
    spikes = variational.sample_hidden(
        spec, params, SHORT, key=key, n_samples=n_samples * n_repeats
    ).reshape(n_repeats, 1, n_samples, 3, 4)

    def one(s):
        signals = variational.VariationalSignals(s.astype(jnp.float32), None)
        return multisample.multisample_gradient(spec, params, signals, method)

    return jax.jit(jax.vmap(one))(spikes)


def _assert_unbiased(draws, exact, n_se=4.5):
    for d, e in zip(jax.tree.leaves(draws), jax.tree.leaves(exact), strict=True):
        d, e = np.asarray(d, np.float64), np.asarray(e, np.float64)
        se = d.std(0, ddof=1) / np.sqrt(len(d))
        assert np.all(np.abs(d.mean(0) - e) <= n_se * se + 1e-6)


def test_vimco_is_unbiased_for_the_gradient_of_the_two_sample_loss():
    """K = 2, T = 3: ∇ of the loss −E[IW_2] by enumeration over pairs of hidden rasters (q
    depends on θ); the estimate matches it with its sign."""
    spec, params = tiny_network()

    def expected_loss(p):
        return -_pair_expectation(spec, p, lambda a, b: jnp.logaddexp(a, b) - jnp.log(2.0))

    exact = jax.grad(expected_loss)(params)
    draws = _mc_draws(spec, params, "vimco", 2, 8192, jax.random.key(0))
    _assert_unbiased(draws, exact)
    assert float(jnp.max(jnp.abs(exact.w))) > 0.05


@pytest.mark.slow
def test_gem_expectation_and_its_large_k_limit():
    """K = 2, T = 3: E[GEM] = −2 Σ q(h1) q(h2) σ(ℓ1 − ℓ2) ∇log p(x, h1) exactly; at K = 16384
    GEM is within 5 % of ∇(−log p(x)) (Fisher's identity), the gradient of its loss."""
    spec, params = tiny_network()

    def joint(p):
        terms = multisample.enumerate_terms(spec, p, SHORT)
        return terms.signal + terms.log_q

    per_raster = jax.jacrev(joint)(params)  # leaves (C, ...)
    terms = multisample.enumerate_terms(spec, params, SHORT)
    q = jnp.exp(terms.log_q)
    weight = 2 * jnp.sum(
        q[:, None] * q[None, :] * jax.nn.sigmoid(terms.signal[:, None] - terms.signal[None, :]),
        axis=1,
    )
    exact = jax.tree.map(lambda g: -jnp.tensordot(weight, g, axes=1), per_raster)
    _assert_unbiased(_mc_draws(spec, params, "gem", 2, 8192, jax.random.key(1)), exact)
    fisher = jax.grad(lambda p: -multisample.exact_log_marginal(spec, p, SHORT))(params)
    large = _mc_draws(spec, params, "gem", 16384, 1, jax.random.key(2))  # as many draws as above
    for name in ("w", "bias"):
        got, want = np.asarray(getattr(large, name))[0], np.asarray(getattr(fisher, name))
        assert np.linalg.norm(got - want) < 0.05 * np.linalg.norm(want)


def test_vimco_rule_trains_with_the_trainer():
    """60 steps of Adam on the VIMCO gradients raise log p(x); the trainer reports the loss the
    rule descends, −IW_4."""
    spec, params = tiny_network()
    start = params._replace(w=jnp.zeros_like(params.w), bias=jnp.zeros(4) - 0.3)
    rule = multisample.multisample_rule(spec, "vimco")
    assert isinstance(rule, optax.GradientTransformation)
    trainer = variational_trainer(spec, optax.adam(0.05), n_samples=4, rule=rule)
    result = fit(trainer, start, TARGET[None], key=jax.random.key(0), epochs=60, progress=False)
    before = float(multisample.exact_log_marginal(spec, start, TARGET))
    after = float(multisample.exact_log_marginal(spec, result.params, TARGET))
    assert after > before + 1.0
    history = result.history
    np.testing.assert_allclose(history["loss"], -history["iw_bound"], rtol=1e-6)
    assert np.all(history["iw_bound"] >= history["elbo"] - 1e-5)


def test_log_mean_exp_and_bad_arguments():
    values = jnp.log(jnp.array([[1.0, 2.0, 3.0, 6.0]]))
    estimate = multisample.log_mean_exp(values, axis=1)
    assert float(estimate.value[0]) == pytest.approx(np.log(3.0), rel=1e-6)
    assert float(estimate.standard_error[0]) == pytest.approx(
        np.std([1, 2, 3, 6], ddof=1) / 2 / 3, rel=1e-5
    )
    spec, params = tiny_network()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        multisample.iw_bound_estimate(spec, params, TARGET, key=key, n_samples=0)
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        multisample.log_marginal_is(spec, params, TARGET, key=key, n_samples=1)
    with pytest.raises(ValueError, match="n_repeats must be >= 2"):
        multisample.log_marginal_smc(spec, params, TARGET, key=key, n_particles=4, n_repeats=1)
    with pytest.raises(ValueError, match=r"ess_threshold must lie in \[0, 1\]"):
        multisample.log_marginal_smc(
            spec, params, TARGET, key=key, n_particles=4, ess_threshold=1.5
        )
    with pytest.raises(ValueError, match=r"visible must have shape \(T, 2\)"):
        multisample.log_marginal_smc(spec, params, np.zeros((8, 3)), key=key, n_particles=4)
    one_sample = variational.VariationalSignals(jnp.zeros((1, 1, 8, 4)), None)
    with pytest.raises(ValueError, match="VIMCO needs K >= 2"):
        multisample.multisample_gradient(spec, params, one_sample, "vimco")
    with pytest.raises(ValueError, match="method must be one of"):
        multisample.multisample_rule(spec, "reinforce")
