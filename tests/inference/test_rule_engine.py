"""The sum-of-products engine: built-in rules update by update, the ML rule vs jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probsnn as ps
from conftest import make_network
from probsnn.glm import bernoulli_log_prob, contract
from probsnn.inference.plasticity import rule_engine as engine
from probsnn.inference.plasticity import stdp

DT = 0.5


def trains(seed, n_steps=300, n_pre=5, n_post=3, p=0.08):
    rng = np.random.default_rng(seed)
    pre = (rng.random((n_steps, n_pre)) < p).astype(np.float32)
    post = (rng.random((n_steps, n_post)) < p).astype(np.float32)
    reward = rng.normal(size=n_steps).astype(np.float32)
    return jnp.asarray(pre), jnp.asarray(post), jnp.asarray(reward)


def side_by_side(rule_a, rule_b, w0, pre, post, reward=None):
    """Run two rules on the same trains; return both per-bin update sequences (same weights)."""

    def body(carry, xs):
        w, sa, sb = carry
        signals = stdp.STDPSignals(*xs)
        da, sa = rule_a.update(signals, sa, w)
        db, sb = rule_b.update(signals, sb, w)
        return (w + da, sa, sb), (da, db)

    xs = (pre, post) if reward is None else (pre, post, reward)
    init = (w0, rule_a.init(w0), rule_b.init(w0))
    _, (da, db) = jax.lax.scan(body, init, xs)
    return np.asarray(da), np.asarray(db)


CASES = {
    "additive_all": lambda m: m.pair_stdp(0.02, 0.025, 16.8, 33.7, DT),
    "additive_nearest_bounded": lambda m: m.pair_stdp(
        0.05, 0.06, 16.8, 33.7, DT, pairing="nearest", w_max=0.4
    ),
    "multiplicative": lambda m: m.pair_stdp(
        0.05, 0.06, 16.8, 33.7, DT, weight_dependence="multiplicative", w_max=1.0
    ),
    "triplet": lambda m: m.triplet_stdp(5e-3, 6.2e-3, 7e-3, 2.3e-3, dt_ms=DT, w_max=1.0),
    "reward": lambda m: m.reward_stdp(0.02, 0.025, 16.8, 33.7, 100.0, DT, w_max=1.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_builtin_rules_equal_engine_update_by_update(case):
    pre, post, reward = trains(sorted(CASES).index(case))
    w0 = jnp.asarray(np.random.default_rng(0).uniform(0.1, 0.35, (5, 3)), jnp.float32)
    hand, compiled = CASES[case](stdp), CASES[case](engine)
    da, db = side_by_side(hand, compiled, w0, pre, post, reward if case == "reward" else None)
    assert np.abs(da).sum() > 1e-2
    np.testing.assert_allclose(db, da, atol=1e-6)


def test_engine_ml_rule_is_a_scaled_ascent_step_on_each_bins_log_likelihood():
    spec = make_network("sparse_separate_feedback")
    params = spec.init_params(jax.random.key(0), rate=60.0)
    spikes = jnp.asarray(ps.sample(spec, params, jax.random.key(1), 400), jnp.float32)
    x = ps.traces(spec, spikes)
    eta = 0.5
    rule = engine.ml_sum_of_products(learning_rate=eta)

    def bin_log_prob(w, xt, spikes_t):
        u = contract(spec, params._replace(w=w), xt)
        return jnp.sum(bernoulli_log_prob(spikes_t, u))

    def body(total, t):
        xt = jax.tree.map(lambda a: None if a is None else a[t], x)
        signals = engine.ml_sum_of_products_signals(spec, params, xt, spikes[t])
        dw, _ = rule.update(signals, rule.init(params.w), params.w)
        ascent = eta * jax.grad(bin_log_prob)(params.w, xt, spikes[t])
        return total + dw, jnp.max(jnp.abs(dw - ascent))

    total, diffs = jax.lax.scan(body, jnp.zeros_like(params.w), jnp.arange(spikes.shape[0]))
    # a terminal delta: +η ∂ log p(s_t | u_t)/∂w in every bin (ascent on the log-likelihood)
    assert float(diffs.max()) < 1e-6
    grad = jax.grad(lambda w: ps.log_likelihood(spec, params._replace(w=w), spikes))(params.w)
    assert float(jnp.abs(grad).max()) > 1.0
    np.testing.assert_allclose(np.asarray(total), eta * np.asarray(grad), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="learning_rate"):
        engine.ml_sum_of_products(learning_rate=float("nan"))


def test_engine_custom_rule_and_errors():
    # a custom rule: Δw = 0.1 (pre + 1)(post − 0.5) reads constants in its factors
    rule = engine.sum_of_products([engine.Term(0.1, (("pre", 1.0), ("post", -0.5)))])
    w = jnp.zeros((2, 2))
    signals = {"pre": jnp.array([1.0, 0.0]), "post": jnp.array([0.0, 1.0])}
    dw, _ = rule.update(signals, rule.init(w), w)
    np.testing.assert_allclose(dw, 0.1 * np.outer([2.0, 1.0], [-0.5, 0.5]), atol=1e-7)
    with pytest.raises(ValueError, match="reserved"):
        engine.sum_of_products([], traces={"w": engine.TraceSpec("pre", 5.0)})
    with pytest.raises(ValueError, match="tau_ms"):
        engine.sum_of_products([], traces={"x": engine.TraceSpec("pre", -5.0)})
    with pytest.raises(ValueError, match="side"):
        engine.sum_of_products([], traces={"x": engine.TraceSpec("dendrite", 5.0)})
    with pytest.raises(ValueError, match="tag_tau_ms"):
        engine.sum_of_products([], tag=[engine.Term(1.0, ("pre",))])
    with pytest.raises(ValueError, match="no tag"):
        engine.sum_of_products([engine.Term(1.0, ("tag",))])
    with pytest.raises(ValueError, match="w_max"):
        engine.pair_stdp(w_max=0.0)
    with pytest.raises(TypeError, match="Term"):
        engine.sum_of_products([("pre", 1.0)])
    with pytest.raises(ValueError, match="binary"):
        rule.update({"pre": jnp.array([2.0, 0.0]), "post": jnp.zeros(2)}, rule.init(w), w)
    missing = engine.sum_of_products([engine.Term(1.0, ("pre", "gain"))])
    with pytest.raises(ValueError, match="gain"):
        missing.update(signals, missing.init(w), w)
