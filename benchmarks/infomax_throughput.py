"""Training throughput of the information criteria vs maximum likelihood on the same network.

Setting (issue 7, Speed): the digits network of notebook 06 — 64 rate-coded input trains, 32
output neurons with an exponential input kernel, 12 bins of 5 ms — trained on mini-batches of 64
inputs with Adam. Maximum likelihood observes the output spikes (drawn once beforehand) and
applies the local ML rule (:func:`probsnn.inference.ml_rule`, summed over the bins); each
information criterion draws K = 4 spike trains per input from the network with
:func:`probsnn.sample` and applies the score-function rule
(:func:`probsnn.inference.information.infomax.infomax_rule`) through its trainer
(:func:`probsnn.inference.information.infomax.infomax_trainer`). We time compiled steps (best of
the repeats after a warm-up) and report training samples (inputs) per second and ML's speed over
each criterion's. The criteria cost more because they sample K spike trains per input (a sequential
scan), score them, and differentiate the criterion; the bottleneck re-evaluates the potentials
for its KL term, and the rate-penalised InfoMax evaluates every sample under every input of the
batch (its marginal p(y), K·B² potentials). On a shared machine the figures vary by 2x between
runs; compare the ratios of one run.

Run: python benchmarks/infomax_throughput.py [--batch 64] [--samples 4] [--steps 20]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _header import print_header
from _timing import best_time

import probsnn as ps
from probsnn import kernels
from probsnn.inference.information import criteria as crit
from probsnn.inference.information import infomax as im
from probsnn.inference.likelihood.online import MLSignals, ml_rule


def network(n_neurons: int, n_inputs: int, dt: float):
    basis = kernels.exponential([0.02], 10, dt)
    spec = ps.Network(
        n_neurons,
        basis,
        input_basis=basis,
        n_inputs=n_inputs,
        connectivity=np.zeros((n_neurons, n_neurons), bool),
        dt=dt,
    )
    return spec, spec.init_params(jax.random.key(0), rate=20.0, refractory=1.0)


def ml_step(spec, optimizer):
    """A compiled mini-batch step of the ML rule on (inputs, observed spikes); like the
    criteria's trainer steps it is called once per mini-batch from Python."""
    rule = optax.chain(ml_rule(spec), optimizer)

    @jax.jit
    def step(params, state, inputs, spikes):
        signals = MLSignals(ps.traces(spec, spikes, inputs), spikes)
        updates, state = rule.update(signals, state, params)
        return optax.apply_updates(params, updates), state

    return rule.init, step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4, help="K spike trains per input")
    parser.add_argument("--steps", type=int, default=20, help="mini-batches per timing")
    parser.add_argument("--bins", type=int, default=12)
    parser.add_argument("--neurons", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print_header(
        "Training throughput: information criteria vs maximum likelihood",
        {
            "maximum likelihood": f"the local ML rule on the same network, Adam, batch "
            f"{args.batch}, jit (both sides probsnn)"
        },
        packages=("optax",),
    )

    dt, n_inputs, n_classes = 5e-3, 64, 10
    spec, params = network(args.neurons, n_inputs, dt)
    key_x, key_s, key_y = jax.random.split(jax.random.key(1), 3)
    shape = (args.steps, args.batch, args.bins, n_inputs)
    inputs = jax.random.bernoulli(key_x, 0.2, shape).astype(jnp.float32)
    labels = np.asarray(jax.random.randint(key_y, shape[:2], 0, n_classes), np.int32)
    flat = inputs.reshape(-1, args.bins, n_inputs)
    observed = ps.sample(spec, params, key_s, args.bins, flat.shape[0], inputs=flat)
    observed = observed.reshape(*shape[:3], args.neurons).astype(jnp.float32)
    optimizer = optax.adam(1e-2)
    n_samples = args.steps * args.batch
    print(
        f"setting: {args.neurons} neurons, {n_inputs} inputs, {args.bins} bins, batch "
        f"{args.batch}, K={args.samples} samples per input, {args.steps} steps per timing; "
        f"jax {jax.__version__} on {jax.default_backend()}"
    )

    ml_init, ml_update = ml_step(spec, optimizer)

    def ml_epoch():
        current, state = params, ml_init(params)
        for i in range(args.steps):
            current, state = ml_update(current, state, inputs[i], observed[i])
        return current

    _, ml_seconds = best_time(ml_epoch, repeats=args.repeats, warmup=True)
    ml_rate = n_samples / ml_seconds
    print(f"  {'maximum likelihood (ML rule)':<36} {ml_rate:>10.0f} samples/s")

    criteria = {
        "Barber-Agakov InfoMax": (crit.barber_agakov(spec), None),
        "InfoNCE": (crit.infonce(spec), None),
        "information bottleneck": (crit.information_bottleneck(spec, n_classes, 0.1), labels),
        "rate-penalised InfoMax (Toyoizumi)": (crit.rate_penalised_infomax(spec, 1.0), None),
    }
    keys = jax.random.split(jax.random.key(3), args.steps)
    for name, (criterion, targets) in criteria.items():
        trainer = im.infomax_trainer(spec, criterion, optimizer, n_samples=args.samples)
        start = im.InfoMaxParams(params, criterion.init_readout(jax.random.key(2)))

        def epoch(trainer=trainer, start=start, targets=targets):
            state = trainer.init(start)
            for i in range(args.steps):
                batch = inputs[i] if targets is None else (inputs[i], targets[i])
                state, _ = trainer.step(keys[i], state, batch)
            return state.params

        _, seconds = best_time(epoch, repeats=args.repeats, warmup=True)
        rate = n_samples / seconds
        print(f"  {name:<36} {rate:>10.0f} samples/s   ML / this = {ml_rate / rate:5.1f}x")


if __name__ == "__main__":
    main()
