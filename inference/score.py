"""Score-function (REINFORCE) gradients through sampled spikes, with variance reduction.

For spikes S ~ q_θ and a learning signal f(S) (a log-likelihood, a reward, a bound),

    ∇_θ E_q[f(S)] = E_q[(f(S) − b) ∇_θ log q_θ(S)]      (Williams 1992)

for any b that does not depend on S. probsnn uses it wherever a criterion differentiates through
spikes: hidden neurons (docs/theory.md §3), mutual-information criteria (§4), reward modulation
(§5). These helpers estimate gradients of expectations E[f] as they are written; the rules built
on them negate the result where f is an objective, so that every rule returns the gradient of a
loss to minimise (docs/learning.md).

Shapes: a batch of S samples leads every array; ``signal`` is ``(S,)`` and ``scores`` is a pytree
whose leaves are ``(S, ...)`` — per-sample gradients ∇_θ log q_θ(S_s), e.g. from
``jax.vmap(jax.grad(log_q))``.

Baselines:
- :func:`optimal_baseline`: per-parameter b = E[f e²] / E[e²] (e the score), the variance-optimal
  constant (Weaver & Tao 2001; Peters & Schaal 2008), tracked by exponential moving averages in
  a :class:`BaselineState` (:func:`blend_moments`) and read off by :func:`baseline_ratio`. A rule
  that reads the ratio *before* blending in the current batch (a lagged baseline) keeps its
  estimate unbiased.
- :func:`blend`: the one exponential filter κ·old + (1 − κ)·new, for eligibility traces and
  moving averages.
- :func:`vimco_signals`: the leave-one-out signals of the K-sample importance-weighted bound
  (Mnih & Rezende 2016).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from probsnn import _checks


class BaselineState(NamedTuple):
    """Moving averages of f·e² and e², pytrees shaped like the parameters. Both start at zero
    and decay alike, so their ratio needs no bias correction."""

    signal_moment: object
    score_moment: object


def check_kappa(kappa, name: str = "kappa") -> float:
    """Validate a forgetting factor κ ∈ [0, 1); raises ValueError naming ``name`` (TypeError
    for a non-number, e.g. a complex or a string)."""
    if (
        isinstance(kappa, bool | str)
        or np.ndim(kappa) != 0
        or not np.issubdtype(np.asarray(kappa).dtype, np.number)
        or np.iscomplexobj(kappa)
    ):
        raise TypeError(f"{name} must be a number in [0, 1), got {kappa!r}")
    kappa = float(kappa)
    if not 0.0 <= kappa < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {kappa}")
    return kappa


def _real_values(x, name: str, allow: str = "finite"):
    """``x`` as a real jax array; TypeError for complex or non-numeric dtypes, ValueError (when
    concrete) for NaN, and for ±inf unless ``allow="-inf"`` (log-weights may be −inf)."""
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    dtype = np.dtype(x.dtype)
    if not (
        np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer) or dtype == np.bool_
    ):
        raise TypeError(f"{name} must be a real array, got dtype {dtype}")
    if _checks.is_concrete(x):
        values = np.asarray(x)
        bad = np.isnan(values) | (values == np.inf)
        if allow != "-inf":
            bad = bad | (values == -np.inf)
        if np.any(bad):
            what = "NaN or +inf" if allow == "-inf" else "NaN or inf"
            raise ValueError(f"{name} must not hold {what}, found {values[bad].flat[0]}")
    return jnp.asarray(x)


def init_baseline(params) -> BaselineState:
    """Zero moving averages shaped like ``params``."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    return BaselineState(zeros, zeros)


def optimal_baseline(state: BaselineState, signal, scores, kappa: float):
    """The per-parameter baseline of the earlier batches, then the batch enters the averages.

        b = m_f / m_e  (0 where m_e = 0, i.e. before any batch),
        m_f ← κ m_f + (1 − κ) mean_s f_s e_s²,   m_e ← κ m_e + (1 − κ) mean_s e_s²

    The baseline is lagged: it is read before this batch's samples enter the averages, so it is
    independent of them and the score-function estimate stays unbiased (with the current batch
    inside, b would correlate with the samples it centres).

    Args:
        state: :class:`BaselineState`. signal: ``(S,)`` learning signals.
        scores: pytree of per-sample scores with leaves ``(S, ...)``.
        kappa: forgetting factor in [0, 1); 0 uses this batch only.

    Returns:
        ``(baseline, new_state)``, baseline a pytree shaped like one sample's score.

    Raises:
        ValueError: κ outside [0, 1), signal not one value per sample, non-finite signals or
            scores (when concrete). TypeError: complex values, a state that is not a
            :class:`BaselineState`.
    """
    kappa = check_kappa(kappa)
    if not isinstance(state, BaselineState):
        raise TypeError(f"state must be a BaselineState, got {type(state).__name__}")
    baseline = baseline_ratio(state, 0.0)
    signal = _signal_vector(signal, scores)

    def moment(leaf, weights):
        w = weights.reshape(weights.shape + (1,) * (leaf.ndim - 1))
        return jnp.mean(w * leaf**2, axis=0)

    batch_signal = jax.tree.map(lambda e: moment(e, signal), scores)
    batch_score = jax.tree.map(lambda e: moment(e, jnp.ones_like(signal)), scores)
    return baseline, blend_moments(state, batch_signal, batch_score, kappa)


def blend(old, new, kappa):
    """κ·old + (1 − κ)·new, leaf by leaf over two matching pytrees.

    The one exponential filter of the library's rules: eligibility traces e_t = κ e_{t−1} +
    (1 − κ) g_t and the moving averages of the baselines (docs/theory.md §3).
    """
    return jax.tree.map(lambda o, n: kappa * o + (1.0 - kappa) * n, old, new)


def blend_moments(state: BaselineState, products, squares, kappa) -> BaselineState:
    """Blend a batch into the moving averages of a baseline:

        m_f ← κ m_f + (1 − κ) products,   m_e ← κ m_e + (1 − κ) squares

    ``products`` (the batch mean of f·e², or of any credit-weighted score times e) and
    ``squares`` (the batch mean of e²) are pytrees shaped like the parameters.
    """
    return BaselineState(
        blend(state.signal_moment, products, kappa), blend(state.score_moment, squares, kappa)
    )


def baseline_ratio(state: BaselineState, fallback):
    """The per-parameter optimal baseline b = m_f / m_e of a :class:`BaselineState`, with
    ``fallback`` (a scalar, e.g. the batch's mean signal) where m_e = 0."""

    def ratio(num, den):
        return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), fallback)

    return jax.tree.map(ratio, state.signal_moment, state.score_moment)


def score_gradient(signal, scores, baseline=0.0):
    """Monte-Carlo score-function gradient mean_s (f_s − b) e_s.

    Args:
        signal: ``(S,)`` learning signals (already per-sample centred for VIMCO, see
            :func:`vimco_signals`). scores: pytree with leaves ``(S, ...)``.
        baseline: a scalar, or a pytree of per-parameter baselines shaped like one sample's
            score (from :func:`optimal_baseline`).

    Returns:
        A pytree shaped like one sample's score: the gradient estimate of E[f].

    Raises:
        ValueError: signal not one value per sample, non-finite signals, scores or baselines
            (when concrete). TypeError: complex values.
    """
    signal = _signal_vector(signal, scores)
    jax.tree.map(lambda b: _real_values(b, "baseline"), baseline)

    def term(e, b):
        centred = signal.reshape(signal.shape + (1,) * (e.ndim - 1)) - b
        return jnp.mean(centred * e, axis=0)

    if isinstance(baseline, int | float) or getattr(baseline, "ndim", None) == 0:
        return jax.tree.map(lambda e: term(e, baseline), scores)
    return jax.tree.map(term, scores, baseline)


def leave_one_out(signal, axis: int = 0):
    """Signals centred by the mean of the other samples of the same group along ``axis``:

        f_k − (1/(K−1)) Σ_{j≠k} f_j

    With K i.i.d. samples per group the baseline is independent of sample k, so
    ``score_gradient(leave_one_out(f), scores)`` stays unbiased (Kool, van Hoof & Welling 2019,
    "Buy 4 REINFORCE samples, get a baseline for free!").

    Raises:
        ValueError: fewer than two samples along ``axis``, non-finite signals (when concrete).
        TypeError: complex values.
    """
    signal = _real_values(signal, "signal")
    k = signal.shape[axis] if signal.ndim else 0
    _checks.positive_int(int(k), "the number of samples per group", 2)
    total = jnp.sum(signal, axis=axis, keepdims=True)
    return signal - (total - signal) / (k - 1)


def iw_bound(log_weights, axis: int = 0):
    """The importance-weighted bound log (1/K) Σ_k exp(w_k) over ``axis`` (Burda et al. 2016).

    ``log_weights`` ``(..., K, ...)``; with w_k = log p(x, h_k) − log q(h_k‖x) it lower-bounds
    log p(x), non-decreasing in K in expectation. Raises ValueError on an empty axis or on NaN
    or +inf weights (−inf, a weight of zero, is allowed), TypeError on complex ones.
    """
    log_weights = _real_values(log_weights, "log_weights", allow="-inf")
    if log_weights.ndim == 0:
        raise ValueError("log_weights must have a sample axis, got a scalar")
    if log_weights.shape[axis] < 1:
        raise ValueError(f"log_weights must hold K >= 1 samples on axis {axis}")
    return logsumexp(log_weights, axis=axis) - jnp.log(log_weights.shape[axis])


def vimco_signals(log_weights):
    """VIMCO per-sample learning signals for the K-sample bound (Mnih & Rezende 2016).

        L = log (1/K) Σ_j e^{w_j};   L_{−k} = L with w_k replaced by mean_{j≠k} w_j;
        signal_k = L − L_{−k}

    The gradient of E[L] is E[Σ_k signal_k ∇ log q(h_k) + Σ_k softmax(w)_k ∇ w_k].

    Args:
        log_weights: ``(K, ...)`` with K >= 2 on the leading axis.

    Returns:
        ``(K, ...)`` signals.

    Raises:
        ValueError: fewer than two samples, NaN or infinite log-weights (when concrete).
        TypeError: complex values.
    """
    log_weights = _real_values(log_weights, "log_weights")
    k = _checks.positive_int(int(log_weights.shape[0]) if log_weights.ndim else 0, "K", 2)
    others_mean = (jnp.sum(log_weights, axis=0) - log_weights) / (k - 1)
    bound = iw_bound(log_weights)
    eye = jnp.eye(k, dtype=bool).reshape((k, k) + (1,) * (log_weights.ndim - 1))
    replaced = jnp.where(eye, others_mean[:, None], log_weights[None])  # (k: replaced, j, ...)
    return bound - iw_bound(replaced, axis=1)


def _signal_vector(signal, scores):
    signal = _real_values(signal, "signal")
    leaves = jax.tree.leaves(scores)
    if not leaves or any(np.ndim(leaf) < 1 for leaf in leaves):
        raise ValueError("scores must be a pytree of per-sample scores, leaves (S, ...)")
    for leaf in leaves:
        _real_values(leaf, "scores")
    n_samples = leaves[0].shape[0]
    if signal.shape != (n_samples,):
        raise ValueError(
            f"signal must have shape ({n_samples},), one value per sample, got {signal.shape}"
        )
    return signal
