"""Data parallelism over trials on 4 forced CPU devices equals one device.

Each check runs ``sharded_checks.py`` in a fresh process (the device count is fixed when JAX
starts): sampling (ring, dense and event propagation, with inputs and clamped neurons; over
trials and over trials × neurons), the potentials, log-likelihood and its gradient, ``fit_ml``,
a trainer driven by ``fit``, parallel NUTS chains, comparison cells side by side on the devices,
and the refusals of a bad mesh. Sharded outputs must be split over the 4 devices.

XLA's CPU client runs each device's part of a program with collectives on a thread of its own
pool, which has max(cores, devices) threads (``PJRT_NPROC`` stands for the core count): with 4
devices on a machine of 4 or fewer cores, a thread busy elsewhere could leave a device
unlaunched while the others wait in a cross-device sum. ``sharded_checks.py`` sets
``PJRT_NPROC=8`` beside the device count, so the pool always has spare threads (a precaution:
the cause of the abort below is not established). A check that XLA aborts in a rendezvous
that one device never reached (seen once in CI, on a faster machine, with the other three
waiting in the same sum) is run once more, with a warning; a second abort fails.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

CHECKS = Path(__file__).with_name("sharded_checks.py")
RENDEZVOUS_ABORT = "Termination timeout for `all reduce"


def run_check(check: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONWARNINGS": "ignore::RuntimeWarning"}
    env.pop("XLA_FLAGS", None)
    return subprocess.run(
        [sys.executable, str(CHECKS), check],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    "check",
    [
        "sample",
        "neurons",
        "likelihood",
        "fit_ml",
        "trainer",
        "parallel_chains",
        "compare",
        "refusals",
    ],
)
def test_sharded_equals_one_device(check):
    done = run_check(check)
    if done.returncode != 0 and RENDEZVOUS_ABORT in done.stderr:
        warnings.warn(f"{check}: XLA's CPU rendezvous aborted; running it once more", stacklevel=1)
        done = run_check(check)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
