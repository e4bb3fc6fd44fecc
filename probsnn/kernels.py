"""Temporal bases for synaptic, feedback and stimulus kernels, and causal filtering.

A basis is a ``(K, L)`` array: K functions over the lags δ = 1..L (column 0 is lag 1, the previous
bin). A kernel is a weighted sum of basis rows, ``kernel = weights @ basis``. Filtering a spike
train with a basis gives its traces

    x_{k,t} = Σ_{δ=1..L} φ_{k,δ} s_{t-δ}        (strictly causal: s_t never enters x_t),

computed for all t at once as a causal convolution, or, for a :class:`RecursiveBasis`, as a
linear recurrence over time (docs/theory.md §1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks

#: Above this many lags ``filter_spikes(method="auto")`` uses the FFT (see benchmarks/filtering.py).
FFT_MIN_LAGS = 48

#: Filtering methods of :func:`filter_spikes` (and of every function that filters spikes).
FILTER_METHODS = ("auto", "direct", "fft", "recursive")


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
    if isinstance(basis, RecursiveBasis):
        pass
    elif _checks.is_concrete(basis):
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
    return jnp.matmul(jnp.asarray(weights, dtype), basis.astype(dtype), precision="highest")


def filter_spikes(spikes, basis, method: str = "auto"):
    """Causal traces x_{…,t,n,k} = Σ_{δ=1..L} φ_{k,δ} s_{…,t−δ,n} of every train, all t at once.

    Spikes before t = 0 are taken as zero.

    Args:
        spikes: ``(..., T, N)`` spikes (bool, integer or float) or any real signal.
        basis: ``(K, L)``, or a :class:`RecursiveBasis`.
        method: ``"direct"`` (a convolution, exact), ``"fft"`` (O(T log T), float round-off of
            order 1e-7 relative in float32), ``"recursive"`` (a :class:`RecursiveBasis` only: its
            mode recursions run as a parallel prefix scan over time, O(T·J) per train, the
            infinite kernel rather than its first L lags) or ``"auto"`` (recursive for a
            :class:`RecursiveBasis`, else FFT when L > ``FFT_MIN_LAGS``).

    Returns:
        ``(..., T, N, K)`` traces in float32 (float64 when the input is float64).

    Raises:
        ValueError: an unknown method, ``"recursive"`` with an array basis; spikes with fewer
            than 2 dimensions, an empty axis (no
            bins, trains or trials) or non-finite values; a basis that is not a finite (K, L)
            array; an output too large to allocate.
        TypeError: complex or non-numeric spikes or basis.
    """
    method = _checks.option(method, "method", FILTER_METHODS)
    spikes = _checks.real_array(spikes, "spikes", min_ndim=0)
    if spikes.ndim < 2:
        raise ValueError(f"spikes must have shape (..., T, N), got shape {tuple(spikes.shape)}")
    _checks.nonempty(spikes, "spikes")
    if isinstance(basis, RecursiveBasis):
        pass
    elif _checks.is_concrete(basis):
        basis = _checks.basis_matrix(basis, "basis")
    elif np.ndim(basis) != 2:
        raise ValueError(f"basis must be a (K, L) array, got shape {np.shape(basis)}")
    _checks.allocation(
        math.prod(spikes.shape) * np.shape(basis)[0], "the traces (..., T, N, K) of spikes"
    )
    return _filter_spikes(spikes, basis, method)


def _filter_spikes(spikes, basis, method: str):
    """:func:`filter_spikes` without the argument checks (for callers that validated them)."""
    recursive = isinstance(basis, RecursiveBasis)
    if method == "recursive" and not recursive:
        raise ValueError(
            "method='recursive' needs a RecursiveBasis (recursive_exponential, recursive_alpha, "
            "difference_of_exponentials or fit_exponentials(...).basis), got an array basis"
        )
    float64 = spikes.dtype == jnp.float64 and jax.config.jax_enable_x64
    dtype = jnp.float64 if float64 else jnp.float32
    phi = jnp.asarray(basis, dtype=dtype)
    if method == "auto":
        method = "recursive" if recursive else "fft" if phi.shape[1] > FFT_MIN_LAGS else "direct"
    signal = jnp.asarray(spikes, dtype=dtype)
    *batch, n_steps, n_trains = signal.shape
    # (B, T) rows, one per train.
    rows = jnp.moveaxis(signal, -1, -2).reshape(-1, n_steps)
    if method == "recursive":
        traces = _filter_recursive(rows, basis)
    elif method == "fft":
        traces = _filter_fft(rows, phi)
    else:
        traces = _filter_direct(rows, phi)
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


def _filter_recursive(rows, basis):
    """Traces ``(B, K, T)`` of ``rows`` ``(B, T)`` through the modes of a :class:`RecursiveBasis`:
    e_t = r (e_{t−1} + s_{t−1}) and f_t = r f_{t−1} + e_t, each a first-order linear recurrence
    solved by a parallel prefix scan (Blelloch 1990)."""
    dtype = rows.dtype
    decays = jnp.asarray(basis.decays, dtype)[None, :, None]  # (1, J, 1)
    previous = jnp.pad(rows, ((0, 0), (1, 0)))[:, None, :-1]  # s_{t−1}, (B, 1, T)
    modes = _linear_recurrence(decays, decays * previous)  # e: (B, J, T)
    order_one = np.flatnonzero(basis.orders == 1)
    if order_one.size:
        f = _linear_recurrence(decays[:, order_one], modes[:, order_one])
        modes = modes.at[:, order_one].set(f)
    return jnp.einsum("kj,bjt->bkt", jnp.asarray(basis.mixing, dtype), modes, precision="highest")


def _linear_recurrence(decays, drive):
    """h_t = r h_{t−1} + b_t with h_{−1} = 0 along the last axis, as an associative scan of the
    affine maps h ↦ r h + b."""

    def compose(first, second):
        (r1, b1), (r2, b2) = first, second
        return r1 * r2, r2 * b1 + b2

    factors = jnp.broadcast_to(decays, drive.shape)
    return jax.lax.associative_scan(compose, (factors, drive), axis=-1)[1]


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


# --------------------------------------------------------------------------------------------
# Recursive (state-space) bases
# --------------------------------------------------------------------------------------------
#: A recursive basis's matrix drops the tail beyond L once Σ_{δ>L} |φ_k(δ)| (the most a trace
#: can change, with a spike in every bin) is below this fraction of max_δ |φ_k(δ)|.
TAIL_TOLERANCE = 1e-8


@jax.tree_util.register_static
class RecursiveBasis:
    """A basis whose functions are sums of decaying modes, so traces obey a recursion.

    Row k is φ_k(δ) = Σ_j B_{k,j} δ^{p_j} r_j^δ for δ = 1, 2, … (infinite support), with decay
    factors r_j = exp(−Δ/τ_j) in (0, 1) and orders p_j ∈ {0, 1}. Filtering a train I_t with
    mode j needs one state per order (Oppenheim & Schafer 2010, ch. 6):

        e_{t+1} = r_j (e_t + I_t)               e_t = Σ_{δ>=1} r_j^δ I_{t−δ}
        f_{t+1} = r_j (f_t + e_t + I_t)         f_t = Σ_{δ>=1} δ r_j^δ I_{t−δ}   (p_j = 1)

    so a sampler step costs O(J) per train instead of O(L) (exponentials: p = 0; alpha
    functions: p = 1; differences of exponentials: two p = 0 modes).

    Everywhere an array basis is accepted the object stands for :attr:`matrix`, its first L
    lags (``numpy.asarray(basis)`` gives it), where L is the shortest window whose dropped tail
    Σ_{δ>L} |φ_k(δ)| is at most ``tolerance`` × max_δ |φ_k(δ)| for every k: the traces of the
    convolution paths then differ from the recursion by less than float32 round-off.

    Args:
        decays: r ``(J,)``, each in (0, 1).
        mixing: B ``(K, J)``, finite, every row non-zero.
        orders: p ``(J,)`` of 0 and 1; default all 0.
        tolerance: the tail tolerance, in (0, 0.1].

    Raises:
        ValueError: decays outside (0, 1), a mixing of another shape, non-finite or with a zero
            row, orders other than 0/1, a tolerance out of range, a matrix too long to allocate.
        TypeError: complex or non-numeric arrays.
    """

    def __init__(self, decays, mixing, orders=None, tolerance: float = TAIL_TOLERANCE):
        decays = np.atleast_1d(_checks.basis_matrix(np.atleast_2d(decays), "decays")[0])
        if np.any(decays <= 0) or np.any(decays >= 1):
            raise ValueError(f"decays must lie in (0, 1), got {decays}")
        mixing = _checks.basis_matrix(mixing, "mixing")
        if mixing.shape[1] != decays.size:
            raise ValueError(
                f"mixing must have shape (K, {decays.size}) for {decays.size} decays, "
                f"got {mixing.shape}"
            )
        if np.any(np.all(mixing == 0, axis=1)):
            raise ValueError("mixing has an all-zero row: every basis function needs a mode")
        orders = np.zeros(decays.size, int) if orders is None else np.asarray(orders)
        if orders.shape != decays.shape or not np.all(np.isin(orders, (0, 1))):
            raise ValueError(f"orders must be {decays.size} values of 0 or 1, got {orders!r}")
        tolerance = _checks.positive_float(tolerance, "tolerance")
        if tolerance > 0.1:
            raise ValueError(f"tolerance must be at most 0.1, got {tolerance}")
        self.decays = _read_only(decays)
        self.mixing = _read_only(mixing)
        self.orders = _read_only(orders.astype(np.int64))
        self.tolerance = tolerance
        self.matrix = _read_only(self._response(self._length()))

    @property
    def n_basis(self) -> int:
        """K, the number of basis functions."""
        return self.mixing.shape[0]

    @property
    def n_modes(self) -> int:
        """J, the number of modes."""
        return self.decays.size

    @property
    def shape(self) -> tuple[int, int]:
        """``(K, L)`` of :attr:`matrix`."""
        return self.matrix.shape

    def response(self, n_lags: int) -> np.ndarray:
        """φ over lags 1..``n_lags`` (beyond L too), ``(K, n_lags)`` float64."""
        n_lags = _checks.positive_int(n_lags, "n_lags")
        _checks.allocation(self.n_basis * n_lags, "the (K, n_lags) response")
        return self._response(n_lags)

    def _response(self, n_lags: int) -> np.ndarray:
        lags = np.arange(1, n_lags + 1, dtype=np.float64)[None, :]
        modes = lags ** self.orders[:, None] * self.decays[:, None] ** lags  # (J, n_lags)
        return self.mixing @ modes

    def _length(self) -> int:
        """The shortest L whose dropped tail is within tolerance, by doubling then bisection."""
        peak = np.max(np.abs(self._response(_peak_horizon(self.decays, self.orders))), axis=1)

        def within(n_lags):
            return np.all(self._tail_bound(n_lags) <= self.tolerance * peak)

        high = 1
        while not within(high):
            high *= 2
            _checks.allocation(self.n_basis * high, "the recursive basis's (K, L) matrix")
        low = high // 2
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if within(middle) else (middle, high)
        return high

    def _tail_bound(self, n_lags: int) -> np.ndarray:
        """An upper bound on Σ_{δ>L} |φ_k(δ)| per k: Σ_j |B_kj| Σ_{δ>L} δ^p r^δ (closed forms)."""
        r, lag = self.decays, n_lags + 1
        geometric = r**lag / (1 - r)
        weighted = r**lag * (lag * (1 - r) + r) / (1 - r) ** 2
        return np.abs(self.mixing) @ np.where(self.orders == 1, weighted, geometric)

    def __array__(self, dtype=None, copy=None):
        return np.array(self.matrix, dtype=dtype)

    def _key(self):
        arrays = (self.decays, self.mixing, self.orders)
        return (self.tolerance, *(_array_bytes(a) for a in arrays))

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, RecursiveBasis) and self._key() == other._key()

    def __repr__(self):
        kinds = ", ".join(
            f"{'δ·' if p else ''}{r:.4g}^δ" for r, p in zip(self.decays, self.orders, strict=True)
        )
        return f"RecursiveBasis(K={self.n_basis}, modes=[{kinds}], L={self.shape[1]})"


def recursive_exponential(time_constants, dt: float, tolerance: float = TAIL_TOLERANCE):
    """Exponential basis φ_k(δ) = exp(−δΔ/τ_k), δ = 1, 2, …, in recursive form.

    The traces are x_{t+1} = r_k (x_t + s_t) with r_k = exp(−Δ/τ_k): a spike adds one and
    decays once before it first counts (the kernel of :func:`exponential` without its cut).

    Args:
        time_constants: τ_k in seconds, ``(K,)`` or a scalar, each > 0. dt: bin width Δ > 0.
        tolerance: see :class:`RecursiveBasis`.

    Returns:
        :class:`RecursiveBasis` with K modes, B = identity.

    Raises:
        ValueError: non-positive or non-finite time constants or dt.
    """
    decays = _decays(time_constants, dt)
    return RecursiveBasis(decays, np.eye(decays.size), tolerance=tolerance)


def recursive_alpha(time_constants, dt: float, tolerance: float = TAIL_TOLERANCE):
    """Alpha-function basis φ_k(δ) = (δΔ/τ_k) exp(1 − δΔ/τ_k) (peak 1 at δΔ = τ_k), recursive.

    One order-1 mode per function: φ_k(δ) = (eΔ/τ_k) δ r_k^δ with r_k = exp(−Δ/τ_k); the same
    kernels as :func:`alpha` on infinite support. Args, returns and raises as
    :func:`recursive_exponential`.
    """
    decays = _decays(time_constants, dt)
    taus = -dt / np.log(decays)
    return RecursiveBasis(
        decays, np.diag(math.e * dt / taus), np.ones(decays.size, int), tolerance=tolerance
    )


def difference_of_exponentials(
    rise_time_constants, decay_time_constants, dt: float, tolerance: float = TAIL_TOLERANCE
):
    """Double-exponential basis φ_k(δ) ∝ exp(−δΔ/τ_{d,k}) − exp(−δΔ/τ_{r,k}), peak 1, recursive.

    The synaptic current of a conductance with rise time τ_r and decay time τ_d > τ_r (e.g.
    Dayan & Abbott 2001, §5.8), normalised so the continuous-time peak, at
    t* = τ_d τ_r log(τ_d/τ_r)/(τ_d − τ_r), is 1. Two modes per function.

    Args:
        rise_time_constants, decay_time_constants: τ_r and τ_d in seconds, ``(K,)`` or
            scalars of equal size, 0 < τ_r < τ_d. dt: Δ > 0. tolerance: see
            :class:`RecursiveBasis`.

    Raises:
        ValueError: sizes that differ, τ_r >= τ_d, non-positive or non-finite values.
    """
    rise = _time_constants(rise_time_constants)
    decay = _time_constants(decay_time_constants)
    if rise.shape != decay.shape:
        raise ValueError(
            f"rise_time_constants and decay_time_constants must have the same size, got "
            f"{rise.size} and {decay.size}"
        )
    if np.any(rise >= decay):
        raise ValueError(
            f"rise_time_constants must be smaller than decay_time_constants, got {rise} and {decay}"
        )
    dt = _checks.positive_float(dt, "dt")
    peak_time = decay * rise * np.log(decay / rise) / (decay - rise)
    scale = 1.0 / (np.exp(-peak_time / decay) - np.exp(-peak_time / rise))
    n = rise.size
    mixing = np.zeros((n, 2 * n))
    mixing[np.arange(n), 2 * np.arange(n)] = scale
    mixing[np.arange(n), 2 * np.arange(n) + 1] = -scale
    decays = np.stack([np.exp(-dt / decay), np.exp(-dt / rise)], axis=1).ravel()
    return RecursiveBasis(decays, mixing, tolerance=tolerance)


def _decays(time_constants, dt) -> np.ndarray:
    taus = _time_constants(time_constants)
    dt = _checks.positive_float(dt, "dt")
    decays = np.exp(-dt / taus)
    if np.any(decays <= 0) or np.any(decays >= 1):
        raise ValueError(
            f"time_constants {taus} with dt={dt} give decay factors exp(-dt/tau) that round to "
            "0 or 1; use time constants within a few orders of magnitude of dt"
        )
    return decays


def _peak_horizon(decays, orders) -> int:
    """Lags over which a basis function's peak is sought: five time constants of the slowest
    mode (an order-1 mode peaks at one; mixtures such as differences of exponentials before
    their slow time constant)."""
    return int(np.ceil(5 * (1 + np.max(orders)) / -np.log(np.max(decays)))) + 2


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.setflags(write=False)
    return array


def _array_bytes(array: np.ndarray):
    return (array.shape, array.dtype.str, array.tobytes())


class ExponentialFit(NamedTuple):
    """A sum-of-exponentials approximation of a basis (:func:`fit_exponentials`).

    Attributes:
        basis: the :class:`RecursiveBasis` φ̂.
        l1_error: ``(K,)`` Σ_{δ>=1} |φ_k(δ) − φ̂_k(δ)| (over φ̂'s support; φ is 0 beyond its L),
            plus φ̂'s dropped tail bound. For 0/1 spikes a trace moves by at most this, so a
            potential moves by at most Σ_{j,k} |w_{j,i,k}| l1_error_k (+ Σ_k |v_{i,k}| l1_k
            for feedback on this basis), and, log σ being 1-Lipschitz, the log-likelihood of T
            bins by at most the sum of that over neurons and bins.
        max_error: ``(K,)`` max_δ |φ_k(δ) − φ̂_k(δ)|.
    """

    basis: RecursiveBasis
    l1_error: np.ndarray
    max_error: np.ndarray


def fit_exponentials(basis, dt: float, time_constants=None, n_modes: int = 8) -> ExponentialFit:
    """Approximate any basis by sums of exponentials, for the recursive sampler's fast path.

    Least squares over the lags δ = 1..L' (L' past both φ's support and the slowest mode's
    tail, so φ̂ is also fitted to zero where φ has ended) of φ_k(δ) ≈ Σ_j B_{k,j} r_j^δ with
    fixed r_j = exp(−Δ/τ_j) (the linear step of Prony-type fits; de Prony 1795, Hildebrand
    1956 §9.4). More, and better spread, time constants give smaller errors; the fit reports
    them (:class:`ExponentialFit`).

    Args:
        basis: ``(K, L)`` real basis (e.g. :func:`raised_cosine`).
        dt: Δ in seconds, > 0.
        time_constants: τ_j in seconds ``(J,)``; default ``n_modes`` log-spaced from Δ/2 to
            L·Δ/2.
        n_modes: J when ``time_constants`` is None, >= 1.

    Returns:
        :class:`ExponentialFit`.

    Raises:
        ValueError: a basis that is not a finite (K, L) array, non-positive dt, time
            constants, or n_modes.
        TypeError: complex or non-numeric arguments.
    """
    phi = _checks.basis_matrix(basis, "basis")
    dt = _checks.positive_float(dt, "dt")
    if time_constants is None:
        n_modes = _checks.positive_int(n_modes, "n_modes")
        time_constants = dt * np.geomspace(0.5, max(phi.shape[1] / 2, 1.0), n_modes)
    decays = _decays(time_constants, dt)
    slowest = RecursiveBasis(decays[[np.argmax(decays)]], np.ones((1, 1)))
    n_lags = max(phi.shape[1], slowest.shape[1])
    target = np.pad(phi, ((0, 0), (0, n_lags - phi.shape[1])))
    lags = np.arange(1, n_lags + 1, dtype=np.float64)
    modes = decays[:, None] ** lags[None, :]  # (J, L')
    mixing = np.linalg.lstsq(modes.T, target.T, rcond=None)[0].T  # (K, J)
    fitted = RecursiveBasis(decays, mixing)
    response = fitted.response(max(n_lags, fitted.shape[1]))
    target = np.pad(target, ((0, 0), (0, response.shape[1] - n_lags)))
    difference = np.abs(target - response)
    l1 = difference.sum(axis=1) + fitted._tail_bound(response.shape[1])
    return ExponentialFit(basis=fitted, l1_error=l1, max_error=difference.max(axis=1))
