"""Argument validation shared by the public functions.

Every check raises ``ValueError`` or ``TypeError`` naming the argument, what was expected and what
came. Value checks run only on concrete arrays: inside ``jax.jit`` the values are tracers, and
the public entry points validate before they trace.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values we can inspect (not a JAX tracer)."""
    return not isinstance(x, jax.core.Tracer)


def positive_float(value, name: str) -> float:
    """Return ``value`` as a float, raising unless it is finite and > 0."""
    if (
        isinstance(value, bool | str | bytes)
        or (not np.isscalar(value) and np.ndim(value) != 0)
        or np.iscomplexobj(value)
    ):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def finite_float(value, name: str) -> float:
    """Return ``value`` as a float, raising unless it is a finite real scalar."""
    if isinstance(value, bool | str | bytes) or np.ndim(value) != 0 or np.iscomplexobj(value):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def probability(value, name: str) -> float:
    """Return ``value`` as a float, raising unless it lies in the open interval (0, 1)."""
    value = finite_float(value, name)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {value}")
    return value


def positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def prng_key(key, name: str = "key"):
    """Return ``key`` unchanged, raising TypeError unless it is one PRNG key: a typed key
    (``jax.random.key``) or a legacy uint32 key of shape (2,) (``jax.random.PRNGKey``).

    An int seed, a float array or a batch of keys is refused with a message that shows how to
    make a key (``jax.random.key(0)``)."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise TypeError(
                f"{name} must be a single PRNG key, got a batch of shape {key.shape} "
                "(split it and pass one key)"
            )
        return key
    if isinstance(key, jax.Array | np.ndarray) and key.dtype == np.uint32 and key.shape == (2,):
        return jnp.asarray(key)
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        raise TypeError(
            f"{name} must be a PRNG key, got the int {key}; pass jax.random.key({key}) instead"
        )
    described = f"{type(key).__name__}"
    if hasattr(key, "dtype"):
        described += f" of dtype {key.dtype} and shape {tuple(key.shape)}"
    raise TypeError(f"{name} must be a PRNG key such as jax.random.key(0), got {described}")


def optimizer(value, name: str = "optimizer"):
    """Return ``value`` unchanged, raising TypeError unless it is an optax
    ``GradientTransformation`` (an object with callable ``init`` and ``update``); a string such
    as ``"adam"`` is refused with a message that shows ``optax.adam(1e-3)``."""
    if isinstance(value, str):
        raise TypeError(
            f"{name} must be an optax.GradientTransformation such as optax.adam(1e-3), got the "
            f"string {value!r}"
        )
    if not (callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))):
        raise TypeError(
            f"{name} must be an optax.GradientTransformation (with init and update) such as "
            f"optax.adam(1e-3), got {type(value).__name__}"
        )
    return value


def nonnegative_float(value, name: str) -> float:
    """Return ``value`` as a float, raising unless it is a finite real scalar >= 0."""
    value = finite_float(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def nonempty(x, name: str) -> None:
    """Raise ValueError naming ``name`` when the array ``x`` has an axis of length 0 (no trials,
    no bins, no items): checked on the shape only, so it also runs on tracers."""
    shape = tuple(np.shape(x))
    if 0 in shape:
        raise ValueError(
            f"{name} must not be empty: every axis needs at least one element (trials, bins, "
            f"neurons), got shape {shape}"
        )


def option(value, name: str, choices) -> str:
    """Return ``value`` unchanged, raising unless it is one of the option strings ``choices``
    (the message lists them)."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def finite_tree(tree, name: str = "params"):
    """Return ``tree`` unchanged, raising unless every leaf is a real array (TypeError for
    complex or non-numeric leaves) whose values are finite (ValueError naming the leaf's path,
    e.g. ``params.bias``). Values are checked only when concrete."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        where = name + "".join(_path_part(part) for part in path)
        dtype = getattr(leaf, "dtype", None) or np.asarray(leaf).dtype
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            continue
        dtype = np.dtype(dtype)
        if not (
            np.issubdtype(dtype, np.floating)
            or np.issubdtype(dtype, np.integer)
            or dtype == np.bool_
        ):
            raise TypeError(f"{where} must be a real array, got dtype {dtype}")
        if is_concrete(leaf) and not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"{where} must be finite, found NaN or inf")
    return tree


def _path_part(part) -> str:
    if isinstance(part, jax.tree_util.GetAttrKey):
        return f".{part.name}"
    if isinstance(part, jax.tree_util.DictKey):
        return f"[{part.key!r}]"
    if isinstance(part, jax.tree_util.SequenceKey):
        return f"[{part.idx}]"
    return str(part)


#: the largest array a public function will allocate (elements of float32, about 8 GiB):
#: requests above it are refused before the allocation with a message naming the sizes
MAX_ELEMENTS = 2**31


def allocation(n_elements: int, what: str) -> None:
    """Raise ValueError when ``what`` would need more than :data:`MAX_ELEMENTS` elements
    (checked before the allocation, so a typo in a size fails at once, not after minutes)."""
    if int(n_elements) > MAX_ELEMENTS:
        raise ValueError(
            f"{what} would hold {int(n_elements):,} elements (about "
            f"{4 * int(n_elements) / 2**30:.0f} GiB as float32), more than the "
            f"{MAX_ELEMENTS:,} allowed; reduce the sizes"
        )


def fully_observed(spec, caller: str) -> None:
    """Raise ValueError unless every neuron of the network ``spec`` is visible: the criteria
    of fully observed networks (maximum likelihood, Bayesian fits) name themselves as
    ``caller`` and point to the variational criteria."""
    if spec.hidden.any():
        raise ValueError(
            f"{caller} needs every neuron observed; spec has {int(spec.hidden.sum())} hidden "
            "neurons (use the variational criteria)"
        )


def basis_matrix(basis, name: str) -> np.ndarray:
    """Validate a (K, L) basis: 2-D, finite, float."""
    array = np.asarray(basis) if hasattr(basis, "dtype") else _as_array(basis, name)
    if array.dtype == object:
        raise TypeError(f"{name} must be a real (K, L) array, got non-numeric entries")
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be a real (K, L) array, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name} must be a (K, L) array with K, L >= 1, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return array.astype(np.float64)


def _as_array(x, name: str) -> np.ndarray:
    """``np.asarray(x)``, with a named TypeError for ragged nested lists."""
    try:
        return np.asarray(x)
    except ValueError as err:
        raise TypeError(
            f"{name} must be an array (or a nested list of equal lengths), got a ragged "
            f"{type(x).__name__}"
        ) from err


def spike_array(spikes, name: str, n_neurons: int | None = None, min_ndim: int = 2):
    """Validate a spike array ``(..., T, N)``: bool/integer/float holding only 0 and 1.

    Returns the array unchanged (a jax or numpy array). Value checks run when concrete.
    """
    if not hasattr(spikes, "dtype") or not hasattr(spikes, "shape"):
        spikes = _as_array(spikes, name)
    dtype = np.dtype(spikes.dtype)
    if not (
        dtype == np.bool_ or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold 0/1 spikes as bool, integer or float; got dtype {dtype}")
    if spikes.ndim < min_ndim:
        raise ValueError(
            f"{name} must have shape (..., time, neurons) with at least {min_ndim} dimensions, "
            f"got shape {tuple(spikes.shape)}"
        )
    if n_neurons is not None and spikes.shape[-1] != n_neurons:
        raise ValueError(
            f"{name} must have {n_neurons} neurons on its last axis, "
            f"got shape {tuple(spikes.shape)}"
        )
    if is_concrete(spikes) and dtype != np.bool_:
        values = np.asarray(spikes)
        if np.issubdtype(dtype, np.floating) and not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be binary (0 or 1), found NaN or inf")
        if not np.all((values == 0) | (values == 1)):
            bad = values[(values != 0) & (values != 1)].flat[0]
            raise ValueError(f"{name} must be binary (0 or 1), found the value {bad}")
    return spikes


def real_array(x, name: str, shape_tail: tuple[int, ...] | None = None, min_ndim: int = 1):
    """Validate a finite real array, optionally checking its trailing dimensions."""
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        x = _as_array(x, name)
    dtype = np.dtype(x.dtype)
    if not (
        np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer) or dtype == np.bool_
    ):
        raise TypeError(f"{name} must be a real array, got dtype {dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {x.shape}")
    if shape_tail is not None and tuple(x.shape[x.ndim - len(shape_tail) :]) != tuple(shape_tail):
        raise ValueError(
            f"{name} must end with dimensions {tuple(shape_tail)}, got shape {tuple(x.shape)}"
        )
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return x


def params_of_shapes(params, cls, shapes, type_name: str):
    """Raise unless ``params`` is a ``cls`` NamedTuple whose fields have the shapes of the
    ``shapes`` tuple (same fields); ``type_name`` names the type in the message."""
    if not isinstance(params, cls):
        raise TypeError(f"params must be a {type_name}, got {type(params).__name__}")
    for name, expected, value in zip(cls._fields, shapes, params, strict=True):
        if tuple(np.shape(value)) != tuple(expected):
            raise ValueError(
                f"params.{name} must have shape {tuple(expected)} for this network, "
                f"got {tuple(np.shape(value))}"
            )
    return params


def per_trial(x, name: str, shared_shape: tuple, n_trials: int, batched: bool, dtype):
    """``x`` of ``shared_shape`` (shared by all trials) or ``(n_trials, *shared_shape)`` as a
    ``(n_trials, *shared_shape)`` array of ``dtype``; raises ValueError naming ``name``."""
    shared = tuple(shared_shape)
    trials = (n_trials, *shared)
    if tuple(x.shape) == shared:
        return jnp.broadcast_to(jnp.asarray(x, dtype), trials)
    if batched and tuple(x.shape) == trials:
        return jnp.asarray(x, dtype)
    expected = f"{shared} or {trials}" if batched else f"{shared}"
    raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")


def index(value, name: str, size: int) -> int:
    """Return ``value`` as an int, raising TypeError unless it is an integer and ValueError
    unless it lies in [0, ``size``) (e.g. a neuron or trial index of an array of that length)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer index in [0, {size}), got {value!r}")
    if not 0 <= value < size:
        raise ValueError(f"{name} must be in [0, {size}), got {value}")
    return int(value)


def float_dtype(dtype, name: str = "dtype"):
    """Return ``dtype`` unchanged, raising TypeError unless it names a floating type
    (``jnp.float32``, ``"float64"``, ``jnp.bfloat16``, ...)."""
    try:
        floating = jnp.issubdtype(dtype, jnp.floating)
    except TypeError:
        floating = False
    if not floating:
        raise TypeError(f"{name} must be a floating dtype such as jnp.float32, got {dtype!r}")
    return dtype


def real_dtype(x, name: str):
    """Return ``x`` (a list or scalar becomes a numpy array) after checking that its dtype is
    real — bool, integer or floating — raising TypeError for complex or non-numeric data. The
    values are not inspected (NaN and inf pass), for arrays where they carry meaning."""
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        x = _as_array(x, name)
    if not any(jnp.issubdtype(x.dtype, kind) for kind in (jnp.floating, jnp.integer, jnp.bool_)):
        raise TypeError(f"{name} must be a real array, got dtype {x.dtype}")
    return x
