"""Energy-network criteria: equilibrium propagation (real-valued and spiking) and the backprop
baseline on the same network (:mod:`probsnn.inference.energy.ep`,
:mod:`probsnn.inference.energy.spiking_ep`).

The network (:class:`probsnn.models.EnergyNetwork`, hard-sigmoid units, softmax read-out) sees
each image through its spike trains: the input is the spike count per bin, c/T ∈ [0, 1], of every
input train. It predicts the class with the largest read-out score at the free fixed point.
Training drives the trainers' ``init`` / ``step`` (Adam, shuffled mini-batches, one-hot targets)
with a checkpoint of the held-out accuracy after every epoch.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np
import optax

from probsnn.compare.criteria.base import Criterion, NotApplicable, train_params
from probsnn.inference.energy import ep
from probsnn.inference.energy import spiking_ep as sep
from probsnn.models import energy as em

STATIC_ONLY = "static input -> fixed point: no output in time"
NOT_A_LIKELIHOOD = NotApplicable("no likelihood")


def count_rates(spikes) -> np.ndarray:
    """Spike counts per bin ``(n, F)`` float32 of input trains ``(n, T, F)``."""
    return np.asarray(spikes, np.float32).mean(axis=-2)


class EnergyCriterion(Criterion):
    """Shared training and evaluation; subclasses choose the trainer."""

    not_applicable: ClassVar[dict] = {
        "pattern": STATIC_ONLY,
        "recording": "no likelihood of spike trains",
    }
    defaults: ClassVar[dict] = {
        "classification": {
            "hidden": 64,
            "epochs": 30,
            "batch_size": 32,
            "learning_rate": 3e-3,
            "beta": 0.5,
            "gain": 0.5,
        }
    }
    quick: ClassVar[dict] = {"classification": {"epochs": 15}}

    def network(self, data, config) -> em.EnergyNetwork:
        sizes = (data.train_spikes.shape[-1], config["hidden"], data.n_classes)
        return em.EnergyNetwork(sizes, cost="cross_entropy")

    def make_trainer(self, spec, config) -> ep.Trainer:
        raise NotImplementedError

    def trainer(self, data, config) -> ep.Trainer:
        spec = self.network(data, config)
        return self.memo(lambda: self.make_trainer(spec, config), spec, config)

    def fit(self, task, data, config, key, curve):
        trainer = self.trainer(data, config)
        key_init, key_state, key_order = jax.random.split(key, 3)
        params = em.init_params(trainer.spec, key_init, gain=config["gain"])
        inputs = count_rates(data.train_spikes)
        targets = np.eye(data.n_classes, dtype=np.float32)[data.train_labels]

        def step(state, index):
            return trainer.step(state, inputs[index], targets[index], index)[0]

        state = trainer.init(params, key_state, len(inputs))
        return train_params(curve, step, state, len(inputs), config, key_order)

    def score(self, task, model, data, config, key):
        trainer = self.trainer(data, config)
        inputs = count_rates(data.test_spikes)
        return ep.classification_accuracy(trainer, model, inputs, data.test_labels)

    def evaluate(self, task, model, data, config, key):
        return {
            "accuracy": self.score(task, model, data, config, key),
            "log_lik": NOT_A_LIKELIHOOD,
            **self.spikes(model, data, config, key),
        }

    def spikes(self, model, data, config, key) -> dict:
        del model, data, config, key
        return {"spikes": NotApplicable("real-valued units")}


class EquilibriumPropagation(EnergyCriterion):
    """EP with symmetric nudging (Scellier & Bengio 2017; Laborieux et al. 2021)."""

    name = "ep"
    title = "equilibrium propagation, real-valued (symmetric nudging)"
    local = "yes: contrastive Hebbian rho_i rho_j between a free and a nudged phase"

    def make_trainer(self, spec, config):
        settings = ep.EPConfig(estimator="symmetric", beta=config["beta"])
        return ep.ep_trainer(spec, optax.adam(config["learning_rate"]), settings)


class Backprop(EnergyCriterion):
    """Backprop through time along the same free relaxation (the baseline)."""

    name = "backprop"
    title = "backprop through the free relaxation (BPTT baseline)"
    local = "no: errors are propagated backwards through the unrolled relaxation"

    def make_trainer(self, spec, config):
        return ep.backprop_trainer(spec, optax.adam(config["learning_rate"]))


class SpikingEP(EnergyCriterion):
    """EP with sigma-delta spikes between neurons (O'Connor, Gavves & Welling 2019)."""

    name = "ep-spiking"
    title = "equilibrium propagation, spiking (sigma-delta, annealed steps)"
    local = "yes: contrastive Hebbian on spike-driven states between two phases"
    defaults: ClassVar[dict] = {
        "classification": {
            **EnergyCriterion.defaults["classification"],
            "free_steps": 100,
            "nudged_steps": 40,
        }
    }

    def relaxations(self, config):
        return (
            sep.SpikingRelaxation(n_steps=config["free_steps"]),
            sep.SpikingRelaxation(n_steps=config["nudged_steps"]),
        )

    def make_trainer(self, spec, config):
        free, nudged = self.relaxations(config)
        settings = sep.SpikingEPConfig(beta=config["beta"], free=free, nudged=nudged)
        return sep.spiking_ep_trainer(spec, optax.adam(config["learning_rate"]), settings)

    def spikes(self, model, data, config, key):
        """Spikes the hidden layer sends in the test-time free phase, per sample: all the spikes
        of the relaxation minus the input layer's sigma-delta spikes, which number
        ⌊n a + ½⌋ for a constant rate a over n steps."""
        spec = self.trainer(data, config).spec
        free, _ = self.relaxations(config)
        inputs = count_rates(data.test_spikes)
        _, _, info = sep.spiking_relax(spec, model, inputs, key, relaxation=free)
        n_units = spec.n_inputs + sum(spec.state_sizes)
        total = float(info.spike_rate) * n_units * free.n_steps
        input_spikes = np.floor(free.n_steps * inputs + 0.5).sum(axis=1).mean()
        return {"spikes": total - float(input_spikes)}
