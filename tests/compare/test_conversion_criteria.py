"""The ANN → SNN conversion criteria of the comparison (probsnn/compare/criteria/conversion.py):
tiny runs through :func:`probsnn.compare.compare`, a three-class task, and their reasons for the
tasks they do not handle."""

import jax
import numpy as np
import pytest

from probsnn import io
from probsnn.compare import TASKS, compare
from probsnn.compare.criteria.base import Curve
from probsnn.compare.criteria.conversion import BernoulliConversion, Conversion
from probsnn.compare.criteria.energy import count_rates
from probsnn.compare.tasks import Classification, Task
from probsnn.inference.deterministic import conversion as cv

TINY_DIGITS = {"digits": {"n_train": 60, "n_test": 40, "n_steps": 10}}
TINY = {
    "conversion": {"epochs": 3, "hidden": 8, "batch_size": 20},
    "conversion-bernoulli": {
        "epochs": 3,
        "hidden": 8,
        "batch_size": 20,
        "finetune_epochs": 2,
        "n_samples": 2,
    },
}


def tiny(criterion):
    """The criterion with its quick settings shrunk to TINY."""
    criterion.quick = {"classification": TINY[criterion.name]}
    return criterion


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    out = tmp_path_factory.mktemp("conversion")
    report = compare(
        ["digits"],
        [tiny(Conversion()), tiny(BernoulliConversion())],
        quick=True,
        n_seeds=1,
        out=out,
        task_config=TINY_DIGITS,
        progress=False,
    )
    return {cell["criterion"]: cell for cell in report.cells}, out


@pytest.mark.parametrize("name", ["conversion", "conversion-bernoulli"])
def test_runs_on_digits_with_every_classification_metric(cells, name):
    by_name, out = cells
    cell = by_name[name]
    assert cell["status"] == "ok", cell.get("error")
    metrics = cell["metrics"]
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert "n/a" in metrics["log_lik"]
    assert metrics["spikes"] >= 0.0
    n_neurons = TINY[name]["hidden"] + 10
    assert cell["raster"]["shape"] == [TINY_DIGITS["digits"]["n_steps"], n_neurons]
    model_files = list(out.rglob("model.npz"))
    assert model_files and all(io.load_tree(f, kind="compare-model") for f in model_files)


def test_bernoulli_curve_runs_through_both_phases(cells):
    cell = cells[0]["conversion-bernoulli"]
    updates = cell["curve"]["updates"]
    per_epoch = 60 // TINY["conversion-bernoulli"]["batch_size"]
    n_epochs = (
        TINY["conversion-bernoulli"]["epochs"] + TINY["conversion-bernoulli"]["finetune_epochs"]
    )
    assert updates == [per_epoch * (e + 1) for e in range(n_epochs)]
    assert 0.0 <= cell["metrics"]["converted_accuracy"] <= 1.0


def test_evaluate_is_the_converted_networks_accuracy():
    """Conversion's accuracy equals converting and classifying by hand, on a three-class task."""
    rng = np.random.default_rng(0)
    n_train, n_test, n_steps, width = 90, 30, 12, 4
    labels = rng.integers(0, 3, n_train + n_test).astype(np.int32)
    centres = rng.random((3, width))
    rates = np.clip(centres[labels] + 0.1 * rng.normal(size=(len(labels), width)), 0, 1)
    spikes = (rng.random((len(labels), n_steps, width)) < rates[:, None]).astype(np.uint8)
    data = Classification(
        spikes[:n_train],
        labels[:n_train],
        spikes[n_train:],
        labels[n_train:],
        np.zeros((n_train, n_steps, 3), np.uint8),
        np.zeros((n_test, n_steps, 3), np.uint8),
        3,
        1,
        0.005,
    )
    task = Task("three", "classification", "three classes", "accuracy", 0.8, 1 / 3)
    criterion = Conversion()
    overrides = {**TINY["conversion"], "epochs": 40, "learning_rate": 1e-2}
    config = criterion.config(TASKS["digits"], quick=True, overrides=overrides)
    model = criterion.fit(task, data, config, jax.random.key(0), Curve(lambda m: 0.0))
    metrics = criterion.evaluate(task, model, data, config, jax.random.key(1))
    spec, params = cv.convert_to_if(model, count_rates(data.train_spikes))
    predicted = cv.classify(spec, params, data.test_spikes)
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == data.test_labels))
    assert metrics["accuracy"] > 0.8  # well-separated classes
    assert metrics["raster"].shape == (n_steps, config["hidden"] + 3)


@pytest.mark.parametrize("criterion", [Conversion(), BernoulliConversion()])
def test_not_applicable_to_patterns_and_recordings_with_reasons(criterion):
    assert criterion.applies(TASKS["digits"]) is None
    assert criterion.applies(TASKS["mnist"]) is None
    for name in ("pattern", "grasshopper"):
        reason = criterion.applies(TASKS[name])
        assert isinstance(reason, str) and "classifier" in reason


def test_quick_settings():
    digits = TASKS["digits"]
    assert Conversion().config(digits, quick=True)["epochs"] == 15
    quick = BernoulliConversion().config(digits, quick=True)
    assert (quick["epochs"], quick["finetune_epochs"]) == (15, 5)
