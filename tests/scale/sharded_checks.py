"""Checks run in a subprocess that has 4 forced CPU devices (tests/scale/test_sharding.py).

``python sharded_checks.py NAME`` runs one group of checks and exits 0 when they pass; an
assertion error (non-zero exit) names what differed. Each sharded result is compared with the
same call on one device and its placement is checked: split over the 4 devices along trials.
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["PJRT_NPROC"] = "8"  # XLA's CPU pool: spare threads over the 4 devices
os.environ.setdefault("JAX_ENABLE_X64", "1")

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec

import probsnn as ps
from probsnn import inference, kernels, parallel

assert jax.device_count() == 4, jax.devices()
MESH = parallel.trial_mesh()
COSINE = kernels.raised_cosine(3, 1, 10)
EXPONENTIAL = kernels.recursive_exponential([0.002, 0.006], 1e-3)


def split_over_trials(array):
    sharding = array.sharding
    assert sharding.spec == PartitionSpec(parallel.TRIALS), sharding
    assert len(sharding.device_set) == 4, sharding
    shard_rows = {shard.data.shape[0] for shard in array.addressable_shards}
    assert shard_rows == {array.shape[0] // 4}, shard_rows


def network(basis, n_inputs=0, visible=None):
    input_basis = COSINE if n_inputs else None
    return ps.Network(
        5, basis, n_inputs=n_inputs, input_basis=input_basis, visible=visible, dt=1e-3
    )


def check_sample():
    for basis, propagation in ((COSINE, "ring"), (EXPONENTIAL, "event"), (EXPONENTIAL, "dense")):
        spec = network(basis, n_inputs=2, visible=np.array([True, True, False, False, False]))
        params = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=2.0)
        inputs = jax.random.normal(jax.random.key(1), (8, 200, 2))
        clamp = jax.random.bernoulli(jax.random.key(2), 0.05, (8, 200, 2))
        request = dict(inputs=inputs, clamp=clamp, return_potentials=True, propagation=propagation)
        one, u_one = ps.sample(spec, params, jax.random.key(3), 200, 8, **request)
        many, u_many = ps.sample(spec, params, jax.random.key(3), 200, 8, mesh=MESH, **request)
        split_over_trials(many)
        split_over_trials(u_many)
        np.testing.assert_array_equal(np.asarray(many), np.asarray(one), err_msg=propagation)
        np.testing.assert_allclose(np.asarray(u_many), np.asarray(u_one), rtol=1e-5, atol=1e-5)
        assert np.asarray(one).any()
    # a sparse network, its spikes delivered by the compiled CPU kernel on each device
    spec = ps.SparseNetwork(40, ps.topology.fixed_fan_out(40, 6, seed=1), EXPONENTIAL, dt=1e-3)
    params = spec.init_params(jax.random.key(0), rate=40.0, weight_scale=3.0)
    one = ps.sample(spec, params, jax.random.key(3), 300, 8)
    many = ps.sample(spec, params, jax.random.key(3), 300, 8, mesh=MESH)
    split_over_trials(many)
    np.testing.assert_array_equal(np.asarray(many), np.asarray(one), err_msg="sparse")
    assert np.asarray(one).mean() > 0.01


def check_neurons():
    """A (2 trials) x (2 neurons) mesh: each device samples half the trials of half the
    network, from params placed by postsynaptic neuron."""
    mesh = parallel.trial_mesh(neuron_shards=2)
    assert dict(mesh.shape) == {parallel.TRIALS: 2, parallel.NEURONS: 2}
    for basis, propagation in ((COSINE, "ring"), (EXPONENTIAL, "event"), (EXPONENTIAL, "dense")):
        spec = ps.Network(6, basis, dt=1e-3)
        params = spec.init_params(jax.random.key(0), rate=40.0, weight_scale=2.0)
        placed = parallel.shard_params(params, mesh)
        assert placed.w.sharding.spec == PartitionSpec(None, parallel.NEURONS, None)
        k = params.w.shape[2]
        assert {shard.data.shape for shard in placed.w.addressable_shards} == {(6, 3, k)}
        run = dict(return_potentials=True, propagation=propagation)
        one, u_one = ps.sample(spec, params, jax.random.key(3), 300, 4, **run)
        many, u_many = ps.sample(spec, placed, jax.random.key(3), 300, 4, mesh=mesh, **run)
        expected = PartitionSpec(parallel.TRIALS, None, parallel.NEURONS)
        assert many.sharding.spec == expected, many.sharding
        assert {shard.data.shape for shard in many.addressable_shards} == {(2, 300, 3)}
        np.testing.assert_array_equal(np.asarray(many), np.asarray(one), err_msg=propagation)
        np.testing.assert_allclose(np.asarray(u_many), np.asarray(u_one), rtol=1e-5, atol=1e-5)
        assert np.asarray(one).any()
    odd = ps.Network(5, COSINE, dt=1e-3)
    try:
        ps.sample(odd, odd.init_params(jax.random.key(0)), jax.random.key(1), 10, 4, mesh=mesh)
    except ValueError as error:
        assert "number of neurons" in str(error), error
    else:
        raise AssertionError("5 neurons on 2 neuron shards were not refused")


def check_likelihood():
    spec = network(COSINE, n_inputs=2)
    params = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=2.0)
    inputs = jax.random.normal(jax.random.key(1), (8, 300, 2))
    spikes = ps.sample(spec, params, jax.random.key(2), 300, 8, inputs=inputs)
    params, spikes = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (params, spikes))
    one = ps.log_likelihood(spec, params, spikes, inputs)
    many = ps.log_likelihood(spec, params, spikes, inputs, mesh=MESH)
    np.testing.assert_allclose(float(many), float(one), rtol=1e-12)
    u = ps.potentials(spec, params, spikes, inputs, mesh=MESH)
    split_over_trials(u)
    np.testing.assert_allclose(np.asarray(u), ps.potentials(spec, params, spikes, inputs))
    grad_one = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes, inputs))(params)
    grad_many = jax.grad(lambda p: ps.log_likelihood(spec, p, spikes, inputs, mesh=MESH))(params)
    for a, b in zip(jax.tree.leaves(grad_many), jax.tree.leaves(grad_one), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)


def check_fit_ml():
    spec = network(COSINE)
    truth = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=2.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), 1000, 4).astype(jnp.float64)
    one = inference.fit_ml(spec, spikes, l2=0.1, tol=1e-10)
    many = inference.fit_ml(spec, spikes, l2=0.1, tol=1e-10, mesh=MESH)
    assert one.info.converged and many.info.converged
    for a, b in zip(jax.tree.leaves(many.params), jax.tree.leaves(one.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    # the Newton trainer driven by fit: the same two iterations on 4 devices as on one
    run = dict(key=jax.random.key(0), epochs=2, progress=False)
    steps = [
        inference.fit(
            inference.newton_trainer(spec, spikes, l2=0.1, preconditioner="shared", mesh=mesh),
            None,
            None,
            **run,
        )
        for mesh in (None, MESH)
    ]
    np.testing.assert_allclose(
        np.asarray(steps[1].state.coef), np.asarray(steps[0].state.coef), rtol=1e-8, atol=1e-10
    )


def check_trainer():
    spec = network(COSINE)
    truth = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=2.0)
    data = ps.sample(spec, truth, jax.random.key(1), 200, 16)
    start = spec.init_params(jax.random.key(2), rate=20.0)
    trainer = inference.ml_online_trainer(spec, optax.sgd(1e-3))
    run = dict(key=jax.random.key(3), epochs=2, batch_size=8, progress=False)
    one = inference.fit(trainer, start, data, **run)
    many = inference.fit(trainer, start, data, mesh=MESH, **run)
    for a, b in zip(jax.tree.leaves(many.params), jax.tree.leaves(one.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(many.history["loss"], one.history["loss"], rtol=1e-5)


def check_parallel_chains():
    spec = network(COSINE)
    truth = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=1.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), 400, 1)
    run = dict(key=jax.random.key(2), num_warmup=100, num_samples=20, num_chains=4)
    run.update(n_predictive=0, progress=False)
    auto = inference.fit_mcmc(spec, spikes, **run)
    assert auto.sample_stats.attrs["chain_method"] == "parallel"
    sequential = inference.fit_mcmc(spec, spikes, chain_method="sequential", **run)
    assert sequential.sample_stats.attrs["chain_method"] == "sequential"
    np.testing.assert_allclose(
        auto.posterior["bias"].values, sequential.posterior["bias"].values, rtol=1e-6
    )
    five = inference.fit_mcmc(spec, spikes, **{**run, "num_chains": 5})
    assert five.sample_stats.attrs["chain_method"] == "sequential"  # 5 chains > 4 devices


def check_refusals():
    spec = network(COSINE)
    params = spec.init_params(jax.random.key(0))
    for call, match in (
        (lambda: ps.sample(spec, params, jax.random.key(0), 10, 6, mesh=MESH), "multiple"),
        (lambda: ps.sample(spec, params, jax.random.key(0), 10, mesh=MESH), "n_trials"),
        (lambda: ps.sample(spec, params, jax.random.key(0), 10, 4, mesh="cpu"), "Mesh"),
        (lambda: ps.log_likelihood(spec, params, np.zeros((10, 5)), mesh=MESH), "trial axis"),
    ):
        try:
            call()
        except (ValueError, TypeError) as error:
            assert match in str(error), error
        else:
            raise AssertionError(f"no error for {match}")


def check_compare():
    """Comparison cells side by side on the 4 devices: the same numbers as on one, each group
    on a device of its own; a bad ``devices`` is refused before any cell runs."""
    from probsnn.compare import SelectionError, compare

    def run(**options):
        report = compare(
            ["digits"],
            ["backprop", "surrogate"],
            quick=True,
            n_seeds=2,
            task_config={"digits": {"n_train": 60, "n_test": 40, "n_steps": 10}},
            criterion_config={
                "backprop": {"epochs": 2, "hidden": 8},
                "surrogate": {"epochs": 2, "hidden": 8},
            },
            progress=False,
            **options,
        )
        assert all(cell["status"] == "ok" for cell in report.cells), report.cells
        return report.cells

    def numbers(cell):
        times = ("fit_seconds", "seconds_to_target")
        metrics = {k: v for k, v in cell["metrics"].items() if k not in times}
        return cell["criterion"], cell["seed"], metrics, cell["curve"]["values"], cell["raster"]

    alone, spread = run(), run(devices=4)
    assert [numbers(cell) for cell in spread] == [numbers(cell) for cell in alone]
    assert {cell["device"] for cell in alone} == {str(jax.devices()[0])}
    by_group = {}
    for cell in spread:
        by_group.setdefault(cell["criterion"], set()).add(cell["device"])
    assert all(len(devices) == 1 for devices in by_group.values()), by_group
    assert len(set().union(*by_group.values())) == 2, by_group  # the two groups side by side
    for devices, workers, message in (
        (5, 1, "between 1 and the 4 devices"),
        ([jax.devices()[0]] * 2, 1, "distinct"),
        (["cpu"], 1, "jax.Device"),
        (2, 2, "exclusive"),
    ):
        try:
            run(devices=devices, workers=workers)
        except SelectionError as error:
            assert message in str(error), error
        else:
            raise AssertionError(f"devices={devices!r}, workers={workers} was accepted")


if __name__ == "__main__":
    globals()[f"check_{sys.argv[1]}"]()
    print("ok")
