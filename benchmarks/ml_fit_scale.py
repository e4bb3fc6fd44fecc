"""``fit_ml`` as the network grows: per-neuron against shared preconditioning, time and memory.

Setting (issue 16): the network of ``ml_fit.py`` (6 raised-cosine bases over 100 lags shared by
couplings and self-history, dense coupling, 5 ms bins, ~10 spikes/s), ``--bins`` bins, an l2
penalty (``--l2``; without one, a few hundred spikes per neuron for P = 6N + 1 coefficients may
have no finite optimum), N = ``--neurons``. Each (N, preconditioner) runs in a process of its own
and reports its wall time (one call, compilation included, as a user meets it), Newton
iterations, whether it converged, the penalised log-likelihood per bin and the process's peak
resident memory.

* ``neuron``: one Cholesky factor of d̄_i X_iᵀX_i + λ₂ I per neuron, N·P² numbers;
* ``shared``: one eigendecomposition of XᵀX for all neurons, P² numbers (what ``"auto"`` picks
  above 2²⁶ elements of per-neuron factors).

The peer a user would otherwise pick (NeMoS) is compared at N = 50 in ``ml_fit.py``.

Run: python benchmarks/ml_fit_scale.py [--neurons 50 200] [--bins 20000] [--l2 1.0]
     [--kinds neuron shared]
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def worker(n_neurons: int, kind: str, n_bins: int, l2: float) -> dict:
    import jax
    import numpy as np

    import probsnn as ps
    from probsnn import kernels
    from probsnn.inference import fit_ml

    basis = kernels.raised_cosine(6, first_peak=1, last_peak=30, length=100)
    spec = ps.Network(n_neurons, basis, dt=5e-3)
    truth = spec.init_params(jax.random.key(0), rate=10.0, weight_scale=0.5, refractory=2.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), n_steps=n_bins)
    jax.block_until_ready(spikes)
    began = time.perf_counter()
    fit = fit_ml(spec, spikes, l2=l2, preconditioner=kind)
    seconds = time.perf_counter() - began
    return {
        "neurons": n_neurons,
        "kind": kind,
        "columns": 6 * n_neurons + 1,
        "seconds": seconds,
        "iterations": fit.info.n_iterations,
        "converged": bool(fit.info.converged),
        "objective_per_bin": float(np.sum(fit.info.objective)) / n_bins,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "spikes_per_neuron": float(np.asarray(spikes).sum() / n_neurons),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--bins", type=int, default=20_000)
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--kinds", nargs="+", default=["neuron", "shared"])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        n_neurons, kind = int(args.worker[0]), args.worker[1]
        print(json.dumps(worker(n_neurons, kind, args.bins, args.l2)))
        return
    from _header import print_header
    from _timing import worker_result

    print_header(
        "fit_ml as the network grows: per-neuron vs shared preconditioner, time and memory",
        {
            "probsnn neuron": "fit_ml(preconditioner='neuron'): N Cholesky factors (N·P²)",
            "probsnn shared": "fit_ml(preconditioner='shared'): one eigendecomposition (P²)",
        },
    )
    print(f"\n{args.bins:,} bins, 6 bases x 100 lags, l2 = {args.l2:g}, float32")
    print(
        f"{'N':>5} {'P':>6} {'preconditioner':>15} {'seconds':>8} {'Newton it.':>10} "
        f"{'converged':>9} {'objective/bin':>14} {'peak GB':>8}"
    )
    for n_neurons in args.neurons:
        for kind in args.kinds:
            row = worker_result(
                __file__, "--worker", n_neurons, kind, "--bins", args.bins, "--l2", args.l2
            )
            print(
                f"{row['neurons']:>5} {row['columns']:>6} {row['kind']:>15} "
                f"{row['seconds']:>8.1f} {row['iterations']:>10} {row['converged']!s:>9} "
                f"{row['objective_per_bin']:>14.6f} {row['peak_gb']:>8.2f}",
                flush=True,
            )
    print("(seconds: one call, compilation included; peak GB: the process's peak RSS)")


if __name__ == "__main__":
    main()
