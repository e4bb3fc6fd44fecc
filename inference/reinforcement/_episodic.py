"""The trainer shape shared by the reinforcement criteria: they sample their own episodes."""

from __future__ import annotations

from probsnn import _checks

from .._training import Trainer


def episodic_trainer(init, step, name: str) -> Trainer:
    """A :class:`~probsnn.inference.Trainer` from ``init`` and a jitted ``step(key, state)``
    that samples its own episodes: the public step checks the key (TypeError for one that is not
    a PRNG key) and raises ValueError for a batch, since there is no data set to cut."""

    def checked_step(key, state, batch=None):
        key = _checks.prng_key(key, "key")
        if batch is not None:
            raise ValueError(f"{name} samples its own episodes: pass batch=None")
        return step(key, state)

    return Trainer(init, checked_step)
