"""Run every criterion on every task it applies to, over seeds, with a cache of finished cells.

A *cell* is one (task, criterion, seed). Its PRNG keys derive from (seed, task, criterion) only,
so the same seed gives the same numbers (wall times aside). A cell that raises is recorded as
failed, with the error, and the other cells go on. A finished cell is written as a checked JSON
record (:mod:`probsnn.compare.cache`: its key, a checksum, written atomically) under
``<out>/cells/<task>/<criterion>/seed<s>-<hash>.json``, the hash covering the task's and the
criterion's settings, the seed and the probsnn version; a later run with the same settings
reads it instead of recomputing. Failed cells are not cached, so they are retried; a damaged or
mismatched cell file is reported, set aside and recomputed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import queue
import time
from numbers import Integral
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

import probsnn
from probsnn import io
from probsnn.compare import cache
from probsnn.compare.criteria import CRITERIA
from probsnn.compare.criteria.base import Criterion, Curve, NotApplicable, compile_seconds
from probsnn.compare.metrics import progress_metric
from probsnn.compare.report import Report
from probsnn.compare.tasks import TASKS, SelectionError, Task, stable_hash

#: Tasks run by default (``--quick`` keeps to the embedded small data sets and CartPole).
DEFAULT_TASKS = ("digits", "mnist", "yinyang", "pattern", "grasshopper", "cartpole", "acrobot")
QUICK_TASKS = ("digits", "pattern", "grasshopper", "cartpole")
DEFAULT_SEEDS = 3


def resolve_tasks(names) -> list[Task]:
    """Tasks by name; raises SelectionError listing the valid names for an unknown one."""
    unknown = [name for name in names if name not in TASKS]
    if unknown:
        raise SelectionError(f"unknown task(s) {unknown}; valid tasks: {sorted(TASKS)}")
    return [TASKS[name] for name in dict.fromkeys(names)]


def resolve_criteria(items) -> list[Criterion]:
    """Criteria by name (or :class:`Criterion` instances, passed through); raises
    listing the valid names for an unknown one (SelectionError)."""
    names = [item for item in items if not isinstance(item, Criterion)]
    unknown = [name for name in names if name not in CRITERIA]
    if unknown:
        raise SelectionError(f"unknown criterion(s) {unknown}; valid criteria: {sorted(CRITERIA)}")
    resolved = [item if isinstance(item, Criterion) else CRITERIA[item] for item in items]
    return list({criterion.name: criterion for criterion in resolved}.values())


def _check_compatible(tasks, criteria) -> None:
    for criterion in criteria:
        if all(criterion.applies(task) for task in tasks):
            task_names = [task.name for task in tasks]
            valid = sorted(
                name
                for name, other in CRITERIA.items()
                if any(other.applies(task) is None for task in tasks)
            )
            raise SelectionError(
                f"criterion {criterion.name!r} applies to none of the tasks {task_names} "
                f"({criterion.applies(tasks[0])}); criteria for these tasks: {valid}; "
                f"tasks for {criterion.name!r}: "
                f"{sorted(t.name for t in TASKS.values() if criterion.applies(t) is None)}"
            )


def _overrides(config, name: str) -> dict | None:
    return None if config is None else config.get(name)


def _check_override_names(config, valid, what: str) -> None:
    unknown = sorted(set(config or {}) - set(valid))
    if unknown:
        raise SelectionError(f"{what} overrides name unknown {what}(s) {unknown}; valid: {valid}")


def cell_hash(task: str, task_config: dict, criterion: str, criterion_config: dict, seed: int):
    """The cache key of a cell: a SHA-256 of its settings, seed and the probsnn version."""
    payload = json.dumps(
        [task, task_config, criterion, criterion_config, seed, probsnn.__version__],
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cell_path(out: Path, task: str, criterion: str, seed: int, digest: str) -> Path:
    return out / "cells" / task / criterion / f"seed{seed}-{digest}.json"


def cell_keys(seed: int, task: str, criterion: str):
    """``(fit_key, score_key, evaluate_key)`` of a cell."""
    key = jax.random.fold_in(jax.random.key(seed), stable_hash(task))
    key = jax.random.fold_in(key, stable_hash(criterion))
    return tuple(jax.random.split(key, 3))


def _raster_record(raster) -> dict | None:
    if raster is None:
        return None
    raster = np.asarray(raster)
    times, neurons = np.nonzero(raster)
    return {"shape": list(raster.shape), "times": times.tolist(), "neurons": neurons.tolist()}


def _metric_record(value):
    if isinstance(value, NotApplicable):
        return {"n/a": value.reason}
    if value is None:
        return None
    value = float(value)
    if not np.isfinite(value):
        raise FloatingPointError(f"a metric came out non-finite ({value})")
    return value


def run_cell(
    task: Task,
    criterion: Criterion,
    task_config,
    criterion_config,
    seed,
    data,
    workdir: Path | None = None,
) -> dict:
    """Fit and evaluate one cell; a raised exception becomes a failed cell with its message.

    The record holds the metrics, the learning curve, a raster, and the cell's wall time and the
    part of it spent compiling (fit and evaluation together). The curve's first point at the
    task's target gives the progress to target (parameter updates, or training episodes for a
    control task: :func:`probsnn.compare.metrics.progress_metric`) and the seconds to it. With a
    ``workdir`` the training is checkpointed there (a killed run resumes inside the cell), the
    fitted model is saved as ``model.npz`` beside it (:func:`probsnn.io.save_tree`; read it with
    ``probsnn.io.load_tree(path, kind="compare-model")``) and the checkpoints are removed when
    the cell ends."""
    fit_key, score_key, evaluate_key = cell_keys(seed, task.name, criterion.name)
    curve = Curve(
        lambda model: criterion.score(task, model, data, criterion_config, score_key), workdir
    )
    record = {"task": task.name, "criterion": criterion.name, "seed": seed}
    began, wall_began = time.perf_counter(), time.time()
    try:
        model = criterion.fit(task, data, criterion_config, fit_key, curve)
        fit_seconds = curve.finish()
        if workdir is not None:
            record["model"] = _save_model(workdir, model, record)
        metrics = criterion.evaluate(task, model, data, criterion_config, evaluate_key)
        raster = metrics.pop("raster", None)
        reached = curve.first_reaching(task.target)
        metrics["fit_seconds"] = fit_seconds
        metrics[progress_metric(task.kind)] = None if reached is None else reached[0]
        metrics["seconds_to_target"] = None if reached is None else reached[1]
        record["metrics"] = {key: _metric_record(value) for key, value in metrics.items()}
    except Exception as error:  # a failing criterion must not stop the others
        _clear_checkpoints(workdir)
        return {**record, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    _clear_checkpoints(workdir)
    return {
        **record,
        "status": "ok",
        "wall_seconds": time.perf_counter() - began,
        "compile_seconds": compile_seconds(wall_began, time.time()),
        "curve": {"updates": curve.updates, "seconds": curve.seconds, "values": curve.values},
        "raster": _raster_record(raster),
    }


def _save_model(workdir: Path, model, record: dict) -> str | None:
    """Save the cell's fitted model in ``workdir``; its file name, or None for a model holding
    objects that are not arrays (then the record says so by the missing file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        path = io.save_tree(workdir / "model.npz", model, kind="compare-model", metadata=record)
    except TypeError:
        return None
    return path.name


def _clear_checkpoints(workdir: Path | None) -> None:
    if workdir is not None and workdir.is_dir():
        for path in [*workdir.glob("training*.npz"), workdir / "curve.json"]:
            path.unlink(missing_ok=True)


def _prepare(task: Task, config: dict, seed: int):
    """The task's data, or the exception that preparing it raised (reported in its cells)."""
    try:
        return task.prepare(config, seed)
    except Exception as error:  # a task that cannot load must not stop the others
        return error


def _execute(plan, out, fresh: bool, done, device=None) -> list[dict]:
    """Run (or read from the cache) the cells of ``plan`` in order, calling ``done()`` after
    each; data are prepared once per (task, seed) run of consecutive cells. ``device``: the
    device the caller placed the cells on (None: JAX's default device)."""
    device_name = str(device if device is not None else jax.devices()[0])
    cells, data = [], {}
    for task, t_config, criterion, c_config, seed in plan:
        digest = cell_hash(task.name, t_config, criterion.name, c_config, seed)
        key = cache.cell_key(task.name, criterion.name, t_config, c_config, seed)
        path = None if out is None else cell_path(out, task.name, criterion.name, seed, digest)
        cached = None if path is None or fresh else cache.read_cell(path, key)
        if cached is not None:
            cells.append({**cached, "cached": True})
            done()
            continue
        if (task.name, seed) not in data:
            data = {(task.name, seed): _prepare(task, t_config, seed)}
        prepared = data[(task.name, seed)]
        if isinstance(prepared, Exception):
            error = f"preparing the data: {type(prepared).__name__}: {prepared}"
            cell = {"task": task.name, "criterion": criterion.name, "seed": seed}
            cell.update(status="failed", error=error)
        else:
            workdir = None if path is None else path.with_suffix(".work")
            cell = run_cell(task, criterion, t_config, c_config, seed, prepared, workdir)
        cell["hash"] = digest
        cell["config"] = {"task": t_config, "criterion": c_config}
        cell["device"] = device_name
        if path is not None and cell["status"] == "ok":
            cache.write_cell(path, key, cell)
        cells.append({**cell, "cached": False})
        done()
    return cells


def _execute_by_name(named_plan, out, fresh) -> list[dict]:
    """:func:`_execute` in a worker process: tasks and criteria are sent by registry name."""
    plan = [(TASKS[t], tc, CRITERIA[c], cc, s) for t, tc, c, cc, s in named_plan]
    return _execute(plan, out, fresh, lambda: None)


def _execute_in_workers(plan, out, fresh, workers: int, bar) -> list[dict]:
    """Run the cells of each (task, criterion) in one of ``workers`` processes (spawned): XLA
    compiles on one thread, so on a 2-core machine two processes compile twice as fast."""

    def submit(pool, cells):
        named = [(t.name, tc, c.name, cc, s) for t, tc, c, cc, s in cells]
        return pool.submit(_execute_by_name, named, out, fresh)

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return _gather(plan, pool, submit, bar)


def _gather(plan, pool, submit, bar) -> list[dict]:
    """The cells of ``plan`` in its order, each (task, criterion) group run by
    ``submit(pool, cells)`` (a future of the group's cells)."""
    groups = {}
    for index, cell in enumerate(plan):
        groups.setdefault((cell[0].name, cell[2].name), []).append((index, cell))
    ordered = [None] * len(plan)
    futures = {submit(pool, [cell for _, cell in group]): group for group in groups.values()}
    for future in concurrent.futures.as_completed(futures):
        group = futures[future]
        for (index, _), cell in zip(group, future.result(), strict=True):
            ordered[index] = cell
        bar.update(len(group))
    return ordered


def resolve_devices(devices, workers: int = 1) -> list | None:
    """The devices that run cells side by side: None (the default device, one cell at a
    time), the first ``devices`` of :func:`jax.devices`, or the given devices.

    Raises:
        SelectionError: a count below 1 or above the devices there are, a sequence that is
            empty, repeats a device or holds something else, or devices with workers > 1.
    """
    if devices is None:
        return None
    available = jax.devices()
    if isinstance(devices, Integral) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise SelectionError(
                f"devices must be between 1 and the {len(available)} devices there are, "
                f"got {devices}"
            )
        chosen = available[: int(devices)]
    elif isinstance(devices, list | tuple) and devices:
        if not all(isinstance(device, jax.Device) for device in devices):
            raise SelectionError(f"devices must be jax.Device objects, got {devices!r}")
        if len(set(devices)) != len(devices):
            raise SelectionError(f"devices must be distinct, got {devices!r}")
        chosen = list(devices)
    else:
        raise SelectionError(
            "devices must be None, a count >= 1 or a non-empty list of jax devices, "
            f"got {devices!r}"
        )
    if workers > 1:
        raise SelectionError(
            f"devices and workers > 1 are exclusive: workers split the cells over processes, "
            f"devices over the devices of this process; got devices={devices!r}, workers={workers}"
        )
    return chosen


def _execute_on_devices(plan, out, fresh, devices: list, bar) -> list[dict]:
    """Run the cells of each (task, criterion) on one of ``devices``, side by side: one thread
    per device, each group under :func:`jax.default_device` of a device no other group holds
    meanwhile. A cell's numbers do not depend on its device's place (its keys are its own); its
    record says which device ran it."""
    free = queue.SimpleQueue()
    for device in devices:
        free.put(device)

    def run(cells):
        device = free.get()
        try:
            with jax.default_device(device):
                return _execute(cells, out, fresh, lambda: None, device)
        finally:
            free.put(device)

    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        return _gather(plan, pool, lambda pool, cells: pool.submit(run, cells), bar)


def select(
    tasks=None,
    criteria=None,
    *,
    quick: bool = False,
    seed: int = 0,
    n_seeds: int = DEFAULT_SEEDS,
    workers: int = 1,
    devices=None,
    task_config: dict | None = None,
    criterion_config: dict | None = None,
):
    """Check a comparison's selection before any work; return ``(tasks, criteria, seeds)``.

    The arguments are those of :func:`compare`, which calls this first (so does the command
    line, before it touches the report folder).

    Raises:
        SelectionError: as listed by :func:`compare`.
    """
    tasks = resolve_tasks(list(tasks) if tasks else (QUICK_TASKS if quick else DEFAULT_TASKS))
    explicit = criteria is not None
    criteria = resolve_criteria(list(criteria) if explicit else list(CRITERIA))
    if explicit:
        _check_compatible(tasks, criteria)
    for name, value, minimum in (
        ("seed", seed, 0),
        ("n_seeds", n_seeds, 1),
        ("workers", workers, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise SelectionError(f"{name} must be an integer >= {minimum}, got {value!r}")
    resolve_devices(devices, workers)
    unregistered = [c.name for c in criteria if CRITERIA.get(c.name) is not c]
    if workers > 1 and unregistered:
        raise SelectionError(
            f"workers > 1 runs registered criteria only (by name); not registered: {unregistered}"
        )
    _check_override_names(task_config, sorted(TASKS), "task")
    _check_override_names(criterion_config, sorted(CRITERIA), "criterion")
    for task in tasks:  # unknown setting names raise here, before any cell runs
        task.config(quick, _overrides(task_config, task.name))
        for criterion in criteria:
            if criterion.applies(task) is None:
                criterion.config(task, quick, _overrides(criterion_config, criterion.name))
    seeds = list(range(int(seed), int(seed) + int(n_seeds)))
    return tasks, criteria, seeds


def compare(
    tasks=None,
    criteria=None,
    *,
    quick: bool = False,
    seed: int = 0,
    n_seeds: int = DEFAULT_SEEDS,
    out=None,
    task_config: dict | None = None,
    criterion_config: dict | None = None,
    fresh: bool = False,
    progress: bool = True,
    workers: int = 1,
    devices=None,
) -> Report:
    """Compare criteria on tasks over seeds ``seed .. seed + n_seeds − 1``.

    Args:
        tasks: task names (default: all, or the quick set with ``quick``); see
            :data:`probsnn.compare.TASKS`.
        criteria: criterion names or :class:`Criterion` instances (default: all registered,
            :data:`probsnn.compare.CRITERIA`).
        quick: the smaller settings of every task and criterion (minutes on a 2-core CPU).
        seed, n_seeds: the seeds; metrics get 95 % confidence intervals over them.
        out: report folder for the cell cache (and, with :meth:`Report.write`, the tables and
            figures); None keeps everything in memory.
        task_config, criterion_config: ``{name: {setting: value}}`` overrides.
        fresh: recompute cells even when cached.
        progress: show a tqdm bar over the cells.
        workers: processes that run (task, criterion) groups side by side (spawned; registered
            criteria only). The numbers do not depend on it.
        devices: devices that run (task, criterion) groups side by side in threads of this
            process, one group per device at a time (GPUs of one host, say): a count of
            :func:`jax.devices` or a list of devices; None runs every cell on the default
            device. The numbers do not depend on it; each cell's record names its device.

    Returns:
        A :class:`probsnn.compare.Report`.

    Raises:
        SelectionError (a ValueError): unknown task or criterion names or settings (listing the
            valid ones), a criterion that applies to none of the tasks, a seed < 0, n_seeds or
            workers < 1, or workers > 1 with a criterion that is not registered; devices that
            are not a count of the devices there are nor a list of distinct devices, or
            devices with workers > 1.
        NotADirectoryError: ``out`` is a file.
    """
    tasks, criteria, seeds = select(
        tasks,
        criteria,
        quick=quick,
        seed=seed,
        n_seeds=n_seeds,
        workers=workers,
        devices=devices,
        task_config=task_config,
        criterion_config=criterion_config,
    )
    devices = resolve_devices(devices, workers)
    out = None if out is None else Path(out)
    plan = []
    for task in tasks:
        t_config = task.config(quick, _overrides(task_config, task.name))
        runnable = [
            (criterion, criterion.config(task, quick, _overrides(criterion_config, criterion.name)))
            for criterion in criteria
            if criterion.applies(task) is None
        ]
        plan += [(task, t_config, c, c_config, s) for s in seeds for c, c_config in runnable]
    if out is not None and out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a folder, got the file {str(out)!r}")
    began = time.perf_counter()
    bar = tqdm(total=len(plan), desc="compare", disable=not progress)
    if devices is not None:
        cells = _execute_on_devices(plan, out, fresh, devices, bar)
    elif workers == 1:
        cells = _execute(plan, out, fresh, lambda: bar.update(1))
    else:
        cells = _execute_in_workers(plan, out, fresh, workers, bar)
    bar.close()
    return Report(
        tasks=tasks,
        criteria=criteria,
        seeds=seeds,
        quick=quick,
        cells=cells,
        seconds=time.perf_counter() - began,
        out=out,
    )
