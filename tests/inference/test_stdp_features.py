"""Soft winner-take-all layer trained by STDP (inference/plasticity/features.py)."""

import jax
import numpy as np
import pytest

from probsnn.inference._training import fit
from probsnn.inference.plasticity import features as sf
from probsnn.inference.plasticity.stdp import pair_stdp


def _draws(layer, params, spikes, n_repeats, key=0):
    repeated = np.broadcast_to(spikes, (n_repeats, *spikes.shape))
    return np.asarray(sf.feature_spikes(layer, params, jax.random.key(key), repeated), float)


def test_winner_follows_the_softmax_of_the_traced_potentials():
    # Every input fires in every bin, so the trace before bin t is (1 - d^t) / (1 - d) and
    # u_{k,t} = trace_t Σ_j w_jk + b_k; the winner of bin t is softmax(u_t / T).
    layer = sf.FeatureLayer(temperature=0.5, trace_ms=10.0, dt_ms=5.0)
    params = sf.FeatureParams(
        w=np.array([[0.1, 0.4, 0.2], [0.3, 0.1, 0.0]], np.float32),
        bias=np.array([0.2, -0.1, 0.0], np.float32),
    )
    n_steps, n_repeats = 6, 4000
    spikes = np.ones((n_steps, 2), np.uint8)
    frequency = _draws(layer, params, spikes, n_repeats).mean(axis=0)  # (T, K)
    d = np.exp(-5.0 / 10.0)
    trace = (1 - d ** np.arange(n_steps)) / (1 - d)
    u = trace[:, None] * params.w.sum(axis=0) + params.bias
    expected = np.exp(u / 0.5) / np.exp(u / 0.5).sum(axis=1, keepdims=True)
    standard_error = np.sqrt(expected * (1 - expected) / n_repeats)
    np.testing.assert_array_less(np.abs(frequency - expected), 4.5 * standard_error)


def test_layer_rate_sets_the_fraction_of_bins_with_one_spike():
    layer = sf.FeatureLayer(layer_rate=0.3)
    params = sf.init_feature_params(jax.random.key(0), 4, 5, layer)
    draws = _draws(layer, params, np.ones((50, 4), np.uint8), 40)
    per_bin = draws.sum(axis=-1)
    assert set(np.unique(per_bin)) <= {0.0, 1.0}
    assert abs(per_bin.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / per_bin.size)


def _two_patterns(n, n_steps=20, seed=0):
    """Samples whose first or last 10 of 20 inputs fire with probability 0.5 per bin."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, 2, n)
    rate = np.zeros((n, 1, 20))
    rate[which == 0, :, :10] = 0.5
    rate[which == 1, :, 10:] = 0.5
    return (rng.random((n, n_steps, 20)) < rate).astype(np.uint8), which


def test_stdp_makes_one_neuron_per_pattern_and_keeps_the_weight_total():
    layer = sf.FeatureLayer(temperature=0.15, weight_total=4.0, homeostasis=0.005)
    rule = pair_stdp(0.02, 0.01, 10.0, 10.0, layer.dt_ms, w_max=1.0)
    initial = sf.init_feature_params(jax.random.key(1), 20, 2, layer)
    spikes, _ = _two_patterns(300)
    trainer = sf.stdp_features_trainer(layer, rule)
    # two passes over the samples in their order (one step per epoch)
    result = fit(trainer, initial, spikes, key=jax.random.key(2), epochs=2, progress=False)
    params = result.params
    assert result.history["loss"].shape == (2,)
    np.testing.assert_allclose(np.asarray(params.w).sum(axis=0), 4.0, rtol=1e-5)
    assert np.all(np.asarray(params.w) >= 0)
    test, which = _two_patterns(200, seed=9)
    counts = np.asarray(sf.feature_spikes(layer, params, jax.random.key(3), test)).sum(axis=1)
    preferred = [np.argmax(counts[which == p].sum(axis=0)) for p in (0, 1)]
    assert preferred[0] != preferred[1]
    for pattern, neuron in enumerate(preferred):
        share = counts[which == pattern, neuron].sum() / counts[which == pattern].sum()
        assert share > 0.9
        w = np.asarray(params.w)[:, neuron]
        assert w[10 * pattern : 10 * pattern + 10].sum() > 0.8 * 4.0

    # the monitored loss, the reconstruction error of the inputs by the features they activate,
    # is far lower after learning (the error of a sample is scored before learning from it)
    def loss(params):
        state = trainer.init(params)
        keys = jax.random.split(jax.random.key(4), 20)
        return np.mean(
            [float(trainer.step(k, state, test[i : i + 1])[1].loss) for i, k in enumerate(keys)]
        )

    assert loss(params) < 0.5 * loss(initial)


def test_trainer_compiles_once_and_checks_its_arguments():
    layer = sf.FeatureLayer()
    rule = pair_stdp(0.02, 0.01, 10.0, 10.0, layer.dt_ms, w_max=1.0)
    params = sf.init_feature_params(jax.random.key(0), 6, 3, layer)
    spikes = (np.random.default_rng(0).random((8, 10, 6)) < 0.3).astype(np.uint8)
    trainer = sf.stdp_features_trainer(layer, rule)
    fit(trainer, params, spikes, key=jax.random.key(1), epochs=3, batch_size=4, progress=False)
    assert trainer.step._cache_size() == 1  # one batch shape, one compilation
    with pytest.raises(TypeError, match="rule"):
        sf.stdp_features_trainer(layer, "pair")
    with pytest.raises(ValueError, match=r"layer\.dt_ms"):
        sf.stdp_features_trainer(layer._replace(dt_ms=0.0), rule)
    with pytest.raises(TypeError, match="FeatureParams"):
        trainer.init((params.w, params.bias))
    with pytest.raises(ValueError, match="spikes"):
        trainer.step(jax.random.key(0), trainer.init(params), spikes[0])


def test_bad_arguments_name_what_is_wrong():
    layer = sf.FeatureLayer()
    params = sf.init_feature_params(jax.random.key(0), 4, 3, layer)
    with pytest.raises(ValueError, match="spikes"):
        sf.feature_spikes(layer, params, jax.random.key(0), np.ones((5, 3), np.uint8))
    with pytest.raises(ValueError, match=r"layer\.layer_rate"):
        sf.feature_spikes(layer._replace(layer_rate=0.0), params, jax.random.key(0), None)
    with pytest.raises(ValueError, match=r"layer\.temperature"):
        sf.init_feature_params(jax.random.key(0), 4, 3, layer._replace(temperature=-1.0))
