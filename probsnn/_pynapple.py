"""Conversions between probsnn arrays and pynapple objects (``pip install probsnn[pynapple]``).

pynapple (Viejo et al. 2023) holds spike times as a ``TsGroup`` (one ``Ts`` per unit), epochs
such as trials as an ``IntervalSet`` and sampled signals as ``Tsd``/``TsdFrame``. Binning is
pynapple's own (``TsGroup.count`` and ``Tsd.bin_average``): in every interval bin k spans
[start + kΔ, start + (k + 1)Δ), and a time series is averaged over the samples in each bin.
Going back, a spike in bin k is placed at the bin's centre start + (k + ½)Δ, so binning it again
with the same Δ and intervals returns the same array.

All times are in seconds. pynapple is imported inside the functions, so ``probsnn.data`` loads
without it; the functions are re-exported there.

Reference: Viejo, Levenstein, Skromne Carrasco, Mehrotra, Mahallati, Vite, Denny, Sjulson,
Battaglia & Peyrache (2023), Pynapple, a toolbox for data analysis in neuroscience. eLife 12.
"""

from __future__ import annotations

import warnings

import numpy as np

from probsnn import _checks

#: policies for a bin that holds more than one spike
PYNAPPLE_POLICIES = ("error", "clip")

#: a final bin counts as whole when the interval covers it to within this many seconds: pynapple
#: removes one microsecond from an interval whose end touches the next interval's start
_SLACK = 1.5e-6


def _pynapple():
    try:
        import pynapple
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "the pynapple conversions need the optional package 'pynapple'; install it with "
            "`pip install probsnn[pynapple]` (or `pip install pynapple`)"
        ) from err
    return pynapple


def from_pynapple(tsgroup, bin_size, ep=None, inputs=None, *, policy: str = "error"):
    """Bin a pynapple ``TsGroup`` into spikes ``(T, N)``, or ``(trials, T, N)`` for several
    intervals, with a stimulus ``Tsd``/``TsdFrame`` averaged in the same bins.

    Each interval of ``ep`` is one trial. Bin k of a trial spans [start + kΔ, start + (k + 1)Δ)
    and holds ``TsGroup.count(Δ, ep)``, pynapple's own count; T is the number of whole bins in
    the interval: a last bin that sticks out of it (the interval is not a whole number of bins)
    is dropped, so every bin spans Δ. Trials must hold the same number of bins: intervals of
    unequal lengths are refused, not cut to the shortest (which would drop data silently) —
    build equal windows, e.g. ``nap.IntervalSet(onsets, onsets + duration)``, or convert the
    intervals one at a time. Neuron n is the n-th unit of ``tsgroup.index``. A final bin that
    an interval covers to within 1.5 µs still counts: pynapple removes a microsecond from an
    interval that touches the next one (``IntervalSet.split`` makes such trials).

    pynapple compares times with the bin edges exactly, without the tolerance of
    :func:`bin_spike_times`: a time computed as 25000 × 1e-6 lies a hair below 0.025 and falls
    in the bin before that edge. Round times to their resolution first (``np.round(t, 6)`` for
    whole microseconds) when they sit on bin edges.

    Inputs are aligned to the same bins: x_{t,m} is the mean of input m's samples in bin t
    (``Tsd.bin_average``), so the stimulus must be sampled at least once per bin.

    Args:
        tsgroup: a ``pynapple.TsGroup`` of N units (spike times in seconds).
        bin_size: bin width Δ in seconds, > 0.
        ep: a ``pynapple.IntervalSet`` of trials inside ``tsgroup.time_support``; default
            ``tsgroup.time_support``. One interval gives ``(T, N)``, several ``(trials, T, N)``.
        inputs: optional stimulus, a ``pynapple.Tsd`` (M = 1) or ``TsdFrame`` (M columns) whose
            time support covers ``ep``.
        policy: a bin with more than one spike of a unit is refused (``"error"``, the default:
            the model emits at most one spike per bin) or counted as one spike (``"clip"``).

    Returns:
        spikes: uint8 ``(T, N)`` or ``(trials, T, N)`` of 0/1; with ``inputs`` the pair
        ``(spikes, inputs)``, inputs float32 ``(T, M)`` or ``(trials, T, M)``.

    Raises:
        ImportError: pynapple is missing.
        TypeError: ``tsgroup`` not a TsGroup, ``ep`` not an IntervalSet, ``inputs`` not a
            Tsd/TsdFrame, ``bin_size`` not a number.
        ValueError: ``bin_size`` <= 0; an empty ``ep``, an interval shorter than one bin,
            intervals with different numbers of bins, or intervals outside the time support of
            ``tsgroup`` or ``inputs``; (``"error"``) more than one spike in a bin, naming the
            unit, the time, ``bin_size`` and the largest count; inputs without samples (or NaN)
            in a bin; an unknown ``policy``.

    Reference: Viejo et al. (2023), pynapple (``TsGroup.count``, ``Tsd.bin_average``).
    """
    nap = _pynapple()
    if not isinstance(tsgroup, nap.TsGroup):
        hint = " (wrap one train as nap.TsGroup({0: ts}))" if isinstance(tsgroup, nap.Ts) else ""
        raise TypeError(f"tsgroup must be a pynapple TsGroup, got {type(tsgroup).__name__}{hint}")
    bin_size = _checks.positive_float(bin_size, "bin_size")
    policy = _checks.option(policy, "policy", PYNAPPLE_POLICIES)
    if ep is None:
        ep = tsgroup.time_support
    elif not isinstance(ep, nap.IntervalSet):
        raise TypeError(f"ep must be a pynapple IntervalSet, got {type(ep).__name__}")
    if inputs is not None and not isinstance(inputs, nap.Tsd | nap.TsdFrame):
        raise TypeError(
            "inputs must be a pynapple Tsd (one input) or TsdFrame (one column per input), "
            f"got {type(inputs).__name__}"
        )
    starts = np.asarray(ep.start, dtype=np.float64)
    ends = np.asarray(ep.end, dtype=np.float64)
    if starts.size == 0:
        raise ValueError("ep must hold at least one interval, got an empty IntervalSet")
    _within(starts, ends, tsgroup.time_support, "tsgroup.time_support")
    n_steps = _whole_bins(starts, ends, bin_size)
    n_units = len(tsgroup)
    _checks.allocation(starts.size * n_steps * n_units, "the binned spikes")

    counts = tsgroup.count(bin_size, ep)
    counts = _per_interval(counts.t, counts.values, starts, n_steps)  # (trials, T, N)
    if policy == "error" and counts.size and counts.max() > 1:
        _too_many(tsgroup, counts, starts, bin_size)
    spikes = (counts > 0).astype(np.uint8)
    if starts.size == 1:
        spikes = spikes[0]
    if inputs is None:
        return spikes
    return spikes, _binned_inputs(inputs, ep, starts, ends, n_steps, bin_size)


def to_pynapple(spikes, bin_size, start=0.0, *, index=None):
    """A pynapple ``TsGroup`` from binned spikes ``(T, N)`` or ``(trials, T, N)``.

    A spike of trial r in bin k becomes the time start_r + (k + ½)Δ (the bin's centre), so
    ``from_pynapple(to_pynapple(s, Δ), Δ)`` returns ``s``. Trial r occupies the interval
    [start_r, start_r + TΔ], and these intervals form the group's time support (so ``ep=None``
    recovers the trials).

    Args:
        spikes: ``(T, N)`` or ``(trials, T, N)`` 0/1 spikes (bool, integer or float), e.g. sampled
            by :func:`probsnn.sample`.
        bin_size: bin width Δ in seconds, > 0.
        start: the first trial's start in seconds (trials then follow back to back,
            start_r = start + r·TΔ), or one start per trial, increasing and at least TΔ apart
            (e.g. ``ep.start`` of the IntervalSet they were binned from).
        index: N distinct integer unit ids (the group's keys); default 0..N−1.

    Returns:
        ``pynapple.TsGroup`` of N units.

    Raises:
        ImportError: pynapple is missing.
        ValueError, TypeError: spikes that are not 0/1 ``(T, N)`` or ``(trials, T, N)``,
            ``bin_size`` <= 0, bad ``start`` (non-finite, wrong length, overlapping trials) or
            ``index`` (wrong length, repeated or non-integer ids).

    Reference: Viejo et al. (2023), pynapple (``TsGroup``, ``IntervalSet``).
    """
    nap = _pynapple()
    spikes = _checks.spike_array(spikes, "spikes")
    trials = _trial_array(np.asarray(spikes), "spikes").astype(bool)
    bin_size = _checks.positive_float(bin_size, "bin_size")
    n_trials, n_steps, n_units = trials.shape
    starts = _trial_starts(start, n_trials, n_steps, bin_size, np.ndim(spikes) == 3)
    keys = _unit_index(index, n_units)
    support = _support(nap, starts, n_steps * bin_size)
    units = {}
    for key, train in zip(keys, np.moveaxis(trials, -1, 0), strict=True):
        trial, step = np.nonzero(train)  # row-major: sorted by trial, then by bin
        times = starts[trial] + (step + 0.5) * bin_size
        units[key] = nap.Ts(t=times, time_support=support)
    return nap.TsGroup(units, time_support=support)


def rates_to_pynapple(rates, bin_size, start=0.0, *, index=None):
    """A pynapple ``TsdFrame`` of predicted rates ``(T, N)`` or ``(trials, T, N)``, one column per
    neuron, stamped at the bin centres start_r + (k + ½)Δ as in :func:`to_pynapple`.

    The values are stored as given: pass σ(u)/Δ for a firing rate in spikes/s, or σ(u) for the
    spike probability per bin (σ(u) from :func:`probsnn.potentials`).

    Args:
        rates: ``(T, N)`` or ``(trials, T, N)`` finite, non-negative rates.
        bin_size: bin width Δ in seconds, > 0.
        start: the first trial's start in seconds or one start per trial (see
            :func:`to_pynapple`).
        index: N distinct integer column labels; default 0..N−1.

    Returns:
        ``pynapple.TsdFrame`` with trials·T rows and N columns; its time support holds one
        interval per trial.

    Raises:
        ImportError: pynapple is missing.
        ValueError, TypeError: rates that are not finite, non-negative ``(T, N)`` or
            ``(trials, T, N)`` reals, ``bin_size`` <= 0, bad ``start`` or ``index``.

    Reference: Viejo et al. (2023), pynapple (``TsdFrame``).
    """
    nap = _pynapple()
    rates = _checks.real_array(rates, "rates", min_ndim=2)
    values = _trial_array(np.asarray(rates), "rates")
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    if np.any(values < 0):
        raise ValueError(f"rates must be >= 0, found {values.min()}")
    bin_size = _checks.positive_float(bin_size, "bin_size")
    n_trials, n_steps, n_units = values.shape
    starts = _trial_starts(start, n_trials, n_steps, bin_size, np.ndim(rates) == 3)
    keys = _unit_index(index, n_units)
    support = _support(nap, starts, n_steps * bin_size)
    times = (starts[:, None] + (np.arange(n_steps) + 0.5) * bin_size).ravel()
    return nap.TsdFrame(
        t=times,
        d=values.reshape(n_trials * n_steps, n_units),
        columns=keys,
        time_support=support,
    )


# ---------------------------------------------------------------------------------------------
# helpers


def _whole_bins(starts, ends, bin_size) -> int:
    """T, the number of whole bins in every interval; raises unless all intervals agree."""
    slack = min(_SLACK, 0.25 * bin_size)
    n_steps = np.floor((ends - starts + slack) / bin_size).astype(np.int64)
    short = np.flatnonzero(n_steps < 1)
    if short.size:
        k = int(short[0])
        raise ValueError(
            f"ep: interval {k} [{starts[k]}, {ends[k]}] is shorter than one bin of "
            f"bin_size={bin_size}"
        )
    if np.any(n_steps != n_steps[0]):
        k = int(np.flatnonzero(n_steps != n_steps[0])[0])
        raise ValueError(
            f"ep: trials must hold the same number of bins of bin_size={bin_size}, but interval "
            f"0 holds {int(n_steps[0])} and interval {k} holds {int(n_steps[k])} (lengths "
            f"{ends[0] - starts[0]:g} s and {ends[k] - starts[k]:g} s); make equal windows, e.g. "
            "nap.IntervalSet(onsets, onsets + duration), or convert the intervals one at a time"
        )
    return int(n_steps[0])


def _within(starts, ends, support, what: str) -> None:
    """Raise unless every interval [starts_k, ends_k] lies inside one interval of ``support``."""
    sup_start = np.asarray(support.start, dtype=np.float64)
    sup_end = np.asarray(support.end, dtype=np.float64)
    k = np.searchsorted(sup_start, starts + _SLACK, side="right") - 1
    inside = (k >= 0) & (ends <= sup_end[np.maximum(k, 0)] + _SLACK)
    if not inside.all():
        bad = int(np.flatnonzero(~inside)[0])
        spans = ", ".join(f"[{a:g}, {b:g}]" for a, b in zip(sup_start, sup_end, strict=True))
        raise ValueError(
            f"ep: interval {bad} [{starts[bad]:g}, {ends[bad]:g}] is not inside {what} "
            f"({spans}); there is no data outside it, so restrict ep to it"
        )


def _per_interval(times, values, starts, n_steps) -> np.ndarray:
    """Rows of a pynapple binned output (all intervals concatenated) as ``(trials, T, ...)``,
    keeping the first ``n_steps`` bins of each interval."""
    values = np.asarray(values)
    interval = np.searchsorted(starts, np.asarray(times), side="right") - 1
    per = np.bincount(interval, minlength=starts.size)
    if np.any(per < n_steps):  # pragma: no cover - pynapple always returns the whole bins
        raise RuntimeError(f"pynapple returned {per.tolist()} bins, expected {n_steps} each")
    first = np.concatenate([[0], np.cumsum(per)[:-1]])
    rows = first[:, None] + np.arange(n_steps)
    return values[rows]


def _too_many(tsgroup, counts, starts, bin_size) -> None:
    trial, step, unit = (int(i) for i in np.argwhere(counts > 1)[0])
    key = tsgroup.index[unit]
    isi = np.diff(np.asarray(tsgroup[key].t))
    shortest = f"; its shortest inter-spike interval is {isi.min():g} s" if isi.size else ""
    raise ValueError(
        f"tsgroup: unit {key} has {int(counts[trial, step, unit])} spikes in the bin of "
        f"bin_size={bin_size} starting at {starts[trial] + step * bin_size:g} s (the largest "
        f"count in a bin is {int(counts.max())}){shortest}; a binary network emits at most one "
        "spike per bin: choose a smaller bin_size or policy='clip'"
    )


def _binned_inputs(inputs, ep, starts, ends, n_steps, bin_size) -> np.ndarray:
    _within(starts, ends, inputs.time_support, "inputs.time_support")
    average = inputs.bin_average(bin_size, ep)
    values = np.asarray(average.values, dtype=np.float64)
    values = values.reshape(values.shape[0], -1)
    binned = _per_interval(average.t, values, starts, n_steps)  # (trials, T, M)
    if np.isnan(binned).any():
        trial, step, column = (int(i) for i in np.argwhere(np.isnan(binned))[0])
        begin = starts[trial] + step * bin_size
        raise ValueError(
            f"inputs: column {column} has no samples (or NaN) in the bin [{begin:g}, "
            f"{begin + bin_size:g}) s of interval {trial}; every bin of bin_size={bin_size} needs "
            "a sample: resample the stimulus finer (Tsd.interpolate) or use a larger bin_size"
        )
    binned = _checks.real_array(binned, "inputs").astype(np.float32)
    return binned[0] if starts.size == 1 else binned


def _trial_array(values: np.ndarray, name: str) -> np.ndarray:
    """``(T, N)`` or ``(trials, T, N)`` as ``(trials, T, N)``."""
    if values.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (T, N) or (trials, T, N), got {tuple(values.shape)}"
        )
    if values.shape[-2] == 0:
        raise ValueError(f"{name} must hold at least one bin, got shape {tuple(values.shape)}")
    return values if values.ndim == 3 else values[None]


def _trial_starts(start, n_trials, n_steps, bin_size, batched) -> np.ndarray:
    duration = n_steps * bin_size
    if np.ndim(start) == 0:
        first = _checks.finite_float(start, "start")
        return first + np.arange(n_trials) * duration
    if not batched:
        raise ValueError(f"start must be one number for (T, N) spikes, got shape {np.shape(start)}")
    starts = np.asarray(_checks.real_array(start, "start"), dtype=np.float64)
    if starts.shape != (n_trials,):
        raise ValueError(
            f"start must be one number or one start per trial, shape ({n_trials},), "
            f"got {starts.shape}"
        )
    gaps = np.diff(starts)
    overlap = gaps < duration - 1e-9 * max(duration, float(np.abs(starts).max()))
    if np.any(overlap):
        k = int(np.flatnonzero(overlap)[0])
        raise ValueError(
            f"start must increase by at least one trial's length T·bin_size = {duration:g} s "
            f"(trials may not overlap), but start[{k + 1}] - start[{k}] = {gaps[k]:g}"
        )
    return starts


def _unit_index(index, n_units) -> list[int]:
    if index is None:
        return list(range(n_units))
    keys = list(index)
    if len(keys) != n_units:
        raise ValueError(f"index must hold {n_units} unit ids (one per neuron), got {len(keys)}")
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int | np.integer):
            raise TypeError(f"index must hold integer unit ids, got {key!r}")
    if len(set(keys)) != n_units:
        raise ValueError(f"index must hold distinct unit ids, got {keys}")
    return [int(key) for key in keys]


def _support(nap, starts, duration):
    """One interval per trial. An end that rounding puts past the next trial's start is set to
    it; touching trials then make pynapple shorten the earlier one by a microsecond, with a
    warning that is expected here (the bins stay whole within _SLACK) and silenced alone."""
    ends = starts + duration
    ends[:-1] = np.minimum(ends[:-1], starts[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Some starts and ends are equal\. Removing 1 microsecond!\Z"
        )
        return nap.IntervalSet(start=starts, end=ends)
