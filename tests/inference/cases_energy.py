"""Learning-interface cases of the energy family (see test_interface.py).

``ep_rule``'s loss is the cost at the free fixed point, ``L = mean_batch C(θ, s⁰(θ))``; its
reference gradient is :func:`~probsnn.inference.energy.ep.implicit_gradient` at a free phase
converged to 1e-12. The holomorphic estimator (N = 4, |β| = 0.01, bias O(|β|⁴)) and the
symmetric one (β = 10⁻³, bias O(β²)) match it to float64 tolerances; the spiking phases
(sigma-delta, annealed) feed the same rule a noisy estimate that must point the same way.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cases import MadeRule, MadeTrainer, RuleCase, TrainerCase

from probsnn.inference.energy import ep
from probsnn.inference.energy import spiking_ep as sep
from probsnn.models import energy as em

CONVERGED = ep.Relaxation(step_size=0.5, max_steps=3000, tol=1e-12)


def _problem(dtype=None, n_items=3):
    """A 3-4-2 sigmoid network, inputs in [0, 1] and one-hot targets."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    spec = em.EnergyNetwork((3, 4, 2), "sigmoid", "squared_error")
    keys = jax.random.split(jax.random.key(0), 3)
    params = em.init_params(spec, keys[0], gain=0.6, dtype=dtype)
    params = params._replace(biases=tuple(b + 0.5 for b in params.biases))
    inputs = jax.random.uniform(keys[1], (n_items, 3), dtype)
    labels = jax.random.randint(keys[2], (n_items,), 0, 2)
    return spec, params, inputs, jax.nn.one_hot(labels, 2, dtype=dtype)


def _ep_rule(estimator, beta, rtol, atol):
    def make():
        spec, params, inputs, targets = _problem()
        free, _ = ep.free_phase(spec, params, inputs, relaxation=CONVERGED)
        _, signals, _ = ep.ep_estimate(
            spec,
            params,
            inputs,
            targets,
            estimator=estimator,
            beta=beta,
            free=CONVERGED,
            nudged=CONVERGED,
            states=free,
        )
        reference = ep.implicit_gradient(spec, params, inputs, targets, free)
        return MadeRule(ep.ep_rule(spec), params, signals, reference, rtol=rtol, atol=atol)

    return make


def _spiking_ep_rule():
    spec, params, inputs, targets = _problem()
    free, _ = ep.free_phase(spec, params, inputs, relaxation=CONVERGED)
    relaxation = sep.SpikingRelaxation(n_steps=400)
    config = sep.SpikingEPConfig(beta=0.1, free=relaxation, nudged=relaxation)
    key = jax.random.key(0)
    _, signals, _ = sep.spiking_ep_estimate(spec, params, inputs, targets, key, config)
    reference = ep.implicit_gradient(spec, params, inputs, targets, free)
    return MadeRule(ep.ep_rule(spec), params, signals, reference, exact=False, min_cosine=0.999)


RULES: list[RuleCase] = [
    RuleCase("ep_rule", _ep_rule("holomorphic", 0.01, rtol=1e-6, atol=1e-8)),
    RuleCase("ep_rule[symmetric]", _ep_rule("symmetric", 1e-3, rtol=1e-5, atol=1e-7)),
    RuleCase("ep_rule[spiking]", _spiking_ep_rule),
]


def _data(spec, indexed=False):
    """8 labelled items (host arrays), for batches of 4."""
    _, _, inputs, targets = _problem(np.float32, n_items=8)
    labels = np.asarray(jnp.argmax(targets, -1))
    return ep.classification_data(spec, np.asarray(inputs), labels, indexed=indexed)


def _ep_trainer(persistent):
    def make():
        spec, params, _, _ = _problem(jnp.float32)
        config = ep.EPConfig(estimator="random_sign", beta=0.2, persistent=persistent)
        trainer = ep.ep_trainer(spec, optax.adam(1e-2), config, n_train=8 if persistent else None)
        return MadeTrainer(trainer, params, _data(spec, indexed=persistent), 4)

    return make


def _spiking_ep_trainer():
    spec, params, _, _ = _problem(jnp.float32)
    relaxation = sep.SpikingRelaxation(n_steps=20, coding="bernoulli")
    config = sep.SpikingEPConfig(beta=0.2, free=relaxation, nudged=relaxation)
    trainer = sep.spiking_ep_trainer(spec, optax.adam(1e-2), config)
    return MadeTrainer(trainer, params, _data(spec), 4)


def _backprop_trainer():
    spec, params, _, _ = _problem(jnp.float32)
    trainer = ep.backprop_trainer(spec, optax.adam(1e-2), ep.Relaxation(0.5, 20))
    return MadeTrainer(trainer, params, _data(spec), 4)


TRAINERS: list[TrainerCase] = [
    TrainerCase("ep_trainer", _ep_trainer(persistent=False)),
    TrainerCase("ep_trainer[persistent]", _ep_trainer(persistent=True)),
    TrainerCase("spiking_ep_trainer", _spiking_ep_trainer),
    TrainerCase("backprop_trainer", _backprop_trainer),
]
