"""The header every benchmark prints above its tables: date, machine, versions and the peer.

A timing means little without the machine and the versions it was taken with, and a ratio means
nothing without the peer's configuration; :func:`print_header` prints all of it in one block so
that a pasted table carries its context.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jax", "jaxlib", "numpy", "probsnn")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> str:
    """Logical cores, and the ones this process may use when that differs."""
    total = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = total
    return f"{total} cores" if usable == total else f"{total} cores ({usable} usable)"


def version(distribution: str) -> str:
    """Installed version of ``distribution``, or ``"not installed"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def gcc_version() -> str:
    """Version of the gcc on the path (the compiler of Brian2's generated code), or
    ``"unknown"``."""
    try:
        return subprocess.run(
            ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_commit() -> str:
    """Short commit of the working tree, with ``+changes`` when it differs from the commit."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" +changes" if dirty else "")


def print_header(title: str, peers: dict[str, str] | None = None, packages=()) -> None:
    """Print the benchmark's title, the date, the machine, the versions and the peers.

    Args:
        title: What the benchmark measures (one line).
        peers: Peer name -> its configuration (solver, tolerances, code-generation target,
            precision, threads), printed one per line; None or empty for a benchmark without a
            peer library.
        packages: Extra distributions whose versions to print (the peers'), after python, jax,
            jaxlib, numpy and probsnn.
    """
    import jax  # imported here so that the header can be printed before anything is compiled

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = [f"python {platform.python_version()}"]
    versions += [f"{name} {version(name)}" for name in (*PACKAGES, *packages)]
    devices = jax.devices()
    print(f"# {title}")
    print(f"date:     {now}")
    print(
        f"machine:  {cpu_model()}, {cores()}, {platform.system()} {platform.machine()}; "
        f"jax backend {devices[0].platform} ({len(devices)} device{'s' * (len(devices) > 1)}"
        f"{'' if devices[0].platform == 'cpu' else ': ' + devices[0].device_kind})"
    )
    print(f"versions: {', '.join(versions)} (git {git_commit()})")
    for name, configuration in (peers or {"none": "probsnn timed on its own"}).items():
        print(f"peer:     {name}: {configuration}")
    print(f"command:  python {' '.join(sys.argv)}")
    sys.stdout.flush()
