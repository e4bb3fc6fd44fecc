"""The ``probsnn`` command line.

``probsnn demo``: simulate a coupled GLM network, fit it by maximum likelihood, print how well
the kernels were recovered and write a figure of true vs fitted kernels and a raster.

``probsnn compare``: run learning criteria on common tasks over seeds (:mod:`probsnn.compare`),
print the results table and write it (Markdown, JSON, CSV) with figures to a report folder;
finished cells are cached there, so an interrupted run resumes. The control tasks (``cartpole``,
``acrobot``) need the ``rl`` extra (gymnax); without it their cells fail with the reason.

Every argument, and whether the output folder can be written, is checked before any work; a bad
one ends the command with the usage and a one-line ``probsnn: error: ...``, exit status 2.
Compiled programs are kept in JAX's persistent compilation cache (``~/.cache/probsnn/jax``, see
:func:`probsnn.enable_compilation_cache`), so a second run compiles little; ``--jax-cache DIR``
moves it and ``--no-jax-cache`` turns it off for one command.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from probsnn import _cache, _checks

#: Bins the demo's kernels reach back (raised cosines peaking at lags 1..15).
_DEMO_BASIS = {"n_basis": 4, "first_peak": 1, "last_peak": 15}


# ---------------------------------------------------------------------------------------------
# argument types: each refuses a bad value with a message argparse prefixes with the argument


def _integer(minimum: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            ) from None
        try:
            return _checks.positive_int(value, "value", minimum)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = f"integer >= {minimum}"
    return convert


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    try:
        return _checks.positive_float(value, "value")
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _folder(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    return text


def _writable_folder(parser: argparse.ArgumentParser, text: str, option: str = "--out") -> Path:
    """Create the folder ``text`` if needed and write (then delete) a file in it; a failure ends
    the command through ``parser.error``."""
    folder = Path(text).expanduser()
    if folder.exists() and not folder.is_dir():
        parser.error(f"argument {option}: {str(folder)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probsnn-write-test-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        parser.error(f"argument {option}: cannot write to the folder {str(folder)!r}: {reason}")
    return folder


# ---------------------------------------------------------------------------------------------
# demo


def _demo_setup(parser, args):
    """The network and true parameters of the demo; argument combinations the library refuses
    (e.g. rate × dt >= 1) end the command here, before anything is sampled."""
    import jax

    import probsnn as ps
    from probsnn import kernels

    try:
        _checks.allocation(args.trials * args.bins * args.neurons, "the sampled spikes")
        basis = kernels.raised_cosine(**_DEMO_BASIS)
        spec = ps.Network(args.neurons, basis, dt=args.dt)
        key_truth, key_sample = jax.random.split(jax.random.key(args.seed))
        truth = spec.init_params(key_truth, rate=args.rate, weight_scale=1.0, refractory=3.0)
    except (TypeError, ValueError) as error:
        parser.error(f"{error}".splitlines()[0])
    return spec, truth, key_sample


def _correlation(a, b) -> float | None:
    """Pearson correlation of two flattened arrays; None when it is undefined (fewer than two
    values, or a constant one)."""
    import numpy as np

    a, b = np.ravel(a), np.ravel(b)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _r(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _demo(parser, args) -> int:
    spec, truth, key_sample = _demo_setup(parser, args)
    out = _writable_folder(parser, args.out)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import probsnn as ps
    from probsnn import plot
    from probsnn.inference import fit_ml

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
    try:
        fit = fit_ml(spec, spikes)
    except ValueError as error:  # e.g. a neuron that never fired in a short sample
        parser.error(
            f"the ML fit cannot use the sampled spikes: {str(error).splitlines()[0]} "
            "(sample more with --bins or --trials, or raise --rate)"
        )
    print(
        f"ML fit: {fit.info.n_iterations} Newton iterations in {time.perf_counter() - start:.2f} s"
        f", converged={fit.info.converged}"
    )
    n_bins = spikes.shape[0] * spikes.shape[1]
    ll_truth = float(ps.log_likelihood(spec, truth, spikes)) / n_bins
    print(
        f"log-likelihood per bin: truth {ll_truth:.5f}, fit {fit.info.log_likelihood / n_bins:.5f}"
    )

    mask = np.asarray(spec.connectivity, bool)
    true_coupling = np.asarray(spec.coupling_kernels(truth))
    fit_coupling = np.asarray(spec.coupling_kernels(fit.params))
    true_fb = np.asarray(spec.feedback_kernels(truth))
    fit_fb = np.asarray(spec.feedback_kernels(fit.params))
    r_coupling = _correlation(true_coupling[mask], fit_coupling[mask])
    r_feedback = _correlation(true_fb, fit_fb)
    bias_error = np.abs(np.asarray(fit.params.bias - truth.bias)).max()
    coupling_note = "" if mask.any() else " (no coupling in a 1-neuron network)"
    print(
        f"kernel recovery: coupling r = {_r(r_coupling)}{coupling_note}, "
        f"feedback r = {_r(r_feedback)}, max |bias error| = {bias_error:.3f}"
    )

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    if mask.any():
        strongest = np.argsort(-np.abs(true_coupling[mask]).max(axis=1))[:4]
        pairs = np.argwhere(mask)[strongest]
        plot.kernels(
            fit_coupling[pairs[:, 0], pairs[:, 1]],
            truth=true_coupling[pairs[:, 0], pairs[:, 1]],
            labels=[f"{j}→{i}" for j, i in pairs],
            dt=spec.dt,
            ax=axes[0],
        )
        axes[0].set_title(f"coupling kernels (fit solid, truth dashed), r = {_r(r_coupling)}")
    else:
        axes[0].text(0.5, 0.5, "no coupling kernels\n(one neuron)", ha="center", va="center")
        axes[0].set_axis_off()
    shown = min(4, spec.n_neurons)
    plot.kernels(
        fit_fb[:shown],
        truth=true_fb[:shown],
        labels=[f"{i}" for i in range(shown)],
        dt=spec.dt,
        ax=axes[1],
    )
    axes[1].set_title(f"feedback kernels, r = {_r(r_feedback)}")
    window = max(1, min(args.bins, int(2.0 / spec.dt)))
    plot.raster(spikes[0, :window], dt=spec.dt, ax=axes[2])
    axes[2].set_title(f"sampled spikes (trial 0, first {window * spec.dt:g} s)")
    fig.tight_layout()
    figure = out / "demo.png"
    fig.savefig(figure, dpi=120)
    plt.close(fig)
    print(f"figure written to {figure}")
    model = ps.io.save(
        out / "demo_fit.npz",
        spec,
        fit.params,
        fit=fit,
        metadata={"command": "demo", "seed": args.seed, "bins": args.bins, "trials": args.trials},
    )
    print(f"fitted model written to {model} (load it with probsnn.io.load)")
    return 0


# ---------------------------------------------------------------------------------------------
# compare


def _compare(parser, args) -> int:
    from probsnn.compare import SelectionError, compare, runner

    if args.workers is None:
        args.workers = 1 if args.devices else min(2, os.cpu_count() or 1)
    try:
        runner.select(
            args.task,
            args.criteria,
            quick=args.quick,
            seed=args.seed,
            n_seeds=args.seeds,
            workers=args.workers,
            devices=args.devices,
        )
    except SelectionError as error:
        parser.error(str(error))
    out = _writable_folder(parser, args.out)

    import matplotlib

    matplotlib.use("Agg")

    report = compare(
        args.task,
        args.criteria,
        quick=args.quick,
        seed=args.seed,
        n_seeds=args.seeds,
        out=out,
        fresh=args.fresh,
        workers=args.workers,
        devices=args.devices,
    )
    print(report.table())
    print()
    print(report.setup())
    report.write()
    print(f"report written to {out / 'results.md'} (+ .json, .csv, figures/)")
    return 1 if any(cell["status"] == "failed" for cell in report.cells) else 0


# ---------------------------------------------------------------------------------------------
# parser and entry point


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with every error (a subcommand's too) as ``probsnn: error: ...``
    after the usage, and exit status 2."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"probsnn: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="probsnn", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    caching = common.add_mutually_exclusive_group()
    caching.add_argument(
        "--jax-cache",
        metavar="DIR",
        type=_folder,
        help="folder of JAX's persistent compilation cache (default: $PROBSNN_CACHE_DIR or "
        "~/.cache/probsnn/jax)",
    )
    caching.add_argument(
        "--no-jax-cache",
        action="store_true",
        help="do not keep compiled programs for later runs (PROBSNN_CACHE=off does the same)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", parents=[common], help="simulate a GLM network, fit it by ML, plot kernels"
    )
    demo.set_defaults(run=_demo, command_parser=demo)
    demo.add_argument("--neurons", type=_integer(1), default=10)
    demo.add_argument("--bins", type=_integer(1), default=50_000, help="time bins per trial")
    demo.add_argument("--trials", type=_integer(1), default=2)
    demo.add_argument("--dt", type=_positive_number, default=2e-3, help="bin width in seconds")
    demo.add_argument("--rate", type=_positive_number, default=20.0, help="baseline rate in Hz")
    demo.add_argument("--seed", type=_integer(0), default=0)
    demo.add_argument("--out", type=_folder, default="probsnn-demo", help="folder for the figure")
    comparison = commands.add_parser(
        "compare",
        parents=[common],
        help="compare learning criteria on common tasks; write a report",
    )
    comparison.set_defaults(run=_compare, command_parser=comparison)
    comparison.add_argument(
        "--task",
        nargs="+",
        metavar="NAME",
        help="tasks (default: all; --quick: the small ones and cartpole)",
    )
    comparison.add_argument(
        "--criteria", nargs="+", metavar="NAME", help="criteria (default: all registered)"
    )
    comparison.add_argument(
        "--quick", action="store_true", help="small settings: minutes on a 2-core CPU"
    )
    comparison.add_argument("--seed", type=_integer(0), default=0, help="first seed")
    comparison.add_argument(
        "--seeds", type=_integer(1), default=3, help="number of seeds (CI over them)"
    )
    comparison.add_argument("--out", type=_folder, default="probsnn-compare", help="report folder")
    comparison.add_argument(
        "--fresh", action="store_true", help="recompute cells even when cached in --out"
    )
    comparison.add_argument(
        "--workers",
        type=_integer(1),
        help="processes running criteria side by side (default: 2, or 1 on one core or with "
        "--devices)",
    )
    comparison.add_argument(
        "--devices",
        type=_integer(1),
        help="run criteria side by side on this many of JAX's devices (GPUs of this host), in "
        "one process instead of --workers",
    )
    return parser


def _use_cache_option(args) -> None:
    """Apply ``--jax-cache``/``--no-jax-cache`` here and, through the environment, in the
    worker processes ``compare`` spawns."""
    if args.no_jax_cache:
        os.environ[_cache.ENV_SWITCH] = "off"
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
        _cache.disable_compilation_cache()
    elif args.jax_cache is not None:
        folder = Path(args.jax_cache).expanduser().absolute()
        os.environ[_cache.ENV_DIR] = str(folder)
        os.environ.pop(_cache.ENV_SWITCH, None)
        _cache.enable_compilation_cache(folder)


def main(argv=None) -> int:
    """Run ``probsnn`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad arguments raise ``SystemExit(2)`` after a one-line error on stderr (argparse's way)."""
    args = _parser().parse_args(argv)
    if args.jax_cache is not None:
        args.jax_cache = _writable_folder(args.command_parser, args.jax_cache, "--jax-cache")
    with _cache.saved_settings():
        _use_cache_option(args)
        try:
            return args.run(args.command_parser, args)
        except KeyboardInterrupt:
            resume = " (finished cells are cached: run it again to resume)"
            print(
                f"probsnn: interrupted{resume if args.command == 'compare' else ''}",
                file=sys.stderr,
            )
            return 130


if __name__ == "__main__":
    sys.exit(main())
