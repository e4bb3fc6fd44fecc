"""The cache of finished cells: one checked JSON record per (task, criterion, seed, settings).

A record is ``{"format", "key", "checksum", "cell"}``: the record format, the cell's key (task,
criterion, a hash of the task's and the criterion's settings, seed, probsnn version, record
format), a SHA-256 of the cell's canonical JSON, and the cell. It is written atomically (a
temporary file in the same folder, flushed, then renamed over the cell's file), so a run killed
while writing leaves either the old file or the new one, never a partial one; a leftover
temporary file is never read as a cell.

On reading, a file that is empty, truncated or not JSON, not a record of this format, made for
another key (e.g. copied under another seed's name) or whose checksum does not match its cell
(a hand-edited metric) is reported with a :class:`CorruptCellWarning` naming the file and why,
moved aside to ``<name>.corrupt``, and the cell is recomputed. A record of a failed cell is not
reused: the cell is run again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import probsnn

#: Version of the record layout; a record of another format is set aside and recomputed.
RECORD_FORMAT = 2


def _file_mode() -> int:
    """The mode a new file gets under the process's umask (mkstemp's files are private)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


class CorruptCellWarning(RuntimeWarning):
    """A cached cell that cannot be used (it is set aside and recomputed); the message names the
    file and why."""


def settings_hash(task_config: dict, criterion_config: dict) -> str:
    """SHA-256 (16 hex digits) of the task's and the criterion's settings."""
    payload = json.dumps([task_config, criterion_config], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cell_key(task: str, criterion: str, task_config: dict, criterion_config: dict, seed: int):
    """The key a cell's record carries and is checked against."""
    return {
        "task": task,
        "criterion": criterion,
        "settings": settings_hash(task_config, criterion_config),
        "seed": seed,
        "version": probsnn.__version__,
        "format": RECORD_FORMAT,
    }


def checksum(cell: dict) -> str:
    """SHA-256 of the cell's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(cell, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` through a temporary file in the
    same folder, flushed to disk, and a rename: a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            os.fchmod(file.fileno(), _FILE_MODE)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_cell(path: Path, key: dict, cell: dict) -> None:
    """Write ``cell`` with its key and checksum to ``path``, atomically."""
    cell = json.loads(json.dumps(cell))  # the JSON form, so the checksum matches what is read
    record = {"format": RECORD_FORMAT, "key": key, "checksum": checksum(cell), "cell": cell}
    write_atomic(path, json.dumps(record))


def _problem(record, key: dict) -> str | None:
    """Why ``record`` (parsed JSON) is not a usable record of ``key``, or None."""
    if isinstance(record, dict) and "format" not in record and "status" in record:
        return "a cell of an older probsnn, without key and checksum"
    if not isinstance(record, dict) or not {"format", "key", "checksum", "cell"} <= set(record):
        return "not a cell record (expected the fields format, key, checksum, cell)"
    if record["format"] != RECORD_FORMAT:
        return f"record format {record['format']!r}, expected {RECORD_FORMAT}"
    stored = record["key"]
    if not isinstance(stored, dict):
        return f"its key is not a mapping: {stored!r}"
    differ = [
        f"{name} {stored.get(name)!r} (expected {key[name]!r})"
        for name in key
        if stored.get(name) != key[name]
    ]
    if differ:
        return "made for another cell: " + ", ".join(differ)
    cell = record["cell"]
    if not isinstance(cell, dict) or checksum(cell) != record["checksum"]:
        return "checksum mismatch: the cell was edited or damaged"
    for name in ("task", "criterion", "seed"):
        if cell.get(name) != key[name]:
            return f"its cell says {name} {cell.get(name)!r} (expected {key[name]!r})"
    if cell.get("status") not in ("ok", "failed"):
        return f"unknown status {cell.get('status')!r}"
    return None


def set_aside(path: Path, reason: str) -> Path:
    """Move an unusable cell file to ``<name>.corrupt`` and warn, naming it and ``reason``."""
    aside = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, aside)
        where = f"moved aside to {aside.name}"
    except OSError as error:  # e.g. a read-only folder: recompute without moving it
        where = f"could not move it aside ({error.strerror or error})"
    warnings.warn(
        f"cached cell {path}: {reason}; {where}, recomputing", CorruptCellWarning, stacklevel=3
    )
    return aside


def read_cell(path: Path, key: dict) -> dict | None:
    """The cached cell at ``path`` if its record is sound and made for ``key``; None when there
    is none, when it records a failure (run again), or when it is unusable (then it is set aside
    with a :class:`CorruptCellWarning`)."""
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        set_aside(path, f"cannot be read ({error.strerror or error})")
        return None
    if not text.strip():
        set_aside(path, "empty file")
        return None
    try:
        record = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        set_aside(path, f"not valid JSON, truncated or garbage ({error})")
        return None
    problem = _problem(record, key)
    if problem is not None:
        set_aside(path, problem)
        return None
    if record["cell"]["status"] != "ok":
        return None  # a failed cell is retried
    return record["cell"]
