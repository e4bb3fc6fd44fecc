"""Two JAX processes on localhost (2 CPU devices each) give the single-process results.

Both run ``distributed_worker.py``: :func:`jax.distributed.initialize` with Gloo collectives,
a mesh over all 4 devices, then the log-likelihood, its gradient and one ``fit_ml`` Newton step
compared with the same calls on one process. The processes are killed whatever happens.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("distributed_worker.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_equal_one():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    port = str(free_port())
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), port],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [worker.communicate(timeout=400)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for rank, (worker, output) in enumerate(zip(workers, outputs, strict=True)):
        assert worker.returncode == 0 and output.rstrip().endswith("ok"), (
            f"process {rank}:\n{output[-3000:]}"
        )
