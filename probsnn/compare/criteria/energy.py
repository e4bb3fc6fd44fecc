"""Energy-network criteria: equilibrium propagation (real-valued and spiking) and the backprop
baseline on the same network (:mod:`probsnn.inference.energy.ep`,
:mod:`probsnn.inference.energy.spiking_ep`).

The network (:class:`probsnn.models.EnergyNetwork`, hard-sigmoid units, softmax read-out) sees
each image through its spike trains: the input is the spike count per bin, c/T ∈ [0, 1], of every
input train. It predicts the class with the largest read-out score at the free fixed point.
Training runs :func:`probsnn.inference.fit` on the trainers (Adam, shuffled mini-batches, one-hot
targets), checkpointing the held-out accuracy (:func:`.base.train`).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import numpy as np
import optax

from probsnn.compare.criteria.base import Criterion, NotApplicable, train
from probsnn.inference._training import Trainer
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

    def make_trainer(self, spec, config) -> Trainer:
        raise NotImplementedError

    def predictor(self, spec, config):
        """``predictor(params, inputs) -> scores`` at the free fixed point."""
        return functools.partial(ep.predict, spec, relaxation=ep.DEFAULT_CONFIG.free)

    def trainer(self, spec, config) -> Trainer:
        return self.memo(lambda: self.make_trainer(spec, config), spec, config)

    def fit(self, task, data, config, key, curve):
        spec = self.network(data, config)
        trainer = self.trainer(spec, config)
        key_init, key_fit = jax.random.split(key)
        params = em.init_params(spec, key_init, gain=config["gain"])
        items = ep.classification_data(spec, count_rates(data.train_spikes), data.train_labels)
        return train(
            curve,
            trainer,
            params,
            items,
            key=key_fit,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
        )

    def score(self, task, model, data, config, key):
        spec = self.network(data, config)
        inputs = count_rates(data.test_spikes)
        return ep.classification_accuracy(
            self.predictor(spec, config), model, inputs, data.test_labels
        )

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

    def predictor(self, spec, config):
        fixed = ep.DEFAULT_CONFIG.free._replace(adaptive=False)
        return functools.partial(ep.predict, spec, relaxation=fixed)


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

    def predictor(self, spec, config):
        free, _ = self.relaxations(config)
        return functools.partial(sep.spiking_predict, spec, relaxation=free)

    def spikes(self, model, data, config, key):
        """Spikes the hidden layer sends in the test-time free phase, per sample: all the spikes
        of the relaxation minus the input layer's sigma-delta spikes, which number
        ⌊n a + ½⌋ for a constant rate a over n steps."""
        spec = self.network(data, config)
        free, _ = self.relaxations(config)
        inputs = count_rates(data.test_spikes)
        _, _, info = sep.spiking_relax(spec, model, inputs, key, relaxation=free)
        n_units = spec.n_inputs + sum(spec.state_sizes)
        total = float(info.spike_rate) * n_units * free.n_steps
        input_spikes = np.floor(free.n_steps * inputs + 0.5).sum(axis=1).mean()
        return {"spikes": total - float(input_spikes)}
