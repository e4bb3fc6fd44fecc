"""Unsupervised STDP features + a linear read-out
(:mod:`probsnn.inference.plasticity.features`, :func:`probsnn.inference.pair_stdp`).

A soft winner-take-all layer of K neurons learns from the input spike trains by pair STDP (hard
bounds), synaptic scaling and homeostatic biases, without labels; a ridge read-out
(:mod:`probsnn.compare.readout`) then maps the layer's spike counts to classes. Training is
:func:`probsnn.inference.fit` of
:func:`~probsnn.inference.plasticity.features.stdp_features_trainer` with one batch of all the
training samples per epoch, in a new random order each epoch; the
learning curve (:func:`~probsnn.compare.criteria.base.train`) evaluates the read-out
after every epoch (updates: one per bin of every presented sample).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np

from probsnn.compare.criteria.base import Criterion, NotApplicable, train
from probsnn.compare.readout import readout_accuracy
from probsnn.inference.plasticity import features as sf
from probsnn.inference.plasticity.stdp import pair_stdp

UNSUPERVISED = "unsupervised: cannot be told a target"


class STDPReadout(Criterion):
    name = "stdp"
    title = "unsupervised pair STDP in a soft-WTA layer + ridge read-out"
    local = "partly: the features by pair STDP (local); the read-out by ridge regression (not)"
    not_applicable: ClassVar[dict] = {
        "pattern": UNSUPERVISED,
        "recording": "no likelihood of spike trains",
    }
    defaults: ClassVar[dict] = {
        "classification": {
            "n_features": 100,
            "epochs": 6,
            "temperature": 0.1,
            "a_plus": 0.02,
            "a_minus": 0.01,
            "tau_ms": 10.0,
            "weight_total": 8.0,
            "homeostasis": 0.02,
            "l2": 1.0,
        }
    }
    quick: ClassVar[dict] = {"classification": {"epochs": 3}}

    def layer(self, data, config) -> sf.FeatureLayer:
        return sf.FeatureLayer(
            temperature=config["temperature"],
            trace_ms=config["tau_ms"],
            dt_ms=data.dt * 1e3,
            weight_total=config["weight_total"],
            homeostasis=config["homeostasis"],
        )

    def fit(self, task, data, config, key, curve):
        layer = self.layer(data, config)
        # one trainer per settings: its jitted step compiles once per run, not once per seed
        trainer = self.memo(
            lambda: sf.stdp_features_trainer(
                layer,
                pair_stdp(
                    config["a_plus"],
                    config["a_minus"],
                    config["tau_ms"],
                    config["tau_ms"],
                    layer.dt_ms,
                    w_max=1.0,
                ),
            ),
            layer,
            config,
        )
        key_init, key_run = jax.random.split(key)
        spikes = data.train_spikes
        params = sf.init_feature_params(key_init, spikes.shape[-1], config["n_features"], layer)
        return train(
            curve,
            trainer,
            params,
            spikes,
            key=key_run,
            epochs=config["epochs"],
            batch_size=len(spikes),
            updates_per_batch=spikes.shape[0] * spikes.shape[1],  # one update per sample and bin
        )

    def score(self, task, model, data, config, key):
        return self.accuracy_and_spikes(model, data, config, key)[0]

    def accuracy_and_spikes(self, model, data, config, key):
        """Read-out accuracy from the layer's spike counts (one presentation of the training and
        the test samples, in one batch), test spikes per sample and the first test raster."""
        trains = sf.feature_spikes(
            self.layer(data, config),
            model,
            key,
            np.concatenate([data.train_spikes, data.test_spikes]),
        )
        counts = np.asarray(trains, np.float64).sum(axis=1)
        n_train = len(data.train_spikes)
        train, test = counts[:n_train], counts[n_train:]
        accuracy = readout_accuracy(
            train, data.train_labels, test, data.test_labels, data.n_classes, config["l2"]
        )
        return accuracy, float(test.sum(axis=1).mean()), np.asarray(trains[n_train])

    def evaluate(self, task, model, data, config, key):
        accuracy, spikes, raster = self.accuracy_and_spikes(model, data, config, key)
        return {
            "accuracy": accuracy,
            "log_lik": NotApplicable("no likelihood"),
            "spikes": spikes,
            "raster": raster,
        }
