"""Fault tests of the comparison's cell cache (probsnn/compare/cache.py): atomic writes, checked
records, damaged or mismatched cells set aside and recomputed, failed cells retried."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from typing import ClassVar

import numpy as np
import pytest

from probsnn.compare import Criterion, NotApplicable, compare
from probsnn.compare import cache as cell_cache
from probsnn.compare.cache import CorruptCellWarning
from probsnn.compare.readout import fit_readout, predict_readout

TINY_DIGITS = {"digits": {"n_train": 60, "n_test": 40, "n_steps": 10}}


class CountReadout(Criterion):
    """A ridge read-out of the input spike counts (fast); counts its fits and raises in those
    numbered in ``fail_calls``."""

    title = "ridge read-out of input counts (cache test)"
    local = "no: least squares"
    not_applicable: ClassVar[dict] = {"pattern": "test", "recording": "test"}
    defaults: ClassVar[dict] = {"classification": {"l2": 1.0}}

    def __init__(self, name="counts", fail_calls=()):
        self.name = name
        self.fail_calls = fail_calls
        self.fits = 0

    def fit(self, task, data, config, key, curve):
        self.fits += 1
        curve.start()
        counts = data.train_spikes.sum(axis=1)
        weights = fit_readout(counts, data.train_labels, data.n_classes, config["l2"])
        curve.checkpoint(1, weights)
        if self.fits in self.fail_calls:
            raise RuntimeError("diverged")
        return weights

    def score(self, task, model, data, config, key):
        predictions = predict_readout(model, data.test_spikes.sum(axis=1))
        return float(np.mean(predictions == data.test_labels))

    def evaluate(self, task, model, data, config, key):
        return {
            "accuracy": self.score(task, model, data, config, key),
            "log_lik": NotApplicable("no likelihood"),
            "spikes": NotApplicable("no neurons"),
        }


def run(criterion, out, n_seeds=1, **options):
    return compare(
        ["digits"],
        [criterion],
        quick=True,
        out=out,
        n_seeds=n_seeds,
        task_config=TINY_DIGITS,
        progress=False,
        **options,
    )


def cell_files(out, name="counts"):
    return sorted((out / "cells" / "digits" / name).glob("seed*.json"))


def metrics_of(report):
    return [{k: v for k, v in c["metrics"].items() if "seconds" not in k} for c in report.cells]


def test_a_cell_record_carries_its_key_and_a_checksum_and_is_reused(tmp_path):
    criterion = CountReadout()
    first = run(criterion, tmp_path)
    (path,) = cell_files(tmp_path)
    record = json.loads(path.read_text())
    assert record["format"] == cell_cache.RECORD_FORMAT
    key = record["key"]
    assert (key["task"], key["criterion"], key["seed"]) == ("digits", "counts", 0)
    assert key["version"] and len(key["settings"]) == 16 and key["format"] == record["format"]
    assert record["checksum"] == cell_cache.checksum(record["cell"])
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCellWarning)
        again = run(criterion, tmp_path)
    assert criterion.fits == 1 and again.cells[0]["cached"]
    assert metrics_of(again) == metrics_of(first)


def _damaged(kind, text, other):
    """The bytes a damaged cell file holds, and the reason its warning must give."""
    record = json.loads(text)
    if kind == "empty":
        return b"", "empty file"
    if kind == "truncated":
        return text[: len(text) // 2].encode(), "not valid JSON"
    if kind == "garbage":
        return bytes(range(256)) * 4, "not valid JSON"
    if kind == "wrong content":
        return b'{"accuracy": 1.0}', "not a cell record"
    if kind == "a list":
        return b"[1, 2, 3]", "not a cell record"
    if kind == "older format":
        return json.dumps(record["cell"]).encode(), "a cell of an older probsnn"
    if kind == "renamed":  # another seed's file copied under this seed's name
        return other.encode(), r"made for another cell: seed 1 \(expected 0\)"
    if kind == "tampered":  # a hand-edited metric, checksum left as it was
        record["cell"]["metrics"]["accuracy"] = 1.0
        return json.dumps(record).encode(), "checksum mismatch"
    if kind == "other version":
        record["key"]["version"] = "0.0.1"
        return json.dumps(record).encode(), r"made for another cell: version '0\.0\.1' \(expected"
    if kind == "other format":
        record["format"] = 1
        return json.dumps(record).encode(), "record format 1, expected"
    raise ValueError(kind)


KINDS = [
    "empty",
    "truncated",
    "garbage",
    "wrong content",
    "a list",
    "older format",
    "renamed",
    "tampered",
    "other version",
    "other format",
]


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_or_mismatched_cell_is_reported_set_aside_and_recomputed(kind, tmp_path):
    criterion = CountReadout()
    first = run(criterion, tmp_path, n_seeds=2)
    seed0, seed1 = cell_files(tmp_path)
    assert seed0.name.startswith("seed0-") and seed1.name.startswith("seed1-")
    damaged, reason = _damaged(kind, seed0.read_text(), seed1.read_text())
    seed0.write_bytes(damaged)

    with pytest.warns(CorruptCellWarning, match=rf"{seed0.name}: {reason}.*moved aside") as caught:
        again = run(criterion, tmp_path, n_seeds=2)
    (warning,) = [w for w in caught if issubclass(w.category, CorruptCellWarning)]
    assert str(seed0) in str(warning.message)
    assert criterion.fits == 3  # seed 0 recomputed, seed 1 read from the cache
    assert [c["cached"] for c in again.cells] == [False, True]
    assert metrics_of(again) == metrics_of(first)  # the recomputed cell is the original one
    aside = seed0.with_name(seed0.name + ".corrupt")
    assert aside.read_bytes() == damaged
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCellWarning)
        third = run(criterion, tmp_path, n_seeds=2)
    assert criterion.fits == 3 and all(c["cached"] for c in third.cells)


def test_a_run_killed_while_writing_a_cell_leaves_the_old_cell_and_nothing_half_written(
    tmp_path,
):
    criterion = CountReadout()
    first = run(criterion, tmp_path)
    (path,) = cell_files(tmp_path)
    before = path.read_bytes()
    record = json.loads(before)
    # A process killed (SIGKILL) in the middle of writing the same cell: it has written its
    # temporary file and not renamed it yet.
    writer = textwrap.dedent(
        f"""
        import importlib.util, os, sys, time
        from pathlib import Path

        spec = importlib.util.spec_from_file_location("cell_cache", {cell_cache.__file__!r})
        cache = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cache)

        def stall(fd):
            print("writing", flush=True)
            time.sleep(60)

        os.fsync = stall
        record = {record!r}
        cell = dict(record["cell"], metrics={{"accuracy": 0.0}})
        cache.write_cell(Path({str(path)!r}), record["key"], cell)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", writer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "writing", process.stderr.read()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    leftovers = [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".{path.name}.")
    assert path.read_bytes() == before  # the old cell, whole
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCellWarning)
        again = run(criterion, tmp_path)
    assert criterion.fits == 1 and again.cells[0]["cached"]
    assert metrics_of(again) == metrics_of(first)


def test_a_leftover_temporary_file_is_not_read_as_a_cell(tmp_path):
    criterion = CountReadout()
    run(criterion, tmp_path)
    (path,) = cell_files(tmp_path)
    text = path.read_text()
    path.unlink()
    (path.parent / f".{path.name}.k1ll3d.tmp").write_text(text[: len(text) // 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCellWarning)
        again = run(criterion, tmp_path)
    assert criterion.fits == 2 and not again.cells[0]["cached"]
    assert json.loads(path.read_text())["checksum"]


def test_an_interrupted_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    criterion = CountReadout()
    run(criterion, tmp_path)
    (path,) = cell_files(tmp_path)
    before = path.read_bytes()

    def interrupted(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(cell_cache.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(criterion, tmp_path, fresh=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix != ".work") == [path.name]
    work = path.with_suffix(".work")  # the cell's checkpoints: nothing half-written there either
    assert not [p.name for p in work.rglob(".*")]


def test_failed_cells_are_retried_on_the_next_run(tmp_path):
    flaky = CountReadout("flaky", fail_calls=(1,))
    first = run(flaky, tmp_path)
    assert first.cells[0]["status"] == "failed" and not cell_files(tmp_path, "flaky")
    second = run(flaky, tmp_path)
    assert flaky.fits == 2 and second.cells[0]["status"] == "ok"
    third = run(flaky, tmp_path)
    assert flaky.fits == 2 and third.cells[0]["cached"]


def test_a_recorded_failed_cell_is_run_again_not_reused(tmp_path):
    criterion = CountReadout()
    run(criterion, tmp_path)
    (path,) = cell_files(tmp_path)
    record = json.loads(path.read_text())
    failed = {key: record["cell"][key] for key in ("task", "criterion", "seed", "hash", "config")}
    failed.update(status="failed", error="RuntimeError: diverged")
    cell_cache.write_cell(path, record["key"], failed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCellWarning)
        again = run(criterion, tmp_path)
    assert criterion.fits == 2 and again.cells[0]["status"] == "ok"
    assert json.loads(path.read_text())["cell"]["status"] == "ok"


def test_cell_files_and_reports_get_the_usual_permissions(tmp_path):
    criterion = CountReadout()
    report = run(criterion, tmp_path)
    report.write()
    (path,) = cell_files(tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    for written in (path, tmp_path / "results.md", tmp_path / "figures" / "learning_curves.png"):
        assert written.stat().st_mode & 0o777 == 0o666 & ~mask, written
