"""Deterministic LIF networks trained by surrogate gradients: BPTT and e-prop
(:mod:`probsnn.inference.deterministic.bptt`, :mod:`probsnn.inference.deterministic.eprop`).

Both train the same network on the task's input spike trains: ``LIFNetwork((F, H, C),
output="membrane")``, H LIF neurons (temperature 0, feedforward by default) under C leaky
read-out integrators, with the per-bin cross-entropy of the read-out voltages,
ℓ = −(1/T) Σ_t log softmax(v_t)_y, and the prediction argmax_c Σ_t log softmax(v_t)_c. BPTT
(``"surrogate"``) backpropagates through the unrolled bins with the surrogate derivative of the
spike (Neftci, Mostafa & Zenke 2019); e-prop (``"eprop"``) computes the gradient forward in time
from eligibility traces and a learning signal broadcast from the read-out (Bellec et al. 2020),
exactly the BPTT gradient for a feedforward hidden layer with symmetric feedback. Training is
:func:`probsnn.inference.fit` (Adam, shuffled mini-batches) through :func:`.base.train`, which
checkpoints the held-out accuracy.

The pattern task scores teacher-forced spike probabilities and the recording task a likelihood:
a deterministic network has neither, so both criteria are classification only.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np
import optax

from probsnn import lif
from probsnn.compare.criteria.base import Criterion, NotApplicable, train
from probsnn.inference.deterministic import bptt, eprop

NO_LIKELIHOOD = NotApplicable("deterministic spikes: no likelihood")
NOT_APPLICABLE = {
    "pattern": "deterministic spikes: no spike probabilities to score the pattern by",
    "recording": "deterministic spikes: no likelihood of spike trains",
}
_READOUT = "per_step"


class DeterministicLIF(Criterion):
    """Shared network, training loop and evaluation; subclasses choose the trainer."""

    local: ClassVar[str]
    not_applicable: ClassVar[dict] = NOT_APPLICABLE
    defaults: ClassVar[dict] = {
        "classification": {
            "hidden": 100,
            "neuron": "lif",
            "recurrent": True,
            "tau_mem": 0.02,
            "tau_syn": 0.005,
            "surrogate_scale": 0.1,
            "epochs": 30,
            "batch_size": 32,
            "learning_rate": 3e-3,
            "gain": 1.0,
        }
    }
    quick: ClassVar[dict] = {"classification": {"epochs": 20}}

    def network(self, data, config) -> lif.LIFNetwork:
        """``LIFNetwork((F, H, C), output="membrane")`` at the task's bin width."""
        return lif.LIFNetwork(
            (data.train_spikes.shape[-1], config["hidden"], data.n_classes),
            neuron=config["neuron"],
            recurrent=config["recurrent"],
            tau_mem=config["tau_mem"],
            tau_syn=config["tau_syn"],
            dt=data.dt,
            output="membrane",
            surrogate_scale=config["surrogate_scale"],
        )

    def make_trainer(self, spec, config, key):
        raise NotImplementedError

    def fit(self, task, data, config, key, curve):
        spec = self.network(data, config)
        key_init, key_fit, key_trainer = jax.random.split(key, 3)
        trainer = self.make_trainer(spec, config, key_trainer)
        params = lif.init_params(spec, key_init, gain=config["gain"])
        return train(
            curve,
            trainer,
            params,
            (data.train_spikes, data.train_labels),
            key=key_fit,
            epochs=config["epochs"],
            batch_size=min(config["batch_size"], len(data.train_labels)),
        )

    def score(self, task, model, data, config, key):
        spec = self.network(data, config)
        return bptt.accuracy(spec, model, data.test_spikes, data.test_labels, readout=_READOUT)

    def evaluate(self, task, model, data, config, key):
        """Held-out accuracy, the hidden layer's spikes per test sample and its raster on the
        first test sample."""
        spec = self.network(data, config)
        hidden = np.asarray(lif.simulate(spec, model, data.test_spikes).spikes[0], np.uint8)
        return {
            "accuracy": self.score(task, model, data, config, key),
            "log_lik": NO_LIKELIHOOD,
            "spikes": float(hidden.sum(axis=(1, 2)).mean()),
            "raster": hidden[0],
        }


class Surrogate(DeterministicLIF):
    """Surrogate-gradient BPTT (:func:`probsnn.inference.deterministic.bptt.surrogate_trainer`)."""

    name = "surrogate"
    title = "surrogate-gradient BPTT, deterministic LIF (per-bin read-out loss)"
    local = "no: errors are propagated backwards through the unrolled bins"

    def make_trainer(self, spec, config, key):
        del key
        return self.memo(
            lambda: bptt.surrogate_trainer(
                spec, optax.adam(config["learning_rate"]), readout=_READOUT
            ),
            spec,
            config,
        )


class EProp(DeterministicLIF):
    """E-prop (:func:`probsnn.inference.deterministic.eprop.eprop_trainer`) with symmetric
    feedback (the read-out's weights) or, with ``feedback="random"``, a fixed random matrix
    drawn per seed."""

    name = "eprop"
    title = "e-prop, deterministic LIF (eligibility traces x broadcast learning signal)"
    local = (
        "partly: eligibility traces are local; the learning signal is the read-out error sent "
        "back through feedback weights (W_out itself when symmetric)"
    )
    defaults: ClassVar[dict] = {
        "classification": {**DeterministicLIF.defaults["classification"], "feedback": "symmetric"}
    }

    def make_trainer(self, spec, config, key):
        optimizer = optax.adam(config["learning_rate"])
        if config["feedback"] == "random":  # a matrix per seed: one trainer per fit
            return eprop.eprop_trainer(spec, optimizer, feedback="random", key=key)
        return self.memo(
            lambda: eprop.eprop_trainer(spec, optimizer, feedback=config["feedback"]),
            spec,
            config,
        )
