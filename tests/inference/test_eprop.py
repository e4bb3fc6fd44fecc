"""E-prop (inference/deterministic/eprop.py) against BPTT through probsnn.lif.

The reference is jax.grad of the per-bin cross-entropy through the network's own simulation: it
shares nothing with e-prop's forward-mode eligibility recursions but the network's step.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probsnn import lif
from probsnn.inference import fit
from probsnn.inference.deterministic import eprop


def per_bin_loss(spec, params, inputs, labels, key=None):
    """Mean over bins and trials of −log softmax(y_t)[label], through lif.simulate."""
    voltage = lif.simulate(spec, params, inputs, key).voltage[-1]
    log_p = jax.nn.log_softmax(voltage, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None, None], axis=-1))


def bptt_gradient(spec, params, inputs, labels):
    return jax.grad(lambda p: per_bin_loss(spec, p, inputs, labels))(params)


def sampled_loss(spec, params, inputs, labels, key):
    """The same loss at T > 0 with the bin keys e-prop uses (fold_in(key, t)), through
    lif.layer_step: its gradient is the straight-through gradient of the same samples."""
    states = lif.initial_state(spec, inputs.shape[0], inputs.dtype)

    def step(states, slices):
        t, drive = slices
        hidden, out = lif.layer_step(
            spec, 0, params[0], states[0], drive, jax.random.fold_in(key, t)
        )
        readout, (_, voltage, _, _) = lif.layer_step(spec, 1, params[1], states[1], out[0], None)
        return (hidden, readout), (voltage, out[0])

    bins = jnp.arange(inputs.shape[1])
    _, (voltage, spikes) = jax.lax.scan(step, states, (bins, jnp.swapaxes(inputs, 0, 1)))
    log_p = jax.nn.log_softmax(voltage, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels[None, :, None], axis=-1)), spikes


def vector(tree):
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)])


def cosine(a, b):
    a, b = vector(a), vector(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def problem(spec, dtype=jnp.float64, n_batch=3, n_steps=40, recurrent_gain=0.5, seed=0):
    """Params with a drive strong enough for ~10-40 % spiking bins, 0/1 inputs, labels."""
    keys = jax.random.split(jax.random.key(seed), 3)
    params = lif.init_params(spec, keys[0], gain=3.0, recurrent_gain=recurrent_gain)
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    shape = (n_batch, n_steps, spec.n_inputs)
    inputs = jax.random.bernoulli(keys[1], 0.3, shape).astype(dtype)
    labels = jax.random.randint(keys[2], (n_batch,), 0, spec.sizes[-1])
    return params, inputs, labels


def network(**options):
    return lif.LIFNetwork((3, 5, 3), output="membrane", surrogate_scale=0.5, **options)


FEEDFORWARD_CASES = [
    {"neuron": "lif"},
    {"neuron": "alif"},
    {"neuron": "lif", "reset": "zero"},
    {"neuron": "alif", "reset": "zero", "tau_syn": 0.0},
    {"neuron": "lif", "tau_syn": 0.0, "detach_reset": True},
    {"neuron": "alif", "reset": "zero", "detach_reset": True},
    {"neuron": "alif", "refractory": 2, "surrogate": "triangle"},
    {"neuron": "srm0"},
]


@pytest.mark.parametrize("options", FEEDFORWARD_CASES, ids=lambda o: "-".join(map(str, o.values())))
def test_equals_bptt_without_recurrent_weights(x64, options):
    spec = network(**options)
    params, inputs, labels = problem(spec)
    rate = float(lif.simulate(spec, params, inputs).spikes[0].mean())
    assert 0.05 < rate < 0.5  # spikes, resets and adaptation are exercised
    estimate = eprop.eprop_gradient(spec, params, inputs, labels)
    exact = bptt_gradient(spec, params, inputs, labels)
    assert jax.tree.structure(estimate) == jax.tree.structure(exact)
    assert np.linalg.norm(vector(exact[0])) > 1e-3  # the hidden layer's gradient is not trivial
    for got, want in zip(jax.tree.leaves(estimate), jax.tree.leaves(exact), strict=True):
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_equals_bptt_with_self_connections_only(x64):
    # the neuron's own previous spike enters its current through W^rec_jj: neuron-local, exact
    spec = network(neuron="alif", recurrent=True)
    params, inputs, labels = problem(spec)
    diagonal = jnp.diag(jnp.array([0.8, -0.5, 0.3, 0.6, -0.2]))
    params = (params[0]._replace(w_rec=diagonal), params[1])
    estimate = eprop.eprop_gradient(spec, params, inputs, labels)
    exact = bptt_gradient(spec, params, inputs, labels)
    for got, want in zip(jax.tree.leaves(estimate), jax.tree.leaves(exact), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_equals_straight_through_gradient_of_the_same_samples(x64, neuron):
    spec = network(neuron=neuron, temperature=0.3)
    params, inputs, labels = problem(spec)
    key = jax.random.key(7)
    (_, spikes), exact = jax.value_and_grad(
        lambda p: sampled_loss(spec, p, inputs, labels, key), has_aux=True
    )(params)
    assert 0.05 < float(spikes.mean()) < 0.6
    estimate = eprop.eprop_gradient(spec, params, inputs, labels, key=key)
    for got, want in zip(jax.tree.leaves(estimate), jax.tree.leaves(exact), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    other = eprop.eprop_gradient(spec, params, inputs, labels, key=jax.random.key(8))
    assert not np.allclose(vector(other), vector(estimate))  # the spikes are sampled


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_recurrent_network_gradient_points_like_bptt(x64, neuron):
    spec = network(neuron=neuron, recurrent=True)
    params, inputs, labels = problem(spec, n_batch=4, n_steps=60, recurrent_gain=2.0, seed=3)
    estimate = eprop.eprop_gradient(spec, params, inputs, labels)
    exact = bptt_gradient(spec, params, inputs, labels)
    total, hidden = cosine(estimate, exact), cosine(estimate[0], exact[0])
    print(f"e-prop vs BPTT, recurrent {neuron}: cosine {total:.4f} (hidden layer {hidden:.4f})")
    assert hidden < 1 - 1e-6  # the recurrence is active: e-prop is an approximation here
    assert total > 0.5
    assert hidden > 0.5
    for got, want in zip(jax.tree.leaves(estimate[1]), jax.tree.leaves(exact[1]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)  # the read-out is exact


def test_feedback_matrix_sets_the_hidden_learning_signal(x64):
    spec = network(neuron="lif")
    params, inputs, labels = problem(spec)
    symmetric = eprop.eprop_gradient(spec, params, inputs, labels)
    explicit = eprop.eprop_gradient(spec, params, inputs, labels, feedback_matrix=params[1].w_in)
    np.testing.assert_allclose(vector(explicit), vector(symmetric), rtol=1e-12)
    matrix = eprop.random_feedback(spec, jax.random.key(4), jnp.float64)
    assert matrix.shape == (5, 3)
    random = eprop.eprop_gradient(spec, params, inputs, labels, feedback_matrix=matrix)
    np.testing.assert_allclose(vector(random[1]), vector(symmetric[1]), rtol=1e-12)
    assert not np.allclose(vector(random[0]), vector(symmetric[0]))


def test_chunks_continue_the_carry(x64):
    spec = network(neuron="alif", recurrent=True, temperature=0.3)
    params, inputs, labels = problem(spec)
    key = jax.random.key(2)
    whole = eprop._eprop(spec, params, None, inputs, labels, key)
    advance = jax.jit(eprop._advance, static_argnums=0)
    carry = eprop._start(spec, inputs.shape[0], jnp.float64)
    for chunk in (inputs[:, :20], inputs[:, 20:]):  # one compilation for both chunks
        carry = advance(spec, params, None, carry, chunk, labels, key)
    chunked = eprop._finish(spec, params, carry)
    np.testing.assert_allclose(vector(chunked), vector(whole), rtol=1e-12, atol=1e-15)


def toy_task(n_items=64, n_steps=25, seed=0):
    """Two classes: channels 0-1 (class 0) or 2-3 (class 1) fire at 0.5 per bin, else 0.05."""
    keys = jax.random.split(jax.random.key(seed))
    labels = jax.random.randint(keys[0], (n_items,), 0, 2)
    loud = jnp.where(labels[:, None] == 0, jnp.array([1, 1, 0, 0]), jnp.array([0, 0, 1, 1]))
    rates = jnp.where(loud == 1, 0.5, 0.05)[:, None, :]
    inputs = jax.random.bernoulli(keys[1], rates, (n_items, n_steps, 4))
    return inputs.astype(jnp.float32), labels


@pytest.mark.parametrize("feedback", ["symmetric", "random"])
def test_fit_learns_a_toy_task(feedback):
    spec = lif.LIFNetwork((4, 16, 2), neuron="alif", recurrent=True, output="membrane")
    params = lif.init_params(spec, jax.random.key(1), gain=2.0)
    key = jax.random.key(5) if feedback == "random" else None
    trainer = eprop.eprop_trainer(spec, optax.adam(2e-2), feedback=feedback, key=key)
    inputs, labels = toy_task(n_items=48)
    state = trainer.init(params)
    first = trainer.step(None, state, (inputs, labels))[1]
    np.testing.assert_allclose(first.loss, per_bin_loss(spec, params, inputs, labels), rtol=1e-5)
    rate = lif.simulate(spec, params, inputs).spikes[0].mean()
    np.testing.assert_allclose(first.spike_rate, rate, rtol=1e-5)
    result = fit(
        trainer,
        params,
        (inputs, labels),
        key=jax.random.key(0),
        epochs=10,
        batch_size=16,
        progress=False,
    )
    loss = result.history["loss"]
    print(
        f"{feedback} feedback: loss {loss[0]:.3f} -> {loss[-1]:.3f}, "
        f"accuracy {result.history['accuracy'][-1]:.2f}"
    )
    assert loss[-1] < 0.6 * loss[0]
    assert result.history["accuracy"][-1] >= 0.9
    if feedback == "random":
        np.testing.assert_array_equal(result.state.feedback, trainer.init(params).feedback)


def temp_bytes(function, *args):
    return function.lower(*args).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_bins():
    spec = lif.LIFNetwork((3, 5, 3), neuron="lif", output="membrane")
    params = lif.init_params(spec, jax.random.key(1))
    trainer = eprop.eprop_trainer(spec, optax.sgd(1e-2))
    state = trainer.init(params)

    @jax.jit
    def bptt(params, inputs, labels):
        def loss(p):
            voltage = lif._run(spec, p, inputs, None, None).voltage[-1]
            log_p = jax.nn.log_softmax(voltage, axis=-1)
            return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None, None], axis=-1))

        return jax.grad(loss)(params)

    sizes = {}
    for n_steps in (1_000, 100_000):
        batch = (
            jax.ShapeDtypeStruct((2, n_steps, 3), jnp.uint8),  # spikes, cast bin by bin
            jax.ShapeDtypeStruct((2,), jnp.int32),
        )
        floats = jax.ShapeDtypeStruct((2, n_steps, 3), jnp.float32)
        sizes[n_steps] = (
            temp_bytes(trainer.step.__wrapped__, None, state, batch),
            temp_bytes(bptt, params, floats, batch[1]),
        )
    print(f"temporary bytes (e-prop, BPTT) at T = 1,000: {sizes[1_000]}, 100,000: {sizes[100_000]}")
    assert sizes[100_000][0] == sizes[1_000][0]
    assert sizes[100_000][1] > 50 * sizes[1_000][1]


def test_stochastic_step_compiles_once():
    spec = lif.LIFNetwork((4, 6, 2), output="membrane", temperature=0.2)
    trainer = eprop.eprop_trainer(spec, optax.sgd(1e-2))
    state = trainer.init(lif.init_params(spec, jax.random.key(0)))
    inputs, labels = toy_task(n_items=8)
    losses = []
    for key, rows in zip(
        jax.random.split(jax.random.key(1)), (slice(0, 4), slice(4, 8)), strict=True
    ):
        state, info = trainer.step(key, state, (inputs[rows], labels[rows]))
        losses.append(info.loss)
    assert trainer.step._cache_size() == 1
    assert info.loss.shape == info.accuracy.shape == info.spike_rate.shape == ()
    assert np.all(np.isfinite(losses))


def test_bad_arguments_are_named():
    spec = network()
    params, inputs, labels = problem(spec, dtype=jnp.float32)
    with pytest.raises(TypeError, match=r"spec must be a probsnn\.lif\.LIFNetwork"):
        eprop.eprop_gradient("lif", params, inputs, labels)
    for bad in (lif.LIFNetwork((3, 5, 3)), lif.LIFNetwork((3, 5, 4, 3), output="membrane")):
        with pytest.raises(ValueError, match="one spiking layer under a membrane read-out"):
            eprop.eprop_trainer(bad, optax.sgd(0.1))
    with pytest.raises(TypeError, match="optimizer"):
        eprop.eprop_trainer(spec, "adam")
    with pytest.raises(ValueError, match="feedback must be one of"):
        eprop.eprop_trainer(spec, optax.sgd(0.1), feedback="transpose")
    with pytest.raises(TypeError, match="key is required with feedback='random'"):
        eprop.eprop_trainer(spec, optax.sgd(0.1), feedback="random")
    with pytest.raises(ValueError, match="key is only used with feedback='random'"):
        eprop.eprop_trainer(spec, optax.sgd(0.1), key=jax.random.key(0))
    with pytest.raises(ValueError, match="inputs must end with dimensions"):
        eprop.eprop_gradient(spec, params, inputs[..., :2], labels)
    with pytest.raises(ValueError, match=r"inputs must have shape \(B, T, M\)"):
        eprop.eprop_gradient(spec, params, inputs[None], labels)
    with pytest.raises(ValueError, match="inputs must be finite"):
        eprop.eprop_gradient(spec, params, inputs.at[0, 0, 0].set(jnp.nan), labels)
    with pytest.raises(TypeError, match="labels must be an integer array"):
        eprop.eprop_gradient(spec, params, inputs, labels.astype(float))
    with pytest.raises(ValueError, match=r"labels must have shape \(B,\)"):
        eprop.eprop_gradient(spec, params, inputs, labels[:2])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), found 3"):
        eprop.eprop_gradient(spec, params, inputs, labels.at[0].set(3))
    with pytest.raises(ValueError, match="feedback_matrix must have the shape of W"):
        eprop.eprop_gradient(spec, params, inputs, labels, feedback_matrix=jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"params\.w_in must have shape"):
        eprop.eprop_gradient(spec, (params[1], params[1]), inputs, labels)
    hot = network(temperature=0.5)
    with pytest.raises(TypeError, match="key is required at temperature"):
        eprop.eprop_gradient(hot, params, inputs, labels)
    trainer = eprop.eprop_trainer(hot, optax.sgd(0.1))
    state = trainer.init(params)
    with pytest.raises(TypeError, match=r"jax.random.key\(3\)"):
        trainer.step(3, state, (inputs, labels))
    with pytest.raises(TypeError, match="batch must be a pair"):
        trainer.step(jax.random.key(0), state, inputs)
    with pytest.raises(ValueError, match="labels must lie in"):
        trainer.step(jax.random.key(0), state, (inputs, labels.at[1].set(-1)))
