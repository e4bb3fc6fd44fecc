"""The checks in front of the trainers' jitted ``step`` functions.

Inside ``jax.jit`` an int seed is already a traced array and a string is no JAX type at all, and
the batch's values are tracers that cannot be inspected. So the checks run before the jitted
function, on the concrete arguments: ``step(0, state, batch)`` raises the TypeError of
:func:`probsnn._checks.prng_key` ("pass jax.random.key(0) instead"), not JAX's "invalid PRNG key
data", and a batch with spikes equal to 2 or with NaN inputs is refused by name instead of being
trained on.
"""

from __future__ import annotations

import functools

from probsnn import _checks


def checked(step, batch_check=None, *, uses_key: bool = True):
    """``step(key, state, batch)``, a jitted function, behind its argument checks.

    Args:
        step: the jitted step.
        batch_check: optional ``batch_check(state, batch)``, raising on a bad batch (values
            included, the arguments being concrete here).
        uses_key: check that ``key`` is one PRNG key (False for deterministic steps, whose key
            is unused and may be None).

    Returns:
        The checked step; it keeps the jitted function's ``_cache_size`` (how often it compiled).
    """

    @functools.wraps(step)
    def checked_step(key, state, batch):
        if uses_key:
            key = _checks.prng_key(key, "key")
        if batch_check is not None:
            batch_check(state, batch)
        return step(key, state, batch)

    checked_step._cache_size = step._cache_size
    return checked_step
