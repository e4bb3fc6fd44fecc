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

from probsnn import _checks


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
        state: optional trainer State to continue from (``FitResult.state``).

    Returns:
        :class:`FitResult` ``(params, state, history)``.

    Raises:
        TypeError: a bad key, a trainer without init/step, or a non-callable callback.
        ValueError: epochs < 1, a batch size outside 1..n, data leaves with different leading
            sizes, or empty data.
        FloatingPointError: when an epoch's loss or the parameters become non-finite (learning
            rate or step size too large), naming the epoch.
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
    if state is None:
        state = trainer.init(params)
    history: dict[str, list] = {}
    bar = tqdm(range(epochs), desc="epochs", disable=not progress)
    for epoch in bar:
        key, epoch_key = jax.random.split(key)
        began = time.perf_counter()
        state, infos = _epoch(trainer, state, data, n_items, batch_size, epoch_key)
        row = _mean_fields(infos)
        row["seconds"] = time.perf_counter() - began
        for name, value in row.items():
            history.setdefault(name, []).append(value)
        _check_finite(epoch, row, state)
        if progress and "loss" in row:
            bar.set_postfix(loss=f"{row['loss']:.4g}")
        if callback is not None and callback(epoch, state, row):
            break
    history = {name: np.asarray(values) for name, values in history.items()}
    return FitResult(state.params, state, history)


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


def _epoch(trainer, state, data, n_items, batch_size, key):
    """One pass: a permutation in batches (or one full-data step); returns (state, infos)."""
    order_key, step_key = jax.random.split(key)
    if n_items is None or batch_size is None:
        state, info = trainer.step(step_key, state, data)
        return state, [info]
    order = np.asarray(jax.random.permutation(order_key, n_items))
    n_batches = n_items // batch_size
    keys = list(jax.random.split(step_key, n_batches))  # one split: no eager call per step
    infos = []
    for index, key in enumerate(keys):
        rows = order[index * batch_size : (index + 1) * batch_size]
        batch = jax.tree.map(lambda leaf, rows=rows: leaf[rows], data)
        state, info = trainer.step(key, state, batch)
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


def _check_finite(epoch: int, row: dict, state) -> None:
    loss = row.get("loss")
    finite = jax.tree.map(lambda leaf: jnp.all(jnp.isfinite(leaf)), state.params)
    if loss is not None and not np.isfinite(loss):
        what = f"the loss is {loss}"
    elif not all(bool(f) for f in jax.tree.leaves(finite)):
        what = "the parameters hold NaN or inf"
    else:
        return
    means = ", ".join(f"{name}={value:.4g}" for name, value in row.items() if name != "loss")
    raise FloatingPointError(
        f"training diverged in epoch {epoch}: {what} (epoch means: {means}); lower the learning "
        "rate (or the relaxation step size)"
    )
