"""Bayesian inference for fully observed GLM networks, reported as ArviZ ``InferenceData``.

The posterior of the GLM network (docs/theory.md §2, §6) under a
:class:`~probsnn.models.GLMPrior`,

    p(θ | s) ∝ p(θ) Π_{t,i} σ(u_{i,t})^{s_{i,t}} (1 − σ(u_{i,t}))^{1 − s_{i,t}},   u = X B(θ),

is explored by NUTS (Hoffman & Gelman 2014) or approximated by SVI (AutoNormal, low-rank
multivariate Normal, or AutoDelta = MAP). The spike traces X are computed once
(:func:`~probsnn.design.build_design`) and the model is
:func:`probsnn.models.glm.glm_design_model`, so each log-density evaluation is one matrix
product. Results land in ArviZ (Kumar et al. 2019) with named dims and coords, a pointwise
log-likelihood group for PSIS-LOO (Vehtari, Gelman & Gabry 2017) and posterior-predictive spike
trains.

Dims: ``synapse`` (with coords ``pre_neuron`` and ``post_neuron``), ``neuron``, ``input``,
``syn_basis``, ``fb_basis``, ``in_basis``, ``trial``, ``time`` (seconds). Each draw's kernels
are in the posterior too: ``coupling_kernel`` ``(synapse, syn_lag)``, ``feedback_kernel``
``(neuron, fb_lag)`` and ``input_kernel`` ``(input, neuron, in_lag)``, with lag coords δΔ in
seconds for δ = 1 up to the last lag the basis reaches (pick the parameters with ``var_names``
in ArviZ). Hierarchical group priors add their own sites with dims from
``GroupPrior.site_dims`` (the horseshoe on w: ``w_raw`` like w, ``w_lambda`` per synapse, scalar
``w_tau`` and ``w_slab``; w is then deterministic). Posterior-predictive checks are in
:mod:`probsnn.inference.bayes.checks`.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
import xarray as xr
from numpyro import handlers
from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO, autoguide, init_to_value
from scipy import stats

from probsnn import _checks
from probsnn.design import build_design, params_to_coef
from probsnn.models.glm import design_params, glm_design_model
from probsnn.models.priors import IID, GLMPrior
from probsnn.network import Network, Params
from probsnn.simulate import sample

if TYPE_CHECKING:
    # ArviZ loads matplotlib.pyplot, which ``import probsnn.inference`` must not
    # (tests/test_packaging.py): the functions that use it import it.
    import arviz as az

GUIDES = {
    "normal": autoguide.AutoNormal,
    "lowrank": autoguide.AutoLowRankMultivariateNormal,
    "delta": autoguide.AutoDelta,
}


def fit_mcmc(
    spec: Network,
    spikes,
    inputs=None,
    *,
    key,
    prior: GLMPrior | None = None,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 4,
    chain_method: str = "auto",
    target_accept: float = 0.8,
    dense_mass: bool = False,
    n_predictive: int = 10,
    progress: bool = True,
) -> az.InferenceData:
    """Posterior of a fully observed GLM network by NUTS, as ArviZ ``InferenceData``.

    Args:
        spec: the network (all neurons visible).
        spikes: observed spikes ``(T, N)`` or ``(n_trials, T, N)``.
        key: PRNG key (split for the chains and the posterior-predictive draws).
        inputs: ``(..., T, M)`` exogenous inputs when ``spec.n_inputs`` > 0.
        prior: a :class:`~probsnn.models.GLMPrior` (``GLMPrior.normal``, ``.laplace`` or, for
            sparse connectivity, ``.horseshoe``, whose funnel-like geometry needs a higher
            ``target_accept`` and longer trajectories); default ``GLMPrior.normal()``.
        num_warmup, num_samples, num_chains: NUTS sizes (samples per chain).
        chain_method: ``"auto"`` (default: ``"parallel"``, one chain per device, when there
            are at least ``num_chains`` local devices, else ``"sequential"``), or NumPyro's
            ``"sequential"``, ``"parallel"`` or ``"vectorized"``. The method used is recorded
            in ``idata.sample_stats.attrs["chain_method"]``. On a CPU, ``XLA_FLAGS=
            --xla_force_host_platform_device_count=4`` (set before JAX starts) gives 4 devices.
        target_accept: NUTS step-size adaptation target in (0, 1).
        dense_mass: adapt a dense mass matrix (fewer leapfrog steps when basis weights are
            strongly correlated, but costlier adaptation); default a diagonal one.
        n_predictive: draws per chain, evenly spaced, for which spike trains of the data's size
            are simulated (group ``posterior_predictive``, variable ``"spikes"``); 0 for none.
            Networks with inputs get no predictive draws.
        progress: show NumPyro's progress bar.

    Returns:
        ``InferenceData`` with groups posterior (the parameters, plus each draw's kernels over
        lags, see the module docstring), sample_stats (with ``diverging``),
        log_likelihood (``"spikes"`` ``(chain, draw, trial, time)``: the bin's log-probability
        summed over neurons), observed_data and, if requested, posterior_predictive.
        ``sample_stats.attrs["chain_method"]`` names how the chains ran.

    Raises:
        ValueError, TypeError: on hidden neurons, bad (empty, non-binary, non-finite) data,
            sizes, option strings or prior, a key that is not a PRNG key.
    Warns:
        RuntimeWarning: when any transition diverged after warm-up (the posterior may be
            biased): the number of divergences, per chain, and the usual remedies.
    """
    key = _checks.prng_key(key, "key")
    design, prior, shape = _prepare(spec, spikes, inputs, prior)
    num_warmup = _checks.positive_int(num_warmup, "num_warmup", minimum=0)
    num_samples = _checks.positive_int(num_samples, "num_samples")
    num_chains = _checks.positive_int(num_chains, "num_chains")
    chain_method = _chain_method(chain_method, num_chains)
    _check_flags(dense_mass=dense_mass, progress=progress)
    target_accept = _checks.probability(target_accept, "target_accept")
    n_predictive = _checks.positive_int(n_predictive, "n_predictive", minimum=0)
    model = functools.partial(glm_design_model, spec, design, prior)
    mcmc = MCMC(
        NUTS(model, target_accept_prob=float(target_accept), dense_mass=bool(dense_mass)),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress,
    )
    key_mcmc, key_pred = jax.random.split(key)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "There are not enough devices", UserWarning)
        mcmc.run(key_mcmc, extra_fields=("diverging", "num_steps", "accept_prob", "energy"))
    samples = mcmc.get_samples(group_by_chain=True)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    diverging = np.asarray(extra["diverging"])
    if diverging.any():
        per_chain = diverging.sum(axis=1).tolist()
        warnings.warn(
            f"NUTS: {int(diverging.sum())} divergent transitions after warm-up (per chain "
            f"{per_chain}); the posterior may be biased — raise target_accept or rescale the "
            "prior",
            RuntimeWarning,
            stacklevel=2,
        )
    stats_ = {"diverging": diverging}
    stats_.update(
        n_steps=np.asarray(extra["num_steps"]),
        acceptance_rate=np.asarray(extra["accept_prob"]),
        energy=np.asarray(extra["energy"]),
    )
    idata = _inference_data(spec, prior, design, shape, samples, stats_, key_pred, n_predictive)
    idata.sample_stats.attrs["chain_method"] = mcmc.chain_method  # NumPyro's, after any fallback
    return idata


CHAIN_METHODS = ("auto", "sequential", "parallel", "vectorized")


def _chain_method(chain_method, num_chains: int) -> str:
    """``"auto"`` resolved: chains in parallel over devices when there are enough of them."""
    _checks.option(chain_method, "chain_method", CHAIN_METHODS)
    if chain_method != "auto":
        return chain_method
    return "parallel" if jax.local_device_count() >= num_chains > 1 else "sequential"


def fit_svi(
    spec: Network,
    spikes,
    inputs=None,
    *,
    key,
    prior: GLMPrior | None = None,
    guide: str = "normal",
    rank: int | None = None,
    num_steps: int = 2000,
    optimizer=None,
    num_draws: int = 1000,
    n_predictive: int = 10,
    progress: bool = True,
) -> az.InferenceData:
    """Variational posterior (or MAP) of a fully observed GLM network, as ``InferenceData``.

    Maximises the ELBO E_q[log p(s, θ) − log q(θ)] (Blei, Kucukelbir & McAuliffe 2017) over
    the guide q; with ``guide="delta"`` q is a point mass and the optimum is the MAP estimate,
    which under Normal(0, σ²) priors on w, v, c equals ``fit_ml`` with l2 = 1/σ², and under
    Laplace(0, b) priors ``fit_ml`` with l1 = 1/b (plus the bias prior's penalty).

    Args:
        spec, spikes, key, inputs, prior: as in :func:`fit_mcmc`.
        guide: ``"normal"`` (AutoNormal, mean field), ``"lowrank"``
            (AutoLowRankMultivariateNormal) or ``"delta"`` (AutoDelta, MAP).
        rank: covariance rank for ``"lowrank"`` (NumPyro's default: ~√(n_params)).
        num_steps: optimisation steps.
        optimizer: an optax ``GradientTransformation`` (the guide starts from zero weights and
            each neuron's bias at the logit of its observed rate); default Adam, learning rate 0.02
            decaying exponentially to 2e-4 over ``num_steps``.
        num_draws: draws from q stored as one chain.
        n_predictive: as in :func:`fit_mcmc` (from the single chain).
        progress: show the SVI progress bar.

    Returns:
        ``InferenceData`` as from :func:`fit_mcmc` (one chain; sample_stats absent); the ELBO
        loss history is ``idata.posterior.attrs["svi_loss"]``.

    Raises:
        ValueError, TypeError: on bad (empty, non-binary, non-finite) data, sizes, prior or
            guide name, a key that is not a PRNG key, an optimizer that is not an optax
            transformation (e.g. a string).
    """
    key = _checks.prng_key(key, "key")
    design, prior, shape = _prepare(spec, spikes, inputs, prior)
    _checks.option(guide, "guide", sorted(GUIDES))
    _check_flags(progress=progress)
    if optimizer is not None:
        _checks.optimizer(optimizer)
    num_steps = _checks.positive_int(num_steps, "num_steps")
    num_draws = _checks.positive_int(num_draws, "num_draws")
    n_predictive = _checks.positive_int(n_predictive, "n_predictive", minimum=0)
    model = functools.partial(glm_design_model, spec, design, prior)
    options = {}
    if guide == "lowrank" and rank is not None:
        options["rank"] = _checks.positive_int(rank, "rank")
    elif rank is not None:
        raise ValueError(f"rank applies only to guide='lowrank', got guide={guide!r}")
    start = _uncoupled_start(spec, design, prior)
    q = GUIDES[guide](model, init_loc_fn=init_to_value(values=start), **options)
    if optimizer is None:
        optimizer = optax.adam(optax.exponential_decay(0.02, num_steps, 0.01))
    svi = SVI(model, q, numpyro.optim.optax_to_numpyro(optimizer), Trace_ELBO())
    key_fit, key_draw, key_pred = jax.random.split(key, 3)
    result = svi.run(key_fit, num_steps, progress_bar=progress)
    losses = np.asarray(result.losses)
    if not np.isfinite(losses[-1]):
        raise FloatingPointError(
            "SVI diverged (non-finite loss); lower the learning rate or tighten the prior"
        )
    key_draw, key_sites = jax.random.split(key_draw)
    draws = q.sample_posterior(key_draw, result.params, sample_shape=(num_draws,))
    draws = {**_deterministic_sites(spec, prior, draws, key_sites), **draws}
    samples = {name: value[None] for name, value in draws.items()}
    idata = _inference_data(spec, prior, design, shape, samples, None, key_pred, n_predictive)
    idata.posterior.attrs["svi_loss"] = losses
    idata.posterior.attrs["svi_guide"] = guide
    return idata


# --------------------------------------------------------------------------------------------
# Reading the posterior
# --------------------------------------------------------------------------------------------
def posterior_params(spec: Network, idata: az.InferenceData) -> Params:
    """Posterior draws as :class:`~probsnn.Params` with leading ``(chain, draw)`` axes."""
    post = _posterior(idata)
    lead = (post.sizes["chain"], post.sizes["draw"])
    shapes = spec.param_shapes
    pre, post_i = np.nonzero(spec.connectivity)

    def values(name, shape):
        if name not in post:
            if int(np.prod(shape)) == 0:
                return np.zeros((*lead, *shape), np.float32)
            raise ValueError(f"idata's posterior lacks {name!r}, which spec needs")
        array = np.asarray(post[name].values)
        if array.shape[2:] != tuple(shape):
            raise ValueError(
                f"idata's {name} has shape {array.shape[2:]}, spec expects {tuple(shape)}"
            )
        return array

    free_w = values("w", (len(pre), shapes.w[2]))
    w = np.zeros((*lead, *shapes.w), free_w.dtype)
    w[:, :, pre, post_i] = free_w
    return Params(
        w=jnp.asarray(w),
        v=jnp.asarray(values("v", shapes.v)),
        c=jnp.asarray(values("c", shapes.c)),
        bias=jnp.asarray(values("bias", shapes.bias)),
    )


class KernelSummary(NamedTuple):
    """Posterior mean and equal-tailed credible band of kernels (shapes as the kernels)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def posterior_kernels(spec: Network, idata: az.InferenceData, prob: float = 0.9):
    """Coupling and feedback kernels with equal-tailed ``prob`` credible bands.

    The kernel of synapse j→i at lag δ is Σ_k w_{j,i,k} φ_{k,δ}; each draw's kernel is computed
    and the band is its (1 − prob)/2 and (1 + prob)/2 posterior quantiles, pointwise in lag.

    Returns:
        ``(coupling, feedback)``, two :class:`KernelSummary`: coupling ``(N_pre, N_post, L_syn)``
        (zero outside the connectivity mask), feedback ``(N, L_fb)``.

    Raises:
        ValueError: prob outside (0, 1) or idata that does not match spec.
    """
    prob = _checks.probability(prob, "prob")
    params = posterior_params(spec, idata)
    coupling = np.asarray(params.w @ jnp.asarray(spec.synapse_basis, params.w.dtype))
    feedback = np.asarray(params.v @ jnp.asarray(spec.feedback_basis, params.v.dtype))
    return _summary(coupling, prob), _summary(feedback, prob)


class SynapseTest(NamedTuple):
    """Credible-region test of each synapse (``(N_pre, N_post)`` arrays, NaN/False off-mask).

    Attributes:
        distance: squared Mahalanobis distance d² = m̂ᵀ Σ̂⁻¹ m̂ of zero from the posterior mean of
            the synapse's basis weights (posterior covariance Σ̂).
        probability: χ²_K(d²), the largest credible level whose Gaussian credible ellipsoid still
            excludes zero.
        exists: probability > the test's ``prob``.
    """

    distance: np.ndarray
    probability: np.ndarray
    exists: np.ndarray


def synapse_test(spec: Network, idata: az.InferenceData, prob: float = 0.95) -> SynapseTest:
    """Does synapse j→i exist? Zero outside the ``prob`` credible region of its weights.

    Under the Gaussian (Bernstein–von Mises) approximation the posterior of the K basis weights
    w_{j,i,·} is N(m̂, Σ̂), the ``prob`` highest-density region is {w : (w − m̂)ᵀ Σ̂⁻¹ (w − m̂) ≤
    χ²_{K, prob}}, and zero lies outside it exactly when χ²_K-cdf(m̂ᵀ Σ̂⁻¹ m̂) > prob. The score
    d² ranks synapses for ROC analysis (:func:`auroc`).

    Raises:
        ValueError: prob outside (0, 1) or idata that does not match spec.
    """
    prob = _checks.probability(prob, "prob")
    pre, post_i = np.nonzero(spec.connectivity)
    if len(pre) == 0:
        raise ValueError("spec has no synapses to test (its connectivity is all False)")
    free_w = np.asarray(posterior_params(spec, idata).w, dtype=np.float64)[:, :, pre, post_i]
    flat = free_w.reshape(-1, *free_w.shape[2:])
    mean = flat.mean(axis=0)  # (S, K)
    centred = flat - mean
    cov = np.einsum("dsk,dsl->skl", centred, centred) / max(flat.shape[0] - 1, 1)
    d2 = np.einsum("sk,sk->s", mean, np.linalg.solve(cov, mean[:, :, None])[:, :, 0])
    n = spec.n_neurons
    distance = np.full((n, n), np.nan)
    distance[pre, post_i] = d2
    probability = np.full((n, n), np.nan)
    probability[pre, post_i] = stats.chi2.cdf(d2, df=free_w.shape[3])
    exists = np.zeros((n, n), dtype=bool)
    exists[pre, post_i] = probability[pre, post_i] > prob
    return SynapseTest(distance=distance, probability=probability, exists=exists)


def auroc(scores, labels) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counted ½.

    Computed as the Mann–Whitney U statistic / (n₊ n₋) (Hanley & McNeil 1982). NaN scores are
    dropped with their labels.

    Raises:
        ValueError: shapes differ, the labels lack positives or negatives or are not 0/1.
        TypeError: complex or non-numeric scores.
    """
    scores = np.asarray(scores)
    if not (np.issubdtype(scores.dtype, np.number) or scores.dtype == bool) or np.iscomplexobj(
        scores
    ):
        raise TypeError(f"scores must be real numbers, got dtype {scores.dtype}")
    scores = scores.astype(float).ravel()
    labels = np.asarray(labels)
    if labels.dtype != bool and not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0/1 or bool")
    labels = labels.astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must match, got {scores.size} and {labels.size}")
    keep = ~np.isnan(scores)
    scores, labels = scores[keep], labels[keep]
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels need positives and negatives, got {n_pos} and {n_neg}")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------
def _check_flags(**flags):
    for name, value in flags.items():
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{name} must be a bool, got {value!r}")


def _prepare(spec, spikes, inputs, prior):
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    _checks.fully_observed(spec, "a Bayesian fit")
    _checks.nonempty(spikes, "spikes")
    if inputs is not None:
        _checks.nonempty(inputs, "inputs")
    if prior is None:
        prior = GLMPrior.normal()
    if not isinstance(prior, GLMPrior):
        raise TypeError(f"prior must be a probsnn.models.GLMPrior, got {type(prior).__name__}")
    prior.groups()  # raises on a malformed group prior before anything is traced
    design = build_design(spec, spikes, inputs)
    shape = tuple(np.shape(spikes)[:-1])
    if len(shape) == 1:
        shape = (1, *shape)
    return design, prior, shape


def _uncoupled_start(spec, design, prior):
    """Initial values: zero weights and each neuron's bias at the logit of its observed rate
    (when the bias prior is i.i.d.); sites not named start at NumPyro's default."""
    groups = prior.groups()
    shapes = spec.param_shapes
    sizes = {"w": (int(spec.connectivity.sum()), shapes.w[2]), "v": shapes.v, "c": shapes.c}
    values = {}
    for name, shape in sizes.items():
        if math.prod(shape):
            values.update(groups[name].zero_values(name, shape))
    if isinstance(groups["bias"], IID):
        targets = np.asarray(design.targets)
        rows = targets.shape[0]
        rate = np.clip(targets.mean(axis=0), 0.5 / rows, 1 - 0.5 / rows)
        values["bias"] = np.log(rate) - np.log1p(-rate)
    return values


def _deterministic_sites(spec, prior, latent, key):
    """Deterministic sites of the prior (e.g. the horseshoe's weights) at latent draws."""
    trace = handlers.trace(handlers.seed(design_params, key)).get_trace(spec, prior)
    names = [name for name, site in trace.items() if site["type"] == "deterministic"]
    if not names:
        return {}
    predictive = Predictive(
        design_params, posterior_samples=latent, return_sites=names, batch_ndims=1
    )
    return predictive(key, spec, prior)


def _posterior(idata):
    import arviz as az

    if not isinstance(idata, az.InferenceData) or "posterior" not in idata.groups():
        raise TypeError("idata must be an arviz.InferenceData with a posterior group")
    return idata.posterior


def _summary(draws, prob):
    flat = draws.reshape(draws.shape[0] * draws.shape[1], *draws.shape[2:])
    lower, upper = np.quantile(flat, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return KernelSummary(mean=flat.mean(axis=0), lower=lower, upper=upper)


@functools.partial(jax.jit, static_argnums=0)
def _pointwise_log_likelihood(spec, design, params):
    """Per-row log-probability summed over neurons, for params with a leading draw axis."""
    signs = 2 * design.targets - 1

    def one(theta):
        u = design.x @ params_to_coef(spec, theta)
        return jnp.sum(jax.nn.log_sigmoid(signs * u), axis=1)

    return jax.lax.map(one, params)


def _inference_data(spec, prior, design, shape, samples, sample_stats, key, n_predictive):
    import arviz as az

    samples = {name: np.asarray(value) for name, value in samples.items()}
    chains, draws = samples["bias"].shape[:2]
    n_trials, n_steps = shape
    pre, post = np.nonzero(spec.connectivity)
    coords = {
        "synapse": np.arange(len(pre)),
        "neuron": np.arange(spec.n_neurons),
        "input": np.arange(spec.n_inputs),
        "syn_basis": np.arange(spec.synapse_basis.shape[0]),
        "fb_basis": np.arange(spec.feedback_basis.shape[0]),
        "in_basis": np.arange(spec.param_shapes.c[2]),
        "trial": np.arange(n_trials),
        "time": np.arange(n_steps) * spec.dt,
    }
    group_dims = {
        "w": ["synapse", "syn_basis"],
        "v": ["neuron", "fb_basis"],
        "c": ["input", "neuron", "in_basis"],
        "bias": ["neuron"],
    }
    dims = {"spikes": ["trial", "time", "neuron"]}
    for name, group in prior.groups().items():
        dims.update(group.site_dims(name, group_dims[name]))
    idata = az.from_dict(
        posterior=samples,
        sample_stats=sample_stats,
        observed_data={
            "spikes": np.asarray(design.targets, np.uint8).reshape(n_trials, n_steps, -1)
        },
        coords=coords,
        dims=dims,
    )
    params = posterior_params(spec, idata)
    idata.posterior = idata.posterior.assign(_kernel_draws(spec, params)).assign_coords(
        pre_neuron=("synapse", pre), post_neuron=("synapse", post)
    )
    flat = jax.tree.map(lambda a: a.reshape(chains * draws, *a.shape[2:]), params)
    log_lik = np.asarray(_pointwise_log_likelihood(spec, design, flat))
    idata.add_groups(
        log_likelihood={"spikes": log_lik.reshape(chains, draws, n_trials, n_steps)},
        coords={"trial": coords["trial"], "time": coords["time"]},
        dims={"spikes": ["trial", "time"]},
    )
    if n_predictive and spec.n_inputs == 0:
        picks = np.unique(np.linspace(0, draws - 1, min(n_predictive, draws)).astype(int))
        n_draws = chains * len(picks)
        chosen = jax.tree.map(lambda a: a[:, picks].reshape(n_draws, *a.shape[2:]), params)
        keys = jax.random.split(key, n_draws)
        trains = _predictive_spikes(spec, chosen, keys, n_steps, n_trials)
        idata.add_groups(
            posterior_predictive={
                "spikes": np.asarray(trains).reshape(chains, len(picks), *trains.shape[1:])
            },
            coords={**coords, "draw": picks},
            dims={"spikes": ["trial", "time", "neuron"]},
        )
    return idata


def _kernel_draws(spec, params) -> dict[str, xr.DataArray]:
    """Each draw's kernels over lags δ = 1..L' (coordinates δΔ in seconds), L' the last lag that
    any basis function reaches (beyond it every kernel is zero, whose R-hat would be NaN):
    ``coupling_kernel`` ``(chain, draw, synapse, syn_lag)``, ``feedback_kernel``
    ``(chain, draw, neuron, fb_lag)`` and, with inputs, ``input_kernel``
    ``(chain, draw, input, neuron, in_lag)``."""
    pre, post = np.nonzero(spec.connectivity)
    groups = {
        "coupling_kernel": (["synapse", "syn_lag"], params.w[:, :, pre, post], spec.synapse_basis),
        "feedback_kernel": (["neuron", "fb_lag"], params.v, spec.feedback_basis),
    }
    if spec.n_inputs:
        groups["input_kernel"] = (["input", "neuron", "in_lag"], params.c, spec.input_basis)
    kernels = {}
    for name, (dims, weights, basis) in groups.items():
        weights = np.asarray(weights)
        basis = np.asarray(basis, weights.dtype)
        reach = int(np.flatnonzero(np.any(basis != 0, axis=0)).max(initial=-1)) + 1
        kernels[name] = xr.DataArray(
            weights @ basis[:, :reach],
            dims=["chain", "draw", *dims],
            coords={dims[-1]: (np.arange(reach) + 1) * spec.dt},
        )
    return kernels


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _predictive_spikes(spec, params, keys, n_steps, n_trials):
    """Spike trains ``(draws, n_trials, T, N)`` simulated at each draw of ``params``."""
    return jax.vmap(lambda theta, key: sample(spec, theta, key, n_steps, n_trials))(params, keys)
