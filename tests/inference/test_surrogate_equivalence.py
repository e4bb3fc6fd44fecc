"""Surrogate ⇔ stochastic gradients: exact enumeration vs a numpy oracle, the one-layer
identities of stochastic AD, unbiasedness of the score function, the temperature limits."""

import itertools

import jax
import jax.flatten_util
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from probsnn import lif, plot
from probsnn.inference.deterministic import equivalence as eq


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree.leaves(tree)])


def problem(sizes, temperature, n_steps, *, seed=0, gain=1.5, **options):
    spec = lif.LIFNetwork(sizes, threshold=0.5, temperature=temperature, **options)
    k_params, k_inputs, k_bias = jax.random.split(jax.random.key(seed), 3)
    params = lif.init_params(spec, k_params, gain=gain)
    params = tuple(  # non-zero biases, so that every parameter matters
        p._replace(bias=0.3 * jax.random.normal(k, p.bias.shape))
        for p, k in zip(params, jax.random.split(k_bias, len(params)), strict=True)
    )
    inputs = np.asarray(jax.random.bernoulli(k_inputs, 0.5, (n_steps, sizes[0])), float)
    return spec, params, inputs


# ------------------------------------------------------------------ numpy brute-force oracle


def numpy_expected_loss(spec, params, inputs, loss):
    """Σ_z p(z) L(z) by plain loops: LIF dynamics of probsnn.lif's docstring, teacher forced."""
    params = [[np.asarray(a, float) for a in p] for p in params]
    sizes = spec.sizes[1:]
    n_steps = inputs.shape[0]
    n_bits = n_steps * sum(sizes)
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=n_bits):
        bits, layers, start = np.asarray(bits), [], 0
        for n in sizes:
            layers.append(bits[start : start + n_steps * n].reshape(n_steps, n))
            start += n_steps * n
        prob = 1.0
        for layer, (w_in, w_rec, bias) in enumerate(params):
            z = layers[layer]
            drive = inputs if layer == 0 else layers[layer - 1]
            current = np.zeros(sizes[layer])
            voltage = np.zeros(sizes[layer])
            refractory = np.zeros(sizes[layer])
            previous = np.zeros(sizes[layer])
            for t in range(n_steps):
                current = spec.alpha_syn * current + drive[t] @ w_in
                if spec.recurrent:
                    current = current + previous @ w_rec
                voltage = spec.alpha * voltage + current + bias - spec.threshold * previous
                margin = voltage - spec.threshold
                p_spike = 1 / (1 + np.exp(-margin / spec.temperature))
                for i in range(sizes[layer]):
                    if refractory[i] > 0:
                        prob *= 1.0 - z[t, i]
                    else:
                        prob *= p_spike[i] if z[t, i] else 1 - p_spike[i]
                refractory = np.where(z[t] > 0, spec.refractory, np.maximum(refractory - 1, 0))
                previous = z[t]
        total += prob * loss(layers[-1])
    return total


@pytest.mark.parametrize(
    "sizes, options",
    [((2, 2), {"recurrent": True}), ((2, 1, 1), {"refractory": 1})],
    ids=["one-layer-recurrent", "two-layers-refractory"],
)
def test_enumeration_matches_numpy_brute_force(x64, sizes, options):
    spec, params, inputs = problem(sizes, 0.7, n_steps=2, **options)
    target = np.array([1.0] * sizes[-1])
    loss = eq.count_loss(target)
    exact = eq.exact_expected_gradient(spec, params, inputs, loss)

    def np_loss(z):
        return 0.5 * np.sum((z.sum(0) - target) ** 2)

    assert exact.loss == pytest.approx(numpy_expected_loss(spec, params, inputs, np_loss), 1e-12)
    flat_params, unravel = jax.flatten_util.ravel_pytree(params)
    step = 1e-6
    fd = np.zeros(flat_params.size)
    for k in range(flat_params.size):
        e = np.zeros(flat_params.size)
        e[k] = step
        up = numpy_expected_loss(spec, unravel(flat_params + e), inputs, np_loss)
        down = numpy_expected_loss(spec, unravel(flat_params - e), inputs, np_loss)
        fd[k] = (up - down) / (2 * step)
    np.testing.assert_allclose(flat(exact.grad), fd, rtol=1e-6, atol=1e-9)
    assert np.all(flat(exact.stderr) == 0)


def test_enumeration_refuses_too_many_patterns():
    spec, params, inputs = problem((2, 3), 0.5, n_steps=7)  # 21 bits
    with pytest.raises(ValueError, match=r"2\^21 = 2,097,152 spike patterns"):
        eq.exact_expected_gradient(spec, params, inputs, eq.count_loss(np.ones(3)))
    with pytest.raises(ValueError, match="MAX_PATTERNS"):
        eq.expected_stochastic_ad_gradient(spec, params, inputs, eq.count_loss(np.ones(3)))


# ----------------------------------------------------------------------- one-layer theorems

# one layer whose margins never see its spikes (no recurrence, reset "none"), 9 spikes
ONE_LAYER = {"sizes": (3, 3), "temperature": 0.5, "n_steps": 3, "reset": "none"}
# two recurrent layers with reset by subtraction, 12 spikes
DEEP = {"sizes": (3, 2, 2), "temperature": 0.5, "n_steps": 3, "recurrent": True}
N_SAMPLES = 2000


def test_one_layer_linear_loss_every_gradient_is_exact(x64):
    """Spike-blind margins and L = Σ c z: ĝ_ST(z) = Σ c h(m) ∂m/∂θ for every sample z, and the
    deterministic surrogate sees the same margins: (a) = (c1) = (c2) per sample."""
    spec, params, inputs = problem(**ONE_LAYER)
    loss = eq.linear_loss(np.asarray(jax.random.normal(jax.random.key(5), (3, 3))))
    exact = flat(eq.exact_expected_gradient(spec, params, inputs, loss).grad)
    sampled = eq.stochastic_ad_gradient(
        spec, params, inputs, loss, key=jax.random.key(1), n_samples=N_SAMPLES
    )
    np.testing.assert_allclose(flat(sampled.grad), exact, rtol=1e-10, atol=1e-12)
    assert np.max(flat(sampled.stderr)) < 1e-12  # the same gradient from every sample
    surrogate = flat(eq.surrogate_gradient(spec, params, inputs, loss).grad)
    np.testing.assert_allclose(surrogate, exact, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(exact) > 0.1


def test_one_layer_multilinear_loss_straight_through_is_unbiased(x64):
    """Spike-blind margins and L affine in each spike: E[ĝ_ST] = ∇E[L] exactly, the sampled
    average within 4 SE; the deterministic surrogate is not exact here."""
    spec, params, inputs = problem(**ONE_LAYER)
    loss = eq.count_loss(np.array([1.0, 2.0, 0.0]), multilinear=True)
    exact = flat(eq.exact_expected_gradient(spec, params, inputs, loss).grad)
    expected = flat(eq.expected_stochastic_ad_gradient(spec, params, inputs, loss).grad)
    np.testing.assert_allclose(expected, exact, rtol=1e-10, atol=1e-12)
    sampled = eq.stochastic_ad_gradient(
        spec, params, inputs, loss, key=jax.random.key(2), n_samples=N_SAMPLES
    )
    se = flat(sampled.stderr)
    assert np.all(np.abs(flat(sampled.grad) - exact) <= 4 * se + 1e-12)
    surrogate = flat(eq.surrogate_gradient(spec, params, inputs, loss).grad)
    assert np.linalg.norm(surrogate - exact) > 0.05 * np.linalg.norm(exact)


def test_count_loss_straight_through_misses_the_variance_derivative(x64):
    """L = ½ Σ (n − y)² is not multilinear: ∇E[L] = E[ĝ_ST] + ∇ ½ Σ p(1 − p), p = σ(m/T);
    the multilinear twin (equal on binary spikes) has the same exact gradient."""
    spec, params, inputs = problem(**ONE_LAYER)
    target = np.array([1.0, 2.0, 0.0])
    exact = eq.exact_expected_gradient(spec, params, inputs, eq.count_loss(target))
    twin = eq.exact_expected_gradient(spec, params, inputs, eq.count_loss(target, multilinear=True))
    np.testing.assert_allclose(flat(twin.grad), flat(exact.grad), rtol=1e-12, atol=1e-14)
    assert twin.loss == pytest.approx(exact.loss, 1e-12)
    expected = eq.expected_stochastic_ad_gradient(spec, params, inputs, eq.count_loss(target))

    def half_variance(params):  # the margins do not depend on the spikes (reset "none")
        margin = lif.simulate(spec, params, inputs, jax.random.key(0)).margin[0]
        p = jax.nn.sigmoid(margin / spec.temperature)
        return 0.5 * jnp.sum(p * (1 - p))

    correction = flat(jax.grad(half_variance)(params))
    np.testing.assert_allclose(
        flat(expected.grad) + correction, flat(exact.grad), rtol=1e-10, atol=1e-12
    )
    assert np.linalg.norm(correction) > 0.05 * np.linalg.norm(flat(exact.grad))


def test_single_bin_straight_through_is_unbiased_even_with_recurrence_and_reset(x64):
    """In one bin no margin has seen a spike yet: the one-layer identity holds for any
    recurrence or reset."""
    spec, params, inputs = problem((3, 4), 0.3, n_steps=1, recurrent=True)
    loss = eq.count_loss(np.array([1.0, 0.0, 1.0, 1.0]), multilinear=True)
    exact = flat(eq.exact_expected_gradient(spec, params, inputs, loss).grad)
    expected = flat(eq.expected_stochastic_ad_gradient(spec, params, inputs, loss).grad)
    np.testing.assert_allclose(expected, exact, rtol=1e-10, atol=1e-12)


def test_expected_straight_through_is_the_mean_of_what_simulate_differentiates(x64):
    """The forced straight-through run of one sampled pattern gives the gradient
    lif.simulate gives for the key that drew it."""
    spec, params, inputs = problem(**DEEP)
    loss = eq.count_loss(np.ones(2))
    key = jax.random.key(4)
    record = lif.simulate(spec, params, inputs, key)

    def through_simulate(params):
        return loss(lif.simulate(spec, params, inputs, key).spikes[-1][None])[0]

    forced = tuple(jax.lax.stop_gradient(s)[None] for s in record.spikes)

    def through_forced(params):
        out = eq._forced_straight_through(spec, params, jnp.asarray(inputs)[None], forced)
        return loss(out.spikes[-1])[0]

    np.testing.assert_allclose(
        flat(jax.grad(through_forced)(params)),
        flat(jax.grad(through_simulate)(params)),
        rtol=1e-10,
        atol=1e-12,
    )


# ---------------------------------------------------------------- beyond one layer, limits


def exact_score_stderr(spec, params, inputs, loss, n_samples):
    """(Var[(L − E L) ∇ log p] / S)^½ by enumeration: the standard error of the
    leave-one-out score-function estimate (to first order in 1/S)."""
    n_steps = inputs.shape[0]
    index = jnp.arange(2 ** (n_steps * sum(spec.sizes[1:])))
    patterns = eq._patterns(spec, n_steps, index, jnp.float64)
    single = jnp.asarray(inputs)[None]

    def log_p(params, spikes):
        spikes = tuple(s[None] for s in spikes)
        return lif.spike_log_prob(spec, lif._run(spec, params, single, None, spikes), spikes)[0]

    per_pattern = jax.jit(jax.vmap(jax.value_and_grad(log_p), (None, 0)))
    log_probs, scores = per_pattern(params, patterns)
    scores = np.concatenate([np.reshape(a, (index.size, -1)) for a in jax.tree.leaves(scores)], 1)
    prob = np.exp(np.asarray(log_probs))
    values = np.asarray(loss(patterns[-1]))
    terms = (values - prob @ values)[:, None] * scores
    return np.sqrt(prob @ (terms - prob @ terms) ** 2 / n_samples)


@pytest.mark.parametrize(
    "config",
    [DEEP, {"sizes": (3, 3), "temperature": 0.5, "n_steps": 3, "neuron": "alif", "refractory": 1}],
    ids=["two-layers-recurrent", "alif-refractory"],
)
def test_score_function_is_unbiased_and_straight_through_is_not(x64, config):
    """Score function: within 4 exact standard errors of ∇E[L] in every entry, its own SE
    near the exact one. Stochastic AD, beyond one spike-blind layer: biased."""
    spec, params, inputs = problem(**config)
    loss = eq.count_loss(np.ones(spec.sizes[-1]), multilinear=True)
    exact = flat(eq.exact_expected_gradient(spec, params, inputs, loss).grad)
    estimate = eq.score_function_gradient(
        spec, params, inputs, loss, key=jax.random.key(7), n_samples=N_SAMPLES
    )
    se = exact_score_stderr(spec, params, inputs, loss, N_SAMPLES)
    assert np.all(np.abs(flat(estimate.grad) - exact) <= 4 * se + 1e-12)
    assert 0.5 < np.linalg.norm(flat(estimate.stderr)) / np.linalg.norm(se) < 2
    expected_st = flat(eq.expected_stochastic_ad_gradient(spec, params, inputs, loss).grad)
    assert np.linalg.norm(expected_st - exact) > 0.05 * np.linalg.norm(exact)


def test_temperature_limits(x64):
    """T → 0: every gradient vanishes like e^{−min|m|/T} and stochastic AD becomes the
    deterministic surrogate gradient. T large: stochastic AD tends to the exact gradient, the
    deterministic surrogate does not."""
    config = dict(DEEP)
    spec0, params, inputs = problem(**{**config, "temperature": 0.0})
    loss = eq.count_loss(np.ones(2), multilinear=True)
    margin = min(float(np.min(np.abs(m))) for m in lif.simulate(spec0, params, inputs).margin)
    spec, _, _ = problem(**{**config, "temperature": margin / 20})
    exact = flat(eq.exact_expected_gradient(spec, params, inputs, loss).grad)
    surrogate = flat(eq.surrogate_gradient(spec, params, inputs, loss).grad)
    st = flat(eq.expected_stochastic_ad_gradient(spec, params, inputs, loss).grad)
    assert np.linalg.norm(st - surrogate) <= 1e-6 * np.linalg.norm(surrogate)
    assert np.linalg.norm(exact) < 1e-6
    colder, _, _ = problem(**{**config, "temperature": margin / 40})
    colder_exact = flat(eq.exact_expected_gradient(colder, params, inputs, loss).grad)
    assert np.linalg.norm(colder_exact) < 1e-6 * np.linalg.norm(exact)  # about e^{−20}
    errors = {}
    for temperature in (0.5, 10.0):
        spec, _, _ = problem(**{**config, "temperature": temperature})
        exact = flat(eq.exact_expected_gradient(spec, params, inputs, loss).grad)
        st = flat(eq.expected_stochastic_ad_gradient(spec, params, inputs, loss).grad)
        surrogate = flat(eq.surrogate_gradient(spec, params, inputs, loss).grad)
        errors[temperature] = (
            np.linalg.norm(st - exact) / np.linalg.norm(exact),
            np.linalg.norm(surrogate - exact) / np.linalg.norm(exact),
        )
    assert errors[10.0][0] < 0.3 * errors[0.5][0] and errors[10.0][0] < 0.05
    assert errors[10.0][1] > 0.5


# ------------------------------------------------------------------------- sweep, plot, checks


def test_sweep_reports_every_estimator_and_plots(x64):
    # the DEEP network at the temperatures of test_temperature_limits: compiled code is shared
    result = eq.surrogate_equivalence(
        temperatures=(0.5, 10.0),
        depths=(2,),
        recurrent=(True,),
        key=jax.random.key(0),
        n_samples=N_SAMPLES,
        n_steps=3,
        n_inputs=3,
    )
    assert len(result.cosine) == 2 * len(eq.ESTIMATORS)
    assert list(result.temperature) == [0.5] * 4 + [10.0] * 4
    assert list(result.estimator[:4]) == list(eq.ESTIMATORS)
    assert np.all(np.isfinite(result.cosine)) and np.all(result.exact_norm > 0)
    score = result.estimator == "score_function"
    assert np.all(result.cosine[score] > 0.9) and np.all(result.error_to_stderr[score] < 3)
    sampled = score | (result.estimator == "stochastic_ad")
    assert np.all(np.isnan(result.error_to_stderr[~sampled]))
    for metric in ("cosine", "relative_error"):
        _fig, ax = plt.subplots()
        assert plot.surrogate_equivalence(result, metric=metric, ax=ax) is ax
        drawn = [line for line in ax.lines if line.get_marker() in ("o", "s")]
        assert len(drawn) == len(eq.ESTIMATORS)  # one line of two temperatures each
    plt.close("all")
    with pytest.raises(ValueError, match="metric"):
        plot.surrogate_equivalence(result, metric="bias")


def test_bad_arguments_are_named():
    spec, params, inputs = problem((2, 2), 0.5, n_steps=2)
    loss = eq.count_loss(np.ones(2))
    with pytest.raises(ValueError, match="temperature"):
        eq.exact_expected_gradient(lif.LIFNetwork((2, 2)), params, inputs, loss)
    membrane = lif.LIFNetwork((2, 2, 2), output="membrane", temperature=0.5)
    with pytest.raises(ValueError, match="output"):
        eq.surrogate_gradient(membrane, lif.init_params(membrane, jax.random.key(0)), inputs, loss)
    with pytest.raises(ValueError, match="inputs"):
        eq.exact_expected_gradient(spec, params, inputs[None], loss)
    with pytest.raises(ValueError, match="loss"):
        eq.exact_expected_gradient(spec, params, inputs, lambda z: z.sum(-1))
    with pytest.raises(TypeError, match="loss"):
        eq.exact_expected_gradient(spec, params, inputs, "count")
    with pytest.raises(ValueError, match="n_samples"):
        eq.score_function_gradient(spec, params, inputs, loss, key=jax.random.key(0), n_samples=1)
    with pytest.raises(TypeError, match="key"):
        eq.stochastic_ad_gradient(spec, params, inputs, loss, key=0)
    with pytest.raises(ValueError, match="target"):
        eq.count_loss(np.ones((2, 2)))
    with pytest.raises(ValueError, match="weights"):
        eq.linear_loss(np.ones(3))
    with pytest.raises(ValueError, match="temperatures"):
        eq.surrogate_equivalence(temperatures=(), key=jax.random.key(0))
    with pytest.raises(ValueError, match="patterns"):
        eq.surrogate_equivalence(depths=(4,), n_steps=3, key=jax.random.key(0))
