"""Learning-interface cases of the information family (see test_interface.py).

The rule cases evaluate :func:`~probsnn.inference.information.infomax.infomax_rule` on an
*exactly enumerated* sample: in :func:`quarter_network` every potential is −log 3, 0 or log 3,
so every bin fires with probability 1/4, 1/2 or 3/4 and every spike pattern of T = 3 bins of
N = 2 neurons has a probability that is a multiple of 4^{-TN}. Repeating each pattern
4^{TN} p(s‖x_b) times gives K = 4096 samples per input whose average *is* the expectation over
p(s‖x_b), so the score-function estimate (without baseline, or with the per-parameter optimal
baseline, whose term averages to exactly zero) equals jax.grad of the enumerated loss
L = −(1/B) Σ_b Σ_s p_θ(s‖x_b) f_{θ,ψ}(s; x, y).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cases import MadeRule, MadeTrainer, RuleCase, TrainerCase

import probsnn as ps
from probsnn import kernels
from probsnn.inference.information import criteria as crit
from probsnn.inference.information import estimators as mi
from probsnn.inference.information import infomax as im

N_STEPS, N_BATCH = 3, 4


def quarter_network(dtype=jnp.float64):
    """Two neurons and two inputs, one lag per kernel, with potentials in {−log 3, 0, log 3}:
    u_0 = log 3 (s_0 − s_1) of the previous bin, u_1 = log 3 (x_0 − s_1); input 1 and the
    synapse 0 → 1 are present at zero weight."""
    spec = ps.Network(2, kernels.raw_lags(1), input_basis=kernels.raw_lags(1), n_inputs=2)
    log3 = np.log(3.0)
    params = ps.Params(
        w=jnp.asarray([[[0.0], [0.0]], [[-log3], [0.0]]], dtype),  # [pre, post, basis]
        v=jnp.asarray([[log3], [-log3]], dtype),
        c=jnp.asarray([[[0.0], [log3]], [[0.0], [0.0]]], dtype),  # [input, neuron, basis]
        bias=jnp.zeros(2, dtype),
    )
    return spec, params


def enumerated(spec, params, inputs):
    """Every output pattern for every input: spikes ``(B, P, T, N)`` and
    ``log_prob(network_params) -> (B, P)`` = log p(s_p‖x_b)."""
    patterns = jnp.asarray(mi.enumerate_patterns(inputs.shape[1], spec.n_neurons), inputs.dtype)
    shape = (inputs.shape[0], *patterns.shape)
    spikes = jnp.broadcast_to(patterns[None], shape)
    tiled = jnp.broadcast_to(inputs[:, None], (*shape[:2], *inputs.shape[1:]))

    def log_prob(p):
        u = ps.potentials(spec, p, spikes, tiled)
        return jnp.sum(ps.bernoulli_log_prob(spikes, u), axis=(-2, -1))

    return spikes, log_prob


def replicated_samples(spec, params, inputs):
    """K = 4^{TN} samples per input, pattern s repeated 4^{TN} p(s‖x_b) times: ``(B, K, T, N)``."""
    patterns, log_prob = enumerated(spec, params, inputs)
    n_samples = 4 ** (inputs.shape[1] * spec.n_neurons)
    probs = np.exp(np.asarray(log_prob(params)))
    counts = np.rint(probs * n_samples).astype(int)
    np.testing.assert_allclose(counts / n_samples, probs, rtol=0, atol=1e-12)
    assert np.all(counts.sum(axis=1) == n_samples)
    rows = [np.repeat(np.asarray(patterns[b]), counts[b], axis=0) for b in range(len(counts))]
    return jnp.asarray(np.stack(rows), inputs.dtype)


def random_readout(criterion, seed, dtype):
    """The criterion's read-out with N(0, 0.5²) entries."""
    rng = np.random.default_rng(seed)
    zeros = criterion.init_readout(None)
    return jax.tree.map(lambda a: jnp.asarray(0.5 * rng.normal(size=a.shape), dtype), zeros)


def criteria(spec):
    """The four criteria with non-trivial hyper-parameters."""
    return {
        "barber_agakov": crit.barber_agakov(spec, input_entropy=1.0),
        "infonce": crit.infonce(spec),
        "bottleneck": crit.information_bottleneck(spec, 2, beta=0.3, target_prob=0.1),
        "toyoizumi": crit.rate_penalised_infomax(spec, gamma=0.5, target_prob=0.1),
    }


def exact_rule_case(name: str, baseline: str) -> MadeRule:
    """The rule on the replicated exact sample; the reference is jax.grad of the enumerated
    loss (module docstring)."""
    spec, network = quarter_network()
    criterion = criteria(spec)[name]
    rng = np.random.default_rng(1)
    inputs = jnp.asarray(rng.random((N_BATCH, N_STEPS, 2)) < 0.5, jnp.float64)
    targets = jnp.array([0, 1, 1, 0]) if criterion.needs_targets else None
    params = im.InfoMaxParams(network, random_readout(criterion, 2, jnp.float64))
    patterns, log_prob = enumerated(spec, network, inputs)

    def loss(p):
        f, _ = im.evaluate_signal(spec, criterion, p.network, p.readout, patterns, inputs, targets)
        return -jnp.sum(jnp.exp(log_prob(p.network)) * f) / N_BATCH

    spikes = replicated_samples(spec, network, inputs)
    return MadeRule(
        rule=im.infomax_rule(spec, criterion, baseline=baseline, kappa=0.0),
        params=params,
        signals=im.InfoMaxSignals(spikes, inputs, targets),
        reference=jax.jit(jax.grad(loss))(params),
        exact=True,
        rtol=1e-9,
        atol=1e-12,
        sample_axes=(spikes, (N_BATCH, 4**6, N_STEPS, 2)),
    )


def _trainer_case(name: str) -> MadeTrainer:
    spec, network = quarter_network(jnp.float32)
    criterion = criteria(spec)[name]
    rng = np.random.default_rng(3)
    inputs = (rng.random((12, N_STEPS, 2)) < 0.4).astype(np.float32)
    data = (inputs, rng.integers(0, 2, 12).astype(np.int32)) if criterion.needs_targets else inputs
    trainer = im.infomax_trainer(spec, criterion, optax.adam(1e-2), n_samples=2)
    params = im.InfoMaxParams(network, criterion.init_readout(jax.random.key(0)))
    return MadeTrainer(trainer, params, data, batch_size=4)


RULES: list[RuleCase] = [
    RuleCase("infomax_rule[barber_agakov]", lambda: exact_rule_case("barber_agakov", "none")),
    RuleCase("infomax_rule[infonce]", lambda: exact_rule_case("infonce", "optimal")),
    RuleCase("infomax_rule[bottleneck]", lambda: exact_rule_case("bottleneck", "optimal")),
    RuleCase("infomax_rule[toyoizumi]", lambda: exact_rule_case("toyoizumi", "none")),
]
TRAINERS: list[TrainerCase] = [
    TrainerCase("infomax_trainer[barber_agakov]", lambda: _trainer_case("barber_agakov")),
    TrainerCase("infomax_trainer[bottleneck]", lambda: _trainer_case("bottleneck")),
]
