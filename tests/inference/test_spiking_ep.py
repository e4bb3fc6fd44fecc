"""Tests of spiking equilibrium propagation (probsnn.inference.energy.spiking_ep)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probsnn.data import load_digits
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


@pytest.mark.slow
def test_digits_spiking_ep_within_three_points_of_real_valued_ep(digits):
    """Sigma-delta spiking EP and real-valued EP on the Scellier & Bengio (2017) setting."""
    images, labels = digits
    train, test = (images[:1347], labels[:1347]), (images[1347:], labels[1347:])
    spec = em.EnergyNetwork((64, 128, 10))
    params = em.init_params(spec, jax.random.key(0), gain=0.5)
    trainers = {
        "real": ep.ep_trainer(spec, optax.adam(2e-3), ep.EPConfig(beta=0.5)),
        "spiking": sep.spiking_ep_trainer(spec, optax.adam(2e-3), sep.SpikingEPConfig(beta=0.5)),
    }
    accuracy = {}
    for name, trainer in trainers.items():
        result = ep.fit_energy(
            trainer, params, train, key=jax.random.key(1), epochs=10, test=test, progress=False
        )
        accuracy[name] = result.history["test_accuracy"][-1]
    assert accuracy["real"] >= 0.95
    assert accuracy["spiking"] >= accuracy["real"] - 0.03
