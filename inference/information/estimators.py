"""Estimators of the mutual information I(X;S) between inputs and spike codes, in nats.

For judging learned codes (docs/theory.md §4), from the exact to the approximate:

* **Exact** for small discrete codes: I = Σ p(x, s) log p(x, s) / (p(x) p(s)) from a joint table
  (:func:`mutual_information`) or from log p(x) and a channel log p(s | x)
  (:func:`channel_information`); :func:`network_channel` enumerates every input and output
  pattern of a tiny GLM network to build that channel, differentiably in the parameters.
* **Plug-in** from samples of discrete codes (:func:`plugin_information`, codes from
  :func:`pattern_codes`): the empirical joint's information, with the first-order bias
  correction of Miller (1955) and Madow — with occupied bins as the "relevant" bins it is also
  Panzeri & Treves' (1996, Network 7:87) correction — or the jackknife (Efron & Stein 1981);
  the error bar is the jackknife standard error, in closed form from the counts.
* **Variational bounds** from a learned decoder or critic: Barber & Agakov (2003)
  I ≥ H(X) + E log q(x | s) (:func:`barber_agakov_bound`) and InfoNCE (van den Oord, Li &
  Vinyals 2018) I ≥ log M − L_M (:func:`infonce_bound`), each with its Monte-Carlo standard
  error.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, xlogy
from scipy.special import logsumexp as scipy_logsumexp

from probsnn import _checks
from probsnn.glm import bernoulli_log_prob, potentials
from probsnn.network import Network, Params

CORRECTIONS = ("none", "miller_madow", "jackknife")
MAX_PATTERN_BITS = 62


class MIEstimate(NamedTuple):
    """An information estimate in nats and its standard error (0 for exact values)."""

    value: jax.Array
    stderr: jax.Array


# ------------------------------------------------------------------------------------- exact


def mutual_information(joint):
    """Exact I(X;S) = Σ_{x,s} p(x,s) log [p(x,s) / (p(x) p(s))] from a joint probability table.

    Args:
        joint: ``(..., n_x, n_s)`` non-negative probabilities summing to 1 over the last two axes.

    Returns:
        ``(...)`` information in nats (differentiable; 0 log 0 = 0).

    Raises:
        ValueError: fewer than two dimensions, negative or non-finite entries, or tables that
            do not sum to 1 (checked on concrete arrays).
    """
    joint = _checks.real_array(joint, "joint", min_ndim=2)
    if _checks.is_concrete(joint):
        table = np.asarray(joint, np.float64)
        if np.any(table < 0):
            raise ValueError(f"joint must be >= 0, found {table.min()}")
        totals = table.sum(axis=(-2, -1))
        if not np.allclose(totals, 1.0, atol=1e-5):
            raise ValueError(f"joint must sum to 1 over its last two axes, got sums {totals}")
    return _table_information(jnp.asarray(joint))


@jax.jit
def _table_information(joint):
    p_x = jnp.sum(joint, axis=-1, keepdims=True)
    p_s = jnp.sum(joint, axis=-2, keepdims=True)
    return _entropy(p_x, (-2, -1)) + _entropy(p_s, (-2, -1)) - _entropy(joint, (-2, -1))


def _entropy(p, axis):
    return -jnp.sum(xlogy(p, p), axis=axis)


def channel_information(log_px, log_psx):
    """Exact I(X;S) = Σ_x p(x) Σ_s p(s|x) [log p(s|x) − log p(s)], p(s) = Σ_x p(x) p(s|x),
    computed in log space (stable for channels with very small probabilities).

    Args:
        log_px: ``(n_x,)`` log-probabilities of the inputs (summing to 1 in probability).
        log_psx: ``(n_x, n_s)`` log p(s | x), each row a distribution.

    Returns:
        Scalar information in nats, differentiable in both arguments.

    Raises:
        ValueError: mismatched shapes, or (concrete) rows that are not distributions.
    """
    log_px = _checks.real_array(log_px, "log_px", min_ndim=1)
    log_psx = _checks.real_array(log_psx, "log_psx", min_ndim=2)
    if log_px.ndim != 1 or log_psx.ndim != 2 or log_psx.shape[0] != log_px.shape[0]:
        raise ValueError(
            f"log_px must be (n_x,) and log_psx (n_x, n_s) with the same n_x, got "
            f"{tuple(log_px.shape)} and {tuple(log_psx.shape)}"
        )
    if _checks.is_concrete(log_px) and _checks.is_concrete(log_psx):
        totals = (("log_px", _log_total(log_px, 0)), ("log_psx", _log_total(log_psx, 1)))
        for name, value in totals:
            if not np.allclose(value, 0.0, atol=1e-4):
                raise ValueError(f"{name} must be normalised (log-sum-exp 0), got {value}")
    return _channel_information(jnp.asarray(log_px), jnp.asarray(log_psx))


@jax.jit
def _channel_information(log_px, log_psx):
    log_ps = logsumexp(log_px[:, None] + log_psx, axis=0)
    weights = jnp.exp(log_px[:, None] + log_psx)
    return jnp.sum(weights * (log_psx - log_ps[None]))


def _log_total(log_p, axis):
    """log Σ exp over ``axis`` in numpy (validation needs no compiled kernel)."""
    return scipy_logsumexp(np.asarray(log_p, np.float64), axis=axis)


def enumerate_patterns(n_steps: int, n_channels: int) -> np.ndarray:
    """Every binary pattern of ``n_steps`` bins × ``n_channels`` channels, uint8
    ``(2^(T·C), T, C)``, in the order of :func:`pattern_codes` (code k is row k).

    Raises:
        ValueError: sizes below 1 or more than 20 bits (a million patterns).
    """
    n_steps = _checks.positive_int(n_steps, "n_steps")
    n_channels = _checks.positive_int(n_channels, "n_channels")
    n_bits = n_steps * n_channels
    if n_bits > 20:
        raise ValueError(f"n_steps * n_channels must be <= 20 bits to enumerate, got {n_bits}")
    bits = np.array(list(itertools.product((0, 1), repeat=n_bits)), np.uint8)
    return bits.reshape(-1, n_steps, n_channels)


def pattern_codes(spikes) -> np.ndarray:
    """One integer per spike pattern: the binary word of its T·N bits (row-major over time,
    neurons; the first bin is the most significant).

    Args:
        spikes: ``(..., T, N)`` binary, with T·N <= 62.

    Returns:
        int64 ``(...)`` codes.

    Raises:
        ValueError, TypeError: empty or non-binary spikes or patterns of more than 62 bits.
    """
    spikes = _checks.spike_array(spikes, "spikes")
    _checks.nonempty(spikes, "spikes")
    n_bits = spikes.shape[-1] * spikes.shape[-2]
    if n_bits > MAX_PATTERN_BITS:
        raise ValueError(
            f"spikes patterns must have T * N <= {MAX_PATTERN_BITS} bits to be coded as "
            f"integers, got {n_bits}; code a summary (e.g. spike counts) instead"
        )
    bits = np.asarray(spikes).astype(np.int64).reshape(*spikes.shape[:-2], n_bits)
    powers = np.left_shift(np.int64(1), np.arange(n_bits - 1, -1, -1, dtype=np.int64))
    return bits @ powers


class Channel(NamedTuple):
    """An enumerated network channel: all input patterns ``(n_x, T, M)`` with log p(x)
    ``(n_x,)``, all output patterns ``(n_s, T, N)`` and log p(s | x) ``(n_x, n_s)``."""

    inputs: np.ndarray
    log_px: jax.Array
    outputs: np.ndarray
    log_psx: jax.Array


def network_channel(spec: Network, params: Params, n_steps: int, input_probs) -> Channel:
    """Enumerate the channel from binary inputs to the spikes of a tiny GLM network.

    Inputs are independent Bernoulli(p_m) in every bin (binned Poisson spike trains,
    docs/theory.md §9), so log p(x) = Σ_{t,m} log Bern(x_{t,m}; p_m); outputs follow the
    network, log p(s | x) = Σ_{t,i} log σ((2 s_{t,i} − 1) u_{t,i}) (docs/theory.md §2).
    Differentiable in ``params`` (use with :func:`channel_information` for the exact I(X;S)
    and its gradient).

    Args:
        spec: a network with exogenous inputs; params: its Params.
        n_steps: T, with T·M <= 12 and T·N <= 12 bits.
        input_probs: ``(M,)`` or scalar firing probability per bin of each input, in (0, 1).

    Returns:
        :class:`Channel`.

    Raises:
        ValueError: a network without inputs, too many patterns, probabilities outside (0, 1).
    """
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    if spec.n_inputs == 0:
        raise ValueError("network_channel needs a network with exogenous inputs (n_inputs > 0)")
    _checks.finite_tree(spec.check_params(params), "params")
    n_steps = _checks.positive_int(n_steps, "n_steps")
    for name, bits in (("n_inputs", spec.n_inputs), ("n_neurons", spec.n_neurons)):
        if n_steps * bits > 12:
            raise ValueError(
                f"n_steps * {name} must be <= 12 bits to enumerate, got {n_steps} * {bits}"
            )
    probs = _checks.real_array(input_probs, "input_probs", min_ndim=0)
    probs = np.broadcast_to(np.asarray(probs, np.float64), (spec.n_inputs,))
    if np.any((probs <= 0) | (probs >= 1)):
        raise ValueError(f"input_probs must lie in (0, 1), got {probs}")
    x = enumerate_patterns(n_steps, spec.n_inputs)
    s = enumerate_patterns(n_steps, spec.n_neurons)
    log_px = np.sum(np.where(x == 1, np.log(probs), np.log1p(-probs)), axis=(1, 2))
    log_psx = _channel_log_probs(spec, params, x, s)
    log_px = jnp.asarray(log_px, params.bias.dtype)
    return Channel(inputs=x, log_px=log_px, outputs=s, log_psx=log_psx)


@partial(jax.jit, static_argnums=0)
def _channel_log_probs(spec, params, x, s):
    """log p(s | x) ``(n_x, n_s)`` for every input pattern x and output pattern s."""
    dtype = params.bias.dtype
    spikes = jnp.broadcast_to(jnp.asarray(s, dtype)[None], (len(x), *s.shape))
    inputs = jnp.broadcast_to(jnp.asarray(x, dtype)[:, None], (len(x), len(s), *x.shape[1:]))
    u = potentials(spec, params, spikes, inputs)
    return jnp.sum(bernoulli_log_prob(spikes, u), axis=(-2, -1))


# ----------------------------------------------------------------------------------- plug-in


def plugin_information(x_codes, s_codes, correction: str = "miller_madow") -> MIEstimate:
    """Plug-in I(X;S) of the empirical joint of paired discrete codes, bias-corrected.

    With n pairs, counts n_xs, n_x, n_s and F(c) = Σ c log c, the plug-in estimate is
    Î = log n − (F(n_x) + F(n_s) − F(n_xs)) / n, biased upwards by about
    (m_xs − m_x − m_s + 1) / (2n) nats (m: occupied cells; Miller 1955; Panzeri & Treves 1996,
    whose correction this is when the relevant bins are the occupied ones). Corrections:

    * ``"miller_madow"``: Î − (m_xs − m_x − m_s + 1) / (2n);
    * ``"jackknife"``: n Î − (n − 1) mean_i Î_{−i} (Efron & Stein 1981);
    * ``"none"``: Î.

    The standard error is the jackknife's, sqrt((n − 1)/n Σ_i (Î_{−i} − mean Î_{−})²) of the
    chosen estimator (of Î for ``"jackknife"``), computed in closed form per occupied cell.

    Args:
        x_codes, s_codes: ``(n,)`` integer codes of the paired samples (n >= 2), e.g. from
            :func:`pattern_codes`.
        correction: one of ``"none"``, ``"miller_madow"``, ``"jackknife"``.

    Returns:
        :class:`MIEstimate` of floats.

    Raises:
        ValueError, TypeError: unequal or too short code arrays, non-integer codes, an unknown
            correction.
    """
    _checks.option(correction, "correction", CORRECTIONS)
    x_codes = _integer_codes(x_codes, "x_codes")
    s_codes = _integer_codes(s_codes, "s_codes")
    if x_codes.shape != s_codes.shape:
        raise ValueError(
            f"x_codes and s_codes must pair up, got shapes {x_codes.shape} and {s_codes.shape}"
        )
    n = x_codes.size
    _, x_index = np.unique(x_codes, return_inverse=True)
    _, s_index = np.unique(s_codes, return_inverse=True)
    cells, n_xs = np.unique(np.stack([x_index, s_index]), axis=1, return_counts=True)
    n_x = np.bincount(x_index).astype(np.float64)
    n_s = np.bincount(s_index).astype(np.float64)
    n_xs = n_xs.astype(np.float64)
    plugin = _plugin(n, _flogf(n_x).sum(), _flogf(n_s).sum(), _flogf(n_xs).sum())
    # Leaving out one pair of cell (x, s): each count drops by one, F drops by g(c).
    row, col = n_x[cells[0]], n_s[cells[1]]
    loo = _plugin(
        n - 1,
        _flogf(n_x).sum() - _drop(row),
        _flogf(n_s).sum() - _drop(col),
        _flogf(n_xs).sum() - _drop(n_xs),
    )
    if correction == "miller_madow":
        occupied = (n_xs.size, n_x.size, n_s.size)
        plugin = plugin - _madow(n, *occupied)
        emptied = (n_xs == 1, row == 1, col == 1)
        loo = loo - _madow(n - 1, *(m - e for m, e in zip(occupied, emptied, strict=True)))
    mean_loo = np.sum(n_xs * loo) / n
    stderr = np.sqrt((n - 1) / n * np.sum(n_xs * (loo - mean_loo) ** 2))
    value = n * plugin - (n - 1) * mean_loo if correction == "jackknife" else plugin
    return MIEstimate(value=float(value), stderr=float(stderr))


def _integer_codes(codes, name):
    codes = np.asarray(codes)
    if not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"{name} must hold integer codes, got dtype {codes.dtype}")
    if codes.ndim != 1 or codes.size < 2:
        raise ValueError(f"{name} must be a 1-D array of n >= 2 codes, got shape {codes.shape}")
    return codes


def _flogf(c):
    """c log c with 0 log 0 = 0, elementwise (numpy)."""
    c = np.asarray(c, np.float64)
    return np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0)), 0.0)


def _drop(c):
    """g(c) = c log c − (c − 1) log(c − 1): the fall of F when a count c loses one sample."""
    return _flogf(c) - _flogf(c - 1.0)


def _plugin(n, f_x, f_s, f_xs):
    return np.log(n) - (f_x + f_s - f_xs) / n


def _madow(n, m_xs, m_x, m_s):
    return (m_xs - m_x - m_s + 1) / (2.0 * n)


# --------------------------------------------------------------------------------- variational


def barber_agakov_bound(log_q, entropy_x) -> MIEstimate:
    """Barber & Agakov (2003): I(X;S) >= H(X) + E_{p(x,s)}[log q(x | s)] for any decoder q.

    Args:
        log_q: ``(n,)`` values log q(x_i | s_i) on joint samples (or any shape, all samples).
        entropy_x: H(X) in nats (a number; 0 gives the bound up to this constant).

    Returns:
        :class:`MIEstimate`: H(X) + mean log q, and the standard error of the mean.

    Raises:
        ValueError: empty or non-finite ``log_q``, non-finite ``entropy_x``.
    """
    log_q = _checks.real_array(log_q, "log_q", min_ndim=1)
    if log_q.size < 2:
        raise ValueError(f"log_q must hold at least 2 samples, got shape {tuple(log_q.shape)}")
    entropy_x = _checks.finite_float(entropy_x, "entropy_x")
    return _barber_agakov(jnp.ravel(jnp.asarray(log_q)), entropy_x)


@jax.jit
def _barber_agakov(log_q, entropy_x):
    return MIEstimate(entropy_x + jnp.mean(log_q), jnp.std(log_q) / np.sqrt(log_q.size))


def infonce_terms(scores):
    """Per-sample InfoNCE terms log [e^{f_jj} / ((1/M) Σ_i e^{f_ij})] ``(..., M)``, each <= log M.

    ``scores[..., i, j]`` = f(x_i, s_j): the critic of input i with code j; code j picks its own
    input among the M candidates of its batch.
    """
    m = scores.shape[-1]
    diagonal = jnp.diagonal(scores, axis1=-2, axis2=-1)
    return diagonal - logsumexp(scores, axis=-2) + jnp.log(m)


def infonce_bound(scores) -> MIEstimate:
    """InfoNCE (van den Oord, Li & Vinyals 2018; Poole et al. 2019):

        I(X;S) >= E[ (1/M) Σ_j log ( e^{f(x_j, s_j)} / ((1/M) Σ_i e^{f(x_i, s_j)}) ) ]  <= log M.

    Args:
        scores: ``(..., M, M)`` critic values f(x_i, s_j) of batches of M joint samples
            (i: input, j: code), M >= 2; leading axes are independent batches.

    Returns:
        :class:`MIEstimate`: the mean over batches, with the standard error of the batch means
        when there are >= 2 batches, else of the M terms treated as independent (they share the
        batch's candidates, so this is approximate).

    Raises:
        ValueError: scores not square in the last two axes, M < 2, non-finite values.
    """
    scores = _checks.real_array(scores, "scores", min_ndim=2)
    m = scores.shape[-1]
    if scores.shape[-2] != m or m < 2:
        raise ValueError(f"scores must be (..., M, M) with M >= 2, got {tuple(scores.shape)}")
    return _infonce_bound(jnp.asarray(scores))


@jax.jit
def _infonce_bound(scores):
    terms = infonce_terms(scores)
    if terms.ndim >= 2 and np.prod(terms.shape[:-1]) >= 2:
        batch_means = jnp.ravel(jnp.mean(terms, axis=-1))
    else:
        batch_means = jnp.ravel(terms)
    return MIEstimate(jnp.mean(terms), jnp.std(batch_means) / np.sqrt(batch_means.size))
