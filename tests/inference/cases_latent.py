"""Learning-interface cases of the latent family (see test_interface.py).

The references are exact: the gradients of −ELBO, −IW_2 and −log p(x) by enumerating every
hidden raster of a tiny network (T · N_hidden small). The estimators are Monte Carlo, so they
are compared by direction (cosine), on enough completions and a fixed seed for a margin; the
WTA maximum-likelihood rule is deterministic and compared exactly.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cases import MadeRule, MadeTrainer, RuleCase, TrainerCase
from tiny_hidden import TARGET, tiny_network

from probsnn import kernels, wta
from probsnn.glm import traces as filter_traces
from probsnn.inference.latent import multisample, variational
from probsnn.inference.latent import wta as wta_rules
from probsnn.inference.latent.trainer import variational_trainer, wta_trainer
from probsnn.inference.likelihood.online import MLSignals


def _completions(spec, params, visible, n_samples, seed):
    """Float64 signals with ``n_samples`` completions h ~ q(h‖x) of each sequence."""
    spikes = variational.sample_hidden(
        spec, params, visible, key=jax.random.key(seed), n_samples=n_samples
    )
    return variational.VariationalSignals(jnp.asarray(spikes, jnp.float64), None)


# --------------------------------------------------------------------------------------------
# GLM networks with hidden neurons (2 visible + 2 hidden, tiny_hidden.py)
# --------------------------------------------------------------------------------------------


def _variational_rule():
    """B = 2 sequences of T = 5 bins, K = 3000 completions: loss −Σ_b ELBO(x_b)."""
    spec, params = tiny_network(jnp.float64)
    visible = np.stack([TARGET[:5], TARGET[3:]])
    signals = _completions(spec, params, visible, 3000, seed=0)
    reference = jax.grad(lambda p: -jnp.sum(multisample.exact_elbo(spec, p, visible)))(params)
    return MadeRule(
        variational.variational_rule(spec),
        params,
        signals,
        reference,
        exact=False,
        min_cosine=0.95,
        sample_axes=(signals.spikes, (2, 3000, 5, 4)),
    )


def _streamed(rule, n_steps):
    """A harness around a one-bin rule: ``update`` streams the bins of whole rasters (traces
    and spikes with the time axis second) through ``rule`` at fixed params and sums the
    per-bin gradients."""

    def update(signals, state, params):
        traces, spikes = signals

        def body(carry, t):
            state, total = carry
            bin_signals = MLSignals(jax.tree.map(lambda a: a[:, t], traces), spikes[:, t])
            grads, state = rule.update(bin_signals, state, params)
            return (state, jax.tree.map(jnp.add, total, grads)), None

        start = (state, jax.tree.map(jnp.zeros_like, params))
        (state, total), _ = jax.lax.scan(body, start, jnp.arange(n_steps))
        return total, state

    return optax.GradientTransformation(rule.init, update)


def _online_variational_rule():
    """4000 trials of T = 5 bins streamed bin by bin (κ = 0.5, no baseline): the per-bin
    estimates sum to a biased estimate of ∇(−Σ_trials ELBO) (later bins' credit is truncated),
    so only the direction is checked, with a wider margin."""
    spec, params = tiny_network(jnp.float64)
    n_trials, n_steps = 4000, 5
    data = np.broadcast_to(TARGET[:n_steps], (n_trials, n_steps, 2))
    spikes = _completions(spec, params, data, 1, seed=1).spikes[:, 0]
    rule = variational.online_variational_rule(spec, 0.5, n_trials=n_trials, baseline=False)
    reference = jax.grad(lambda p: -n_trials * multisample.exact_elbo(spec, p, TARGET[:n_steps]))(
        params
    )
    return MadeRule(
        _streamed(rule, n_steps),
        params,
        (filter_traces(spec, spikes), spikes),
        reference,
        exact=False,
        min_cosine=0.8,
    )


def _pair_expected_bound(spec, params, visible):
    """E[IW_2] over two independent completions of ``visible``, exactly (enumerated pairs)."""
    terms = multisample.enumerate_terms(spec, params, visible)
    q = jnp.exp(terms.log_q)
    bound = jnp.logaddexp(terms.signal[:, None], terms.signal[None, :]) - jnp.log(2.0)
    return jnp.sum(q[:, None] * q[None, :] * bound)


def _vimco_rule():
    """B = 3000 copies of one T = 3 sequence, K = 2: loss −Σ_b IW_2(x_b)."""
    spec, params = tiny_network(jnp.float64)
    n_seq, short = 3000, TARGET[:3]
    signals = _completions(spec, params, np.broadcast_to(short, (n_seq, 3, 2)), 2, seed=2)
    reference = jax.grad(lambda p: -n_seq * _pair_expected_bound(spec, p, short))(params)
    return MadeRule(
        multisample.multisample_rule(spec, "vimco"),
        params,
        signals,
        reference,
        exact=False,
        min_cosine=0.95,
        sample_axes=(signals.spikes, (n_seq, 2, 3, 4)),
    )


def _gem_rule():
    """B = 2 sequences of T = 3, K = 4096: loss −Σ_b log p(x_b) (GEM is consistent in K)."""
    spec, params = tiny_network(jnp.float64)
    visible = np.stack([TARGET[:3], TARGET[5:]])
    signals = _completions(spec, params, visible, 4096, seed=3)
    reference = jax.grad(lambda p: -jnp.sum(multisample.exact_log_marginal(spec, p, visible)))(
        params
    )
    return MadeRule(
        multisample.multisample_rule(spec, "gem"),
        params,
        signals,
        reference,
        exact=False,
        min_cosine=0.95,
        sample_axes=(signals.spikes, (2, 4096, 3, 4)),
    )


# --------------------------------------------------------------------------------------------
# WTA networks
# --------------------------------------------------------------------------------------------


def _wta_ml_rule():
    """κ = 0: the bin's loss gradient −∇ log p(s | u), here over whole rasters (3 trials × 20
    bins summed), against jax.grad of −log p."""
    spec = wta.WTANetwork(
        3, 2, kernels.raised_cosine(2, 1, 4), input_basis=kernels.raw_lags(2), n_inputs=1
    )
    params = spec.init_params(jax.random.key(0), rate=150.0, dtype=jnp.float64)
    inputs = jax.random.normal(jax.random.key(1), (3, 20, 1), jnp.float64)
    spikes = wta.sample(spec, params, jax.random.key(2), 20, 3, inputs).astype(jnp.float64)
    reference = jax.grad(lambda p: -wta.log_likelihood(spec, p, spikes, inputs))(params)
    signals = MLSignals(wta.channel_traces(spec, spikes, inputs), spikes)
    return MadeRule(wta_rules.wta_ml_rule(spec), params, signals, reference, rtol=1e-6)


def _tiny_wta(dtype=jnp.float64):
    """Unit 0 visible, unit 1 hidden, C = 3 symbols, T = 4: 4^4 = 256 hidden sequences."""
    spec = wta.WTANetwork(
        2, 3, kernels.raised_cosine(2, 1, 3), visible=np.array([True, False]), dt=1e-3
    )
    params = spec.init_params(jax.random.key(4), rate=300.0, weight_scale=2.0, dtype=dtype)
    return spec, params


def _wta_elbo(spec, params, visible):
    """ELBO of one visible sequence ``(T, 1, C)`` by summing over every hidden sequence."""
    n_steps = visible.shape[0]
    symbols = np.array(list(itertools.product(range(spec.n_symbols + 1), repeat=n_steps)))
    hidden = wta.one_hot(jnp.asarray(symbols)[..., None], spec.n_symbols)
    spikes = jnp.concatenate([jnp.broadcast_to(visible, hidden.shape), hidden], axis=2)
    log_p = wta.log_prob(spec, params, spikes.astype(params.bias.dtype))  # (H, T, 2)
    signal, log_q = jnp.sum(log_p[..., 0], -1), jnp.sum(log_p[..., 1], -1)
    return jnp.sum(jnp.exp(log_q) * signal)


def _wta_variational_rule():
    """B = 5 visible sequences, K = 2000 completions: loss −Σ_b ELBO(x_b)."""
    spec, params = _tiny_wta()
    n_seq, n_samples, n_steps = 5, 2000, 4
    symbols = jax.random.randint(jax.random.key(5), (n_seq, n_steps, 1), 0, 4)
    visible = wta.one_hot(symbols, 3)
    spikes = wta.sample(
        spec,
        params,
        jax.random.key(6),
        n_steps,
        n_seq * n_samples,
        clamp=jnp.repeat(visible, n_samples, axis=0),
    )
    spikes = spikes.reshape(n_seq, n_samples, *spikes.shape[1:]).astype(jnp.float64)

    def loss(p):
        return -jnp.sum(jax.vmap(lambda x: _wta_elbo(spec, p, x))(visible))

    return MadeRule(
        wta_rules.wta_variational_rule(spec),
        params,
        wta_rules.WTAVariationalSignals(spikes, None),
        jax.grad(loss)(params),
        exact=False,
        min_cosine=0.95,
        sample_axes=(spikes, (n_seq, n_samples, n_steps, 2, 3)),
    )


RULES: list[RuleCase] = [
    RuleCase("variational_rule", _variational_rule),
    RuleCase("online_variational_rule[streamed]", _online_variational_rule),
    RuleCase("multisample_rule[vimco]", _vimco_rule),
    RuleCase("multisample_rule[gem]", _gem_rule),
    RuleCase("wta_ml_rule", _wta_ml_rule),
    RuleCase("wta_variational_rule", _wta_variational_rule),
]


# --------------------------------------------------------------------------------------------
# Trainers
# --------------------------------------------------------------------------------------------


def _variational_trainer(rule=None, n_samples=2):
    spec, params = tiny_network()
    data = np.stack([TARGET, TARGET[::-1], np.roll(TARGET, 2, 0), 1 - TARGET])
    rule = None if rule is None else rule(spec)
    trainer = variational_trainer(spec, optax.adam(0.05), n_samples=n_samples, rule=rule)
    return MadeTrainer(trainer, params, data, batch_size=2)


def _vimco_trainer():
    return _variational_trainer(lambda spec: multisample.multisample_rule(spec, "vimco"), 3)


def _wta_trainer():
    spec, params = _tiny_wta(jnp.float32)
    symbols = jax.random.randint(jax.random.key(7), (4, 6, 1), 0, 4)
    return MadeTrainer(
        wta_trainer(spec, optax.adam(1e-2), n_samples=2), params, wta.one_hot(symbols, 3), 2
    )


TRAINERS: list[TrainerCase] = [
    TrainerCase("variational_trainer", _variational_trainer),
    TrainerCase("variational_trainer[vimco]", _vimco_trainer),
    TrainerCase("wta_trainer", _wta_trainer),
]
