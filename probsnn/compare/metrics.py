"""The metrics of the comparison and their summaries over seeds.

Each metric of a cell is a float, None (a target never reached) or "n/a" with a reason. Across
seeds a metric is summarised by its mean and the half-width of a 95 % Student-t confidence
interval, t_{0.975, n−1} s / sqrt(n), with s the sample standard deviation over the n seeds
(no interval for n = 1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats


class Metric(NamedTuple):
    """A column of the results table: key, short label, definition and decimals shown."""

    key: str
    label: str
    definition: str
    decimals: int


METRICS = (
    Metric("accuracy", "accuracy", "held-out classification accuracy", 3),
    Metric(
        "auroc",
        "AUROC",
        "pattern: AUROC of the teacher-forced spike probabilities of the target bins (chance 0.5)",
        3,
    ),
    Metric(
        "log_lik",
        "log-lik/bin",
        "held-out log-likelihood in nats per bin, summed over the output neurons "
        "(label trains, target pattern or recording); a lower bound where the criterion says so",
        3,
    ),
    Metric(
        "bits_per_spike",
        "bits/spike",
        "held-out log-likelihood gain over a constant-rate model, bits per spike",
        3,
    ),
    Metric(
        "ks",
        "KS",
        "time-rescaling Kolmogorov-Smirnov statistic on held-out data (Brown et al. 2002; "
        "the model passes below 1.36/sqrt(n spikes))",
        3,
    ),
    Metric(
        "spikes",
        "spikes/sample",
        "spikes the learner's own neurons emit per held-out sample (input encoding excluded)",
        1,
    ),
    Metric(
        "return",
        "return",
        "control: evaluation return, the mean undiscounted return of 100 episodes of the trained "
        "(stochastic) policy",
        1,
    ),
    Metric(
        "spikes_per_step",
        "spikes/step",
        "control: spikes the policy's neurons emit per environment step in the evaluation "
        "episodes (input encoding excluded)",
        1,
    ),
    Metric(
        "fit_seconds",
        "fit s",
        "training wall time in seconds, without JIT compilation and without the learning-curve "
        "evaluations",
        1,
    ),
    Metric(
        "updates_to_target",
        "updates to target",
        "parameter updates until the headline metric first reached the task's target "
        "(over the seeds that reached it)",
        0,
    ),
    Metric(
        "episodes_to_target",
        "episodes to target",
        "control: training episodes until the evaluation return first reached the reward "
        "threshold (evaluated every 1/20 of the budget and whenever a training batch's mean "
        "return reached it; training stops there)",
        0,
    ),
    Metric(
        "seconds_to_target",
        "s to target",
        "training seconds (as fit s) until the headline metric first reached the task's target",
        1,
    ),
)

METRIC_KEYS = tuple(metric.key for metric in METRICS)
LABELS = {metric.key: metric.label for metric in METRICS}

#: The metrics each kind of task reports (besides fit time and the progress and time to target).
TASK_METRICS = {
    "classification": ("accuracy", "log_lik", "spikes"),
    "pattern": ("auroc", "log_lik", "spikes"),
    "recording": ("bits_per_spike", "log_lik", "ks", "spikes"),
    "control": ("return", "spikes_per_step"),
}

TRAINING_METRICS = ("fit_seconds", "seconds_to_target")


def progress_metric(kind: str) -> str:
    """What the learning curves of a task kind count until the target: training episodes for
    control tasks, parameter updates for the others."""
    return "episodes_to_target" if kind == "control" else "updates_to_target"


def task_metrics(kind: str) -> tuple[str, ...]:
    """The metric keys of a task kind, in table order."""
    wanted = {*TASK_METRICS[kind], *TRAINING_METRICS, progress_metric(kind)}
    return tuple(key for key in METRIC_KEYS if key in wanted)


class Summary(NamedTuple):
    """A metric over seeds: mean, CI half-width (None for one seed), seeds counted and a note
    ("n/a: reason", or "k/n reached" for a target)."""

    mean: float | None
    half_width: float | None
    n: int
    note: str


def confidence_interval(values, level: float = 0.95) -> tuple[float, float | None]:
    """Mean and Student-t half-width of ``values`` (None when there is a single value).

    Raises:
        ValueError: no values, or a non-finite one.
    """
    values = np.asarray(values, np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"values must be a non-empty finite list, got {values.tolist()}")
    mean = float(values.mean())
    if values.size == 1:
        return mean, None
    quantile = stats.t.ppf(0.5 + level / 2, values.size - 1)
    return mean, float(quantile * values.std(ddof=1) / math.sqrt(values.size))


def summarise(values: list) -> Summary:
    """Summarise one metric's per-seed values (floats, None = target not reached, or
    ``{"n/a": reason}``)."""
    reasons = [v["n/a"] for v in values if isinstance(v, dict)]
    if reasons:
        return Summary(None, None, 0, f"n/a: {reasons[0]}")
    reached = [v for v in values if v is not None]
    note = "" if len(reached) == len(values) else f"{len(reached)}/{len(values)} reached"
    if not reached:
        return Summary(None, None, 0, "not reached")
    mean, half_width = confidence_interval(reached)
    return Summary(mean, half_width, len(reached), note)


def format_summary(summary: Summary, decimals: int) -> str:
    """``"0.912 ± 0.013"``, with the note appended; the note alone when there is no value."""
    if summary.mean is None:
        return summary.note
    text = f"{summary.mean:.{decimals}f}"
    if summary.half_width is not None:
        text += f" ± {summary.half_width:.{decimals}f}"
    return f"{text} ({summary.note})" if summary.note else text
