"""Digits as spike trains: the encoded dataset, the decision rule, and held-out accuracy of the
network with hidden neurons beside a fully visible network and a logistic regression."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from probsnn.compare import classifiers as tasks


def test_dataset_encodes_images_and_targets():
    dataset = tasks.digits_dataset(jax.random.key(0), classes=(3, 8), n_steps=12)
    n = len(dataset.labels)
    assert dataset.inputs.shape == (n, 12, 64) and dataset.inputs.dtype == np.uint8
    assert dataset.targets.shape == (n, 12, 2) and dataset.targets.dtype == np.uint8
    np.testing.assert_array_equal(dataset.classes, [3, 8])
    images, digits = ps.data.load_digits()
    assert n == np.isin(digits, [3, 8]).sum()
    # only the label's output neuron fires; the rate code keeps blank pixels silent
    wrong = dataset.targets[np.arange(n), :, 1 - dataset.labels]
    assert wrong.sum() == 0 and dataset.targets.sum() > 0
    kept = images[np.isin(digits, [3, 8])].reshape(n, 64)
    assert dataset.inputs.sum(1)[kept == 0].sum() == 0
    train, test = tasks.split_dataset(dataset, 0.25, jax.random.key(1))
    assert len(test.labels) == round(0.25 * n) and len(train.labels) + len(test.labels) == n
    assert test.dt == dataset.dt == 1e-3


def test_classify_counts_output_spikes():
    """A visible network where input k drives only output k: inputs firing on channel k are
    classified as k, for the binary and the WTA output layer alike."""
    n_classes = 3
    spec = tasks.classifier_network(n_classes, n_classes)
    params = spec.init_params(jax.random.key(0), rate=5.0, weight_scale=0.0, refractory=0.0)
    params = params._replace(c=params.c.at[:, :, 0].set(8.0 * jnp.eye(n_classes)))
    labels = np.array([0, 1, 2, 2, 1, 0])
    inputs = np.zeros((6, 15, n_classes), np.uint8)
    inputs[np.arange(6), :, labels] = 1
    np.testing.assert_array_equal(tasks.classify(spec, params, jax.random.key(1), inputs), labels)
    unit_spec = tasks.wta_classifier_network(n_classes, n_classes)
    unit = unit_spec.init_params(jax.random.key(0), rate=5.0, weight_scale=0.0, refractory=0.0)
    unit = unit._replace(c=unit.c.at[:, 0, :, 0].set(8.0 * jnp.eye(n_classes)))
    got = tasks.classify(unit_spec, unit, jax.random.key(2), inputs)
    np.testing.assert_array_equal(got, labels)
    assert tasks.accuracy(got, labels) == (1.0, 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least two distinct digits"):
        tasks.digits_dataset(jax.random.key(0), classes=(1, 1))
    with pytest.raises(ValueError, match="at least two distinct digits"):
        tasks.digits_dataset(jax.random.key(0), classes=(3, 10))
    with pytest.raises(TypeError, match="classes must be a 1-D sequence"):
        tasks.digits_dataset(jax.random.key(0), classes=(0.5, 1.0))
    dataset = tasks.digits_dataset(jax.random.key(0), classes=(0, 1), n_steps=4)
    with pytest.raises(ValueError, match="test_fraction must leave both parts"):
        tasks.split_dataset(dataset, 1.0, jax.random.key(1))
    spec = tasks.classifier_network(2, 64)
    params = spec.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match=r"inputs must have shape .* at least 3 dimensions"):
        tasks.classify(spec, params, jax.random.key(0), dataset.inputs[0])
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        tasks.classify(spec, params, jax.random.key(0), dataset.inputs, n_samples=0)
    with pytest.raises(ValueError, match="equal non-empty"):
        tasks.accuracy(np.zeros(3), np.zeros(4))


@pytest.mark.slow
def test_hidden_network_classifies_held_out_digits_well_above_chance():
    """Three digits, T = 10 bins, a few epochs: every model beats chance (1/3) by more than five
    binomial standard errors of a chance-level classifier, and the network with hidden neurons
    is within four standard errors of the fully visible one."""
    dataset = tasks.digits_dataset(jax.random.key(0), classes=(0, 1, 7), n_steps=10)
    train, test = tasks.split_dataset(dataset, 0.3, jax.random.key(1))
    result = tasks.compare_digit_classifiers(
        jax.random.key(2), train, test, n_hidden=8, epochs=4, batch_size=32
    )
    chance_se = np.sqrt(result.chance * (1 - result.chance) / result.n_test)
    for name, value in result.accuracy.items():
        assert value > result.chance + 5 * chance_se, (name, result.accuracy)
    gap = result.accuracy["visible"] - result.accuracy["hidden"]
    se = np.hypot(result.standard_error["visible"], result.standard_error["hidden"])
    assert gap < 4 * max(se, 1 / result.n_test), result.accuracy
    elbo = result.hidden_fit.history["elbo"]
    assert elbo[-1] > elbo[0]
