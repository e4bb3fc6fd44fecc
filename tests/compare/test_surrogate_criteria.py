"""The comparison adapters of surrogate-gradient BPTT and e-prop
(probsnn/compare/criteria/surrogate.py), run cell by cell as the comparison runs them."""

import numpy as np
import pytest

from probsnn.compare import TASKS
from probsnn.compare.criteria.surrogate import EProp, Surrogate
from probsnn.compare.runner import run_cell

TINY_TASKS = {
    "digits": {"n_train": 200, "n_test": 100, "n_steps": 10},
    "yinyang": {"n_train": 300, "n_test": 150, "n_steps": 10},
}
TINY = {"epochs": 6, "hidden": 32}


def run(criterion, task_name, overrides, tmp_path):
    task = TASKS[task_name]
    task_config = task.config(quick=True, overrides=TINY_TASKS[task_name])
    config = criterion.config(task, quick=True, overrides=overrides)
    data = task.prepare(task_config, 0)
    cell = run_cell(task, criterion, task_config, config, 0, data, tmp_path / criterion.name)
    assert cell["status"] == "ok", cell.get("error")
    return task, cell


@pytest.mark.parametrize(
    "criterion, overrides",
    [(Surrogate(), TINY), (EProp(), TINY), (EProp(), {**TINY, "feedback": "random", "epochs": 12})],
    ids=["surrogate", "eprop", "eprop-random"],
)
def test_adapters_learn_digits_above_chance_and_report_their_metrics(
    criterion, overrides, tmp_path
):
    task, cell = run(criterion, "digits", overrides, tmp_path)
    metrics = cell["metrics"]
    assert metrics["accuracy"] > 3 * task.chance
    assert metrics["log_lik"] == {"n/a": "deterministic spikes: no likelihood"}
    assert 0 < metrics["spikes"] < 32 * 10  # hidden spikes per sample, at most one per bin
    assert cell["raster"]["shape"] == [10, 32]
    assert len(cell["raster"]["times"]) > 0
    assert cell["curve"]["values"][-1] == pytest.approx(metrics["accuracy"])
    assert len(cell["curve"]["updates"]) == overrides["epochs"]


def test_surrogate_learns_yinyang_three_classes(tmp_path):
    task, cell = run(Surrogate(), "yinyang", TINY, tmp_path)
    assert task.chance == pytest.approx(1 / 3)
    assert cell["metrics"]["accuracy"] > task.chance + 0.15


def test_applicability_and_settings():
    for criterion in (Surrogate(), EProp()):
        for name in ("digits", "mnist", "yinyang"):
            assert criterion.applies(TASKS[name]) is None
        assert "no spike probabilities" in criterion.applies(TASKS["pattern"])
        assert "no likelihood" in criterion.applies(TASKS["grasshopper"])
        digits = TASKS["digits"]
        assert set(criterion.config(digits, quick=True)) == set(criterion.config(digits))
    assert EProp().config(TASKS["digits"])["feedback"] == "symmetric"
    assert np.isclose(Surrogate().config(TASKS["digits"])["learning_rate"], 3e-3)
