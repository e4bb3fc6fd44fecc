"""A Bernoulli GLM network: probsnn.sample vs Brian2 on the same discrete-time network.

Setting (issue 15): ``--neurons`` N = 1,000 Bernoulli GLM neurons, dense random coupling (no
self-connections in the mask; each neuron's own past enters through the feedback kernel, which
shares the synaptic basis), three exponential synaptic traces of 5, 20 and 50 ms at 1 ms bins,
``--steps`` 10,000 bins, one process. The membrane potential of neuron i at bin t is

    u_{i,t} = γ_i + Σ_k [Σ_{j≠i} w_{j,i,k} x_{j,k,t} + v_{i,k} x_{i,k,t}],
    x_{j,k,t} = Σ_{δ≥1} r_k^δ s_{j,t−δ} = r_k (x_{j,k,t−1} + s_{j,t−1}),  r_k = e^{−Δ/τ_k},

and s_{i,t} ~ Bernoulli(σ(u_{i,t})). Weights: w_{j,i,k} ~ Normal(0, 0.5² / (K (N−1))) (mixed
sign), v_{i,·} = (−2, 0, 0) (a refractory self-inhibition on the 5 ms trace), γ_i = γ one bias
chosen so the network fires with probability ``--rate`` (0.04) per bin: a mean-field start
refined by three short runs of a float64 NumPy simulation of the same recursion (printed, with
the largest real part of the eigenvalues of the linearised coupling p(1−p) Σ_k m_k W_k,
m_k = r_k / (1 − r_k), W_k with v on its diagonal: below 1, no runaway excitation).

probsnn: ``ps.Network(N, basis, dt=1e-3)`` with ``ps.Params`` built from those arrays, and
``ps.sample`` for one trial (``n_trials=None``) and ``--trials`` batched trials, for each
``--propagation``: "ring" is the L-lag ring buffer with the array basis
``kernels.exponential(taus, --lags, dt)`` (L = 350: the 50 ms kernel is cut at e^{−7} ≈ 1e-3 of
its peak, a 0.1 % loss of its mass); "dense" and "event" use ``kernels.recursive_exponential``
and ``ps.sample(..., propagation=name)`` (the recursion above, no cut). The options that the
installed probsnn lacks are skipped with a note. Compilation is excluded (a first call) and
reported: the first call's time minus the best later one.

Brian2 (same network, same discretisation): a NeuronGroup with g_k = Σ_j W_{j,i,k} x_{j,k}
(the three weighted traces summed per neuron; the equation is linear, so these are the same
sums), ``dg_k/dt = −g_k/τ_k`` with ``method="exact"`` (Brian2's update is g_k ← g_k e^{−dt/τ_k},
i.e. exactly r_k per step), ``u = bias + g1 + g2 + g3``, threshold ``rand() < 1/(1+exp(−u))``,
no reset, and dense Synapses including i = j (the feedback weights v on the diagonal) with
``on_pre = "g1_post += w1; g2_post += w2; g3_post += w3"`` and no delay. Brian2's schedule in
each step is groups (the decay), thresholds (the draw), synapses (this step's spikes delivered),
resets. So with G_t the value of g at the threshold of step t: G_t = r (G_{t−1} + W s_{t−1}) —
a spike of step t−1 is added after its threshold and decays once at the start of step t before
it enters u_t, which is probsnn's x_t = r (x_{t−1} + s_{t−1}); both start from silence (g = 0,
so u_0 = γ). The script checks this deterministically (a neuron forced to spike at bin 0 only:
u of its target and its own u at bins 0..9 against Σ_k w_k r_k^t) and then statistically (the
firing probability per bin and P(s_{i,t} = 1 | s_{i,t−1} = 1), which the refractory weight makes
≈ 3× lower than the rate, so an off-by-one-bin schedule would show).

What differs: the random numbers (so the runs are compared by statistics, with block standard
errors); float32 (probsnn) vs float64 (Brian2); Brian2 is event-driven (it adds the 3 N weights
of each neuron that spiked, ≈ 40 per bin) and records the spikes with a SpikeMonitor, probsnn
returns the whole (T, N) spike array; XLA may use every core while Brian2's runtime targets
and single-threaded standalone use one.

Brian2 runs ``--trials`` trials as ``--trials`` independent runs (its one-run time × trials,
stated, not run) and, unless ``--no-copies``, as one network of ``--trials`` independent
copies (measured; block-diagonal synapses, ``--trials`` N² of them). Brian2's timed figure for
the runtime targets is ``Network.run`` (the build — objects, N² synapses, weights — is in the
note); cython's compilation is excluded by a warm-up run that fills its cache; cpp_standalone
gives its simulation loop and, as "(program)", the whole compiled program (start, synapse
creation, loop, writing the results), with ``make`` in the note; its projects are kept per
configuration in ``--standalone-dir`` so only the first round compiles. The rounds are
interleaved (``--repeats``): probsnn one trial, each Brian2 target one run, probsnn's batch,
each target's copies; the tables give the best of the rounds and the range of per-round ratios.

Run (Brian2 2.9 needs numpy < 2.3, so it lives in its own environment; any folder will do):

    python3 -m venv .venv-brian2
    .venv-brian2/bin/pip install -e . "brian2==2.9.*" "numpy<2.3"
    .venv-brian2/bin/python benchmarks/sampler_brian2.py [--neurons 1000] [--steps 10000]
        [--trials 16] [--lags 350] [--repeats 2] [--targets cython cpp_standalone]
        [--propagation ring dense event] [--rate 0.04] [--no-copies]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _header import gcc_version, print_header, version
from _networks import DECAYS, DT_S, MASSES, REFRACTORY, TAUS_S
from _timing import best_time

import probsnn as ps
from probsnn import kernels

try:
    import brian2 as b2
except ImportError as error:
    raise SystemExit(
        "benchmarks/sampler_brian2.py needs Brian2, which is not importable here "
        f"({error}). Brian2 2.9 requires numpy < 2.3, so make a separate environment from the "
        "repository root:\n"
        "    python3 -m venv .venv-brian2\n"
        '    .venv-brian2/bin/pip install -e . "brian2==2.9.*" "numpy<2.3"\n'
        "and run  .venv-brian2/bin/python benchmarks/sampler_brian2.py"
    ) from error

WEIGHT_SCALE = 0.5
PROPAGATIONS = ("ring", "dense", "event")
N_BLOCKS = 10  # time blocks for the standard errors
TOLERANCE = 4.0  # |difference| below this many combined standard errors: consistent

NEURON = """
dg1/dt = -g1 / tau1 : 1
dg2/dt = -g2 / tau2 : 1
dg3/dt = -g3 / tau3 : 1
bias : 1 (constant)
u = bias + g1 + g2 + g3 : 1
"""
SYNAPSE = "w1 : 1 (constant)\nw2 : 1 (constant)\nw3 : 1 (constant)"
ON_PRE = "g1_post += w1\ng2_post += w2\ng3_post += w3"
THRESHOLD = "rand() < 1 / (1 + exp(-u))"


# -- the network ----------------------------------------------------------------------------
def full_weights(w, v):
    """``(N, N, K)`` [pre, post, k] weights with the feedback weights v on the diagonal: what
    a neuron's spike adds to each g_k (Brian2's synapses, the NumPy reference)."""
    full = np.array(w, dtype=np.float64)
    index = np.arange(full.shape[0])
    full[index, index] = v
    return full


def numpy_simulate(full, bias, steps, rng):
    """Float64 NumPy simulation of the recursion x_t = r (x_{t−1} + s_{t−1}), kept as the
    per-neuron sums g; returns the ``(steps, N)`` bool spikes."""
    n = full.shape[0]
    g = np.zeros((n, full.shape[2]))
    spikes = np.zeros((steps, n), dtype=bool)
    for t in range(steps):
        s = rng.random(n) < 1 / (1 + np.exp(-(bias + g.sum(1))))
        spikes[t] = s
        g = DECAYS * (g + full[s].sum(0))
    return spikes


def make_network(n, rate, seed):
    """w ``(N, N, K)`` (zero diagonal), v ``(N, K)``, the bias ``(N,)`` calibrated to ``rate``
    per bin, and a line describing the calibration and the linearised coupling."""
    rng = np.random.default_rng(seed)
    k = len(TAUS_S)
    w = rng.normal(0.0, WEIGHT_SCALE / np.sqrt(k * max(n - 1, 1)), (n, n, k))
    w[np.arange(n), np.arange(n)] = 0.0
    v = np.zeros((n, k))
    v[:, 0] = -REFRACTORY
    full = full_weights(w, v)
    logit = np.log(rate / (1 - rate))
    bias = logit - REFRACTORY * MASSES[0] * rate  # mean-field start (the coupling has mean 0)
    steps, skip = 2000, 500
    for _ in range(3):
        measured = numpy_simulate(full, np.full(n, bias), steps, rng)[skip:].mean()
        bias += logit - np.log(measured / (1 - measured))
    measured = numpy_simulate(full, np.full(n, bias), steps, rng)[skip:].mean()
    effective = np.einsum("jik,k->ij", full, MASSES) * rate * (1 - rate)  # [post, pre]
    if n <= 2000:
        eigenvalues = np.linalg.eigvals(effective)
        gain, how = np.max(eigenvalues.real), "largest real part of its eigenvalues"
    else:  # a disk of the circular law's radius around the mean diagonal (the refractory term)
        off = effective[~np.eye(n, dtype=bool)]
        gain = np.mean(np.diag(effective)) + np.sqrt(n * off.var())
        how = "circular-law estimate of the largest real part"
    note = (
        f"bias {bias:.3f} (NumPy float64 reference, {steps - skip} bins: rate {measured:.4f}); "
        f"linearised coupling p(1-p) sum_k m_k W_k: {how} {gain:.2f} (< 1: no runaway)"
    )
    return w, v, np.full(n, bias), note


# -- statistics -----------------------------------------------------------------------------
def statistics(neurons, bins, n_total, steps):
    """Firing probability per bin and P(s_{i,t} = 1 | s_{i,t−1} = 1) from spike events
    (neuron index over all trials/copies, bin), each with a standard error from ``N_BLOCKS``
    time blocks, and the rates of the first and second halves (a drift check)."""
    neurons, bins = np.asarray(neurons, np.int64), np.asarray(bins, np.int64)
    keys = np.unique(neurons * steps + bins)
    bins = keys % steps
    followed = np.isin(keys + 1, keys) & (bins < steps - 1)
    block = bins * N_BLOCKS // steps
    block_len = np.bincount(np.arange(steps) * N_BLOCKS // steps, minlength=N_BLOCKS)
    rate_b = np.bincount(block, minlength=N_BLOCKS) / (n_total * block_len)
    earlier = bins < steps - 1
    cond_b = np.bincount(block, followed, N_BLOCKS) / np.maximum(
        np.bincount(block[earlier], minlength=N_BLOCKS), 1
    )
    half = bins < steps // 2
    return {
        "rate": keys.size / (n_total * steps),
        "rate_se": rate_b.std(ddof=1) / np.sqrt(N_BLOCKS),
        "cond": followed.sum() / max(earlier.sum(), 1),
        "cond_se": cond_b.std(ddof=1) / np.sqrt(N_BLOCKS),
        "halves": (
            half.sum() / (n_total * (steps // 2)),
            (~half).sum() / (n_total * (steps - steps // 2)),
        ),
    }


def dense_statistics(spikes):
    """:func:`statistics` of probsnn's ``(T, N)`` or ``(trials, T, N)`` spikes."""
    spikes = np.asarray(spikes)
    if spikes.ndim == 2:
        spikes = spikes[None]
    trials, steps, n = spikes.shape
    trial, t, i = np.nonzero(spikes)
    return statistics(trial * n + i, t, trials * n, steps)


# -- probsnn --------------------------------------------------------------------------------
def probsnn_samplers(w, v, bias, args, available):
    """name -> (one-trial call, batched call), each ``f(key) -> spikes``."""
    n = w.shape[0]
    params = ps.Params(
        w=jnp.asarray(w, jnp.float32),
        v=jnp.asarray(v, jnp.float32),
        c=jnp.zeros((0, n, 0), jnp.float32),  # no inputs
        bias=jnp.asarray(bias, jnp.float32),
    )
    samplers = {}
    for name in available:
        if name == "ring":
            spec = ps.Network(n, kernels.exponential(TAUS_S, args.lags, DT_S), dt=DT_S)
            extra = {}
        else:
            spec = ps.Network(n, kernels.recursive_exponential(TAUS_S, DT_S), dt=DT_S)
            extra = {"propagation": name}

        def one(key, spec=spec, extra=extra):
            return ps.sample(spec, params, key, args.steps, **extra)

        def many(key, spec=spec, extra=extra):
            return ps.sample(spec, params, key, args.steps, n_trials=args.trials, **extra)

        samplers[name] = (one, many)
    return samplers


# -- Brian2 ---------------------------------------------------------------------------------
def brian2_network(full, bias, copies, steps, seed, threshold=THRESHOLD, monitor_u=None):
    """Build and run ``copies`` independent copies of the network in the current Brian2
    device/target. Returns (spike neuron indices, spike bins, build seconds, run seconds,
    state monitor or None)."""
    start = time.perf_counter()
    b2.start_scope()
    b2.defaultclock.dt = DT_S * b2.second
    b2.seed(seed)
    n = full.shape[0]
    namespace = {f"tau{k + 1}": tau * b2.second for k, tau in enumerate(TAUS_S)}
    neurons = b2.NeuronGroup(
        copies * n,
        NEURON,
        threshold=threshold,
        reset="",
        method="exact",
        namespace=namespace,
        name="glm_neurons",
    )
    neurons.bias = np.tile(bias, copies)
    synapses = b2.Synapses(
        neurons, neurons, SYNAPSE, on_pre=ON_PRE, namespace=namespace, name="glm_synapses"
    )
    offset = np.repeat(np.arange(copies, dtype=np.int32) * n, n * n)
    pre = np.tile(np.repeat(np.arange(n, dtype=np.int32), n), copies) + offset
    post = np.tile(np.tile(np.arange(n, dtype=np.int32), n), copies) + offset
    synapses.connect(i=pre, j=post)
    for k in range(full.shape[2]):
        setattr(synapses, f"w{k + 1}", np.tile(full[:, :, k].ravel(), copies))
    spikes = b2.SpikeMonitor(neurons, name="glm_spikes")
    objects = [neurons, synapses, spikes]
    if monitor_u is not None:  # u as the threshold sees it: the first object of that slot
        objects.append(
            b2.StateMonitor(
                neurons, "u", record=monitor_u, when="thresholds", order=-1, name="glm_u"
            )
        )
    # fixed names keep the generated code identical across runs, so Cython's cache is reused
    network = b2.Network(*objects, name="glm_network")
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    network.run(steps * DT_S * b2.second, namespace={})  # the groups' own namespaces only
    run_s = time.perf_counter() - start
    bins = np.round(np.asarray(spikes.t / b2.second) / DT_S).astype(np.int64)
    return np.asarray(spikes.i), bins, build_s, run_s, (objects[3] if monitor_u else None)


def schedule_check():
    """Deterministic check of the ordering with the numpy target (nothing compiled): neuron 0
    spikes at bin 0 only; u − bias of neuron 1 (its target, weights w) and of neuron 0 (its
    feedback, weights v) at bins 0..9 must be Σ_k w_k r_k^t (0 at t = 0), probsnn's kernel."""
    w, v = np.array([0.1, 0.2, 0.3]), np.array([-REFRACTORY, 0.05, -0.07])
    full = np.zeros((2, 2, 3))
    full[0, 1], full[0, 0] = w, v
    previous = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    *_, monitor = brian2_network(
        full, np.zeros(2), 1, 10, 0, threshold="i == 0 and t < 0.5*dt", monitor_u=[0, 1]
    )
    b2.prefs.codegen.target = previous
    lags = np.arange(10)
    expected = np.where(lags[None, :] > 0, DECAYS[:, None] ** lags[None, :], 0.0)
    error = max(
        np.max(np.abs(monitor.u[1] - w @ expected)), np.max(np.abs(monitor.u[0] - v @ expected))
    )
    verdict = "matches" if error < 1e-12 else "DOES NOT MATCH"
    print(
        f"schedule check (Brian2, a neuron forced to spike at bin 0 only): u - bias at bins "
        f"0..9 of its target and of itself {verdict} sum_k w_k r_k^t (max error {error:.1e})"
    )


def run_target(target, full, bias, copies, args):
    """Run :func:`brian2_network` once with one target. Returns ((neurons, bins), {label:
    seconds}, note): the runtime targets time ``Network.run`` (the build in the note);
    cpp_standalone gives its simulation loop and, as "(program)", the whole program (``make``
    in the note). Standalone projects are kept per configuration under ``--standalone-dir``."""
    n = full.shape[0]
    if target == "cpp_standalone":
        directory = Path(args.standalone_dir) / f"glm_{n}n_{copies}x_{args.steps}steps"
        b2.set_device("cpp_standalone", directory=str(directory), build_on_run=True)
        neurons, bins, *_ = brian2_network(full, bias, copies, args.steps, seed=0)
        timings = {
            "cpp_standalone": b2.device._last_run_time,
            "cpp_standalone (program)": b2.device.timers["run_binary"],
        }
        note = f"(make {b2.device.timers['compile']['make']:.1f} s)"
        b2.device.reinit()
        b2.set_device("runtime")
        return (neurons, bins), timings, note
    b2.prefs.codegen.target = target
    neurons, bins, build_s, run_s, _ = brian2_network(full, bias, copies, args.steps, seed=0)
    return (neurons, bins), {target: run_s}, f"(build {build_s:.2f} s)"


# -- the comparison -------------------------------------------------------------------------
def compare(args, available):
    n, steps, trials = args.neurons, args.steps, args.trials
    w, v, bias, note = make_network(n, args.rate, seed=0)
    full = full_weights(w, v)
    print(f"\n== N={n}, {steps} bins of {DT_S * 1e3:g} ms, batch {trials}, rate {args.rate} ==")
    print(note)
    schedule_check()
    samplers = probsnn_samplers(w, v, bias, args, available)
    first = {}
    for name, (one, many) in samplers.items():
        calls = {f"probsnn {name} 1 trial": one, f"probsnn {name} {trials} trials": many}
        for label, function in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(function(jax.random.key(1)))
            first[label] = time.perf_counter() - start
    if "cython" in args.targets:  # fill Cython's cache outside the timing
        b2.prefs.codegen.target = "cython"
        start = time.perf_counter()
        brian2_network(full, bias, 1, 5, seed=1)
        warmup_s = time.perf_counter() - start
        print(f"brian2 cython first build and 5-bin run (compiles): {warmup_s:.1f} s")
        if args.copies:
            brian2_network(full, bias, trials, 5, seed=1)

    times, results = {}, {}

    def record(name, seconds, events, note=""):
        times.setdefault(name, []).append(seconds)
        results[name] = events
        print(f"  {name:50s} {seconds:8.3f} s {note}", flush=True)

    def probsnn_row(name, function, key):
        spikes, seconds = best_time(lambda: function(jax.random.key(key)), 1)
        record(name, seconds, spikes)

    for round_ in range(args.repeats):
        print(f"round {round_ + 1} of {args.repeats}")
        for name, (one, _) in samplers.items():
            probsnn_row(f"probsnn {name} 1 trial", one, 10 + round_)
        for target in args.targets:
            events, timings, note = run_target(target, full, bias, 1, args)
            for label, seconds in timings.items():
                record(f"brian2 {label} 1 run", seconds, events, note)
        for name, (_, many) in samplers.items():
            probsnn_row(f"probsnn {name} {trials} trials", many, 20 + round_)
        if args.copies:
            for target in args.targets:
                events, timings, note = run_target(target, full, bias, trials, args)
                for label, seconds in timings.items():
                    record(f"brian2 {label} {trials} copies", seconds, events, note)

    best = {name: min(values) for name, values in times.items()}
    print(f"\ntimes: best of {args.repeats} rounds")
    print(f"{'':50s} {'seconds':>9s} {'neuron-steps/s':>15s} {'compile':>9s}")

    def time_row(label, seconds, n_trials, extra=""):
        print(f"{label:50s} {seconds:9.3f} {n_trials * n * steps / seconds:15.3g} {extra:>9s}")

    for name in times:
        n_trials = trials if (name.endswith(" trials") or name.endswith(" copies")) else 1
        compile_s = f"{first[name] - best[name]:.1f} s" if name in first else ""
        time_row(name, best[name], n_trials, compile_s)
        if name.startswith("brian2 ") and name.endswith(" 1 run"):
            time_row(name.replace("1 run", f"{trials} runs looped"), trials * best[name], trials)
    print(
        f"(looped = {trials} x the one-run time, not run; compile = first call - best call, a "
        "load from probsnn's persistent compilation cache when this ran before: run with "
        "PROBSNN_CACHE=off to measure compiling)"
    )

    brian2 = [name[len("brian2 ") : -len(" 1 run")] for name in times if name.endswith(" 1 run")]
    print(
        "\nratio = Brian2 time / probsnn time = probsnn speed / Brian2 speed (> 1: probsnn "
        "faster); best-time ratio (per-round range)"
    )
    print(f"{'':28s}" + "".join(f"{label:>30s}" for label in brian2))

    def ratio_row(label, reference, suffix, scale=1):
        cells = []
        for peer in brian2:
            peer_times = [scale * value for value in times[f"brian2 {peer} {suffix}"]]
            per_round = [p / r for p, r in zip(peer_times, times[reference], strict=True)]
            cells.append(
                f"{min(peer_times) / best[reference]:.2f}x "
                f"({min(per_round):.2f}-{max(per_round):.2f})"
            )
        print(f"{label:28s}" + "".join(f"{cell:>30s}" for cell in cells))

    for name in samplers:
        ratio_row(f"{name}, 1 trial", f"probsnn {name} 1 trial", "1 run")
    for name in samplers:
        reference = f"probsnn {name} {trials} trials"
        ratio_row(f"{name}, {trials} vs looped", reference, "1 run", scale=trials)
        if args.copies:
            ratio_row(f"{name}, {trials} vs copies", reference, f"{trials} copies")

    print(
        f"\nlast round's statistics (same network, different random numbers; ± block standard "
        f"error over {N_BLOCKS} time blocks; 'ok' when a Brian2 figure is within {TOLERANCE:g} "
        "combined standard errors of the probsnn one with the same trial count)"
    )
    print(f"{'':50s} {'P(spike)/bin':>18s} {'P(s_t | s_t-1)':>18s} {'halves':>15s}")
    summaries = {}
    for name, result in results.items():
        if "(program)" in name:  # the same run as the loop's row
            continue
        if name.startswith("probsnn"):
            summaries[name] = dense_statistics(result)
        else:
            n_total = n * (trials if name.endswith("copies") else 1)
            summaries[name] = statistics(*result, n_total, steps)
    for name, s in summaries.items():
        line = (
            f"{name:50s} {s['rate']:.5f}±{s['rate_se']:.5f} {s['cond']:.5f}±{s['cond_se']:.5f}"
            f" {s['halves'][0]:.4f}/{s['halves'][1]:.4f}"
        )
        if name.startswith("brian2"):
            suffix = f"{trials} trials" if name.endswith("copies") else "1 trial"
            verdicts = []
            for reference in (f"probsnn {p} {suffix}" for p in samplers):
                r = summaries[reference]
                z_rate = (s["rate"] - r["rate"]) / np.hypot(s["rate_se"], r["rate_se"])
                z_cond = (s["cond"] - r["cond"]) / np.hypot(s["cond_se"], r["cond_se"])
                verdict = "ok" if max(abs(z_rate), abs(z_cond)) < TOLERANCE else "DIFFERENT"
                verdicts.append(
                    f"{reference.split()[1]} {verdict} (z {z_rate:+.1f}, {z_cond:+.1f})"
                )
            line += "  vs " + ", ".join(verdicts)
        print(line)


def peers(args, available):
    """The configuration of both sides, for the header."""
    gcc = gcc_version()
    flags = " ".join(b2.prefs.codegen.cpp.extra_compile_args_gcc)
    threads = b2.prefs.devices.cpp_standalone.openmp_threads
    described = {
        "cython": f"runtime mode, Cython {version('cython')} extensions (gcc {gcc}, {flags}), "
        "what Brian2's default target 'auto' picks; timed: Network.run (build in the note)",
        "numpy": "runtime mode, pure numpy code; timed: Network.run (build in the note)",
        "cpp_standalone": f"whole simulation compiled to C++ (gcc {gcc}, {flags}, "
        f"openmp_threads={threads}: one thread); timed: the program's simulation loop and, "
        "as '(program)', the whole program; compilation excluded",
    }
    propagation = ", ".join(
        f"ring (kernels.exponential, L={args.lags})" if name == "ring" else name
        for name in available
    )
    return {
        f"brian2 {target}": f"{described[target]}; float64, method 'exact', dt 1 ms, "
        "event-driven dense synapses (N^2, i = j included), SpikeMonitor"
        for target in args.targets
    } | {
        "probsnn": f"ps.sample, propagation {propagation}; one trial and n_trials="
        f"{args.trials}, float32, XLA CPU (may use every core); timed: the call, compilation "
        "excluded"
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--lags", type=int, default=350, help="ring-buffer basis length L")
    parser.add_argument("--rate", type=float, default=0.04, help="firing probability per bin")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds")
    parser.add_argument(
        "--propagation", nargs="+", default=list(PROPAGATIONS), choices=PROPAGATIONS
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["cython", "cpp_standalone"],
        choices=["cython", "numpy", "cpp_standalone"],
    )
    parser.add_argument(
        "--no-copies",
        dest="copies",
        action="store_false",
        help="skip Brian2's network of --trials independent copies",
    )
    parser.add_argument(
        "--standalone-dir",
        default=str(Path(tempfile.gettempdir()) / "probsnn-brian2-standalone"),
        help="where cpp_standalone keeps its compiled projects (one per configuration)",
    )
    args = parser.parse_args()
    recursive = hasattr(kernels, "recursive_exponential")
    available = [p for p in args.propagation if p == "ring" or recursive]
    print_header(
        "Bernoulli GLM network sampling: probsnn.sample vs Brian2, same process",
        peers(args, available),
        packages=("brian2", "cython"),
    )
    skipped = [p for p in args.propagation if p not in available]
    if skipped:
        print(
            f"note: propagation {', '.join(skipped)} skipped: this probsnn has no "
            "kernels.recursive_exponential (the recursive propagation API)"
        )
    if not available:
        raise SystemExit("no propagation left to time")
    b2.BrianLogger.log_level_warn()
    compare(args, available)


if __name__ == "__main__":
    main()
