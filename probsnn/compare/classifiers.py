"""Supervised classification of spike-encoded digits with hidden neurons (issue 6, task 5b).

The 8×8 scikit-learn digits (:func:`probsnn.data.load_digits`) become spike trains with the rate
code of :func:`probsnn.encoding.rate_encode`: pixel x drives a Poisson train of rate x·λ_max over
T bins. These 64 trains are the network's exogenous inputs (clamped in training and test). One
output neuron per class; during training the outputs are clamped to a target pattern — the
label's neuron fires as a Poisson train at ``target_rate``, the others are silent — so learning
is maximum likelihood of the targets given the inputs (docs/theory.md §2), and with hidden
neurons the variational rule of :mod:`probsnn.inference.latent.variational` (docs/theory.md §3;
Jang, Simeone, Gardner & Grüning 2019, IEEE SPM 36(6):64), trained by
:func:`~probsnn.inference.latent.trainer.variational_trainer` through
:func:`probsnn.inference.fit`. At test time the whole network runs freely from the inputs
and the class is the output neuron with the most spikes (summed over ``n_samples`` runs, ties
broken at random).

:func:`compare_digit_classifiers` reports the held-out accuracy of the network with hidden
neurons beside (i) a fully visible network (inputs → outputs, fitted by :func:`fit_ml`) and
(ii) a logistic regression on the input spike counts (scikit-learn), on the same encoding. With
``wta=True`` it adds (iii) a network whose output is one winner-take-all unit with one symbol per
class (:mod:`probsnn.wta`; Jang, Skatchkovsky & Simeone 2020), trained by
:func:`~probsnn.inference.latent.trainer.wta_trainer`.
"""

from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks, data, encoding, kernels, wta
from probsnn.inference._training import FitResult, fit
from probsnn.inference.latent.trainer import variational_trainer, wta_trainer
from probsnn.inference.likelihood.newton import fit_ml
from probsnn.network import Network, Params
from probsnn.simulate import sample


class SpikeDataset(NamedTuple):
    """Spike-encoded labelled examples.

    Attributes:
        inputs: ``(n, T, F)`` uint8 input spike trains (F = 64 pixels).
        targets: ``(n, T, n_classes)`` uint8 target output spikes.
        labels: ``(n,)`` int32 class indices 0..n_classes − 1 (positions in ``classes``).
        classes: ``(n_classes,)`` the digit each output neuron stands for.
        dt: bin width Δ (s).
    """

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    dt: float


def digits_dataset(
    key,
    *,
    classes=tuple(range(10)),
    n_steps: int = 20,
    dt: float = 1e-3,
    max_rate: float = 500.0,
    target_rate: float = 600.0,
) -> SpikeDataset:
    """The scikit-learn digits of ``classes`` as spike trains (module docstring).

    Args:
        key: PRNG key for the Poisson draws.
        classes: the digits to keep (distinct, in 0..9, at least two), in output-neuron order.
        n_steps: T bins per example. dt: bin width Δ (s).
        max_rate: λ_max (Hz) of a white pixel. target_rate: rate (Hz) of the label's output.

    Returns:
        :class:`SpikeDataset`.

    Raises:
        ValueError: bad classes, n_steps < 1, or rates that are not positive.
    """
    classes = _check_classes(classes)
    target_rate = _checks.positive_float(target_rate, "target_rate")
    images, digits = data.load_digits()
    keep = np.isin(digits, classes)
    lookup = np.full(10, -1, np.int32)
    lookup[classes] = np.arange(len(classes))
    labels = lookup[digits[keep]]
    input_key, target_key = jax.random.split(key)
    values = images[keep].reshape(-1, images.shape[1] * images.shape[2])
    inputs = encoding.rate_encode(input_key, values, n_steps, dt=dt, max_rate=max_rate)
    rates = target_rate * np.eye(len(classes), dtype=np.float32)[labels][:, None, :]
    shape = (len(labels), n_steps, len(classes))
    targets = encoding.poisson_spikes(target_key, rates, dt, shape)
    return SpikeDataset(
        inputs=np.asarray(inputs, np.uint8),
        targets=np.asarray(targets, np.uint8),
        labels=labels,
        classes=classes,
        dt=dt,
    )


def split_dataset(dataset: SpikeDataset, test_fraction: float, key):
    """Random train/test split; returns ``(train, test)`` :class:`SpikeDataset` s.

    Raises:
        ValueError: ``test_fraction`` outside (0, 1) or leaving either part empty.
    """
    test_fraction = _checks.positive_float(test_fraction, "test_fraction")
    n = len(dataset.labels)
    n_test = round(test_fraction * n)
    if not (test_fraction < 1 and 0 < n_test < n):
        raise ValueError(
            f"test_fraction must leave both parts non-empty for {n} examples, got {test_fraction}"
        )
    order = np.asarray(jax.random.permutation(key, n))

    def subset(index):
        return dataset._replace(
            inputs=dataset.inputs[index],
            targets=dataset.targets[index],
            labels=dataset.labels[index],
        )

    return subset(order[n_test:]), subset(order[:n_test])


def classifier_network(
    n_classes: int,
    n_inputs: int,
    n_hidden: int = 0,
    *,
    dt: float = 1e-3,
    synapse_basis=None,
    input_basis=None,
) -> Network:
    """A classifier: ``n_hidden`` hidden neurons, then ``n_classes`` visible output neurons.

    Every neuron receives the inputs; hidden neurons project to the outputs (no other synapses).
    Defaults: synapse basis :func:`probsnn.kernels.raw_lags` (2), input basis one exponential of
    τ = 5Δ over 10 lags.

    Raises:
        ValueError, TypeError: as :class:`probsnn.Network`; n_classes < 2.
    """
    n_classes = _checks.positive_int(n_classes, "n_classes", minimum=2)
    n_hidden = _checks.positive_int(n_hidden, "n_hidden", minimum=0)
    synapse_basis, input_basis = _bases(dt, synapse_basis, input_basis)
    n = n_hidden + n_classes
    connectivity = np.zeros((n, n), bool)
    connectivity[:n_hidden, n_hidden:] = True
    return Network(
        n,
        synapse_basis,
        input_basis=input_basis,
        n_inputs=n_inputs,
        dt=dt,
        connectivity=connectivity,
        visible=np.arange(n) >= n_hidden,
    )


def wta_classifier_network(
    n_classes: int,
    n_inputs: int,
    n_hidden: int = 0,
    *,
    dt: float = 1e-3,
    synapse_basis=None,
    input_basis=None,
) -> wta.WTANetwork:
    """A WTA classifier: ``n_hidden`` hidden WTA units, then one visible output unit, all with
    C = ``n_classes`` symbols; hidden units project to the output (defaults as
    :func:`classifier_network`)."""
    n_classes = _checks.positive_int(n_classes, "n_classes", minimum=2)
    n_hidden = _checks.positive_int(n_hidden, "n_hidden", minimum=0)
    synapse_basis, input_basis = _bases(dt, synapse_basis, input_basis)
    connectivity = np.zeros((n_hidden + 1, n_hidden + 1), bool)
    connectivity[:n_hidden, n_hidden] = True
    return wta.WTANetwork(
        n_hidden + 1,
        n_classes,
        synapse_basis,
        input_basis=input_basis,
        n_inputs=n_inputs,
        dt=dt,
        connectivity=connectivity,
        visible=np.arange(n_hidden + 1) == n_hidden,
    )


def wta_targets(dataset: SpikeDataset) -> np.ndarray:
    """The targets as symbols of one WTA output unit: ``(n, T, 1, n_classes)`` one-hot, the
    label's symbol wherever the label's target neuron fires (other neurons never fire)."""
    return dataset.targets[:, :, None, :]


def classify(spec, params, key, inputs, *, n_samples: int = 5) -> np.ndarray:
    """Class decisions of a trained network run freely from ``inputs``.

    The network (a :class:`probsnn.Network` with one visible neuron per class, or a
    :class:`probsnn.wta.WTANetwork` with one visible unit of one symbol per class) is sampled
    ``n_samples`` times per example; the decision is the class with the most output spikes,
    ties broken uniformly at random.

    Args:
        spec, params: the trained network. key: PRNG key. inputs: ``(n, T, F)`` spike trains.
        n_samples: runs per example (>= 1).

    Returns:
        ``(n,)`` int class indices.

    Raises:
        ValueError, TypeError: bad inputs, params or n_samples.
    """
    n_samples = _checks.positive_int(n_samples, "n_samples")
    inputs = _checks.spike_array(inputs, "inputs", spec.n_inputs, min_ndim=3)
    if inputs.ndim != 3:
        raise ValueError(f"inputs must have shape (n, T, {spec.n_inputs}), got {inputs.shape}")
    spec.check_params(params)
    return np.asarray(_classify(spec, params, key, jnp.asarray(inputs, jnp.float32), n_samples))


@partial(jax.jit, static_argnums=(0, 4))
def _classify(spec, params, key, inputs, n_samples):
    n, n_steps = inputs.shape[:2]
    sample_key, tie_key = jax.random.split(key)
    repeated = jnp.repeat(inputs, n_samples, axis=0)
    if isinstance(spec, wta.WTANetwork):
        spikes = wta.sample(spec, params, sample_key, n_steps, n * n_samples, repeated)
        outputs = spikes[:, :, np.flatnonzero(spec.visible)[0], :]
    else:
        spikes = sample(spec, params, sample_key, n_steps, n * n_samples, repeated)
        outputs = spikes[..., np.flatnonzero(spec.visible)]
    counts = jnp.sum(outputs.reshape(n, -1, outputs.shape[-1]), axis=1, dtype=jnp.float32)
    return jnp.argmax(counts + jax.random.uniform(tie_key, counts.shape, maxval=0.5), axis=-1)


def accuracy(predictions, labels) -> tuple[float, float]:
    """Fraction correct and its binomial standard error sqrt(a(1 − a)/n)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"predictions and labels must be equal non-empty (n,) arrays, "
            f"got {predictions.shape} and {labels.shape}"
        )
    a = float(np.mean(predictions == labels))
    return a, _binomial_se(a, labels.size)


def _binomial_se(a: float, n: int) -> float:
    return float(np.sqrt(a * (1 - a) / n))


def logistic_regression_accuracy(train: SpikeDataset, test: SpikeDataset) -> float:
    """Held-out accuracy of a multinomial logistic regression (scikit-learn, default L2) on the
    input spike counts Σ_t s_{t,f} — the same encoding the networks see (divided by T, which
    only rescales the penalty, for a well-conditioned solve)."""
    linear_model = data._require("sklearn.linear_model", "scikit-learn")
    model = linear_model.LogisticRegression(max_iter=2000)
    model.fit(train.inputs.mean(axis=1), train.labels)
    return float(model.score(test.inputs.mean(axis=1), test.labels))


class DigitsComparison(NamedTuple):
    """Held-out accuracies (with binomial standard errors) and training seconds per model.

    Attributes:
        accuracy: dict model → accuracy; models ``"hidden"``, ``"visible"``, ``"logistic"``
            and, with ``wta=True``, ``"wta"``.
        standard_error: dict model → sqrt(a(1 − a)/n_test).
        seconds: dict model → wall-clock training time (s, compilation included).
        chance: 1 / n_classes. n_test: held-out examples.
        hidden_fit: the :class:`~probsnn.inference.FitResult` of the hidden network (per-epoch
            ``loss`` = −ELBO per example, ``elbo``, … in its history).
        hidden_spec, hidden_params: the trained network with hidden neurons.
    """

    accuracy: dict
    standard_error: dict
    seconds: dict
    chance: float
    n_test: int
    hidden_fit: FitResult
    hidden_spec: Network
    hidden_params: Params


def compare_digit_classifiers(
    key,
    train: SpikeDataset,
    test: SpikeDataset,
    *,
    n_hidden: int = 20,
    epochs: int = 10,
    batch_size: int = 50,
    n_samples: int = 2,
    learning_rate: float = 0.02,
    l2: float = 1.0,
    n_test_samples: int = 5,
    wta_outputs: bool = False,
    progress: bool = False,
) -> DigitsComparison:
    """Train and test the classifiers of the module docstring on one split.

    Args:
        key: PRNG key (initialisation, hidden samples, test runs).
        train, test: from :func:`split_dataset`.
        n_hidden: hidden neurons (>= 1). epochs, batch_size, n_samples, learning_rate: the
            variational training (Adam on the rule's gradient of −ELBO, K = ``n_samples``
            hidden completions per example). l2: ridge penalty of the fully visible ML fit.
        n_test_samples: free runs per test example. wta_outputs: also train the WTA-output
            network (no hidden units: maximum likelihood by
            :func:`~probsnn.inference.latent.trainer.wta_trainer`).
        progress: show the trainers' progress bars.

    Returns:
        :class:`DigitsComparison`.
    """
    n_hidden = _checks.positive_int(n_hidden, "n_hidden")
    n_classes, n_inputs, dt = len(train.classes), train.inputs.shape[-1], train.dt
    init_key, fit_key, test_key, wta_key = jax.random.split(key, 4)
    accuracies, seconds = {}, {}

    def evaluate(name, spec, params):
        predictions = classify(spec, params, test_key, test.inputs, n_samples=n_test_samples)
        accuracies[name] = accuracy(predictions, test.labels)[0]

    began = time.perf_counter()
    visible_spec = classifier_network(n_classes, n_inputs, 0, dt=dt)
    visible_params = fit_ml(visible_spec, train.targets, train.inputs, l2=l2).params
    seconds["visible"] = time.perf_counter() - began
    evaluate("visible", visible_spec, visible_params)

    began = time.perf_counter()
    hidden_spec = classifier_network(n_classes, n_inputs, n_hidden, dt=dt)
    params = hidden_spec.init_params(init_key, rate=100.0)
    trainer = variational_trainer(hidden_spec, optax.adam(learning_rate), n_samples=n_samples)
    hidden_fit = fit(
        trainer,
        params,
        (train.targets, train.inputs),
        key=fit_key,
        epochs=epochs,
        batch_size=batch_size,
        progress=progress,
    )
    seconds["hidden"] = time.perf_counter() - began
    evaluate("hidden", hidden_spec, hidden_fit.params)

    began = time.perf_counter()
    accuracies["logistic"] = logistic_regression_accuracy(train, test)
    seconds["logistic"] = time.perf_counter() - began

    if wta_outputs:
        began = time.perf_counter()
        wta_spec = wta_classifier_network(n_classes, n_inputs, 0, dt=dt)
        start = wta_spec.init_params(init_key, rate=100.0)
        wta_fit = fit(
            wta_trainer(wta_spec, optax.adam(learning_rate), n_samples=1),
            start,
            (wta_targets(train), train.inputs),
            key=wta_key,
            epochs=epochs,
            batch_size=batch_size,
            progress=progress,
        )
        seconds["wta"] = time.perf_counter() - began
        evaluate("wta", wta_spec, wta_fit.params)

    n_test = len(test.labels)
    errors = {name: _binomial_se(a, n_test) for name, a in accuracies.items()}
    return DigitsComparison(
        accuracy=accuracies,
        standard_error=errors,
        seconds=seconds,
        chance=1.0 / n_classes,
        n_test=n_test,
        hidden_fit=hidden_fit,
        hidden_spec=hidden_spec,
        hidden_params=hidden_fit.params,
    )


def _check_classes(classes) -> np.ndarray:
    array = np.asarray(classes)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"classes must be a 1-D sequence of digits, got {classes!r}")
    distinct = len(set(array.tolist())) == array.size
    if array.size < 2 or not distinct or array.min() < 0 or array.max() > 9:
        raise ValueError(f"classes must be at least two distinct digits in 0..9, got {classes!r}")
    return array.astype(np.int32)


def _bases(dt, synapse_basis, input_basis):
    dt = _checks.positive_float(dt, "dt")
    synapse_basis = kernels.raw_lags(2) if synapse_basis is None else synapse_basis
    input_basis = kernels.exponential(5 * dt, 10, dt) if input_basis is None else input_basis
    return synapse_basis, input_basis
