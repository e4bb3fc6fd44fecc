"""Wall time of ``probsnn compare --quick`` and of the full comparison, per criterion.

Runs the command line from scratch (``--fresh``, a new report folder, a new process: imports and
JIT compilation included) and reads the per-cell times from its ``results.json``: each cell's
wall time (fit + evaluation), the part spent compiling, and the training time without
compilation (the table's "fit s"). With ``--workers 2`` cells run in two processes, so the
per-criterion sums exceed the elapsed time.

    python benchmarks/compare_wall_time.py            # --quick, then the full comparison
    python benchmarks/compare_wall_time.py --quick-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _header import print_header


def run(arguments: list[str], out: Path) -> tuple[float, dict]:
    """Elapsed seconds of ``probsnn compare ARGUMENTS --fresh --out OUT`` and its results."""
    command = [sys.executable, "-m", "probsnn.cli", "compare", *arguments, "--fresh"]
    began = time.perf_counter()
    subprocess.run([*command, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - began
    return elapsed, json.loads((out / "results.json").read_text())


def per_criterion(results: dict) -> dict:
    totals = defaultdict(lambda: defaultdict(float))
    for cell in results["cells"]:
        if cell["status"] != "ok":
            continue
        entry = totals[cell["criterion"]]
        entry["cells"] += 1
        entry["wall"] += cell["wall_seconds"]
        entry["compile"] += cell["compile_seconds"]
        entry["fit"] += cell["metrics"]["fit_seconds"]
    return totals


def report(label: str, elapsed: float, results: dict) -> dict:
    totals = per_criterion(results)
    print(f"\n{label}: {elapsed:.0f} s elapsed (new process, compilation included)")
    print(f"{'criterion':18s} {'cells':>5s} {'wall s':>8s} {'compile s':>10s} {'fit s':>7s}")
    for name, entry in totals.items():
        print(
            f"{name:18s} {int(entry['cells']):5d} {entry['wall']:8.1f} {entry['compile']:10.1f} "
            f"{entry['fit']:7.1f}"
        )
    wall = sum(entry["wall"] for entry in totals.values())
    print(f"{'sum over cells':18s} {'':5s} {wall:8.1f}")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-only", action="store_true", help="skip the full comparison")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--keep", help="folder to keep the two reports in (default: discarded)")
    args = parser.parse_args()
    print_header(
        "Wall time of probsnn compare (--quick and full), per criterion",
    )
    workers = ["--workers", str(args.workers)]
    print(f"setting: {os.cpu_count()} CPU cores, --workers {args.workers}, 3 seeds")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        quick_elapsed, quick = run(["--quick", *workers], folder / "quick")
        quick_totals = report("probsnn compare --quick", quick_elapsed, quick)
        if args.quick_only:
            return
        full_elapsed, full = run(workers, folder / "full")
        full_totals = report("probsnn compare (full)", full_elapsed, full)
    print(f"\nfull / quick elapsed: {full_elapsed / quick_elapsed:.1f}x")
    for name, entry in full_totals.items():
        if name in quick_totals:
            ratio = entry["wall"] / quick_totals[name]["wall"]
            print(f"  {name:18s} full / quick wall: {ratio:.1f}x")


if __name__ == "__main__":
    main()
