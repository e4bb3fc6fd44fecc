"""ANN → SNN conversion (inference/deterministic/conversion.py): the MLP and its trainer, the
integrate-and-fire conversion with data-based normalisation, the Bernoulli conversion and its
fine-tuning estimator, against numpy oracles, exact enumeration and binomial tests."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probsnn import data as datasets
from probsnn import lif
from probsnn.inference import fit
from probsnn.inference.deterministic import conversion as cv

# ---------------------------------------------------------------------------------------------
# helpers and oracles


def numpy_mlp(rng, sizes, scale=1.0):
    return tuple(
        cv.MLPLayer(scale * rng.normal(size=(m, n)) / np.sqrt(m), 0.3 * rng.normal(size=n))
        for m, n in itertools.pairwise(sizes)
    )


def numpy_forward(params, x, activation):
    phi = {"relu": lambda a: np.maximum(a, 0), "sigmoid": lambda a: 1 / (1 + np.exp(-a))}
    a = np.asarray(x, np.float64)
    for layer in params[:-1]:
        a = phi[activation](a @ np.asarray(layer.weight) + np.asarray(layer.bias))
    return a @ np.asarray(params[-1].weight) + np.asarray(params[-1].bias)


def numpy_cross_entropy(params, x, labels, activation):
    logits = numpy_forward(params, x, activation)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels].mean()


def numpy_if_network(params, inputs):
    """Integrate-and-fire loop (tau_mem = inf, tau_syn = 0, subtract reset, threshold 1):
    output counts and residual membranes after every bin, ``(B, T, C)`` each."""
    n_batch, n_steps, _ = inputs.shape
    voltages = [np.zeros((n_batch, layer.bias.shape[0])) for layer in params]
    previous = [np.zeros_like(v) for v in voltages]
    counts, residuals = [], []
    total = np.zeros_like(voltages[-1])
    for t in range(n_steps):
        drive = inputs[:, t]
        for layer, params_l in enumerate(params):
            w, b = np.asarray(params_l.w_in), np.asarray(params_l.bias)
            voltages[layer] = voltages[layer] + drive @ w + b - previous[layer]
            previous[layer] = (voltages[layer] > 1.0).astype(float)
            drive = previous[layer]
        total = total + previous[-1]
        counts.append(total.copy())
        residuals.append(voltages[-1] - previous[-1])
    return np.stack(counts, 1), np.stack(residuals, 1)


def lexicographic(counts, residual):
    """argmax of (count, residual) in numpy."""
    best = counts.max(axis=-1, keepdims=True)
    return np.argmax(np.where(counts == best, residual, -np.inf), axis=-1)


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)])


@pytest.fixture(scope="module")
def digits():
    images, labels = datasets.load_digits()
    x = images.reshape(len(images), -1)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:800], order[800:1200]
    return x[train], labels[train], x[test], labels[test]


def train_mlp(x, labels, activation, learning_rate, epochs, hidden=32, gain=1.0):
    params = cv.init_mlp((x.shape[1], hidden, 10), jax.random.key(0), gain=gain)
    trainer = cv.mlp_trainer(optax.adam(learning_rate), activation=activation)
    result = fit(
        trainer,
        params,
        (x, labels),
        key=jax.random.key(1),
        epochs=epochs,
        batch_size=32,
        progress=False,
    )
    return result


@pytest.fixture(scope="module")
def relu_mlp(digits):
    x, labels, _, _ = digits
    return train_mlp(x, labels, "relu", 3e-3, 20, gain=1.4)


# ---------------------------------------------------------------------------------------------
# the MLP


@pytest.mark.parametrize("activation", cv.ACTIVATIONS)
def test_mlp_forward_and_trainer_gradient_match_numpy(x64, activation):
    rng = np.random.default_rng(1)
    params = numpy_mlp(rng, (3, 4, 2))
    x, labels = rng.normal(size=(5, 3)), np.array([0, 1, 1, 0, 1])
    np.testing.assert_allclose(
        cv.mlp_forward(params, x, activation), numpy_forward(params, x, activation), rtol=1e-12
    )
    trainer = cv.mlp_trainer(optax.sgd(1.0), activation=activation)
    state = trainer.init(params)
    new, info = trainer.step(None, state, (x, labels))
    gradient = flat(state.params) - flat(new.params)
    assert info.loss == pytest.approx(numpy_cross_entropy(params, x, labels, activation), 1e-12)
    vector, eps = flat(params), 1e-6
    shapes = [np.shape(leaf) for leaf in jax.tree.leaves(params)]

    def unflatten(v):
        leaves, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            leaves.append(v[start : start + size].reshape(shape))
            start += size
        return jax.tree.unflatten(jax.tree.structure(params), leaves)

    differences = [
        (
            numpy_cross_entropy(unflatten(vector + eps * e), x, labels, activation)
            - numpy_cross_entropy(unflatten(vector - eps * e), x, labels, activation)
        )
        / (2 * eps)
        for e in np.eye(len(vector))
    ]
    np.testing.assert_allclose(gradient, differences, atol=1e-7)


def test_mlp_trainer_learns_digits(relu_mlp, digits):
    _, _, x_test, y_test = digits
    assert relu_mlp.history["loss"][-1] < 0.2 * relu_mlp.history["loss"][0]
    assert cv.mlp_accuracy(relu_mlp.params, x_test, y_test) > 0.9


# ---------------------------------------------------------------------------------------------
# integrate-and-fire conversion


def test_normalisation_scales_are_activation_percentiles():
    rng = np.random.default_rng(2)
    params = numpy_mlp(rng, (5, 6, 3))
    x = rng.random((200, 5))
    hidden = np.maximum(x @ params[0].weight + params[0].bias, 0)
    output = np.maximum(hidden @ params[1].weight + params[1].bias, 0)
    for p in (50.0, 99.9, 100.0):
        expected = [np.percentile(a[a > 0], p) for a in (hidden, output)]
        np.testing.assert_allclose(cv.normalisation_scales(params, x, percentile=p), expected, 1e-5)


def test_dead_layer_gets_unit_scale():
    params = (cv.MLPLayer(-np.ones((2, 3)), -np.ones(3)), cv.MLPLayer(np.ones((3, 2)), np.ones(2)))
    np.testing.assert_allclose(cv.normalisation_scales(params, np.ones((4, 2))), [1.0, 1.0])


def test_if_rates_are_clipped_normalised_activations():
    """With a constant drive d per bin, reset by subtraction keeps T·clip(d, 0, 1) − count in
    [0, 1] (the residual): the first layer's counts are within one spike of T a/λ, clipped."""
    rng = np.random.default_rng(3)
    params = numpy_mlp(rng, (5, 8, 3), scale=2.0)
    calibration = rng.random((100, 5))
    spec, converted = cv.convert_to_if(params, calibration, percentile=60.0)
    assert (spec.alpha, spec.alpha_syn, spec.reset, spec.threshold) == (1.0, 0.0, "subtract", 1.0)
    x = rng.random((20, 5))
    n_steps = 200
    record = lif.simulate(spec, converted, np.repeat(x[:, None], n_steps, axis=1))
    counts = np.asarray(record.spikes[0]).sum(axis=1)
    scale = cv.normalisation_scales(params, calibration, percentile=60.0)[0]
    drive = np.maximum(x @ params[0].weight + params[0].bias, 0) / scale
    expected = n_steps * np.clip(drive, 0, 1)
    assert np.all((expected - counts >= -1e-3) & (expected - counts <= 1 + 1e-3))
    assert np.any(drive > 1) and np.any((drive > 0.05) & (drive < 0.95))  # both regimes


def test_classify_and_accuracy_vs_steps_match_numpy_if_loop(x64):
    rng = np.random.default_rng(4)
    params = numpy_mlp(rng, (6, 10, 4), scale=3.0)
    spec, converted = cv.convert_to_if(params, rng.random((50, 6)))
    inputs = (rng.random((300, 5, 6)) < 0.5).astype(np.uint8)
    labels = rng.integers(0, 4, 300)
    counts, residuals = numpy_if_network(converted, inputs.astype(float))
    expected = [lexicographic(counts[:, n - 1], residuals[:, n - 1]) for n in range(1, 6)]
    np.testing.assert_array_equal(cv.classify(spec, converted, inputs), expected[-1])
    accuracies = cv.accuracy_vs_steps(spec, converted, inputs, labels, steps=(1, 2, 3, 4, 5))
    np.testing.assert_allclose(accuracies, [np.mean(e == labels) for e in expected])
    # ties happen, and breaking them by the residual changes predictions
    final = counts[:, -1]
    assert np.any((final == final.max(axis=1, keepdims=True)).sum(axis=1) > 1)
    assert np.any(np.argmax(final, axis=1) != expected[-1])


def test_if_accuracy_approaches_the_anns_as_bins_grow(relu_mlp, digits):
    x_train, _, x_test, y_test = digits
    ann = cv.mlp_accuracy(relu_mlp.params, x_test, y_test)
    spec, converted = cv.convert_to_if(relu_mlp.params, x_train)
    n_steps, steps = 64, (1, 2, 4, 8, 16, 32, 64)
    analog = np.repeat(x_test[:, None], n_steps, axis=1)
    spikes = (np.random.default_rng(5).random(analog.shape) < analog).astype(np.uint8)
    tolerance = 2 * np.sqrt(ann * (1 - ann) / len(y_test))  # two binomial SDs
    for inputs, final_gap in ((analog, tolerance), (spikes, 2 * tolerance)):
        accuracies = cv.accuracy_vs_steps(spec, converted, inputs, y_test, steps=steps)
        assert accuracies[0] < ann - 0.3  # nothing reaches the output in the first bin
        assert np.all(np.diff(accuracies) >= -tolerance), accuracies
        assert accuracies[-1] >= ann - final_gap, (accuracies, ann)


# ---------------------------------------------------------------------------------------------
# Bernoulli conversion


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def assert_binomial(successes, trials, p):
    sd = np.sqrt(trials * p * (1 - p))
    assert np.all(np.abs(successes - trials * p) <= 4 * sd), (successes / trials, p)


def test_bernoulli_one_layer_fires_with_the_anns_probability():
    rng = np.random.default_rng(6)
    params = numpy_mlp(rng, (4, 3), scale=2.0)
    spec, converted = cv.convert_to_bernoulli(params)
    x = rng.random(4)
    inputs = np.broadcast_to(x, (2000, 5, 4))
    spikes = np.asarray(lif.simulate(spec, converted, inputs, jax.random.key(0)).spikes[0])
    p = sigmoid(x @ params[0].weight + params[0].bias)
    assert_binomial(spikes.sum(axis=(0, 1)), spikes.shape[0] * spikes.shape[1], p)


def test_bernoulli_deeper_layer_is_exact_in_expectation_not_mean_field():
    """Layer 2 fires with E_h σ(h W_2 + b_2) (enumerated), not with the ANN's
    σ(σ(x W_1 + b_1) W_2 + b_2)."""
    w1, b1 = np.array([[3.0, -3.0], [2.0, 2.5], [-1.0, 1.5]]), np.array([0.0, -1.0])
    w2, b2 = np.array([[4.0, -3.0], [4.0, 2.0]]), np.array([-4.0, 0.5])
    params = (cv.MLPLayer(w1, b1), cv.MLPLayer(w2, b2))
    spec, converted = cv.convert_to_bernoulli(params)
    x = np.array([0.6, 0.3, 0.8])
    p1 = sigmoid(x @ w1 + b1)
    exact = sum(
        np.prod(np.where(h, p1, 1 - p1)) * sigmoid(np.array(h) @ w2 + b2)
        for h in itertools.product((0, 1), repeat=2)
    )
    mean_field = sigmoid(p1 @ w2 + b2)
    record = lif.simulate(spec, converted, np.broadcast_to(x, (4000, 5, 3)), jax.random.key(1))
    trials = 4000 * 5
    hidden, output = (np.asarray(z).sum(axis=(0, 1)) for z in record.spikes)
    assert_binomial(hidden, trials, p1)
    assert_binomial(output, trials, exact)
    sd = np.sqrt(exact * (1 - exact) / trials)
    assert np.max(np.abs(mean_field - exact) / sd) > 8  # the Jensen gap is visible


# ---------------------------------------------------------------------------------------------
# fine-tuning


def tiny_bernoulli():
    params = (
        cv.MLPLayer(np.array([[1.5, -1.0], [0.5, 1.2], [-0.8, 0.7]]), np.array([-0.2, 0.1])),
        cv.MLPLayer(np.array([[2.0, -1.5], [-1.0, 1.8]]), np.array([0.3, -0.4])),
    )
    return cv.convert_to_bernoulli(params)


def enumerated_objectives(spec, params, x, y):
    """(−ELBO, −log p(y | x)) by enumerating the 2^(T·H) hidden patterns."""
    n_steps, n_hidden = x.shape[0], spec.sizes[1]
    patterns = np.array(list(itertools.product((0.0, 1.0), repeat=n_steps * n_hidden)))
    hidden = patterns.reshape(-1, n_steps, n_hidden)
    inputs = np.broadcast_to(x, (len(hidden), *x.shape))
    code = np.broadcast_to(
        cv.label_code(np.array(y), n_steps, spec.sizes[-1]), (len(hidden), n_steps, spec.sizes[-1])
    )
    hidden_spec = cv.bernoulli_network(spec.sizes[:2])
    log_h = lif.log_prob(hidden_spec, params[:1], inputs, (hidden,))
    log_hy = lif.log_prob(spec, params, inputs, (hidden, code))
    neg_elbo = -jnp.sum(jnp.exp(log_h) * (log_hy - log_h))
    return neg_elbo, -jax.nn.logsumexp(log_hy)


@pytest.mark.slow
def test_finetune_estimator_is_unbiased_against_enumeration(x64):
    spec, params = tiny_bernoulli()
    x, y = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), 1
    exact = flat(jax.grad(lambda p: enumerated_objectives(spec, p, x, y)[0])(params))
    marginal = flat(jax.grad(lambda p: enumerated_objectives(spec, p, x, y)[1])(params))
    neg_elbo, neg_log_lik = (float(v) for v in enumerated_objectives(spec, params, x, y))
    assert neg_log_lik < neg_elbo
    batch = (np.broadcast_to(x, (400, *x.shape)), np.full(400, y))
    for baseline in ("leave-one-out", 0.0):
        trainer = cv.bernoulli_finetune_trainer(
            spec, optax.sgd(1.0), n_samples=2, baseline=baseline
        )
        state = trainer.init(params)
        estimates, losses, bounds = [], [], []
        for key in jax.random.split(jax.random.key(2), 30):
            new, info = trainer.step(key, state, batch)
            estimates.append(flat(state.params) - flat(new.params))
            losses.append(float(info.loss))
            bounds.append(float(info.log_lik_bound))
        estimates = np.array(estimates)
        mean = estimates.mean(axis=0)
        se = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
        assert np.all(np.abs(mean - exact) <= 4 * se + 1e-12), (baseline, mean, exact, se)
        assert np.max(np.abs(mean - marginal) / (se + 1e-12)) > 8  # it targets the bound
        loss_se = np.std(losses, ddof=1) / np.sqrt(len(losses))
        assert abs(np.mean(losses) - neg_elbo) <= 4 * loss_se
        bound_se = np.std(bounds, ddof=1) / np.sqrt(len(bounds))
        assert -neg_elbo - 4 * bound_se <= np.mean(bounds) <= -neg_log_lik + 4 * bound_se


@pytest.mark.slow
def test_finetuning_does_not_lower_accuracy(digits):
    x_train, y_train, x_test, y_test = digits
    rng = np.random.default_rng(7)
    train_spikes = (rng.random((len(x_train), 20, 64)) < 0.6 * x_train[:, None]).astype(np.uint8)
    test_spikes = (rng.random((len(x_test), 20, 64)) < 0.6 * x_test[:, None]).astype(np.uint8)
    mlp = train_mlp(train_spikes.mean(axis=1), y_train, "sigmoid", 1e-2, 15).params
    spec, converted = cv.convert_to_bernoulli(mlp)
    trainer = cv.bernoulli_finetune_trainer(spec, optax.adam(1e-3), n_samples=4)
    tuned = fit(
        trainer,
        converted,
        (train_spikes, y_train),
        key=jax.random.key(3),
        epochs=5,
        batch_size=32,
        progress=False,
    )
    keys = jax.random.split(jax.random.key(4), 3)

    def accuracy(params):
        return np.mean(
            [
                cv.accuracy_vs_steps(spec, params, test_spikes, y_test, steps=(20,), key=k)[0]
                for k in keys
            ]
        )

    before, after = accuracy(converted), accuracy(tuned.params)
    sd = np.sqrt(2 * before * (1 - before) / (len(y_test) * len(keys)))
    assert after >= before - 2 * sd, (before, after)
    assert tuned.history["loss"][-1] < 0.7 * tuned.history["loss"][0]


def test_label_code():
    code = cv.label_code(np.array([[2, 0]]), 3, 4)
    assert code.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(code[0, 0], np.tile([0, 0, 1, 0], (3, 1)))
    np.testing.assert_array_equal(code[0, 1], np.tile([1, 0, 0, 0], (3, 1)))


# ---------------------------------------------------------------------------------------------
# bad inputs


def test_bad_inputs_are_named():
    rng = np.random.default_rng(8)
    params = numpy_mlp(rng, (3, 4, 2))
    x = rng.random((10, 3))
    with pytest.raises(ValueError, match="activation"):
        cv.mlp_forward(params, x, "tanh")
    with pytest.raises(ValueError, match="activation"):
        cv.mlp_trainer(optax.adam(1e-3), activation="softplus")
    with pytest.raises(TypeError, match="optimizer"):
        cv.mlp_trainer("adam")
    for percentile in (0.0, -5.0, 100.5):
        with pytest.raises(ValueError, match="percentile"):
            cv.convert_to_if(params, x, percentile=percentile)
    with pytest.raises(ValueError, match="percentile"):
        cv.convert_to_if(params, x, percentile=float("nan"))
    with pytest.raises(ValueError, match="calibration_x"):
        cv.convert_to_if(params, rng.random((10, 5)))
    with pytest.raises(ValueError, match="calibration_x"):
        cv.convert_to_if(params, np.zeros((0, 3)))
    _, lif_params = cv.convert_to_bernoulli(params)
    with pytest.raises(TypeError, match="MLPLayer"):
        cv.convert_to_if(lif_params, x)
    with pytest.raises(TypeError, match="params"):
        cv.convert_to_bernoulli({"weight": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"params\[1\].weight"):
        cv.convert_to_bernoulli((params[0], cv.MLPLayer(np.ones((5, 2)), np.ones(2))))
    with pytest.raises(ValueError, match="finite"):
        cv.mlp_forward((cv.MLPLayer(np.full((3, 2), np.nan), np.ones(2)),), x)
    with pytest.raises(ValueError, match="sizes"):
        cv.init_mlp((3,), jax.random.key(0))


def test_bad_trainer_and_classifier_inputs_are_named():
    rng = np.random.default_rng(9)
    params = numpy_mlp(rng, (3, 4, 2))
    spec, lif_params = cv.convert_to_bernoulli(params)
    if_spec, if_params = cv.convert_to_if(params, rng.random((10, 3)))
    inputs, labels = rng.random((6, 5, 3)), np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="n_samples >= 2"):
        cv.bernoulli_finetune_trainer(spec, optax.adam(1e-3), n_samples=1)
    with pytest.raises(ValueError, match="baseline"):
        cv.bernoulli_finetune_trainer(spec, optax.adam(1e-3), baseline="mean")
    with pytest.raises(ValueError, match="temperature"):
        cv.bernoulli_finetune_trainer(if_spec, optax.adam(1e-3))
    with pytest.raises(ValueError, match="hidden layer"):
        cv.bernoulli_finetune_trainer(cv.bernoulli_network((3, 2)), optax.adam(1e-3))
    trainer = cv.bernoulli_finetune_trainer(spec, optax.adam(1e-3))
    state = trainer.init(lif_params)
    with pytest.raises(ValueError, match="labels"):
        trainer.step(jax.random.key(0), state, (inputs, labels + 1))
    with pytest.raises(ValueError, match="inputs"):
        trainer.step(jax.random.key(0), state, (inputs[..., :2], labels))
    with pytest.raises(TypeError, match="key"):
        trainer.step(0, state, (inputs, labels))
    with pytest.raises(TypeError, match="key"):
        cv.classify(spec, lif_params, inputs)
    with pytest.raises(ValueError, match="steps"):
        cv.accuracy_vs_steps(if_spec, if_params, inputs, labels, steps=(2, 1))
    with pytest.raises(ValueError, match="steps"):
        cv.accuracy_vs_steps(if_spec, if_params, inputs, labels, steps=(1, 6))
    with pytest.raises(ValueError, match="labels"):
        cv.accuracy_vs_steps(if_spec, if_params, inputs, labels[:3])
    membrane = lif.LIFNetwork((3, 4, 2), output="membrane")
    with pytest.raises(ValueError, match="output"):
        cv.classify(membrane, lif.init_params(membrane, jax.random.key(0)), inputs)
    with pytest.raises(ValueError, match="labels"):
        cv.label_code(np.array([3]), 2, 3)
