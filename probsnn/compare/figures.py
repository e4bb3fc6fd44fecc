"""Figures of a comparison report (matplotlib): accuracy against spikes per sample, evaluation
return against spikes per environment step, learning curves, and one raster per criterion. Each
function returns a ``Figure``."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from probsnn import plot
from probsnn.compare.metrics import LABELS, summarise


def _colours(report) -> dict:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {c.name: cycle[i % len(cycle)] for i, c in enumerate(report.criteria)}


def accuracy_vs_spikes(report):
    """Held-out accuracy (mean ± CI) against spikes per sample, one panel per classification
    task; criteria without spikes are drawn as horizontal lines."""
    return _against_spikes(report, "classification", "accuracy", "spikes", "spikes per sample")


def return_vs_spikes(report):
    """Evaluation return (mean ± CI) against spikes per environment step, one panel per control
    task; non-spiking policies are drawn as horizontal lines."""
    return _against_spikes(
        report, "control", "return", "spikes_per_step", "spikes per environment step"
    )


def _against_spikes(report, kind: str, metric: str, spikes_metric: str, xlabel: str):
    """``metric`` against ``spikes_metric`` (log scale), one panel per task of ``kind``."""
    tasks = [t for t in report.tasks if t.kind == kind]
    colours = _colours(report)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for criterion in report.criteria:
            cells = report.cells_of(task.name, criterion.name)
            if not cells:
                continue
            value = summarise([c["metrics"][metric] for c in cells])
            spikes = summarise([c["metrics"][spikes_metric] for c in cells])
            colour = colours[criterion.name]
            if spikes.mean is None:
                ax.axhline(value.mean, color=colour, ls="--", label=f"{criterion.name} (no spikes)")
                continue
            ax.errorbar(
                spikes.mean,
                value.mean,
                xerr=spikes.half_width,
                yerr=value.half_width,
                fmt="o",
                color=colour,
                capsize=3,
                label=criterion.name,
            )
        ax.axhline(task.chance, color="grey", lw=0.8, ls=":", label="chance")
        ax.set_xscale("log")
        ax.set(xlabel=f"{xlabel} (learner's neurons)", ylabel=_headline_label(task))
        ax.set_title(task.name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _headline_label(task) -> str:
    """The y label of a task's headline metric (held out, or evaluated for a control task)."""
    where = "evaluation" if task.kind == "control" else "held-out"
    return f"{where} {LABELS[task.headline]}"


def learning_curves(report):
    """Each task's headline metric against training seconds (mean over seeds per checkpoint),
    with the task's target dashed (for a control task the reward threshold, the curve being the
    evaluation return)."""
    colours = _colours(report)
    fig, axes = plt.subplots(
        1, len(report.tasks), figsize=(4.8 * len(report.tasks), 3.6), squeeze=False
    )
    for ax, task in zip(axes[0], report.tasks, strict=True):
        for criterion in report.criteria:
            curves = [c["curve"] for c in report.cells_of(task.name, criterion.name)]
            if not curves:
                continue
            length = min(len(curve["values"]) for curve in curves)
            seconds = np.mean([curve["seconds"][:length] for curve in curves], axis=0)
            values = np.mean([curve["values"][:length] for curve in curves], axis=0)
            ax.plot(
                seconds, values, "o-", ms=3, color=colours[criterion.name], label=criterion.name
            )
        ax.axhline(task.target, color="k", ls="--", lw=0.8, label="target")
        ax.set(xlabel="training seconds", ylabel=_headline_label(task))
        ax.set_title(task.name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def rasters(report, task):
    """One raster per criterion: the learner's spikes on the first held-out sample of the
    first seed (for a control task, the first steps of its first evaluation episode)."""
    cells = {}
    for cell in report.cells:
        if cell["task"] == task.name and cell.get("raster") and cell["criterion"] not in cells:
            cells[cell["criterion"]] = cell
    columns = min(4, len(cells))
    rows = math.ceil(len(cells) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows), squeeze=False)
    for ax, (name, cell) in zip(axes.flat, cells.items(), strict=False):
        record = cell["raster"]
        spikes = np.zeros(record["shape"], np.uint8)
        spikes[record["times"], record["neurons"]] = 1
        plot.raster(spikes, ax=ax)
        ax.set_title(f"{name} ({int(spikes.sum())} spikes)", fontsize=9)
    for ax in axes.flat[len(cells) :]:
        ax.set_axis_off()
    where = (
        "the first steps of one evaluation episode"
        if task.kind == "control"
        else ("one held-out sample")
    )
    fig.suptitle(f"{task.name}: spikes of each learner on {where}", fontsize=10)
    fig.tight_layout()
    return fig
