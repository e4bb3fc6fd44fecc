"""One trainer protocol and one training loop for every learning criterion.

A **trainer** is a pair of pure functions in blackjax's shape (Cabezas et al. 2024):

    state = trainer.init(params)
    state, info = trainer.step(key, state, batch)

``State`` and ``Info`` are NamedTuples. Every State has a ``params`` field (the parameters being
learned); every Info has a scalar ``loss`` field, the step's estimate of the loss the criterion
minimises (a negative log-likelihood, a negative ELBO, a cost, …), which :func:`fit` watches for
divergence. The key is passed in and never stored; ``step`` is jitted and compiles once per
batch shape.

``batch`` is what the criterion reads: a pytree of arrays whose leading axis indexes items
(sequences, images, trials), cut from the training data by :func:`fit`. Trainers that work on
the whole data set at once and hold it themselves (the Newton solver of maximum likelihood) take
``batch=None``.

:func:`fit` is the one loop: shuffled mini-batches, a tqdm bar, a per-epoch history of every
Info field, a callback that sees each epoch and can stop training, and a clear error when
training diverges.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from probsnn import _checks, parallel


class Trainer(NamedTuple):
    """A learning criterion's ``init(params) -> State`` and ``step(key, State, batch) ->
    (State, Info)``, both pure (see the module docstring for the contract)."""

    init: Callable[[Any], Any]
    step: Callable[[jax.Array, Any, Any], tuple[Any, Any]]


def stateless_rule(gradient, name: str, factory=optax.GradientTransformation):
    """A gradient estimator without state: ``init`` gives ``optax.EmptyState()`` and
    ``update(signals, state, params)`` returns ``(gradient(params, signals), state)``.

    Args:
        gradient: ``gradient(params, signals) -> grads``, the loss gradient estimate.
        name: the rule's name, for the error when ``update`` gets no params.
        factory: the GradientTransformation type to build (a subclass may tag the rule).

    Raises:
        ValueError: from ``update`` when ``params`` is None.
    """

    def init(params):
        del params
        return optax.EmptyState()

    def update(signals, state, params=None):
        require_params(params, name)
        return gradient(params, signals), state

    return factory(init, update)


def require_params(params, name: str) -> None:
    """Raise ValueError unless a gradient estimator's ``update`` got the current params."""
    if params is None:
        raise ValueError(f"{name}.update needs params (the current parameters), got None")


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        params: the final parameters (``state.params``).
        state: the trainer's final State (continue training with ``fit(..., state=state)``).
        history: dict of per-epoch numpy arrays ``(epochs_run,)``: the mean over the epoch's
            steps of every Info field (nested fields joined by ``_``; array fields averaged over
            their elements), and ``seconds``, the epoch's wall-clock time.
    """

    params: Any
    state: Any
    history: dict


def fit(
    trainer: Trainer,
    params,
    data,
    *,
    key,
    epochs: int,
    batch_size: int | None = None,
    callback: Callable[[int, Any, dict], bool | None] | None = None,
    progress: bool = True,
    state=None,
    checkpoint=None,
    every: int = 1,
    resume=None,
    mesh=None,
) -> FitResult:
    """Train ``params`` with ``trainer`` for ``epochs`` passes over ``data``.

    Each epoch draws a random permutation of the items and steps through it in mini-batches of
    ``batch_size``; the last ``n mod batch_size`` items of the permutation are left out, so every
    batch has the same static shape and the jitted step compiles once. Each step gets its own
    key, split from ``key``.

    Args:
        trainer: a :class:`Trainer` (any object with ``init`` and ``step``).
        params: the initial parameters (ignored when ``state`` is given).
        data: a pytree of arrays sharing the leading (item) axis ``n``, e.g. spikes
            ``(n, T, N)`` or ``(inputs, targets)``; or None for a trainer that holds its data,
            which then takes one step per epoch with ``batch=None``.
        key: PRNG key (keyword-only).
        epochs: number of passes, >= 1.
        batch_size: items per step, 1 <= batch_size <= n; None uses all n items in one step
            (in their order, without shuffling).
        callback: optional ``callback(epoch, state, info) -> bool | None`` after every epoch,
            ``info`` that epoch's row of the history (a dict of floats); return True to stop.
        progress: show a tqdm bar over epochs with the loss.
        state: optional trainer State to continue from (``FitResult.state``); the optimiser
            continues but the key stream starts anew from ``key`` (use ``resume`` to continue
            a run exactly).
        checkpoint: optional path; every ``every`` epochs (and after the last) the trainer
            State, the running key, the epoch count and the history are written to it
            atomically (:func:`probsnn.io.save_tree`): a crash leaves the last checkpoint
            intact.
        every: epochs between checkpoints, >= 1.
        resume: optional path of a checkpoint written by a run with the same trainer, params
            structure, data size, batch size and ``key``; training continues after its last
            epoch up to ``epochs`` in total, so a run of 1 epoch resumed to 3 equals a run of
            3 epochs bit for bit (same State, same history but for ``seconds``). ``params``
            (or ``state``) gives the structure the checkpoint is read into.
        mesh: optional :class:`jax.sharding.Mesh` from :func:`probsnn.parallel.trial_mesh`:
            each batch's leading axis is split over its devices (the parameters and state are
            replicated), so a trainer's batched work and its sums run on all of them with the
            same result as on one. ``batch_size`` (or n without it) must be a multiple of the
            number of devices.

    Returns:
        :class:`FitResult` ``(params, state, history)``.

    Raises:
        TypeError: a bad key, a trainer without init/step, or a non-callable callback.
        ValueError: epochs < 1, every < 1, a batch size outside 1..n (or not a multiple of the
            mesh's devices), data leaves with different leading sizes, or empty data; a
            ``resume`` checkpoint from another run (another key, data size or batch size) or
            of another structure
            (:class:`probsnn.io.FormatError`).
        FileNotFoundError: ``resume`` names no file.
        FloatingPointError: when an epoch's loss or the parameters become non-finite, or the
            parameters exceed :data:`DIVERGED_MAGNITUDE` (1e15) in magnitude (learning rate or
            step size too large), naming the epoch.
    """
    for attribute in ("init", "step"):
        if not callable(getattr(trainer, attribute, None)):
            raise TypeError(f"trainer must have callable init and step, got {type(trainer)}")
    key = _checks.prng_key(key, "key")
    epochs = _checks.positive_int(epochs, "epochs")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    data, n_items = _host_data(data)
    if n_items is None:
        if batch_size is not None:
            raise ValueError("batch_size must be None when data is None (a full-batch trainer)")
    elif batch_size is not None:
        batch_size = _checks.positive_int(batch_size, "batch_size")
        if batch_size > n_items:
            raise ValueError(f"batch_size must lie in 1..{n_items} (the items), got {batch_size}")
    every = _checks.positive_int(every, "every")
    mesh = parallel.check_mesh(mesh)
    if mesh is not None and n_items is not None:
        size, what = (n_items, "n_items") if batch_size is None else (batch_size, "batch_size")
        parallel.check_divisible(size, mesh, what)
    if state is None:
        state = trainer.init(params)
    if mesh is not None:
        state = parallel.replicate(state, mesh)
    run = {"key": _key_fingerprint(key), "n_items": n_items, "batch_size": batch_size}
    history: dict[str, list] = {}
    first_epoch = 0
    if resume is not None:
        state, key, first_epoch, history = _resume(resume, state, key, run)
    bar = tqdm(range(first_epoch, epochs), desc="epochs", disable=not progress)
    for epoch in bar:
        key, epoch_key = jax.random.split(key)
        began = time.perf_counter()
        state, infos = _epoch(trainer, state, data, n_items, batch_size, epoch_key, mesh)
        row = _mean_fields(infos)
        row["seconds"] = time.perf_counter() - began
        for name, value in row.items():
            history.setdefault(name, []).append(value)
        _check_finite(epoch, row, state)
        if progress and "loss" in row:
            bar.set_postfix(loss=f"{row['loss']:.4g}")
        stop = callback is not None and bool(callback(epoch, state, row))
        if checkpoint is not None and (stop or (epoch + 1) % every == 0 or epoch + 1 == epochs):
            _save_checkpoint(checkpoint, state, key, epoch + 1, history, run)
        if stop:
            break
    history = {name: np.asarray(values) for name, values in history.items()}
    return FitResult(state.params, state, history)


_CHECKPOINT = "fit-checkpoint"


def _key_fingerprint(key) -> list[int]:
    """The key's raw bits, to recognise the run a checkpoint belongs to."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(word) for word in np.asarray(key).ravel()]


def _save_checkpoint(path, state, key, epochs_done: int, history: dict, run: dict) -> None:
    from probsnn import io

    metadata = {"epochs_done": epochs_done, "history": history, "run": run}
    io.save_tree(path, (state, key), kind=_CHECKPOINT, metadata=metadata)


def _resume(path, state, key, run: dict):
    """(state, key, epochs done, history) from the checkpoint at ``path``."""
    from probsnn import io

    (state, key), metadata = io.load_tree(path, (state, key), kind=_CHECKPOINT)
    saved = metadata["run"]
    for name, what in (
        ("key", "key"),
        ("n_items", "number of data items"),
        ("batch_size", "batch_size"),
    ):
        if saved[name] != run[name]:
            raise ValueError(
                f"resume: {path} was written by a run with another {what} "
                f"({saved[name]!r}, this run has {run[name]!r}); pass the same key, data and "
                "batch_size to continue it"
            )
    history = {name: list(values) for name, values in metadata["history"].items()}
    return state, key, int(metadata["epochs_done"]), history


def _host_data(data):
    """Data leaves as arrays with one leading size; returns (data, n) or (None, None)."""
    if data is None:
        return None, None
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data must hold at least one array (or be None)")
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if None in sizes or len(sizes) != 1:
        shapes = [tuple(np.shape(leaf)) for leaf in leaves]
        raise ValueError(f"data arrays must share their leading (item) axis, got shapes {shapes}")
    (n_items,) = sizes
    if n_items == 0:
        raise ValueError("data must hold at least one item, got a leading axis of size 0")
    # host arrays: a batch is a cheap numpy slice, not an eager device gather per step
    return jax.tree.map(np.asarray, data), n_items


def _epoch(trainer, state, data, n_items, batch_size, key, mesh=None):
    """One pass: a permutation in batches (or one full-data step); returns (state, infos).
    With a mesh, each batch's leading axis is split over its devices."""

    def placed(batch):
        return batch if mesh is None else parallel.shard_leading(batch, mesh, "the batch")

    order_key, step_key = jax.random.split(key)
    if n_items is None or batch_size is None:
        state, info = trainer.step(step_key, state, None if data is None else placed(data))
        return state, [info]
    order = np.asarray(jax.random.permutation(order_key, n_items))
    n_batches = n_items // batch_size
    keys = list(jax.random.split(step_key, n_batches))  # one split: no eager call per step
    infos = []
    for index, key in enumerate(keys):
        rows = order[index * batch_size : (index + 1) * batch_size]
        batch = jax.tree.map(lambda leaf, rows=rows: leaf[rows], data)
        state, info = trainer.step(key, state, placed(batch))
        infos.append(info)
    return state, infos


def _mean_fields(infos) -> dict[str, float]:
    """The mean over steps (and over elements) of every leaf of the Info NamedTuples: the
    steps' leaves are stacked on the device and fetched once (one transfer per field)."""
    stacked = jax.device_get(jax.tree.map(lambda *leaves: jnp.stack(leaves), *infos))
    row: dict[str, float] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(stacked)[0]:
        name = "_".join(str(getattr(p, "name", getattr(p, "key", p))) for p in path)
        row[name] = float(np.mean(leaf))
    return row


#: parameters beyond this magnitude count as diverged: no model of the library has meaningful
#: parameters near it, while a learning rate far too large drives them there (to 1e29 and beyond)
#: with a loss that may stay finite (e.g. the cost at a clipped fixed point)
DIVERGED_MAGNITUDE = 1e15


def _check_finite(epoch: int, row: dict, state) -> None:
    loss = row.get("loss")
    leaves = [np.asarray(leaf) for leaf in jax.device_get(jax.tree.leaves(state.params))]
    leaves = [leaf for leaf in leaves if np.issubdtype(leaf.dtype, np.inexact) and leaf.size]
    largest = float(np.max([np.max(np.abs(leaf)) for leaf in leaves])) if leaves else 0.0
    if loss is not None and not np.isfinite(loss):
        what = f"the loss is {loss}"
    elif not np.isfinite(largest):
        what = "the parameters hold NaN or inf"
    elif largest > DIVERGED_MAGNITUDE:
        what = f"the parameters grew to |θ| = {largest:.3g}, beyond {DIVERGED_MAGNITUDE:g}"
    else:
        return
    means = ", ".join(f"{name}={value:.4g}" for name, value in row.items() if name != "loss")
    raise FloatingPointError(
        f"training diverged in epoch {epoch}: {what} (epoch means: {means}); lower the learning "
        "rate (or the relaxation step size)"
    )
