"""Mutual-information criteria: InfoMax features + a linear read-out, and the information
bottleneck (:mod:`probsnn.inference.information.infomax`,
:mod:`probsnn.inference.information.criteria`).

A layer of K GLM neurons (no coupling between them, a refractory feedback kernel) is driven by
the input spike trains and trained with
:func:`~probsnn.inference.information.infomax.infomax_trainer` through
:func:`probsnn.inference.fit` (K_s spike samples per input, leave-one-out baseline, Adam on the
criterion's loss, the negative objective) on

* ``infomax``: the Barber-Agakov bound I(X;S) >= H(X) + E log q_ψ(x | s), a decoder of the input
  spike counts from the layer's counts (Barber & Agakov 2003) — unsupervised; a ridge read-out
  (:mod:`probsnn.compare.readout`) then classifies the layer's spike counts;
* ``ib``: the variational information bottleneck E log q_ψ(y | s) − β Σ KL(p_t ‖ Bern(r))
  (Skatchkovsky, Jang & Simeone 2021) — supervised; its own softmax read-out q_ψ of the counts
  classifies.

Features, accuracy and spikes per sample come from free-running samples of the layer.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np
import optax

import probsnn as ps
from probsnn.compare.criteria.base import Criterion, NotApplicable, train
from probsnn.compare.criteria.likelihood import basis
from probsnn.compare.readout import readout_accuracy
from probsnn.inference.information import criteria as mi_criteria
from probsnn.inference.information import infomax

UNSUPERVISED = "unsupervised: cannot be told a target"


class InfoMaxReadout(Criterion):
    name = "infomax"
    title = "InfoMax (Barber-Agakov decoder bound) spiking features + ridge read-out"
    local = (
        "partly: the features by presynaptic trace x postsynaptic error gated by the global "
        "objective (three-factor); the read-out by ridge regression (not)"
    )
    not_applicable: ClassVar[dict] = {
        "pattern": UNSUPERVISED,
        "recording": "no likelihood of spike trains",
    }
    defaults: ClassVar[dict] = {
        "classification": {
            "n_features": 32,
            "history_basis": ["boxcar", 1, 3],
            "input_basis": ["boxcar", 1, 4, 21],
            "rate": 20.0,
            "weight_scale": 1.0,
            "n_samples": 4,
            "learning_rate": 0.03,
            "batch_size": 64,
            "epochs": 16,
            "l2": 1.0,
        }
    }
    quick: ClassVar[dict] = {"classification": {"epochs": 8}}

    def network(self, data, config) -> ps.Network:
        n = config["n_features"]
        return ps.Network(
            n,
            basis(config["history_basis"]),
            input_basis=basis(config["input_basis"]),
            n_inputs=data.train_spikes.shape[-1],
            dt=data.dt,
            connectivity=np.zeros((n, n), bool),
        )

    def objective(self, spec, data, config):
        return mi_criteria.barber_agakov(spec)

    def training_data(self, data):
        """What the trainer's batches are cut from: the input spike trains ``(n, T, F)``."""
        return data.train_spikes.astype(np.float32)

    def fit(self, task, data, config, key, curve):
        spec = self.network(data, config)
        objective = self.objective(spec, data, config)

        def build():
            return infomax.infomax_trainer(
                spec,
                objective,
                optax.adam(config["learning_rate"]),
                n_samples=config["n_samples"],
            )

        trainer = self.memo(build, spec, config)
        key_init, key_readout, key_fit = jax.random.split(key, 3)
        network = spec.init_params(
            key_init, rate=config["rate"], weight_scale=config["weight_scale"]
        )
        params = infomax.InfoMaxParams(network, objective.init_readout(key_readout))
        return train(
            curve,
            trainer,
            params,
            self.training_data(data),
            key=key_fit,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
        )

    def counts(self, data, config, model, key, spikes):
        """Spike counts ``(n, K)`` of a free run of the layer on input trains ``(n, T, F)``, and
        the first sample's raster."""
        spec = self.network(data, config)
        inputs = spikes.astype(np.float32)
        sampled = ps.sample(spec, model.network, key, inputs.shape[1], len(inputs), inputs=inputs)
        sampled = np.asarray(sampled)
        return sampled.sum(axis=1).astype(np.float64), sampled[0]

    def accuracy_and_spikes(self, model, data, config, key):
        """Read-out accuracy (training and test samples run in one batch), test spikes per sample
        and the first test raster."""
        both = np.concatenate([data.test_spikes, data.train_spikes])
        counts, raster = self.counts(data, config, model, key, both)
        test, train = counts[: len(data.test_spikes)], counts[len(data.test_spikes) :]
        accuracy = readout_accuracy(
            train, data.train_labels, test, data.test_labels, data.n_classes, config["l2"]
        )
        return accuracy, float(test.sum(axis=1).mean()), raster

    def score(self, task, model, data, config, key):
        return self.accuracy_and_spikes(model, data, config, key)[0]

    def evaluate(self, task, model, data, config, key):
        accuracy, spikes, raster = self.accuracy_and_spikes(model, data, config, key)
        return {
            "accuracy": accuracy,
            "log_lik": NotApplicable("no likelihood"),
            "spikes": spikes,
            "raster": raster,
        }


class InformationBottleneck(InfoMaxReadout):
    name = "ib"
    title = "variational information bottleneck (VDIB), its softmax read-out of spike counts"
    local = (
        "yes: presynaptic trace x postsynaptic error gated by the global objective "
        "(three-factor); the read-out by gradient descent on -log q(y | s)"
    )
    not_applicable: ClassVar[dict] = {
        "pattern": "needs class labels",
        "recording": "needs class labels",
    }
    defaults: ClassVar[dict] = {
        "classification": {
            **InfoMaxReadout.defaults["classification"],
            "beta": 0.001,
            "target_prob": 0.02,
        }
    }

    def objective(self, spec, data, config):
        return mi_criteria.information_bottleneck(
            spec, data.n_classes, config["beta"], config["target_prob"]
        )

    def training_data(self, data):
        """Input spike trains and their class labels: ``(inputs (n, T, F), labels (n,))``."""
        return super().training_data(data), np.asarray(data.train_labels, np.int32)

    def accuracy_and_spikes(self, model, data, config, key):
        counts, raster = self.counts(data, config, model, key, data.test_spikes)
        scores = counts @ np.asarray(model.readout.weight) + np.asarray(model.readout.bias)
        accuracy = float(np.mean(np.argmax(scores, axis=1) == data.test_labels))
        return accuracy, float(counts.sum(axis=1).mean()), raster
