"""Tests of equilibrium propagation (probsnn.inference.energy.ep): relaxations, estimators against
the exact gradient, the equivalence with recurrent backprop, the optax rule, the trainers and
prediction."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probsnn.data import load_digits
from probsnn.inference._training import fit
from probsnn.inference.energy import ep
from probsnn.models import energy as em

TIGHT = ep.Relaxation(step_size=0.5, max_steps=5000, tol=1e-11)


@pytest.fixture
def float64():
    with jax.enable_x64(True):
        yield


def _problem(activation="sigmoid", cost="squared_error", sizes=(5, 8, 6, 3), batch=4, seed=0):
    """A small network whose fixed points have units both inside and on the box bounds."""
    spec = em.EnergyNetwork(sizes, activation, cost)
    dtype = jnp.result_type(float)
    keys = jax.random.split(jax.random.key(seed), 4)
    params = em.init_params(spec, keys[0], gain=0.6, dtype=dtype)
    biases = tuple(
        0.5 + 0.2 * jax.random.normal(k, b.shape, dtype)
        for k, b in zip(jax.random.split(keys[1], len(params.biases)), params.biases, strict=True)
    )
    params = params._replace(biases=biases)
    inputs = jax.random.uniform(keys[2], (batch, sizes[0]), dtype)
    labels = jax.random.randint(keys[3], (batch,), 0, sizes[-1])
    return spec, params, inputs, jax.nn.one_hot(labels, sizes[-1], dtype=dtype)


# ---------------------------------------------------------------------------- relaxation


def test_free_phase_reaches_a_fixed_point():
    spec, params, inputs, _ = _problem("hard_sigmoid")
    relaxation = ep.Relaxation(step_size=0.5, max_steps=500, tol=1e-5)
    states, info = ep.free_phase(spec, params, inputs, relaxation=relaxation)
    assert bool(info.converged) and float(info.residual) <= 1e-5 and 0 < int(info.steps) < 500
    # Independently: the projected gradient ‖s − P(s − ∇E)‖ vanishes; interior units have ∂E/∂s = 0.
    gradient = em.energy_gradient(spec, params, inputs, states)
    for s, g in zip(states, gradient, strict=True):
        np.testing.assert_allclose(s - jnp.clip(s - g, 0, 1), 0.0, atol=2e-5)
        interior = (s > 1e-3) & (s < 1 - 1e-3)
        assert bool(jnp.any(interior)) and bool(jnp.any(~interior))
        np.testing.assert_allclose(jnp.where(interior, g, 0.0), 0.0, atol=2e-5)


def test_fixed_step_and_adaptive_relaxations_agree():
    spec, params, inputs, targets = _problem("sigmoid")
    adaptive = ep.Relaxation(step_size=0.5, max_steps=1000, tol=1e-6)
    fixed = ep.Relaxation(step_size=0.5, max_steps=400, tol=1e-6, adaptive=False)
    for beta in (0.0, 0.3):
        a, info_a = ep.relax(spec, params, inputs, None, targets, beta, adaptive)
        f, info_f = ep.relax(spec, params, inputs, None, targets, beta, fixed)
        assert bool(info_a.converged) and bool(info_f.converged) and int(info_f.steps) == 400
        assert int(info_a.steps) < 400
        for x, y in zip(a, f, strict=True):
            np.testing.assert_allclose(x, y, atol=1e-5)


def test_energy_decreases_along_the_free_phase():
    spec, params, inputs, _ = _problem("hard_sigmoid")
    path = ep.trajectory(spec, params, inputs, em.init_states(spec, 4), step_size=0.2, n_steps=60)
    energies = jax.vmap(lambda *s: em.energy(spec, params, inputs, s))(*path)
    assert energies.shape == (61, 4)
    assert float(jnp.max(jnp.diff(energies, axis=0))) <= 1e-5
    assert float(jnp.min(energies[0] - energies[-1])) > 0.1


def test_unconverged_and_diverged_relaxations_are_reported():
    spec, params, inputs, _ = _problem("sigmoid")
    _, info = ep.free_phase(spec, params, inputs, relaxation=ep.Relaxation(0.5, 3, 1e-6))
    assert int(info.steps) == 3 and not bool(info.converged)
    assert np.isfinite(float(info.residual)) and float(info.residual) > 1e-6
    broken = params._replace(biases=(params.biases[0].at[0].set(jnp.nan), *params.biases[1:]))
    _, info = ep.free_phase(spec, broken, inputs, relaxation=ep.Relaxation(0.5, 100, 1e-6))
    assert not bool(info.converged) and not np.isfinite(float(info.residual))
    assert int(info.steps) == 1  # stops at the first non-finite residual


def test_compile_size_does_not_grow_with_the_number_of_steps():
    spec, params, inputs, targets = _problem("hard_sigmoid")

    def program(max_steps, adaptive):
        relaxation = ep.Relaxation(0.5, max_steps, 1e-4, adaptive)
        run = jax.jit(lambda p, x: ep.relax(spec, p, x, None, targets, 0.5, relaxation))
        return run.lower(params, inputs).as_text()

    for adaptive in (True, False):
        short, long = program(10, adaptive), program(100_000, adaptive)
        assert abs(len(short) - len(long)) <= 8  # only the literal trip count differs

    def scan_equations(n_steps):
        start = em.init_states(spec, 4)
        jaxpr = jax.make_jaxpr(lambda x: ep.trajectory(spec, params, x, start, n_steps=n_steps))
        return len(jaxpr(inputs).eqns)

    assert scan_equations(5) == scan_equations(5000)


# ---------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    spec, params, inputs, targets = _problem("hard_sigmoid")
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 5\)"):
        ep.free_phase(spec, params, inputs[:, :4])
    with pytest.raises(ValueError, match="inputs must be finite"):
        ep.free_phase(spec, params, inputs.at[0, 0].set(jnp.inf))
    with pytest.raises(ValueError, match=r"params\.weights must have shapes"):
        ep.ep_estimate(
            spec, em.init_params(em.EnergyNetwork((5, 4, 3)), jax.random.key(0)), inputs, targets
        )
    with pytest.raises(ValueError, match="targets must have the batch size"):
        ep.ep_estimate(spec, params, inputs, targets[:2])
    with pytest.raises(ValueError, match="states must be a tuple"):
        ep.free_phase(spec, params, inputs, states=(jnp.zeros((4, 8)),))
    with pytest.raises(ValueError, match="beta must be nonzero"):
        ep.nudged_phase(spec, params, inputs, targets, 0.0, em.init_states(spec, 4))
    with pytest.raises(ValueError, match="beta must be nonzero"):
        ep.ep_estimate(spec, params, inputs, targets, beta=0.0)
    with pytest.raises(ValueError, match="beta must be finite"):
        ep.ep_estimate(spec, params, inputs, targets, beta=np.nan)
    with pytest.raises(ValueError, match="targets are needed"):
        ep.relax(spec, params, inputs, beta=0.5)
    with pytest.raises(ValueError, match="estimator must be one of"):
        ep.ep_estimate(spec, params, inputs, targets, estimator="two_sided")
    with pytest.raises(ValueError, match="holomorphic activation"):
        ep.ep_estimate(spec, params, inputs, targets, estimator="holomorphic")
    with pytest.raises(ValueError, match="needs a PRNG key"):
        ep.ep_estimate(spec, params, inputs, targets, estimator="random_sign")
    with pytest.raises(ValueError, match=r"relaxation.step_size must lie in \(0, 1\]"):
        ep.free_phase(spec, params, inputs, relaxation=ep.Relaxation(step_size=1.5))
    with pytest.raises(ValueError, match=r"free\.max_steps"):
        ep.ep_estimate(spec, params, inputs, targets, free=ep.Relaxation(max_steps=0))
    with pytest.raises(ValueError, match="free phase did not converge"):
        ep.gradient_check(spec, params, inputs, targets, [0.1], relaxation=ep.Relaxation(0.5, 2))
    with pytest.raises(ValueError, match="reference must be"):
        ep.gradient_check(spec, params, inputs, targets, [0.1], reference="finite")
    with pytest.raises(ValueError, match="update needs params"):
        ep.ep_rule(spec).update(None, optax.EmptyState())


# ---------------------------------------------------------------------------- gradient checks


def test_estimator_errors_shrink_like_beta_and_beta_squared(float64):
    spec, params, inputs, targets = _problem("sigmoid")
    betas = [0.08, 0.04, 0.02, 0.01]
    estimators = ["one_sided", "symmetric", "holomorphic"]
    check = ep.gradient_check(
        spec, params, inputs, targets, betas, estimators=estimators, relaxation=TIGHT
    )
    assert check.cosine["symmetric"][-1] >= 0.999
    assert 0.8 <= ep.error_slope(betas, check.relative_error["one_sided"]) <= 1.2
    assert 1.8 <= ep.error_slope(betas, check.relative_error["symmetric"]) <= 2.2
    assert np.all(check.relative_error["symmetric"] < check.relative_error["one_sided"])
    # N = 4 points: bias O(|β|^4)
    assert ep.error_slope(betas[:3], check.relative_error["holomorphic"][:3]) >= 3.5
    assert np.all(check.relative_error["holomorphic"] < check.relative_error["symmetric"])


def test_hard_sigmoid_estimators_match_the_implicit_gradient(float64):
    """Piecewise-linear states: the estimates are exact up to changes of the set of units pinned
    at the box bounds, which vanish as β → 0. Softmax readout: its weights' estimate is
    ∂C/∂W_out at the nudged states."""
    spec, params, inputs, targets = _problem("hard_sigmoid", "cross_entropy")
    betas = [0.1, 0.01, 0.001]
    check = ep.gradient_check(
        spec,
        params,
        inputs,
        targets,
        betas,
        estimators=["one_sided", "symmetric"],
        relaxation=TIGHT,
    )
    assert check.cosine["symmetric"][-1] >= 0.999 and check.relative_error["symmetric"][-1] < 0.01
    assert check.relative_error["one_sided"][-1] < 0.01
    assert check.relative_error["symmetric"][0] > check.relative_error["symmetric"][-1]


def test_bptt_through_a_long_relaxation_equals_implicit_differentiation(float64):
    spec, params, inputs, targets = _problem("hard_sigmoid", "cross_entropy", (5, 8, 6, 3))
    states, info = ep.free_phase(spec, params, inputs, relaxation=TIGHT)
    assert bool(info.converged)
    implicit = ep.implicit_gradient(spec, params, inputs, targets, states)
    bptt = ep.bptt_gradient(spec, params, inputs, targets, ep.Relaxation(0.5, 600))
    assert ep.relative_error(bptt, implicit) < 1e-8
    truncated = ep.bptt_gradient(spec, params, inputs, targets, ep.Relaxation(0.5, 3))
    assert ep.relative_error(truncated, implicit) > 1e-2
    # Finite differences of the loss at the free fixed point confirm the reference itself.
    direction = jax.tree.map(
        lambda p: jnp.sign(jnp.sin(jnp.arange(p.size) + 1.0)).reshape(p.shape), params
    )

    def loss(h):
        moved = jax.tree.map(lambda p, d: p + h * d, params, direction)
        s, _ = ep.free_phase(spec, moved, inputs, relaxation=TIGHT)
        return float(jnp.mean(em.cost(spec, moved, s, targets)))

    slope = (loss(1e-6) - loss(-1e-6)) / 2e-6
    along = sum(
        jnp.vdot(g, d)
        for g, d in zip(jax.tree.leaves(implicit), jax.tree.leaves(direction), strict=True)
    )
    np.testing.assert_allclose(slope, float(along), rtol=1e-5)


def test_symmetric_estimate_in_float32_at_small_beta():
    spec, params, inputs, targets = _problem("hard_sigmoid", batch=8)
    check = ep.gradient_check(
        spec,
        params,
        inputs,
        targets,
        [0.05],
        estimators=["symmetric"],
        relaxation=ep.Relaxation(0.5, 3000, 1e-6),
    )
    assert check.cosine["symmetric"][0] >= 0.999


def test_nudged_dynamics_track_recurrent_backprop_errors(float64):
    """Scellier & Bengio (2019): (1/β)(s_{k+1} − s_k)/ε → −S̄_k, the error signals of recurrent
    backprop, at every step k of the nudged phase."""
    spec, params, inputs, targets = _problem("sigmoid")
    states, _ = ep.free_phase(spec, params, inputs, relaxation=TIGHT)
    step_size, n_steps, beta = 0.5, 40, 1e-5
    path = ep.trajectory(spec, params, inputs, states, targets, beta, step_size, n_steps)
    errors = ep.recurrent_backprop_errors(spec, params, inputs, targets, states, step_size, n_steps)
    for layer_path, layer_errors in zip(path, errors, strict=True):
        velocity = jnp.diff(layer_path, axis=0) / (beta * step_size)
        scale = float(jnp.max(jnp.abs(layer_errors)))
        np.testing.assert_allclose(velocity, -layer_errors, atol=1e-3 * scale)
    assert float(jnp.max(jnp.abs(errors[0][-1]))) < 0.1 * float(jnp.max(jnp.abs(errors[0])))


def test_one_sided_update_is_the_local_contrastive_hebbian_rule():
    spec, params, inputs, targets = _problem("hard_sigmoid", cost="squared_error", sizes=(5, 7, 3))
    beta = 0.5
    grads, signals, _ = ep.ep_estimate(
        spec,
        params,
        inputs,
        targets,
        estimator="one_sided",
        beta=beta,
        free=ep.Relaxation(0.5, 500, 1e-5),
        nudged=ep.Relaxation(0.5, 500, 1e-5),
    )
    free = (inputs, *em.activities(spec, signals.free_states))
    nudged = (inputs, *em.activities(spec, tuple(s[0] for s in signals.nudged_states)))
    for layer in range(2):
        hebbian = nudged[layer].T @ nudged[layer + 1] - free[layer].T @ free[layer + 1]
        np.testing.assert_allclose(grads.weights[layer], -hebbian / (beta * 4), atol=1e-5)
        bias = jnp.sum(nudged[layer + 1] - free[layer + 1], 0)
        np.testing.assert_allclose(grads.biases[layer], -bias / (beta * 4), atol=1e-5)


def test_ep_update_is_rate_derivative_stdp_integrated_over_the_nudged_phase():
    """docs/theory.md §8 (EP ⇒ STDP): the per-step increments ρ_pre · dρ_post/dt +
    dρ_pre/dt · ρ_post, summed over the nudged phase, are the EP update; most of them come early
    in the phase."""
    spec, params, inputs, targets = _problem("hard_sigmoid", sizes=(5, 7, 3))
    beta, relaxation = 0.3, ep.Relaxation(0.5, 500, 1e-6)
    free, _ = ep.free_phase(spec, params, inputs, relaxation=relaxation)
    path = ep.trajectory(spec, params, inputs, free, targets, beta, 0.5, 200)
    increments = ep.rate_derivative_increments(spec, inputs, path, beta)
    grads, _, _ = ep.ep_estimate(
        spec,
        params,
        inputs,
        targets,
        estimator="one_sided",
        beta=beta,
        free=relaxation,
        nudged=relaxation,
        states=free,
    )
    for layer, steps in enumerate(increments):
        assert steps.shape == (200, *params.weights[layer].shape)
        total = jnp.sum(steps, 0) / inputs.shape[0]
        np.testing.assert_allclose(total, -grads.weights[layer], atol=1e-4)
        assert float(jnp.sum(jnp.abs(steps[100:]))) < 1e-3 * float(jnp.sum(jnp.abs(steps)))


def test_random_sign_draws_both_signs_and_is_one_sided_for_that_sign():
    spec, params, inputs, targets = _problem("sigmoid")
    signs = [
        float(ep.nudging_plan("random_sign", 0.1, jax.random.key(k)).betas[0]) for k in range(12)
    ]
    np.testing.assert_allclose(sorted(set(signs)), [-0.1, 0.1])
    key = jax.random.key(int(np.argmin(signs)))  # a key drawing −β
    random_sign, *_ = ep.ep_estimate(
        spec, params, inputs, targets, estimator="random_sign", beta=0.1, key=key
    )
    one_sided, *_ = ep.ep_estimate(spec, params, inputs, targets, estimator="one_sided", beta=-0.1)
    assert ep.relative_error(random_sign, one_sided) < 1e-6


def test_ep_rule_chains_with_optax_as_a_loss_gradient():
    spec, params, inputs, targets = _problem("hard_sigmoid")
    grads, signals, _ = ep.ep_estimate(spec, params, inputs, targets, beta=0.2)
    optimizer = optax.chain(ep.ep_rule(spec), optax.sgd(0.1))
    updates, _ = optimizer.update(signals, optimizer.init(params), params)
    for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads), strict=True):
        np.testing.assert_allclose(u, -0.1 * g, rtol=1e-4, atol=1e-9)
    # A small step along the update lowers the loss.
    moved = optax.apply_updates(params, updates)

    def loss(p):
        s, _ = ep.free_phase(spec, p, inputs, relaxation=ep.Relaxation(0.5, 2000, 1e-6))
        return float(jnp.mean(em.cost(spec, p, s, targets)))

    assert loss(moved) < loss(params)


# ---------------------------------------------------------------------------- training


def _digits():
    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order].reshape(-1, 64), labels[order]
    return (images[:1347], labels[:1347]), (images[1347:], labels[1347:])


def _train(spec, trainer, params, train, *, epochs, predictor, test, indexed=False):
    """``fit`` on digits with the held-out accuracy after every epoch (a callback)."""
    accuracies = []

    def record(epoch, state, info):
        accuracies.append(ep.classification_accuracy(predictor, state.params, *test))

    data = ep.classification_data(spec, *train, indexed=indexed)
    result = fit(
        trainer,
        params,
        data,
        key=jax.random.key(1),
        epochs=epochs,
        batch_size=32,
        callback=record,
        progress=False,
    )
    return result, accuracies


def test_trainer_steps_follow_the_loss_gradient():
    """With plain SGD one step moves the parameters by −lr times the EP estimate (ep_trainer) or
    the BPTT gradient (backprop_trainer) of the same batch: both descend the loss."""
    spec, params, inputs, targets = _problem("hard_sigmoid")
    config = ep.EPConfig(beta=0.2)
    trainer = ep.ep_trainer(spec, optax.sgd(0.1), config)
    state = trainer.init(params)
    new_state, info = trainer.step(jax.random.key(0), state, (inputs, targets))
    estimate, signals, _ = ep.ep_estimate(
        spec, params, inputs, targets, beta=0.2, free=config.free, nudged=config.nudged
    )
    leaves = map(jax.tree.leaves, (new_state.params, params, estimate))
    for new, old, g in zip(*leaves, strict=True):
        np.testing.assert_allclose(new - old, -0.1 * g, rtol=1e-4, atol=1e-7)
    loss, accuracy = ep.batch_metrics(spec, params, signals.free_states, targets)
    np.testing.assert_allclose(info.loss, loss, rtol=1e-6)
    assert float(info.accuracy) == float(accuracy) and int(new_state.step) == 1
    assert state.particles is None and info.nudged.steps.shape == (2,)

    relaxation = ep.Relaxation(0.5, 40)
    baseline = ep.backprop_trainer(spec, optax.sgd(0.1), relaxation)
    new_state, info = baseline.step(jax.random.key(0), baseline.init(params), (inputs, targets))
    exact = ep.bptt_gradient(spec, params, inputs, targets, relaxation)
    leaves = map(jax.tree.leaves, (new_state.params, params, exact))
    for new, old, g in zip(*leaves, strict=True):
        np.testing.assert_allclose(new - old, -0.1 * g, rtol=1e-4, atol=1e-7)
    assert info.nudged is None and int(info.free.steps) == 40


def test_predict_is_the_output_at_the_free_fixed_point():
    spec, params, inputs, _ = _problem("hard_sigmoid", cost="cross_entropy")
    relaxation = ep.Relaxation(0.5, 500, 1e-6)
    states, _ = ep.free_phase(spec, params, inputs, relaxation=relaxation)
    scores = ep.predict(spec, params, inputs, relaxation)
    np.testing.assert_allclose(scores, em.output_scores(spec, params, states), atol=1e-6)
    predictor = functools.partial(ep.predict, spec, relaxation=relaxation)
    labels = np.asarray(jnp.argmax(scores, -1))
    assert ep.classification_accuracy(predictor, params, inputs, labels, batch_size=3) == 1.0
    wrong = (labels + 1) % 3
    assert ep.classification_accuracy(predictor, params, inputs, wrong) == 0.0
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        ep.classification_accuracy(predictor, params, inputs, labels[:2])


def test_persistent_states_are_stored_per_example():
    spec = em.EnergyNetwork((64, 16, 10))
    params = em.init_params(spec, jax.random.key(0))
    config = ep.EPConfig(persistent=True)
    with pytest.raises(ValueError, match="needs n_train"):
        ep.ep_trainer(spec, optax.adam(1e-3), config)
    with pytest.raises(ValueError, match=r"only used with config\.persistent"):
        ep.ep_trainer(spec, optax.adam(1e-3), n_train=100)
    trainer = ep.ep_trainer(spec, optax.adam(1e-3), config, n_train=100)
    (images, labels), _ = _digits()
    data = ep.classification_data(spec, images[:100], labels[:100], indexed=True)
    state = trainer.init(params)
    index = np.arange(10, 20)
    batch = jax.tree.map(lambda leaf: leaf[index], data)
    with pytest.raises(ValueError, match="need the items' indices"):
        trainer.step(jax.random.key(1), state, (batch.inputs, batch.targets))
    new_state, info = trainer.step(jax.random.key(1), state, batch)
    relaxed, _ = ep.free_phase(spec, params, images[index], relaxation=config.free)
    np.testing.assert_allclose(new_state.particles[0][index], relaxed[0], atol=1e-6)
    np.testing.assert_array_equal(new_state.particles[0][:10], 0.0)
    assert info.nudged.steps.shape == (2,) and int(new_state.step) == 1


def test_fit_is_reproducible_from_its_key_and_compiles_the_step_once():
    spec = em.EnergyNetwork((64, 16, 10))
    trainer = ep.ep_trainer(spec, optax.adam(1e-3), ep.EPConfig(estimator="random_sign"))
    params = em.init_params(spec, jax.random.key(0))
    (images, labels), _ = _digits()
    data = ep.classification_data(spec, images[:128], labels[:128])
    runs = [
        fit(trainer, params, data, key=jax.random.key(k), epochs=2, batch_size=32, progress=False)
        for k in (5, 5, 6)
    ]
    same, other = runs[0].history["loss"], runs[2].history["loss"]
    np.testing.assert_array_equal(same, runs[1].history["loss"])
    assert not np.array_equal(same, other)
    assert trainer.step._cache_size() == 1
    fields = ("steps", "residual", "converged")
    assert set(runs[0].history) == {
        "loss",
        "accuracy",
        "seconds",
        *(f"{phase}_{field}" for phase in ("free", "nudged") for field in fields),
    }


def test_bad_data_and_divergence_raise():
    spec = em.EnergyNetwork((64, 16, 10), activation="sigmoid")
    trainer = ep.ep_trainer(spec, optax.sgd(1e30), ep.EPConfig(beta=0.5))
    params = em.init_params(spec, jax.random.key(0))
    (images, labels), _ = _digits()
    with pytest.raises(ValueError, match="flatten to 64 inputs"):
        ep.classification_data(spec, images[:, :10], labels)
    with pytest.raises(ValueError, match=r"labels must lie in 0..9"):
        ep.classification_data(spec, images, labels + 1)
    with pytest.raises(ValueError, match="labels must be integers"):
        ep.classification_data(spec, images, labels.astype(float))
    with pytest.raises(ValueError, match="inputs must have shape"):
        trainer.step(jax.random.key(0), trainer.init(params), (images[:4, :10], labels[:4]))
    with pytest.raises(TypeError, match="batch must be"):
        trainer.step(jax.random.key(0), trainer.init(params), images[:4])
    data = ep.classification_data(spec, images[:256], labels[:256])
    with pytest.raises(FloatingPointError, match="diverged in epoch 0"):
        fit(trainer, params, data, key=jax.random.key(0), epochs=2, batch_size=32, progress=False)


@pytest.mark.slow
def test_digits_ep_matches_backprop_on_the_same_network():
    """EP and backprop (BPTT through the same free phase) on a 64-128-10 hard-sigmoid energy
    network with a softmax readout; held-out accuracy within 1.5 points, both >= 95 %."""
    spec = em.EnergyNetwork((64, 128, 10), cost="cross_entropy")
    params = em.init_params(spec, jax.random.key(0), gain=0.5)
    train, test = _digits()
    config = ep.EPConfig(beta=0.5)
    fixed = config.free._replace(adaptive=False)
    runs = {}
    for name, trainer, relaxation in [
        ("ep", ep.ep_trainer(spec, optax.adam(2e-3), config), config.free),
        ("backprop", ep.backprop_trainer(spec, optax.adam(2e-3), config.free), fixed),
    ]:
        predictor = functools.partial(ep.predict, spec, relaxation=relaxation)
        _, accuracies = _train(
            spec, trainer, params, train, epochs=12, predictor=predictor, test=test
        )
        runs[name] = accuracies[-1]
    assert runs["ep"] >= 0.95 and runs["backprop"] >= 0.95
    assert abs(runs["ep"] - runs["backprop"]) <= 0.015


@pytest.mark.slow
def test_digits_classic_ep_with_squared_error_in_the_energy():
    """Scellier & Bengio (2017) setting: the output layer is part of the energy, C = ½‖s_y − d‖²."""
    spec = em.EnergyNetwork((64, 128, 10))
    params = em.init_params(spec, jax.random.key(0), gain=0.5)
    train, test = _digits()
    config = ep.EPConfig(beta=0.5, persistent=True)
    trainer = ep.ep_trainer(spec, optax.adam(2e-3), config, n_train=len(train[0]))
    predictor = functools.partial(ep.predict, spec, relaxation=config.free)
    result, accuracies = _train(
        spec, trainer, params, train, epochs=12, predictor=predictor, test=test, indexed=True
    )
    assert accuracies[-1] >= 0.95
    assert result.history["loss"][-1] < result.history["loss"][0]
