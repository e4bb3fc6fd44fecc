"""The one learning interface (docs/learning.md), checked across every family.

Each family contributes cases in ``tests/inference/cases_<family>.py``:

* ``RULES``: :class:`~cases.RuleCase`, run in float64 — a gradient estimator, signals, params
  and the reference gradient of its documented loss (``jax.grad`` or exact enumeration).
  Checked: the estimate matches the reference with the same sign, and
  ``optax.chain(rule, optax.adam(lr))`` moves the parameters against the reference gradient.
* ``TRAINERS``: :class:`~cases.TrainerCase` — a trainer on a tiny problem. Checked: ``init`` /
  ``step(key, state, batch)`` give a State with ``params`` and an Info with a finite scalar
  ``loss``, and :func:`probsnn.inference.fit` runs with a callback that stops it.

A last test checks that every public gradient estimator and trainer of ``probsnn.inference`` has
a case, so a new criterion cannot land without joining the interface.
"""

from __future__ import annotations

import importlib
import pkgutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cases import RuleCase, TrainerCase

import probsnn.inference as inference

CASE_MODULES = [
    importlib.import_module(f"cases_{family}")
    for family in ("likelihood", "latent", "information", "energy", "plasticity")
]
RULES: list[RuleCase] = [case for module in CASE_MODULES for case in module.RULES]
TRAINERS: list[TrainerCase] = [case for module in CASE_MODULES for case in module.TRAINERS]


def _vector(tree):
    return np.concatenate(
        [np.ravel(np.asarray(leaf, np.float64)) for leaf in jax.tree.leaves(tree)]
    )


@pytest.mark.parametrize("case", RULES, ids=lambda case: case.name)
def test_rule_estimates_the_gradient_of_its_loss(case: RuleCase, x64):
    made = case.make()
    rule, params, signals, reference = made.rule, made.params, made.signals, made.reference
    if made.sample_axes is not None:
        spikes = np.shape(made.sample_axes[0])
        assert spikes == made.sample_axes[1], f"{case.name}: samples must be (B, K, T, N)"
    grads, _ = rule.update(signals, rule.init(params), params)
    estimate, exact = _vector(grads), _vector(reference)
    assert estimate.shape == exact.shape
    assert np.all(np.isfinite(estimate))
    if made.exact:
        np.testing.assert_allclose(estimate, exact, rtol=made.rtol, atol=made.atol)
    else:
        cosine = estimate @ exact / (np.linalg.norm(estimate) * np.linalg.norm(exact))
        assert cosine > made.min_cosine, f"{case.name}: cosine {cosine:.3f} with the reference"


@pytest.mark.parametrize("case", RULES, ids=lambda case: case.name)
def test_rule_chains_with_adam_and_descends(case: RuleCase, x64):
    made = case.make()
    chained = optax.chain(made.rule, optax.adam(1e-2))
    updates, _ = chained.update(made.signals, chained.init(made.params), made.params)
    step, exact = _vector(updates), _vector(made.reference)
    # Adam's first step is −lr·sign(ĝ) per coordinate: it must oppose the reference gradient.
    assert step @ exact < 0, f"{case.name}: optax.chain(rule, adam) ascends its loss"


@pytest.mark.parametrize("case", TRAINERS, ids=lambda case: case.name)
def test_trainer_protocol_and_fit_loop(case: TrainerCase):
    made = case.make()
    trainer = made.trainer
    state = trainer.init(made.params)
    assert hasattr(state, "params") and hasattr(state, "_fields")
    batch = (
        made.data
        if made.batch_size is None
        else jax.tree.map(lambda leaf: leaf[: made.batch_size], made.data)
    )
    key = jax.random.key(0)
    new_state, info = trainer.step(key, state, batch)
    assert hasattr(info, "_fields") and "loss" in info._fields
    assert jnp.ndim(info.loss) == 0 and np.isfinite(float(info.loss))
    assert jax.tree.structure(new_state.params) == jax.tree.structure(made.params)
    # the key is an argument: the same key and state give the same step
    again, _ = trainer.step(key, state, batch)
    np.testing.assert_array_equal(_vector(again.params), _vector(new_state.params))

    seen = []

    def callback(epoch, state, info):
        seen.append((epoch, info["loss"]))
        return epoch == 1  # stop after the second epoch

    result = inference.fit(
        trainer,
        made.params,
        made.data,
        key=jax.random.key(1),
        epochs=5,
        batch_size=made.batch_size,
        callback=callback,
        progress=False,
    )
    assert [epoch for epoch, _ in seen] == [0, 1]
    assert len(result.history["loss"]) == 2 and np.all(np.isfinite(result.history["loss"]))
    assert result.params is result.state.params


@pytest.mark.parametrize("case", TRAINERS, ids=lambda case: case.name)
def test_trainer_resumes_from_a_checkpoint_bit_for_bit(case: TrainerCase, tmp_path):
    """1 epoch, checkpointed, then resumed to 3 epochs equals 3 epochs in one run: same State
    (optimiser included), same key stream, same history."""
    made = case.make()
    run = dict(key=jax.random.key(7), batch_size=made.batch_size, progress=False)
    whole = inference.fit(made.trainer, made.params, made.data, epochs=3, **run)
    path = tmp_path / "run.npz"
    inference.fit(made.trainer, made.params, made.data, epochs=1, checkpoint=path, **run)
    epochs_run = []
    resumed = inference.fit(
        made.trainer,
        made.params,
        made.data,
        epochs=3,
        resume=path,
        callback=lambda epoch, state, info: epochs_run.append(epoch),
        **run,
    )
    assert epochs_run == [1, 2]  # the resumed run trains only the two missing epochs
    for got, want in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    for name, values in whole.history.items():
        if name != "seconds":
            np.testing.assert_array_equal(resumed.history[name], values, err_msg=name)


def _public(predicate):
    return sorted(name for name in inference.__all__ if predicate(name))


def test_every_rule_and_trainer_has_a_case():
    rules = {case.name.split("[")[0] for case in RULES}
    trainers = {case.name.split("[")[0] for case in TRAINERS}
    gradient_rules = [
        name for name in _public(lambda n: n.endswith("_rule")) if name not in PLASTICITY_RULES
    ]
    assert set(gradient_rules) <= rules, set(gradient_rules) - rules
    assert set(_public(lambda n: n.endswith("_trainer"))) <= trainers


#: Rules that return terminal weight deltas (docs/learning.md), not loss gradients.
PLASTICITY_RULES = {"pair_stdp", "triplet_stdp", "reward_stdp", "sum_of_products"}


def test_families_are_packages():
    families = {m.name for m in pkgutil.iter_modules(inference.__path__) if m.ispkg}
    assert {"likelihood", "latent", "information", "bayes", "energy", "plasticity"} <= families
