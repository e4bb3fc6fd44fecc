"""Bayesian fits: NUTS diagnostics, ArviZ layout, MAP = penalised ML, PSIS-LOO, synapse tests.

Model parity and the priors are tested in test_bayes_priors.py, coverage in
test_bayes_calibration.py, posterior-predictive checks in test_bayes_checks.py.
"""

import warnings

import arviz as az
import jax
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

import probsnn as ps
from probsnn import kernels, plot, topology
from probsnn.inference.bayes.fit import (
    auroc,
    fit_mcmc,
    fit_svi,
    posterior_kernels,
    posterior_params,
    synapse_test,
)
from probsnn.inference.likelihood.newton import fit_ml
from probsnn.models import GLMPrior

matplotlib.use("Agg")
warnings.filterwarnings("ignore", category=FutureWarning)

N_STEPS = 4000
PRIOR = GLMPrior.normal(scale=1.5, bias_loc=-3.0, bias_scale=2.0)
BASIS = kernels.raised_cosine(2, 1, 6)
TRUE_MASK = topology.random_sparse(4, 0.4, seed=1)


def _spec(mask):
    return ps.Network(4, BASIS, dt=1e-3, connectivity=mask)


DENSE = _spec(topology.dense(4))


@pytest.fixture(scope="module")
def coupled_data():
    """A sparse 4-neuron network (5 of 12 synapses) and 4 s of its spikes."""
    truth = _spec(TRUE_MASK).init_params(jax.random.key(0), rate=40.0, weight_scale=3.0)
    spikes = ps.sample(_spec(TRUE_MASK), truth, jax.random.key(1), N_STEPS, n_trials=1)
    return truth, spikes


@pytest.mark.slow
def test_nuts_posterior_of_a_sparse_network(coupled_data, tmp_path):
    """The dense model's NUTS posterior: converged, laid out for ArviZ, kernels and synapses
    recovered, preferred by PSIS-LOO to the uncoupled model, matched by the low-rank SVI.
    One test shares the one expensive fit (a module fixture would run on both xdist workers)."""
    truth, spikes = coupled_data
    idata = fit_mcmc(
        DENSE,
        spikes,
        key=jax.random.key(2),
        prior=PRIOR,
        num_warmup=300,
        num_samples=300,
        num_chains=4,
        chain_method="vectorized",
        n_predictive=3,
        progress=False,
    )
    _check_convergence(idata)
    _check_layout_and_round_trip(idata, spikes, tmp_path)
    _check_kernel_bands_and_synapse_detection(idata, truth)
    _check_loo_prefers_the_coupled_model(idata, spikes)
    _check_low_rank_variational_posterior(idata, spikes)


def _check_convergence(idata):
    parameters = ["w", "v", "bias"]  # not the derived kernels (1,000 lags: more chances at 1.01)
    assert float(az.rhat(idata, var_names=parameters).to_array().max()) < 1.01
    assert float(az.ess(idata, var_names=parameters, method="bulk").to_array().min()) > 400
    assert not idata.sample_stats["diverging"].values.any()


def _check_layout_and_round_trip(idata, spikes, tmp_path):
    post = idata.posterior
    assert post["w"].dims == ("chain", "draw", "synapse", "syn_basis")
    assert post["v"].dims == ("chain", "draw", "neuron", "fb_basis")
    pre, post_i = np.nonzero(DENSE.connectivity)
    np.testing.assert_array_equal(post["pre_neuron"].values, pre)
    np.testing.assert_array_equal(post["post_neuron"].values, post_i)
    assert post["coupling_kernel"].dims == ("chain", "draw", "synapse", "syn_lag")
    assert post["feedback_kernel"].dims == ("chain", "draw", "neuron", "fb_lag")
    reach = np.flatnonzero(BASIS.any(axis=0)).max() + 1  # the zero tail is left out
    assert reach < BASIS.shape[1]
    lags = np.arange(1, reach + 1) * DENSE.dt
    np.testing.assert_allclose(post["syn_lag"].values, lags)
    np.testing.assert_allclose(post["fb_lag"].values, lags)
    kernel = post["w"].values[2, 5, 7] @ BASIS[:, :reach]  # draw 5 of chain 2, synapse 7
    np.testing.assert_allclose(post["coupling_kernel"].values[2, 5, 7], kernel, rtol=1e-5)
    assert idata.log_likelihood["spikes"].dims == ("chain", "draw", "trial", "time")
    assert idata.log_likelihood["spikes"].shape == (4, 300, 1, N_STEPS)
    np.testing.assert_array_equal(idata.observed_data["spikes"].values, np.asarray(spikes))
    predictive = idata.posterior_predictive["spikes"]
    assert predictive.dims == ("chain", "draw", "trial", "time", "neuron")
    assert predictive.shape == (4, 3, 1, N_STEPS, 4)
    # Pointwise log-likelihood at one draw equals the library's likelihood at that draw.
    params = posterior_params(DENSE, idata)
    one = jax.tree.map(lambda a: a[1, 7], params)
    total = float(idata.log_likelihood["spikes"].values[1, 7].sum())
    assert np.isclose(total, float(ps.log_likelihood(DENSE, one, spikes)), rtol=1e-5)
    path = tmp_path / "posterior.nc"
    idata.to_netcdf(path)
    again = az.from_netcdf(path)
    np.testing.assert_array_equal(again.posterior["w"].values, post["w"].values)
    np.testing.assert_array_equal(again.posterior["post_neuron"].values, post_i)
    assert np.isfinite(az.loo(again).elpd_loo)
    assert az.summary(again, var_names=["bias"]).shape[0] == 4
    az.plot_trace(idata, var_names=["bias"])
    plt.close("all")


def _check_kernel_bands_and_synapse_detection(idata, truth):
    coupling, feedback = posterior_kernels(DENSE, idata, prob=0.9)
    assert coupling.mean.shape == (4, 4, BASIS.shape[1])
    assert feedback.lower.shape == (4, BASIS.shape[1])
    assert np.all(coupling.lower <= coupling.mean) and np.all(coupling.mean <= coupling.upper)
    true_kernels = np.asarray(_spec(TRUE_MASK).coupling_kernels(truth))
    off = ~np.eye(4, dtype=bool)
    inside = (coupling.lower <= true_kernels) & (true_kernels <= coupling.upper)
    assert inside[off].mean() > 0.7
    test = synapse_test(DENSE, idata, prob=0.95)
    score = auroc(test.distance[off], TRUE_MASK[off])
    assert score > 0.9
    assert np.isnan(test.distance[np.eye(4, dtype=bool)]).all()
    strength = np.where(off, coupling.mean.sum(axis=2), np.nan)
    spread = np.where(off, (coupling.upper - coupling.lower).max(axis=2) / 2, np.nan)
    ax = plot.connectivity(strength, spread=spread, exists=test.exists)
    assert len(ax.patches) == int(test.exists.sum())
    assert len(ax.texts) == int(off.sum())
    with pytest.raises(ValueError, match="spread"):
        plot.connectivity(strength, spread=-np.ones((4, 4)))
    plt.close("all")


def _check_loo_prefers_the_coupled_model(idata, spikes):
    uncoupled = fit_mcmc(
        _spec(np.zeros((4, 4), bool)),
        spikes,
        key=jax.random.key(6),
        prior=PRIOR,
        num_warmup=200,
        num_samples=300,
        num_chains=1,
        n_predictive=0,
        progress=False,
    )
    ranking = az.compare({"coupled": idata, "uncoupled": uncoupled})
    assert ranking.index[0] == "coupled"
    assert ranking.loc["uncoupled", "elpd_diff"] > 2 * ranking.loc["uncoupled", "dse"]


def _check_low_rank_variational_posterior(idata, spikes):
    approx = fit_svi(
        DENSE,
        spikes,
        key=jax.random.key(7),
        prior=PRIOR,
        guide="lowrank",
        num_steps=1500,
        num_draws=300,
        n_predictive=0,
        progress=False,
    )
    assert approx.posterior.sizes["chain"] == 1 and approx.posterior.sizes["draw"] == 300
    assert approx.log_likelihood["spikes"].dims == ("chain", "draw", "trial", "time")
    # Near-Gaussian posterior: the variational means sit within one NUTS sd (measured: 0.69).
    for name in ("w", "v", "bias"):
        exact = idata.posterior[name]
        gap = np.abs(approx.posterior[name].mean(("chain", "draw")) - exact.mean(("chain", "draw")))
        assert float((gap / exact.std(("chain", "draw"))).max()) < 1.0


def test_stimulus_kernels_and_trials_reach_the_inference_data():
    """A network driven by two inputs, 3 trials: the c group, the input kernels over lags and the
    pointwise log-likelihood at a draw, against the library's likelihood with inputs."""
    in_basis = kernels.raised_cosine(2, 1, 4)
    spec = ps.Network(
        2, BASIS, dt=1e-3, connectivity=topology.dense(2), n_inputs=2, input_basis=in_basis
    )
    truth = spec.init_params(jax.random.key(0), rate=40.0)
    truth = truth._replace(c=truth.c + 1.5)
    inputs = ps.encoding.poisson_spikes(jax.random.key(1), 30.0, spec.dt, (3, 600, 2))
    spikes = ps.sample(spec, truth, jax.random.key(2), 600, n_trials=3, inputs=inputs)
    idata = fit_svi(
        spec,
        spikes,
        inputs,
        key=jax.random.key(3),
        prior=PRIOR,
        num_steps=300,
        num_draws=20,
        progress=False,
    )
    post = idata.posterior
    assert post["c"].dims == ("chain", "draw", "input", "neuron", "in_basis")
    assert post["input_kernel"].dims == ("chain", "draw", "input", "neuron", "in_lag")
    reach = np.flatnonzero(in_basis.any(axis=0)).max() + 1
    np.testing.assert_allclose(post["in_lag"].values, np.arange(1, reach + 1) * 1e-3)
    kernel = post["c"].values[0, 4, 1, 0] @ in_basis[:, :reach]
    np.testing.assert_allclose(post["input_kernel"].values[0, 4, 1, 0], kernel, rtol=1e-5)
    assert "posterior_predictive" not in idata.groups()  # documented: none with inputs
    log_lik = idata.log_likelihood["spikes"]
    assert log_lik.dims == ("chain", "draw", "trial", "time") and log_lik.shape == (1, 20, 3, 600)
    one = jax.tree.map(lambda a: a[0, 4], posterior_params(spec, idata))
    expected = float(ps.log_likelihood(spec, one, spikes, inputs))
    assert np.isclose(float(log_lik.values[0, 4].sum()), expected, rtol=1e-5)


def test_auroc_oracle():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auroc([1, 1], [0, 1]) == 0.5
    with pytest.raises(ValueError, match="positives and negatives"):
        auroc([1, 2], [1, 1])


def test_map_by_autodelta_equals_penalised_ml(coupled_data):
    _, spikes = coupled_data
    spec = _spec(TRUE_MASK)
    scale = 1.5
    # A very wide bias prior: its penalty ((bias + 3) / 1e3)² / 2 shifts the optimum by ~1e-6.
    prior = GLMPrior.normal(scale=scale, bias_loc=-3.0, bias_scale=1e3)
    idata = fit_svi(
        spec,
        spikes,
        key=jax.random.key(5),
        prior=prior,
        guide="delta",
        num_steps=3000,
        num_draws=1,
        n_predictive=0,
        progress=False,
    )
    map_params = jax.tree.map(lambda a: a[0, 0], posterior_params(spec, idata))
    ml = fit_ml(spec, spikes, l2=1.0 / scale**2, tol=1e-9).params
    for ours, theirs in zip(map_params, ml, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=2e-3)


def test_divergent_transitions_are_reported():
    """A step size adapted to 5 % acceptance overshoots the leapfrog's stability limit: every
    transition diverges, and fit_mcmc says how many, per chain, and what to do."""
    spec = _spec(np.zeros((4, 4), bool))
    spikes = ps.sample(spec, spec.init_params(jax.random.key(8)), jax.random.key(9), 1000)
    with pytest.warns(RuntimeWarning, match="divergent transitions") as record:
        idata = fit_mcmc(
            spec,
            spikes,
            key=jax.random.key(10),
            prior=PRIOR,
            target_accept=0.05,
            num_warmup=100,
            num_samples=100,
            num_chains=1,
            n_predictive=0,
            progress=False,
        )
    n_divergent = int(idata.sample_stats["diverging"].sum())
    assert n_divergent > 0
    message = str(record[0].message)
    assert message.startswith(f"NUTS: {n_divergent} divergent transitions")
    assert "raise target_accept" in message


def test_bad_prior_and_data_are_reported():
    spec = _spec(TRUE_MASK)
    spikes = np.zeros((100, 4), np.uint8)
    with pytest.raises(ValueError, match="scale"):
        GLMPrior.normal(scale=-1.0)
    with pytest.raises(TypeError, match="prior"):
        fit_mcmc(spec, spikes, key=jax.random.key(0), prior={"w": 1.0})
    with pytest.raises(ValueError):
        fit_mcmc(spec, np.zeros((100, 3), np.uint8), key=jax.random.key(0))
    with pytest.raises(ValueError, match="guide"):
        fit_svi(spec, spikes, key=jax.random.key(0), guide="laplace")
    with pytest.raises(ValueError, match="target_accept"):
        fit_mcmc(spec, spikes, key=jax.random.key(0), target_accept=1.5)
