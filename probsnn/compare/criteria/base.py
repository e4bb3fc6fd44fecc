"""The uniform surface of a criterion in the comparison, and its learning-curve recorder.

A criterion adapter wraps one learner of :mod:`probsnn.inference` with its own API untouched:

* :meth:`Criterion.applies` — None, or why the criterion does not apply to a task;
* :meth:`Criterion.config` — its settings for a task (JSON-able; they key the result cache);
* :meth:`Criterion.fit` — train on the task's training data through the learner's trainer and
  :func:`probsnn.inference.fit`, through :func:`train`, which records the learning curve after
  each epoch (or solver iteration) with the number of parameter updates so far;
* :meth:`Criterion.score` — the task's headline metric (accuracy, or bits per spike) on the
  held-out data, used by the learning curve;
* :meth:`Criterion.evaluate` — every metric it can report (:data:`probsnn.compare.metrics.METRICS`),
  :class:`NotApplicable` with a short reason for the others.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, NamedTuple

import jax
from jax import monitoring

from probsnn.compare import cache
from probsnn.compare.tasks import merge_config
from probsnn.inference._training import fit

#: Learning-curve checkpoints per run at most (each evaluates on the held-out data).
MAX_CHECKPOINTS = 20

#: (thread, start, end) of every compilation span: cells run side by side on several devices
#: (``compare(devices=...)``) run in threads, and each counts its own thread's compilations
_COMPILE_SPANS: list[tuple[int, float, float]] = []


def _record_compile_span(event: str, start: float, end: float, **kwargs) -> None:
    if event.startswith("/jax/core/compile/"):
        _COMPILE_SPANS.append((threading.get_ident(), start, end))


monitoring.register_event_time_span_listener(_record_compile_span)


def compile_seconds(since: float, until: float) -> float:
    """Seconds of the wall-clock window [since, until] (``time.time()``) that JAX spent tracing,
    lowering and compiling in the calling thread, from the spans ``jax.monitoring`` reports
    under ``/jax/core/compile/``; nested spans (a jitted function traced inside another) count
    once."""
    thread = threading.get_ident()
    total, reach = 0.0, since
    for start, end in sorted(span[1:] for span in _COMPILE_SPANS if span[0] == thread):
        start, end = max(start, reach), min(end, until)
        if end > start:
            total += end - start
            reach = end
    return total


class NotApplicable(NamedTuple):
    """A metric or a (task, criterion) pair that does not apply, and why."""

    reason: str


class Curve:
    """Learning curve: the headline metric at checkpoints, against updates and training time.

    ``start`` the clock, then ``checkpoint(updates, model)`` after each epoch (the clock stops
    while ``score`` evaluates, after waiting for the model's arrays); ``finish`` returns the
    training seconds. Training time excludes JAX compilation (:func:`compile_seconds`), which
    depends on what ran before in the process rather than on the criterion.

    With a ``workdir``, a long cell can resume: :func:`train` checkpoints the training there
    (:func:`probsnn.inference.fit` with ``checkpoint=``/``resume=``) and the curve keeps its
    points in ``curve.json`` beside it, so a run killed inside the cell continues from its last
    checkpoint.

    Args:
        score: ``score(model) -> float``, the headline metric on held-out data.
        workdir: optional folder for the cell's training checkpoints (created on demand).
    """

    def __init__(self, score: Callable[[object], float], workdir: Path | None = None):
        self._score = score
        self.workdir = None if workdir is None else Path(workdir)
        self.updates: list[int] = []
        self.seconds: list[float] = []
        self.values: list[float] = []
        self._elapsed = 0.0
        self._since: float | None = None
        self._wall_since = 0.0
        self._trainings = 0
        if self.workdir is not None and (self.workdir / "curve.json").is_file():
            saved = json.loads((self.workdir / "curve.json").read_text())
            self.updates, self.seconds, self.values = (
                saved["updates"],
                saved["seconds"],
                saved["values"],
            )
            self._elapsed = self.seconds[-1] if self.seconds else 0.0

    def next_checkpoint_path(self) -> Path | None:
        """The checkpoint file of the next :func:`train` call of this cell, or None."""
        if self.workdir is None:
            return None
        self._trainings += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir / f"training{self._trainings}.npz"

    def start(self) -> None:
        self._since = time.perf_counter()
        self._wall_since = time.time()

    def checkpoint(self, updates: int, model) -> None:
        """Record the headline metric of ``model`` after ``updates`` parameter updates."""
        jax.block_until_ready(model)
        self._pause()
        while self.updates and self.updates[-1] >= updates:  # redone after a resume
            for points in (self.updates, self.seconds, self.values):
                points.pop()
        self.updates.append(int(updates))
        self.seconds.append(self._elapsed)
        self.values.append(float(self._score(model)))
        if self.workdir is not None:
            points = {"updates": self.updates, "seconds": self.seconds, "values": self.values}
            cache.write_atomic(self.workdir / "curve.json", json.dumps(points))
        self.start()

    def finish(self) -> float:
        """Stop the clock if it runs; return the training seconds."""
        if self._since is not None:
            self._pause()
        return self._elapsed

    def _pause(self) -> None:
        if self._since is None:
            raise RuntimeError("Curve.start() must be called before checkpoints")
        compiling = compile_seconds(self._wall_since, time.time())
        self._elapsed += time.perf_counter() - self._since - compiling
        self._since = None

    def first_reaching(self, target: float) -> tuple[int, float] | None:
        """``(updates, seconds)`` of the first checkpoint whose value is >= ``target``."""
        for updates, seconds, value in zip(self.updates, self.seconds, self.values, strict=True):
            if value >= target:
                return updates, seconds
        return None


class Criterion:
    """Base class of the adapters (see the module docstring).

    Class attributes:
        name: registry name. title: one line for tables. local: "yes: …", "no: …" or
            "partly: …", whether its weight updates use only quantities available at the synapse
            (pre- and postsynaptic activity and at most a broadcast global signal).
        log_lik: what its held-out log-likelihood is ("exact", "ELBO (lower bound)", …) or None.
        not_applicable: task kind -> reason, for the kinds it does not handle.
        defaults, quick: task kind -> settings, and the entries ``--quick`` changes.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    local: ClassVar[str]
    log_lik: ClassVar[str | None] = None
    not_applicable: ClassVar[dict[str, str]] = {}
    defaults: ClassVar[dict[str, dict]] = {}
    quick: ClassVar[dict[str, dict]] = {}

    def applies(self, task) -> str | None:
        """None when the criterion runs on ``task``, else the reason it does not."""
        return self.not_applicable.get(task.kind)

    def config(self, task, quick: bool = False, overrides: dict | None = None) -> dict:
        """Settings for ``task`` (defaults, ``--quick`` entries, then ``overrides``).

        Raises:
            SelectionError: an override key that is not a setting, listing the valid ones.
        """
        quick_entries = self.quick.get(task.kind, {}) if quick else {}
        return merge_config(self.defaults[task.kind], quick_entries, overrides, self.name)

    def memo(self, factory, spec, config: dict):
        """``factory()`` once per network ``spec`` and settings: trainers whose jitted steps are
        closures are built once, so each compiles once per run rather than once per seed."""
        cache = self.__dict__.setdefault("_memo", {})
        key = (spec, json.dumps(config, sort_keys=True))
        if key not in cache:
            cache[key] = factory()
        return cache[key]

    def fit(self, task, data, config: dict, key, curve: Curve):
        """Train on ``data``; return the model (a pytree)."""
        raise NotImplementedError

    def score(self, task, model, data, config: dict, key) -> float:
        """The task's headline metric of ``model`` on the held-out data."""
        raise NotImplementedError

    def evaluate(self, task, model, data, config: dict, key) -> dict:
        """Every metric: a float, or :class:`NotApplicable`. May include ``"raster"``: a uint8
        ``(T, N)`` array of the learner's spikes on one held-out sample."""
        raise NotImplementedError


def train(
    curve: Curve,
    trainer,
    params,
    data,
    *,
    key,
    epochs: int,
    batch_size: int | None = None,
    updates_per_batch: int = 1,
    stop=None,
):
    """Train with :func:`probsnn.inference.fit` and record the learning curve; return the
    trained params.

    The clock starts here; ``state.params`` is checkpointed after every
    :func:`checkpoint_spacing` epochs, after the last, and when ``stop(info)`` (a predicate on
    the epoch's Info means) ends training early. Updates are counted as the epoch's batches
    (``n // batch_size``, or one when ``batch_size`` or ``data`` is None) × ``updates_per_batch``.
    """
    n_batches = 1
    if data is not None and batch_size is not None:
        n_batches = len(jax.tree.leaves(data)[0]) // batch_size
    updates_per_epoch = n_batches * updates_per_batch
    spacing = checkpoint_spacing(epochs)
    curve.start()

    def callback(epoch, state, info):
        done = epoch + 1
        stopping = stop is not None and bool(stop(info))
        if done % spacing == 0 or done == epochs or stopping:
            curve.checkpoint(done * updates_per_epoch, state.params)
        return stopping

    checkpoint = curve.next_checkpoint_path()
    resume = checkpoint if checkpoint is not None and checkpoint.is_file() else None
    result = fit(
        trainer,
        params,
        data,
        key=key,
        epochs=epochs,
        batch_size=batch_size,
        callback=callback,
        progress=False,
        checkpoint=checkpoint,
        every=spacing,
        resume=resume,
    )
    return result.params


def checkpoint_spacing(epochs: int) -> int:
    """Epochs between learning-curve checkpoints: at most :data:`MAX_CHECKPOINTS` per run."""
    return max(1, math.ceil(epochs / MAX_CHECKPOINTS))
