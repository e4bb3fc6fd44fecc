"""Variational learning of GLM networks with hidden neurons, single- and multi-sample
(:mod:`probsnn.inference.latent.variational`, :mod:`probsnn.inference.latent.multisample`).

The network of :func:`~probsnn.compare.criteria.likelihood.glm_network` gets ``n_hidden`` hidden
neurons; the visible ones are clamped to the task's label trains, target pattern or recording.
Training runs :func:`~probsnn.inference.latent.trainer.variational_trainer` through
:func:`probsnn.inference.fit` (Adam on the rule's loss gradients, shuffled mini-batches, the
learning curve recorded by its callback): K = 1 with the ELBO rule and its variance-optimal
baseline (``variational``, loss −ELBO), or K samples with VIMCO (``variational-multi``, loss
−IW_K; Mnih & Rezende 2016, Jang & Simeone 2020). Evaluation is the GLM family's, with the
held-out log-likelihood replaced by its importance-weighted bound over ``eval_samples`` hidden
completions (a lower bound).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpy as np
import optax

from probsnn.compare.criteria.base import Criterion, train
from probsnn.compare.criteria.likelihood import (
    GLM_BASES,
    glm_metrics,
    glm_network,
    glm_score,
    training_set,
)
from probsnn.inference.latent.multisample import multisample_rule
from probsnn.inference.latent.trainer import variational_trainer

_SETTINGS = {
    "classification": {"n_hidden": 20, "learning_rate": 0.02, "batch_size": 50, "epochs": 10},
    "pattern": {"n_hidden": 4, "learning_rate": 0.02, "batch_size": 1, "epochs": 400},
    "recording": {"n_hidden": 2, "learning_rate": 0.02, "batch_size": 1, "epochs": 100},
}
_QUICK = {
    "classification": {"epochs": 4},
    "pattern": {"epochs": 200},
    "recording": {"epochs": 50},
}
_WEIGHT_SCALE = {"classification": 1.0, "pattern": 1.0, "recording": 0.1}


def _defaults(n_samples: int) -> dict:
    return {
        kind: {
            **GLM_BASES[kind],
            **settings,
            "weight_scale": _WEIGHT_SCALE[kind],
            "n_samples": n_samples,
            "eval_samples": 8,
        }
        for kind, settings in _SETTINGS.items()
    }


class Variational(Criterion):
    """Single-sample variational learning: the ELBO's three-factor rule."""

    name = "variational"
    title = "variational learning with hidden neurons, one sample (ELBO rule, optimal baseline)"
    local = (
        "yes: presynaptic trace x postsynaptic error, gated for hidden neurons by the global "
        "learning signal (three-factor)"
    )
    log_lik = "importance-weighted bound over 8 hidden completions (eval_samples; a lower bound)"
    defaults: ClassVar[dict] = _defaults(n_samples=1)
    quick: ClassVar[dict] = _QUICK

    def network(self, data, config):
        return glm_network(data, config, n_hidden=config["n_hidden"])

    def rule(self, spec):
        del spec
        return None  # the trainer's default: variational_rule(spec)

    def trainer(self, spec, config):
        def build():
            optimizer = optax.adam(config["learning_rate"])
            return variational_trainer(
                spec, optimizer, n_samples=config["n_samples"], rule=self.rule(spec)
            )

        return self.memo(build, spec, config)

    def fit(self, task, data, config, key, curve):
        spec = self.network(data, config)
        visible, inputs = training_set(data)
        key_init, key_fit = jax.random.split(key)
        rate = max(float(np.mean(visible)), 1e-3) / spec.dt
        params = spec.init_params(key_init, rate=rate, weight_scale=config["weight_scale"])
        return train(
            curve,
            self.trainer(spec, config),
            params,
            (visible, inputs),
            key=key_fit,
            epochs=config["epochs"],
            batch_size=min(config["batch_size"], visible.shape[0]),
        )

    def score(self, task, model, data, config, key):
        spec = self.network(data, config)
        return glm_score(task, spec, model, data, key, config["eval_samples"])

    def evaluate(self, task, model, data, config, key):
        spec = self.network(data, config)
        return glm_metrics(task, spec, model, data, key, config["eval_samples"])


class MultisampleVariational(Variational):
    """K hidden samples per sequence and the VIMCO estimator of the IW bound's gradient."""

    name = "variational-multi"
    title = "variational learning with hidden neurons, K samples (IW bound, VIMCO)"
    local = "yes: as variational, with per-sample learning signals (leave-one-out) as third factors"
    defaults: ClassVar[dict] = _defaults(n_samples=4)

    def rule(self, spec):
        return multisample_rule(spec, "vimco")
