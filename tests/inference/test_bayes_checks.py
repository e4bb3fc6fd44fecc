"""Posterior-predictive checks and PSIS-LOO on uncoupled, strongly refractory data.

Three models are fitted by NUTS to the same spikes: the true class (uncoupled, with self-history),
the dense coupled model (which nests it) and an uncoupled model whose self-history is pinned to
zero by its prior (no refractoriness: mis-specified).
"""

import warnings

import arviz as az
import jax
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import numpyro.distributions as dist
import pytest

import probsnn as ps
from probsnn import kernels, plot, topology
from probsnn.inference.bayes.checks import isi_check, psth_check, time_rescaling_check
from probsnn.inference.bayes.fit import fit_mcmc
from probsnn.models import GLMPrior

matplotlib.use("Agg")
warnings.filterwarnings("ignore", category=FutureWarning)

N_NEURONS = 3
BASIS = kernels.raised_cosine(2, 1, 6)
PRIOR = GLMPrior.normal(scale=1.5, bias_loc=-3.0, bias_scale=2.0)
UNCOUPLED = ps.Network(N_NEURONS, BASIS, connectivity=np.zeros((N_NEURONS,) * 2, bool))
DENSE = ps.Network(N_NEURONS, BASIS, connectivity=topology.dense(N_NEURONS))
N_STEPS = 2000
N_PREDICTIVE = 40  # one chain: 40 replicates, p-values in steps of 1/40


@pytest.mark.slow
def test_checks_and_loo_on_uncoupled_refractory_data():
    """Three fits of uncoupled neurons at ~50 Hz, strongly refractory (−4 on the first bump,
    ~20 ms). One test shares them (a module fixture would run on both xdist workers)."""
    fits = _fits()
    _check_well_specified_models_pass(fits)
    _check_missing_refractoriness_is_flagged(fits)
    _check_loo_prefers_the_uncoupled_model(fits)
    _check_results_and_plots(fits)


def _fits():
    truth = UNCOUPLED.init_params(jax.random.key(10), rate=100.0, refractory=4.0)
    spikes = ps.sample(UNCOUPLED, truth, jax.random.key(11), N_STEPS)
    settings = dict(
        num_warmup=200,
        num_samples=300,
        num_chains=1,
        dense_mass=True,
        n_predictive=N_PREDICTIVE,
        progress=False,
    )
    no_history = PRIOR._replace(v=dist.Normal(0.0, 0.01))
    return {
        "uncoupled": fit_mcmc(UNCOUPLED, spikes, key=jax.random.key(2), prior=PRIOR, **settings),
        "dense": fit_mcmc(DENSE, spikes, key=jax.random.key(3), prior=PRIOR, **settings),
        "no_history": fit_mcmc(
            UNCOUPLED, spikes, key=jax.random.key(4), prior=no_history, **settings
        ),
    }


def _checks(spec, idata):
    return (
        psth_check(spec, idata, bandwidth=0.02),
        isi_check(spec, idata, max_interval=40),
        time_rescaling_check(spec, idata, jax.random.key(5)),
    )


def _check_well_specified_models_pass(fits):
    """Both models that contain the truth pass: p >= 2/40 for every neuron and check. The checks
    are one-sided (a large discrepancy flags), and posterior-predictive p-values of a correct
    model are conservative — near 1 for statistics the posterior pins down, like the ISI
    distribution of an uncoupled neuron (Meng 1994; Bayarri & Berger 2000) — so only small
    p-values count against a model."""
    for name, spec in (("uncoupled", UNCOUPLED), ("dense", DENSE)):
        for check in _checks(spec, fits[name]):
            assert np.all(np.atleast_1d(check.pvalue) >= 2 / 40), name


def _check_missing_refractoriness_is_flagged(fits):
    """Without self-history the model predicts geometric ISIs, many of 1-3 bins, which the data
    lack: the ISI check flags every neuron and time rescaling flags the fit. The PSTH (a
    stationary rate, which the bias fits) is not the check that catches it."""
    psth, isi, rescaling = _checks(UNCOUPLED, fits["no_history"])
    assert np.all(isi.pvalue == 0.0)
    assert rescaling.pvalue == 0.0
    assert np.all(rescaling.observed > rescaling.predictive)
    assert psth.pvalue.min() > 1.5 / 40
    # The data have (almost) no 1-2 bin intervals; the model predicts ~2 × 3 % of them.
    assert np.all(isi.observed[:2].sum(axis=0) < isi.predictive[:, :2].sum(axis=1).min(axis=0))


def _check_loo_prefers_the_uncoupled_model(fits):
    """The dense model nests the uncoupled one, so it cannot fit worse, only overfit. For nested
    regular models with the k extra parameters truly zero, the in-sample gain is ~χ²_k/2 and
    LOO charges ~k for them (Δp_loo ≈ k), so elpd_loo(dense) − elpd_loo(uncoupled) ≈ χ²_k/2 − k:
    mean −k/2, sd sqrt(k/2), and the dense model wins only when χ²_k > 2k (probability 0.02 for
    k = 12 extra weights here). We check the ranking, Δp_loo within ±50 % of k and the elpd gap
    within 3 sd of k/2; the mis-specified model without history ranks last, far behind."""
    ranking = az.compare(fits)
    assert list(ranking.index) == ["uncoupled", "dense", "no_history"]
    k = int(DENSE.connectivity.sum()) * BASIS.shape[0]
    extra = ranking.loc["dense", "p_loo"] - ranking.loc["uncoupled", "p_loo"]
    assert 0.5 * k < extra < 1.5 * k
    assert abs(ranking.loc["dense", "elpd_diff"] - k / 2) < 3 * np.sqrt(k / 2)
    assert ranking.loc["no_history", "elpd_diff"] > 5 * ranking.loc["no_history", "dse"]


def _check_results_and_plots(fits):
    idata = fits["uncoupled"]
    psth, isi, rescaling = _checks(UNCOUPLED, idata)
    n_replicates = N_PREDICTIVE
    assert psth.observed.shape == (N_STEPS, N_NEURONS)
    assert psth.predictive.shape == (n_replicates, N_STEPS, N_NEURONS)
    assert psth.pvalue.shape == (N_NEURONS,)
    np.testing.assert_allclose(psth.grid[:2], [0.0005, 0.0015])
    # Observed statistic = probsnn.stats on the observed spikes.
    spikes = idata.observed_data["spikes"].values
    rate = ps.stats.psth(spikes, dt=1e-3, bandwidth=0.02).rate
    np.testing.assert_allclose(psth.observed, rate, rtol=1e-5)
    histogram = ps.stats.isi_histogram(spikes, 40)
    fractions = histogram.counts / (histogram.counts.sum(axis=0) + histogram.longer)
    np.testing.assert_allclose(isi.observed, fractions, rtol=1e-6)
    assert isi.predictive.shape == (n_replicates, 40, N_NEURONS)
    assert rescaling.observed.shape == rescaling.predictive.shape == (n_replicates,)
    assert isinstance(rescaling.pvalue, float)
    _fig, axes = plt.subplots(1, 3)
    plot.psth_check(psth, neurons=[0, 2], ax=axes[0])
    assert len(axes[0].lines) == 4 and "p = " in axes[0].get_title()
    plot.isi_check(isi, neuron=1, ax=axes[1])
    assert len(axes[1].patches) == 40
    plot.time_rescaling_check(rescaling, ax=axes[2])
    assert len(axes[2].collections[0].get_offsets()) == n_replicates
    plt.close("all")
    idata_without = az.InferenceData(posterior=idata.posterior, observed_data=idata.observed_data)
    with pytest.raises(ValueError, match="posterior_predictive"):
        psth_check(UNCOUPLED, idata_without)
    with pytest.raises(ValueError, match="neurons"):
        isi_check(ps.Network(2, BASIS), idata)
    with pytest.raises(ValueError, match="bandwidth"):
        psth_check(UNCOUPLED, idata, bandwidth=0.0)
