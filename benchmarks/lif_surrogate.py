"""Surrogate-gradient BPTT of a feedforward LIF network: probsnn vs snnTorch and Spyx.

Setting (issue 19, Speed): one batch of ``--inputs`` Poisson input trains (spike probability
``--rate`` per bin) of ``--steps`` bins through ``--hidden`` LIF neurons to ``--outputs`` LIF
neurons, float32. The timed unit is one forward pass and one backward pass: the loss and its
gradient with respect to both layers' weights and biases (no optimizer update), per batch size
of ``--batch``. The three implementations compute the same network:

* membrane v_t = α v_{t−1} + x_t W + b − ϑ z_{t−1} (reset by subtraction, no synaptic current,
  α = e^{−1/20}: τ_mem = 20 ms at 1 ms bins), spikes z_t = H(v_t − ϑ), ϑ = 1, no refractory
  period; the second layer gets the first layer's spikes of the same bin;
* loss: the cross-entropy of the label under the softmax of the output spike counts, averaged
  over the batch (snnTorch's ``ce_count_loss``);
* surrogate H′ ≈ fast sigmoid of slope k = ``--slope``: snnTorch's ``fast_sigmoid(k)`` and
  Spyx's ``superspike(k)``, 1/(1 + k|m|)², and probsnn's ``"fast_sigmoid"`` of width s = 1/k,
  whose derivative 1/(2s(1 + |m|/s)²) is normalised (it integrates to one) and so k/2 times
  theirs. The gradients differ by that factor per spike on a path; the time does not;
* the same weights (Gaussian, drawn once) and inputs, and the same gradient: snnTorch detaches
  its reset from the graph (probsnn ``detach_reset=True``), Spyx does not (``False``).

probsnn: :func:`probsnn.inference.deterministic.bptt.classification_loss` (``readout="count"``)
under ``jax.jit(jax.value_and_grad(...))``, compiled ahead of the timing (the compile time is
reported apart). snnTorch: two ``nn.Linear`` + ``snn.Leaky`` layers stepped in a Python loop over
time-major inputs as in its tutorials, ``loss.backward()`` (eager: no compilation), timed with
torch's default thread count and, when that is more than one, with one thread
(``--torch-threads``): on a busy machine torch's multi-threaded operators wait for a free core at
every one of the loop's small operations. Spyx (flax nnx): ``spyx.nn.Sequential`` of
``nnx.Linear`` and ``spyx.nn.LIF`` scanned by ``spyx.nn.run``, the model split once
(``nnx.split``) and the loss and its gradient with respect to the Linear layers jitted with
``jax.jit`` (compile time reported apart). Spyx's LIF emits the spike of the previous bin's
voltage (one bin of delay per layer): its recursion is the same, its output trains are probsnn's
two bins later, so the agreement check feeds it two extra empty bins; the timing runs both over
``--steps`` bins. Its read-out layer also adds its bias in bin 0, before any hidden spike can
arrive: with zero biases the spikes are the same, but the gradient of that bias has an extra term
(printed, not a disagreement).

Before timing, each peer runs the network on the same batch: the script prints how many output
spike counts agree with probsnn's, and the relative difference of the gradients with the peer's
surrogate scaled by k/2 (check only) so that the gradients are the same function. The
compilations are cold (probsnn's persistent compilation cache is turned off for the run).

The peers run in their own Python environments: the script starts itself under the peer's
interpreter (``--snntorch-python``, ``--spyx-python``, or the environment variables
``PROBSNN_SNNTORCH_PYTHON``, ``PROBSNN_SPYX_PYTHON``; the current interpreter by default) as a
worker that exchanges one JSON line per request on its standard input and output. Timings
alternate: probsnn one call, the peer one call, round by round, so that a loaded machine slows
both alike; the table gives the medians, the ratio of medians (peer time / probsnn time: above
1, probsnn is faster) and the range of the per-round ratios. A peer that cannot start is
reported and skipped. The load average is printed at the start and the end.

Run:

    .venv/bin/python benchmarks/lif_surrogate.py \\
        --snntorch-python /path/to/torch-env/bin/python \\
        --spyx-python /path/to/spyx-env/bin/python [--batch 64 256] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PEERS = ("snntorch", "spyx")
PEER_NAMES = {"snntorch": "snnTorch", "spyx": "Spyx"}
ALPHA = math.exp(-1.0 / 20.0)  # τ_mem = 20 ms, 1 ms bins
THRESHOLD = 1.0
GAINS = (1.0, 1.5)  # weight standard deviations × √fan-in of the two layers
PARAMETERS = ("w_in1", "b1", "w_in2", "b2")
DETACH = {"snntorch": True, "spyx": False}  # probsnn's detach_reset that matches the peer


# --------------------------------------------------------------------------------------------
# peer workers (run under the peer's interpreter: numpy and the peer library only)


def _worker(name: str) -> None:
    """Serve requests on stdin, one JSON line each, answering one JSON line on stdout; anything
    the libraries print goes to stderr."""
    channel = sys.stdout
    sys.stdout = sys.stderr
    try:
        peer = _SnntorchPeer() if name == "snntorch" else _SpyxPeer()
    except ImportError as error:
        channel.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
        channel.flush()
        return
    channel.write(json.dumps(peer.describe()) + "\n")
    channel.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            break
        if request["cmd"] == "setup":
            answer = peer.setup(request)
        else:
            if "threads" in request:
                peer.set_threads(request["threads"])
            start = time.perf_counter()
            peer.run()
            answer = {"seconds": time.perf_counter() - start}
        channel.write(json.dumps(answer) + "\n")
        channel.flush()


def _load(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


class _SnntorchPeer:
    def __init__(self):
        import snntorch  # noqa: F401  (a missing peer fails here, before the hello)
        import torch

        self.torch = torch

    def describe(self):
        from importlib import metadata

        torch = self.torch
        return {
            "versions": f"snntorch {metadata.version('snntorch')}, torch {torch.__version__}",
            "threads": torch.get_num_threads(),
        }

    def set_threads(self, threads: int) -> None:
        self.torch.set_num_threads(threads)

    def _network(self, data, spike_grad):
        import snntorch as snn
        from snntorch import functional

        torch = self.torch
        w_in1, w_in2 = data["w_in1"], data["w_in2"]

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = torch.nn.Linear(*w_in1.shape)
                self.lif1 = snn.Leaky(beta=ALPHA, threshold=THRESHOLD, spike_grad=spike_grad)
                self.fc2 = torch.nn.Linear(*w_in2.shape)
                self.lif2 = snn.Leaky(beta=ALPHA, threshold=THRESHOLD, spike_grad=spike_grad)

            def forward(self, x):  # x (T, B, M), time-major as in snnTorch's tutorials
                mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
                spikes = []
                for step in range(x.shape[0]):
                    spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
                    spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                    spikes.append(spk2)
                return torch.stack(spikes)  # (T, B, C)

        net = Net()
        with torch.no_grad():
            for layer, w, b in ((net.fc1, w_in1, data["b1"]), (net.fc2, w_in2, data["b2"])):
                layer.weight.copy_(torch.from_numpy(w.T))
                layer.bias.copy_(torch.from_numpy(b))
        return net, functional.ce_count_loss()

    def setup(self, request):
        from snntorch import surrogate

        torch = self.torch
        data = _load(request["data"])
        x = torch.from_numpy(np.ascontiguousarray(data["inputs"].swapaxes(0, 1), np.float32))
        y = torch.from_numpy(data["labels"].astype(np.int64))
        stock = surrogate.fast_sigmoid(slope=request["slope"])
        factor = request["factor"]

        def scaled(margin):  # forward H, backward factor × fast sigmoid′
            spike = stock(margin)
            return spike + (factor - 1.0) * (spike - spike.detach())

        net, loss_fn = self._network(data, scaled)
        spikes = net(x)
        loss_fn(spikes, y).backward()
        grads = [net.fc1.weight.grad.T, net.fc1.bias.grad, net.fc2.weight.grad.T, net.fc2.bias.grad]
        np.savez(
            request["out"],
            counts=spikes.sum(0).detach().numpy(),
            **{name: g.numpy() for name, g in zip(PARAMETERS, grads, strict=True)},
        )

        net, loss_fn = self._network(data, stock)

        def run():
            net.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            return loss

        self.run = run
        start = time.perf_counter()
        loss = run().item()
        return {"compile_s": None, "first_call_s": time.perf_counter() - start, "loss": loss}


class _SpyxPeer:
    def __init__(self):
        import jax
        import spyx

        self.jax, self.spyx = jax, spyx

    def describe(self):
        from importlib import metadata

        jax = self.jax
        return {
            "versions": f"spyx {metadata.version('spyx')}, flax {metadata.version('flax')}, "
            f"jax {jax.__version__}, jaxlib {metadata.version('jaxlib')}",
            "threads": f"XLA {jax.devices()[0].platform}, default threads",
        }

    def _network(self, data, activation):
        """The model as ``forward(weights, x (T, B, M)) -> spikes (T, B, C)`` and its Linear
        layers' weights (the LIF decays are parameters too in Spyx; they stay fixed here)."""
        import jax.numpy as jnp
        from flax import nnx

        spyx = self.spyx
        rngs = nnx.Rngs(0)
        layers = []
        for w, b in ((data["w_in1"], data["b1"]), (data["w_in2"], data["b2"])):
            linear = nnx.Linear(*w.shape, rngs=rngs)
            linear.kernel[...], linear.bias[...] = jnp.asarray(w), jnp.asarray(b)
            lif = spyx.nn.LIF(
                (w.shape[1],), beta=ALPHA, threshold=THRESHOLD, activation=activation, rngs=rngs
            )
            layers += [linear, lif]
        model = spyx.nn.Sequential(*layers)
        graphdef, weights, rest = nnx.split(
            model, lambda path, _: path[-1] in ("kernel", "bias"), ...
        )

        def forward(weights, x):
            return spyx.nn.run(nnx.merge(graphdef, weights, rest), x)[0]

        return forward, weights

    def _loss_and_grad(self, forward):
        import jax
        import optax

        def loss(weights, x, y):
            counts = forward(weights, x).sum(0)
            return optax.softmax_cross_entropy_with_integer_labels(counts, y).mean()

        return jax.jit(jax.value_and_grad(loss))

    def setup(self, request):
        import jax
        import jax.numpy as jnp

        spyx = self.spyx
        data = _load(request["data"])
        x = jnp.asarray(data["inputs"].swapaxes(0, 1), jnp.float32)  # (T, B, M)
        y = jnp.asarray(data["labels"], jnp.int32)
        slope, factor = request["slope"], request["factor"]

        scaled = spyx.axn.custom(lambda m: factor / (1.0 + slope * jnp.abs(m)) ** 2)
        forward, weights = self._network(data, scaled)
        padded = jnp.concatenate([x, jnp.zeros((2, *x.shape[1:]), x.dtype)])  # the layers' delay
        _, grads = self._loss_and_grad(forward)(weights, padded, y)
        layers = grads["layers"]
        np.savez(
            request["out"],
            counts=np.asarray(jax.jit(forward)(weights, padded).sum(0)),
            w_in1=np.asarray(layers[0]["kernel"][...]),
            b1=np.asarray(layers[0]["bias"][...]),
            w_in2=np.asarray(layers[2]["kernel"][...]),
            b2=np.asarray(layers[2]["bias"][...]),
        )

        forward, weights = self._network(data, spyx.axn.superspike(slope))
        start = time.perf_counter()
        compiled = self._loss_and_grad(forward).lower(weights, x, y).compile()
        compile_s = time.perf_counter() - start

        def run():
            return jax.block_until_ready(compiled(weights, x, y))

        self.run = run
        start = time.perf_counter()
        loss, _ = run()
        first_s = time.perf_counter() - start
        return {"compile_s": compile_s, "first_call_s": first_s, "loss": float(loss)}


# --------------------------------------------------------------------------------------------
# the benchmark (probsnn's environment)


class PeerUnavailable(Exception):
    """A peer's worker could not start or stopped."""


class PeerProcess:
    """A peer worker: this script under the peer's interpreter, one JSON line per request."""

    def __init__(self, name: str, python: str):
        self.name = name
        try:
            self.process = subprocess.Popen(
                [python, str(Path(__file__).resolve()), "--worker", name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        except OSError as error:
            raise PeerUnavailable(f"cannot start {python}: {error}") from error
        hello = self._read()
        if "error" in hello:
            self.process.wait()
            raise PeerUnavailable(f"{python} cannot import it ({hello['error']})")
        self.versions, self.threads = hello["versions"], hello["threads"]

    def request(self, **message):
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except OSError as error:
            raise PeerUnavailable(f"worker gone ({error})") from error
        return self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise PeerUnavailable(f"worker exited with code {code} (its error is printed above)")
        return json.loads(line)

    def close(self):
        if self.process.poll() is None:
            try:
                self.request(cmd="quit")
            except PeerUnavailable:
                pass
            self.process.wait()


def make_data(args, batch: int, path: Path) -> dict:
    """Inputs ``(B, T, M)`` uint8 with spike probability ``args.rate`` per bin, labels ``(B,)``,
    Gaussian float32 weights ``[pre, post]`` and zero biases; saved to ``path`` (npz)."""
    rng = np.random.default_rng(args.seed)
    sizes = (args.inputs, args.hidden, args.outputs)
    data = {}
    for layer, (fan_in, size, gain) in enumerate(zip(sizes[:-1], sizes[1:], GAINS, strict=True)):
        data[f"w_in{layer + 1}"] = gain / math.sqrt(fan_in) * rng.standard_normal((fan_in, size))
        data[f"w_in{layer + 1}"] = data[f"w_in{layer + 1}"].astype(np.float32)
        data[f"b{layer + 1}"] = np.zeros(size, np.float32)
    data["inputs"] = (rng.random((batch, args.steps, args.inputs)) < args.rate).astype(np.uint8)
    data["labels"] = rng.integers(args.outputs, size=batch)
    np.savez(path, **data)
    return data


class ProbsnnSide:
    """probsnn's loss and gradient on ``data``, jitted and compiled ahead of the timing."""

    def __init__(self, args, data, detach_reset: bool):
        import jax
        import jax.numpy as jnp

        from probsnn import lif
        from probsnn.inference.deterministic import bptt

        spec = lif.LIFNetwork(
            (args.inputs, args.hidden, args.outputs),
            neuron="lif",
            reset="subtract",
            tau_mem=20e-3,
            tau_syn=0.0,
            dt=1e-3,
            threshold=THRESHOLD,
            surrogate="fast_sigmoid",
            surrogate_scale=1.0 / args.slope,
            detach_reset=detach_reset,
        )
        assert math.isclose(spec.alpha, ALPHA, rel_tol=1e-12)
        params = tuple(
            lif.LayerParams(
                jnp.asarray(data[f"w_in{n}"]),
                jnp.zeros((0, data[f"b{n}"].size), jnp.float32),
                jnp.asarray(data[f"b{n}"]),
            )
            for n in (1, 2)
        )
        x = jnp.asarray(data["inputs"], jnp.float32)  # (B, T, M)
        y = jnp.asarray(data["labels"], jnp.int32)

        def loss(params, x, y):
            return bptt.classification_loss(spec, params, x, y, "count")

        step = jax.jit(jax.value_and_grad(loss))
        start = time.perf_counter()
        compiled = step.lower(params, x, y).compile()
        self.compile_s = time.perf_counter() - start
        self.run = lambda: jax.block_until_ready(compiled(params, x, y))
        start = time.perf_counter()
        self.loss, grads = self.run()
        self.first_call_s = time.perf_counter() - start
        self.grads = {
            "w_in1": grads[0].w_in,
            "b1": grads[0].bias,
            "w_in2": grads[1].w_in,
            "b2": grads[1].bias,
        }
        self.grads = {name: np.asarray(g) for name, g in self.grads.items()}
        record = lif.simulate(spec, params, x)
        self.counts = np.asarray(record.spikes[-1].sum(axis=-2))
        self.hidden_rate = float(record.spikes[0].mean())


def agreement(side: ProbsnnSide, peer_result: dict) -> str:
    """Output spike counts equal to probsnn's, and the gradients' relative differences."""
    counts = peer_result["counts"]
    equal = int(np.sum(counts == side.counts))
    worst = float(np.max(np.abs(counts - side.counts)))
    differences = []
    for name in PARAMETERS:
        reference = side.grads[name]
        scale = float(np.linalg.norm(reference)) or 1.0
        differences.append(f"{name} {np.linalg.norm(peer_result[name] - reference) / scale:.1e}")
    return (
        f"output spike counts {equal} of {counts.size} equal (max |difference| {worst:g}); "
        f"gradient |g_peer - g| / |g|: {', '.join(differences)}"
    )


def compare(args, batch: int, peers: dict, folder: Path) -> None:
    """Check and time probsnn and every running peer on one batch size (module docstring)."""
    data = make_data(args, batch, folder / f"batch{batch}.npz")
    sides = {False: ProbsnnSide(args, data, False), True: ProbsnnSide(args, data, True)}
    print(
        f"\n== batch {batch}: {args.inputs} inputs -> {args.hidden} LIF -> {args.outputs} LIF, "
        f"{args.steps} bins, float32 =="
    )
    side = sides[False]
    print(
        f"activity: inputs {data['inputs'].mean():.3f}, hidden {side.hidden_rate:.3f} spikes per "
        f"neuron per bin; output {side.counts.mean():.1f} spikes per neuron per trial; "
        f"loss {float(side.loss):.4f}"
    )
    print("agreement with probsnn on this batch, before timing (peer's surrogate x k/2 here):")
    running = {}
    for name, peer in peers.items():
        try:
            result = peer.request(
                cmd="setup",
                data=str(folder / f"batch{batch}.npz"),
                out=str(folder / f"{name}{batch}.npz"),
                slope=args.slope,
                factor=args.slope / 2.0,
            )
            check = agreement(sides[DETACH[name]], _load(folder / f"{name}{batch}.npz"))
            print(f"  {PEER_NAMES[name]:9s} {check}")
            if name == "spyx":
                print(
                    "            (b2 differs by design: Spyx's delayed read-out layer adds its "
                    "bias from bin 0, before the first hidden spike arrives; with zero biases the "
                    "spikes are the same)"
                )
            running[name] = result
        except PeerUnavailable as error:
            print(f"  {PEER_NAMES[name]:9s} stopped: {error}; not timed")
    compile_line = [
        f"probsnn {sides[True].compile_s:.2f} s (detach_reset=True), "
        f"{sides[False].compile_s:.2f} s (False)"
    ]
    for name, result in running.items():
        compiled = "none (eager)" if result["compile_s"] is None else f"{result['compile_s']:.2f} s"
        compile_line.append(f"{PEER_NAMES[name]} {compiled}")
    print(
        "compile (trace + XLA compile, cold: probsnn's persistent cache off), not timed: "
        + "; ".join(compile_line)
    )
    first = [f"probsnn {sides[False].first_call_s * 1e3:.0f} ms"]
    first += [f"{PEER_NAMES[n]} {r['first_call_s'] * 1e3:.0f} ms" for n, r in running.items()]
    print(f"first call after compiling (not timed): {', '.join(first)}")

    variants = [  # (peer, row label, options of its timing request)
        (name, f"{PEER_NAMES[name]}{label}", options)
        for name in running
        for label, options in peer_variants(args, name, peers[name])
    ]
    if not variants:
        print("no peer is running: nothing to time side by side (see the header's peer lines)")
        return
    times = {}
    for _ in range(args.repeats):
        for name, label, options in list(variants):
            start = time.perf_counter()
            sides[DETACH[name]].run()
            own = time.perf_counter() - start
            try:
                theirs = peers[name].request(cmd="time", **options)["seconds"]
            except PeerUnavailable as error:
                print(f"{PEER_NAMES[name]} stopped while timing: {error}")
                variants = [v for v in variants if v[0] != name]
                continue
            times.setdefault(label, []).append((own, theirs))
    print(
        f"ms per batch (forward + backward), {args.repeats} alternating rounds, each peer's row "
        "timed right after its own probsnn row; ratio = peer time / probsnn time of the medians "
        "(> 1: probsnn faster), per round: the range of the rounds' ratios"
    )
    print(f"{'':36s} {'median':>8s} {'min':>8s} {'max':>8s} {'ratio':>7s} {'per round':>12s}")

    def row(label, values, ratio="", spread=""):
        print(
            f"{label:36s} {statistics.median(values) * 1e3:8.1f} {min(values) * 1e3:8.1f} "
            f"{max(values) * 1e3:8.1f} {ratio:>7s} {spread:>12s}"
        )

    for name, label, _ in variants:
        own, theirs = zip(*times[label], strict=True)
        rounds = [t / p for p, t in times[label]]
        row(f"probsnn (detach_reset={DETACH[name]})", own)
        ratio = statistics.median(theirs) / statistics.median(own)
        row(label, theirs, f"{ratio:6.1f}x", f"{min(rounds):.1f}-{max(rounds):.1f}x")


def peer_variants(args, name: str, peer: PeerProcess) -> list:
    """The timed configurations of a peer: snnTorch with each thread count of
    ``--torch-threads`` (default: torch's default and, when that is more, one thread)."""
    if name != "snntorch":
        return [("", {})]
    default = peer.threads
    threads = args.torch_threads or ([default, 1] if default > 1 else [default])
    return [
        (f", {n} thread{'s' * (n > 1)}{' (default)' * (n == default)}", {"threads": n})
        for n in threads
    ]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=200, help="bins per trial")
    parser.add_argument("--inputs", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--outputs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.2, help="input spike probability per bin")
    parser.add_argument("--slope", type=float, default=25.0, help="fast sigmoid slope k")
    parser.add_argument("--repeats", type=int, default=15, help="alternating timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        help="snnTorch's torch.set_num_threads values to time (default: torch's default and 1)",
    )
    for name in PEERS:
        variable = f"PROBSNN_{name.upper()}_PYTHON"
        parser.add_argument(
            f"--{name}-python",
            default=os.environ.get(variable, sys.executable),
            help=f"interpreter with {PEER_NAMES[name]} installed (default: ${variable}, else "
            "this one)",
        )
    parser.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker)
        return

    from _header import print_header

    peers, missing = {}, {}
    for name in PEERS:
        try:
            peers[name] = PeerProcess(name, getattr(args, f"{name}_python"))
        except PeerUnavailable as error:
            missing[name] = str(error)
    described = {
        "snntorch": "nn.Linear + snn.Leaky(beta=alpha, threshold=1, reset 'subtract', "
        "spike_grad=surrogate.fast_sigmoid(slope=k)) x 2, Python loop over bins, "
        "functional.ce_count_loss, loss.backward(); float32, CPU, eager",
        "spyx": "spyx.nn.Sequential(nnx.Linear, spyx.nn.LIF(beta=alpha, threshold=1, "
        "activation=spyx.axn.superspike(k))) x 2 scanned by spyx.nn.run, loss + grad under "
        "jax.jit (nnx.split once), float32, XLA CPU",
    }
    configuration = {
        "probsnn": (
            "bptt.classification_loss(readout='count') under jax.jit(jax.value_and_grad), "
            "surrogate 'fast_sigmoid' of width 1/k, float32, XLA CPU"
        )
    }
    for name in PEERS:
        if name in peers:
            configuration[PEER_NAMES[name]] = (
                f"{peers[name].versions}; {described[name]}; threads: {peers[name].threads}"
            )
        else:
            configuration[PEER_NAMES[name]] = f"not run: {missing[name]}"
    print_header(
        "LIF forward + backward (surrogate-gradient BPTT) per batch: probsnn vs snnTorch and Spyx",
        configuration,
        packages=("optax",),
    )
    print(
        f"network: {args.inputs} Poisson inputs (p = {args.rate} per bin) -> {args.hidden} LIF "
        f"-> {args.outputs} LIF, feedforward, {args.steps} bins, alpha = exp(-1/20) "
        f"({ALPHA:.6f}), no synaptic current (probsnn tau_syn = 0), threshold {THRESHOLD:g}, "
        f"reset by subtraction, no refractory period, weights N(0, g^2/fan-in) with g = {GAINS}, "
        "zero biases; "
        f"loss: cross-entropy of the output spike counts; surrogate fast sigmoid, slope "
        f"k = {args.slope:g} (probsnn width 1/k: its derivative is k/2 = {args.slope / 2:g} "
        "times the peers')"
    )
    import probsnn

    probsnn.disable_compilation_cache()  # both JAX sides compile cold: no program from disk
    print(f"load average (1, 5, 15 min) at start: {load_average()}")
    try:
        with tempfile.TemporaryDirectory() as folder:
            for batch in args.batch:
                compare(args, batch, peers, Path(folder))
    finally:
        for peer in peers.values():
            peer.close()
    print(f"\nload average (1, 5, 15 min) at end: {load_average()}")


if __name__ == "__main__":
    main()
