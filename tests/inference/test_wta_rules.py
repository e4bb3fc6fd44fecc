"""WTA learning rules: the local gradient (the score ∇ log p) against jax.grad and finite
differences, the C = 1 reduction to the binary ML rule, the online rule's recursion on the loss
−log p, the variational gradient of −ELBO against exact enumeration of the hidden units, and
training with wta_trainer through fit."""

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import logsumexp

import probsnn as ps
from probsnn import kernels, topology, wta
from probsnn.glm import advance, ring_traces
from probsnn.inference import fit
from probsnn.inference.latent import wta as rules
from probsnn.inference.latent.trainer import wta_trainer
from probsnn.inference.likelihood import online as binary_online
from probsnn.inference.likelihood.online import MLSignals


def _network(shared_basis: bool):
    feedback = None if shared_basis else kernels.exponential([0.002, 0.01], 12, 1e-3)
    return wta.WTANetwork(
        4,
        3,
        kernels.raised_cosine(3, 1, 8),
        feedback_basis=feedback,
        input_basis=kernels.raw_lags(3),
        n_inputs=2,
        connectivity=topology.layered_recurrent([2, 2]),
        dt=1e-3,
    )


def _data(spec, n_steps=60, n_trials=3, dtype=jnp.float32):
    """Parameters, random one-hot spikes (silence half the time) and inputs (numpy draws)."""
    rng = np.random.default_rng(0)
    params = spec.init_params(jax.random.key(0), rate=150.0, dtype=dtype)
    params = wta.WTAParams(*(p + 0.3 * rng.normal(size=p.shape).astype(dtype) for p in params))
    params = params._replace(w=params.w * spec.units.connectivity[:, None, :, None, None])
    inputs = jnp.asarray(rng.normal(size=(n_trials, n_steps, 2)), dtype)
    symbols = rng.choice(4, size=(n_trials, n_steps, 4), p=[0.5, 1 / 6, 1 / 6, 1 / 6])
    return params, jnp.asarray(np.eye(4)[symbols][..., 1:], dtype), inputs


@partial(jax.jit, static_argnums=0)
def _local_gradient(spec, params, spikes, inputs):
    signals = MLSignals(wta.channel_traces(spec, spikes, inputs), spikes)
    return rules.wta_local_gradient(spec, params, signals)


@pytest.mark.parametrize("shared_basis", [True, False])
def test_local_gradient_equals_jax_grad(shared_basis):
    spec = _network(shared_basis)
    params, spikes, inputs = _data(spec)
    expected = jax.grad(lambda p: wta.log_likelihood(spec, p, spikes, inputs))(params)
    got = _local_gradient(spec, params, spikes, inputs)
    for name in wta.WTAParams._fields:
        scale = float(jnp.max(jnp.abs(getattr(expected, name))))
        np.testing.assert_allclose(
            getattr(got, name), getattr(expected, name), atol=1e-5 * scale, err_msg=name
        )


def test_local_gradient_matches_finite_differences(x64):
    spec = _network(shared_basis=False)
    params, spikes, inputs = _data(spec, n_steps=40, n_trials=2, dtype=jnp.float64)
    grad = _local_gradient(spec, params, spikes, inputs)
    mask = spec.units.connectivity[:, None, :, None, None]
    h = 1e-6
    rng = np.random.default_rng(1)
    for _ in range(3):
        direction = wta.WTAParams(*(rng.normal(size=p.shape) for p in params))
        direction = direction._replace(w=direction.w * mask)

        def at(step, direction=direction):
            moved = wta.WTAParams(*(p + step * d for p, d in zip(params, direction, strict=True)))
            return float(wta.log_likelihood(spec, moved, spikes, inputs))

        numeric = (at(h) - at(-h)) / (2 * h)
        analytic = sum(float(jnp.vdot(g, d)) for g, d in zip(grad, direction, strict=True))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-7)


def test_one_symbol_gradient_is_the_binary_ml_gradient():
    basis, input_basis = kernels.raised_cosine(3, 1, 8), kernels.raw_lags(2)
    spec = ps.Network(4, basis, input_basis=input_basis, n_inputs=1)
    params = spec.init_params(jax.random.key(0), rate=100.0)
    inputs = jax.random.normal(jax.random.key(1), (2, 50, 1))
    spikes = jnp.asarray(np.random.default_rng(2).random((2, 50, 4)) < 0.2, jnp.float32)

    @jax.jit
    def binary_gradient(params, spikes, inputs):
        signals = MLSignals(ps.traces(spec, spikes, inputs), spikes)
        return binary_online.local_gradient(spec, params, signals)

    binary = binary_gradient(params, spikes, inputs)
    unit_spec = wta.WTANetwork(4, 1, basis, input_basis=input_basis, n_inputs=1)
    w, v, c, bias = params
    unit_params = wta.WTAParams(w[:, None, :, None], v[:, None, None], c[:, :, None], bias[:, None])
    got = _local_gradient(unit_spec, unit_params, spikes[..., None], inputs)
    np.testing.assert_allclose(got.w[:, 0, :, 0], binary.w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.v[:, 0, 0], binary.v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.c[:, :, 0], binary.c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.bias[:, 0], binary.bias, rtol=1e-5, atol=1e-5)


def test_online_rule_streams_the_eligibility_recursion():
    """Streaming bins through ring buffers at fixed params: with κ = 0 the updates sum to the
    batch gradient of the loss −log p (minus the score); with κ the last update is
    −Σ_t (1 − κ) κ^{T−t} g_t, g_t the bin's score."""
    spec = _network(shared_basis=False)
    params, spikes, inputs = _data(spec, n_steps=30, n_trials=2)
    x = wta.channel_traces(spec, spikes, inputs)
    per_bin = jax.vmap(
        lambda xt, st: rules.wta_local_gradient(spec, params, MLSignals(xt, st)),
        in_axes=(1, 1),
    )(x, spikes)  # leaves (T, ...)
    for kappa in (0.0, 0.7):
        rule = rules.wta_ml_rule(spec, kappa)

        def stream(carry, bin_data, rule=rule):
            state, buffers, total = carry
            spikes_t, input_t = bin_data
            signals = MLSignals(ring_traces(spec.channels, buffers), spikes_t)
            updates, state = rule.update(signals, state, params)
            total = jax.tree.map(jnp.add, total, updates)
            buffers = advance(buffers, spikes_t.reshape(2, -1), input_t)
            return (state, buffers, total), updates

        zeros = jax.tree.map(jnp.zeros_like, params)
        start = (rule.init(params), wta.init_wta_state(spec, (2,)), zeros)
        time_major = (jnp.swapaxes(spikes, 0, 1), jnp.swapaxes(inputs, 0, 1))
        (_, _, total), updates = jax.lax.scan(stream, start, time_major)
        weights = (1 - kappa) * kappa ** jnp.arange(spikes.shape[1] - 1, -1, -1.0)
        for got, g in zip(updates, per_bin, strict=True):
            want = -jnp.tensordot(weights, g, axes=1)
            np.testing.assert_allclose(got[-1], want, rtol=1e-4, atol=1e-5)
        if kappa == 0.0:
            for got, g in zip(total, per_bin, strict=True):
                np.testing.assert_allclose(got, -jnp.sum(g, 0), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# hidden units: exact enumeration on a tiny network
N_STEPS = 3


def _tiny():
    """Unit 0 visible, unit 1 hidden, two symbols each, T = 3: 27 hidden sequences."""
    spec = wta.WTANetwork(
        2, 2, kernels.raised_cosine(2, 1, 3), visible=np.array([True, False]), dt=1e-3
    )
    params = spec.init_params(jax.random.key(4), rate=300.0, weight_scale=2.0)
    x = wta.one_hot(jnp.array([[1], [0], [2]]), 2)  # (T, 1, C) visible symbols
    return spec, params, x


def _enumerated(spec, x):
    hidden = wta.one_hot(
        jnp.array(list(itertools.product(range(3), repeat=N_STEPS)))[..., None], 2
    )  # (27, T, 1, C)
    visible = jnp.broadcast_to(x, hidden.shape)
    return jnp.concatenate([visible, hidden], axis=2).astype(jnp.float32)


@partial(jax.jit, static_argnums=0)
def _exact(spec, params, x):
    """(ELBO, log p(x)) by summing over every hidden sequence."""
    spikes = _enumerated(spec, x)
    log_p = wta.log_prob(spec, params, spikes)  # (27, T, 2)
    learning_signal = jnp.sum(log_p[..., 0], -1)
    log_q = jnp.sum(log_p[..., 1], -1)
    elbo = jnp.sum(jnp.exp(log_q) * learning_signal)
    return elbo, logsumexp(learning_signal + log_q)


def test_variational_gradient_is_unbiased_against_enumeration():
    """One-completion estimates of the gradient of −ELBO average to the exact one (enumeration),
    sign included; on B sequences × K completions the estimate is Σ_b mean_k."""
    spec, params, x = _tiny()
    exact = jax.grad(lambda p: -_exact(spec, p, x)[0])(params)
    n = 6000
    samples = wta.sample(spec, params, jax.random.key(5), N_STEPS, n, clamp=x)
    per_sample = jax.vmap(
        lambda s: rules.wta_variational_gradient(
            spec, params, rules.WTAVariationalSignals(s[None, None], None)
        )
    )(samples)[0]
    for name, leaf, want in zip(wta.WTAParams._fields, per_sample, exact, strict=True):
        mean, se = jnp.mean(leaf, 0), jnp.std(leaf, 0) / np.sqrt(n)
        assert np.all(np.abs(mean - want) <= 4 * se + 1e-6), (name, mean, want, se)
    # K completions of one sequence: the mean of the one-completion estimates
    batched, signal = rules.wta_variational_gradient(
        spec, params, rules.WTAVariationalSignals(samples[None], None), baseline=0.0
    )
    assert signal.shape == (1, n)
    np.testing.assert_allclose(batched.bias, jnp.mean(per_sample.bias, 0), rtol=1e-4, atol=1e-5)
    # B = 2 sequences of n/2 completions: the sum over sequences of their means
    halves, signal = rules.wta_variational_gradient(
        spec,
        params,
        rules.WTAVariationalSignals(samples.reshape(2, n // 2, *samples.shape[1:]), None),
    )
    assert signal.shape == (2, n // 2)
    expected = jnp.sum(jnp.mean(per_sample.bias.reshape(2, n // 2, 2, 2), 1), 0)
    np.testing.assert_allclose(halves.bias, expected, rtol=1e-4, atol=1e-5)


def test_variational_rule_baseline_reduces_variance():
    """The rule's per-parameter baseline lowers the spread of the hidden-bias update."""
    spec, params, x = _tiny()
    rule = rules.wta_variational_rule(spec, baseline_kappa=0.9)
    samples = wta.sample(spec, params, jax.random.key(6), N_STEPS, 150 * 8, clamp=x)

    def step(state, spikes):
        signals = rules.WTAVariationalSignals(spikes, None)
        updates, state = rule.update(signals, state, params)
        plain = rules.wta_variational_gradient(spec, params, signals)[0]
        return state, (updates.bias[1], plain.bias[1])

    _, (with_baseline, plain) = jax.lax.scan(
        step, rule.init(params), samples.reshape(150, 1, 8, *samples.shape[1:])
    )
    ratio = np.var(np.asarray(plain)[50:], 0) / np.var(np.asarray(with_baseline)[50:], 0)
    assert np.all(ratio > 10), ratio  # about 40 at this seed


def test_training_raises_the_exact_marginal_likelihood():
    """wta_trainer through fit: log p(x) rises and the loss (−ELBO per sequence) falls."""
    spec, params, x = _tiny()
    data = jnp.broadcast_to(x, (16, *x.shape))
    before = float(_exact(spec, params, x)[1])
    trainer = wta_trainer(spec, optax.adam(1e-2), n_samples=4)
    result = fit(trainer, params, data, key=jax.random.key(7), epochs=40, batch_size=16)
    after = float(_exact(spec, result.params, x)[1])
    assert after > before + 1.0, (before, after)
    loss = result.history["loss"]
    assert loss.shape == (40,) and loss[-5:].mean() < loss[:5].mean()


def test_bad_arguments():
    spec, params, x = _tiny()
    with pytest.raises(ValueError, match="kappa must be in"):
        rules.wta_ml_rule(spec, 1.0)
    with pytest.raises(ValueError, match="baseline_kappa must be in"):
        rules.wta_variational_rule(spec, -0.1)
    with pytest.raises(TypeError, match="WTAVariationalSignals"):
        rules.wta_variational_gradient(spec, params, (x, None))
    full = jnp.zeros((1, N_STEPS, 2, 2), jnp.uint8)
    with pytest.raises(ValueError, match=r"\(B, K, T, N, C\)"):
        rules.wta_variational_gradient(spec, params, rules.WTAVariationalSignals(full, None))
    with pytest.raises(ValueError, match=r"signals.inputs must have shape None"):
        signals = rules.WTAVariationalSignals(full[None], jnp.zeros((1, N_STEPS, 1)))
        rules.wta_variational_gradient(spec, params, signals)
    with pytest.raises(ValueError, match="needs params"):
        rule = rules.wta_ml_rule(spec)
        rule.update(None, rule.init(params))
    trainer = wta_trainer(spec, optax.adam(1e-2))
    with pytest.raises(ValueError, match=r"batch_size must lie in 1\.\.1"):
        fit(trainer, params, x[None], key=jax.random.key(0), epochs=1, batch_size=2)
    with pytest.raises(ValueError, match=r"batch must have shape \(B, T, 1, 2\)"):
        trainer.step(jax.random.key(0), trainer.init(params), x)
    with pytest.raises(TypeError, match="WTANetwork"):
        wta_trainer(ps.Network(2, kernels.raw_lags(2)), optax.adam(1e-2))
