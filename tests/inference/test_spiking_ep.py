"""Tests of spiking equilibrium propagation (probsnn.inference.energy.spiking_ep)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probsnn.data import load_digits
from probsnn.inference._training import fit
from probsnn.inference.energy import ep
from probsnn.inference.energy import spiking_ep as sep
from probsnn.models import energy as em


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    return images[order].reshape(-1, 64), labels[order]


@pytest.fixture(scope="module")
def network(digits):
    spec = em.EnergyNetwork((64, 32, 10))
    params = em.init_params(spec, jax.random.key(0), gain=0.5)
    inputs = jnp.asarray(digits[0][:16])
    fixed_point, info = ep.free_phase(
        spec, params, inputs, relaxation=ep.Relaxation(0.5, 2000, 1e-6)
    )
    assert bool(info.converged)
    return spec, params, inputs, fixed_point


def _distance(states, reference):
    return max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(states, reference, strict=True))


def test_sigma_delta_spike_counts_track_the_summed_rates():
    rates = jax.random.uniform(jax.random.key(0), (300, 5))

    def step(residues, rate):
        spikes, residues = sep.encode(rate, residues, None, "sigma_delta")
        return residues, spikes

    _, spikes = jax.lax.scan(step, jnp.zeros(5), rates)
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    gap = jnp.cumsum(rates, 0) - jnp.cumsum(spikes, 0)
    assert float(jnp.max(jnp.abs(gap))) <= 0.5 + 1e-5


def test_bernoulli_spikes_are_unbiased():
    rates = jnp.array([0.0, 0.1, 0.5, 0.9, 1.0])
    keys = jax.random.split(jax.random.key(1), 20_000)
    spikes = jax.vmap(lambda k: sep.encode(rates, None, k, "bernoulli")[0])(keys)
    standard_error = np.sqrt(rates * (1 - rates) / 20_000) + 1e-9
    assert np.all(np.abs(np.asarray(spikes.mean(0) - rates)) <= 4 * standard_error)


def test_annealed_spiking_relaxation_converges_to_the_real_fixed_point(network):
    spec, params, inputs, fixed_point = network
    key = jax.random.key(2)
    for coding, final_error in (("sigma_delta", 0.02), ("bernoulli", 0.1)):
        errors = []
        for n_steps in (100, 800):
            relaxation = sep.SpikingRelaxation(n_steps=n_steps, coding=coding)
            states, _, info = sep.spiking_relax(spec, params, inputs, key, relaxation=relaxation)
            errors.append(_distance(states, fixed_point))
            assert 0.0 < float(info.spike_rate) < 1.0 and int(info.steps) == n_steps
        assert errors[0] > 1.5 * errors[1] and errors[1] < final_error, (coding, errors)
    constant = sep.SpikingRelaxation(n_steps=800, decay=0.0, coding="bernoulli")
    states, _, info = sep.spiking_relax(spec, params, inputs, key, relaxation=constant)
    assert _distance(states, fixed_point) > 2 * errors[1] and not bool(info.converged)


def test_spiking_estimate_agrees_with_real_valued_ep(network, digits):
    spec, params, inputs, _ = network
    targets = jax.nn.one_hot(digits[1][:16], 10)
    exact, _, _ = ep.ep_estimate(
        spec,
        params,
        inputs,
        targets,
        beta=0.5,
        free=ep.Relaxation(0.5, 2000, 1e-6),
        nudged=ep.Relaxation(0.5, 2000, 1e-6),
    )
    for coding, minimum in (("sigma_delta", 0.99), ("bernoulli", 0.9)):
        config = sep.SpikingEPConfig(
            beta=0.5,
            free=sep.SpikingRelaxation(400, coding=coding),
            nudged=sep.SpikingRelaxation(400, coding=coding),
        )
        estimate, signals, info = sep.spiking_ep_estimate(
            spec, params, inputs, targets, jax.random.key(3), config
        )
        assert ep.cosine_similarity(estimate, exact) >= minimum, coding
        assert signals.nudged_states[0].shape == (2, 16, 32) and info.nudged.steps.shape == (2,)


def test_compile_size_does_not_grow_with_the_number_of_spiking_steps(network):
    spec, params, inputs, _ = network

    def equations(n_steps):
        relaxation = sep.SpikingRelaxation(n_steps=n_steps)
        run = jax.make_jaxpr(
            lambda x: sep.spiking_relax(spec, params, x, jax.random.key(0), relaxation=relaxation)
        )
        return len(run(inputs).eqns)

    assert equations(10) == equations(10_000)


def test_bad_spiking_settings_raise(network, digits):
    spec, params, inputs, _ = network
    targets = jax.nn.one_hot(digits[1][:16], 10)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="activation must be 'hard_sigmoid' or 'sigmoid'"):
        sep.spiking_relax(em.EnergyNetwork((64, 32, 10), "tanh"), params, inputs, key)
    with pytest.raises(ValueError, match="coding must be one of"):
        sep.spiking_relax(spec, params, inputs, key, relaxation=sep.SpikingRelaxation(coding="x"))
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\]"):
        sep.spiking_relax(spec, params, inputs, key, relaxation=sep.SpikingRelaxation(decay=2.0))
    with pytest.raises(ValueError, match="n_steps must be an integer"):
        sep.spiking_relax(spec, params, inputs, key, relaxation=sep.SpikingRelaxation(n_steps=0))
    with pytest.raises(ValueError, match="targets are needed"):
        sep.spiking_relax(spec, params, inputs, key, beta=0.5)
    with pytest.raises(ValueError, match="inputs must be finite"):
        sep.spiking_relax(spec, params, inputs.at[0, 0].set(jnp.nan), key)
    with pytest.raises(ValueError, match="beta must be nonzero"):
        sep.spiking_ep_estimate(spec, params, inputs, targets, key, sep.SpikingEPConfig(beta=0.0))
    with pytest.raises(ValueError, match="holomorphic"):
        sep.spiking_ep_trainer(spec, optax.sgd(0.1), sep.SpikingEPConfig(estimator="holomorphic"))


def test_spiking_trainer_step_follows_the_spiking_estimate_and_predicts(network, digits):
    """One step with plain SGD moves the parameters by −lr times the spiking EP estimate drawn
    with the same key; spiking_predict is the readout after the spiking free phase."""
    spec, params, inputs, _ = network
    targets = jax.nn.one_hot(digits[1][:16], 10)
    config = sep.SpikingEPConfig(
        beta=0.5, free=sep.SpikingRelaxation(60), nudged=sep.SpikingRelaxation(30)
    )
    trainer = sep.spiking_ep_trainer(spec, optax.sgd(0.1), config)
    key = jax.random.key(4)
    state, info = trainer.step(key, trainer.init(params), ep.EPBatch(inputs, targets))
    estimate, signals, _ = sep.spiking_ep_estimate(spec, params, inputs, targets, key, config)
    leaves = map(jax.tree.leaves, (state.params, params, estimate))
    for new, old, g in zip(*leaves, strict=True):
        np.testing.assert_allclose(new - old, -0.1 * g, rtol=1e-4, atol=1e-7)
    assert state.particles is None and int(state.step) == 1
    assert info.nudged.spike_rate.shape == (2,) and 0 < float(info.free.spike_rate) < 1
    scores = sep.spiking_predict(spec, params, inputs, config.free)
    expected = em.output_scores(spec, params, signals.free_states)
    np.testing.assert_allclose(scores, expected, atol=1e-6)  # sigma-delta: no randomness
    predictor = functools.partial(sep.spiking_predict, spec, relaxation=config.free)
    labels = np.asarray(jnp.argmax(scores, -1))
    assert ep.classification_accuracy(predictor, params, inputs, labels) == 1.0


@pytest.mark.slow
def test_digits_spiking_ep_within_three_points_of_real_valued_ep(digits):
    """Sigma-delta spiking EP and real-valued EP on the Scellier & Bengio (2017) setting."""
    images, labels = digits
    train, test = (images[:1347], labels[:1347]), (images[1347:], labels[1347:])
    spec = em.EnergyNetwork((64, 128, 10))
    params = em.init_params(spec, jax.random.key(0), gain=0.5)
    real, spiking = ep.EPConfig(beta=0.5), sep.SpikingEPConfig(beta=0.5)
    trainers = {
        "real": (
            ep.ep_trainer(spec, optax.adam(2e-3), real),
            functools.partial(ep.predict, spec, relaxation=real.free),
        ),
        "spiking": (
            sep.spiking_ep_trainer(spec, optax.adam(2e-3), spiking),
            functools.partial(sep.spiking_predict, spec, relaxation=spiking.free),
        ),
    }
    data = ep.classification_data(spec, *train)
    accuracy = {}
    for name, (trainer, predictor) in trainers.items():
        result = fit(
            trainer, params, data, key=jax.random.key(1), epochs=10, batch_size=32, progress=False
        )
        accuracy[name] = ep.classification_accuracy(predictor, result.params, *test)
    assert accuracy["real"] >= 0.95
    assert accuracy["spiking"] >= accuracy["real"] - 0.03
