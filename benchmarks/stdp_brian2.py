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
synapse — while probsnn multiplies the whole input vector every step (dense, vmappable); XLA may
use both CPU cores while Brian2's runtime targets and single-threaded standalone use one.

Brian2 runs ``--trials`` networks either by looping (its one-run time × trials) or as one network
of independent copies (measured; the idiomatic Brian2 batch). Brian2's figure includes building
the network objects; compilation is excluded for cython (a warm-up run fills its cache) and
reported separately for cpp_standalone (its figure is the compiled program's run time).

Run (Brian2 2.9 needs numpy < 2.3, so it lives in its own environment):

    python3 -m venv .venv-brian2
    .venv-brian2/bin/pip install -e . "brian2==2.9.*" "numpy<2.3"
    .venv-brian2/bin/python benchmarks/stdp_brian2.py [--seconds 100] [--dt 1.0]
        [--inputs 200 1000] [--trials 10] [--targets cython numpy cpp_standalone]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax
import numpy as np
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


def run_target(target, n_inputs, n_trials, seconds, dt_ms, repeats):
    """Time :func:`brian2_song` with one code-generation target; returns (result, seconds,
    compile-and-run seconds or None)."""
    if target == "cpp_standalone":
        with tempfile.TemporaryDirectory() as directory:
            b2.set_device("cpp_standalone", directory=directory, build_on_run=True)
            start = time.perf_counter()
            result = brian2_song(n_inputs, n_trials, seconds, dt_ms, seed=0)
            total = time.perf_counter() - start
            run_only = b2.device._last_run_time
            b2.device.reinit()
            b2.set_device("runtime")
        return result, run_only, total
    b2.prefs.codegen.target = target
    if target == "cython":  # compile (or load from the cache) outside the timing
        brian2_song(n_inputs, n_trials, 1, dt_ms, seed=1)
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = brian2_song(n_inputs, n_trials, seconds, dt_ms, seed=0)
        best = min(best, time.perf_counter() - start)
    return result, best, None


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
    """Time probsnn and every Brian2 target at one size; print rows and ratios."""
    seconds, dt, trials = args.seconds, args.dt, args.trials
    w_max = DRIVE / n_inputs
    rule = stdp.pair_stdp(PLUS * w_max, MINUS * w_max, TAU_STDP_MS, TAU_STDP_MS, dt, w_max=w_max)

    def song(key):
        return song_experiment(
            key, rule, w_max=w_max, n_inputs=n_inputs, duration_s=seconds, dt_ms=dt
        )

    one, many = jax.jit(song), jax.jit(jax.vmap(song))
    start = time.perf_counter()
    jax.block_until_ready(one(jax.random.key(1)))
    compile_s = time.perf_counter() - start
    result, t_one = best_time(lambda: one(jax.random.key(0)), args.repeats)
    keys = jax.random.split(jax.random.key(2), trials)
    batch, t_many = best_time(lambda: many(keys), args.repeats, warmup=True)
    print(f"\n== {n_inputs} inputs (g_max {w_max:.3g}), {seconds} s at {dt} ms, batch {trials} ==")
    print(f"probsnn     1 run {t_one:8.3f} s  (first call incl. compile {compile_s:.1f} s)")
    print(f"  {summary(result.w, result.output_rate_hz)}")
    print(f"probsnn {trials:5d} runs {t_many:8.3f} s (vmap)")
    print(f"  {summary(batch.w, batch.output_rate_hz)}")
    for target in args.targets:
        (w, times, neurons), t_b2, total = run_target(target, n_inputs, 1, seconds, dt, 1)
        note = "" if total is None else f"  (build + compile + run {total:.1f} s)"
        print(f"brian2 {target:14s} 1 run {t_b2:8.3f} s  ratio {t_b2 / t_one:7.1f}x{note}")
        print(f"  {summary(w, brian2_rates(times, neurons, 1, seconds))}")
        loop = t_b2 * trials
        print(
            f"brian2 {target:14s} {trials} runs looped {loop:8.2f} s (1 run x {trials})  "
            f"ratio {loop / t_many:7.1f}x"
        )
        (w, times, neurons), t_copies, total = run_target(target, n_inputs, trials, seconds, dt, 1)
        note = "" if total is None else f"  (build + compile + run {total:.1f} s)"
        print(
            f"brian2 {target:14s} {trials} copies in one network {t_copies:8.2f} s  "
            f"ratio {t_copies / t_many:7.1f}x{note}"
        )
        print(f"  {summary(w, brian2_rates(times, neurons, trials, seconds))}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=100)
    parser.add_argument("--dt", type=float, default=1.0, help="bin width in ms")
    parser.add_argument("--inputs", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["cython", "numpy", "cpp_standalone"],
        choices=["cython", "numpy", "cpp_standalone"],
    )
    args = parser.parse_args()
    print(
        f"Song et al. STDP network; jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"brian2 {b2.__version__}, numpy {np.__version__}; ratio = Brian2 time / probsnn time"
    )
    b2.BrianLogger.log_level_warn()
    for n_inputs in args.inputs:
        compare(n_inputs, args)


if __name__ == "__main__":
    main()
