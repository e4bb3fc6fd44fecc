"""GLM-network criteria: maximum likelihood, batch and online, and their shared evaluation.

The learner is a GLM spiking network (:class:`probsnn.Network`) whose exogenous inputs are the
task's input spike trains (or stimulus) and whose visible neurons are the task's outputs:

* classification: C·P label neurons (P per class, no coupling between them, a one-bin
  refractory feedback; :func:`probsnn.compare.classifiers.classifier_network`) trained on the label
  trains; a test image is classified by the summed spike counts of each class's label neurons in
  a free-running sample, ties broken by the mean potential;
* pattern: N output neurons, densely coupled, trained on the target pattern;
* recording: one neuron with stimulus and history kernels.

Evaluation (shared with the hidden-neuron criteria): held-out log-likelihood per bin (summed over
visible neurons), computed from samples of the hidden neurons with the visible ones clamped,
q(h‖x) (docs/theory.md §3); with K samples this is the importance-weighted bound
log (1/K) Σ_k p(x | h_k) (exact when there are no hidden neurons). Time-rescaling KS and the
pattern AUROC use the visible potentials given the true past.
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

import probsnn as ps
from probsnn import kernels, stats
from probsnn.compare.classifiers import classifier_network
from probsnn.compare.criteria.base import Criterion, NotApplicable, train
from probsnn.compare.tasks import Classification, Pattern
from probsnn.inference import ml_online_trainer, newton_trainer
from probsnn.inference.bayes.fit import auroc
from probsnn.inference.score import iw_bound


def basis(entry) -> np.ndarray:
    """A basis from a setting: ``["cosine", K, first_peak, last_peak]`` (raised cosines,
    :func:`probsnn.kernels.raised_cosine`) or ``["boxcar", e_0, …, e_K]`` (lag windows)."""
    kind, *values = entry
    if kind == "cosine":
        n_basis, first, last = values
        return kernels.raised_cosine(int(n_basis), first, last)
    if kind == "boxcar":
        return kernels.boxcar(np.asarray(values, dtype=int))
    raise ValueError(f"a basis setting must start with 'cosine' or 'boxcar', got {entry!r}")


def glm_network(data, config: dict, n_hidden: int = 0) -> ps.Network:
    """The GLM network of a task's data, with ``n_hidden`` hidden neurons.

    Classification: :func:`probsnn.compare.classifiers.classifier_network` (hidden neurons first,
    receiving the inputs and projecting to the label neurons). Pattern and recording: the visible
    outputs first, then the hidden neurons, all coupled to all.
    """
    synapse_basis = basis(config["history_basis"])
    input_basis = basis(config["input_basis"])
    if isinstance(data, Classification):
        return classifier_network(
            data.train_targets.shape[-1],
            data.train_spikes.shape[-1],
            n_hidden,
            dt=data.dt,
            synapse_basis=synapse_basis,
            input_basis=input_basis,
        )
    if isinstance(data, Pattern):
        n_visible, n_inputs = data.target.shape[-1], data.inputs.shape[-1]
    else:
        n_visible, n_inputs = 1, 1
    n = n_visible + n_hidden
    return ps.Network(
        n,
        synapse_basis,
        input_basis=input_basis,
        n_inputs=n_inputs,
        dt=data.dt,
        connectivity=~np.eye(n, dtype=bool),
        visible=np.arange(n) < n_visible,
    )


def training_set(data):
    """``(visible spikes (R, T, N_vis), inputs (R, T, M))`` float32 of the training data."""
    if isinstance(data, Classification):
        return data.train_targets, data.train_spikes.astype(np.float32)
    if isinstance(data, Pattern):
        return data.target[None], data.inputs[None].astype(np.float32)
    return data.train_spikes, data.train_stimulus


def held_out_set(data):
    """``(visible spikes, inputs)`` of the held-out data (the pattern itself for memorisation)."""
    if isinstance(data, Classification):
        return data.test_targets, data.test_spikes.astype(np.float32)
    if isinstance(data, Pattern):
        return data.target[None], data.inputs[None].astype(np.float32)
    return data.test_spikes, data.test_stimulus


def clamped_potentials(spec, params, key, visible, inputs, n_samples: int):
    """Visible potentials ``(K, R, T, N_vis)`` given the true past, hidden spikes ~ q(h‖x).

    Without hidden neurons they are exact and computed in parallel (:func:`probsnn.potentials`),
    K = 1.
    """
    if not spec.hidden.any():
        return ps.potentials(spec, params, visible, inputs)[None]
    trials, n_steps = visible.shape[:2]
    keys = jax.random.split(key, n_samples)

    def one(k):
        _, u = ps.sample(
            spec, params, k, n_steps, trials, inputs=inputs, clamp=visible, return_potentials=True
        )
        return u[..., spec.visible]

    return jnp.stack([one(k) for k in keys])


def held_out_log_lik(spec, params, key, data, n_samples: int) -> float:
    """Held-out log-likelihood per bin (exact, or the K-sample IW bound with hidden neurons)."""
    visible, inputs = held_out_set(data)
    u = clamped_potentials(spec, params, key, visible, inputs, n_samples)
    per_trial = jnp.sum(ps.bernoulli_log_prob(jnp.asarray(visible)[None], u), axis=(2, 3))
    return float(jnp.sum(iw_bound(per_trial, axis=0))) / (visible.shape[0] * visible.shape[1])


def free_run(spec, params, key, inputs):
    """Spikes ``(R, T, N)`` and potentials of the whole network driven by ``inputs`` only."""
    trials, n_steps = inputs.shape[:2]
    return ps.sample(spec, params, key, n_steps, trials, inputs=inputs, return_potentials=True)


def count_predictions(spec, params, key, inputs, n_classes: int):
    """Classes from the label populations' summed spike counts (ties: the higher mean
    potential), the network's spikes per sample and a raster of the first sample."""
    spikes, u = free_run(spec, params, key, inputs)
    visible = np.flatnonzero(spec.visible)
    counts = np.asarray(spikes[..., visible], np.float64).sum(axis=1)
    counts = counts.reshape(len(counts), n_classes, -1).sum(axis=-1)
    tie_break = np.asarray(jax.nn.sigmoid(u[..., visible].mean(axis=1)), np.float64)
    tie_break = tie_break.reshape(len(counts), n_classes, -1).mean(axis=-1)
    predictions = np.argmax(counts + tie_break, axis=-1)
    spikes = np.asarray(spikes)
    return predictions, float(spikes.sum(axis=(1, 2)).mean()), spikes[0]


def pattern_auroc(spec, params, key, data, n_samples: int) -> float:
    """AUROC of the teacher-forced spike probabilities (averaged over hidden samples) for the
    target's spike bins against its silent bins."""
    visible, inputs = held_out_set(data)  # float32 inputs, as in training: one compilation
    u = clamped_potentials(spec, params, key, visible, inputs, n_samples)
    return auroc(np.asarray(jnp.mean(jax.nn.sigmoid(u), axis=0)[0]), data.target)


def bits_per_spike(spec, params, key, data, n_samples: int) -> float:
    """Held-out log-likelihood gain over a constant rate (the training rate), bits per spike."""
    log_lik = held_out_log_lik(spec, params, key, data, n_samples)
    rate = float(np.mean(data.train_spikes))
    test = np.asarray(data.test_spikes, np.float64)
    constant = np.mean(test * math.log(rate) + (1 - test) * math.log1p(-rate))
    return (log_lik - constant) * test.size / (test.sum() * math.log(2))


def glm_score(task, spec, params, data, key, n_samples: int) -> float:
    """The headline metric of a GLM learner."""
    if task.kind == "classification":
        inputs = data.test_spikes.astype(np.float32)
        predictions, _, _ = count_predictions(spec, params, key, inputs, data.n_classes)
        return float(np.mean(predictions == data.test_labels))
    if task.kind == "pattern":
        return pattern_auroc(spec, params, key, data, n_samples)
    return bits_per_spike(spec, params, key, data, n_samples)


def glm_metrics(task, spec, params, data, key, n_samples: int) -> dict:
    """Every metric of a GLM learner (see the module docstring)."""
    key_run, key_lik, key_ks = jax.random.split(key, 3)
    metrics = {"log_lik": held_out_log_lik(spec, params, key_lik, data, n_samples)}
    if task.kind == "classification":
        predictions, spikes, raster = count_predictions(
            spec, params, key_run, data.test_spikes.astype(np.float32), data.n_classes
        )
        metrics["accuracy"] = float(np.mean(predictions == data.test_labels))
    else:
        _, inputs = held_out_set(data)
        repeats = np.repeat(inputs, max(1, 8 // inputs.shape[0]), axis=0)
        sampled, _ = free_run(spec, params, key_run, repeats)
        sampled = np.asarray(sampled)
        spikes, raster = float(sampled.sum(axis=(1, 2)).mean()), sampled[0]
    if task.kind == "pattern":
        metrics["auroc"] = pattern_auroc(spec, params, key_lik, data, n_samples)
    if task.kind == "recording":
        metrics["bits_per_spike"] = bits_per_spike(spec, params, key_lik, data, n_samples)
        if spec.hidden.any():
            metrics["ks"] = NotApplicable("hidden neurons: no exact conditional intensity")
        else:
            rescaled = stats.time_rescaling_glm(
                spec, params, data.test_spikes, data.test_stimulus, key=key_ks
            )
            metrics["ks"] = rescaled.ks
    metrics["spikes"] = spikes
    metrics["raster"] = raster
    return metrics


# ---------------------------------------------------------------------------------------------
# adapters

GLM_BASES = {
    "classification": {"history_basis": ["boxcar", 1, 2], "input_basis": ["boxcar", 1, 4, 21]},
    "pattern": {"history_basis": ["cosine", 3, 1, 8], "input_basis": ["cosine", 3, 1, 10]},
    "recording": {"history_basis": ["cosine", 5, 1, 20], "input_basis": ["cosine", 6, 1, 40]},
}


class GLMCriterion(Criterion):
    """Shared scoring and evaluation of the fully visible GLM learners."""

    log_lik = "exact"

    def score(self, task, model, data, config, key):
        spec = glm_network(data, config)
        return glm_score(task, spec, model, data, key, 1)

    def evaluate(self, task, model, data, config, key):
        spec = glm_network(data, config)
        return glm_metrics(task, spec, model, data, key, 1)


class MaximumLikelihood(GLMCriterion):
    """Batch maximum likelihood of the fully visible network
    (:func:`probsnn.inference.newton_trainer`): penalised truncated-Newton iterations on all the
    training data, the design and preconditioner built once, one checkpoint per iteration (at
    most :data:`~probsnn.compare.criteria.base.MAX_CHECKPOINTS`), stopping at convergence."""

    name = "ml"
    title = "maximum likelihood, batch Newton (newton_trainer)"
    local = "no: Newton steps solve with the Hessian of all the data"
    defaults: ClassVar[dict] = {
        kind: {**bases, "l2": l2, "max_iter": 30}
        for (kind, bases), l2 in zip(GLM_BASES.items(), (1.0, 0.1, 0.1), strict=True)
    }

    def fit(self, task, data, config, key, curve):
        spec = glm_network(data, config)
        visible, inputs = training_set(data)
        trainer = newton_trainer(spec, visible, inputs, l2=config["l2"])
        return train(
            curve,
            trainer,
            None,
            None,
            key=key,
            epochs=config["max_iter"],
            stop=lambda info: info["converged"],
        )


class OnlineMaximumLikelihood(GLMCriterion):
    """The online ML rule (:func:`probsnn.inference.ml_rule` via
    :func:`probsnn.inference.ml_online_trainer`): an update after every bin, gradients summed
    over a mini-batch of trials (SGD, learning rate divided by the batch size)."""

    name = "ml-online"
    title = "maximum likelihood, online rule (ml_rule)"
    local = "yes: presynaptic trace x postsynaptic error s - sigma(u)"
    defaults: ClassVar[dict] = {
        "classification": {
            **GLM_BASES["classification"],
            "learning_rate": 0.02,
            "batch_size": 20,
            "epochs": 8,
        },
        "pattern": {
            **GLM_BASES["pattern"],
            "learning_rate": 0.02,
            "batch_size": 1,
            "epochs": 120,
        },
        "recording": {
            **GLM_BASES["recording"],
            "learning_rate": 0.01,
            "batch_size": 4,
            "epochs": 20,
        },
    }
    quick: ClassVar[dict] = {
        "classification": {"epochs": 4},
        "pattern": {"epochs": 60},
        "recording": {"epochs": 8},
    }

    def fit(self, task, data, config, key, curve):
        spec = glm_network(data, config)
        visible, inputs = training_set(data)
        key_order, key_init = jax.random.split(key)
        rate = max(float(np.mean(visible)), 1e-3) / spec.dt
        params = spec.init_params(key_init, rate=rate, weight_scale=0.0, refractory=0.0)
        batch_size = min(config["batch_size"], visible.shape[0])
        learning_rate = config["learning_rate"] / batch_size
        trainer = self.memo(
            lambda: ml_online_trainer(spec, optax.sgd(learning_rate)),
            spec,
            {**config, "batch_size": batch_size},
        )
        return train(
            curve,
            trainer,
            params,
            (visible, inputs),
            key=key_order,
            epochs=config["epochs"],
            batch_size=batch_size,
            updates_per_batch=visible.shape[1],  # one update per bin
        )
