"""ANN → SNN conversion criteria (:mod:`probsnn.inference.deterministic.conversion`).

Both train a one-hidden-layer MLP by backpropagation on the spike count per bin of every input
train, c/T (:func:`~probsnn.compare.criteria.energy.count_rates`), with Adam on shuffled
mini-batches through :func:`probsnn.inference.fit`, then convert it to a spiking network that
sees the held-out spike trains themselves, bin by bin, over the task's T bins, and classifies by
its output spike counts (ties to the larger residual membrane,
:func:`~probsnn.inference.deterministic.conversion.classify`):

* ``conversion`` — a ReLU MLP becomes integrate-and-fire neurons with data-based weight
  normalisation (the 99.9th percentile of the training activations; Diehl et al. 2015,
  Rueckauer et al. 2017). The learning curve scores the converted network after each epoch.
* ``conversion-bernoulli`` — a sigmoid MLP becomes Bernoulli neurons firing with probability
  σ(z W + b) in every bin, then is fine-tuned on the training spike trains by the variational
  bound with the network as proposal (the true class's output neuron spiking in every bin;
  :func:`~probsnn.inference.deterministic.conversion.bernoulli_finetune_trainer`). The learning
  curve runs through both phases; the headline is the fine-tuned accuracy, and the cell also
  records ``converted_accuracy``, the accuracy right after conversion.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import jax
import numpy as np
import optax

from probsnn import lif
from probsnn.compare.criteria.base import Criterion, NotApplicable, train
from probsnn.compare.criteria.energy import count_rates
from probsnn.inference.deterministic import conversion as cv

NOT_CLASSIFICATION = {
    "pattern": "converts a classifier: an MLP has no output in time to match a pattern",
    "recording": "converts a classifier: no likelihood of a recorded spike train",
}


class BernoulliModel(NamedTuple):
    """The ``conversion-bernoulli`` model: the trained sigmoid MLP (a tuple of
    :class:`~probsnn.inference.deterministic.conversion.MLPLayer`) and the fine-tuned Bernoulli
    network's parameters (a tuple of :class:`probsnn.lif.LayerParams`)."""

    mlp: tuple
    tuned: tuple


class _AfterUpdates:
    """The learning curve seen by a second training phase: its updates count on from
    ``offset``, the first phase's."""

    def __init__(self, curve, offset: int):
        self.curve, self.offset = curve, offset

    def start(self) -> None:
        self.curve.start()

    def next_checkpoint_path(self):
        return self.curve.next_checkpoint_path()

    def checkpoint(self, updates: int, model) -> None:
        self.curve.checkpoint(self.offset + updates, model)


def _spikes_and_raster(spec, params, inputs, key) -> dict:
    """Spikes the network's neurons emit per held-out sample and the first sample's raster."""
    record = lif.simulate(spec, params, inputs, key)
    spikes = np.concatenate([np.asarray(z) for z in record.spikes], axis=-1)
    return {
        "spikes": float(spikes.sum(axis=(1, 2)).mean()),
        "raster": spikes[0].astype(np.uint8),
    }


class Conversion(Criterion):
    """ReLU MLP → integrate-and-fire network, no training of the SNN."""

    name = "conversion"
    title = "ReLU MLP on spike-count rates, converted to integrate-and-fire neurons"
    local = "no: the MLP is trained by backpropagation; the converted network does not learn"
    not_applicable: ClassVar[dict] = NOT_CLASSIFICATION
    activation = "relu"
    defaults: ClassVar[dict] = {
        "classification": {
            "hidden": 64,
            "epochs": 30,
            "batch_size": 32,
            "learning_rate": 3e-3,
            "gain": 1.4,
            "percentile": 99.9,
        }
    }
    quick: ClassVar[dict] = {"classification": {"epochs": 15}}

    def sizes(self, data, config) -> tuple:
        return (data.train_spikes.shape[-1], config["hidden"], data.n_classes)

    def train_mlp(self, data, config, key, curve):
        """The MLP trained on the training count rates (checkpointed on ``curve``)."""
        sizes = self.sizes(data, config)
        trainer = self.memo(
            lambda: cv.mlp_trainer(optax.adam(config["learning_rate"]), activation=self.activation),
            ("mlp", sizes, self.activation),
            config,
        )
        key_init, key_fit = jax.random.split(key)
        params = cv.init_mlp(sizes, key_init, gain=config["gain"])
        rates = count_rates(data.train_spikes)
        return train(
            curve,
            trainer,
            params,
            (rates, data.train_labels),
            key=key_fit,
            epochs=config["epochs"],
            batch_size=min(config["batch_size"], len(rates)),
        )

    def convert(self, model, data, config):
        return cv.convert_to_if(
            model, count_rates(data.train_spikes), percentile=config["percentile"]
        )

    def fit(self, task, data, config, key, curve):
        return self.train_mlp(data, config, key, curve)

    def score(self, task, model, data, config, key):
        spec, params = self.convert(model, data, config)
        return _accuracy(spec, params, data, key)

    def evaluate(self, task, model, data, config, key):
        spec, params = self.convert(model, data, config)
        return {
            "accuracy": _accuracy(spec, params, data, key),
            "log_lik": NotApplicable("deterministic spikes: no likelihood"),
            **_spikes_and_raster(spec, params, data.test_spikes, key),
        }


def _accuracy(spec, params, data, key) -> float:
    predicted = cv.classify(spec, params, data.test_spikes, key)
    return float(np.mean(np.asarray(predicted) == data.test_labels))


class BernoulliConversion(Conversion):
    """Sigmoid MLP → Bernoulli network, fine-tuned by the variational bound."""

    name = "conversion-bernoulli"
    title = "sigmoid MLP converted to Bernoulli neurons, fine-tuned by the variational bound"
    local = (
        "partly: the MLP by backpropagation; the fine-tuning is three-factor (presynaptic spike "
        "x (z - sigma(v)) x a global learning signal)"
    )
    activation = "sigmoid"
    defaults: ClassVar[dict] = {
        "classification": {
            "hidden": 64,
            "epochs": 30,
            "batch_size": 32,
            "learning_rate": 1e-2,
            "gain": 1.0,
            "finetune_epochs": 10,
            "finetune_learning_rate": 1e-3,
            "n_samples": 4,
        }
    }
    quick: ClassVar[dict] = {"classification": {"epochs": 15, "finetune_epochs": 5}}

    def convert(self, model, data, config):
        """The Bernoulli network of a checkpoint: the MLP (first phase) converted, or the
        fine-tuned parameters (second phase)."""
        if isinstance(model[0], cv.MLPLayer):
            return cv.convert_to_bernoulli(model)
        sizes = (model[0].w_in.shape[0], *(layer.bias.shape[0] for layer in model))
        return cv.bernoulli_network(sizes), model

    def fit(self, task, data, config, key, curve):
        key_mlp, key_tune = jax.random.split(key)
        mlp = self.train_mlp(data, config, key_mlp, curve)
        spec, params = cv.convert_to_bernoulli(mlp)
        trainer = self.memo(
            lambda: cv.bernoulli_finetune_trainer(
                spec,
                optax.adam(config["finetune_learning_rate"]),
                n_samples=config["n_samples"],
            ),
            spec,
            config,
        )
        batch_size = min(config["batch_size"], len(data.train_spikes))
        offset = config["epochs"] * (len(data.train_spikes) // batch_size)
        tuned = train(
            _AfterUpdates(curve, offset),
            trainer,
            params,
            (data.train_spikes, data.train_labels),
            key=key_tune,
            epochs=config["finetune_epochs"],
            batch_size=batch_size,
        )
        return BernoulliModel(mlp, tuned)

    def evaluate(self, task, model, data, config, key):
        key_converted, key_tuned, key_raster = jax.random.split(key, 3)
        spec, converted = cv.convert_to_bernoulli(model.mlp)
        return {
            "accuracy": _accuracy(spec, model.tuned, data, key_tuned),
            "converted_accuracy": _accuracy(spec, converted, data, key_converted),
            "log_lik": NotApplicable(
                "the output codes the class by a fixed spike pattern, not the task's label "
                "trains (its exact likelihood needs a sum over all hidden patterns)"
            ),
            **_spikes_and_raster(spec, model.tuned, data.test_spikes, key_raster),
        }
