"""The control task kind of the comparison (probsnn/compare/criteria/control.py): environments as
tasks, the policy learners as criteria, the stop-when-solved loop, the metrics and the report."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("gymnax")

from probsnn import io, rl
from probsnn.compare import CRITERIA, TASKS, SelectionError, compare, runner
from probsnn.compare.criteria.base import Curve
from probsnn.compare.criteria.control import (
    NOT_CONTROL,
    NOT_DATA,
    ControlCriterion,
    train_to_threshold,
)
from probsnn.compare.metrics import confidence_interval
from probsnn.compare.tasks import Control
from probsnn.inference import Trainer

TINY_TASK = {"cartpole": {"max_episodes": 16, "eval_episodes": 4}}
TINY_CRITERION = {"policy-gradient": {"n_hidden": 4, "n_episodes": 4}}


# ---------------------------------------------------------------------------------------------
# the loop: stop when a training batch reaches the threshold and the evaluation confirms it


class _State(NamedTuple):
    params: jax.Array  # the number of steps taken


class _Info(NamedTuple):
    loss: jax.Array
    mean_return: jax.Array


def scripted_trainer(batch_returns):
    """A trainer whose step k reports the training-batch mean return ``batch_returns[k]``."""

    def step(key, state, batch=None):
        k = int(state.params)
        info = _Info(jnp.float32(0.0), jnp.float32(batch_returns[k]))
        return _State(state.params + 1), info

    return Trainer(_State, step)


def test_training_stops_at_the_first_evaluation_that_reaches_the_threshold():
    """50 steps of 4 episodes (budget 200), curve checkpoints every 3 steps: the batches of steps
    4 and 8 reach the threshold 10 and trigger an evaluation; the policy evaluates at 20 from
    step 8 on (0 before), so training stops after step 8, at 32 episodes."""
    batch_returns = np.zeros(50)
    batch_returns[[3, 7]] = 12.0
    curve = Curve(lambda steps: 20.0 if steps >= 8 else 0.0)
    params = train_to_threshold(
        curve,
        scripted_trainer(batch_returns),
        jnp.float32(0.0),
        key=jax.random.key(0),
        threshold=10.0,
        max_episodes=203,
        episodes_per_step=4,
    )
    assert int(params) == 8
    assert curve.updates == [12, 16, 24, 32]  # episodes: steps 3, 4 (batch), 6, 8 (batch)
    assert curve.values == [0.0, 0.0, 0.0, 20.0]
    assert curve.first_reaching(10.0) == (32, curve.seconds[-1])


def test_an_unsolved_policy_trains_the_whole_budget_and_a_budget_below_one_step_raises():
    curve = Curve(lambda steps: 0.0)
    params = train_to_threshold(
        curve,
        scripted_trainer(np.zeros(50)),
        jnp.float32(0.0),
        key=jax.random.key(0),
        threshold=10.0,
        max_episodes=203,
        episodes_per_step=4,
    )
    assert int(params) == 50  # ⌊203 / 4⌋ steps, never more episodes than the budget
    assert curve.updates == [12 * k for k in range(1, 17)] + [200]
    assert curve.first_reaching(10.0) is None
    with pytest.raises(ValueError, match="max_episodes=3 is below the 4 episodes of one"):
        train_to_threshold(
            Curve(lambda steps: 0.0),
            scripted_trainer(np.zeros(1)),
            jnp.float32(0.0),
            key=jax.random.key(0),
            threshold=10.0,
            max_episodes=3,
            episodes_per_step=4,
        )


# ---------------------------------------------------------------------------------------------
# tasks, applicability, settings, --quick


def test_control_tasks_are_their_environments_with_the_reward_threshold_as_target():
    for name in ("cartpole", "acrobot"):
        task = TASKS[name]
        config = task.config()
        first, other = (task.prepare(config, seed) for seed in (0, 1))
        assert isinstance(first, Control) and first == other  # the same for every seed
        assert first.environment == rl.make(name)
        assert task.target == first.environment.reward_threshold
        assert (first.max_episodes, first.eval_episodes) == (config["max_episodes"], 100)
        assert task.config(quick=True)["max_episodes"] < config["max_episodes"]
    with pytest.raises(SelectionError, match=r"unknown setting\(s\) \['episodes'\]"):
        TASKS["cartpole"].config(overrides={"episodes": 3})


def test_each_criterion_applies_to_control_tasks_or_to_data_and_says_why_not():
    for criterion in CRITERIA.values():
        control = isinstance(criterion, ControlCriterion)
        for task in TASKS.values():
            reason = criterion.applies(task)
            if control:
                assert reason == (None if task.kind == "control" else NOT_DATA)
            elif task.kind == "control":
                assert reason == NOT_CONTROL
    with pytest.raises(
        SelectionError, match=r"tasks for 'policy-gradient': \['acrobot', 'cartpole'"
    ):
        compare(["digits"], ["policy-gradient"], progress=False)
    with pytest.raises(SelectionError, match=r"criteria for these tasks: \['actor-critic'"):
        compare(["cartpole"], ["ml"], progress=False)


def test_settings_follow_the_task_and_quick_runs_cartpole_with_several_criteria():
    criterion = CRITERIA["policy-gradient"]
    cartpole = criterion.config(TASKS["cartpole"])
    acrobot = criterion.config(TASKS["acrobot"], quick=True)
    assert (cartpole["n_episodes"], cartpole["gamma"]) == (8, 1.0)
    assert (acrobot["n_episodes"], acrobot["gamma"]) == (32, 0.99)
    assert set(cartpole) == set(acrobot)
    tasks, criteria, _ = runner.select(quick=True)
    assert "cartpole" in [task.name for task in tasks]
    on_cartpole = [c.name for c in criteria if c.applies(TASKS["cartpole"]) is None]
    assert "policy-gradient" in on_cartpole and len(on_cartpole) >= 2
    assert {"cartpole", "acrobot"} <= set(runner.DEFAULT_TASKS)


# ---------------------------------------------------------------------------------------------
# a tiny comparison end to end: metrics with CIs over seeds, the table, the figures, the cache


def test_a_tiny_control_comparison_reports_returns_and_spikes_with_intervals(tmp_path):
    """Two seeds of the spiking policy gradient for 4 steps of 4 episodes, 4 evaluation episodes:
    the metrics are recomputed from the saved models, the table has the control columns and
    confidence intervals, and the cells are cached."""
    options = dict(
        quick=True,
        n_seeds=2,
        out=tmp_path,
        task_config=TINY_TASK,
        criterion_config=TINY_CRITERION,
        progress=False,
    )
    report = compare(["cartpole", "digits"], ["policy-gradient"], **options)
    assert [c["status"] for c in report.cells] == ["ok"] * 2, [c.get("error") for c in report.cells]
    environment = rl.make("cartpole")
    criterion = CRITERIA["policy-gradient"]
    config = criterion.config(TASKS["cartpole"], True, TINY_CRITERION["policy-gradient"])
    policy = criterion.policy(environment, config)
    for cell in report.cells:
        assert cell["curve"]["updates"] == [4, 8, 12, 16]  # a checkpoint per step of 4 episodes
        metrics = cell["metrics"]
        assert metrics["episodes_to_target"] is None and metrics["seconds_to_target"] is None
        # the metrics are those of 4 evaluation episodes of the saved model, recomputed here
        model, _ = io.load_tree(
            next(tmp_path.rglob(f"seed{cell['seed']}-{cell['hash']}.work")) / "model.npz",
            policy.init_params(jax.random.key(0)),
            kind="compare-model",
        )
        evaluate_key = runner.cell_keys(cell["seed"], "cartpole", "policy-gradient")[2]
        trajectory = rl.rollout(policy, model, environment, evaluate_key, 4)
        alive = np.asarray(trajectory.alive)
        assert metrics["return"] == pytest.approx(alive.sum(-1).mean())  # +1 per step alive
        spikes = np.asarray(trajectory.records.spikes, np.int64).sum((-1, -2))
        assert metrics["spikes_per_step"] == pytest.approx((spikes * alive).sum() / alive.sum())
        assert 0 < metrics["spikes_per_step"] <= 4 * 12  # M bins x (4 hidden + 8 outputs)
        steps = min(50, int(alive[0].sum()))
        assert cell["raster"]["shape"] == [4 * steps, 12]

    rows = {(row["task"], row["criterion"]): row for row in report.rows()}
    assert rows[("digits", "policy-gradient")]["note"] == f"n/a: {NOT_DATA}"
    summaries = rows[("cartpole", "policy-gradient")]["summaries"]
    mean, half_width = confidence_interval([c["metrics"]["return"] for c in report.cells])
    assert (summaries["return"].mean, summaries["return"].half_width) == (mean, half_width)
    assert summaries["episodes_to_target"].note == "not reached"
    header, body = report.table_rows()
    for label in ("return", "spikes/step", "episodes to target", "s to target", "accuracy"):
        assert label in header
    assert "updates to target" in header  # digits' column, blank in the control rows
    assert body[0][header.index("return")] == f"{mean:.1f} ± {half_width:.1f}"
    paths = report.write()
    for stem in ("return_vs_spikes", "learning_curves", "rasters_cartpole"):
        assert paths[stem].stat().st_size > 1000
    again = compare(["cartpole"], ["policy-gradient"], **options)
    assert all(cell["cached"] for cell in again.cells)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["policy-gradient", "mlp-policy-gradient"])
def test_policy_gradient_solves_cartpole_within_the_budget(name):
    """The spiking policy (seed 0: ~640 episodes) and the MLP (~190) reach an evaluation return
    of 475, and training stops at the checkpoint that confirmed it; the MLP has no spikes."""
    task, criterion = TASKS["cartpole"], CRITERIA[name]
    task_config, config = task.config(), criterion.config(task)
    cell = runner.run_cell(task, criterion, task_config, config, 0, task.prepare(task_config, 0))
    assert cell["status"] == "ok", cell.get("error")
    episodes = cell["metrics"]["episodes_to_target"]
    assert episodes is not None and episodes <= task_config["max_episodes"]
    assert cell["curve"]["updates"][-1] == episodes and cell["curve"]["values"][-1] >= 475
    if name == "mlp-policy-gradient":
        assert cell["metrics"]["spikes_per_step"] == {"n/a": "a non-spiking network"}
        assert cell["raster"] is None
