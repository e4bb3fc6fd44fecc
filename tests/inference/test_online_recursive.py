"""The bin-by-bin paths — the online ML trainer, the streaming variational rule, the particle
filter — on recursive trace states give what they give on the ring buffer of the same kernels
(a network on ``numpy.asarray(basis)``), and their compiled memory no longer grows with the
kernels' length."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import probsnn as ps
from probsnn import kernels
from probsnn.inference.latent import multisample, variational
from probsnn.inference.likelihood.online import ml_online_trainer

DT = 1e-3
SYNAPSES = kernels.recursive_alpha([2e-3, 8e-3], DT)
FEEDBACK = kernels.difference_of_exponentials([1e-3], [4e-3], DT)


def _pair(n=5, **options):
    """The same network on recursive bases and on their arrays (the ring buffer's path)."""
    recursive = ps.Network(n, SYNAPSES, feedback_basis=FEEDBACK, dt=DT, **options)
    ring = ps.Network(
        n, np.asarray(SYNAPSES), feedback_basis=np.asarray(FEEDBACK), dt=DT, **options
    )
    assert recursive.recursive and not ring.recursive
    return recursive, ring


def _assert_params_close(ours, theirs, atol):
    for name, a, b in zip(ps.Params._fields, ours, theirs, strict=True):
        if a is not None:
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, err_msg=name)


def test_online_ml_trainer_on_recursive_traces_equals_the_ring():
    recursive, ring = _pair(n_inputs=2, input_basis=kernels.raised_cosine(2, 1, 5))
    params = recursive.init_params(jax.random.key(0), rate=60.0, weight_scale=0.5)
    inputs = jax.random.normal(jax.random.key(1), (3, 2000, 2))
    spikes = ps.sample(recursive, params, jax.random.key(2), 2000, n_trials=3, inputs=inputs)
    assert 0.02 < float(spikes.mean()) < 0.3
    results = []
    for spec in (recursive, ring):
        trainer = ml_online_trainer(spec, optax.sgd(2e-3), kappa=0.5)
        results.append(trainer.step(jax.random.key(3), trainer.init(params), (spikes, inputs)))
    (state, info), (ring_state, ring_info) = results
    np.testing.assert_allclose(info.log_likelihood, ring_info.log_likelihood, rtol=1e-5)
    _assert_params_close(state.params, ring_state.params, atol=1e-4)
    moved = jnp.abs(state.params.w - params.w).max()
    assert float(moved) > 1e-2  # the comparison is not of two untouched starts


def test_streaming_variational_rule_on_recursive_traces_equals_the_ring():
    """Same key, same hidden draws (u agrees to round-off), same learning signal and params."""
    recursive, ring = _pair(visible=np.arange(5) < 3)
    params = recursive.init_params(jax.random.key(4), rate=60.0, weight_scale=2.0)
    visible = jax.random.bernoulli(jax.random.key(5), 0.1, (4, 1500, 3))
    fits = [
        variational.fit_variational_online(
            spec, params, visible, key=jax.random.key(6), kappa=0.5, learning_rate=5e-3
        )
        for spec in (recursive, ring)
    ]
    np.testing.assert_allclose(fits[0].learning_signal, fits[1].learning_signal, rtol=1e-4)
    _assert_params_close(fits[0].params, fits[1].params, atol=1e-4)


def test_particle_filter_on_recursive_traces_equals_the_ring():
    recursive, ring = _pair(visible=np.arange(5) < 3)
    params = recursive.init_params(jax.random.key(7), rate=60.0, weight_scale=2.0)
    visible = jax.random.bernoulli(jax.random.key(8), 0.1, (2, 300, 3))
    estimates = [
        multisample.log_marginal_smc(
            spec, params, visible, key=jax.random.key(9), n_particles=16, n_repeats=4
        )
        for spec in (recursive, ring)
    ]
    np.testing.assert_allclose(estimates[0].value, estimates[1].value, rtol=1e-5)
    np.testing.assert_allclose(
        estimates[0].standard_error, estimates[1].standard_error, rtol=1e-3, atol=1e-6
    )


def test_streaming_memory_does_not_grow_with_the_kernel_length():
    """The compiled stream's working set is the same for τ = 20 ms and 200 ms (L grows ~10×)
    on trace states; on the ring buffer of the same kernels it grows."""

    def working_set(tau_ms, recursive):
        basis = kernels.recursive_exponential([tau_ms * 1e-3], DT)
        basis = basis if recursive else np.asarray(basis)
        spec = ps.Network(4, basis, dt=DT, visible=np.arange(4) < 2)
        params = spec.init_params(jax.random.key(0))
        visible = jnp.zeros((8, 100, 2))
        compiled = variational._stream.lower(
            spec, (0.5, True, None, 0.0), None, 0.01, params, jax.random.key(0), visible, None
        ).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    assert working_set(20.0, True) == working_set(200.0, True)
    assert working_set(200.0, False) > 2 * working_set(20.0, False)
