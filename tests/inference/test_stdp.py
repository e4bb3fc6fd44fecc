"""STDP rules against brute-force spike-pair oracles, bounds, windows and argument checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probsnn.inference.plasticity.stdp import (
    STDPSignals,
    measure_window,
    pair_stdp,
    pair_window,
    reward_stdp,
    run_stdp,
    triplet_stdp,
)

DT = 0.5  # ms
A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS = 0.01, 0.012, 16.8, 33.7


def random_trains(seed, n_steps=400, n_pre=4, n_post=3, p=0.04):
    rng = np.random.default_rng(seed)
    pre = (rng.random((n_steps, n_pre)) < p).astype(np.float32)
    post = (rng.random((n_steps, n_post)) < p).astype(np.float32)
    return pre, post


def all_pairs_oracle(pre, post):
    """Σ over all spike pairs (t_post ≠ t_pre) of the pair window, by a double loop."""
    dw = np.zeros((pre.shape[1], post.shape[1]))
    for j in range(pre.shape[1]):
        for i in range(post.shape[1]):
            for tp in np.flatnonzero(pre[:, j]):
                for tq in np.flatnonzero(post[:, i]):
                    lag = (tq - tp) * DT
                    if lag > 0:
                        dw[j, i] += A_PLUS * np.exp(-lag / TAU_PLUS)
                    elif lag < 0:
                        dw[j, i] -= A_MINUS * np.exp(lag / TAU_MINUS)
    return dw


def nearest_oracle(pre, post):
    """Each post spike pairs with the latest earlier pre spike, each pre with the latest earlier
    post spike (symmetric nearest-spike pairing)."""
    dw = np.zeros((pre.shape[1], post.shape[1]))
    for j in range(pre.shape[1]):
        for i in range(post.shape[1]):
            tp, tq = np.flatnonzero(pre[:, j]), np.flatnonzero(post[:, i])
            for t in tq:
                earlier = tp[tp < t]
                if earlier.size:
                    dw[j, i] += A_PLUS * np.exp(-(t - earlier[-1]) * DT / TAU_PLUS)
            for t in tp:
                earlier = tq[tq < t]
                if earlier.size:
                    dw[j, i] -= A_MINUS * np.exp(-(t - earlier[-1]) * DT / TAU_MINUS)
    return dw


@pytest.mark.parametrize("seed", [0, 1])
def test_all_to_all_equals_pair_sum(seed):
    pre, post = random_trains(seed)
    rule = pair_stdp(A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, DT)
    w0 = np.zeros((4, 3), np.float32)
    got = np.asarray(run_stdp(rule, w0, pre, post).w)
    want = all_pairs_oracle(pre, post)
    assert np.abs(want).max() > 0.02  # the trains hold many pairs
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_nearest_spike_equals_nearest_oracle_and_differs_from_all():
    pre, post = random_trains(2, p=0.08)
    rule = pair_stdp(A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, DT, pairing="nearest")
    w0 = np.zeros((4, 3), np.float32)
    got = np.asarray(run_stdp(rule, w0, pre, post).w)
    np.testing.assert_allclose(got, nearest_oracle(pre, post), rtol=1e-4, atol=1e-6)
    assert np.abs(got - all_pairs_oracle(pre, post)).max() > 1e-2


def test_hard_bounds_never_violated_and_clip_sequentially():
    pre, post = random_trains(3, n_steps=600, p=0.1)
    w_max = 0.05
    rule = pair_stdp(0.02, 0.025, TAU_PLUS, TAU_MINUS, DT, w_max=w_max)
    w0 = np.full((4, 3), 0.025, np.float32)
    hist = np.asarray(run_stdp(rule, w0, pre, post, keep_history=True).history)
    assert hist.min() >= 0.0 and hist.max() <= w_max
    assert np.any(hist == 0.0) and np.any(hist == np.float32(w_max))  # both bounds are reached
    # numpy reference of the sequential clipped rule
    w, x, y = w0.astype(np.float64), np.zeros(4), np.zeros(3)
    dp, dm = np.exp(-DT / TAU_PLUS), np.exp(-DT / TAU_MINUS)
    for t in range(pre.shape[0]):
        x, y = x * dp, y * dm
        w = np.clip(w + 0.02 * np.outer(x, post[t]) - 0.025 * np.outer(pre[t], y), 0, w_max)
        x, y = x + pre[t], y + post[t]
    np.testing.assert_allclose(hist[-1], w, atol=1e-6)


def test_multiplicative_rule_matches_loop_and_stays_in_bounds():
    pre, post = random_trains(4, n_steps=500, p=0.1)
    w_max, ap, am = 1.0, 0.05, 0.06
    rule = pair_stdp(ap, am, TAU_PLUS, TAU_MINUS, DT, weight_dependence="multiplicative", w_max=1.0)
    w0 = np.random.default_rng(0).uniform(0, 1, (4, 3)).astype(np.float32)
    hist = np.asarray(run_stdp(rule, w0, pre, post, keep_history=True).history)
    assert hist.min() >= 0.0 and hist.max() <= w_max
    w, x, y = w0.astype(np.float64), np.zeros(4), np.zeros(3)
    dp, dm = np.exp(-DT / TAU_PLUS), np.exp(-DT / TAU_MINUS)
    for t in range(pre.shape[0]):
        x, y = x * dp, y * dm
        ltp, ltd = ap * np.outer(x, post[t]), am * np.outer(pre[t], y)
        w = np.clip(w + ltp * (w_max - w) - ltd * w, 0, w_max)
        x, y = x + pre[t], y + post[t]
    np.testing.assert_allclose(hist[-1], w, atol=1e-5)


def test_measured_window_matches_exponentials():
    lags = np.arange(-80, 81)
    for pairing in ("all", "nearest"):
        rule = pair_stdp(A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, DT, pairing=pairing)
        measured = measure_window(rule, lags)
        expected = pair_window(lags * DT, A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS)
        np.testing.assert_allclose(measured, expected, atol=2e-7, rtol=1e-4)
    assert measured[lags == 1][0] > 0 > measured[lags == -1][0]


def triplet_oracle(pre, post, a2p, a3p, a2m, a3m, tp, tm, tx, ty):
    pair = np.zeros((pre.shape[1], post.shape[1]))
    trip = np.zeros_like(pair)
    for j in range(pre.shape[1]):
        for i in range(post.shape[1]):
            sp, sq = np.flatnonzero(pre[:, j]) * DT, np.flatnonzero(post[:, i]) * DT
            for t in sq:  # post spike: LTP
                r1 = np.exp(-(t - sp[sp < t]) / tp).sum()
                o2 = np.exp(-(t - sq[sq < t]) / ty).sum()
                pair[j, i] += a2p * r1
                trip[j, i] += a3p * r1 * o2
            for t in sp:  # pre spike: LTD
                o1 = np.exp(-(t - sq[sq < t]) / tm).sum()
                r2 = np.exp(-(t - sp[sp < t]) / tx).sum()
                pair[j, i] -= a2m * o1
                trip[j, i] -= a3m * o1 * r2
    return pair, trip


def test_triplet_rule_pair_and_triplet_terms():
    pre, post = random_trains(5, n_steps=500, p=0.06)
    taus = (16.8, 33.7, 101.0, 125.0)
    amps = (5e-3, 6.2e-3, 7e-3, 2.3e-3)
    pair, trip = triplet_oracle(pre, post, *amps, *taus)
    w0 = np.zeros((4, 3), np.float32)
    kw = dict(tau_plus_ms=16.8, tau_minus_ms=33.7, tau_x_ms=101.0, tau_y_ms=125.0, dt_ms=DT)
    full = np.asarray(run_stdp(triplet_stdp(*amps, **kw), w0, pre, post).w)
    np.testing.assert_allclose(full, pair + trip, rtol=1e-4, atol=3e-5)
    pair_only = triplet_stdp(amps[0], 0.0, amps[2], 0.0, **kw)
    np.testing.assert_allclose(
        np.asarray(run_stdp(pair_only, w0, pre, post).w), pair, rtol=1e-4, atol=1e-6
    )
    assert np.abs(trip).max() > 1e-2  # the triplet term matters on these trains


def test_reward_stdp_zero_reward_and_eligibility_oracle():
    pre, post = random_trains(6, n_steps=300, p=0.08)
    rule = reward_stdp(A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, 200.0, DT)
    w0 = np.full((4, 3), 0.3, np.float32)
    zero = run_stdp(rule, w0, pre, post, reward=np.zeros(300), keep_history=True)
    np.testing.assert_array_equal(np.asarray(zero.history), np.broadcast_to(w0, (300, 4, 3)))
    reward = np.random.default_rng(1).normal(size=300).astype(np.float32)
    got = np.asarray(run_stdp(rule, w0, pre, post, reward=reward).w)
    # oracle: ξ_t from per-bin pair increments, e_t = e_{t-1} d + ξ_t, Δw = Σ r_t e_t
    increments = np.zeros((300, 4, 3))
    for t in range(300):
        increments[t] = all_pairs_oracle(pre[: t + 1], post[: t + 1]) - (
            all_pairs_oracle(pre[:t], post[:t]) if t else 0.0
        )
    e, total, d = np.zeros((4, 3)), np.zeros((4, 3)), np.exp(-DT / 200.0)
    for t in range(300):
        e = e * d + increments[t]
        total += reward[t] * e
    np.testing.assert_allclose(got - w0, total, rtol=1e-3, atol=1e-5)


def test_rule_runs_under_jit_scan_and_vmap():
    pre, post = random_trains(7)
    rule = pair_stdp(A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, DT)
    batch_pre = jnp.stack([pre, pre[::-1]])
    batch_post = jnp.stack([post, post[::-1]])
    w0 = jnp.zeros((4, 3))
    batched = jax.jit(jax.vmap(lambda p, q: run_stdp(rule, w0, p, q).w))(batch_pre, batch_post)
    np.testing.assert_allclose(batched[1], all_pairs_oracle(pre[::-1], post[::-1]), atol=1e-6)


def test_argument_errors():
    with pytest.raises(ValueError, match="tau_plus_ms"):
        pair_stdp(tau_plus_ms=-1.0)
    with pytest.raises(ValueError, match="tau_minus_ms"):
        pair_stdp(tau_minus_ms=0.0)
    with pytest.raises(ValueError, match="dt_ms"):
        pair_stdp(dt_ms=0.0)
    with pytest.raises(ValueError, match="w_max"):
        pair_stdp(w_max=0.0)
    with pytest.raises(ValueError, match="w_max"):
        pair_stdp(weight_dependence="multiplicative")
    with pytest.raises(ValueError, match="a_plus"):
        pair_stdp(a_plus=-0.1)
    with pytest.raises(ValueError, match="pairing"):
        pair_stdp(pairing="first")
    with pytest.raises(ValueError, match="tau_y_ms"):
        triplet_stdp(tau_y_ms=-5.0)
    with pytest.raises(ValueError, match="tau_eligibility_ms"):
        reward_stdp(tau_eligibility_ms=0.0)
    with pytest.raises(ValueError, match="w_max"):
        reward_stdp(w_max=-1.0)
    rule = pair_stdp()
    w = jnp.zeros((2, 1))
    with pytest.raises(ValueError, match="binary"):
        rule.update(STDPSignals(jnp.array([0.0, 0.5]), jnp.array([1.0])), rule.init(w), w)
    with pytest.raises(ValueError, match=r"signals\.post"):
        rule.update(STDPSignals(jnp.array([0.0, 1.0]), jnp.array([1.0, 0.0])), rule.init(w), w)
    with pytest.raises(ValueError, match="needs params"):
        rule.update(STDPSignals(jnp.zeros(2), jnp.zeros(1)), rule.init(w))
    with pytest.raises(ValueError, match="pre_spikes"):
        run_stdp(rule, w, np.full((5, 2), 2.0), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="reward"):
        reward_rule = reward_stdp()
        reward_rule.update(STDPSignals(jnp.zeros(2), jnp.zeros(1)), reward_rule.init(w), w)
