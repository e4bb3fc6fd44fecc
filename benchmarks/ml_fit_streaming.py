"""Maximum likelihood on long recordings: streamed in chunks against held in memory.

Setting (issue 16): N = ``--neurons`` (100) neurons, 4 raised-cosine bases (peaks 1 to 10 bins,
50 lags; P = 4N + 1 = 401 columns), dense coupling, ~3 % firing, an l2 penalty of 1, recordings of
T = ``--bins`` bins simulated once and written to a ``numpy.memmap`` (uint8) on disk. Each cell
runs in a process of its own, which reports its wall time and its peak resident memory (RSS):

* ``fit_ml_streaming`` reading the memory-mapped file in chunks of ``--chunk`` bins;
* ``fit_ml`` on the whole recording in memory (the reference: the same optimum), up to
  ``--in-memory-max`` bins;
* ``probsnn.streaming.log_likelihood`` (one pass) for the lengths in ``--likelihood-bins``,
  to show the memory of a pass at lengths whose fit would take long here (a fit is about 40
  passes).

The peak RSS of the streamed runs should not grow with T.

Run: python benchmarks/ml_fit_streaming.py [--bins 100000 1000000] [--likelihood-bins 10000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path


def network(n_neurons: int):
    import jax

    import probsnn as ps
    from probsnn import kernels

    spec = ps.Network(n_neurons, kernels.raised_cosine(4, 1, 10, length=50), dt=1e-3)
    truth = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=0.3)
    return spec, truth


def record(path: Path, n_neurons: int, n_bins: int) -> None:
    """Simulate the recording in pieces of 10⁵ bins (each from silence) into a memmap."""
    import jax
    import numpy as np

    import probsnn as ps

    spec, truth = network(n_neurons)
    out = np.memmap(path, dtype=np.uint8, mode="w+", shape=(n_bins, n_neurons))
    piece = 100_000
    for index, start in enumerate(range(0, n_bins, piece)):
        length = min(piece, n_bins - start)
        key = jax.random.fold_in(jax.random.key(1), index)
        out[start : start + length] = np.asarray(ps.sample(spec, truth, key, length))
    out.flush()


def worker(kind: str, path: str, n_neurons: int, n_bins: int, chunk: int) -> dict:
    import numpy as np

    import probsnn as ps  # noqa: F401  (compilation cache and config)
    from probsnn import streaming
    from probsnn.inference import fit_ml, fit_ml_streaming

    spec, truth = network(n_neurons)
    data = np.memmap(path, dtype=np.uint8, mode="r", shape=(n_bins, n_neurons))
    began = time.perf_counter()
    result = {"kind": kind, "bins": n_bins}
    if kind == "streamed fit":
        fit = fit_ml_streaming(spec, data, chunk_bins=chunk, l2=1.0)
    elif kind == "in-memory fit":
        fit = fit_ml(spec, np.asarray(data), l2=1.0)
    else:
        result["log_likelihood"] = streaming.log_likelihood(spec, truth, data, chunk_bins=chunk)
        fit = None
    result["seconds"] = time.perf_counter() - began
    if fit is not None:
        result.update(
            log_likelihood=fit.info.log_likelihood,
            iterations=fit.info.n_iterations,
            converged=fit.info.converged,
            bias=np.asarray(fit.params.bias).tolist(),
        )
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--bins", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--likelihood-bins", type=int, nargs="*", default=[10_000_000])
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--in-memory-max", type=int, default=1_000_000)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, path, n_bins = args.worker
        kind = kind.replace("_", " ")
        print(json.dumps(worker(kind, path, args.neurons, int(n_bins), args.chunk)))
        return
    from _header import print_header
    from _timing import worker_result

    print_header(
        "Maximum likelihood on long recordings: streamed in chunks vs held in memory",
        {
            "probsnn in memory": "fit_ml(spikes, l2=1) on the whole recording (float32)",
            "probsnn streamed": f"fit_ml_streaming(memmap, chunk_bins={args.chunk}, l2=1)",
        },
    )
    print(
        f"\nN = {args.neurons}, 4 raised-cosine bases (peaks 1 to 10 bins, 50 lags), l2 = 1, "
        "uint8 memmap input"
    )
    print(
        f"{'T':>10} {'run':>24} {'seconds':>9} {'Newton it.':>10} {'converged':>9} "
        f"{'log-lik / bin':>14} {'peak GB':>8}"
    )
    cells = [(n, "streamed fit") for n in args.bins]
    cells += [(n, "in-memory fit") for n in args.bins if n <= args.in_memory_max]
    cells += [(n, "streamed log-likelihood") for n in args.likelihood_bins]
    with tempfile.TemporaryDirectory() as folder:
        for n_bins in sorted({n for n, _ in cells}):
            path = Path(folder) / f"spikes_{n_bins}.u8"
            record(path, args.neurons, n_bins)
            for kind in [kind for n, kind in cells if n == n_bins]:
                row = worker_result(
                    __file__,
                    "--worker",
                    kind.replace(" ", "_"),
                    path,
                    n_bins,
                    "--neurons",
                    args.neurons,
                    "--chunk",
                    args.chunk,
                )
                print(
                    f"{n_bins:>10,} {kind:>24} {row['seconds']:>9.1f} "
                    f"{row.get('iterations', ''):>10} {row.get('converged', '')!s:>9} "
                    f"{row['log_likelihood'] / n_bins:>14.6f} {row['peak_gb']:>8.2f}",
                    flush=True,
                )
    print("(seconds include compilation; peak GB: the process's peak RSS)")


if __name__ == "__main__":
    main()
