"""Pictures of spike trains, kernels and goodness of fit (matplotlib).

Every function takes arrays (or result NamedTuples: those of :mod:`probsnn.stats`, the
posterior-predictive checks of :mod:`probsnn.inference.bayes.checks`, the STDP-equivalence
results of :mod:`probsnn.inference.equivalence`, the surrogate ↔ stochastic sweep of
:mod:`probsnn.inference.deterministic.equivalence`), draws on ``ax`` when given (else on
``plt.gca()``) and returns the matplotlib ``Axes`` it drew on. Time runs along the x axis in
seconds when ``dt`` is given, else in bins; STDP windows are drawn against lags in ms.

This is the only module of the library that imports ``matplotlib.pyplot``; ``import probsnn``
and ``import probsnn.inference`` do not load it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from probsnn import _checks, stats


def _axes(ax):
    return plt.gca() if ax is None else ax


def _neurons(neurons, n_neurons: int) -> list[int]:
    """The neuron indices to draw: all when None, else each checked to lie in [0, N)."""
    if neurons is None:
        return list(range(n_neurons))
    if isinstance(neurons, int | np.integer):
        neurons = [neurons]
    return [_checks.index(i, f"neurons[{k}]", n_neurons) for k, i in enumerate(neurons)]


def _time_label(dt) -> str:
    return "time (bins)" if dt is None else "time (s)"


def raster(spikes, *, dt=None, by="neuron", trial=0, neuron=0, stimulus=None, ax=None):
    """Raster plot: one tick per spike.

    Args:
        spikes: binary ``(T, N)`` or ``(trials, T, N)``.
        dt: bin width in seconds (x axis in seconds), or None (x axis in bins).
        by: ``"neuron"`` — one row per neuron of trial ``trial``; ``"trial"`` — one row per trial
            of neuron ``neuron`` (needs the 3-D form).
        trial, neuron: which trial (``by="neuron"``) or neuron (``by="trial"``) to draw.
        stimulus: optional ``(T,)`` trace drawn in a strip above the raster, on the same time axis.
        ax: Axes to draw on.

    Returns:
        The raster's Axes.

    Raises:
        ValueError: non-binary or empty spikes, a bad ``by``, an index out of range, or a
            stimulus whose length is not T.
        TypeError: a trial or neuron index that is not an integer.
    """
    spikes = np.asarray(_checks.spike_array(spikes, "spikes"))
    if spikes.ndim == 2:
        spikes = spikes[None]
    elif spikes.ndim != 3:
        raise ValueError(f"spikes must be (T, N) or (trials, T, N), got shape {spikes.shape}")
    _checks.nonempty(spikes, "spikes")
    n_trials, n_steps, n_neurons = spikes.shape
    by = _checks.option(by, "by", ("neuron", "trial"))
    if by == "neuron":
        rows = spikes[_checks.index(trial, "trial", n_trials)]
        ylabel = "neuron"
    else:
        rows = spikes[:, :, _checks.index(neuron, "neuron", n_neurons)].T
        ylabel = "trial"
    scale = 1.0 if dt is None else _checks.positive_float(dt, "dt")
    t_idx, row_idx = np.nonzero(rows)
    ax = _axes(ax)
    ax.scatter(t_idx * scale, row_idx, marker="|", s=20, linewidths=0.8, color="k")
    ax.set_xlim(0, n_steps * scale)
    ax.set_ylim(-0.5, rows.shape[1] - 0.5)
    ax.set_xlabel(_time_label(dt))
    ax.set_ylabel(ylabel)
    if stimulus is not None:
        stimulus = np.asarray(_checks.real_array(stimulus, "stimulus"))
        if stimulus.shape != (n_steps,):
            raise ValueError(f"stimulus must have shape ({n_steps},), got {stimulus.shape}")
        strip = ax.inset_axes((0.0, 1.02, 1.0, 0.25), sharex=ax)
        strip.plot(np.arange(n_steps) * scale, stimulus, color="C0", lw=0.8)
        strip.tick_params(labelbottom=False)
        strip.set_ylabel("stimulus")
    return ax


def kernels(kernels, *, dt=None, truth=None, lower=None, upper=None, labels=None, ax=None):
    """Plot kernels over lags 1..L (lag 1 = the previous bin), optionally with truth and a band.

    Args:
        kernels: ``(n_kernels, L)`` (a single ``(L,)`` kernel is drawn as one row).
        dt: bin width in seconds (x axis = lag in seconds), or None (lag in bins).
        truth: same shape, drawn dashed in the same colour.
        lower, upper: same shape, drawn as a shaded band (both or neither).
        labels: ``n_kernels`` legend labels.
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: shapes that differ from ``kernels``, only one of lower/upper, or a label count
            that is not n_kernels.
    """
    values = np.asarray(_checks.real_array(kernels, "kernels"), dtype=float)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2:
        raise ValueError(f"kernels must be (n_kernels, L), got shape {values.shape}")
    extra = {}
    for name, array in (("truth", truth), ("lower", lower), ("upper", upper)):
        if array is not None:
            array = np.asarray(_checks.real_array(array, name), dtype=float).reshape(-1)
            if array.size != values.size:
                raise ValueError(f"{name} must have the shape of kernels {values.shape}")
            extra[name] = array.reshape(values.shape)
    if ("lower" in extra) != ("upper" in extra):
        raise ValueError("lower and upper must be given together")
    _checks.nonempty(values, "kernels")
    if labels is not None and len(labels) != values.shape[0]:
        raise ValueError(f"labels must have {values.shape[0]} entries, got {len(labels)}")
    scale = 1.0 if dt is None else _checks.positive_float(dt, "dt")
    lags = np.arange(1, values.shape[1] + 1) * scale
    ax = _axes(ax)
    for k, row in enumerate(values):
        colour = f"C{k % 10}"
        ax.plot(lags, row, color=colour, label=None if labels is None else labels[k])
        if "truth" in extra:
            ax.plot(lags, extra["truth"][k], color=colour, ls="--")
        if "lower" in extra:
            ax.fill_between(lags, extra["lower"][k], extra["upper"][k], color=colour, alpha=0.25)
    ax.axhline(0.0, color="0.6", lw=0.5)
    ax.set_xlabel("lag (bins)" if dt is None else "lag (s)")
    ax.set_ylabel("weight")
    if labels is not None:
        ax.legend()
    return ax


def psth(result, *, neurons=None, ax=None):
    """Draw a :class:`probsnn.stats.PSTH`: the rate of each chosen neuron with its band.

    Args:
        result: the PSTH from :func:`probsnn.stats.psth`.
        neurons: indices of the neurons to draw (default all).
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: a neuron index outside [0, N). TypeError: a non-integer index.
    """
    time = np.asarray(result.time)
    rate, lower, upper = (np.asarray(a) for a in (result.rate, result.lower, result.upper))
    chosen = _neurons(neurons, rate.shape[1])
    ax = _axes(ax)
    for k, i in enumerate(chosen):
        colour = f"C{k % 10}"
        ax.plot(time, rate[:, i], color=colour, lw=1.0, label=f"neuron {i}")
        ax.fill_between(time, lower[:, i], upper[:, i], color=colour, alpha=0.25, lw=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("rate (spikes/s)")
    return ax


def isi(result, *, neuron=0, density=True, ax=None):
    """Bar plot of a :class:`probsnn.stats.ISIHistogram` for one neuron.

    Args:
        result: from :func:`probsnn.stats.isi_histogram`.
        neuron: which neuron.
        density: divide by the number of intervals (including those longer than the range).
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: a neuron index outside [0, N). TypeError: a non-integer index.
    """
    intervals = np.asarray(result.intervals)
    neuron = _checks.index(neuron, "neuron", np.shape(result.counts)[1])
    counts = np.asarray(result.counts)[:, neuron].astype(float)
    if density:
        counts = counts / max(counts.sum() + float(result.longer[neuron]), 1.0)
    ax = _axes(ax)
    width = intervals[1] - intervals[0] if intervals.size > 1 else 1.0
    ax.bar(intervals, counts, width=width, color="0.4")
    ax.set_xlabel("inter-spike interval")
    ax.set_ylabel("fraction of intervals" if density else "intervals")
    return ax


def time_rescaling(result, *, ax=None, label=None):
    """Kolmogorov–Smirnov plot of a :class:`probsnn.stats.TimeRescaling` (Brown et al. 2002).

    Sorted rescaled values u_(k) against the model quantiles (k − ½)/n, with the diagonal and its
    95 % band ±1.36/sqrt(n): a correct model stays inside the band.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    expected = np.asarray(result.expected)
    ax.plot(expected, np.asarray(result.uniform), lw=1.2, label=label)
    ax.plot([0, 1], [0, 1], color="k", lw=0.8)
    for sign in (-1, 1):
        ax.plot([0, 1], [sign * result.band, 1 + sign * result.band], color="k", ls="--", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("model quantile")
    ax.set_ylabel("empirical quantile")
    ax.set_title(f"KS = {result.ks:.3f} (95 % band {result.band:.3f})")
    if label is not None:
        ax.legend()
    return ax


def connectivity(strength, *, spread=None, exists=None, ax=None):
    """Connectivity matrix [pre, post] with its uncertainty.

    Cells are coloured by ``strength`` (e.g. a synapse's posterior-mean summed kernel) on a
    symmetric diverging scale; with ``spread`` (e.g. the credible interval's half-width) each
    cell is annotated ``±spread``; cells where ``exists`` is True are outlined. NaN cells (no
    candidate synapse) are left blank.

    Args:
        strength: ``(N_pre, N_post)`` values.
        spread: same shape, non-negative, or None.
        exists: same shape, bool, or None.
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: a non-square or non-2-D ``strength``, other arrays of another shape, or a
            negative spread.
        TypeError: complex or non-numeric arrays.
    """
    values = np.asarray(_checks.real_dtype(strength, "strength"), dtype=float)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"strength must be a square (N_pre, N_post) array, got {values.shape}")
    if spread is not None:
        spread = np.asarray(_checks.real_dtype(spread, "spread"), dtype=float)
        if spread.shape != values.shape:
            raise ValueError(f"spread must have shape {values.shape}, got {spread.shape}")
        if np.any(spread < 0):
            raise ValueError("spread must be >= 0")
    if exists is not None:
        exists = np.asarray(exists, dtype=bool)
        if exists.shape != values.shape:
            raise ValueError(f"exists must have shape {values.shape}, got {exists.shape}")
    ax = _axes(ax)
    limit = np.nanmax(np.abs(values)) if np.any(np.isfinite(values)) else 1.0
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.figure.colorbar(image, ax=ax, label="strength")
    for (j, i), value in np.ndenumerate(values):
        if spread is not None and np.isfinite(value):
            ax.text(i, j, f"±{spread[j, i]:.2g}", ha="center", va="center", fontsize=7)
        if exists is not None and exists[j, i]:
            ax.add_patch(plt.Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, lw=2, ec="k"))
    ax.set_xlabel("post-synaptic neuron")
    ax.set_ylabel("pre-synaptic neuron")
    return ax


# ---------------------------------------------------------------------------------------------
# Posterior-predictive checks (probsnn.inference.bayes.checks.PredictiveCheck)
# ---------------------------------------------------------------------------------------------
def _band(draws, prob):
    prob = _checks.probability(prob, "prob")
    return np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)


def psth_check(check, *, neurons=None, prob: float = 0.9, ax=None):
    """Draw a PSTH posterior-predictive check: the predictive mean PSTH with its equal-tailed
    ``prob`` band (via :func:`psth`) and the observed PSTH in black; p-values in the title.

    Args:
        check: the ``PredictiveCheck`` of :func:`probsnn.inference.bayes.checks.psth_check`
            (observed ``(T, N)``, predictive ``(S, T, N)``, pvalue ``(N,)``, grid ``(T,)`` s).
        neurons: indices of the neurons to draw (default all).
        prob: the band's probability, in (0, 1).
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: prob outside (0, 1), a neuron index outside [0, N).
        TypeError: a non-integer neuron index.
    """
    chosen = _neurons(neurons, check.observed.shape[1])
    lower, upper = _band(check.predictive, prob)
    band = stats.PSTH(
        time=check.grid,
        rate=check.predictive.mean(axis=0),
        lower=lower,
        upper=upper,
        n_trials=check.predictive.shape[0],
    )
    ax = psth(band, neurons=chosen, ax=ax)
    for i in chosen:
        ax.plot(check.grid, check.observed[:, i], color="k", lw=0.8)
    ax.set_title("PSTH: p = " + ", ".join(f"{check.pvalue[i]:.2f}" for i in chosen))
    return ax


def isi_check(check, *, neuron: int = 0, prob: float = 0.9, ax=None):
    """Draw an ISI posterior-predictive check for one neuron: the observed fractions of
    intervals as bars (via :func:`isi`) with the predictive mean and ``prob`` band; the p-value
    in the title.

    Args:
        check: the ``PredictiveCheck`` of :func:`probsnn.inference.bayes.checks.isi_check`
            (observed ``(L, N)``, predictive ``(S, L, N)``, pvalue ``(N,)``, grid ``(L,)`` s).
        neuron: which neuron.
        prob: the band's probability, in (0, 1).
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: prob outside (0, 1), a neuron index outside [0, N).
        TypeError: a non-integer neuron index.
    """
    n_neurons = check.observed.shape[1]
    neuron = _checks.index(neuron, "neuron", n_neurons)
    histogram = stats.ISIHistogram(
        intervals=check.grid, counts=check.observed, longer=np.zeros(n_neurons)
    )
    ax = isi(histogram, neuron=neuron, density=False, ax=ax)
    lower, upper = _band(check.predictive[:, :, neuron], prob)
    ax.plot(check.grid, check.predictive[:, :, neuron].mean(axis=0), color="C1", label="predictive")
    ax.fill_between(check.grid, lower, upper, color="C1", alpha=0.3, lw=0)
    ax.set_ylabel("fraction of intervals")
    ax.set_title(f"ISI of neuron {neuron}: p = {check.pvalue[neuron]:.2f}")
    ax.legend()
    return ax


def time_rescaling_check(check, *, ax=None):
    """Draw a time-rescaling posterior-predictive check: the KS statistic of the data against
    that of its replicate, one point per posterior draw, with the diagonal; points above it are
    draws under which the data fit worse than a replicate.

    Args:
        check: the ``PredictiveCheck`` of
            :func:`probsnn.inference.bayes.checks.time_rescaling_check` (observed and
            predictive ``(S,)`` KS statistics, a scalar pvalue).
        ax: Axes to draw on.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    ax.scatter(check.predictive, check.observed, s=12, color="C0")
    limits = [0.0, 1.05 * max(check.observed.max(), check.predictive.max())]
    ax.plot(limits, limits, color="k", lw=0.8)
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_xlabel("KS of replicate, D(y_rep, θ)")
    ax.set_ylabel("KS of data, D(y, θ)")
    ax.set_title(f"time rescaling: p = {check.pvalue:.2f}")
    return ax


# ---------------------------------------------------------------------------------------------
# STDP windows and the rate-derivative equivalence (probsnn.inference.equivalence)
# ---------------------------------------------------------------------------------------------
def stdp_window(lags_ms, dw, *, reference=None, label=None, ax=None):
    """Draw an STDP window Δw(Δt) against Δt = t_post − t_pre in ms (e.g. from
    :func:`probsnn.inference.equivalence.ml_window` or
    :func:`probsnn.inference.plasticity.stdp.measure_window`), optionally with a ``reference``
    curve on the same lags (dashed, "analytical").

    Args:
        lags_ms: ``(L,)`` lags in ms. dw: ``(L,)`` the window.
        reference: ``(L,)`` or None. label: the legend label of ``dw`` (default "measured").
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: ``dw`` or ``reference`` of another length than ``lags_ms``.
    """
    lags = np.asarray(_checks.real_array(lags_ms, "lags_ms"), dtype=float)
    for name, values in (("dw", dw), ("reference", reference)):
        if values is not None:
            _checks.real_dtype(values, name)
            if np.shape(values) != lags.shape:
                raise ValueError(f"{name} must have the shape of lags_ms {lags.shape}")
    ax = _axes(ax)
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.plot(lags, dw, "o-", ms=2.5, label=label or "measured")
    if reference is not None:
        ax.plot(lags, reference, "k--", lw=1, label="analytical")
    ax.set_xlabel("Δt = t_post − t_pre (ms)")
    ax.set_ylabel("Δw")
    ax.legend(frameon=False, fontsize=8)
    return ax


def rate_derivative(change, *, ax=None):
    """Scatter the exact expected weight change under an STDP window against its
    rate-derivative prediction, with the diagonal and their correlation in the title.

    Args:
        change: the ``WindowChange`` of
            :func:`probsnn.inference.equivalence.window_weight_change` (fields ``window`` and
            ``derivative``, of one shape).
        ax: Axes to draw on.

    Returns:
        The Axes.
    """
    ax = _axes(ax)
    x, y = np.ravel(change.derivative), np.ravel(change.window)
    ax.scatter(x, y, s=8)
    lim = [min(x.min(), y.min()), max(x.max(), y.max())]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set_xlabel("r_pre · dr_post/dt · ∫τK")
    ax.set_ylabel("E[ΔW] under window K")
    ax.set_title(f"corr = {np.corrcoef(x, y)[0, 1]:.3f}", fontsize=9)
    return ax


def surrogate_equivalence(result, *, metric="cosine", ax=None):
    """Draw how well gradient estimators agree with the exact gradient of E[L] against the
    temperature T (log axis): one line per estimator (colour), depth (line style) and
    recurrence (marker: ○ feedforward, □ recurrent).

    Args:
        result: the ``SurrogateEquivalence`` of
            :func:`probsnn.inference.deterministic.equivalence.surrogate_equivalence` (fields
            ``temperature``, ``depth``, ``recurrent``, ``estimator`` and the metric, each
            ``(R,)``).
        metric: ``"cosine"`` — cos∠(ĝ, ∇E[L]), with a reference line at 1 — or
            ``"relative_error"`` — ‖ĝ − ∇E[L]‖ / ‖∇E[L]‖, on a log axis.
        ax: Axes to draw on.

    Returns:
        The Axes.

    Raises:
        ValueError: an unknown ``metric``, fields of different lengths.
    """
    metric = _checks.option(metric, "metric", ("cosine", "relative_error"))
    temperature = np.asarray(result.temperature, float)
    depth = np.asarray(result.depth)
    recurrent = np.asarray(result.recurrent, bool)
    estimator = np.asarray(result.estimator)
    values = np.asarray(getattr(result, metric), float)
    if not temperature.shape == depth.shape == recurrent.shape == estimator.shape == values.shape:
        raise ValueError("the result's fields must all have one length (one entry per row)")
    ax = _axes(ax)
    names = list(dict.fromkeys(estimator.tolist()))
    depths = sorted(set(depth.tolist()))
    styles = ("-", "--", ":", "-.")
    for k, name in enumerate(names):
        for j, d in enumerate(depths):
            for rec in (False, True):
                rows = (estimator == name) & (depth == d) & (recurrent == rec)
                if rows.any():
                    order = np.argsort(temperature[rows])
                    ax.plot(
                        temperature[rows][order],
                        values[rows][order],
                        color=f"C{k}",
                        ls=styles[j % len(styles)],
                        marker="s" if rec else "o",
                        ms=4,
                        mfc="none" if rec else None,
                    )
    ax.set_xscale("log")
    ax.set_xlabel("temperature T")
    if metric == "cosine":
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_ylabel("cos∠(ĝ, ∇E[L])")
    else:
        ax.set_yscale("log")
        ax.set_ylabel("‖ĝ − ∇E[L]‖ / ‖∇E[L]‖")
    handles = [plt.Line2D([], [], color=f"C{k}", label=name) for k, name in enumerate(names)]
    handles += [
        plt.Line2D([], [], color="k", ls=styles[j % len(styles)], label=f"{d} layer(s)")
        for j, d in enumerate(depths)
    ]
    handles += [
        plt.Line2D([], [], color="k", ls="", marker=m, mfc=f, label=label)
        for m, f, label in (("o", None, "feedforward"), ("s", "none", "recurrent"))
    ]
    ax.legend(handles=handles, frameon=False, fontsize=7)
    return ax
