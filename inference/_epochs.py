"""The shuffled mini-batch epoch shared by the trainers' ``fit_*`` loops."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def shuffled_epoch(
    key: jax.Array,
    state: Any,
    step: Callable[[Any, np.ndarray], tuple[Any, Any]],
    n_items: int,
    batch_size: int,
) -> tuple[Any, list, float]:
    """One pass over a random permutation of ``n_items`` in batches of ``batch_size``.

    The last ``n_items mod batch_size`` items of the permutation are left out, so every step sees a
    batch of the same (static) size and the jitted step compiles once.

    Args:
        key: PRNG key for the permutation.
        state: the trainer's state before the epoch.
        step: ``step(state, index) -> (state, info)`` where ``index`` (``(batch_size,)`` int) picks
            the batch's items.
        n_items: number of items; batch_size: 1 <= batch_size <= n_items (checked by the caller).

    Returns:
        ``(state, infos, seconds)``: the state after the epoch, the steps' infos fetched to the
        host, and the epoch's wall-clock seconds.
    """
    order = np.asarray(jax.random.permutation(key, n_items))
    began = time.perf_counter()
    infos = []
    for start in range(0, n_items - batch_size + 1, batch_size):
        state, info = step(state, order[start : start + batch_size])
        infos.append(info)
    infos = jax.device_get(infos)
    return state, infos, time.perf_counter() - began
