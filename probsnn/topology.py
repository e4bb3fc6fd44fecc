"""Connectivity masks: boolean ``(N, N)`` arrays indexed ``[pre, post]``.

``mask[j, i]`` is True when neuron j is a presynaptic parent of neuron i. The diagonal is always
False: a neuron's own past enters only through its feedback kernel.
"""

from __future__ import annotations

import itertools

import numpy as np

from probsnn import _checks


def dense(n_neurons: int) -> np.ndarray:
    """All-to-all (fully recurrent) connectivity without self-connections."""
    n_neurons = _checks.positive_int(n_neurons, "n_neurons")
    _checks.allocation(n_neurons * n_neurons, "the (N, N) connectivity mask")
    return ~np.eye(n_neurons, dtype=bool)


def feedforward(layer_sizes) -> np.ndarray:
    """Layered feed-forward: every neuron of layer l projects to every neuron of layer l + 1.

    Neurons are numbered layer by layer, in the order of ``layer_sizes``.
    """
    sizes = _layer_sizes(layer_sizes)
    _checks.allocation(sum(sizes) ** 2, "the (N, N) connectivity mask")
    mask = np.zeros((sum(sizes),) * 2, dtype=bool)
    starts = np.cumsum([0, *sizes])
    for layer in range(len(sizes) - 1):
        pre = slice(starts[layer], starts[layer + 1])
        post = slice(starts[layer + 1], starts[layer + 2])
        mask[pre, post] = True
    return mask


def layered_recurrent(layer_sizes) -> np.ndarray:
    """Feed-forward between consecutive layers plus all-to-all connections within each layer."""
    sizes = _layer_sizes(layer_sizes)
    mask = feedforward(sizes)
    starts = np.cumsum([0, *sizes])
    for start, stop in itertools.pairwise(starts):
        mask[start:stop, start:stop] = True
    np.fill_diagonal(mask, False)
    return mask


def random_sparse(n_neurons: int, density: float, seed: int = 0, sparse: bool = False):
    """Erdős–Rényi connectivity: each ordered pair j != i is connected independently with
    ``density``.

    Args:
        n_neurons: N >= 1. density: in [0, 1]. seed: >= 0.
        sparse: return :class:`probsnn.sparse.Synapses` (target lists, built without an
            (N, N) array, for :class:`probsnn.SparseNetwork`) instead of the bool mask. The two
            forms draw different realisations of the same distribution.

    Raises:
        TypeError: a non-integer n_neurons or seed, a density that is not a real number, a
            non-bool ``sparse``.
        ValueError: n_neurons < 1, density outside [0, 1] or NaN, a negative seed.
    """
    n_neurons = _checks.positive_int(n_neurons, "n_neurons")
    density = _checks.finite_float(density, "density")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], got {density}")
    seed = _checks.positive_int(seed, "seed", minimum=0)
    if not isinstance(sparse, bool):
        raise TypeError(f"sparse must be a bool, got {sparse!r}")
    rng = np.random.default_rng(seed)
    if sparse:
        from probsnn.sparse import random_targets  # sparse imports network, which imports us

        return random_targets(n_neurons, rng.binomial(n_neurons - 1, density, n_neurons), rng)
    _checks.allocation(n_neurons * n_neurons, "the (N, N) connectivity mask")
    mask = rng.random((n_neurons, n_neurons)) < density
    np.fill_diagonal(mask, False)
    return mask


def fixed_fan_out(n_neurons: int, fan_out: int, seed: int = 0):
    """Every neuron projects to ``fan_out`` distinct other neurons drawn uniformly: a
    :class:`probsnn.sparse.Synapses` built without an (N, N) array.

    Raises:
        TypeError: non-integer arguments.
        ValueError: n_neurons < 1, fan_out outside [0, N − 1], a negative seed.
    """
    n_neurons = _checks.positive_int(n_neurons, "n_neurons")
    fan_out = _checks.positive_int(fan_out, "fan_out", minimum=0)
    if fan_out > n_neurons - 1:
        raise ValueError(f"fan_out must be at most N - 1 = {n_neurons - 1}, got {fan_out}")
    seed = _checks.positive_int(seed, "seed", minimum=0)
    _checks.allocation(n_neurons * fan_out, "the (N, fan_out) target table")
    from probsnn.sparse import random_targets  # sparse imports network, which imports us

    rng = np.random.default_rng(seed)
    return random_targets(n_neurons, np.full(n_neurons, fan_out), rng)


def _layer_sizes(layer_sizes) -> list[int]:
    if isinstance(layer_sizes, str) or not hasattr(layer_sizes, "__iter__"):
        raise TypeError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}")
    sizes = list(layer_sizes)
    if not sizes:
        raise ValueError("layer_sizes must name at least one layer, got an empty sequence")
    return [_checks.positive_int(size, "layer_sizes[i]") for size in sizes]
