"""Priors of Bayesian GLM fits: Normal, Laplace and regularised horseshoe.

Both models (glm_network and the design-matrix model) give the log density of an independent
scipy evaluation of prior + likelihood; the horseshoe's weights follow Piironen & Vehtari's
formula and stay finite in its limits; MAP under a Laplace prior is the L1-penalised ML fit; bad
priors are rejected naming the argument.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density
from scipy import stats

import probsnn as ps
from probsnn import kernels, topology
from probsnn.design import build_design
from probsnn.inference.bayes.fit import fit_mcmc, fit_svi
from probsnn.inference.likelihood.newton import fit_ml
from probsnn.models import GLMPrior, Horseshoe, design_params, glm_design_model, glm_network

warnings.filterwarnings("ignore", category=FutureWarning)

MASK = topology.random_sparse(4, 0.4, seed=1)
SPEC = ps.Network(4, kernels.raised_cosine(2, 1, 6), dt=1e-3, connectivity=MASK)
PRIORS = {
    "normal": GLMPrior.normal(scale=1.5, bias_loc=-3.0, bias_scale=2.0),
    "laplace": GLMPrior.laplace(scale=0.7, bias_loc=-3.0, bias_scale=2.0),
    "horseshoe": GLMPrior.horseshoe(0.3, slab_scale=1.5, slab_df=3.0, scale=1.2, bias_loc=-3.0),
}


def _scipy_log_prior(name, values):
    """log p(θ) from scipy's densities, and the synaptic weights that the prior's sites imply."""
    log_prior = stats.norm.logpdf(values["bias"], -3.0, 2.0).sum()
    if name in ("normal", "laplace"):
        law = stats.norm(0, 1.5) if name == "normal" else stats.laplace(0, 0.7)
        log_prior += law.logpdf(values["w"]).sum() + law.logpdf(values["v"]).sum()
        return log_prior, values["w"]
    # Piironen & Vehtari (2017) eq. 2.8, centred form: w = τ λ̃ z, λ̃² = c²λ² / (c² + τ²λ²).
    tau, lam, c2 = 0.3 * values["w_tau"], values["w_lambda"], 1.5**2 * values["w_slab"]
    lam_tilde = np.sqrt(c2 * lam**2 / (c2 + tau**2 * lam**2))
    log_prior += (
        stats.halfcauchy.logpdf(values["w_tau"])
        + stats.halfcauchy.logpdf(lam).sum()
        + stats.invgamma.logpdf(values["w_slab"], 1.5, scale=1.5)
        + stats.norm.logpdf(values["w_raw"]).sum()
        + stats.norm.logpdf(values["v"], 0, 1.2).sum()
    )
    return log_prior, tau * lam_tilde[:, None] * values["w_raw"]


def _jit_log_density(model, args, kwargs, values):
    return jax.jit(lambda v: log_density(model, args, kwargs, v)[0])(values)


def test_both_models_match_scipy_log_density_for_every_prior():
    params = SPEC.init_params(jax.random.key(3), rate=40.0, weight_scale=2.0)
    spikes = ps.sample(SPEC, params, jax.random.key(4), 500, n_trials=2)
    design = build_design(SPEC, spikes)
    pre, post = np.nonzero(MASK)
    for name, prior in PRIORS.items():
        trace = handlers.trace(handlers.seed(design_params, 7)).get_trace(SPEC, prior)
        values = {k: site["value"] for k, site in trace.items() if site["type"] == "sample"}
        ours = _jit_log_density(glm_design_model, (SPEC, design, prior), {}, values)
        # glm_network keeps an empty "c" site, which needs a key to draw its zero-size value.
        seeded = handlers.seed(glm_network, jax.random.key(0))
        theirs = _jit_log_density(seeded, (SPEC, spikes), {"params": prior}, values)
        log_prior, free_w = _scipy_log_prior(name, {k: np.asarray(v) for k, v in values.items()})
        np.testing.assert_allclose(trace["w"]["value"], free_w, rtol=1e-5)
        theta = params._replace(
            w=jnp.zeros(SPEC.param_shapes.w).at[pre, post].set(free_w),
            v=values["v"],
            bias=values["bias"],
        )
        expected = float(ps.log_likelihood(SPEC, theta, spikes)) + log_prior
        assert float(ours) == pytest.approx(expected, rel=1e-5), name
        assert float(theirs) == pytest.approx(expected, rel=1e-5), name


def test_horseshoe_weights_in_its_limits_are_finite():
    """τλ ≪ c: w → τλz (the plain horseshoe); τλ ≫ c, even λ = 1e30: w → c z (the slab)."""
    prior = GLMPrior.horseshoe(0.5, slab_scale=2.0, slab_df=4.0)
    lam = np.array([1e-4, 1e-2, 1.0, 1e10, 1e30])  # one local scale per synapse of MASK
    raw = np.linspace(-2.0, 2.0, 2 * lam.size).reshape(lam.size, 2)
    values = {"w_tau": 1.0, "w_lambda": lam, "w_slab": 0.25, "w_raw": raw}
    substituted = handlers.seed(handlers.substitute(design_params, data=values), 0)
    w = substituted(SPEC, prior).w[np.nonzero(MASK)]
    w = np.asarray(w)
    tau, c = 0.5, 2.0 * np.sqrt(0.25)
    exact = tau * c * lam / np.sqrt(c**2 + (tau * lam) ** 2)  # float64: no overflow here
    np.testing.assert_allclose(w, exact[:, None] * raw, rtol=1e-5)
    np.testing.assert_allclose(w[-1], c * raw[-1], rtol=1e-6)
    np.testing.assert_allclose(w[0], tau * 1e-4 * raw[0], rtol=1e-5)


def test_horseshoe_svi_draws_carry_the_weights_and_named_hyperparameters():
    """AutoNormal samples only the latent sites; the weights w = τ λ̃ z are added for every draw,
    and every site gets its dims (local scales per synapse, global scale and slab scalar)."""
    truth = SPEC.init_params(jax.random.key(0), rate=40.0, weight_scale=2.0)
    spikes = ps.sample(SPEC, truth, jax.random.key(1), 500)
    prior = PRIORS["horseshoe"]
    idata = fit_svi(
        SPEC,
        spikes,
        key=jax.random.key(2),
        prior=prior,
        num_steps=100,
        num_draws=20,
        n_predictive=0,
        progress=False,
    )
    post = idata.posterior
    assert post["w"].dims == ("chain", "draw", "synapse", "syn_basis")
    assert post["w_raw"].dims == post["w"].dims
    assert post["w_lambda"].dims == ("chain", "draw", "synapse")
    assert post["w_tau"].dims == post["w_slab"].dims == ("chain", "draw")
    draws = {name: np.asarray(post[name].values[0]) for name in post.data_vars}
    for d in (0, 19):
        values = {name: value[d] for name, value in draws.items()}
        _, expected_w = _scipy_log_prior("horseshoe", values)
        np.testing.assert_allclose(draws["w"][d], expected_w, rtol=1e-5)


def test_map_by_autodelta_equals_l1_penalised_ml():
    """Laplace(0, b) prior on w and v: the MAP is the lasso fit with λ₁ = 1/b (the bias prior,
    1000 wide, moves it by ~1e-6). A strong penalty zeroes some weights exactly in both."""
    truth = SPEC.init_params(jax.random.key(0), rate=40.0, weight_scale=2.0)
    spikes = ps.sample(SPEC, truth, jax.random.key(1), 3000)
    scale = 0.05
    prior = GLMPrior.laplace(scale=scale, bias_loc=-3.0, bias_scale=1e3)
    idata = fit_svi(
        SPEC,
        spikes,
        key=jax.random.key(5),
        prior=prior,
        guide="delta",
        num_steps=3000,
        num_draws=1,
        n_predictive=0,
        progress=False,
    )
    map_w = np.asarray(idata.posterior["w"].values[0, 0])
    ml = fit_ml(SPEC, spikes, l1=1.0 / scale, tol=1e-9).params
    pre, post = np.nonzero(MASK)
    lasso_w = np.asarray(ml.w)[pre, post]
    assert (lasso_w == 0).any() and (lasso_w != 0).any()
    np.testing.assert_allclose(map_w, lasso_w, atol=3e-3)
    np.testing.assert_allclose(idata.posterior["v"].values[0, 0], ml.v, atol=3e-3)
    np.testing.assert_allclose(idata.posterior["bias"].values[0, 0], ml.bias, atol=3e-3)


def test_bad_priors_are_reported_naming_the_argument():
    for kwargs, name in (
        ({"global_scale": 0.0}, "global_scale"),
        ({"global_scale": 0.1, "slab_scale": -1.0}, "slab_scale"),
        ({"global_scale": 0.1, "slab_df": 0.0}, "slab_df"),
        ({"global_scale": 0.1, "scale": -2.0}, "scale"),
        ({"global_scale": 0.1, "bias_scale": 0.0}, "bias_scale"),
    ):
        with pytest.raises(ValueError, match=name):
            GLMPrior.horseshoe(**kwargs)
    with pytest.raises(ValueError, match="global_scale"):
        Horseshoe(float("nan"))
    with pytest.raises(ValueError, match="scale"):
        GLMPrior.laplace(scale=0.0)
    with pytest.raises(ValueError, match="bias_loc"):
        GLMPrior.normal(bias_loc=float("inf"))
    spikes = np.zeros((50, 4), np.uint8)
    normal = GLMPrior.normal()
    with pytest.raises(TypeError, match=r"prior\.w"):
        fit_mcmc(SPEC, spikes, key=jax.random.key(0), prior=normal._replace(w=0.5))
    with pytest.raises(ValueError, match=r"prior\.v must be a scalar"):
        fit_svi(
            SPEC, spikes, key=jax.random.key(0), prior=normal._replace(v=dist.Normal(jnp.zeros(2)))
        )
