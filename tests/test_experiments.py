"""The experiments of the face layer (probsnn/experiments.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probsnn.experiments import song_experiment
from probsnn.inference.plasticity.stdp import pair_stdp


def test_song_experiment_additive_bimodal_rate_regulation_multiplicative_unimodal():
    w_max = 0.015
    additive = pair_stdp(0.01 * w_max, 0.0105 * w_max, 20.0, 20.0, 1.0, w_max=w_max)
    run = jax.jit(
        jax.vmap(
            lambda rate: song_experiment(
                jax.random.key(0), additive, input_rate_hz=rate, duration_s=600
            )
        )
    )
    result = run(jnp.array([10.0, 40.0]))
    low = np.asarray(result.w[0]) / w_max
    hist = np.histogram(low, bins=10, range=(0, 1))[0]
    near_bounds = np.mean((low < 0.1) | (low > 0.9))
    assert near_bounds > 0.4 and np.mean(low > 0.9) > 0.15 and np.mean(low < 0.1) > 0.15
    assert hist[0] > 3 * hist[4:6].mean() and hist[-1] > 3 * hist[4:6].mean()  # bimodal
    # a 4× higher input rate raises the output rate far less than 4×
    rates = np.asarray(result.output_rate_hz)
    assert 0 < rates[0] < rates[1] < 3.0 * rates[0]
    assert np.asarray(result.rate_history[1, 0]) > 10 * rates[1]  # before learning: far higher
    assert np.all((np.asarray(result.w) >= 0) & (np.asarray(result.w) <= w_max))

    multiplicative = pair_stdp(
        0.03, 0.0315, 20.0, 20.0, 1.0, weight_dependence="multiplicative", w_max=w_max
    )
    soft = song_experiment(jax.random.key(1), multiplicative, input_rate_hz=10.0, duration_s=100)
    w = np.asarray(soft.w) / w_max
    assert np.mean((w < 0.1) | (w > 0.9)) < 0.02  # nothing piles up at the bounds
    hist = np.histogram(w, bins=10, range=(0, 1))[0]
    assert 2 <= np.argmax(hist) <= 7 and w.std() < 0.15  # one interior mode


def test_song_experiment_checks_its_arguments():
    rule = pair_stdp(w_max=0.015)
    with pytest.raises(ValueError, match="dt_ms"):
        song_experiment(jax.random.key(0), rule, dt_ms=0.3)
    with pytest.raises(ValueError, match="n_inputs"):
        song_experiment(jax.random.key(0), rule, n_inputs=0)
