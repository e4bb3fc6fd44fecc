"""Argument checks shared by the criteria of the deterministic limit (labels, keys, dtypes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks


def float_dtype(params):
    """The float type the network runs in: that of the params (float64 under x64)."""
    return jnp.result_type(float, *jax.tree.leaves(params))


def check_labels(labels, shape: tuple, n_classes: int, name: str = "labels"):
    """Return ``labels`` after checking it holds integer classes in 0..``n_classes``−1 of
    ``shape`` (values checked when concrete); TypeError/ValueError naming ``name``."""
    if not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{name} must be integer class indices, got dtype {labels.dtype}")
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} (one per input sample), "
            f"got {tuple(labels.shape)}"
        )
    if _checks.is_concrete(labels):
        values = np.asarray(labels)
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(
                f"{name} must lie in 0..{n_classes - 1} (the {n_classes} classes), got values "
                f"from {values.min()} to {values.max()}"
            )
    return labels


def check_key(spec, key):
    """The key at temperature T > 0 (required: it draws the escape noise), None at T = 0."""
    if spec.temperature == 0:
        return None
    if key is None:
        raise TypeError(f"key is required at temperature {spec.temperature} > 0 (escape noise)")
    return _checks.prng_key(key, "key")
