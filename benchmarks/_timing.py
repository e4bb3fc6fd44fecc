"""Timing shared by the benchmark scripts (run them as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import jax


def best_time(function, repeats: int = 3, warmup: bool = False):
    """Best wall time of ``repeats`` calls of ``function()`` (JAX results waited for).

    With ``warmup`` one untimed call runs first (compilation). Returns ``(output, seconds)``.
    """
    if warmup:
        jax.block_until_ready(function())
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(function())
        best = min(best, time.perf_counter() - start)
    return out, best


def worker_result(script: str, *arguments, env=None) -> dict:
    """Run ``python script *arguments`` in a process of its own (a fresh JAX: its device count,
    its peak memory) and return the JSON object its last line of output printed."""
    command = [sys.executable, script, *map(str, arguments)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def device_peak_bytes() -> int | None:
    """Peak memory of JAX's default device in bytes since the process started, or None where
    its backend keeps no count (the CPU: there the process's peak RSS is the figure)."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    return (device.memory_stats() or {}).get("peak_bytes_in_use")
