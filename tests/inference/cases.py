"""Case types of the learning-interface test (``test_interface.py``); the cases themselves live
in ``cases_<family>.py``, one module per family of ``probsnn.inference``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import optax


class MadeRule(NamedTuple):
    """A gradient estimator ready to check.

    Attributes:
        rule: the ``optax.GradientTransformation``.
        params: parameters at which it is evaluated.
        signals: what ``rule.update`` reads.
        reference: the gradient of the rule's documented loss at ``params`` (``jax.grad``, or
            exact enumeration), a pytree like ``params``.
        exact: True when the estimate must equal the reference (deterministic rules, or
            stochastic ones whose expectation is enumerated in ``signals``); False compares
            directions (cosine > ``min_cosine``) for a Monte-Carlo estimate.
        sample_axes: ``(array, (B, K, T, N))`` for rules that read samples: the sampled
            spikes and the shape they must have (B, K, T, N distinct sizes), or None.
    """

    rule: optax.GradientTransformation
    params: Any
    signals: Any
    reference: Any
    exact: bool = True
    rtol: float = 1e-4
    atol: float = 1e-6
    min_cosine: float = 0.9
    sample_axes: tuple | None = None


class RuleCase(NamedTuple):
    """``name`` is the public rule's name (a suffix in brackets tells variants apart);
    ``make()`` builds a :class:`MadeRule`."""

    name: str
    make: Callable[[], MadeRule]


class MadeTrainer(NamedTuple):
    """A trainer on a tiny problem: ``fit(trainer, params, data, batch_size=batch_size)``."""

    trainer: Any
    params: Any
    data: Any
    batch_size: int | None


class TrainerCase(NamedTuple):
    """``name`` is the public trainer's name; ``make()`` builds a :class:`MadeTrainer`."""

    name: str
    make: Callable[[], MadeTrainer]
