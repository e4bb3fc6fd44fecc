"""A sparse Bernoulli GLM network: probsnn's event-driven sampler vs Brian2 on the same network.

Setting (issue 15): ``--neurons`` N = 100,000 Bernoulli GLM neurons, each projecting to
``--fan-out`` F = 1,000 distinct other neurons drawn uniformly (``topology.fixed_fan_out``: N·F =
10^8 synapses, in-degrees d_i ≈ F), three exponential synaptic traces of 5, 20 and 50 ms at 1 ms
bins, firing probability ``--rate`` 0.005 per bin (5 Hz), ``--steps`` 1,000 bins (1 s), one
process. With ``targets`` the ``(N, F)`` table of ``probsnn.Synapses`` the potential of neuron i
at bin t is

    u_{i,t} = γ + Σ_{(j,s): targets[j,s] = i} Σ_k w_{j,s,k} x_{j,k,t} + Σ_k v_{i,k} x_{i,k,t},
    x_{j,k,t} = Σ_{δ≥1} r_k^δ s_{j,t−δ} = r_k (x_{j,k,t−1} + s_{j,t−1}),  r_k = e^{−Δ/τ_k},

and s_{i,t} ~ Bernoulli(σ(u_{i,t})), from silence (x = 0 at t = 0). Weights: w_{j,s,k} ~
Normal(0, g² / (K d_i)) for the synapse's target i, g = ``--weight-scale`` (mixed sign), drawn
once in float32 and handed to both simulators as those values; v_{i,·} = (−2, 0, 0) (refractory
self-inhibition on the 5 ms trace); γ one bias for the rate: a mean-field start refined by
``--calibration`` runs of a float64, event-by-event NumPy simulation of the same recursion
(printed, with a circular-law estimate of the largest real part of the linearised coupling
p(1−p) Σ_k m_k W_k, m_k = r_k / (1 − r_k): below 1, no runaway excitation).

probsnn: ``ps.SparseNetwork(N, synapses, kernels.recursive_exponential(taus, dt))`` with
``ps.Params`` built from those arrays, and ``ps.sample`` (``n_trials=None``, or ``--trials``
batched trials), which on a sparse network adds each spike's F weight rows to its targets' trace
states (event-driven). Compilation is excluded (a first call) and reported: the first call's time
minus the best later one.

Brian2 (same network, the NeuronGroup and synapse model of ``sampler_brian2.py``): g_k = Σ_j
W_{j,i,k} x_{j,k}, ``dg_k/dt = −g_k/τ_k`` with ``method="exact"`` (g_k ← r_k g_k per step),
``u = bias + g1 + g2 + g3``, threshold ``rand() < 1/(1+exp(−u))``, no reset, Synapses made with
``connect(i=pre, j=post)`` from probsnn's target table plus the N diagonal (i = j) synapses that
carry v, ``on_pre = "g1_post += w1; g2_post += w2; g3_post += w3"``, one scalar delay 0 (Brian2
then keeps no per-synapse delay array). Brian2's step is groups (the decay), thresholds (the
draw), synapses (this step's spikes delivered), resets, so with G_t the value of g at the
threshold of step t: G_t = r (G_{t−1} + W s_{t−1}), probsnn's recursion; a deterministic check of
this ordering runs first through the same builder (a neuron forced to spike at bin 0 only: u of
its target and its own u at bins 0..9 against Σ_k w_k r_k^t), then the runs are compared by
statistics (firing probability per bin and P(s_{i,t} = 1 | s_{i,t−1} = 1), which the refractory
weight makes ≈ 5× lower than the rate, so an off-by-one-bin schedule would show).

Timed: probsnn's ``ps.sample`` call; Brian2 cython: ``Network.run`` of a network built once
(before each round g is set back to 0, so each run starts from silence; each run call re-prepares
Brian2's spike queue over all synapses — that and the other per-call costs of both sides are
measured by a 2-bin call and printed); Cython's compilation is excluded by first building and
running a 50-neuron copy (the same generated code, so the real network finds it in the cache);
cpp_standalone: its simulation loop and, as "(program)", the whole program (loading the arrays,
creating the synapses, the loop, writing the results), rebuilt every round in a project per
configuration under ``--standalone-dir`` so only the first round runs the compiler (``make``
in the note). ``--trials`` B > 1: probsnn samples B trials in one call, Brian2's figure is B ×
its one-run time (looped, not run: B copies of 10^8 synapses do not fit). The rounds are
interleaved (``--repeats``: probsnn, then each Brian2 target); the tables give the best of the
rounds and the range of per-round ratios.

Build (not in the ratios, printed): probsnn's synapse table (``topology.fixed_fan_out``), the
weights, ``SparseNetwork`` + ``Params``; Brian2's groups, ``connect`` and weight assignment from
those arrays. Memory: the resident set of this process, its peak reset before each phase
(``/proc/self/clear_refs``) and read after it (``VmHWM``), printed as the resident set before the
phase and the peak during it; the standalone program runs as a child process, whose peak GNU
``time`` reports (when installed). Both sides live in one process, so each phase's baseline holds
what the earlier phases left: the phase's own cost is its peak minus its baseline.

What differs: the random numbers (so the runs are compared by statistics, with block standard
errors); float32 (probsnn) vs float64 (Brian2); Brian2 records the spikes with a SpikeMonitor,
probsnn returns the whole (T, N) uint8 spike array; XLA may use every core while Brian2's runtime
targets and single-threaded standalone use one.

Run (Brian2 2.9 needs numpy < 2.3, so it lives in its own environment, see sampler_brian2.py):

    .venv-brian2/bin/python benchmarks/sampler_sparse_brian2.py [--neurons 100000]
        [--fan-out 1000] [--steps 1000] [--rate 0.005] [--trials 1] [--repeats 2]
        [--targets cython cpp_standalone] [--weight-scale 1.0] [--capacity 256]

``--neurons`` takes several sizes (e.g. ``--neurons 100000 20000``), run one after the other;
``--standalone-max-synapses`` (2.5e7) skips cpp_standalone above that many synapses, with a
note: at 10^8 its program and its Python side would each hold about 6 GiB next to the cython
network and probsnn's arrays in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _header import gcc_version, print_header
from _networks import (
    DECAYS,
    DT_S,
    MASSES,
    REFRACTORY,
    TAUS_S,
    K,
    add_sparse_arguments,
    sparse_weights,
)
from _timing import best_time
from sampler_brian2 import (
    N_BLOCKS,
    NEURON,
    ON_PRE,
    SYNAPSE,
    THRESHOLD,
    TOLERANCE,
    b2,
    dense_statistics,
    statistics,
)

import probsnn as ps
from probsnn import kernels, sparse, topology

MIB = 1024.0
STANDALONE_BYTES = 62  # resident bytes a synapse, in cpp_standalone's program and Python side
TIME_COMMAND = shutil.which("time")  # GNU time: the standalone program's peak resident set


# -- memory ---------------------------------------------------------------------------------
def status_mib(field: str) -> float:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / MIB
    return float("nan")


class Phases:
    """Wall time and memory of named phases: ``with phases("label"): ...``; repeated labels
    keep the largest peak (and the baseline it rose from) and every duration."""

    def __init__(self):
        self.memory, self.seconds = {}, {}

    @contextlib.contextmanager
    def __call__(self, label: str, quiet: bool = False):
        gc.collect()
        baseline = status_mib("VmRSS")
        with contextlib.suppress(OSError):  # without it VmHWM is the process's lifetime peak
            Path("/proc/self/clear_refs").write_text("5")
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        peak = status_mib("VmHWM")
        self.seconds.setdefault(label, []).append(seconds)
        old_baseline, old_peak = self.memory.get(label, (0.0, 0.0))
        if peak - baseline >= old_peak - old_baseline:
            self.memory[label] = (baseline, peak)
        if not quiet:
            print(
                f"  {label:48s} {seconds:8.2f} s   RSS before {baseline:8.0f} MiB, "
                f"peak {peak:8.0f} MiB (+{peak - baseline:.0f})",
                flush=True,
            )


# -- the network ----------------------------------------------------------------------------
def numpy_counts(targets, w, v, bias, steps, rng):
    """Float64 NumPy simulation of the recursion, event by event (each bin's spikes add their
    weight rows to their targets' g); returns the number of spikes in each bin."""
    n = targets.shape[0]
    g = np.zeros((K, n))
    counts = np.zeros(steps, np.int64)
    for t in range(steps):
        fired = np.flatnonzero(rng.random(n) * (1 + np.exp(-(bias + g.sum(0)))) < 1)
        counts[t] = fired.size
        post = targets[fired].ravel()
        rows = w[fired].reshape(-1, K)
        keep = post < n
        drive = np.zeros((K, n))
        for k in range(K):
            drive[k] = np.bincount(post[keep], rows[keep, k], minlength=n)
        drive[:, fired] += v[fired].T
        g = DECAYS[:, None] * (g + drive)
    return counts


def calibrate(targets, w, v, rate: float, rounds: int, seed: int):
    """The bias γ for ``rate``: mean-field start (the coupling has mean 0; the refractory
    trace lowers u by REFRACTORY m_1 p on average), then ``rounds`` NumPy runs, each moving γ
    by logit(rate) − logit(measured). Returns (γ, a line describing it)."""
    rng = np.random.default_rng(seed)
    n = targets.shape[0]
    logit = np.log(rate / (1 - rate))
    bias = logit - REFRACTORY * MASSES[0] * rate
    skip = 200  # 4 time constants of the slowest trace
    steps = skip + int(np.clip(np.ceil(2e5 / (n * rate)), 200, 1800))  # ≈ 2e5 spikes
    measured = rate
    for round_ in range(rounds + 1):
        measured = numpy_counts(targets, w, v, bias, steps, rng)[skip:].sum() / (n * (steps - skip))
        if round_ < rounds:
            bias += logit - np.log(measured / (1 - measured))
    return bias, (
        f"bias {bias:.4f} ({rounds} calibration runs of a float64 NumPy simulation, "
        f"{steps - skip} bins after {skip}: final rate {measured:.5f} per bin)"
    )


def coupling_gain(targets, w, v, rate: float) -> str:
    """Circular-law estimate of the largest real part of the linearised coupling
    A = p(1−p) Σ_k m_k W_k (v on its diagonal): the mean diagonal plus the radius
    sqrt(mean_i Σ_j A_ij²)."""
    n = targets.shape[0]
    gain = rate * (1 - rate)
    per_synapse = w @ MASSES.astype(np.float32)  # (N, F)
    keep = targets < n
    row_squares = np.bincount(targets[keep], per_synapse[keep].astype(np.float64) ** 2, n)
    radius = gain * np.sqrt(row_squares.mean())
    centre = gain * float(np.mean(v @ MASSES))
    return (
        f"linearised coupling p(1-p) sum_k m_k W_k: circular-law estimate of the largest real "
        f"part {centre + radius:.3f} (diagonal {centre:.3f}, radius {radius:.3f}; < 1: no "
        "runaway)"
    )


# -- Brian2 ---------------------------------------------------------------------------------
def synapse_lists(targets):
    """Brian2's (pre, post) int32 synapse lists: the table's synapses, then the diagonal."""
    n = targets.shape[0]
    keep = targets < n
    rows = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None], targets.shape)
    pre = np.concatenate([rows[keep], np.arange(n, dtype=np.int32)])
    post = np.concatenate([targets[keep], np.arange(n, dtype=np.int32)])
    return pre, post


def brian2_build(targets, w, v, bias, threshold=THRESHOLD, monitor_u=None, name="sparse_glm"):
    """Build the network in the current Brian2 device and target. Returns (network, neurons,
    spike monitor, potential monitor or None). Fixed object names keep the generated code the
    same from one build to the next, so Cython's cache and standalone projects are reused."""
    b2.start_scope()
    b2.defaultclock.dt = DT_S * b2.second
    n = targets.shape[0]
    scope = {"namespace": {f"tau{k + 1}": tau * b2.second for k, tau in enumerate(TAUS_S)}}
    neurons = b2.NeuronGroup(
        n, NEURON, threshold=threshold, reset="", method="exact", name=f"{name}_neurons", **scope
    )
    neurons.bias = bias
    synapses = b2.Synapses(
        neurons,
        neurons,
        SYNAPSE,
        on_pre=ON_PRE,
        delay=0 * b2.second,
        name=f"{name}_synapses",
        **scope,
    )
    pre, post = synapse_lists(targets)
    synapses.connect(i=pre, j=post)
    del pre, post
    keep = targets < n
    for k in range(K):  # one weight column at a time (float64 copies of 10^8 values)
        setattr(synapses, f"w{k + 1}", np.concatenate([w[..., k][keep], v[:, k]]))
    spikes = b2.SpikeMonitor(neurons, name=f"{name}_spikes")
    potentials = None
    if monitor_u is not None:  # order -1 in the thresholds slot: u exactly as the draw reads it
        potentials = b2.StateMonitor(
            neurons, "u", record=monitor_u, when="thresholds", order=-1, name=f"{name}_u"
        )
    monitors = [spikes] if potentials is None else [spikes, potentials]
    network = b2.Network(neurons, synapses, *monitors, name=f"{name}_network")
    return network, neurons, spikes, potentials


def sparse_schedule_check():
    """The ordering check through :func:`brian2_build` with the numpy target: neuron 0 spikes
    at bin 0 only and projects to neuron 1 (weights w) and to itself (feedback v); u − bias of
    both at bins 0..9 must be Σ_k w_k r_k^t (0 at t = 0), probsnn's kernel."""
    w, v = np.array([0.1, 0.2, 0.3]), np.array([-REFRACTORY, 0.05, -0.07])
    targets = np.array([[1], [2]], np.int32)  # neuron 1 projects nowhere (padding value N = 2)
    weights = np.stack([w, np.zeros(K)])[:, None, :]
    previous = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    try:
        network, *_, monitor = brian2_build(
            targets,
            weights,
            np.stack([v, np.zeros(K)]),
            np.zeros(2),
            threshold="i == 0 and t < 0.5*dt",
            monitor_u=[0, 1],
            name="schedule_check",
        )
        network.run(10 * DT_S * b2.second, namespace={})
    finally:
        b2.prefs.codegen.target = previous
    lags = np.arange(10)
    kernel = np.where(lags > 0, DECAYS[:, None] ** lags, 0.0)
    error = max(np.abs(monitor.u[1] - w @ kernel).max(), np.abs(monitor.u[0] - v @ kernel).max())
    print(
        "schedule check (Brian2 sparse builder, neuron 0 forced to spike at bin 0 only): u - "
        f"bias at bins 0..9 of its target and of itself "
        f"{'matches' if error < 1e-12 else 'DOES NOT MATCH'} sum_k w_k r_k^t "
        f"(max error {error:.1e})"
    )


class RuntimeBrian2:
    """A Brian2 runtime-target network built once and run from silence again and again."""

    def __init__(self, target, targets, w, v, bias):
        b2.prefs.codegen.target = target
        self.network, self.neurons, self.spikes, _ = brian2_build(
            targets, w, v, np.full(targets.shape[0], bias), name=f"sparse_glm_{target}"
        )

    def run(self, steps: int):
        """Run ``steps`` bins from g = 0. Returns ((neurons, bins) of its spikes, seconds)."""
        for k in range(K):
            setattr(self.neurons, f"g{k + 1}", 0.0)
        first, t0 = int(self.spikes.num_spikes), float(self.network.t / b2.second)
        start = time.perf_counter()
        self.network.run(steps * DT_S * b2.second, namespace={})
        seconds = time.perf_counter() - start
        bins = np.round((np.asarray(self.spikes.t / b2.second)[first:] - t0) / DT_S)
        return (np.asarray(self.spikes.i)[first:], bins.astype(np.int64)), seconds


def standalone_run(targets, w, v, bias, steps, seed, directory):
    """Build and run the network as a cpp_standalone program. Returns ((neurons, bins),
    {label: seconds}, note)."""
    b2.set_device("cpp_standalone", directory=str(directory), build_on_run=True)
    usage = Path(directory) / "program_usage.txt"  # GNU time's report: the program's peak RSS
    usage.unlink(missing_ok=True)
    run_cmd = b2.prefs.devices.cpp_standalone.run_cmd_unix
    if TIME_COMMAND:
        b2.prefs.devices.cpp_standalone.run_cmd_unix = [
            *(TIME_COMMAND, "-f", "%M", "-o", usage.name),
            *([run_cmd] if isinstance(run_cmd, str) else run_cmd),
        ]
    try:
        b2.seed(seed)
        network, _, spikes, _ = brian2_build(
            targets, w, v, np.full(targets.shape[0], bias), name="sparse_glm_standalone"
        )
        network.run(steps * DT_S * b2.second, namespace={})
        events = (
            np.asarray(spikes.i),
            np.round(np.asarray(spikes.t / b2.second) / DT_S).astype(np.int64),
        )
        timers = b2.device.timers
        timings = {
            "cpp_standalone": b2.device._last_run_time,
            "cpp_standalone (program)": timers["run_binary"],
        }
        peak = f"{int(usage.read_text().split()[-1]) / MIB:.0f} MiB" if usage.exists() else "?"
        note = f"(make {timers['compile']['make']:.1f} s, program peak RSS {peak})"
    finally:
        b2.prefs.devices.cpp_standalone.run_cmd_unix = run_cmd
        b2.device.reinit()
        b2.set_device("runtime")
    return events, timings, note


# -- tables ---------------------------------------------------------------------------------
def loop_seconds(times, fixed):
    """Best time less the per-call cost (a 2-bin call): the bins' own cost. cpp_standalone's
    loop has no per-call cost; its whole program is left out."""
    return {
        name: min(values) - fixed.get(name, 0.0)
        for name, values in times.items()
        if not name.endswith("(program)")
    }


def print_times(times, compiled, fixed, trials, steps):
    """Best time per side, simulated seconds per wall second, compile and per-call cost."""
    print(f"\ntimes: best of {len(next(iter(times.values())))} rounds")
    header = ("seconds", "sim-s/wall-s", "compile", "per call", "loop sim-s/s")
    print(f"{'':40s}" + "".join(f"{h:>14s}" for h in header))
    loops = loop_seconds(times, fixed)
    for name, values in times.items():
        simulated = (trials if name.startswith("probsnn") else 1) * steps * DT_S
        cells = (
            f"{min(values):.3f}",
            f"{simulated / min(values):.3g}",
            f"{compiled[name]:.1f} s" if name in compiled else "",
            f"{fixed[name]:.2f} s" if name in fixed else "",
            f"{simulated / loops[name]:.3g}" if loops.get(name, 0) > 0 else "",
        )
        print(f"{name:40s}" + "".join(f"{c:>14s}" for c in cells))
        if trials > 1 and not name.startswith("probsnn"):
            looped = trials * min(values)
            label = f"{name} x{trials} looped"
            print(f"{label:44s}{looped:10.3f}{trials * steps * DT_S / looped:14.3g}")
    print(
        "(sim-s/wall-s: simulated seconds, over all trials, per wall second; compile: first "
        "call - best call (probsnn: a load from its persistent compilation cache when this ran "
        "before; PROBSNN_CACHE=off measures compiling), Brian2 runtime: build and 5-bin run "
        "of a 50-neuron copy (fills Cython's cache; a load from it when this ran before); per "
        "call: a 2-bin call, the fixed cost in every timed call; loop sim-s/s: without it)"
    )


def print_ratios(times, fixed, trials):
    """Brian2 time / probsnn time per Brian2 row: best-time ratio (per-round range), and the
    ratio of the loops (per-call costs taken off)."""
    reference = times["probsnn"]
    loops = loop_seconds(times, fixed)
    print(
        f"\nspeed-up of probsnn = Brian2 seconds (x{trials} looped when --trials > 1) / probsnn "
        "seconds, > 1 when probsnn is faster: best times (range over the rounds); the same "
        "for the loops (per-call costs taken off)"
    )
    for name, values in times.items():
        if name == "probsnn":
            continue
        per_round = [trials * b / p for b, p in zip(values, reference, strict=True)]
        best = trials * min(values) / min(reference)
        line = f"  {name:38s} {best:6.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"
        if loops.get(name, 0) > 0 and loops["probsnn"] > 0:
            line += f"   loops {trials * loops[name] / loops['probsnn']:6.2f}x"
        print(line)


def print_statistics(events, n, trials, steps):
    """Last round's firing probability and conditional probability, with the verdicts."""
    print(
        f"\nspike statistics of the last round, ± standard errors from {N_BLOCKS} time blocks "
        "(the random numbers differ between the simulators; 'ok': each figure within "
        f"{TOLERANCE:g} combined standard errors of probsnn's)"
    )
    print(f"{'':40s} {'P(spike)/bin':>18s} {'P(s_t | s_t-1)':>18s} {'halves':>15s}")
    summaries = {
        name: dense_statistics(result) if name == "probsnn" else statistics(*result, n, steps)
        for name, result in events.items()
    }
    reference = summaries["probsnn"]
    keys = ("rate", "cond")
    for name, s in summaries.items():
        cells = [f"{s[key]:.5f}±{s[key + '_se']:.5f}" for key in keys]
        line = f"{name:40s} {cells[0]:>18s} {cells[1]:>18s} " + "/".join(
            f"{half:.4f}" for half in s["halves"]
        )
        if name != "probsnn":
            z = [
                (s[key] - reference[key]) / np.hypot(s[key + "_se"], reference[key + "_se"])
                for key in keys
            ]
            verdict = "ok" if max(map(abs, z)) < TOLERANCE else "DIFFERENT"
            line += f"  vs probsnn {verdict} (z {z[0]:+.1f}, {z[1]:+.1f})"
        print(line)
    if trials > 1:
        print(f"(probsnn: {trials} trials; Brian2: one run)")


def print_memory(phases):
    """Every phase's resident set before it and its peak."""
    print("\nmemory: resident set of this process before each phase, and its peak during it")
    print(f"{'':50s} {'before MiB':>11s} {'peak MiB':>11s} {'phase MiB':>11s}")
    for label, (baseline, peak) in phases.memory.items():
        print(f"{label:50s} {baseline:11.0f} {peak:11.0f} {peak - baseline:11.0f}")


# -- the comparison -------------------------------------------------------------------------
def compare(n, args):
    """Build both sides for N = ``n``, run the interleaved rounds and print the tables."""
    fan_out, steps, trials = args.fan_out, args.steps, args.trials
    print(
        f"\n== N={n}, fan-out {fan_out} ({n * fan_out:.3g} synapses), {steps} bins of "
        f"{DT_S * 1e3:g} ms, {trials} trial(s), rate {args.rate} per bin =="
    )
    targets_list = list(args.targets)
    if "cpp_standalone" in targets_list and n * fan_out > args.standalone_max_synapses:
        targets_list.remove("cpp_standalone")
        print(
            f"note: cpp_standalone skipped at {n * fan_out:.3g} synapses (above "
            f"--standalone-max-synapses {args.standalone_max_synapses:.3g}): its Python side "
            f"(static arrays, results read back) and its program each take about "
            f"{STANDALONE_BYTES * n * fan_out / 2**30:.1f} GiB ({STANDALONE_BYTES} bytes a "
            "synapse, measured at 2e7) on top of what this process holds; run it at a smaller N"
        )
    phases = Phases()
    print("build")
    with phases("probsnn synapses (topology.fixed_fan_out)"):
        synapses = topology.fixed_fan_out(n, fan_out, seed=args.seed)
    with phases("weights (NumPy float32, shared)"):
        w, v = sparse_weights(synapses, args.weight_scale, args.seed + 1)
    with phases("bias calibration (NumPy float64, shared)"):
        bias, note = calibrate(synapses.targets, w, v, args.rate, args.calibration, args.seed)
        gain = coupling_gain(synapses.targets, w, v, args.rate)
    print(f"{note}\n{gain}")
    with phases("probsnn SparseNetwork + Params"):
        spec = ps.SparseNetwork(n, synapses, kernels.recursive_exponential(TAUS_S, DT_S), dt=DT_S)
        params = ps.Params(
            w=jnp.asarray(w),
            v=jnp.asarray(v),
            c=jnp.zeros((0, n, 0), jnp.float32),  # no inputs
            bias=jnp.full((n,), bias, jnp.float32),
        )
        del w  # Brian2 reads the weights back from params.w (a view on the CPU)
    n_trials = None if trials == 1 else trials

    def sample(key, n_steps=steps):
        return ps.sample(spec, params, key, n_steps, n_trials=n_trials, capacity=args.capacity)

    compiled, fixed = {}, {}  # compile seconds; the 2-bin call's seconds
    with phases("probsnn first call (compile + run)"):
        jax.block_until_ready(sample(jax.random.key(1)))
    with phases("probsnn 2-bin call (compile + run)", quiet=True):
        jax.block_until_ready(sample(jax.random.key(2), 2))
    fixed["probsnn"] = best_time(lambda: sample(jax.random.key(3), 2), 2)[1]

    w_view = np.asarray(params.w)
    runtime = {}
    for target in targets_list:
        if target == "cpp_standalone":
            continue
        warm_label = f"brian2 {target} compile (50-neuron copy)"
        with phases(warm_label):
            small = topology.fixed_fan_out(50, min(fan_out, 10), seed=args.seed)
            warm_w, warm_v = sparse_weights(small, args.weight_scale, args.seed)
            RuntimeBrian2(target, small.targets, warm_w, warm_v, bias).run(5)
        with phases(f"brian2 {target} build (groups, connect, weights)"):
            runtime[target] = RuntimeBrian2(target, synapses.targets, w_view, v, bias)
            b2.seed(args.seed)
        with phases(f"brian2 {target} 2-bin calls"):
            fixed[f"brian2 {target}"] = min(runtime[target].run(2)[1] for _ in range(2))
        compiled[f"brian2 {target}"] = phases.seconds[warm_label][-1]

    times, events, notes = {}, {}, {}
    directory = Path(args.standalone_dir) / f"sparse_glm_{n}n_{fan_out}f_{steps}steps"
    for round_ in range(args.repeats):
        print(f"round {round_ + 1} of {args.repeats}")
        with phases("probsnn run"):
            spikes, seconds = best_time(lambda r=round_: sample(jax.random.key(10 + r)), 1)
        times.setdefault("probsnn", []).append(seconds)
        events["probsnn"] = np.asarray(spikes)
        del spikes
        for target in targets_list:
            label = f"brian2 {target}"
            if target == "cpp_standalone":
                with phases("brian2 cpp_standalone (Python side + program)"):
                    events[label], timings, notes[label] = standalone_run(
                        synapses.targets, w_view, v, bias, steps, args.seed + round_, directory
                    )
                for name, value in timings.items():
                    times.setdefault(f"brian2 {name}", []).append(value)
                print(f"    {timings} {notes[label]}")
            else:
                with phases(f"brian2 {target} run"):
                    events[label], seconds = runtime[target].run(steps)
                times.setdefault(label, []).append(seconds)
        print(
            "    " + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in times.items()),
            flush=True,
        )

    compiled["probsnn"] = phases.seconds["probsnn first call (compile + run)"][0] - min(
        times["probsnn"]
    )
    print_times(times, compiled, fixed, trials, steps)
    print_ratios(times, fixed, trials)
    print_statistics(events, n, trials, steps)
    print_memory(phases)
    if notes:
        print("\n" + "\n".join(f"{name}: {note}" for name, note in notes.items()))


def describe_peers(args):
    """Both sides' configuration, for the header."""
    compiled = f"gcc {gcc_version()}, {' '.join(b2.prefs.codegen.cpp.extra_compile_args_gcc)}"
    how = {
        "cython": f"runtime mode, Cython extensions ({compiled}); timed: Network.run of a "
        "network built once",
        "numpy": "runtime mode, numpy code; timed: Network.run of a network built once",
        "cpp_standalone": f"compiled C++ program ({compiled}, openmp_threads="
        f"{b2.prefs.devices.cpp_standalone.openmp_threads}); timed: its loop and the program",
    }
    described = {
        f"brian2 {target}": f"{how[target]}; float64, method 'exact', dt 1 ms, event-driven "
        "synapses from probsnn's target table plus the diagonal, scalar delay 0, SpikeMonitor"
        for target in args.targets
    }
    delivery = (
        "probsnn's compiled CPU kernel (C, -O3; a busy bin split by target ranges over "
        "XLA's CPU threads)"
        if sparse.compiled_kernel()
        else f"XLA gather and scatter, capacity {args.capacity or 'default'}"
    )
    described["probsnn"] = (
        f"ps.sample on a ps.SparseNetwork (event-driven delivery: {delivery}), "
        f"n_trials={args.trials}, float32, XLA CPU (may use every core); timed: the call, "
        "compilation excluded"
    )
    return described


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sparse_arguments(parser)
    parser.add_argument("--trials", type=int, default=1, help="probsnn's batch of trials")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds")
    parser.add_argument("--capacity", type=int, default=None, help="probsnn's spikes/scatter")
    parser.add_argument("--seed", type=int, default=0)
    brian2_targets = ("cython", "numpy", "cpp_standalone")
    parser.add_argument(
        "--targets", nargs="+", default=["cython", "cpp_standalone"], choices=brian2_targets
    )
    parser.add_argument(
        "--standalone-max-synapses",
        type=float,
        default=2.5e7,
        help="skip cpp_standalone above this many synapses (memory: see the note it prints)",
    )
    projects = Path(tempfile.gettempdir()) / "probsnn-brian2-standalone"
    parser.add_argument(
        "--standalone-dir", default=str(projects), help="cpp_standalone's project folders"
    )
    args = parser.parse_args()
    print_header(
        "Sparse Bernoulli GLM network sampling: probsnn.sample vs Brian2, same process",
        describe_peers(args),
        packages=("brian2", "cython"),
    )
    print(f"load average at start: {os.getloadavg()}")
    b2.BrianLogger.log_level_warn()
    sparse_schedule_check()
    for n in args.neurons:
        compare(n, args)
        jax.clear_caches()  # the compiled samplers keep their SparseNetwork (a static argument)
        gc.collect()
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
