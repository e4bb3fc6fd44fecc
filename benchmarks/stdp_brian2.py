"""The Song, Miller & Abbott (2000) STDP network: probsnn vs Brian2 in the same process.

Setting (issue 5, Speed): ``--inputs`` excitatory Poisson inputs at 10 spikes/s with plastic
weights in [0, g_max] (g_max = 15 / inputs: Song et al.'s 0.015 at 1,000 inputs, the same total
drive at other sizes), 200 fixed inhibitory inputs, one conductance-based leaky integrate-and-fire
neuron, all-to-all additive STDP (A₊ = 0.005 g_max, A₋ = 1.05 A₊, τ± = 20 ms), ``--seconds`` of
simulated time at ``--dt`` ms. probsnn runs
:func:`probsnn.experiments.song_experiment` under
jit (best of ``--repeats`` after a compile-and-run call; ``--trials`` networks with vmap). Brian2
runs the same network with each code-generation target of ``--targets`` (``cython`` is what
Brian2's default ``auto`` target picks when a compiler is present; ``numpy`` the pure-Python
runtime; ``cpp_standalone`` compiles the whole simulation to a C++ program).

What is the same: both are the discrete-time model of ``song_experiment`` with the same dt —
forward Euler for V (Brian2 ``method="euler"``), conductances that decay by e^{−dt/5 ms} per
step (Brian2 gets this from Euler with τ_eff = dt / (1 − e^{−dt/5 ms})), input spikes of a step
added to g before V is integrated, threshold −54 mV and reset −60 mV after the integration, and
the trace-based pair rule with traces decaying by e^{−dt/τ} per step and pairs in the same step
not counted (Brian2: the presynaptic update runs before the neuron, the postsynaptic update in
the synapse slot, the presynaptic trace increment after it). Inhibitory inputs are a binomial
count per step in both (Brian2: a ``BinomialFunction``, as ``PoissonInput`` draws it).

What differs: the random numbers (so the runs are compared by statistics: output rate and the
weight histogram); float32 (probsnn) vs float64 (Brian2); Brian2 is event-driven — it touches a
synapse only when its input spikes (≈ 10 per ms at 1,000 inputs) and keeps the STDP traces per
synapse — while probsnn updates the whole input vector every step (dense, vmappable; the inputs
of 100 bins are drawn at once from geometric gaps, one random number per spike); XLA may use
both CPU cores while Brian2's runtime targets and single-threaded standalone use one.

Brian2 runs ``--trials`` networks either by looping (its one-run time × trials, not run) or as
one network of independent copies (measured; the idiomatic Brian2 batch). Brian2's figure
includes building the network objects; compilation is excluded: cython's by a warm-up run that
fills its cache, cpp_standalone's because the compiled program's own times are reported, its
simulation loop and, as "(program)", the whole program (start, synapse creation, loop, writing
the results). The standalone projects are kept per configuration in ``--standalone-dir``, so
only the first round compiles. The timings are interleaved, round by round (``--repeats``):
probsnn one run, each Brian2 target one run, probsnn's batch, each target's copies; the table
gives the best of the rounds and the range of the per-round ratios.

Run (Brian2 2.9 needs numpy < 2.3, so it lives in its own environment; any folder will do):

    python3 -m venv .venv-brian2
    .venv-brian2/bin/pip install -e . "brian2==2.9.*" "numpy<2.3"
    .venv-brian2/bin/python benchmarks/stdp_brian2.py [--seconds 100] [--dt 1.0]
        [--inputs 200 1000] [--trials 10] [--repeats 2] [--targets cython cpp_standalone]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from _header import gcc_version, print_header, version
from _timing import best_time

from probsnn.experiments import song_experiment
from probsnn.inference.plasticity import stdp

try:
    import brian2 as b2
except ImportError as error:
    raise SystemExit(
        "benchmarks/stdp_brian2.py needs Brian2, which is not importable here "
        f"({error}). Brian2 2.9 requires numpy < 2.3, so make a separate environment from the "
        "repository root:\n"
        "    python3 -m venv .venv-brian2\n"
        '    .venv-brian2/bin/pip install -e . "brian2==2.9.*" "numpy<2.3"\n'
        "and run  .venv-brian2/bin/python benchmarks/stdp_brian2.py"
    ) from error

DRIVE = 15.0  # n_inputs · g_max: g_max = 0.015 at Song et al.'s 1,000 inputs
PLUS, MINUS = 0.005, 0.00525  # A₊, A₋ in units of g_max
TAU_STDP_MS = 20.0
RATE_HZ = 10.0
N_INHIBITORY = 200
G_INHIBITORY = 0.05

NEURON = """
dv/dt = (-70*mV - v + g_ex * (0*mV - v) + g_in * (-70*mV - v)) / (20*ms) : volt
dg_ex/dt = -g_ex / tau_g : 1
dg_in/dt = -g_in / tau_g : 1
"""
SYNAPSE = """
w : 1
dx/dt = -x / tau_stdp : 1 (event-driven)
dy/dt = -y / tau_stdp : 1 (event-driven)
"""


def brian2_song(n_inputs, n_trials, seconds, dt_ms, seed):
    """Build and run ``n_trials`` independent copies of the network in the current Brian2
    device/target; returns final weights ``(n_trials, n_inputs)`` and the output spike times
    and their neuron indices."""
    b2.start_scope()
    b2.defaultclock.dt = dt_ms * b2.ms
    b2.seed(seed)
    namespace = {
        "tau_g": dt_ms * b2.ms / (1 - np.exp(-dt_ms / 5.0)),
        "tau_stdp": TAU_STDP_MS * b2.ms,
        "w_max": DRIVE / n_inputs,
        "a_plus": PLUS * DRIVE / n_inputs,
        "a_minus": MINUS * DRIVE / n_inputs,
    }
    neuron = b2.NeuronGroup(
        n_trials,
        NEURON,
        threshold="v >= -54*mV",
        reset="v = -60*mV",
        method="euler",
        namespace=namespace,
        name="song_neuron",
    )
    neuron.v = -70 * b2.mV
    inputs = b2.PoissonGroup(n_trials * n_inputs, RATE_HZ * b2.Hz, name="song_inputs")
    inputs.thresholder["spike"].when = "start"  # this step's input spikes reach V this step
    synapses = b2.Synapses(
        inputs,
        neuron,
        SYNAPSE,
        on_pre={
            "pre": "g_ex_post += w\nw = clip(w - y, 0, w_max)",
            "pre_trace": "x += a_plus",
        },
        on_post="w = clip(w + x, 0, w_max)\ny += a_minus",
        namespace=namespace,
        name="song_synapses",
    )
    synapses.pre.when = "before_groups"
    synapses.pre_trace.when = "after_synapses"
    synapses.connect(i=np.arange(n_trials * n_inputs), j=np.repeat(np.arange(n_trials), n_inputs))
    synapses.w = "rand() * w_max"
    # what PoissonInput does, with fixed names: a binomial count of inhibitory spikes per step
    count = b2.BinomialFunction(N_INHIBITORY, RATE_HZ * dt_ms * 1e-3, name="song_inhibitory_count")
    inhibitory = neuron.run_regularly(
        f"g_in += {G_INHIBITORY} * song_inhibitory_count()",
        when="before_groups",
        name="song_inhibitory",
    )
    namespace["song_inhibitory_count"] = count
    spikes = b2.SpikeMonitor(neuron, name="song_spikes")
    # fixed names keep the generated code identical across runs, so Cython's cache is reused
    network = b2.Network(neuron, inputs, synapses, inhibitory, spikes, name="song_network")
    network.run(seconds * b2.second)
    w = np.asarray(synapses.w[:]).reshape(n_trials, n_inputs)
    return w, np.asarray(spikes.t / b2.second), np.asarray(spikes.i)


def run_target(target, n_inputs, n_trials, seconds, dt_ms, standalone_dir):
    """Run :func:`brian2_song` once with one code-generation target (cython: compiled by an
    earlier call or loaded from Cython's cache). Returns (result, {label: seconds}, note): cython
    and numpy time building the network objects and running them; cpp_standalone gives the
    simulation loop of the compiled program (Brian2's ``device._last_run_time``) and, labelled
    "(program)", the whole program (start, building the synapses, the loop, writing the
    results), with the ``make`` time in the note. The standalone project folder is kept per
    configuration under ``standalone_dir``, so ``make`` only compiles the first time."""
    if target == "cpp_standalone":
        directory = Path(standalone_dir) / f"song_{n_inputs}in_{n_trials}x_{seconds}s_{dt_ms}ms"
        b2.set_device("cpp_standalone", directory=str(directory), build_on_run=True)
        result = brian2_song(n_inputs, n_trials, seconds, dt_ms, seed=0)
        timings = {
            "cpp_standalone": b2.device._last_run_time,
            "cpp_standalone (program)": b2.device.timers["run_binary"],
        }
        note = f"(make {b2.device.timers['compile']['make']:.1f} s)"
        b2.device.reinit()
        b2.set_device("runtime")
        return result, timings, note
    b2.prefs.codegen.target = target
    start = time.perf_counter()
    result = brian2_song(n_inputs, n_trials, seconds, dt_ms, seed=0)
    return result, {target: time.perf_counter() - start}, ""


def summary(w, rates_hz):
    """Output rate over the last quarter and the weight histogram (mass near the bounds and per
    fifth of [0, g_max]; uniform initial weights give 0.1, 0.1 and 0.2 each)."""
    w = np.asarray(w) * np.shape(w)[-1] / DRIVE
    histogram = np.histogram(w, bins=5, range=(0.0, 1.0))[0] / w.size
    return (
        f"last-quarter output {np.mean(rates_hz):5.1f} Hz, weights < 0.1 g_max: "
        f"{np.mean(w < 0.1):.2f}, > 0.9 g_max: {np.mean(w > 0.9):.2f}, "
        f"fifths of [0, g_max]: {np.array2string(histogram, precision=2)}"
    )


def brian2_rates(times, neurons, n_trials, seconds):
    """Last-quarter output rate (Hz) of each Brian2 copy (the quarter song_experiment uses)."""
    tail = max(seconds // 4, 1)
    late = times >= seconds - tail
    return np.bincount(neurons[late], minlength=n_trials) / tail


def compare(n_inputs, args):
    """Time probsnn and every Brian2 target at one size, interleaved round by round (a shared
    or noisy machine slows both sides alike); print each round, then the best times and ratios."""
    seconds, dt, trials = args.seconds, args.dt, args.trials
    w_max = DRIVE / n_inputs
    rule = stdp.pair_stdp(PLUS * w_max, MINUS * w_max, TAU_STDP_MS, TAU_STDP_MS, dt, w_max=w_max)

    def song(key):
        return song_experiment(
            key, rule, w_max=w_max, n_inputs=n_inputs, duration_s=seconds, dt_ms=dt
        )

    one, many = jax.jit(song), jax.jit(jax.vmap(song))
    keys = jax.random.split(jax.random.key(2), trials)
    start = time.perf_counter()
    jax.block_until_ready(one(jax.random.key(1)))
    compile_s = time.perf_counter() - start
    jax.block_until_ready(many(keys))
    for target in args.targets:  # fill Cython's cache outside the timing
        if target == "cython":
            b2.prefs.codegen.target = target
            brian2_song(n_inputs, 1, 1, dt, seed=1)
            brian2_song(n_inputs, trials, 1, dt, seed=1)

    print(f"\n== {n_inputs} inputs (g_max {w_max:.3g}), {seconds} s at {dt} ms, batch {trials} ==")
    print(f"probsnn first call (compile + run) {compile_s:.1f} s")
    times, results = {}, {}

    def record(name, seconds_taken, result, note=""):
        times.setdefault(name, []).append(seconds_taken)
        results[name] = result
        print(f"  {name:58s} {seconds_taken:8.3f} s {note}", flush=True)

    for round_ in range(args.repeats):
        print(f"round {round_ + 1} of {args.repeats}")
        result, t = best_time(lambda: one(jax.random.key(0)), 1)
        record("probsnn 1 run", t, (result.w, result.output_rate_hz))
        for target in args.targets:
            (w, ts, ns), timings, note = run_target(
                target, n_inputs, 1, seconds, dt, args.standalone_dir
            )
            for label, t in timings.items():
                record(f"brian2 {label} 1 run", t, (w, brian2_rates(ts, ns, 1, seconds)), note)
        batch, t = best_time(lambda: many(keys), 1)
        record(f"probsnn {trials} runs (vmap)", t, (batch.w, batch.output_rate_hz))
        for target in args.targets:
            (w, ts, ns), timings, note = run_target(
                target, n_inputs, trials, seconds, dt, args.standalone_dir
            )
            for label, t in timings.items():
                record(
                    f"brian2 {label} {trials} copies in one network",
                    t,
                    (w, brian2_rates(ts, ns, trials, seconds)),
                    note,
                )

    best = {name: min(values) for name, values in times.items()}
    print(
        f"best of {args.repeats} rounds; ratio = Brian2 time / probsnn time (> 1: probsnn faster)"
    )
    print(f"{'':58s} {'seconds':>9s} {'ratio':>8s} {'ratio per round':>17s}")

    def row(name, reference, scale=1):
        values = [scale * value for value in times[name]]
        per_round = [value / ref for value, ref in zip(values, times[reference], strict=True)]
        label = name if scale == 1 else f"{name.replace('1 run', '')}{scale} runs looped"
        ratio = min(values) / best[reference]
        spread = f"{min(per_round):.1f}-{max(per_round):.1f}x"
        print(f"{label:58s} {min(values):9.3f} {ratio:7.1f}x {spread:>17s}")

    labels = [
        name[len("brian2 ") : -len(" 1 run")]
        for name in times
        if name.startswith("brian2 ") and name.endswith(" 1 run")
    ]
    print(f"{'probsnn 1 run':58s} {best['probsnn 1 run']:9.3f}")
    for label in labels:
        row(f"brian2 {label} 1 run", "probsnn 1 run")
    batch_name = f"probsnn {trials} runs (vmap)"
    print(f"{batch_name:58s} {best[batch_name]:9.3f}")
    for label in labels:
        row(f"brian2 {label} 1 run", batch_name, scale=trials)
        row(f"brian2 {label} {trials} copies in one network", batch_name)
    print("(looped = the one-run time x trials, not run: Brian2 building one network per trial)")
    print("last round's statistics (same model, different random numbers):")
    for name, (w, rates) in results.items():
        if "(program)" not in name:  # the program's row is the same run as the loop's
            print(f"  {name:58s} {summary(w, rates)}")


def peers(args):
    """The configuration of both sides, for the header."""
    gcc = gcc_version()
    flags = " ".join(b2.prefs.codegen.cpp.extra_compile_args_gcc)
    threads = b2.prefs.devices.cpp_standalone.openmp_threads
    described = {
        "cython": f"runtime mode, Cython {version('cython')} extensions (gcc {gcc}, {flags}), "
        "what Brian2's default target 'auto' picks; timed: building the network objects + run",
        "numpy": "runtime mode, pure numpy code; timed: building the network objects + run",
        "cpp_standalone": f"whole simulation compiled to C++ (gcc {gcc}, {flags}, "
        f"openmp_threads={threads}: one thread); timed: the program's simulation loop and, "
        "as '(program)', the whole program; compilation excluded",
    }
    return {
        f"brian2 {target}": f"{described[target]}; float64, method 'euler', dt {args.dt} ms, "
        "event-driven synapses"
        for target in args.targets
    } | {
        "probsnn": f"song_experiment under jax.jit (one run) and jit(vmap) ({args.trials} runs), "
        "float32, dense input vector every step, inputs drawn by geometric gaps, XLA CPU "
        "(may use every core); timed: the compiled call, compilation excluded"
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=100)
    parser.add_argument("--dt", type=float, default=1.0, help="bin width in ms")
    parser.add_argument("--inputs", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds")
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["cython", "cpp_standalone"],
        choices=["cython", "numpy", "cpp_standalone"],
    )
    parser.add_argument(
        "--standalone-dir",
        default=str(Path(tempfile.gettempdir()) / "probsnn-brian2-standalone"),
        help="where cpp_standalone keeps its compiled projects (one per configuration)",
    )
    args = parser.parse_args()
    print_header(
        "Song et al. (2000) STDP network: probsnn vs Brian2, same process",
        peers(args),
        packages=("brian2", "cython"),
    )
    b2.BrianLogger.log_level_warn()
    for n_inputs in args.inputs:
        compare(n_inputs, args)


if __name__ == "__main__":
    main()
