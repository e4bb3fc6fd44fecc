"""Posterior-predictive checks of Bayesian GLM network fits (docs/theory.md §6).

Spike trains y_rep simulated at posterior draws θ_s (the ``posterior_predictive`` group of
:func:`~probsnn.inference.bayes.fit.fit_mcmc` / ``fit_svi``) are compared with the observed y
through a discrepancy D; the posterior-predictive p-value is

    p = P(D(y_rep, θ) >= D(y, θ) | y) ≈ (1/S) Σ_s 1[D(y_rep_s, θ_s) >= D(y, θ_s)]

(Rubin 1984; Gelman, Meng & Stern 1996, Statistica Sinica 6:733). The checks are one-sided: a
p-value near 0 flags a feature of the data the model does not reproduce. Under a correct model
p is not small; it is conservative, often near 1 for statistics that the posterior pins down,
such as the ISI distribution of an uncoupled neuron (Bayarri & Berger 2000, JASA 95:1127).
Three features of spike trains:

* PSTH — D = mean_t (r_t − r̄_t)², r the smoothed trial-averaged rate and r̄ the predictive mean.
* ISI distribution — D = max_k |F(k) − F̄(k)|, F the empirical CDF of the inter-spike intervals
  of 1..L bins and F̄ its predictive mean (a Kolmogorov–Smirnov distance).
* Time rescaling — D(y, θ) = the KS statistic of the intervals of y rescaled by the conditional
  intensity under θ (Brown et al. 2002, Neural Comput. 14:325), a realised discrepancy.

For the first two, each replicate's reference r̄ (F̄) is the mean over the *other* replicates, so
the observed and replicated discrepancies are measured against equally noisy references.

The checks are drawn by :func:`probsnn.plot.psth_check`, :func:`probsnn.plot.isi_check` and
:func:`probsnn.plot.time_rescaling_check`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks, stats
from probsnn.inference.bayes.fit import posterior_params
from probsnn.network import Network

if TYPE_CHECKING:
    # ArviZ loads matplotlib.pyplot, which ``import probsnn.inference`` must not
    # (tests/test_packaging.py): the functions that use it import it.
    import arviz as az


class PredictiveCheck(NamedTuple):
    """A posterior-predictive check.

    Attributes:
        observed: the statistic of the data: PSTH ``(T, N)`` in spikes/s, ISI fractions
            ``(L, N)``, or for time rescaling the KS statistic of the data under each draw
            ``(S,)``.
        predictive: the statistic of each of the S posterior-predictive replicates,
            ``(S, *observed.shape)`` (time rescaling: ``(S,)``, replicate s under draw s).
        pvalue: posterior-predictive p-value, per neuron ``(N,)`` for PSTH and ISI, a float for
            time rescaling.
        grid: bin centres in seconds (PSTH), interval lengths in seconds (ISI), or None.
    """

    observed: np.ndarray
    predictive: np.ndarray
    pvalue: np.ndarray | float
    grid: np.ndarray | None


def psth_check(spec: Network, idata: az.InferenceData, *, bandwidth: float = 0.02):
    """PSTH check: D = mean_t (r_t − r̄_t)² per neuron (see the module docstring).

    Args:
        spec: the fitted network.
        idata: InferenceData with ``observed_data`` and ``posterior_predictive`` spikes.
        bandwidth: σ of the Gaussian smoothing of :func:`probsnn.stats.psth`, in seconds.

    Returns:
        :class:`PredictiveCheck` with rates in spikes/s and p-values ``(N,)``.

    Raises:
        ValueError: idata without at least two predictive replicates, or a bad bandwidth.
    """
    observed, replicates = _spike_trains(spec, idata)
    bandwidth = _checks.positive_float(bandwidth, "bandwidth")

    def rate(spikes):
        return stats.psth(spikes, dt=spec.dt, bandwidth=bandwidth).rate

    obs_rate = np.asarray(rate(observed), np.float64)
    rep_rate = np.asarray(jax.vmap(rate)(replicates), np.float64)
    pvalue = _pvalue(obs_rate, rep_rate, _mean_square)
    grid = (np.arange(observed.shape[-2]) + 0.5) * spec.dt
    return PredictiveCheck(observed=obs_rate, predictive=rep_rate, pvalue=pvalue, grid=grid)


def isi_check(spec: Network, idata: az.InferenceData, *, max_interval: int = 50):
    """ISI check: D = max_k |F(k) − F̄(k)| per neuron (see the module docstring).

    The statistic is the fraction of each neuron's intervals (within trials) that last k bins,
    k = 1..``max_interval``; longer intervals count in the total only. A neuron without
    intervals has fractions 0.

    Returns:
        :class:`PredictiveCheck` with fractions ``(L, N)`` and p-values ``(N,)``.

    Raises:
        ValueError: idata without at least two predictive replicates, or max_interval < 1.
    """
    observed, replicates = _spike_trains(spec, idata)
    max_interval = _checks.positive_int(max_interval, "max_interval")

    def fractions(spikes):
        histogram = stats.isi_histogram(spikes, max_interval)
        total = histogram.counts.sum(axis=0) + histogram.longer
        return histogram.counts / jnp.maximum(total, 1)

    obs_isi = np.asarray(fractions(observed), np.float64)
    rep_isi = np.asarray(jax.vmap(fractions)(replicates), np.float64)
    pvalue = _pvalue(obs_isi, rep_isi, _ks_distance)
    grid = np.arange(1, max_interval + 1) * spec.dt
    return PredictiveCheck(observed=obs_isi, predictive=rep_isi, pvalue=pvalue, grid=grid)


def time_rescaling_check(spec: Network, idata: az.InferenceData, key) -> PredictiveCheck:
    """Time-rescaling check: D(y, θ_s) = KS statistic of y rescaled under θ_s, against
    D(y_rep_s, θ_s) for the replicate simulated at θ_s.

    All neurons and trials are pooled (:func:`probsnn.stats.time_rescaling_glm`); the
    discrete-time randomisation of Haslinger, Pipa & Brown (2010) uses ``key``, split per draw.

    Returns:
        :class:`PredictiveCheck` with KS statistics ``(S,)`` and a scalar p-value.

    Raises:
        ValueError: idata without at least two predictive replicates or not matching spec.
        TypeError: a key that is not a PRNG key.
    """
    key = _checks.prng_key(key, "key")
    observed, replicates = _spike_trains(spec, idata)
    predictive = idata.posterior_predictive
    positions = np.searchsorted(idata.posterior["draw"].values, predictive["draw"].values)
    n_draws = replicates.shape[0]
    params = jax.tree.map(
        lambda a: a[:, positions].reshape(n_draws, *a.shape[2:]), posterior_params(spec, idata)
    )
    keys = jax.random.split(key, (n_draws, 2))
    obs_ks, rep_ks = np.empty(n_draws), np.empty(n_draws)
    for s in range(n_draws):
        theta = jax.tree.map(lambda a, s=s: a[s], params)
        obs_ks[s] = stats.time_rescaling_glm(spec, theta, observed, key=keys[s, 0]).ks
        rep_ks[s] = stats.time_rescaling_glm(spec, theta, replicates[s], key=keys[s, 1]).ks
    pvalue = float(np.mean(rep_ks >= obs_ks))
    return PredictiveCheck(observed=obs_ks, predictive=rep_ks, pvalue=pvalue, grid=None)


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------
def _spike_trains(spec, idata):
    """Observed ``(trials, T, N)`` and replicated ``(S, trials, T, N)`` spikes of ``idata``."""
    import arviz as az

    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    if not isinstance(idata, az.InferenceData) or "posterior_predictive" not in idata.groups():
        raise ValueError(
            "idata must be an arviz.InferenceData with a posterior_predictive group (fit with "
            "n_predictive > 0)"
        )
    observed = np.asarray(idata.observed_data["spikes"].values)
    replicates = np.asarray(idata.posterior_predictive["spikes"].values)
    replicates = replicates.reshape(-1, *replicates.shape[2:])
    if observed.shape[-1] != spec.n_neurons:
        raise ValueError(
            f"idata's spikes have {observed.shape[-1]} neurons, spec has {spec.n_neurons}"
        )
    if replicates.shape[0] < 2:
        raise ValueError(f"need at least 2 predictive replicates, idata has {replicates.shape[0]}")
    return observed, replicates


def _pvalue(observed, predictive, distance):
    """P(D(rep) >= D(obs)), D(x) = distance(x, mean of the replicates other than x)."""
    n = predictive.shape[0]
    total = predictive.sum(axis=0)
    d_observed = distance(observed, total / n)
    d_replicates = distance(predictive, (total - predictive) / (n - 1))
    return np.mean(d_replicates >= d_observed, axis=0)


def _mean_square(x, reference):
    return np.mean((x - reference) ** 2, axis=-2)


def _ks_distance(x, reference):
    return np.max(np.abs(np.cumsum(x - reference, axis=-2)), axis=-2)
