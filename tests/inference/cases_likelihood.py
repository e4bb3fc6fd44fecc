"""Learning-interface cases of the likelihood family (see test_interface.py).

``ml_rule``'s loss is the negative log-likelihood of one bin, L_t = −Σ_{trials, i}
log p(s_{i,t} | u_{i,t}); the reference is ``jax.grad`` of it through :func:`probsnn.glm.contract`
of the bin's traces. With κ > 0 the eligibility after bins t₁, t₂ (at fixed θ) is the gradient of
κ(1 − κ) L_{t₁} + (1 − κ) L_{t₂}. The trainers run on a 3-neuron network with a separate feedback
basis and two inputs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cases import MadeRule, MadeTrainer, RuleCase, TrainerCase

import probsnn as ps
from probsnn import kernels
from probsnn.glm import bernoulli_log_prob, contract
from probsnn.inference.likelihood.newton import newton_trainer
from probsnn.inference.likelihood.online import MLSignals, ml_online_trainer, ml_rule

KAPPA = 0.6


def _problem(n_trials: int, n_steps: int, dtype=jnp.float32):
    """A 3-neuron network with inputs, its parameters and sampled (spikes, inputs)."""
    spec = ps.Network(
        3,
        kernels.raised_cosine(2, 1, 5),
        feedback_basis=kernels.exponential([0.002], 6, 1e-3),
        input_basis=kernels.raw_lags(2),
        n_inputs=2,
        dt=1e-3,
    )
    params = spec.init_params(jax.random.key(0), rate=150.0, weight_scale=1.0)
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
    inputs = jax.random.normal(jax.random.key(1), (n_trials, n_steps, 2), dtype)
    spikes = ps.sample(spec, params, jax.random.key(2), n_steps, n_trials, inputs=inputs)
    return spec, params, jnp.asarray(spikes, dtype), inputs


def _bin(spec, spikes, inputs, t):
    x = ps.traces(spec, spikes, inputs)
    return MLSignals(ps.Traces(*(None if a is None else a[:, t] for a in x)), spikes[:, t])


def _bin_loss(spec, signals):
    def loss(params):
        u = contract(spec, params, signals.traces)
        return -jnp.sum(bernoulli_log_prob(signals.spikes, u))

    return loss


def _ml_rule():
    spec, params, spikes, inputs = _problem(2, 12, jnp.float64)
    signals = _bin(spec, spikes, inputs, 9)
    reference = jax.grad(_bin_loss(spec, signals))(params)
    return MadeRule(ml_rule(spec), params, signals, reference)


def _ml_rule_kappa():
    """Two bins: the eligibility after the first is the state the second update starts from."""
    spec, params, spikes, inputs = _problem(2, 12, jnp.float64)
    first, second = _bin(spec, spikes, inputs, 7), _bin(spec, spikes, inputs, 10)
    rule = ml_rule(spec, KAPPA)
    _, after_first = rule.update(first, rule.init(params), params)
    primed = optax.GradientTransformation(lambda params: after_first, rule.update)

    def discounted(params):
        return KAPPA * (1 - KAPPA) * _bin_loss(spec, first)(params) + (1 - KAPPA) * _bin_loss(
            spec, second
        )(params)

    return MadeRule(primed, params, second, jax.grad(discounted)(params))


def _newton_trainer():
    spec, params, spikes, inputs = _problem(2, 200)
    return MadeTrainer(newton_trainer(spec, spikes, inputs, l2=1.0), params, None, None)


def _ml_online_trainer():
    spec, params, spikes, inputs = _problem(4, 30)
    trainer = ml_online_trainer(spec, optax.sgd(1e-2), kappa=0.5)
    return MadeTrainer(trainer, params, (np.asarray(spikes), np.asarray(inputs)), 2)


RULES: list[RuleCase] = [
    RuleCase("ml_rule", _ml_rule),
    RuleCase("ml_rule[kappa]", _ml_rule_kappa),
]
TRAINERS: list[TrainerCase] = [
    TrainerCase("newton_trainer", _newton_trainer),
    TrainerCase("ml_online_trainer", _ml_online_trainer),
]
