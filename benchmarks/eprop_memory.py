"""E-prop against BPTT on long recordings: compiled temporary memory and wall time.

Setting (issue 19, Speed): a small recurrent ALIF network, ``LIFNetwork((M, N, C),
neuron="alif", recurrent=True, output="membrane")`` with ``--inputs`` Poisson inputs (spike
probability ``--rate`` per bin), ``--hidden`` ALIF neurons (τ_mem 20 ms, τ_adapt 200 ms,
β = 1, no synaptic current: τ_syn = 0, reset by subtraction, triangle surrogate of width 1)
and ``--outputs`` leaky read-out integrators, ``--batch`` trials of T bins for each T of
``--lengths``, float32. Both sides compute the gradient of the same loss, the per-bin
cross-entropy of the label averaged over trials and bins (the loss of e-prop, Bellec et al.
2020), with respect to every parameter:

* e-prop: :func:`probsnn.inference.deterministic.eprop.eprop_gradient` (symmetric feedback), one
  forward loop over the bins carrying eligibility traces;
* BPTT: ``jax.grad`` of :func:`probsnn.inference.deterministic.bptt.classification_loss`
  (``readout="per_step"``), i.e. backpropagation through the ``lax.scan`` of
  :func:`probsnn.lif.simulate`, which stores every bin's state for the backward pass.

Each is jitted as a whole; the inputs are passed whole (``(B, T, M)`` float32: 80 MB at
T = 10⁶ with one trial and 20 inputs), so they are an argument of the compiled program, not a
temporary. Memory: XLA's compiled temporary buffers (``jax.jit(f).lower(...).compile()
.memory_analysis().temp_size_in_bytes``, the working memory beyond the arguments and outputs),
which must stay constant in T for e-prop and grow linearly for BPTT. Time: the median of
``--repeats`` calls after compilation, e-prop and BPTT alternating; the compile time is reported
apart (cold: probsnn's persistent compilation cache is off). BPTT is only run when its
temporaries fit under ``--bptt-max-gb``. With recurrent weights e-prop drops the gradient paths
through the other neurons, so its gradient is an approximation of BPTT's: the script prints
their cosine similarity per parameter at the shortest T.

Run: python benchmarks/eprop_memory.py [--lengths 10000 1000000] [--hidden 50] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from _header import print_header

import probsnn
from probsnn import lif
from probsnn.inference.deterministic import bptt, eprop


def network(args) -> lif.LIFNetwork:
    return lif.LIFNetwork(
        (args.inputs, args.hidden, args.outputs),
        neuron="alif",
        recurrent=True,
        output="membrane",
        tau_mem=20e-3,
        tau_syn=0.0,
        tau_adapt=200e-3,
        adapt_strength=1.0,
        surrogate="triangle",
        surrogate_scale=1.0,
    )


def gradients(spec):
    """The two jitted ``(params, inputs, labels) -> gradient`` functions."""

    def bptt_loss(params, inputs, labels):
        return bptt.classification_loss(spec, params, inputs, labels, "per_step")

    return {
        "e-prop": jax.jit(lambda params, x, y: eprop.eprop_gradient(spec, params, x, y)),
        "BPTT": jax.jit(jax.grad(bptt_loss)),
    }


def megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:10.3f} MB"


def cosine(a, b) -> str:
    a, b = np.ravel(a), np.ravel(b)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return f"{np.dot(a, b) / norms:.5f}" if norms > 0 else "n/a (zero)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--outputs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.05, help="input spike probability per bin")
    parser.add_argument("--gain", type=float, default=3.0, help="input weights' std x sqrt(M)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of each, alternating")
    parser.add_argument("--bptt-max-gb", type=float, default=4.0)
    args = parser.parse_args()
    print_header(
        "E-prop vs BPTT on long recordings: compiled temporary memory and wall time",
        {
            "BPTT": "jax.grad of bptt.classification_loss(readout='per_step') through the "
            "lax.scan over bins (the same loss), jitted, float32, XLA CPU",
            "e-prop": "eprop.eprop_gradient (symmetric feedback), one forward loop, jitted, "
            "float32, XLA CPU",
        },
        packages=("optax",),
    )
    probsnn.disable_compilation_cache()
    spec = network(args)
    params = lif.init_params(spec, jax.random.key(0), gain=args.gain)
    functions = gradients(spec)
    print(
        f"network: {args.inputs} Poisson inputs (p = {args.rate} per bin) -> {args.hidden} "
        f"recurrent ALIF -> {args.outputs} leaky read-out, batch {args.batch}, float32, "
        f"weights init_params(gain={args.gain}, recurrent_gain=0.5); inputs passed whole"
    )

    rng = np.random.default_rng(1)
    labels = jnp.asarray(rng.integers(args.outputs, size=args.batch), jnp.int32)
    rows, runs = [], {}
    for length in args.lengths:
        inputs = rng.random((args.batch, length, args.inputs)) < args.rate
        inputs = jnp.asarray(inputs, jnp.float32)
        compiled, seconds = {}, {}
        for name, function in functions.items():
            start = time.perf_counter()
            compiled[name] = function.lower(params, inputs, labels).compile()
            seconds[name] = time.perf_counter() - start
        memory = {name: c.memory_analysis() for name, c in compiled.items()}
        rows.append((length, inputs.nbytes, memory, seconds))
        runs[length] = (compiled, inputs)

    print("\ncompiled memory (XLA memory_analysis): temporaries; arguments (params + inputs)")
    print(
        f"{'T (bins)':>12s} {'e-prop temp':>14s} {'BPTT temp':>14s} {'BPTT / bin':>12s} "
        f"{'arguments':>14s} {'compile e-prop, BPTT':>22s}"
    )
    for length, _, memory, seconds in rows:
        temp = {name: m.temp_size_in_bytes for name, m in memory.items()}
        print(
            f"{length:12,d} {megabytes(temp['e-prop']):>14s} {megabytes(temp['BPTT']):>14s} "
            f"{temp['BPTT'] / length:10.0f} B {megabytes(memory['BPTT'].argument_size_in_bytes)}"
            f" {seconds['e-prop']:9.2f} s, {seconds['BPTT']:.2f} s"
        )

    print(f"\nwall time per gradient, median of {args.repeats} alternating calls after compiling")
    print(f"{'T (bins)':>12s} {'e-prop':>10s} {'BPTT':>10s} {'e-prop / BPTT':>14s}  per bin")
    for length, _, memory, _ in rows:
        compiled, inputs = runs.pop(length)
        run_bptt = memory["BPTT"].temp_size_in_bytes <= args.bptt_max_gb * 1e9
        times, results = {"e-prop": [], "BPTT": []}, {}
        names = ["e-prop", "BPTT"] if run_bptt else ["e-prop"]
        for name in names:  # untimed first call
            results[name] = jax.block_until_ready(compiled[name](params, inputs, labels))
        for _ in range(args.repeats):
            for name in names:
                start = time.perf_counter()
                jax.block_until_ready(compiled[name](params, inputs, labels))
                times[name].append(time.perf_counter() - start)
        e = statistics.median(times["e-prop"])
        if run_bptt:
            b = statistics.median(times["BPTT"])
            print(
                f"{length:12,d} {e:9.3f}s {b:9.3f}s {e / b:13.2f}x  "
                f"{e / length * 1e6:.1f} us, {b / length * 1e6:.1f} us"
            )
        else:
            need = memory["BPTT"].temp_size_in_bytes / 1e9
            print(
                f"{length:12,d} {e:9.3f}s {'not run':>10s} {'':14s}  {e / length * 1e6:.1f} us "
                f"(BPTT needs {need:.2f} GB of temporaries > --bptt-max-gb {args.bptt_max_gb})"
            )
        if length == min(args.lengths) and run_bptt:
            record = lif.simulate(spec, params, inputs)
            pairs = jax.tree_util.tree_flatten_with_path(results["e-prop"])[0]
            reference = jax.tree.leaves(results["BPTT"])
            similarity = [
                f"{jax.tree_util.keystr(path)} {cosine(g, r)}"
                for (path, g), r in zip(pairs, reference, strict=True)
                if np.any(g) or np.any(r)  # not the read-out's unused recurrent weights
            ]
            print(
                f"{'':12s} at T = {length:,}: hidden spikes per neuron per bin "
                f"{float(record.spikes[0].mean()):.3f}; cosine(e-prop, BPTT gradient): "
                + ", ".join(similarity)
            )
        del compiled, inputs


if __name__ == "__main__":
    main()
