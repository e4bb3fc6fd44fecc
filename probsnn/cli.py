"""The ``probsnn`` command line.

``probsnn demo``: simulate a coupled GLM network, fit it by maximum likelihood, print how well
the kernels were recovered and write a figure of true vs fitted kernels and a raster.

``probsnn compare``: run learning criteria on common tasks over seeds (:mod:`probsnn.compare`),
print the results table and write it (Markdown, JSON, CSV) with figures to a report folder;
finished cells are cached there, so an interrupted run resumes, and so are JAX's compiled
programs (``jax-cache``), so a later run with other seeds or ``--fresh`` compiles little.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _demo(args) -> int:
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import probsnn as ps
    from probsnn import kernels, plot
    from probsnn.inference import fit_ml

    basis = kernels.raised_cosine(4, first_peak=1, last_peak=15)
    spec = ps.Network(args.neurons, basis, dt=args.dt)
    key_truth, key_sample = jax.random.split(jax.random.key(args.seed))
    truth = spec.init_params(key_truth, rate=args.rate, weight_scale=1.0, refractory=3.0)
    print(f"network: {spec}")
    start = time.perf_counter()
    spikes = ps.sample(spec, truth, key_sample, n_steps=args.bins, n_trials=args.trials)
    spikes.block_until_ready()
    sampled = time.perf_counter() - start
    rates = np.asarray(spikes, float).mean(axis=(0, 1)) / spec.dt
    print(
        f"sampled {args.trials} x {args.bins} bins in {sampled:.2f} s; "
        f"rates {rates.min():.1f}-{rates.max():.1f} Hz (mean {rates.mean():.1f})"
    )
    start = time.perf_counter()
    fit = fit_ml(spec, spikes)
    print(
        f"ML fit: {fit.info.n_iterations} Newton iterations in {time.perf_counter() - start:.2f} s"
        f", converged={fit.info.converged}"
    )
    n_bins = spikes.shape[0] * spikes.shape[1]
    ll_truth = float(ps.log_likelihood(spec, truth, spikes)) / n_bins
    print(
        f"log-likelihood per bin: truth {ll_truth:.5f}, fit {fit.info.log_likelihood / n_bins:.5f}"
    )

    mask = spec.connectivity
    true_coupling = np.asarray(spec.coupling_kernels(truth))
    fit_coupling = np.asarray(spec.coupling_kernels(fit.params))
    true_fb = np.asarray(spec.feedback_kernels(truth))
    fit_fb = np.asarray(spec.feedback_kernels(fit.params))
    r_coupling = np.corrcoef(true_coupling[mask].ravel(), fit_coupling[mask].ravel())[0, 1]
    r_feedback = np.corrcoef(true_fb.ravel(), fit_fb.ravel())[0, 1]
    bias_error = np.abs(np.asarray(fit.params.bias - truth.bias)).max()
    print(
        f"kernel recovery: coupling r = {r_coupling:.3f}, feedback r = {r_feedback:.3f}, "
        f"max |bias error| = {bias_error:.3f}"
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    strongest = np.argsort(-np.abs(true_coupling[mask]).max(axis=1))[:4]
    pairs = np.argwhere(mask)[strongest]
    plot.kernels(
        fit_coupling[pairs[:, 0], pairs[:, 1]],
        truth=true_coupling[pairs[:, 0], pairs[:, 1]],
        labels=[f"{j}→{i}" for j, i in pairs],
        dt=spec.dt,
        ax=axes[0],
    )
    axes[0].set_title(f"coupling kernels (fit solid, truth dashed), r = {r_coupling:.3f}")
    plot.kernels(
        fit_fb[:4], truth=true_fb[:4], labels=[f"{i}" for i in range(4)], dt=spec.dt, ax=axes[1]
    )
    axes[1].set_title(f"feedback kernels, r = {r_feedback:.3f}")
    window = min(args.bins, int(2.0 / spec.dt))
    plot.raster(spikes[0, :window], dt=spec.dt, ax=axes[2])
    axes[2].set_title("sampled spikes (trial 0, first 2 s)")
    fig.tight_layout()
    figure = out / "demo.png"
    fig.savefig(figure, dpi=120)
    print(f"figure written to {figure}")
    return 0


def _compare(args) -> int:
    if "jax" not in sys.modules:  # a fresh process: keep compiled programs for the next run
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(args.out) / "jax-cache"))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    import matplotlib

    matplotlib.use("Agg")
    from probsnn.compare import compare

    report = compare(
        args.task,
        args.criteria,
        quick=args.quick,
        seed=args.seed,
        n_seeds=args.seeds,
        out=args.out,
        fresh=args.fresh,
        workers=args.workers,
    )
    print(report.table())
    print()
    print(report.setup())
    report.write()
    print(f"report written to {Path(args.out) / 'results.md'} (+ .json, .csv, figures/)")
    return 1 if any(cell["status"] == "failed" for cell in report.cells) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="probsnn", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="simulate a GLM network, fit it by ML, plot kernels")
    demo.add_argument("--neurons", type=int, default=10)
    demo.add_argument("--bins", type=int, default=50_000)
    demo.add_argument("--trials", type=int, default=2)
    demo.add_argument("--dt", type=float, default=2e-3, help="bin width in seconds")
    demo.add_argument("--rate", type=float, default=20.0, help="baseline rate in Hz")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="probsnn-demo", help="folder for the figure")
    comparison = commands.add_parser(
        "compare", help="compare learning criteria on common tasks; write a report"
    )
    comparison.add_argument(
        "--task", nargs="+", metavar="NAME", help="tasks (default: all; --quick: the small ones)"
    )
    comparison.add_argument(
        "--criteria", nargs="+", metavar="NAME", help="criteria (default: all registered)"
    )
    comparison.add_argument(
        "--quick", action="store_true", help="small settings: minutes on a 2-core CPU"
    )
    comparison.add_argument("--seed", type=int, default=0, help="first seed")
    comparison.add_argument("--seeds", type=int, default=3, help="number of seeds (CI over them)")
    comparison.add_argument("--out", default="probsnn-compare", help="report folder")
    comparison.add_argument(
        "--fresh", action="store_true", help="recompute cells even when cached in --out"
    )
    comparison.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes running criteria side by side (default: 2, or 1 on one core)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "compare":
        from probsnn.compare import SelectionError

        try:
            return _compare(args)
        except SelectionError as error:
            parser.error(str(error))
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
