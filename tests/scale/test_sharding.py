"""Data parallelism over trials on 4 forced CPU devices equals one device.

Each check runs ``sharded_checks.py`` in a fresh process (the device count is fixed when JAX
starts): sampling (ring, dense and event propagation, with inputs and clamped neurons; over
trials and over trials × neurons), the potentials, log-likelihood and its gradient, ``fit_ml``,
a trainer driven by ``fit``, parallel NUTS chains, comparison cells side by side on the devices,
and the refusals of a bad mesh. Sharded outputs must be split over the 4 devices.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = Path(__file__).with_name("sharded_checks.py")


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
    env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONWARNINGS": "ignore::RuntimeWarning"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, str(CHECKS), check],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
