"""Data parallelism over trials: one ``mesh`` argument spreads the batch across devices.

probsnn's batched work is independent across trials (sampling) or a sum over trials
(likelihoods, gradients, Hessian-vector products). With ``jax.sharding`` the leading axis of the
data is split over the devices of a one-dimensional :class:`jax.sharding.Mesh` whose axis is
named ``"trials"``; parameters are replicated; XLA's partitioner runs every device on its own
trials and adds the sums across devices. The result equals the one-device result to float
round-off (sums are taken in another order), and the random draws are the same, because JAX's
Threefry keys are partitionable (``jax_threefry_partitionable``, on by default): the uniform
of trial b and neuron i does not depend on where it is computed.

The mesh axis is of type ``Auto`` on purpose: under ``Explicit`` axes (the default of
:func:`jax.make_mesh` in recent JAX) the sharding is part of every array's type and gradients
of a sharded likelihood raise ``ShardingTypeError`` where a sum crosses devices.

Several devices on one CPU: set ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before
JAX starts. XLA's CPU client runs each device's part of a program on a thread of one pool of
max(cores, devices) threads, so a machine with no more cores than forced devices has no thread
to spare while the devices meet in a cross-device sum; ``PJRT_NPROC=8`` (read by XLA in place of
the core count) gives it spare threads, as probsnn's own tests do.
Many processes (hosts): call :func:`jax.distributed.initialize` first; the mesh then
spans every process's devices, and each process feeds the same global arrays.

Reference: Xu et al. (2021), "GSPMD: General and scalable parallelization for ML computation
graphs".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

TRIALS = "trials"
NEURONS = "neurons"


def trial_mesh(devices=None, neuron_shards: int = 1) -> Mesh:
    """A mesh over ``devices`` (default all of ``jax.devices()``, across processes when
    :func:`jax.distributed.initialize` ran) with the ``Auto`` axes ``"trials"`` and, when
    ``neuron_shards`` > 1, ``"neurons"``: a (devices / neuron_shards, neuron_shards) grid.

    Over ``"neurons"`` the sampler splits the network itself, by postsynaptic neuron (each
    device holds the weights onto its neurons and computes their potentials; the bin's
    spikes are gathered), for networks too large for one device; see :func:`shard_params`.

    Raises:
        ValueError: an empty device list, or ``neuron_shards`` that does not divide it.
        TypeError: entries that are not JAX devices, a non-integer ``neuron_shards``.
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device, got an empty list")
    for device in devices:
        if not isinstance(device, jax.Device):
            raise TypeError(f"devices must be JAX devices, got {type(device).__name__}")
    if isinstance(neuron_shards, bool) or not isinstance(neuron_shards, int | np.integer):
        raise TypeError(f"neuron_shards must be an integer, got {neuron_shards!r}")
    if neuron_shards < 1 or len(devices) % neuron_shards:
        raise ValueError(
            f"neuron_shards must be >= 1 and divide the {len(devices)} devices, got {neuron_shards}"
        )
    if neuron_shards == 1:
        return Mesh(np.array(devices), (TRIALS,), axis_types=(AxisType.Auto,))
    grid = np.array(devices).reshape(len(devices) // neuron_shards, neuron_shards)
    return Mesh(grid, (TRIALS, NEURONS), axis_types=(AxisType.Auto, AxisType.Auto))


def check_mesh(mesh) -> Mesh | None:
    """Validate a ``mesh`` argument: None (one device), or a :class:`jax.sharding.Mesh` with
    an axis named ``"trials"`` (build one with :func:`trial_mesh`).

    Raises:
        TypeError: anything else, e.g. a device list (pass ``trial_mesh(devices)``).
        ValueError: a mesh without a ``"trials"`` axis, or one whose axes are Explicit.
    """
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(
            "mesh must be a jax.sharding.Mesh (probsnn.parallel.trial_mesh()) or None, got "
            f"{type(mesh).__name__}"
        )
    if TRIALS not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named {TRIALS!r}, got axes {mesh.axis_names}")
    if any(kind == AxisType.Explicit for kind in mesh.axis_types):
        raise ValueError(
            "mesh axes must be of type Auto (probsnn.parallel.trial_mesh builds one); Explicit "
            "axes make gradients of a sharded likelihood raise ShardingTypeError"
        )
    return mesh


def n_shards(mesh: Mesh) -> int:
    """The number of devices the ``"trials"`` axis splits the batch over."""
    return int(mesh.shape[TRIALS])


def neuron_shards(mesh: Mesh | None) -> int:
    """The number of parts the ``"neurons"`` axis splits a network into (1 without one)."""
    return 1 if mesh is None or NEURONS not in mesh.axis_names else int(mesh.shape[NEURONS])


def check_divisible(size: int, mesh: Mesh, name: str, axis: str = TRIALS) -> None:
    """Raise ValueError naming ``name`` unless ``size`` splits evenly over the mesh's ``axis``
    (JAX shards an axis only in equal parts)."""
    shards = int(mesh.shape[axis]) if axis in mesh.axis_names else 1
    if size % shards:
        raise ValueError(
            f"{name} = {size} must be a multiple of the mesh's {shards} devices along "
            f"{axis!r} (each device holds an equal share)"
        )


def leading(mesh: Mesh) -> NamedSharding:
    """The sharding of an array whose leading axis is split over ``"trials"``."""
    return NamedSharding(mesh, PartitionSpec(TRIALS))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of an array held whole by every device."""
    return NamedSharding(mesh, PartitionSpec())


def shard_leading(tree, mesh: Mesh, name: str):
    """Place every array leaf of ``tree`` with its leading axis split over the mesh (leaves of
    rank 0 replicated; None kept). Raises ValueError naming ``name`` for a leading size that
    does not split evenly."""

    def place(leaf):
        if np.ndim(leaf) == 0:
            return jax.device_put(leaf, replicated(mesh))
        check_divisible(np.shape(leaf)[0], mesh, f"the leading size of {name}")
        return jax.device_put(leaf, leading(mesh))

    return jax.tree.map(place, tree)


def replicate(tree, mesh: Mesh):
    """Place every array leaf of ``tree`` whole on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def constrain_leading(tree, mesh: Mesh | None):
    """Inside ``jit``: ask the partitioner to split the leading axis of every leaf of rank ≥ 1
    over the mesh (scalars are left to it; a no-op without a mesh)."""
    return jax.tree.map(lambda leaf: constrain_axis(leaf, mesh, 0), tree)


def constrain_axis(array, mesh: Mesh | None, axis: int | None, neuron_axis: int | None = None):
    """Inside ``jit``: split ``array``'s axis ``axis`` over the mesh's trials and, when the
    mesh has a ``"neurons"`` axis, ``neuron_axis`` over it (a no-op without a mesh, for None
    and for scalars)."""
    if mesh is None or array is None or jnp.ndim(array) == 0:
        return array
    spec = [None] * jnp.ndim(array)
    if axis is not None:
        spec[axis] = TRIALS
    if neuron_axis is not None and NEURONS in mesh.axis_names:
        spec[neuron_axis] = NEURONS
    return jax.lax.with_sharding_constraint(array, NamedSharding(mesh, PartitionSpec(*spec)))


def shard_params(params, mesh: Mesh):
    """Place GLM :class:`~probsnn.Params` split by postsynaptic neuron over the mesh's
    ``"neurons"`` axis (w ``(N, N, K)`` along axis 1, v and bias along axis 0, c along axis 1),
    replicated over trials, so that no device holds the whole network. Without a
    ``"neurons"`` axis the params are replicated.

    Raises:
        ValueError: a neuron count that the ``"neurons"`` axis does not divide.
    """
    if NEURONS not in mesh.axis_names:
        return replicate(params, mesh)
    check_divisible(params.bias.shape[0], mesh, "the number of neurons", NEURONS)
    return type(params)(
        **{
            name: jax.device_put(value, NamedSharding(mesh, _post_axis_spec(name, value)))
            for name, value in params._asdict().items()
        }
    )


def constrain_params(params, mesh: Mesh | None):
    """Inside ``jit``: :func:`shard_params`'s layout as a constraint (a no-op without a
    ``"neurons"`` axis)."""
    if mesh is None or NEURONS not in mesh.axis_names:
        return params
    return type(params)(
        **{
            name: jax.lax.with_sharding_constraint(
                value, NamedSharding(mesh, _post_axis_spec(name, value))
            )
            for name, value in params._asdict().items()
        }
    )


_POST_AXIS = {"w": 1, "v": 0, "c": 1, "bias": 0}  # where each Params field holds neuron i


def _post_axis_spec(name: str, value) -> PartitionSpec:
    spec = [None] * np.ndim(value)
    spec[_POST_AXIS[name]] = NEURONS
    return PartitionSpec(*spec)
