"""The comparison task ``yinyang``: published splits, encodings, three classes in the criteria."""

import numpy as np
import pytest

from probsnn.compare import TASKS, compare
from probsnn.compare.tasks import Classification, SelectionError
from probsnn.data import load_yinyang

TINY = {"n_train": 60, "n_test": 40, "n_steps": 10, "copies": 3}


def test_the_task_is_registered_with_the_published_sizes_and_chance():
    task = TASKS["yinyang"]
    assert task.kind == "classification" and task.headline == "accuracy"
    assert task.chance == pytest.approx(1 / 3) and 1 / 3 < task.target < 1
    config = task.config()
    assert (config["n_train"], config["n_test"]) == (5000, 1000)
    quick = task.config(quick=True)
    assert quick["n_train"] < 5000 and quick["n_test"] < 1000


@pytest.mark.parametrize("seed", [0, 2])
def test_seed_s_draws_the_points_of_generator_seeds_42_plus_3s_and_40_plus_3s(seed):
    task = TASKS["yinyang"]
    config = task.config(quick=True, overrides=TINY)
    data = task.prepare(config, seed)
    assert isinstance(data, Classification) and data.n_classes == 3
    np.testing.assert_array_equal(data.train_labels, load_yinyang(60, seed=42 + 3 * seed)[1])
    np.testing.assert_array_equal(data.test_labels, load_yinyang(40, seed=40 + 3 * seed)[1])
    assert data.train_spikes.shape == (60, 10, 4 * 3) and data.train_spikes.dtype == np.uint8
    assert data.test_targets.shape == (40, 10, 3 * config["label_population"])


def test_rate_code_gives_each_copy_an_independent_train_of_the_features_rate():
    task = TASKS["yinyang"]
    config = task.config(overrides={"n_train": 400, "n_test": 100, "copies": 5})
    data = task.prepare(config, 0)
    features = np.concatenate(
        [load_yinyang(400, seed=42)[0], load_yinyang(100, seed=40)[0]]
    ).astype(np.float64)
    spikes = np.concatenate([data.train_spikes, data.test_spikes])
    p = 1 - np.exp(-config["max_rate"] * np.repeat(features, 5, axis=1) * config["dt"])
    counts = spikes.sum(axis=1)
    # the mean count per input over all examples: binomial sum, 4 standard deviations
    expected = config["n_steps"] * p.sum(axis=0)
    sd = np.sqrt(config["n_steps"] * (p * (1 - p)).sum(axis=0))
    assert np.all(np.abs(counts.sum(axis=0) - expected) < 4 * sd)
    assert not np.array_equal(spikes[..., 0], spikes[..., 1])  # two copies of x differ


def test_latency_code_gives_one_spike_per_input_at_the_linear_latency():
    task = TASKS["yinyang"]
    config = task.config(quick=True, overrides={**TINY, "encoding": "latency", "copies": 1})
    data = task.prepare(config, 1)
    features = load_yinyang(60, seed=45)[0]
    assert np.all(data.train_spikes.sum(axis=1) == 1)
    bins = np.round((1 - features) * (config["n_steps"] - 1))
    np.testing.assert_array_equal(data.train_spikes.argmax(axis=1), bins)


@pytest.mark.parametrize(
    ("override", "error", "name"),
    [
        ({"encoding": "phase"}, ValueError, "encoding"),
        ({"copies": 0}, ValueError, "copies"),
        ({"copies": 2.0}, TypeError, "copies"),
    ],
)
def test_bad_settings_are_named(override, error, name):
    task = TASKS["yinyang"]
    with pytest.raises(error, match=name):
        task.prepare(task.config(quick=True, overrides={**TINY, **override}), 0)
    with pytest.raises(SelectionError, match="valid settings"):
        task.config(overrides={"pool": 2})


@pytest.mark.slow
def test_count_and_label_population_criteria_classify_three_classes(tmp_path):
    report = compare(
        ["yinyang"],
        ["ml", "stdp"],
        quick=True,
        out=tmp_path,
        n_seeds=1,
        progress=False,
        task_config={"yinyang": TINY},
        criterion_config={"ml": {"max_iter": 3}, "stdp": {"epochs": 2, "n_features": 8}},
    )
    for cell in report.cells:
        assert cell["status"] == "ok", cell.get("error")
        assert 0 <= cell["metrics"]["accuracy"] <= 1
