"""Surrogate-gradient BPTT (probsnn.inference.deterministic.bptt).

What the gradient is, stated exactly. The network's spikes are z_t = H(m_t) in the forward pass;
backpropagation uses h(m_t) = S'(m_t) in place of H'(m_t), where S is the smooth step of the
surrogate (σ(m/s) for "sigmoid"). The plain smooth network, z_t = S(m_t), has another forward
pass (S ≠ H wherever |m| is finite), so its gradient is not the surrogate gradient. What holds
exactly, for any reset, recurrence, adaptation and read-out, is this: with the margins m⁰_t of
the hard run at θ₀ and the constants c_t = H(m⁰_t) − S(m⁰_t), the *shifted* smooth network

    z̃_t(θ) = S(m_t(θ)) + c_t

reproduces the hard run at θ₀ (by induction over bins and layers: same margins, so z̃ = H(m⁰)),
is smooth in θ, and its chain rule at θ₀ has the factor S'(m⁰_t) = h(m⁰_t) wherever the
surrogate network has its pseudo-derivative. So the surrogate gradient at θ₀ equals the exact
gradient of F(θ) = ℓ(z̃(θ)) at θ₀, which a plain-jax reimplementation gives by jax.grad and by
central finite differences (float64).

At temperature T > 0 with the sigmoid surrogate of width T (the straight-through form), the
estimate is unbiased for ∇E[ℓ] when the margins do not depend on the sampled spikes (no reset, no
recurrence, no adaptation in the spiking layers) and ℓ is linear in the spikes: then
E[ℓ] = ℓ(σ(m/T)), and ∂ℓ/∂z is the same constant for every noise sample. A loss that is not
linear in the spikes (the cross-entropy) or margins that depend on past spikes break this (the
straight-through estimator is biased then, Gygax & Zenke 2025), which is why only this case is
tested.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probsnn import lif, surrogate
from probsnn.inference import fit
from probsnn.inference.deterministic import bptt


def smooth_step(kind, m, s):
    """S with S' = the surrogate h of width s (from the definitions in probsnn.surrogate)."""
    x = m / s
    if kind == "sigmoid":
        return jax.nn.sigmoid(x)
    if kind == "fast_sigmoid":
        return 0.5 + 0.5 * x / (1.0 + jnp.abs(x))
    if kind == "arctan":
        return 0.5 + jnp.arctan(x) / jnp.pi
    u = jnp.clip(x, -1.0, 1.0)
    return jnp.where(u < 0, 0.5 * (1.0 + u) ** 2, 1.0 - 0.5 * (1.0 - u) ** 2)


def reference_run(spec, params, x, offsets=None):
    """The LIF/ALIF equations of probsnn.lif's docstring, one bin per scan step, layers in a
    loop, the neuron types as branches (written from the equations, not from lif.py).

    ``offsets=None``: hard spikes H(m). Else the shifted smooth network
    z̃ = S(m) + offsets[layer][:, t]. Returns (spikes, voltages, margins), lists of (B, T, N_l).
    """
    n_batch = x.shape[0]
    sizes = spec.sizes[1:]
    readout_layer = len(sizes) - 1 if spec.output == "membrane" else None
    zeros = [jnp.zeros((n_batch, n), x.dtype) for n in sizes]
    carry0 = [dict(I=z, v=z, a=z, z=z) for z in zeros]
    shifts = None if offsets is None else [jnp.swapaxes(o, 0, 1) for o in offsets]

    def bin_step(carry, slices):
        drive, shift = slices
        new, outputs = [], []
        for layer, p in enumerate(params):
            s = carry[layer]
            current = spec.alpha_syn * s["I"] + drive @ p.w_in
            if spec.recurrent:
                current = current + s["z"] @ p.w_rec
            if spec.reset == "subtract":
                v = spec.alpha * s["v"] + current + p.bias - spec.threshold * s["z"]
            elif spec.reset == "zero":
                v = spec.alpha * s["v"] * (1.0 - s["z"]) + current + p.bias
            else:
                v = spec.alpha * s["v"] + current + p.bias
            if layer == readout_layer:
                new.append(dict(I=current, v=v, a=s["a"], z=s["z"]))
                outputs.append((jnp.zeros_like(v), v, v))
                continue
            adapt = spec.rho * s["a"] + s["z"] if spec.neuron == "alif" else s["a"]
            m = v - spec.threshold - spec.adapt_strength * adapt
            if shift is None:
                z = (m > 0).astype(m.dtype)
            else:
                z = smooth_step(spec.surrogate, m, spec.surrogate_scale) + shift[layer]
            new.append(dict(I=current, v=v, a=adapt, z=z))
            outputs.append((z, v, m))
            drive = z
        return new, outputs

    _, outputs = jax.lax.scan(bin_step, carry0, (jnp.swapaxes(x, 0, 1), shifts))
    return [[jnp.swapaxes(out[k], 0, 1) for out in outputs] for k in range(3)]


def reference_loss(spikes, voltages, labels, readout):
    """The cross-entropy of each read-out, written out (batch mean)."""
    if readout == "count":
        logits = spikes[-1].sum(axis=1)
    elif readout == "max_membrane":
        logits = voltages[-1].max(axis=1)
    elif readout == "last_membrane":
        logits = voltages[-1][:, -1]
    else:
        v = voltages[-1]  # (B, T, C)
        log_z = jax.scipy.special.logsumexp(v, axis=-1)
        picked = v[jnp.arange(len(labels)), :, labels]
        return jnp.mean(log_z - picked)
    log_z = jax.scipy.special.logsumexp(logits, axis=-1)
    return jnp.mean(log_z - logits[jnp.arange(len(labels)), labels])


def shifted_smooth_loss(spec, params0, x, labels, readout):
    """F(θ) of the module docstring, with its offsets taken from the hard run at params0."""
    spikes, _, margins = jax.jit(reference_run, static_argnums=0)(spec, params0, x)
    offsets = [
        z - smooth_step(spec.surrogate, m, spec.surrogate_scale)
        for z, m in zip(spikes, margins, strict=False)
    ]

    @jax.jit
    def loss(params):
        z, v, _ = reference_run(spec, params, x, offsets)
        return reference_loss(z, v, labels, readout)

    return loss


def random_params(spec, seed, gain=2.0):
    params = lif.init_params(spec, jax.random.key(seed), gain=gain, recurrent_gain=1.0)
    rng = np.random.default_rng(seed)
    return tuple(
        p._replace(bias=jnp.asarray(rng.normal(0.3, 0.3, p.bias.shape), p.bias.dtype))
        for p in params
    )


def spike_inputs(seed, shape, rate=0.4):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.uint8)


def flat(tree):
    return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(tree)])


RECURRENT_LIF = dict(neuron="lif", recurrent=True, reset="subtract", output="membrane")
GRADIENT_CASES = [  # (network options, read-out, surrogate)
    *[(RECURRENT_LIF, "per_step", kind) for kind in surrogate.SURROGATES],
    (
        dict(neuron="alif", recurrent=True, reset="zero", output="membrane"),
        "max_membrane",
        "arctan",
    ),
    (dict(neuron="lif", reset="subtract", output="membrane"), "last_membrane", "triangle"),
    (dict(neuron="srm0", recurrent=True, output="spike"), "count", "sigmoid"),
    (dict(neuron="alif", reset="subtract", output="spike"), "count", "fast_sigmoid"),
]


@pytest.mark.parametrize(
    "options, readout, kind",
    GRADIENT_CASES,
    ids=lambda c: "-".join(map(str, c.values())) if isinstance(c, dict) else c,
)
def test_surrogate_gradient_is_the_gradient_of_the_shifted_smooth_network(
    options, readout, kind, x64
):
    """BPTT's gradient = jax.grad and central differences of F(θ) at θ₀ (module docstring)."""
    sizes = (3, 5, 4, 3) if options["output"] == "spike" else (3, 5, 3)
    spec = lif.LIFNetwork(
        sizes, tau_adapt=30e-3, adapt_strength=0.5, surrogate=kind, surrogate_scale=0.6,
        **options,
    )  # fmt: skip
    params = random_params(spec, 1)
    x = spike_inputs(2, (4, 12, 3))
    labels = np.array([0, 1, 2, 1])
    record = lif.simulate(spec, params, x)
    assert 0.05 < float(record.spikes[0].mean()) < 0.95  # spikes and silence both occur

    grad = jax.grad(bptt.classification_loss, argnums=1)(spec, params, x, labels, readout)
    loss = shifted_smooth_loss(spec, params, jnp.asarray(x, jnp.float64), labels, readout)
    np.testing.assert_allclose(
        float(bptt.classification_loss(spec, params, x, labels, readout)), float(loss(params))
    )  # F(θ₀) is the hard network's loss
    expected = jax.grad(loss)(params)
    np.testing.assert_allclose(flat(grad), flat(expected), rtol=1e-9, atol=1e-11)
    # the first layer's gradient flows only through spikes: the surrogate path is exercised
    assert np.abs(flat(grad[0])).max() > 1e-3

    rng = np.random.default_rng(3)
    eps = 1e-6
    for _ in range(3):
        direction = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
        shifted = [
            jax.tree.map(lambda p, d, sign=sign: p + sign * eps * d, params, direction)
            for sign in (1.0, -1.0)
        ]
        difference = (float(loss(shifted[0])) - float(loss(shifted[1]))) / (2 * eps)
        np.testing.assert_allclose(flat(grad) @ flat(direction), difference, rtol=1e-6, atol=1e-9)


def test_detached_reset_drops_a_path_of_the_shifted_smooth_gradient(x64):
    """The control: with detach_reset the gradient leaves out the reset term, so it differs from
    F's (the equality above can fail)."""
    options = dict(neuron="lif", reset="subtract", output="membrane", surrogate_scale=0.6)
    spec = lif.LIFNetwork((3, 5, 3), **options)
    detached = lif.LIFNetwork((3, 5, 3), detach_reset=True, **options)
    params = random_params(spec, 1)
    x, labels = spike_inputs(2, (4, 12, 3)), np.array([0, 1, 2, 1])
    loss = shifted_smooth_loss(spec, params, jnp.asarray(x, jnp.float64), labels, "per_step")
    expected = flat(jax.grad(loss)(params))
    grad = flat(
        jax.grad(bptt.classification_loss, argnums=1)(detached, params, x, labels, "per_step")
    )
    assert np.abs(grad - expected).max() > 1e-3 * np.abs(expected).max()


def test_straight_through_gradient_is_unbiased_for_a_loss_linear_in_spikes(x64):
    """T > 0, sigmoid surrogate of width T, no reset/recurrence/adaptation in the hidden layer,
    ℓ = Σ_{t,c} a_{t,c} v_{t,c} (linear in the hidden spikes through the leaky read-out): the
    plain smooth network z = σ(m/T) computes E[ℓ], and E_noise[∇ℓ] = ∇E[ℓ]. The hidden layer's
    gradient is the same for every draw (equal to the exact one up to rounding); the read-out's
    is random, its mean within 5 standard errors of the exact value."""
    temperature = 0.5
    options = dict(neuron="srm0", output="membrane", surrogate="sigmoid")
    spec = lif.LIFNetwork((3, 6, 2), temperature=temperature, **options)
    smooth = lif.LIFNetwork((3, 6, 2), surrogate_scale=temperature, **options)
    params = random_params(spec, 4, gain=1.5)
    x = jnp.asarray(spike_inputs(5, (1, 15, 3)), jnp.float64)
    weights = jnp.asarray(np.random.default_rng(6).normal(size=(15, 2)))

    def sampled(p, key):
        record = lif._run(spec, p, x, key, None)
        return jnp.sum(weights * record.voltage[-1][0])

    def expected_loss(p):
        _, voltages, _ = reference_run(smooth, p, x, [jnp.zeros((1, 15, 6))])
        return jnp.sum(weights * voltages[-1][0])

    n_draws = 4000
    keys = jax.random.split(jax.random.key(7), n_draws)
    grads = jax.jit(jax.vmap(jax.grad(sampled), in_axes=(None, 0)))(params, keys)
    samples = np.concatenate([np.reshape(g, (n_draws, -1)) for g in jax.tree.leaves(grads)], 1)
    mean = samples.mean(axis=0)
    sem = samples.std(axis=0) / np.sqrt(n_draws)
    exact = flat(jax.grad(expected_loss)(params))
    hidden = flat(params[0]).size
    scale = np.abs(exact).max()
    assert sem[:hidden].max() < 1e-12 * scale  # the hidden layer's estimate is deterministic
    np.testing.assert_allclose(mean[:hidden], exact[:hidden], rtol=1e-9, atol=1e-12 * scale)
    weights_out = slice(hidden, hidden + params[1].w_in.size)  # read-out weights (then bias)
    assert sem[weights_out].min() > 1e-6 * scale  # their estimate is random
    assert np.all(np.abs(mean - exact) <= 5 * sem + 1e-9 * scale)


# ---------------------------------------------------------------------------------------------
# read-outs, prediction, training


def test_every_readout_equals_its_definition_on_the_record():
    spec_m = lif.LIFNetwork((3, 5, 3), output="membrane")
    spec_s = lif.LIFNetwork((3, 5, 3))
    x, labels = spike_inputs(0, (2, 4, 10, 3)), np.array([[0, 1, 2, 0], [2, 2, 1, 0]])
    for spec, readout in [(spec_s, "count")] + [(spec_m, r) for r in bptt.READOUTS[1:]]:
        params = random_params(spec, 1)
        record = lif.simulate(spec, params, x)
        logits = bptt.readout_logits(spec, record, readout)
        v, z = np.asarray(record.voltage[-1]), np.asarray(record.spikes[-1])
        expected = {
            "count": z.sum(axis=-2),
            "max_membrane": v.max(axis=-2),
            "last_membrane": v[..., -1, :],
            "per_step": v,
        }[readout]
        np.testing.assert_allclose(logits, expected, rtol=1e-6)
        log_p = expected - np.log(np.exp(expected).sum(axis=-1, keepdims=True))
        if readout == "per_step":
            nll = -np.take_along_axis(log_p, labels[..., None, None], axis=-1).mean()
            scores = log_p.sum(axis=-2)
        else:
            nll = -np.take_along_axis(log_p, labels[..., None], axis=-1).mean()
            scores = expected
        loss = bptt.classification_loss(spec, params, x, labels, readout)
        np.testing.assert_allclose(float(loss), nll, rtol=1e-5)
        predicted = bptt.predict(spec, params, x, readout=readout)
        assert predicted.shape == (2, 4) and predicted.dtype == jnp.int32
        np.testing.assert_array_equal(predicted, scores.argmax(axis=-1))
        acc = bptt.accuracy(spec, params, x, labels, readout=readout)
        assert acc == pytest.approx(np.mean(scores.argmax(axis=-1) == labels))


def toy_problem(seed, n, n_classes=3, per_class=4, n_steps=20):
    """Rate-coded classes: class c drives inputs c·4 .. c·4+3 at 0.5 spikes/bin, the rest 0.05."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    rates = np.full((n, n_classes * per_class), 0.05)
    for c in range(n_classes):
        rates[labels == c, c * per_class : (c + 1) * per_class] = 0.5
    spikes = rng.random((n, n_steps, n_classes * per_class)) < rates[:, None, :]
    return spikes.astype(np.uint8), labels.astype(np.int32)


@pytest.mark.parametrize(
    "options, readout, temperature",
    [
        (dict(output="membrane"), "per_step", 0.0),
        (dict(output="membrane", neuron="alif", recurrent=True), "max_membrane", 0.0),
        (dict(output="spike"), "count", 0.0),
        (dict(output="membrane"), "last_membrane", 0.3),
    ],
)
def test_training_a_small_network_reaches_high_accuracy(options, readout, temperature):
    train_x, train_y = toy_problem(0, 240)
    test_x, test_y = toy_problem(1, 150)
    spec = lif.LIFNetwork((12, 16, 3), temperature=temperature, **options)
    params = lif.init_params(spec, jax.random.key(0), gain=1.0)
    trainer = bptt.surrogate_trainer(spec, optax.adam(2e-2), readout=readout)
    result = fit(
        trainer, params, (train_x, train_y), key=jax.random.key(1), epochs=15, batch_size=40,
        progress=False,
    )  # fmt: skip
    key = jax.random.key(2) if temperature else None
    acc = bptt.accuracy(spec, result.params, test_x, test_y, readout=readout, key=key)
    assert acc > 0.9, (acc, result.history["loss"])
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert set(result.history) >= {"loss", "accuracy", "spike_rate"}
    assert 0 < result.history["spike_rate"][-1] < 1
    assert trainer.step._cache_size() == 1  # compiled once over 90 steps


def test_escape_noise_follows_the_key():
    spec = lif.LIFNetwork((12, 16, 3), output="membrane", temperature=0.5)
    params = random_params(spec, 0)
    x, y = toy_problem(0, 8)
    trainer = bptt.surrogate_trainer(spec, optax.sgd(0.1), readout="per_step")
    state = trainer.init(params)
    losses = [float(trainer.step(jax.random.key(k), state, (x, y))[1].loss) for k in (0, 0, 1)]
    assert losses[0] == losses[1] != losses[2]
    loss = functools.partial(bptt.classification_loss, spec, params, x, y, "per_step")
    assert float(loss(jax.random.key(3))) != float(loss(jax.random.key(4)))


def test_deterministic_step_ignores_its_key():
    spec = lif.LIFNetwork((12, 16, 3), output="membrane")
    params = random_params(spec, 0)
    x, y = toy_problem(0, 8)
    trainer = bptt.surrogate_trainer(spec, optax.sgd(0.1), readout="per_step")
    state = trainer.init(params)
    first = trainer.step(jax.random.key(0), state, (x, y))
    second = trainer.step(jax.random.key(1), state, (x, y))
    np.testing.assert_array_equal(flat(first[0].params), flat(second[0].params))
    expected = bptt.classification_loss(spec, params, x, y, "per_step")
    np.testing.assert_allclose(float(first[1].loss), float(expected), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_arguments_are_named():
    spiking = lif.LIFNetwork((12, 16, 3))
    membrane = lif.LIFNetwork((12, 16, 3), output="membrane")
    noisy = lif.LIFNetwork((12, 16, 3), output="membrane", temperature=0.5)
    params = random_params(membrane, 0)
    x, y = toy_problem(0, 8)
    with pytest.raises(ValueError, match=r"readout='count'.*output='spike'"):
        bptt.surrogate_trainer(membrane, optax.adam(1e-3), readout="count")
    with pytest.raises(ValueError, match=r"readout='per_step'.*output='membrane'"):
        bptt.surrogate_trainer(spiking, optax.adam(1e-3), readout="per_step")
    with pytest.raises(ValueError, match="readout must be one of"):
        bptt.predict(membrane, params, x, readout="mean")
    with pytest.raises(TypeError, match="optimizer must be an optax"):
        bptt.surrogate_trainer(membrane, "adam", readout="per_step")
    with pytest.raises(TypeError, match=r"spec must be a probsnn.lif.LIFNetwork"):
        bptt.surrogate_trainer((12, 16, 3), optax.adam(1e-3))
    with pytest.raises(TypeError, match="record must be a LIFRecord"):
        bptt.readout_logits(membrane, (np.zeros((2, 3)),), "per_step")

    trainer = bptt.surrogate_trainer(membrane, optax.adam(1e-3), readout="per_step")
    state = trainer.init(params)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"labels must lie in 0..2 \(the 3 classes\)"):
        trainer.step(key, state, (x, y + 1))
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        trainer.step(key, state, (x, y.astype(np.float32)))
    with pytest.raises(ValueError, match=r"labels must have shape \(8,\)"):
        trainer.step(key, state, (x, y[:5]))
    with pytest.raises(ValueError, match=r"inputs must end with dimensions \(12,\)"):
        trainer.step(key, state, (x[..., :10], y))
    with pytest.raises(ValueError, match="inputs must be finite"):
        trainer.step(key, state, (np.where(x > 0, np.nan, 0.0), y))
    with pytest.raises(ValueError, match=r"inputs must have shape \(B, T, 12\)"):
        trainer.step(key, state, (x[0], y[:1]))
    with pytest.raises(TypeError, match="batch must be a pair"):
        trainer.step(key, state, x)
    with pytest.raises(ValueError, match=r"layer 0: params.w_in"):
        trainer.init(random_params(lif.LIFNetwork((10, 16, 3), output="membrane"), 0))

    noisy_trainer = bptt.surrogate_trainer(noisy, optax.adam(1e-3), readout="per_step")
    with pytest.raises(TypeError, match=r"pass jax.random.key\(3\) instead"):
        noisy_trainer.step(3, noisy_trainer.init(params), (x, y))
    with pytest.raises(TypeError, match="key is required at temperature"):
        bptt.predict(noisy, params, x, readout="per_step")
    with pytest.raises(ValueError, match="labels must lie in"):
        bptt.classification_loss(membrane, params, x, y - 1, "per_step")
    with pytest.raises(ValueError, match=r"labels must have shape \(8,\)"):
        bptt.accuracy(membrane, params, x, y[:3], readout="per_step")
