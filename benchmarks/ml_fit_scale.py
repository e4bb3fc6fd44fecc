"""``fit_ml`` as the network grows: per-neuron against shared preconditioning, and NeMoS.

Setting (issue 16): the network of ``ml_fit.py`` (``--bases`` raised-cosine bases over 100 lags
shared by couplings and self-history, dense coupling, 5 ms bins, ~10 spikes/s), ``--bins`` bins,
an l2 penalty (``--l2``; without one, a few hundred spikes per neuron for P = K·N + 1
coefficients may have no finite optimum), N = ``--neurons``. Each (N, solver) runs in a process
of its own and reports its wall time, iterations, whether it converged, the penalised negative
log-likelihood per bin (summed over neurons) and the process's peak resident memory.

* ``neuron``: one Cholesky factor of d̄_i X_iᵀX_i + λ₂ I per neuron, N·P² numbers;
* ``shared``: one eigendecomposition of XᵀX for all neurons, P² numbers (what ``"auto"`` picks
  above 2²⁶ elements of per-neuron factors);
* ``nemos``: the peer a user would otherwise pick, NeMoS's ``PopulationGLM`` with a Ridge
  penalty scaled to the same optimum, on the same design, its L-BFGS stepped until it is within
  ``--gap`` nats/bin of probsnn's best objective (equal penalised log-likelihood) or until
  ``--budget`` seconds; then the ratio of times (a lower bound when the budget ran out).

probsnn's seconds are one call, compilation included (as a user meets it); NeMoS's are its
solver steps alone, compiled beforehand, so the ratio is conservative. ``--again`` fits twice and
prints the second, compiled call's time too (on an accelerator compilation is a large share).
``--trajectory`` runs fit_ml's Newton iterations through ``newton_trainer`` and the shared
``fit`` loop and times each; where NeMoS stops short of probsnn's objective it then also
compares the times both took to reach NeMoS's last objective (time to equal penalised
log-likelihood: NeMoS's stepping against probsnn from the call's start, design, preconditioner
and compilation included), and prints both trajectories. On an accelerator the rows also give
the device's peak memory (``Device.memory_stats``).

Run: python benchmarks/ml_fit_scale.py [--neurons 50 200] [--bins 20000] [--bases 6]
     [--last-peak 30] [--l2 1.0] [--kinds neuron shared nemos] [--gap 1e-4] [--budget 1800]
     [--again] [--trajectory]
(issue 16's setting: --neurons 50 200 1000 --bins 100000 --bases 4 --last-peak 20; NeMoS as in
``ml_fit.py``.)
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def network(n_neurons: int, n_bins: int, n_bases: int, last_peak: float):
    """The benchmark's network and its recording ``(n_bins, n_neurons)`` (the same for every
    solver: fixed keys)."""
    import jax

    import probsnn as ps
    from probsnn import kernels

    basis = kernels.raised_cosine(n_bases, first_peak=1, last_peak=last_peak, length=100)
    spec = ps.Network(n_neurons, basis, dt=5e-3)
    truth = spec.init_params(jax.random.key(0), rate=10.0, weight_scale=0.5, refractory=2.0)
    return spec, jax.block_until_ready(ps.sample(spec, truth, jax.random.key(1), n_steps=n_bins))


def probsnn_worker(spec, spikes, kind: str, l2: float, again: bool, trajectory: bool) -> dict:
    """One ``fit_ml`` call, compilation included; with ``again`` a second, compiled call too;
    with ``trajectory`` fit_ml's Newton loop run through :func:`newton_trainer` instead, timing
    each iteration (:func:`newton_trajectory`)."""
    import numpy as np

    from probsnn.inference import fit_ml

    if trajectory:
        return newton_trajectory(spec, spikes, kind, l2)
    began = time.perf_counter()
    fit = fit_ml(spec, spikes, l2=l2, preconditioner=kind)
    seconds = time.perf_counter() - began
    compiled = None
    if again:
        began = time.perf_counter()
        fit_ml(spec, spikes, l2=l2, preconditioner=kind)
        compiled = time.perf_counter() - began
    return {
        "seconds": seconds,
        "compiled_seconds": compiled,
        "iterations": fit.info.n_iterations,
        "converged": bool(fit.info.converged),
        "objective_per_bin": float(np.sum(fit.info.objective)) / spikes.shape[0],
    }


def newton_trajectory(spec, spikes, kind: str, l2: float) -> dict:
    """``fit_ml``'s Newton iterations through ``newton_trainer``, driven by the shared ``fit``
    loop with fit_ml's stopping rule (converged or stalled, at most its ``max_iter``; the same
    design, preconditioner and steps, without fit_ml's final summary), with the seconds since
    the call began (building the design and the preconditioner and compiling included) and the
    penalised objective per bin after each: ``trajectory`` is a list of
    ``[seconds, objective_per_bin]``, the start first."""
    import inspect

    import jax
    import jax.numpy as jnp

    from probsnn.inference import fit, fit_ml, newton_trainer

    rows = spikes.shape[0]
    max_iter = inspect.signature(fit_ml).parameters["max_iter"].default
    began = time.perf_counter()
    trainer = newton_trainer(spec, spikes, l2=l2, preconditioner=kind)
    state = jax.block_until_ready(trainer.init(None))
    trajectory = [[time.perf_counter() - began, float(jnp.sum(state.objective)) / rows]]

    def record(epoch, state, info) -> bool:
        trajectory.append([time.perf_counter() - began, info["loss"] / rows])
        return bool(info["converged"] or info["stalled"])

    history = fit(
        trainer,
        None,
        None,
        key=jax.random.key(0),  # unused: the Newton solver is deterministic
        epochs=max_iter,
        callback=record,
        progress=False,
        state=state,
    ).history
    return {
        "seconds": trajectory[-1][0],
        "compiled_seconds": None,
        "iterations": len(history["loss"]),
        "converged": bool(history["converged"][-1]),
        "objective_per_bin": trajectory[-1][1],
        "trajectory": trajectory,
    }


def nemos_worker(spec, spikes, l2: float, target: float, gap: float, budget: float) -> dict:
    """NeMoS's ``PopulationGLM`` (Bernoulli, Ridge, L-BFGS) on probsnn's design matrix, stepped
    with its own compiled ``solver_update`` until its penalised objective is within ``gap``
    nats/bin of ``target`` or ``budget`` seconds of stepping are spent. NeMoS's loss is the
    per-bin mean plus ½·s·‖w‖², so s = l2 / T gives probsnn's optimum. The objective is
    evaluated (untimed) every ``CHECK_EVERY`` steps with probsnn's own formula."""
    import warnings

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import nemos as nmo
    from nemos.glm.params import GLMParams

    from probsnn.design import build_design

    design = build_design(spec, spikes)
    x = design.x[:, :-1]  # NeMoS adds its own intercept
    y = jnp.asarray(design.targets, jnp.float32)
    mask = jnp.asarray(design.mask[:-1], jnp.float32)
    rows = x.shape[0]
    glm = nmo.glm.PopulationGLM(
        observation_model="Bernoulli",
        regularizer="Ridge",
        regularizer_strength=l2 / rows,
        feature_mask=mask,
        solver_name="LBFGS",
        solver_kwargs={"tol": 1e-12, "maxiter": 10**6},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = glm.initialize_params(x, y)
        state = glm.initialize_solver_and_state(x, y, start)
    params = GLMParams(*start)
    step = eqx.filter_jit(glm.solver_update)
    sign = 2 * y - 1

    @jax.jit
    def objective(params):
        coef = params.coef * mask
        u = jnp.matmul(x, coef, precision="highest") + params.intercept  # not TF32 on a GPU
        return (-jnp.sum(jax.nn.log_sigmoid(sign * u)) + 0.5 * l2 * jnp.sum(coef**2)) / rows

    jax.block_until_ready(step(params, state, x, y))  # compile (not timed)
    steps, stepping, excess = 0, 0.0, float(objective(params)) - target
    trajectory = [[stepping, target + excess]]
    while excess > gap and stepping < budget:
        began = time.perf_counter()
        for _ in range(CHECK_EVERY):
            params, state, _ = step(params, state, x, y)
        jax.block_until_ready(params)
        stepping += time.perf_counter() - began
        steps += CHECK_EVERY
        excess = float(objective(params)) - target
        trajectory.append([stepping, target + excess])
    return {
        "seconds": stepping,
        "iterations": steps,
        "converged": excess <= gap,
        "objective_per_bin": target + excess,
        "trajectory": trajectory,
    }


#: L-BFGS steps between two evaluations of NeMoS's objective
CHECK_EVERY = 10


def worker(args) -> dict:
    n_neurons, kind = int(args.worker[0]), args.worker[1]
    spec, spikes = network(n_neurons, args.bins, args.bases, args.last_peak)
    if kind == "nemos":
        row = nemos_worker(spec, spikes, args.l2, args.target, args.gap, args.budget)
    else:
        row = probsnn_worker(spec, spikes, kind, args.l2, args.again, args.trajectory)
    return {
        **row,
        "neurons": n_neurons,
        "kind": kind,
        "columns": args.bases * n_neurons + 1,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "device_peak_gb": device_peak_gb(),
    }


def device_peak_gb() -> float | None:
    """The default device's peak memory in GB, or None where its backend keeps no count."""
    from _timing import device_peak_bytes

    peak = device_peak_bytes()
    return None if peak is None else peak / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--bins", type=int, default=20_000)
    parser.add_argument("--bases", type=int, default=6)
    parser.add_argument(
        "--last-peak", type=float, default=30.0, help="of the bases (<= 20 for 4 in 100 lags)"
    )
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["neuron", "shared"],
        choices=["neuron", "shared", "nemos"],
        help="nemos runs after the probsnn kinds, aiming at their best objective",
    )
    parser.add_argument("--gap", type=float, default=1e-4, help="nats/bin that count as equal")
    parser.add_argument(
        "--budget", type=float, default=1800.0, help="seconds of NeMoS stepping per N at most"
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="fit twice and report the second (compiled) call too (an accelerator compiles long)",
    )
    parser.add_argument(
        "--trajectory",
        action="store_true",
        help="time each Newton iteration (newton_trainer, not one fit_ml call) and, where NeMoS "
        "stops short of probsnn's objective, compare the times both took to reach NeMoS's last "
        "objective",
    )
    parser.add_argument("--target", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    from _header import print_header
    from _timing import worker_result

    print_header(
        "fit_ml as the network grows: per-neuron vs shared preconditioning vs NeMoS",
        {
            "probsnn neuron": "fit_ml(preconditioner='neuron'): N Cholesky factors (N·P²)",
            "probsnn shared": "fit_ml(preconditioner='shared'): one eigendecomposition (P²)",
            "NeMoS": "PopulationGLM(Bernoulli, regularizer='Ridge', regularizer_strength=l2/T, "
            "solver_name='LBFGS') on the same design, float32, its compiled solver_update "
            "stepped until within --gap of probsnn's objective (or --budget s); "
            "compilation and objective checks not timed",
        },
        packages=("nemos", "optax", "optimistix") if "nemos" in args.kinds else (),
    )
    print(
        f"\n{args.bins:,} bins, {args.bases} bases (last peak {args.last_peak:g}) x 100 lags, "
        f"l2 = {args.l2:g}, float32"
    )
    print(
        f"{'N':>5} {'P':>6} {'solver':>15} {'seconds':>8} {'iterations':>10} "
        f"{'converged':>9} {'objective/bin':>14} {'peak GB':>8}"
    )
    probsnn_kinds = [kind for kind in args.kinds if kind != "nemos"]
    for n_neurons in args.neurons:
        common = ["--bins", args.bins, "--bases", args.bases, "--last-peak", args.last_peak]
        common += ["--l2", args.l2]
        flags = ["--again"] if args.again else []
        flags += ["--trajectory"] if args.trajectory else []
        rows = [
            worker_result(__file__, "--worker", n_neurons, kind, *common, *flags)
            for kind in probsnn_kinds
        ]
        for row in rows:
            print_row(row)
        if "nemos" in args.kinds and rows:
            best = min(rows, key=lambda row: row["objective_per_bin"])
            target = ["--target", best["objective_per_bin"], "--gap", args.gap]
            nemos = worker_result(
                __file__, "--worker", n_neurons, "nemos", *common, *target, "--budget", args.budget
            )
            print_row(nemos)
            fastest = min(row["seconds"] for row in rows)
            bound = "" if nemos["converged"] else "more than "
            compiled = [row["compiled_seconds"] for row in rows if row.get("compiled_seconds")]
            warm = f", {bound}{nemos['seconds'] / min(compiled):.1f}x compiled" if compiled else ""
            print(
                f"      NeMoS / probsnn: {bound}{nemos['seconds'] / fastest:.1f}x{warm} "
                f"(NeMoS {'within' if nemos['converged'] else 'still above'} {args.gap:g} "
                f"nats/bin of probsnn's objective)",
                flush=True,
            )
            if args.trajectory and not nemos["converged"]:
                print_equal_objective(nemos, rows)
    print(
        "(seconds: probsnn one call, compilation included; NeMoS its steps, compilation "
        "excluded; iterations: Newton / L-BFGS; peak GB: the process's peak RSS; on an "
        "accelerator also the device's peak memory)"
    )


def reached(trajectory, level: float) -> tuple[int, float] | None:
    """The first ``(index, seconds)`` of ``trajectory`` (``[seconds, objective]`` pairs) whose
    objective is at most ``level``, or None."""
    for index, (seconds, objective) in enumerate(trajectory):
        if objective <= level:
            return index, seconds
    return None


def print_equal_objective(nemos: dict, rows: list[dict]) -> None:
    """Time to equal penalised log-likelihood where NeMoS stopped short of probsnn's optimum:
    the level is NeMoS's last objective; NeMoS's time is its first check at that level (its
    stepping, compilation excluded), probsnn's the first Newton iterate at or below it (from the
    call's start: design, preconditioner and compilation included)."""
    level = nemos["objective_per_bin"]
    _, nemos_seconds = reached(nemos["trajectory"], level)
    for row in rows:
        first = reached(row["trajectory"], level)
        if first is None:
            print(f"      {row['kind']}: never reached NeMoS's last objective {level:.6f}")
            continue
        index, seconds = first
        print(
            f"      equal objective {level:.6f} nats/bin (NeMoS's last, "
            f"{level - row['objective_per_bin']:.2e} above probsnn's optimum): NeMoS "
            f"{nemos_seconds:.1f} s, probsnn {row['kind']} {seconds:.1f} s (Newton iteration "
            f"{index}): {nemos_seconds / seconds:.1f}x",
            flush=True,
        )
    for row in [*rows, nemos]:
        points = ", ".join(f"{s:.1f} s {o:.6f}" for s, o in row["trajectory"])
        print(f"      trajectory {row['kind']}: {points}", flush=True)


def print_row(row: dict) -> None:
    print(
        f"{row['neurons']:>5} {row['columns']:>6} {row['kind']:>15} "
        f"{row['seconds']:>8.1f} {row['iterations']:>10} {row['converged']!s:>9} "
        f"{row['objective_per_bin']:>14.6f} {row['peak_gb']:>8.2f}{extras(row)}",
        flush=True,
    )


def extras(row: dict) -> str:
    """The device's peak memory (accelerators) and the compiled call's time (``--again``)."""
    device, compiled = row["device_peak_gb"], row.get("compiled_seconds")
    text = "" if device is None else f"  device peak {device:.2f} GB"
    return text + ("" if compiled is None else f"  compiled call {compiled:.1f} s")


if __name__ == "__main__":
    main()
