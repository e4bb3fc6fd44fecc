"""Plots draw what they are given and return their Axes."""

from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")

import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

from probsnn import plot, stats


@pytest.fixture
def spikes():
    return np.random.default_rng(0).random((4, 200, 6)) < 0.05


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_raster_by_neuron_draws_one_tick_per_spike(spikes):
    _fig, ax = plt.subplots()
    out = plot.raster(spikes, dt=1e-3, trial=2, ax=ax)
    assert out is ax
    offsets = ax.collections[0].get_offsets()
    assert len(offsets) == spikes[2].sum()
    t, _n = np.nonzero(spikes[2])
    np.testing.assert_allclose(np.sort(offsets[:, 0]), np.sort(t * 1e-3))
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "neuron"


def test_raster_by_trial_with_stimulus(spikes):
    ax = plot.raster(spikes, by="trial", neuron=3, stimulus=np.sin(np.arange(200) / 9))
    assert len(ax.collections[0].get_offsets()) == spikes[:, :, 3].sum()
    assert ax.get_ylabel() == "trial" and ax.get_xlabel() == "time (bins)"
    strips = [child for child in ax.child_axes]
    assert len(strips) == 1 and len(strips[0].lines) == 1


def test_raster_accepts_a_single_trial(spikes):
    ax = plot.raster(spikes[0])
    assert len(ax.collections[0].get_offsets()) == spikes[0].sum()


def test_raster_rejects_bad_arguments(spikes):
    with pytest.raises(ValueError, match="by must be"):
        plot.raster(spikes, by="time")
    with pytest.raises(ValueError, match="trial must be in"):
        plot.raster(spikes, trial=9)
    with pytest.raises(ValueError, match="stimulus must have shape"):
        plot.raster(spikes, stimulus=np.zeros(10))
    with pytest.raises(ValueError, match="binary"):
        plot.raster(spikes * 3)


def test_kernels_with_truth_band_and_labels():
    values = np.random.default_rng(1).normal(size=(3, 20))
    _fig, ax = plt.subplots()
    out = plot.kernels(
        values,
        dt=1e-3,
        truth=values + 0.1,
        lower=values - 0.2,
        upper=values + 0.2,
        labels=["a", "b", "c"],
        ax=ax,
    )
    assert out is ax
    solid = [
        line for line in ax.lines if line.get_linestyle() == "-" and len(line.get_xdata()) == 20
    ]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(solid) == 3 and len(dashed) == 3
    np.testing.assert_allclose(solid[0].get_xdata(), np.arange(1, 21) * 1e-3)
    np.testing.assert_allclose(solid[1].get_ydata(), values[1])
    assert len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]


def test_kernels_rejects_mismatched_shapes():
    values = np.zeros((2, 10))
    with pytest.raises(ValueError, match="truth must have the shape"):
        plot.kernels(values, truth=np.zeros((2, 9)))
    with pytest.raises(ValueError, match="lower and upper"):
        plot.kernels(values, lower=values)
    with pytest.raises(ValueError, match="labels must have 2"):
        plot.kernels(values, labels=["a"])


def test_psth_isi_and_time_rescaling_plots(spikes):
    result = stats.psth(spikes, dt=1e-3, bandwidth=5e-3)
    ax = plot.psth(result, neurons=[0, 2])
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    np.testing.assert_allclose(ax.lines[1].get_ydata(), result.rate[:, 2])

    hist = stats.isi_histogram(spikes, 30)
    ax = plot.isi(hist, neuron=1, ax=plt.figure().gca())
    heights = [patch.get_height() for patch in ax.patches]
    total = hist.counts[:, 1].sum() + hist.longer[1]
    np.testing.assert_allclose(heights, hist.counts[:, 1] / total)

    p = np.full(spikes.shape, 0.05)
    rescaled = stats.time_rescaling(spikes, p, key=jax.random.key(0))
    ax = plot.time_rescaling(rescaled, ax=plt.figure().gca(), label="model")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rescaled.uniform)
    assert len(ax.lines) == 4 and "KS" in ax.get_title()


class _Check(NamedTuple):
    """The fields of probsnn.inference.bayes.checks.PredictiveCheck."""

    observed: np.ndarray
    predictive: np.ndarray
    pvalue: np.ndarray | float
    grid: np.ndarray | None


def test_posterior_predictive_check_plots():
    rng = np.random.default_rng(2)
    n_steps, n_neurons, n_draws = 50, 3, 8
    grid = (np.arange(n_steps) + 0.5) * 1e-3
    psth = _Check(
        rng.random((n_steps, n_neurons)),
        rng.random((n_draws, n_steps, n_neurons)),
        np.array([0.1, 0.5, 0.9]),
        grid,
    )
    ax = plot.psth_check(psth, neurons=[0, 2])
    assert len(ax.lines) == 4 and ax.get_title() == "PSTH: p = 0.10, 0.90"
    np.testing.assert_allclose(ax.lines[2].get_ydata(), psth.observed[:, 0])

    intervals = np.arange(1, 21) * 1e-3
    isi = _Check(
        rng.random((20, n_neurons)),
        rng.random((n_draws, 20, n_neurons)),
        np.array([0.2, 0.3, 0.4]),
        intervals,
    )
    ax = plot.isi_check(isi, neuron=1, ax=plt.figure().gca())
    np.testing.assert_allclose([p.get_height() for p in ax.patches], isi.observed[:, 1])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), isi.predictive[:, :, 1].mean(axis=0))
    assert "p = 0.30" in ax.get_title()

    rescaling = _Check(rng.random(n_draws), rng.random(n_draws), 0.25, None)
    ax = plot.time_rescaling_check(rescaling, ax=plt.figure().gca())
    assert len(ax.collections[0].get_offsets()) == n_draws and "0.25" in ax.get_title()
    with pytest.raises(ValueError, match="prob"):
        plot.psth_check(psth, prob=1.5)


class _WindowChange(NamedTuple):
    """The fields of probsnn.inference.equivalence.WindowChange."""

    window: np.ndarray
    derivative: np.ndarray
    rate_term: np.ndarray


def test_stdp_window_and_rate_derivative_plots():
    lags_ms = np.arange(-10, 11) * 0.5
    dw = np.sign(lags_ms) * np.exp(-np.abs(lags_ms) / 5)
    ax = plot.stdp_window(lags_ms, dw, reference=dw, label="ML")
    assert len(ax.lines) == 4  # the two axes lines, the window and the reference
    np.testing.assert_allclose(ax.lines[2].get_xdata(), lags_ms)
    assert ax.get_xlabel() == "Δt = t_post − t_pre (ms)"
    with pytest.raises(ValueError, match="reference"):
        plot.stdp_window(lags_ms, dw, reference=dw[:-1])
    derivative = np.random.default_rng(3).normal(size=30)
    change = _WindowChange(2 * derivative, derivative, np.zeros(30))
    ax = plot.rate_derivative(change, ax=plt.figure().gca())
    assert ax.get_title() == "corr = 1.000"
    assert len(ax.collections[0].get_offsets()) == 30
