"""Saving and loading fitted models and training checkpoints.

One container for both: a NumPy ``.npz`` archive (no pickles) holding every array, plus one JSON
document (stored in the archive as ``__meta__``) that records the format and its version, what the
file holds, the probsnn version that wrote it and how the arrays fit together. Files are written
atomically (a temporary file in the same folder, then :func:`os.replace`), so an interrupted save
leaves the previous file intact, never a truncated one.

- :func:`save` / :func:`load`: a network spec (:class:`probsnn.Network`,
  :class:`probsnn.WTANetwork` or :class:`probsnn.models.EnergyNetwork`, bases and masks
  included), its parameters, and optionally a fit's results (any pytree of arrays, NamedTuples,
  dicts, lists and scalars, e.g. :class:`probsnn.inference.MLFit` or
  :class:`probsnn.inference.FitResult`) and JSON metadata. The round trip is exact: same
  dtypes, same bits.
- :func:`save_tree` / :func:`load_tree`: any pytree, restored into the structure of a template
  (``like``); the training loop's checkpoints (``probsnn.inference.fit(checkpoint=...)``) use
  them.

Bayesian fits keep ArviZ's own format: ``probsnn.inference.fit_mcmc(...).to_inference_data()``
gives an ``arviz.InferenceData`` whose ``to_netcdf(path)`` / ``arviz.from_netcdf(path)`` round
trip the posterior draws; save the spec alongside with :func:`save` (``params`` the posterior
mean, ``metadata`` naming the netCDF file).
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: the file format's name and version; :func:`load` refuses files from a newer version
FORMAT = "probsnn"
FORMAT_VERSION = 1
_META = "__meta__"
#: modules whose NamedTuple classes a file may name (importing anything else from a file's
#: contents is refused)
_TRUSTED_MODULES = ("probsnn", "optax")


class Saved(NamedTuple):
    """What :func:`load` returns.

    Attributes:
        spec: the network spec (static, hashable), equal to the one saved.
        params: its parameters, the same pytree type, dtypes and values as saved.
        fit: the saved fit results (same structure and values), or None.
        metadata: the saved JSON metadata (a dict), ``{}`` when none was given.
    """

    spec: Any
    params: Any
    fit: Any
    metadata: dict


class FormatError(ValueError):
    """A file that is not a probsnn file, comes from a newer format version, is damaged, or
    does not match what the caller expects."""


# -- public API ----------------------------------------------------------------------------------
def save(path, spec, params, *, fit=None, metadata: dict | None = None) -> Path:
    """Write ``spec``, ``params`` and optionally ``fit`` and ``metadata`` to one file.

    Args:
        path: the file to write (``.npz`` is appended when it has no suffix); its folder must
            exist. An existing file is replaced atomically.
        spec: a :class:`probsnn.Network`, :class:`probsnn.WTANetwork` or
            :class:`probsnn.models.EnergyNetwork`.
        params: the spec's parameters (checked against the spec's shapes).
        fit: optional fit results: a pytree of arrays, NamedTuples (from probsnn or optax),
            dicts with string keys, lists, tuples, None and Python scalars.
        metadata: optional JSON-serialisable dict (e.g. the data set, the criterion, seeds).

    Returns:
        The path written.

    Raises:
        TypeError: an unsupported spec, a params/spec mismatch of type, a fit leaf of an
            unsupported type, or metadata that is not a JSON-serialisable dict.
        ValueError: params whose shapes do not match the spec.
    """
    codec = _spec_codec(spec)
    params = codec.check_params(spec, params)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    arrays: dict[str, np.ndarray] = {}
    spec_config = codec.encode(spec, _Arrays(arrays, "spec"))
    meta = {
        "kind": "model",
        "spec": {"type": codec.name, "config": spec_config},
        "params": _encode_tree(params, _Arrays(arrays, "params")),
        "fit": _encode_tree(fit, _Arrays(arrays, "fit")),
        "metadata": _json_checked(metadata or {}, "metadata"),
    }
    return _write(_with_suffix(path), arrays, meta)


def load(path) -> Saved:
    """Read a file written by :func:`save`.

    Args:
        path: the file.

    Returns:
        :class:`Saved` ``(spec, params, fit, metadata)``, an exact copy of what was saved.

    Raises:
        FileNotFoundError: no such file.
        FormatError (a ValueError): not a probsnn model file, written by a newer format
            version, damaged, or its params do not match its spec.
    """
    arrays, meta = _read(path, kind="model")
    try:
        spec_meta = meta["spec"]
        codec = _CODECS_BY_NAME.get(spec_meta["type"])
        if codec is None:
            raise FormatError(f"{path}: unknown network spec type {spec_meta['type']!r}")
        spec = codec.decode(spec_meta["config"], _Arrays(arrays, "spec"))
        params = _decode_tree(meta["params"], arrays)
        fit = _decode_tree(meta["fit"], arrays)
        metadata = meta["metadata"]
    except (KeyError, TypeError, IndexError) as error:
        raise FormatError(f"{path} is damaged: its description is incomplete ({error})") from None
    try:
        params = codec.check_params(spec, params)
    except (TypeError, ValueError) as error:
        raise FormatError(
            f"{path}: the saved params do not match the saved spec: {error}"
        ) from None
    return Saved(spec, params, fit, metadata)


def save_tree(path, tree, *, kind: str = "tree", metadata: dict | None = None) -> Path:
    """Write any pytree's leaves (arrays, PRNG keys and Python scalars) atomically.

    The structure is stored as a description, never as code: containers are dicts with string
    keys, lists, tuples, None and NamedTuples of probsnn or optax (other pytrees are stored
    without a description and need a template to be read back).

    Args:
        path: the file to write (``.npz`` appended when it has no suffix).
        tree: the pytree.
        kind: a label stored in the file and checked by :func:`load_tree`.
        metadata: optional JSON-serialisable dict.

    Returns:
        The path written.
    """
    arrays: dict[str, np.ndarray] = {}
    leaves, treedef = jax.tree.flatten(tree)
    described = [_encode_leaf(leaf, f"leaf{index}", arrays) for index, leaf in enumerate(leaves)]
    try:
        structure = _describe(tree)
    except TypeError:
        structure = None
    meta = {
        "kind": kind,
        "treedef": str(treedef),
        "structure": structure,
        "leaves": described,
        "metadata": _json_checked(metadata or {}, "metadata"),
    }
    return _write(_with_suffix(path), arrays, meta)


def load_tree(path, like=None, *, kind: str = "tree") -> tuple[Any, dict]:
    """Read a file written by :func:`save_tree`, into the structure of ``like`` if given.

    Args:
        path: the file.
        like: optional pytree with the structure, shapes and dtypes the file must hold (e.g.
            the trainer state ``trainer.init(params)``); None rebuilds the saved structure from
            its description.
        kind: the label the file must carry.

    Returns:
        ``(tree, metadata)``: the saved leaves in ``like``'s structure, and the saved metadata.

    Raises:
        FileNotFoundError: no such file.
        FormatError (a ValueError): not a probsnn file of this kind, a newer format version,
            damaged, or its leaves do not match ``like`` (count, shapes or dtypes), naming the
            first difference.
    """
    arrays, meta = _read(path, kind=kind)
    try:
        described = meta["leaves"]
        leaves = [_decode_leaf(entry, arrays) for entry in described]
        if like is None:
            if meta["structure"] is None:
                raise FormatError(f"{path} holds no description of its structure: pass like=")
            skeleton = _skeleton(meta["structure"])
            return jax.tree.unflatten(jax.tree.structure(skeleton), leaves), meta["metadata"]
    except (KeyError, TypeError, IndexError, ValueError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError(f"{path} is damaged: its description is incomplete ({error})") from None
    like_leaves, treedef = jax.tree.flatten(like)
    if len(leaves) != len(like_leaves):
        raise FormatError(
            f"{path} holds {len(leaves)} arrays but the expected structure has "
            f"{len(like_leaves)} (saved {meta.get('treedef')}, expected {treedef})"
        )
    for index, (saved, expected) in enumerate(zip(leaves, like_leaves, strict=True)):
        if _leaf_signature(saved) != _leaf_signature(expected):
            raise FormatError(
                f"{path}: array {index} is {_leaf_signature(saved)} but the expected structure "
                f"has {_leaf_signature(expected)} there (saved {meta.get('treedef')})"
            )
    return jax.tree.unflatten(treedef, leaves), meta.get("metadata", {})


# -- the container -------------------------------------------------------------------------------
def _with_suffix(path) -> Path:
    path = Path(path)
    return path if path.suffix else path.with_suffix(".npz")


def _write(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write the archive to a temporary file beside ``path``, then rename it into place."""
    from probsnn import __version__

    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "probsnn": __version__, **meta}
    text = json.dumps(meta, sort_keys=True).encode()
    if not path.parent.is_dir():
        raise FileNotFoundError(f"path's folder {path.parent} does not exist")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays, **{_META: np.frombuffer(text, dtype=np.uint8)})
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _read(path, kind: str) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise FormatError(f"{path} is not a readable probsnn file ({error})") from None
    if _META not in arrays:
        raise FormatError(f"{path} is not a probsnn file (it has no {_META} record)")
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"{path} is damaged: its description is not JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(f"{path} is not a probsnn file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FormatError(
            f"{path} was written in format version {version} (by probsnn "
            f"{meta.get('probsnn')}), newer than this probsnn reads ({FORMAT_VERSION}); "
            "upgrade probsnn"
        )
    if meta.get("kind") != kind:
        raise FormatError(f"{path} holds a {meta.get('kind')!r}, expected a {kind!r}")
    return arrays, meta


def _json_checked(value: dict, name: str) -> dict:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be JSON-serialisable: {error}") from None
    return value


class _Arrays:
    """A prefixed view of the archive's array dict (``put`` returns the stored name)."""

    def __init__(self, arrays: dict, prefix: str):
        self.arrays, self.prefix = arrays, prefix

    def put(self, name: str, value) -> str:
        stored = f"{self.prefix}/{name}"
        self.arrays[stored] = np.asarray(value)
        return stored

    def get(self, name: str) -> np.ndarray:
        return self.arrays[f"{self.prefix}/{name}"]


# -- leaves and trees ----------------------------------------------------------------------------
def _encode_leaf(leaf, name: str, arrays: dict) -> dict:
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        arrays[name] = np.asarray(jax.random.key_data(leaf))
        return {"t": "key", "a": name, "impl": str(jax.random.key_impl(leaf))}
    if isinstance(leaf, bool | int | float | str) or leaf is None:
        return {"t": "scalar", "v": leaf}
    if isinstance(leaf, np.generic | np.ndarray | jax.Array):
        array = np.asarray(leaf)
        if array.dtype == object or np.iscomplexobj(array):
            raise TypeError(f"cannot save an array of dtype {array.dtype} ({name})")
        arrays[name] = array
        kind = "jax" if isinstance(leaf, jax.Array) else "numpy"
        return {"t": "array", "a": name, "as": "scalar" if isinstance(leaf, np.generic) else kind}
    raise TypeError(f"cannot save a leaf of type {type(leaf).__name__} ({name})")


def _decode_leaf(entry: dict, arrays: dict):
    if entry["t"] == "scalar":
        return entry["v"]
    array = arrays[entry["a"]]
    if entry["t"] == "key":
        return jax.random.wrap_key_data(jnp.asarray(array), impl=entry["impl"])
    if entry["as"] == "scalar":
        return array[()]
    return jnp.asarray(array) if entry["as"] == "jax" else array


def _leaf_signature(leaf):
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return ("key", tuple(leaf.shape))
    if isinstance(leaf, bool | int | float | str) or leaf is None:
        return (type(leaf).__name__,)
    return (str(np.dtype(leaf.dtype)), tuple(np.shape(leaf)))


def _encode_tree(tree, arrays: _Arrays) -> Any:
    """A JSON description of ``tree`` (containers by type, leaves stored in ``arrays``)."""
    counter = iter(range(10**9))

    def encode(node):
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            cls = type(node)
            _trusted_class(cls.__module__, cls.__qualname__)
            return {
                "t": "namedtuple",
                "cls": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {field: encode(value) for field, value in node._asdict().items()},
            }
        if isinstance(node, dict):
            if not all(isinstance(key, str) for key in node):
                raise TypeError("cannot save a dict whose keys are not all strings")
            return {"t": "dict", "items": {key: encode(value) for key, value in node.items()}}
        if isinstance(node, list | tuple):
            return {"t": type(node).__name__, "items": [encode(value) for value in node]}
        return _encode_leaf(node, f"{arrays.prefix}/{next(counter)}", arrays.arrays)

    return encode(tree)


def _describe(node):
    """The container structure of a pytree as JSON (leaves as ``{"t": "leaf"}``)."""
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        cls = type(node)
        _trusted_class(cls.__module__, cls.__qualname__)
        fields = {field: _describe(value) for field, value in node._asdict().items()}
        return {"t": "namedtuple", "cls": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    if isinstance(node, dict):
        if not all(isinstance(key, str) for key in node):
            raise TypeError("dict keys must be strings")
        return {"t": "dict", "items": {key: _describe(value) for key, value in node.items()}}
    if isinstance(node, list | tuple):
        return {"t": type(node).__name__, "items": [_describe(value) for value in node]}
    if node is None:
        return {"t": "none"}
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(node)):
        return {"t": "leaf"}
    raise TypeError(f"no description for the pytree node {type(node).__name__}")


def _skeleton(description):
    """A pytree of the described structure with a 0 at every leaf."""
    kind = description["t"]
    if kind == "namedtuple":
        cls = _trusted_class(*description["cls"].split(":"))
        return cls(**{f: _skeleton(v) for f, v in description["fields"].items()})
    if kind == "dict":
        return {key: _skeleton(value) for key, value in description["items"].items()}
    if kind in ("list", "tuple"):
        items = [_skeleton(value) for value in description["items"]]
        return items if kind == "list" else tuple(items)
    return None if kind == "none" else 0


def _decode_tree(description, arrays: dict):
    def decode(node):
        kind = node["t"]
        if kind == "namedtuple":
            cls = _trusted_class(*node["cls"].split(":"))
            values = {field: decode(value) for field, value in node["fields"].items()}
            return cls(**values)
        if kind == "dict":
            return {key: decode(value) for key, value in node["items"].items()}
        if kind in ("list", "tuple"):
            items = [decode(value) for value in node["items"]]
            return items if kind == "list" else tuple(items)
        return _decode_leaf(node, arrays)

    return decode(description)


def _trusted_class(module: str, qualname: str):
    if module.split(".")[0] not in _TRUSTED_MODULES:
        raise TypeError(
            f"cannot save or load a NamedTuple from module {module!r} (only probsnn and optax "
            "types round trip; convert it to a dict)"
        )
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise FormatError(f"unknown type {module}:{qualname} in the file") from None
    return obj


# -- network specs -------------------------------------------------------------------------------
class _SpecCodec(NamedTuple):
    name: str
    matches: Any  # spec -> bool
    encode: Any  # (spec, _Arrays) -> JSON config
    decode: Any  # (config, _Arrays) -> spec
    check_params: Any  # (spec, params) -> params


def _encode_network(spec, arrays: _Arrays) -> dict:
    config = {"n_neurons": spec.n_neurons, "n_inputs": spec.n_inputs, "dt": spec.dt}
    arrays.put("synapse_basis", spec.synapse_basis)
    config["shares_basis"] = spec.feedback_basis is spec.synapse_basis
    if not config["shares_basis"]:
        arrays.put("feedback_basis", spec.feedback_basis)
    if spec.input_basis is not None:
        arrays.put("input_basis", spec.input_basis)
    arrays.put("connectivity", spec.connectivity)
    arrays.put("visible", spec.visible)
    return config


def _network_arguments(config: dict, arrays: _Arrays) -> dict:
    return {
        "synapse_basis": arrays.get("synapse_basis"),
        "feedback_basis": None if config["shares_basis"] else arrays.get("feedback_basis"),
        "input_basis": arrays.get("input_basis") if config["n_inputs"] else None,
        "n_inputs": config["n_inputs"],
        "dt": config["dt"],
        "connectivity": arrays.get("connectivity"),
        "visible": arrays.get("visible"),
    }


def _decode_network(config: dict, arrays: _Arrays):
    from probsnn.network import Network

    return Network(config["n_neurons"], **_network_arguments(config, arrays))


def _encode_wta(spec, arrays: _Arrays) -> dict:
    return {"n_symbols": spec.n_symbols, "units": _encode_network(spec.units, arrays)}


def _decode_wta(config: dict, arrays: _Arrays):
    from probsnn.wta import WTANetwork

    units = config["units"]
    return WTANetwork(units["n_neurons"], config["n_symbols"], **_network_arguments(units, arrays))


def _encode_energy(spec, arrays: _Arrays) -> dict:
    del arrays
    return {
        "layer_sizes": list(spec.layer_sizes),
        "activation": spec.activation,
        "cost": spec.cost,
    }


def _decode_energy(config: dict, arrays: _Arrays):
    del arrays
    from probsnn.models.energy import EnergyNetwork

    return EnergyNetwork(tuple(config["layer_sizes"]), config["activation"], config["cost"])


def _check_energy(spec, params):
    from probsnn.models.energy import check_params

    return check_params(spec, params)


def _type_name(spec) -> str:
    return f"{type(spec).__module__}.{type(spec).__qualname__}"


_CODECS = (
    _SpecCodec(
        "probsnn.Network",
        lambda spec: _type_name(spec) == "probsnn.network.Network",
        _encode_network,
        _decode_network,
        lambda spec, params: spec.check_params(params),
    ),
    _SpecCodec(
        "probsnn.WTANetwork",
        lambda spec: _type_name(spec) == "probsnn.wta.WTANetwork",
        _encode_wta,
        _decode_wta,
        lambda spec, params: spec.check_params(params),
    ),
    _SpecCodec(
        "probsnn.models.EnergyNetwork",
        lambda spec: _type_name(spec) == "probsnn.models.energy.EnergyNetwork",
        _encode_energy,
        _decode_energy,
        _check_energy,
    ),
)
_CODECS_BY_NAME = {codec.name: codec for codec in _CODECS}


def _spec_codec(spec) -> _SpecCodec:
    for codec in _CODECS:
        if codec.matches(spec):
            return codec
    names = ", ".join(codec.name for codec in _CODECS)
    raise TypeError(f"spec must be one of {names}, got {type(spec).__name__}")


__all__ = ["FORMAT_VERSION", "FormatError", "Saved", "load", "load_tree", "save", "save_tree"]
