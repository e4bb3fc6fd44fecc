"""LIF/ALIF/SRM0 networks (probsnn.lif) and surrogate spike functions (probsnn.surrogate).

The oracle is a plain numpy loop over bins, layers and neurons of the equations in the
module docstring, written independently of the scan.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probsnn import lif, surrogate


def reference(spec: lif.LIFNetwork, params, inputs, uniforms=None):
    """Numpy loop: returns (spikes, voltages, margins) per layer, each (B, T, N_l).

    ``uniforms`` (per layer (B, T, N_l)) decides escape-noise spikes as u < σ(m/T)."""
    params = [[np.asarray(a, np.float64) for a in layer] for layer in params]
    x = np.asarray(inputs, np.float64)
    n_batch, n_steps, _ = x.shape
    a, a_s, rho = spec.alpha, spec.alpha_syn, spec.rho
    outs = [[np.zeros((n_batch, n_steps, n)) for _ in range(3)] for n in spec.sizes[1:]]
    for b in range(n_batch):
        state = [
            {
                "I": np.zeros(n),
                "v": np.zeros(n),
                "a": np.zeros(n),
                "r": np.zeros(n, int),
                "z": np.zeros(n),
            }
            for n in spec.sizes[1:]
        ]
        for t in range(n_steps):
            drive = x[b, t]
            for layer, (w_in, w_rec, bias) in enumerate(params):
                s = state[layer]
                n = len(bias)
                current = a_s * s["I"] + drive @ w_in
                if spec.recurrent:
                    current = current + s["z"] @ w_rec
                v = np.empty(n)
                for i in range(n):
                    if spec.reset == "subtract":
                        v[i] = a * s["v"][i] + current[i] + bias[i] - spec.threshold * s["z"][i]
                    elif spec.reset == "zero":
                        v[i] = a * s["v"][i] * (1 - s["z"][i]) + current[i] + bias[i]
                    else:
                        v[i] = a * s["v"][i] + current[i] + bias[i]
                membrane = spec.output == "membrane" and layer == spec.n_layers - 1
                z = np.zeros(n)
                margin = v.copy()
                if not membrane:
                    adapt = rho * s["a"] + s["z"] if spec.neuron == "alif" else s["a"]
                    margin = v - (spec.threshold + spec.adapt_strength * adapt)
                    for i in range(n):
                        if s["r"][i] > 0:
                            z[i] = 0.0
                        elif spec.temperature > 0:
                            p = 1.0 / (1.0 + math.exp(-margin[i] / spec.temperature))
                            z[i] = float(uniforms[layer][b, t, i] < p)
                        else:
                            z[i] = float(margin[i] > 0)
                    s["a"] = adapt
                    s["r"] = np.where(z > 0, spec.refractory, np.maximum(s["r"] - 1, 0))
                s["I"], s["v"], s["z"] = current, v, z
                for k, value in enumerate((z, v, margin)):
                    outs[layer][k][b, t] = value
                drive = z
    return outs


def random_params(spec, seed, gain=2.5):
    params = lif.init_params(spec, jax.random.key(seed), gain=gain, recurrent_gain=1.0)
    rng = np.random.default_rng(seed)
    return tuple(
        p._replace(bias=jnp.asarray(rng.normal(0.2, 0.3, p.bias.shape), jnp.float32))
        for p in params
    )


def input_spikes(seed, shape, rate=0.3):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


# every option value appears, with refractoriness tied to recurrence and the membrane read-out
# to the reset to zero, so that 10 networks (each its own compilation) cover them
OPTIONS = [
    dict(
        neuron=neuron,
        reset=reset,
        recurrent=recurrent,
        refractory=2 if recurrent else 0,
        output="membrane" if reset == "zero" else "spike",
    )
    for neuron, reset, recurrent in itertools.product(
        ("lif", "alif"), ("subtract", "zero"), (False, True)
    )
] + [dict(neuron="srm0", recurrent=r, output=o) for r, o in ((False, "membrane"), (True, "spike"))]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
def test_deterministic_simulation_equals_numpy_loop(options, x64):
    spec = lif.LIFNetwork((3, 4, 2), tau_syn=4e-3, tau_adapt=30e-3, adapt_strength=0.7, **options)
    params = random_params(spec, 1)
    inputs = input_spikes(2, (2, 40, 3))
    record = lif.simulate(spec, params, inputs)
    expected = reference(spec, params, inputs)
    for layer in range(spec.n_layers):
        np.testing.assert_allclose(record.spikes[layer], expected[layer][0], atol=0)
        np.testing.assert_allclose(record.voltage[layer], expected[layer][1], atol=1e-10)
        np.testing.assert_allclose(record.margin[layer], expected[layer][2], atol=1e-10)
    assert 0 < float(record.spikes[0].mean()) < 1  # the test exercises spikes and silence


@pytest.mark.parametrize("tau_mem, tau_syn", [(np.inf, 0.0), (0.0, 0.0), (10e-3, np.inf)])
def test_extreme_time_constants_equal_numpy_loop(tau_mem, tau_syn, x64):
    spec = lif.LIFNetwork((2, 3), tau_mem=tau_mem, tau_syn=tau_syn, threshold=0.5)
    assert spec.alpha == (1.0 if tau_mem else 0.0) or tau_mem == 10e-3
    params = random_params(spec, 3, gain=0.5)
    inputs = input_spikes(4, (1, 30, 2))
    record = lif.simulate(spec, params, inputs)
    np.testing.assert_allclose(record.voltage[0], reference(spec, params, inputs)[0][1], atol=1e-9)


def test_stochastic_spikes_and_log_prob_equal_numpy(x64):
    """Escape noise: the sampled spikes are decided by σ(m/T) in the oracle with the same
    uniforms, and log_prob equals the oracle's sum of Bernoulli log-probabilities."""
    spec = lif.LIFNetwork((3, 4, 3), neuron="alif", recurrent=True, refractory=1, temperature=0.4)
    params = random_params(spec, 5)
    inputs = input_spikes(6, (3, 25, 3))
    record = lif.simulate(spec, params, inputs, jax.random.key(7))
    spikes = tuple(np.asarray(s) for s in record.spikes)
    # the oracle run with uniforms that reproduce the sampled spikes: u = 0 for spikes, 1 else
    uniforms = [np.where(s > 0, 0.0, 1.0 - 1e-15) for s in spikes]
    expected = reference(spec, params, inputs, uniforms)
    logp = 0.0
    for layer in range(spec.n_layers):
        np.testing.assert_allclose(spikes[layer], expected[layer][0])
        m = expected[layer][2] / spec.temperature
        z = spikes[layer]
        refractory = np.zeros_like(z, bool)
        refractory[:, 1:] = z[:, :-1] > 0  # refractory = 1 bin
        terms = z * -np.logaddexp(0, -m) + (1 - z) * -np.logaddexp(0, m)
        logp = logp + np.where(refractory, 0.0, terms).sum(axis=(1, 2))
    np.testing.assert_allclose(lif.log_prob(spec, params, inputs, spikes), logp, rtol=1e-10)


def test_spike_frequencies_follow_escape_probability():
    """One neuron, constant input, reset none, no memory: each bin spikes with σ(m/T)
    independently; the count over 20,000 bins is within 4 binomial SDs."""
    spec = lif.LIFNetwork((1, 1), neuron="srm0", tau_mem=0.0, tau_syn=0.0, temperature=0.5)
    params = (lif.LayerParams(jnp.full((1, 1), 0.3), jnp.zeros((0, 1)), jnp.full((1,), -0.5)),)
    n = 20_000
    record = lif.simulate(spec, params, np.ones((n, 1), np.float32), jax.random.key(0))
    p = 1 / (1 + math.exp(-(0.3 - 0.5 - 1.0) / 0.5))
    count = float(record.spikes[0].sum())
    assert abs(count - n * p) < 4 * math.sqrt(n * p * (1 - p))


def test_zero_temperature_limit():
    """As T -> 0 the escape-noise spikes equal the deterministic spikes (margins are kept away
    from 0) and every log-probability stays finite."""
    options = dict(neuron="alif", recurrent=True, refractory=1)
    deterministic = lif.LIFNetwork((3, 5, 2), **options)
    params = random_params(deterministic, 8)
    inputs = input_spikes(9, (4, 60, 3))
    hard = lif.simulate(deterministic, params, inputs)
    assert min(float(jnp.abs(m).min()) for m in hard.margin) > 1e-3
    mismatches = []
    for temperature in (1.0, 0.3, 0.1, 1e-2, 1e-4):
        spec = lif.LIFNetwork((3, 5, 2), temperature=temperature, **options)
        soft = lif.simulate(spec, params, inputs, jax.random.key(10))
        mismatches.append(
            sum(float(jnp.abs(s - h).sum()) for s, h in zip(soft.spikes, hard.spikes, strict=True))
        )
        logp = lif.log_prob(spec, params, inputs, soft.spikes)
        assert np.all(np.isfinite(np.asarray(logp)))
    assert mismatches[-1] == 0
    assert mismatches[0] > mismatches[2] >= mismatches[-1]


def test_log_prob_of_refractory_spike_is_minus_infinity():
    spec = lif.LIFNetwork((1, 1), refractory=2, temperature=1.0)
    params = lif.init_params(spec, jax.random.key(0))
    spikes = (np.array([[1.0], [1.0], [0.0]]),)
    assert float(lif.log_prob(spec, params, np.zeros((3, 1)), spikes)) == -np.inf


def test_batch_axes_lead_and_unbatched_inputs():
    spec = lif.LIFNetwork((2, 3))
    params = random_params(spec, 0)
    inputs = input_spikes(1, (2, 3, 10, 2))
    batched = lif.simulate(spec, params, inputs)
    assert batched.spikes[0].shape == (2, 3, 10, 3)
    single = lif.simulate(spec, params, inputs[1, 2])
    np.testing.assert_array_equal(single.spikes[0], batched.spikes[0][1, 2])


def test_gradient_is_the_surrogate_derivative():
    """One neuron, one bin: d z / d bias = h(m) of the spec's surrogate."""
    for kind in surrogate.SURROGATES:
        spec = lif.LIFNetwork((1, 1), surrogate=kind, surrogate_scale=0.3)
        params = (lif.LayerParams(jnp.ones((1, 1)), jnp.zeros((0, 1)), jnp.full((1,), 0.2)),)
        inputs = np.full((1, 1), 0.5, np.float32)

        def spike(bias, spec=spec, params=params, inputs=inputs):
            layer = params[0]._replace(bias=bias)
            return lif.simulate(spec, (layer,), inputs).spikes[0].sum()

        grad = jax.grad(spike)(params[0].bias)
        expected = surrogate.surrogate_derivative(0.5 + 0.2 - 1.0, kind, 0.3)
        np.testing.assert_allclose(grad, [expected], rtol=1e-6)


def smooth_step(kind, x, s):
    if kind == "sigmoid":
        return jax.nn.sigmoid(x / s)
    if kind == "fast_sigmoid":
        return 0.5 + 0.5 * (x / s) / (1 + jnp.abs(x / s))
    if kind == "arctan":
        return 0.5 + jnp.arctan(x / s) / jnp.pi
    u = jnp.clip(x / s, -1, 1)
    return jnp.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)


@pytest.mark.parametrize("kind", surrogate.SURROGATES)
def test_surrogates_are_derivatives_of_smooth_steps(kind, x64):
    x = jnp.linspace(-3.0, 3.0, 301)
    h = surrogate.surrogate_derivative(x, kind, 0.7)
    np.testing.assert_allclose(h, jax.vmap(jax.grad(lambda v: smooth_step(kind, v, 0.7)))(x))
    grid = np.linspace(-2000, 2000, 2_000_001)
    integral = np.trapezoid(np.asarray(surrogate.surrogate_derivative(grid, kind, 0.7)), grid)
    assert abs(integral - 1.0) < 2e-3  # the Cauchy tail beyond ±2000 holds ~2e-4


def test_heaviside_forward_and_backward():
    x = jnp.array([-1.0, -1e-7, 0.0, 1e-7, 2.0])
    np.testing.assert_array_equal(surrogate.heaviside(x), [0, 0, 0, 1, 1])
    grad = jax.vmap(jax.grad(lambda v: surrogate.heaviside(v, "triangle", 0.5)))(x)
    np.testing.assert_allclose(grad, surrogate.surrogate_derivative(x, "triangle", 0.5))


def test_straight_through_keeps_the_sample():
    margin = jnp.array([-0.5, 0.5, 2.0])
    sample = jnp.array([1.0, 0.0, 1.0])
    np.testing.assert_array_equal(
        surrogate.straight_through(sample, margin, "sigmoid", 1.0), sample
    )
    grad = jax.grad(lambda m: surrogate.straight_through(sample, m, "sigmoid", 1.0).sum())(margin)
    np.testing.assert_allclose(grad, surrogate.surrogate_derivative(margin, "sigmoid", 1.0))


def test_compiles_once_per_shape():
    spec = lif.LIFNetwork((2, 3), temperature=0.5)
    params = random_params(spec, 0)
    lif._simulate._clear_cache()
    for seed in range(3):
        params = tuple(p._replace(bias=p.bias + seed) for p in params)
        lif.simulate(spec, params, input_spikes(seed, (2, 10, 2)), jax.random.key(seed))
    assert lif._simulate._cache_size() == 1


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(sizes=(3,)), ValueError, "sizes"),
        (dict(sizes=3), TypeError, "sizes"),
        (dict(sizes=(3, 0)), ValueError, "sizes[1]"),
        (dict(sizes=(3, 2), neuron="izhikevich"), ValueError, "neuron"),
        (dict(sizes=(3, 2), reset="soft"), ValueError, "reset"),
        (dict(sizes=(3, 2), neuron="srm0", reset="zero"), ValueError, "srm0"),
        (dict(sizes=(3, 2), tau_mem=-1.0), ValueError, "tau_mem"),
        (dict(sizes=(3, 2), tau_syn=float("nan")), ValueError, "tau_syn"),
        (dict(sizes=(3, 2), tau_adapt=1j), TypeError, "tau_adapt"),
        (dict(sizes=(3, 2), temperature=-0.1), ValueError, "temperature"),
        (dict(sizes=(3, 2), threshold=float("inf")), ValueError, "threshold"),
        (dict(sizes=(3, 2), refractory=1.5), TypeError, "refractory"),
        (dict(sizes=(3, 2), output="membrane"), ValueError, "membrane"),
        (dict(sizes=(3, 2), surrogate="relu"), ValueError, "surrogate"),
        (dict(sizes=(3, 2), surrogate_scale=0.0), ValueError, "surrogate_scale"),
        (dict(sizes=(3, 2), recurrent="yes"), TypeError, "recurrent"),
        (dict(sizes=(3, 2), dt=0.0), ValueError, "dt"),
    ],
)
def test_bad_spec_arguments_are_named(kwargs, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        lif.LIFNetwork(**kwargs)


def test_bad_call_arguments_are_named():
    spec = lif.LIFNetwork((2, 3), recurrent=True)
    params = lif.init_params(spec, jax.random.key(0))
    inputs = np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError, match="inputs must end with dimensions"):
        lif.simulate(spec, params, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="inputs must be finite"):
        lif.simulate(spec, params, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="inputs must not be empty"):
        lif.simulate(spec, params, np.zeros((0, 2)))
    with pytest.raises(TypeError, match="inputs must be a real array"):
        lif.simulate(spec, params, np.zeros((5, 2), complex))
    with pytest.raises(ValueError, match=r"layer 0: params.w_rec must have shape \(3, 3\)"):
        lif.simulate(spec, (params[0]._replace(w_rec=jnp.zeros((0, 3))),), inputs)
    with pytest.raises(TypeError, match="tuple of 1 LayerParams"):
        lif.simulate(spec, params[0], inputs)
    with pytest.raises(ValueError, match=r"params\[0\].bias must be finite"):
        lif.simulate(spec, (params[0]._replace(bias=jnp.full(3, jnp.nan)),), inputs)
    with pytest.raises(ValueError, match="temperature > 0"):
        lif.log_prob(spec, params, inputs, (np.zeros((5, 3)),))
    noisy = lif.LIFNetwork((2, 3), temperature=1.0)
    noisy_params = lif.init_params(noisy, jax.random.key(0))
    with pytest.raises(TypeError, match="key is required"):
        lif.simulate(noisy, noisy_params, inputs)
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        lif.simulate(noisy, noisy_params, inputs, 0)
    with pytest.raises(ValueError, match="binary"):
        lif.log_prob(noisy, noisy_params, inputs, (np.full((5, 3), 2.0),))
    with pytest.raises(ValueError, match=r"spikes\[0\] must have shape \(5, 3\)"):
        lif.log_prob(noisy, noisy_params, inputs, (np.zeros((4, 3)),))
    with pytest.raises(TypeError, match="tuple of 1 arrays"):
        lif.log_prob(noisy, noisy_params, inputs, np.zeros((5, 3)))
    with pytest.raises(TypeError, match="spec must be a LIFNetwork"):
        lif.init_params("lif", jax.random.key(0))
    with pytest.raises(ValueError, match="surrogate"):
        surrogate.heaviside(jnp.zeros(2), "step")
    with pytest.raises(TypeError, match="margin must be a real float"):
        surrogate.heaviside(jnp.zeros(2, jnp.int32))
