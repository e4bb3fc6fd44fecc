"""OpenAI evolution strategies (inference/reinforcement/evolution.py).

The estimator is checked on fitness functions whose gradient is known: for a quadratic F the
antithetic estimate is (2/P) Σ_i ε_i ε_iᵀ ∇F exactly, with mean ∇F and covariance
(|∇F|² I + ∇F ∇Fᵀ)/(P/2) (Isserlis), which sets the tolerance; the plain estimate is unbiased for
a quadratic too, its tolerance the sample standard error of its P terms. The trainer is checked
against the estimator on the step's own episodes, and on CartPole for a fixed seed.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import probsnn.rl as rl
from probsnn.inference import fit
from probsnn.inference.reinforcement.evolution import (
    centered_ranks,
    es_gradient,
    evolution_strategies_trainer,
    perturbations,
)
from probsnn.rl import episodes as rollouts

TWO_STATES = dict(
    transitions=[[[0.8, 0.2], [0.3, 0.7]], [[0.5, 0.5], [0.1, 0.9]]],
    rewards=[[1.0, -0.5], [0.2, 2.0]],
    initial=[0.6, 0.4],
    horizon=4,
)


def quadratic(d, seed=0):
    """F(θ) = −½ (θ − m)ᵀ A (θ − m) + 3 with A SPD; returns (F, ∇F, θ)."""
    rng = np.random.default_rng(seed)
    root = rng.normal(size=(d, d)) / np.sqrt(d)
    a = root @ root.T + 0.5 * np.eye(d)
    m, theta = rng.normal(size=d), rng.normal(size=d)

    def fitness(x):
        return -0.5 * jnp.einsum("...i,ij,...j->...", x - m, a, x - m) + 3.0

    return fitness, -a @ (theta - m), jnp.asarray(theta, jnp.float32)


def test_antithetic_estimate_matches_the_gradient_of_a_quadratic_within_its_error():
    d, population, sigma = 6, 8192, 0.1
    fitness, gradient, theta = quadratic(d)
    noise = perturbations(jax.random.key(0), d, population, antithetic=True)
    estimate = -np.asarray(es_gradient(noise, fitness(theta + sigma * noise), sigma, "none"))
    # (2/P) Σ εεᵀg: per component variance (|g|² + g_j²)/(P/2)
    se = np.sqrt((gradient @ gradient + gradient**2) / (population // 2))
    z = (estimate - gradient) / se
    assert np.max(np.abs(z)) < 4.5, z  # P(max |z| > 4.5) ≈ 4e-5 for 6 components
    # and the error is the Monte-Carlo error, not zero: the test could see a wrong sign or scale
    assert np.linalg.norm(estimate - gradient) > 0.1 * np.linalg.norm(se)


def test_plain_estimate_matches_the_gradient_of_a_quadratic_within_its_standard_error():
    d, population, sigma = 6, 20000, 0.1
    fitness, gradient, theta = quadratic(d, seed=1)
    noise = perturbations(jax.random.key(1), d, population, antithetic=False)
    f = fitness(theta + sigma * noise)
    estimate = -np.asarray(es_gradient(noise, f, sigma, "none"))
    terms = np.asarray(f)[:, None] * np.asarray(noise) / sigma  # the P i.i.d. terms
    se = terms.std(0, ddof=1) / np.sqrt(population)
    z = (estimate - gradient) / se
    assert np.max(np.abs(z)) < 4.5, z


def test_antithetic_pairs_mirror_and_cancel_a_constant_fitness():
    noise = np.asarray(perturbations(jax.random.key(2), 5, 10, antithetic=True))
    np.testing.assert_array_equal(noise[5:], -noise[:5])
    assert np.all(np.abs(noise[:5]) > 0)
    f = jnp.asarray(np.random.default_rng(0).normal(size=10), jnp.float32)
    shifted = es_gradient(jnp.asarray(noise), f + 100.0, 0.2, "none")
    np.testing.assert_allclose(shifted, es_gradient(jnp.asarray(noise), f, 0.2, "none"), atol=2e-4)
    # a linear fitness ranks the mirror of a member at the mirrored rank: u_{i+P/2} = −u_i
    u = np.asarray(centered_ranks(jnp.asarray(noise) @ jnp.arange(1.0, 6.0)))
    np.testing.assert_allclose(u[5:], -u[:5], atol=1e-7)


def test_centered_ranks_by_enumeration():
    u = centered_ranks(jnp.array([3.0, -1.0, 2.0, 10.0, 0.5]))
    np.testing.assert_allclose(u, np.array([3, 0, 2, 4, 1]) / 4 - 0.5, atol=1e-7)
    # shaping uses the ranks only: a monotone transformation of the fitness changes nothing
    noise = perturbations(jax.random.key(3), 4, 6, antithetic=True)
    f = jnp.array([0.1, 5.0, -2.0, 0.3, 7.0, 1.0])
    np.testing.assert_allclose(
        es_gradient(noise, f, 0.5), es_gradient(noise, jnp.exp(f) - 4.0, 0.5), atol=1e-6
    )


def tiny_spiking(mdp):
    return rl.SpikingPolicy(
        mdp.n_states, mdp.n_actions, n_hidden=2, receptive_fields=2, micro_steps=2, group_size=1
    )


POPULATION, SIGMA, N_EPISODES = 6, 0.2, 3


@functools.cache
def small_problem(kind):
    """(policy, environment, trainer) shared by the tests (one compilation each)."""
    mdp = rl.TabularMDP(**TWO_STATES)
    policy = tiny_spiking(mdp) if kind == "spiking" else rl.MLPPolicy.for_environment(mdp)
    trainer = evolution_strategies_trainer(
        policy, mdp, optax.sgd(0.5), population=POPULATION, sigma=SIGMA, n_episodes=N_EPISODES
    )
    return policy, mdp, trainer


@pytest.mark.parametrize("kind", ["spiking", "mlp"])
def test_trainer_step_is_es_on_the_keys_members_and_episodes(kind):
    """One step = P members θ + σε (fixed synapses outside the mask), n_episodes of each from
    the step's key, centred-rank fitness, −ĝ through the optimizer; Info reports them."""
    policy, mdp, trainer = small_problem(kind)
    params = policy.init_params(jax.random.key(0))
    population, sigma, n_episodes = POPULATION, SIGMA, N_EPISODES
    key = jax.random.key(4)
    state, info = trainer.step(key, trainer.init(params))
    # the oracle, written out member by member
    theta, unravel = ravel_pytree(params)
    key_noise, key_episodes = jax.random.split(key)
    half = np.asarray(jax.random.normal(key_noise, (population // 2, theta.size)))
    noise = np.concatenate([half, -half])
    if kind == "spiking":
        mask_w = np.broadcast_to(policy.network.connectivity[:, :, None], params.w.shape)
        mask_w = mask_w.ravel()  # w is the first leaf of the flattened Params
        noise = noise * np.concatenate([mask_w, np.ones(theta.size - mask_w.size)])
    returns = []
    for member, member_key in zip(noise, jax.random.split(key_episodes, population), strict=True):
        trajectory = rl.rollout(policy, unravel(theta + sigma * member), mdp, member_key, 3)
        returns.append(np.asarray(rl.episode_returns(trajectory)))
    returns = np.array(returns)
    fitness = returns.mean(1)
    u = np.argsort(np.argsort(fitness, kind="stable"), kind="stable") / (population - 1) - 0.5
    expected = np.asarray(theta) + 0.5 * (u @ noise) / (population * sigma)
    np.testing.assert_allclose(ravel_pytree(state.params)[0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(info.loss, -fitness.mean(), rtol=1e-6)
    np.testing.assert_allclose(info.mean_return, returns.mean(), rtol=1e-6)
    np.testing.assert_allclose(info.best_return, fitness.max(), rtol=1e-6)
    assert int(state.episodes) == population * n_episodes
    if kind == "spiking":
        assert float(info.spikes_per_step) > 0
        outside = ~policy.network.connectivity
        np.testing.assert_array_equal(np.asarray(state.params.w)[outside], 0.0)
    else:
        assert float(info.spikes_per_step) == 0.0
    assert len(set(np.round(fitness, 5))) > 1  # the members differ


def test_trainer_is_deterministic_under_the_same_key():
    policy, _, trainer = small_problem("spiking")
    state = trainer.init(policy.init_params(jax.random.key(0)))
    a, info_a = trainer.step(jax.random.key(1), state)
    b, info_b = trainer.step(jax.random.key(1), state)
    c, _ = trainer.step(jax.random.key(2), state)
    for x, y in zip(jax.tree.leaves((a, info_a)), jax.tree.leaves((b, info_b)), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(ravel_pytree(a.params)[0], ravel_pytree(c.params)[0])


def test_es_improves_a_spiking_policy_on_cartpole():
    """20 steps of 32 members (640 episodes of at most 200 steps), fixed seeds: the mean return
    of 64 evaluation episodes at least doubles (measured: 25.8 -> 102)."""
    env = rl.make("cartpole")
    policy = rl.SpikingPolicy.for_environment(env)
    params = policy.init_params(jax.random.key(0))
    trainer = evolution_strategies_trainer(policy, env, n_steps=200)
    result = fit(trainer, params, None, key=jax.random.key(10), epochs=20, progress=False)

    def score(p):
        trajectory = rollouts.rollout(policy, p, env, jax.random.key(7), 64, 200)
        return float(rl.episode_returns(trajectory).mean())

    before, after = score(params), score(result.params)
    assert after >= 2 * before, (before, after)
    assert int(result.state.episodes) == 20 * 32
    assert result.history["best_return"].max() > result.history["mean_return"].max()


# -- bad input ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setting():
    mdp = rl.TabularMDP(**TWO_STATES)
    return mdp, tiny_spiking(mdp)


@pytest.mark.parametrize(
    "options, error, words",
    [
        (dict(population=1), ValueError, "population"),
        (dict(population=7), ValueError, "even"),
        (dict(population=2.0), TypeError, "population"),
        (dict(sigma=0.0), ValueError, "sigma"),
        (dict(sigma=-0.1), ValueError, "sigma"),
        (dict(sigma=float("inf")), ValueError, "sigma"),
        (dict(sigma="0.1"), TypeError, "sigma"),
        (dict(n_episodes=0), ValueError, "n_episodes"),
        (dict(n_steps=0), ValueError, "n_steps"),
        (dict(antithetic="yes"), TypeError, "antithetic"),
        (dict(fitness_shaping="ranks"), ValueError, "fitness_shaping"),
        (dict(optimizer="adam"), TypeError, "optimizer"),
    ],
)
def test_trainer_refuses_bad_options(setting, options, error, words):
    mdp, policy = setting
    with pytest.raises(error, match=words):
        evolution_strategies_trainer(policy, mdp, **options)


def test_trainer_accepts_an_odd_population_without_antithetic_sampling(setting):
    mdp, policy = setting
    trainer = evolution_strategies_trainer(policy, mdp, population=3, antithetic=False)
    state, _ = trainer.step(jax.random.key(0), trainer.init(policy.init_params(jax.random.key(0))))
    assert int(state.episodes) == 3


def test_trainer_refuses_wrong_environments_params_keys_and_batches(setting):
    mdp, policy = setting
    with pytest.raises(TypeError, match="environment"):
        evolution_strategies_trainer(policy, "cartpole")
    with pytest.raises(ValueError, match="observations of size"):
        evolution_strategies_trainer(rl.SpikingPolicy(3, 2), mdp)
    trainer = evolution_strategies_trainer(policy, mdp, population=2)
    with pytest.raises(TypeError, match=r"probsnn\.Params"):
        trainer.init(rl.MLPPolicy.for_environment(mdp).init_params(jax.random.key(0)))
    state = trainer.init(policy.init_params(jax.random.key(0)))
    with pytest.raises(TypeError, match="key"):
        trainer.step(0, state)
    with pytest.raises(ValueError, match="batch=None"):
        trainer.step(jax.random.key(0), state, jnp.zeros(3))
