"""Variational mutual-information criteria for GLM spiking networks (docs/theory.md §4).

Each constructor returns an
:class:`~probsnn.inference.information.infomax.InformationCriterion`: a per-sample objective
f(s; x, y) of the network's spikes s ~ p_θ(s‖x) (K samples of each of B inputs, spikes
``(B, K, T, N)``, inputs ``(B, T, M)``) and a learned read-out ψ, maximised in expectation:
:func:`~probsnn.inference.information.infomax.infomax_rule` estimates the gradient of the loss
L = −E[f]. Read-outs see the spike counts c(s) = Σ_t s_t.

* :func:`barber_agakov` — InfoMax with a learned decoder (Barber & Agakov 2003):
  I(X;S) >= H(X) + E log q_ψ(x | s), f = log q_ψ(x | s) with
  q_ψ(x | s) = Π_{t,m} Bern(x_{t,m}; σ(b_m + Σ_n W_{n,m} c_n(s))) for binary input spike trains.
* :func:`infonce` — a learned bilinear critic f_ψ(x, s) = c(x)ᵀ A c(s) + aᵀ c(x) and
  f_j = log [e^{f_ψ(x_j, s_j)} / ((1/B) Σ_i e^{f_ψ(x_i, s_j)})] <= log B (van den Oord et al.
  2018): each code picks its input among the batch's.
* :func:`information_bottleneck` — the variational information bottleneck for spiking networks
  (Skatchkovsky, Jang & Simeone 2021, "VDIB"; Alemi et al. 2017):
  f = log q_ψ(y | s) − β Σ_{t,i} KL(Bern(σ(u_{i,t})) ‖ Bern(r)), q_ψ a softmax read-out.
* :func:`rate_penalised_infomax` — Toyoizumi, Pfister, Aihara & Gerstner (2005, PNAS 102:5239):
  maximise I(X;Y) − γ KL(P(Y) ‖ P̃(Y)), P̃ the spike trains of a Bernoulli(r) neuron. With
  log p(y) = Σ_t log p̄(y_t | y_<t) the per-sample objective is Σ_t B_t,

      B_t = log p(y_t | x, y_<t) − (1 + γ) log p̄(y_t | y_<t) + γ log Bern(y_t; r),

  the postsynaptic factor of their rule; the marginal p̄ is estimated from reference inputs
  x_1..x_R (by default the batch's): p̂(y_≤t) = Σ_r w_r p(y_≤t | x_r), exact when the
  references enumerate the inputs with weights p(x_r). The weight change of a synapse is
  Σ_t C_t B_t with the eligibility C_t = Σ_{t'≤t} ∂ log p(y_t' | ·)/∂w, its expectation the
  gradient; :func:`toyoizumi_window` measures it against pre/post spike timing.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from probsnn import _checks
from probsnn.glm import bernoulli_log_prob, contract, potentials, traces
from probsnn.inference.information.estimators import _log_total, infonce_terms
from probsnn.inference.information.infomax import (
    InformationCriterion,
    _check_spec,
    as_float,
    spike_counts,
)
from probsnn.inference.latent.variational import rate_kl
from probsnn.kernels import filter_spikes
from probsnn.network import Network, Params


class LinearReadout(NamedTuple):
    """Affine read-out of spike counts: ``weight`` ``(N, D)``, ``bias`` ``(D,)``."""

    weight: jax.Array
    bias: jax.Array


class BilinearCritic(NamedTuple):
    """Critic f(x, s) = c(x)ᵀ A c(s) + aᵀ c(x): ``weight`` A ``(M, N)``, ``input_weight`` a
    ``(M,)`` (terms in c(s) alone cancel in InfoNCE)."""

    weight: jax.Array
    input_weight: jax.Array


def _zeros_readout(n_in: int, n_out: int):
    def init(key):
        del key
        return LinearReadout(jnp.zeros((n_in, n_out)), jnp.zeros(n_out))

    return init


# ----------------------------------------------------------------------------- Barber–Agakov


def barber_agakov(spec: Network, input_entropy: float = 0.0) -> InformationCriterion:
    """InfoMax with a learned decoder: f = log q_ψ(x | s) (module docstring).

    Args:
        spec: a network with M > 0 binary exogenous inputs (input spike trains).
        input_entropy: H(X) in nats, added to the reported bound only (0: the bound up to it).

    Returns:
        :class:`~probsnn.inference.information.infomax.InformationCriterion` with a
        :class:`LinearReadout` ``(N, M)`` decoder starting at zero; metrics ``bound``
        (H(X) + mean log q) and ``rate``. Its loss is −E log q_ψ(x | s) = H(X) − the bound.

    Raises:
        ValueError: a network without inputs, a non-finite entropy.
    """
    _check_spec(spec)
    input_entropy = _checks.finite_float(input_entropy, "input_entropy")
    init = _zeros_readout(spec.n_neurons, spec.n_inputs)
    return InformationCriterion(
        "Barber-Agakov", _barber_agakov_signal, {"input_entropy": input_entropy}, init
    )


def _barber_agakov_signal(spec, hyper, params, readout, spikes, inputs, targets):
    del spec, params, targets
    logits = spike_counts(spikes) @ readout.weight + readout.bias  # (B, K, M)
    on = spike_counts(inputs)[:, None]  # (B, 1, M)
    off = inputs.shape[-2] - on
    log_q = on * jax.nn.log_sigmoid(logits) + off * jax.nn.log_sigmoid(-logits)
    log_q = jnp.sum(log_q, axis=-1)
    bound = hyper["input_entropy"] + jnp.mean(log_q)
    return log_q, {"bound": bound, "rate": jnp.mean(spikes)}


# ---------------------------------------------------------------------------------- InfoNCE


def infonce(spec: Network) -> InformationCriterion:
    """InfoNCE with a learned bilinear critic; f_j <= log B for a batch of B inputs.

    Returns:
        :class:`~probsnn.inference.information.infomax.InformationCriterion` with a
        :class:`BilinearCritic` starting at zero (bound 0); metrics ``bound`` (the batch's
        InfoNCE estimate) and ``rate``. Its loss is −InfoNCE.

    Raises:
        ValueError: a network without inputs.
    """
    _check_spec(spec)

    def init_readout(key):
        del key
        return BilinearCritic(jnp.zeros((spec.n_inputs, spec.n_neurons)), jnp.zeros(spec.n_inputs))

    return InformationCriterion("InfoNCE", _infonce_signal, {}, init_readout)


def _infonce_signal(spec, hyper, params, readout, spikes, inputs, targets):
    del spec, hyper, params, targets
    x = spike_counts(inputs)  # (B, M)
    s = spike_counts(spikes)  # (B, K, N)
    scores = jnp.einsum("im,mn,jkn->kij", x, readout.weight, s)  # (K, B inputs i, B codes j)
    scores = scores + (x @ readout.input_weight)[None, :, None]
    f = infonce_terms(scores).T  # (B, K)
    return f, {"bound": jnp.mean(f), "rate": jnp.mean(spikes)}


# --------------------------------------------------------------------- information bottleneck


def information_bottleneck(
    spec: Network, n_classes: int, beta: float, target_prob: float = 0.02
) -> InformationCriterion:
    """The variational information bottleneck: f = log q_ψ(y | s) − β Σ_{t,i} KL(p_t ‖ r).

    Large β spends fewer bits (firing pulled to Bern(r)), small β decodes the target better.

    Args:
        spec: a network with exogenous inputs. n_classes: C >= 2 target classes.
        beta: β >= 0. target_prob: r in (0, 1), the target spike probability per bin.

    Returns:
        :class:`~probsnn.inference.information.infomax.InformationCriterion` (needs targets)
        with a softmax :class:`LinearReadout` ``(N, C)``; metrics ``cross_entropy``
        (−mean log q), ``accuracy`` (argmax of the read-out), ``kl`` (mean per sample) and
        ``rate``. Its loss is E[−log q_ψ(y | s) + β Σ_{t,i} KL(p_t ‖ r)].

    Raises:
        ValueError: a network without inputs, n_classes < 2, β < 0, r outside (0, 1).
    """
    _check_spec(spec)
    n_classes = _checks.positive_int(n_classes, "n_classes", minimum=2)
    beta = _checks.nonnegative_float(beta, "beta")
    target_prob = _checks.probability(target_prob, "target_prob")
    return InformationCriterion(
        "information bottleneck",
        _bottleneck_signal,
        {"beta": beta, "target_prob": target_prob},
        _zeros_readout(spec.n_neurons, n_classes),
        needs_targets=True,
    )


def _bottleneck_signal(spec, hyper, params, readout, spikes, inputs, targets):
    logits = spike_counts(spikes) @ readout.weight + readout.bias  # (B, K, C)
    log_q = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[:, None, None], axis=-1)
    log_q = log_q[..., 0]  # (B, K)
    own_inputs = jnp.broadcast_to(inputs[:, None], (*spikes.shape[:2], *inputs.shape[1:]))
    u = potentials(spec, params, spikes, own_inputs)
    kl = jnp.sum(rate_kl(u, hyper["target_prob"]), axis=(-2, -1))
    metrics = {
        "cross_entropy": -jnp.mean(log_q),
        "accuracy": jnp.mean(jnp.argmax(logits, axis=-1) == targets[:, None]),
        "kl": jnp.mean(kl),
        "rate": jnp.mean(spikes),
    }
    return log_q - hyper["beta"] * kl, metrics


# ------------------------------------------------------------ Toyoizumi et al. 2005 InfoMax


def _reference_inputs(spec, reference_inputs, reference_log_weights):
    if reference_inputs is None:
        if reference_log_weights is not None:
            raise ValueError("reference_log_weights were given without reference_inputs")
        return None
    refs = _checks.real_array(reference_inputs, "reference_inputs", min_ndim=3)
    if refs.ndim != 3 or refs.shape[-1] != spec.n_inputs:
        raise ValueError(
            f"reference_inputs must have shape (R, T, {spec.n_inputs}), got {tuple(refs.shape)}"
        )
    if reference_log_weights is None:
        weights = jnp.full(refs.shape[0], -np.log(refs.shape[0]))
    else:
        weights = _checks.real_array(reference_log_weights, "reference_log_weights")
        if tuple(weights.shape) != (refs.shape[0],):
            raise ValueError(
                f"reference_log_weights must have shape ({refs.shape[0]},), got "
                f"{tuple(weights.shape)}"
            )
        total = float(_log_total(weights, 0))
        if abs(total) > 1e-4:
            raise ValueError(
                f"reference_log_weights must be normalised (log-sum-exp 0), got {total}"
            )
    return as_float(refs), jnp.asarray(weights)


def post_factor(spec, params, spikes, inputs, references, log_weights, gamma, target_prob):
    """Toyoizumi's postsynaptic factor B_t ``(..., T)`` (module docstring) for spikes
    ``(..., T, N)`` driven by ``inputs`` (same leading shape), the marginal estimated from
    ``references`` ``(R, T, M)`` with normalised ``log_weights`` ``(R,)``.

    Returns ``(B_t, information_t)`` with information_t = log p(y_t | x, y_<t) − log p̄(y_t | y_<t).
    """
    own = traces(spec, spikes, inputs)
    log_p_self = jnp.sum(bernoulli_log_prob(spikes, contract(spec, params, own)), axis=-1)
    recurrent = contract(spec, params, own._replace(inputs=None))  # (..., T, N), with bias
    x_ref = filter_spikes(references, spec.input_basis).astype(recurrent.dtype)
    drive = jnp.einsum("rtmk,mik->rti", x_ref, params.c.astype(recurrent.dtype))  # (R, T, N)
    u_ref = recurrent[..., None, :, :] + drive  # (..., R, T, N)
    log_p_ref = jnp.sum(bernoulli_log_prob(spikes[..., None, :, :], u_ref), axis=-1)
    cumulative = logsumexp(jnp.cumsum(log_p_ref, axis=-1) + log_weights[:, None], axis=-2)
    log_marginal = jnp.diff(cumulative, axis=-1, prepend=jnp.zeros_like(cumulative[..., :1]))
    log_target = jnp.sum(bernoulli_log_prob(spikes, jnp.log(target_prob / (1 - target_prob))), -1)
    information = log_p_self - log_marginal
    return information - gamma * (log_marginal - log_target), information


def rate_penalised_infomax(
    spec: Network,
    gamma: float = 0.0,
    target_prob: float = 0.02,
    reference_inputs=None,
    reference_log_weights=None,
) -> InformationCriterion:
    """Toyoizumi et al. (2005): maximise I(X;Y) − γ KL(P(Y) ‖ P̃(Y)), f = Σ_t B_t.

    The batch's own inputs serve as the references by default: then mean f without the rate
    term is the InfoNCE bound with the exact likelihood as critic, <= I(X;Y) in expectation.

    Args:
        spec: a network with exogenous inputs (Y = all its neurons). gamma: γ >= 0.
        target_prob: r in (0, 1), the target spike probability per bin.
        reference_inputs: optional ``(R, T, M)`` inputs for the marginal, T as the training
            inputs' (e.g. every input pattern, from
            :func:`probsnn.inference.information.estimators.enumerate_patterns`), with
            reference_log_weights ``(R,)`` log p(x_r) (default uniform).

    Returns:
        :class:`~probsnn.inference.information.infomax.InformationCriterion` without read-out
        (ψ = ``()``); metrics ``information`` (mean Σ_t log p(y_t|x, y_<t) − log p̄(y_t|y_<t))
        and ``rate``. Its loss is −E Σ_t B_t, an estimate of −(I(X;Y) − γ KL(P(Y) ‖ P̃(Y))).

    Raises:
        ValueError: a network without inputs, γ < 0, r outside (0, 1), references of the wrong
            shape or unnormalised weights.
    """
    _check_spec(spec)
    gamma = _checks.nonnegative_float(gamma, "gamma")
    target_prob = _checks.probability(target_prob, "target_prob")
    hyper = {"gamma": gamma, "target_prob": target_prob}
    fixed = _reference_inputs(spec, reference_inputs, reference_log_weights)
    if fixed is not None:
        hyper["reference_inputs"], hyper["reference_log_weights"] = fixed
    return InformationCriterion("rate-penalised InfoMax", _infomax_signal, hyper, _no_readout)


def _no_readout(key):
    del key
    return ()


def _infomax_signal(spec, hyper, params, readout, spikes, inputs, targets):
    del readout, targets
    refs = hyper.get("reference_inputs", inputs)
    if refs.shape[1:] != inputs.shape[1:]:
        raise ValueError(
            f"reference_inputs must have the inputs' (T, M) = {tuple(inputs.shape[1:])}, got "
            f"{tuple(refs.shape[1:])}"
        )
    log_w = hyper.get("reference_log_weights", jnp.full(refs.shape[0], -jnp.log(refs.shape[0])))
    own_inputs = jnp.broadcast_to(inputs[:, None], (*spikes.shape[:2], *inputs.shape[1:]))
    factor, information = post_factor(
        spec, params, spikes, own_inputs, refs, log_w, hyper["gamma"], hyper["target_prob"]
    )
    metrics = {"information": jnp.mean(jnp.sum(information, -1)), "rate": jnp.mean(spikes)}
    return jnp.sum(factor, axis=-1), metrics


class InfoMaxWindow(NamedTuple):
    """:func:`toyoizumi_window` result: lags Δt = t_post − t_pre in bins ``(L,)`` and the
    weight change Δw(Δt) ``(L,)``."""

    lags: np.ndarray
    dw: np.ndarray


def toyoizumi_window(
    spec: Network,
    params: Params,
    lags_bins,
    key,
    input_probs,
    *,
    gamma: float = 0.0,
    target_prob: float = 0.02,
    pre: int = 0,
    n_references: int = 2048,
    margin: int | None = None,
) -> InfoMaxWindow:
    """The rate-penalised InfoMax weight change against pre/post spike timing.

    For every lag, input ``pre`` spikes once at t_pre and neuron 0 once at t_post = t_pre + Δt
    (all else silent, ``margin`` bins before the first and after the last spike); the change of
    the gain g of the synapse (its kernel c[pre, 0] scaled by g, at g = 1) under Toyoizumi's
    rule is Δw = Σ_t C_t B_t with C_t = Σ_{t'≤t} ε_t' (y_t' − σ(u_t')), ε the synaptic
    drive of the pre spike, and B_t the postsynaptic factor (module docstring) with the
    marginal from ``n_references`` Bernoulli(input_probs) inputs (common to all lags).

    Args:
        spec: a network with inputs (its neuron 0 is the postsynaptic one); params: its Params.
        lags_bins: ``(L,)`` integer lags Δt in bins. key: PRNG key for the references.
        input_probs: scalar or ``(M,)`` input spike probabilities per bin in (0, 1).
        gamma, target_prob: as :func:`rate_penalised_infomax`.
        pre: the input channel. margin: silent bins around the pair (default L_in).

    Returns:
        :class:`InfoMaxWindow`.

    Raises:
        ValueError: an empty or non-integer lag array, a bad channel, probabilities or sizes,
            γ < 0, non-finite params.
        TypeError: a key that is not a PRNG key, complex probabilities.
    """
    _check_spec(spec)
    _checks.finite_tree(spec.check_params(params), "params")
    key = _checks.prng_key(key, "key")
    lags = np.asarray(lags_bins)
    if lags.ndim != 1 or lags.size == 0 or not np.issubdtype(lags.dtype, np.integer):
        raise ValueError(f"lags_bins must be a non-empty 1-D integer array, got {lags!r}")
    channel_ok = isinstance(pre, int | np.integer) and not isinstance(pre, bool)
    if not channel_ok or not 0 <= pre < spec.n_inputs:
        raise ValueError(f"pre must be an input channel in 0..{spec.n_inputs - 1}, got {pre}")
    gamma = _checks.nonnegative_float(gamma, "gamma")
    target_prob = _checks.probability(target_prob, "target_prob")
    pre = int(pre)
    n_references = _checks.positive_int(n_references, "n_references")
    margin = spec.n_input_lags if margin is None else _checks.positive_int(margin, "margin")
    probs = _checks.real_array(input_probs, "input_probs", min_ndim=0)
    if np.shape(probs) not in ((), (spec.n_inputs,)):
        raise ValueError(
            f"input_probs must be a scalar or ({spec.n_inputs},), got shape {np.shape(probs)}"
        )
    probs = np.broadcast_to(np.asarray(probs, np.float64), (spec.n_inputs,))
    if np.any((probs <= 0) | (probs >= 1)):
        raise ValueError(f"input_probs must lie in (0, 1), got {input_probs}")
    span = int(np.max(np.abs(lags)))
    n_steps = 2 * margin + span + 1
    _checks.allocation(n_references * n_steps * spec.n_inputs, "the reference inputs")
    _checks.allocation(lags.size * n_references * n_steps * spec.n_neurons, "the window")
    t_pre = margin + np.maximum(-lags, 0)
    t_post = t_pre + lags
    pre_trains = np.zeros((lags.size, n_steps, spec.n_inputs), np.float32)
    pre_trains[np.arange(lags.size), t_pre, pre] = 1
    post_trains = np.zeros((lags.size, n_steps, spec.n_neurons), np.float32)
    post_trains[np.arange(lags.size), t_post, 0] = 1
    references = jax.random.bernoulli(
        key, jnp.asarray(probs, jnp.float32), (n_references, n_steps, spec.n_inputs)
    ).astype(jnp.float32)
    dw = _pair_update(
        spec,
        params,
        jnp.asarray(post_trains),
        jnp.asarray(pre_trains),
        references,
        gamma,
        target_prob,
        pre,
    )
    return InfoMaxWindow(lags=lags, dw=np.asarray(dw))


@partial(jax.jit, static_argnames=("spec", "pre"))
def _pair_update(spec, params, post_trains, pre_trains, references, gamma, target_prob, pre):
    """Σ_t C_t B_t for each pair of trains (see :func:`toyoizumi_window`)."""
    log_w = jnp.full(references.shape[0], -jnp.log(references.shape[0]))
    factor, _ = post_factor(
        spec, params, post_trains, pre_trains, references, log_w, gamma, target_prob
    )
    u = potentials(spec, params, post_trains, pre_trains)[..., 0]  # (L, T)
    only_pre = Params(
        w=jnp.zeros_like(params.w),
        v=jnp.zeros_like(params.v),
        c=jnp.zeros_like(params.c).at[pre].set(params.c[pre]),
        bias=jnp.zeros_like(params.bias),
    )
    drive = potentials(spec, only_pre, post_trains, pre_trains)[..., 0]
    eligibility = jnp.cumsum(drive * (post_trains[..., 0] - jax.nn.sigmoid(u)), axis=-1)
    return jnp.sum(eligibility * factor, axis=-1)
