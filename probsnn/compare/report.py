"""The results of a comparison: one row per (task, criterion), as text, Markdown, JSON and CSV,
and figures (accuracy or evaluation return against spikes, learning curves, rasters).

A row summarises its seeds (:func:`probsnn.compare.metrics.summarise`); a criterion that does not
apply to a task gets a row "n/a: reason", one that failed on every seed "failed: error". A
log-likelihood that is a lower bound is printed with "≥".
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from probsnn.compare.cache import write_atomic
from probsnn.compare.metrics import LABELS, METRICS, format_summary, summarise, task_metrics

_DECIMALS = {metric.key: metric.decimals for metric in METRICS}


class Report:
    """Everything a comparison produced (see :func:`probsnn.compare.compare`).

    Attributes:
        tasks, criteria: the :class:`~probsnn.compare.tasks.Task` and criterion objects run.
        seeds: the seeds. quick: whether ``--quick`` settings were used.
        cells: one dict per (task, criterion, seed) run or read from the cache.
        seconds: wall time of the run. out: the report folder or None.
    """

    def __init__(self, tasks, criteria, seeds, quick, cells, seconds, out=None):
        self.tasks = tasks
        self.criteria = criteria
        self.seeds = seeds
        self.quick = quick
        self.cells = cells
        self.seconds = seconds
        self.out = out

    # -- rows --------------------------------------------------------------------------------
    @property
    def metric_keys(self) -> tuple[str, ...]:
        """The metric columns used by the tasks of the report, in table order."""
        used = {key for task in self.tasks for key in task_metrics(task.kind)}
        return tuple(metric.key for metric in METRICS if metric.key in used)

    def cells_of(self, task: str, criterion: str, status: str = "ok") -> list[dict]:
        return [
            cell
            for cell in self.cells
            if cell["task"] == task and cell["criterion"] == criterion and cell["status"] == status
        ]

    def rows(self) -> list[dict]:
        """One dict per (task, criterion): status, note and the metric summaries."""
        rows = []
        for task in self.tasks:
            for criterion in self.criteria:
                row = {"task": task.name, "criterion": criterion.name, "summaries": {}}
                reason = criterion.applies(task)
                ok = self.cells_of(task.name, criterion.name)
                failed = self.cells_of(task.name, criterion.name, "failed")
                if reason is not None:
                    row.update(status="n/a", note=f"n/a: {reason}")
                elif failed and not ok:
                    row.update(status="failed", note=f"failed: {failed[0]['error']}")
                elif not ok:
                    row.update(status="not run", note="not run")
                else:
                    note = ""
                    if failed:
                        note = f"{len(failed)}/{len(failed) + len(ok)} seeds failed: "
                        note += failed[0]["error"]
                    row.update(status="ok", note=note)
                    for key in task_metrics(task.kind):
                        values = [cell["metrics"].get(key, {"n/a": "not reported"}) for cell in ok]
                        row["summaries"][key] = summarise(values)
                rows.append(row)
        return rows

    def _cell_text(self, row, key, criterion) -> str:
        summary = row["summaries"].get(key)
        if summary is None:
            return ""
        text = format_summary(summary, _DECIMALS[key])
        bound = key == "log_lik" and criterion.log_lik not in (None, "exact")
        return f"≥ {text}" if bound and summary.mean is not None else text

    def table_rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of strings (metric columns, locality, notes)."""
        local = {c.name: c.local.split(":")[0] for c in self.criteria}
        by_name = {c.name: c for c in self.criteria}
        header = ["task", "criterion", *(LABELS[k] for k in self.metric_keys), "local", "notes"]
        body = []
        for row in self.rows():
            criterion = by_name[row["criterion"]]
            metrics = [self._cell_text(row, key, criterion) for key in self.metric_keys]
            if row["status"] != "ok":
                metrics = ["" for _ in metrics]
            body.append(
                [row["task"], row["criterion"], *metrics, local[row["criterion"]], row["note"]]
            )
        return header, body

    # -- text formats ------------------------------------------------------------------------
    def table(self) -> str:
        """The results table as aligned plain text."""
        header, body = self.table_rows()
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
            for r in [header, *body]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)

    def setup(self) -> str:
        """One paragraph: seeds, settings and tasks with their targets."""
        tasks = "; ".join(
            f"{t.name} ({t.title}; target {t.headline} >= {t.target}, chance {t.chance:.3g})"
            for t in self.tasks
        )
        mode = "--quick settings" if self.quick else "full settings"
        cached = sum(bool(cell.get("cached")) for cell in self.cells)
        reused = f" ({cached} of {len(self.cells)} cells read from the cache)" if cached else ""
        return (
            f"{len(self.seeds)} seeds ({self.seeds[0]}..{self.seeds[-1]}), {mode}, mean ± 95 % "
            f"CI over seeds; run in {self.seconds:.0f} s{reused}. Tasks: {tasks}."
        )

    def legend(self) -> list[str]:
        """Definitions of the columns and of each criterion (locality, log-likelihood)."""
        lines = [
            f"- **{LABELS[k]}**: {m.definition}."
            for k in self.metric_keys
            for m in METRICS
            if m.key == k
        ]
        lines.append(
            "- **local**: whether the weight update uses only pre- and postsynaptic activity and "
            "at most a broadcast global signal."
        )
        for criterion in self.criteria:
            log_lik = f"; log-likelihood: {criterion.log_lik}" if criterion.log_lik else ""
            lines.append(
                f"- `{criterion.name}`: {criterion.title}; local: {criterion.local}{log_lik}."
            )
        return lines

    def markdown(self) -> str:
        """The results table in Markdown, with the setup and the legend."""
        header, body = self.table_rows()
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cell.replace("|", "/") for cell in r) + " |" for r in body),
        ]
        return "\n".join([self.setup(), "", *lines, "", *self.legend(), ""])

    def to_dict(self) -> dict:
        """Everything as JSON-able data: setup, rows with summaries, and the cells."""
        rows = []
        for row in self.rows():
            summaries = {key: s._asdict() for key, s in row["summaries"].items()}
            rows.append({**row, "summaries": summaries})
        return {
            "seeds": self.seeds,
            "quick": self.quick,
            "seconds": self.seconds,
            "tasks": {
                t.name: {
                    "kind": t.kind,
                    "title": t.title,
                    "headline": t.headline,
                    "target": t.target,
                    "chance": t.chance,
                }
                for t in self.tasks
            },
            "criteria": {
                c.name: {"title": c.title, "local": c.local, "log_lik": c.log_lik}
                for c in self.criteria
            },
            "rows": rows,
            "cells": self.cells,
        }

    def csv(self) -> str:
        """One line per row; for each metric its mean, CI half-width, seeds counted and note."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        columns = [f"{k}_{part}" for k in self.metric_keys for part in ("mean", "ci", "n", "note")]
        writer.writerow(["task", "criterion", "status", "note", *columns])
        for row in self.rows():
            values = []
            for key in self.metric_keys:
                summary = row["summaries"].get(key)
                if summary is None:
                    values += ["", "", "", ""]
                else:
                    values += [
                        "" if summary.mean is None else summary.mean,
                        "" if summary.half_width is None else summary.half_width,
                        summary.n,
                        summary.note,
                    ]
            writer.writerow([row["task"], row["criterion"], row["status"], row["note"], *values])
        return buffer.getvalue()

    # -- figures -----------------------------------------------------------------------------
    def figures(self) -> dict:
        """Matplotlib figures by file stem: ``accuracy_vs_spikes`` (classification tasks),
        ``return_vs_spikes`` (control tasks), ``learning_curves`` and ``rasters_<task>``."""
        from probsnn.compare import figures

        result = {"learning_curves": figures.learning_curves(self)}
        if any(t.kind == "classification" for t in self.tasks):
            result["accuracy_vs_spikes"] = figures.accuracy_vs_spikes(self)
        if any(t.kind == "control" for t in self.tasks):
            result["return_vs_spikes"] = figures.return_vs_spikes(self)
        for task in self.tasks:
            if any(cell.get("raster") for cell in self.cells if cell["task"] == task.name):
                result[f"rasters_{task.name}"] = figures.rasters(self, task)
        return result

    def write(self, out=None) -> dict[str, Path]:
        """Write ``results.md``, ``results.json``, ``results.csv`` and the figures (PNG) to
        ``out`` (default: the folder the cells were cached in), each atomically (a temporary
        file, then a rename: an interrupted write leaves the previous file). Returns the paths
        by name.

        Raises:
            ValueError: no folder given here or to :func:`compare`.
        """
        import matplotlib.pyplot as plt

        out = Path(out) if out is not None else self.out
        if out is None:
            raise ValueError("out: give a folder to write the report to")
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "markdown": out / "results.md",
            "json": out / "results.json",
            "csv": out / "results.csv",
        }
        write_atomic(paths["markdown"], self.markdown())
        write_atomic(paths["json"], json.dumps(self.to_dict(), indent=1, default=_json_default))
        write_atomic(paths["csv"], self.csv())
        (out / "figures").mkdir(exist_ok=True)
        for stem, figure in self.figures().items():
            paths[stem] = out / "figures" / f"{stem}.png"
            buffer = io.BytesIO()
            figure.savefig(buffer, dpi=110, format="png")
            plt.close(figure)
            write_atomic(paths[stem], buffer.getvalue())
        return paths


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
