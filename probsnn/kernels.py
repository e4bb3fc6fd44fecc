"""Temporal bases for synaptic, feedback and stimulus kernels, and causal filtering.

A basis is a ``(K, L)`` array: K functions over the lags δ = 1..L (column 0 is lag 1, the previous
bin). A kernel is a weighted sum of basis rows, ``kernel = weights @ basis``. Filtering a spike
train with a basis gives its traces

    x_{k,t} = Σ_{δ=1..L} φ_{k,δ} s_{t-δ}        (strictly causal: s_t never enters x_t),

computed for all t at once as a causal convolution (docs/theory.md §1).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks

#: Above this many lags ``filter_spikes(method="auto")`` uses the FFT (see benchmarks/filtering.py).
FFT_MIN_LAGS = 48


def raised_cosine(
    n_basis: int,
    first_peak: float,
    last_peak: float,
    length: int | None = None,
    offset: float = 1.0,
    orthonormal: bool = False,
) -> np.ndarray:
    """Log-stretched raised-cosine basis of Pillow et al. (2008, Nature 454:995).

    With y(δ) = log(δ + c) and centres ψ_1 < … < ψ_K evenly spaced by Δψ between
    log(first_peak + c) and log(last_peak + c),

        φ_k(δ) = ½ cos(clip((y(δ) − ψ_k) π / (2Δψ), −π, π)) + ½,     δ = 1..L.

    Bump k peaks at lag exp(ψ_k) − c, so the first and last bumps peak at ``first_peak`` and
    ``last_peak`` (in bins). A larger offset c makes the spacing more linear.

    Args:
        n_basis: K >= 1. With K = 1 the single bump peaks at ``first_peak`` and Δψ is taken as
            log(last_peak + c) − log(first_peak + c).
        first_peak, last_peak: peak lags in bins, 0 <= first_peak < last_peak.
        length: L, the number of lags. Default: the shortest window that holds the last bump
            whole (it returns to zero at exp(ψ_K + 2Δψ) − c).
        offset: c > 0.
        orthonormal: return an orthonormal basis of the same span (rows orthonormal), better
            conditioned for fitting.

    Returns:
        ``(K, L)`` float64 array.

    Raises:
        ValueError: on non-positive ``offset``, a negative or non-finite peak (naming it), peaks
            out of order, a ``length`` that cuts the last bump, or a basis too large to allocate.
        TypeError: a size that is not an integer, or a peak that is not a real number.
    """
    n_basis = _checks.positive_int(n_basis, "n_basis")
    offset = _checks.positive_float(offset, "offset")
    first_peak = _checks.nonnegative_float(first_peak, "first_peak")
    last_peak = _checks.finite_float(last_peak, "last_peak")
    if not last_peak > first_peak:
        raise ValueError(f"last_peak must be greater than first_peak={first_peak}, got {last_peak}")
    log_first, log_last = math.log(first_peak + offset), math.log(last_peak + offset)
    if n_basis == 1:
        centres = np.array([log_first])
        spacing = log_last - log_first
    else:
        centres = np.linspace(log_first, log_last, n_basis)
        spacing = centres[1] - centres[0]
    # (the exponent is capped so that absurd peaks reach the size guard, not an OverflowError)
    support_end = math.exp(min(centres[-1] + 2 * spacing, 700.0)) - offset
    needed = math.ceil(support_end - 1e-9)
    if length is None:
        _checks.allocation(n_basis * needed, f"raised_cosine(last_peak={last_peak}): its basis")
        length = needed
    length = _checks.positive_int(length, "length")
    _checks.allocation(n_basis * length, "the (n_basis, length) basis")
    if length < needed:
        raise ValueError(
            f"length={length} cuts the last raised-cosine bump, which ends at lag "
            f"{support_end:.2f}; use length >= {needed}"
        )
    lags = np.arange(1, length + 1, dtype=np.float64)
    phase = (np.log(lags + offset)[None, :] - centres[:, None]) * np.pi / (2 * spacing)
    basis = 0.5 * np.cos(np.clip(phase, -np.pi, np.pi)) + 0.5
    return orthonormalize(basis) if orthonormal else basis


def exponential(time_constants, length: int, dt: float) -> np.ndarray:
    """Exponential decay basis φ_k(δ) = exp(−δΔ/τ_k), δ = 1..L.

    Args:
        time_constants: τ_k in seconds, shape ``(K,)`` or a scalar; each > 0.
        length: L lags. dt: bin width Δ in seconds, > 0.

    Returns:
        ``(K, L)`` float64 array.
    """
    taus = _time_constants(time_constants)
    length = _checks.positive_int(length, "length")
    _checks.allocation(taus.size * length, "the (K, length) basis")
    dt = _checks.positive_float(dt, "dt")
    lags = np.arange(1, length + 1) * dt
    return np.exp(-lags[None, :] / taus[:, None])


def alpha(time_constants, length: int, dt: float) -> np.ndarray:
    """Alpha-function basis φ_k(δ) = (δΔ/τ_k) exp(1 − δΔ/τ_k), peaking at 1 when δΔ = τ_k.

    Args and returns as :func:`exponential`.
    """
    taus = _time_constants(time_constants)
    length = _checks.positive_int(length, "length")
    _checks.allocation(taus.size * length, "the (K, length) basis")
    dt = _checks.positive_float(dt, "dt")
    scaled = (np.arange(1, length + 1) * dt)[None, :] / taus[:, None]
    return scaled * np.exp(1.0 - scaled)


def raw_lags(length: int) -> np.ndarray:
    """Identity basis: one weight per lag, φ_k(δ) = 1[δ = k]. Returns ``(L, L)``."""
    length = _checks.positive_int(length, "length")
    _checks.allocation(length * length, "the (length, length) identity basis")
    return np.eye(length)


def boxcar(edges) -> np.ndarray:
    """Boxcar basis over lag windows: φ_k(δ) = 1[e_k <= δ < e_{k+1}].

    Args:
        edges: strictly increasing integer lags ``(K + 1,)`` with edges[0] >= 1.

    Returns:
        ``(K, edges[-1] − 1)`` float64 array.
    """
    edges = np.asarray(edges)
    if edges.ndim != 1 or edges.size < 2 or not np.issubdtype(edges.dtype, np.integer):
        raise ValueError(f"edges must be a 1-D integer array of >= 2 lags, got {edges!r}")
    if edges[0] < 1 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be strictly increasing and start at >= 1, got {edges}")
    _checks.allocation((edges.size - 1) * int(edges[-1]), "the boxcar basis (K, edges[-1] - 1)")
    lags = np.arange(1, edges[-1])
    return ((lags[None, :] >= edges[:-1, None]) & (lags[None, :] < edges[1:, None])).astype(float)


def orthonormalize(basis) -> np.ndarray:
    """Orthonormal rows spanning the same space as ``basis`` (K, L) (QR of its transpose).

    Raises:
        ValueError: if the rows are linearly dependent (rank < K).
    """
    basis = _checks.basis_matrix(basis, "basis")
    q, r = np.linalg.qr(basis.T)
    diag = np.abs(np.diag(r))
    if diag.min() <= 1e-10 * diag.max():
        raise ValueError("basis rows are linearly dependent; cannot orthonormalise")
    return (q * np.sign(np.diag(r))[None, :]).T


def combine(weights, basis):
    """Kernels from basis weights: kernel_δ = Σ_k weights_k φ_{k,δ}.

    Args:
        weights: ``(..., K)`` real weights (an array or nested lists). basis: ``(K, L)``.

    Returns:
        ``(..., L)`` kernels over lags 1..L, in the floating type of ``weights`` (float32 for
        integer or bool weights: the basis is never cast to an integer type).

    Raises:
        TypeError: complex or non-numeric weights or basis.
        ValueError: non-finite weights or basis, a basis that is not (K, L), or weights whose last
            axis is not K.
    """
    weights = _checks.real_array(weights, "weights", min_ndim=1)
    if _checks.is_concrete(basis):
        basis = _checks.basis_matrix(basis, "basis")
    basis = jnp.asarray(basis)
    if basis.ndim != 2:
        raise ValueError(f"basis must be a (K, L) array, got shape {tuple(basis.shape)}")
    if weights.shape[-1] != basis.shape[0]:
        raise ValueError(
            f"weights must end with the basis size K={basis.shape[0]}, "
            f"got shape {tuple(weights.shape)}"
        )
    dtype = jnp.result_type(weights)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.float32
    return jnp.asarray(weights, dtype) @ basis.astype(dtype)


def filter_spikes(spikes, basis, method: str = "auto"):
    """Causal traces x_{…,t,n,k} = Σ_{δ=1..L} φ_{k,δ} s_{…,t−δ,n} of every train, all t at once.

    Spikes before t = 0 are taken as zero.

    Args:
        spikes: ``(..., T, N)`` spikes (bool, integer or float) or any real signal.
        basis: ``(K, L)``.
        method: ``"direct"`` (a convolution, exact), ``"fft"`` (O(T log T), float round-off of
            order 1e-7 relative in float32) or ``"auto"`` (FFT when L > ``FFT_MIN_LAGS``).

    Returns:
        ``(..., T, N, K)`` traces in float32 (float64 when the input is float64).

    Raises:
        ValueError: an unknown method; spikes with fewer than 2 dimensions, an empty axis (no
            bins, trains or trials) or non-finite values; a basis that is not a finite (K, L)
            array; an output too large to allocate.
        TypeError: complex or non-numeric spikes or basis.
    """
    method = _checks.option(method, "method", ("auto", "direct", "fft"))
    spikes = _checks.real_array(spikes, "spikes", min_ndim=0)
    if spikes.ndim < 2:
        raise ValueError(f"spikes must have shape (..., T, N), got shape {tuple(spikes.shape)}")
    _checks.nonempty(spikes, "spikes")
    if _checks.is_concrete(basis):
        basis = _checks.basis_matrix(basis, "basis")
    elif np.ndim(basis) != 2:
        raise ValueError(f"basis must be a (K, L) array, got shape {np.shape(basis)}")
    _checks.allocation(
        math.prod(spikes.shape) * np.shape(basis)[0], "the traces (..., T, N, K) of spikes"
    )
    return _filter_spikes(spikes, basis, method)


def _filter_spikes(spikes, basis, method: str):
    """:func:`filter_spikes` without the argument checks (for callers that validated them)."""
    float64 = spikes.dtype == jnp.float64 and jax.config.jax_enable_x64
    dtype = jnp.float64 if float64 else jnp.float32
    phi = jnp.asarray(basis, dtype=dtype)
    if method == "auto":
        method = "fft" if phi.shape[1] > FFT_MIN_LAGS else "direct"
    signal = jnp.asarray(spikes, dtype=dtype)
    *batch, n_steps, n_trains = signal.shape
    # (B, T) rows, one per train.
    rows = jnp.moveaxis(signal, -1, -2).reshape(-1, n_steps)
    traces = _filter_fft(rows, phi) if method == "fft" else _filter_direct(rows, phi)
    # traces: (B, K, T) -> (..., T, N, K)
    traces = traces.reshape(*batch, n_trains, phi.shape[0], n_steps)
    return jnp.moveaxis(traces, -1, -3)


def _filter_direct(rows, phi):
    n_lags = phi.shape[1]
    padded = jnp.pad(rows, ((0, 0), (n_lags, 0)))[:, None, :]  # (B, 1, T + L)
    kernel = phi[:, None, ::-1]  # (K, 1, L), reversed for cross-correlation
    out = jax.lax.conv_general_dilated(
        padded, kernel, window_strides=(1,), padding="VALID", precision="highest"
    )
    return out[:, :, : rows.shape[1]]


def _filter_fft(rows, phi):
    n_steps, n_lags = rows.shape[1], phi.shape[1]
    size = fft_length(n_steps + n_lags)
    # Put lag δ at index δ so the linear convolution is strictly causal.
    kernel = jnp.pad(phi, ((0, 0), (1, 0)))
    spectrum = jnp.fft.rfft(rows, n=size)[:, None, :] * jnp.fft.rfft(kernel, n=size)[None]
    return jnp.fft.irfft(spectrum, n=size)[:, :, :n_steps]


def fft_length(n: int) -> int:
    """The smallest 5-smooth number (2^a 3^b 5^c) >= n: a fast FFT length."""
    size = max(n, 1)
    while True:
        rest = size
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return size
        size += 1


def _time_constants(time_constants) -> np.ndarray:
    taus = np.atleast_1d(np.asarray(time_constants, dtype=np.float64))
    if taus.ndim != 1 or taus.size == 0:
        raise ValueError(f"time_constants must be a scalar or 1-D array, got {time_constants!r}")
    if not np.all(np.isfinite(taus)) or np.any(taus <= 0):
        raise ValueError(f"time_constants must be finite and > 0, got {taus}")
    return taus
