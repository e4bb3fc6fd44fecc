"""probsnn.io: exact round trips of specs, params and fit results; bad files are refused."""

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import probsnn as ps
from probsnn import io, kernels
from probsnn.inference import Trainer, fit, fit_ml
from probsnn.models import EnergyNetwork
from probsnn.models.energy import init_params as energy_init


def _assert_same_tree(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert type(a) is type(b) or (isinstance(a, jax.Array) and isinstance(b, jax.Array))
        if isinstance(a, np.ndarray | jax.Array | np.generic):
            assert np.asarray(a).dtype == np.asarray(b).dtype
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        else:
            assert a == b or (a != a and b != b)  # NaN equals NaN here


def _network():
    basis = kernels.raised_cosine(3, first_peak=1, last_peak=8)
    connectivity = ~np.eye(4, dtype=bool)
    connectivity[0, 2] = False
    return ps.Network(
        4,
        basis,
        feedback_basis=kernels.exponential([4e-3], length=5, dt=2e-3),
        input_basis=kernels.raised_cosine(2, first_peak=0, last_peak=4),
        n_inputs=2,
        dt=2e-3,
        connectivity=connectivity,
        visible=np.array([True, True, False, True]),
    )


def test_network_params_and_an_ml_fit_round_trip_exactly(tmp_path):
    basis = kernels.raised_cosine(3, first_peak=1, last_peak=8)
    spec = ps.Network(3, basis, dt=1e-3)
    truth = spec.init_params(jax.random.key(0), rate=30.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), n_steps=2_000)
    result = fit_ml(spec, spikes, progress=False)
    path = io.save(tmp_path / "model", spec, result.params, fit=result, metadata={"seed": 1})
    assert path.name == "model.npz"
    saved = io.load(path)
    assert saved.spec == spec and saved.metadata == {"seed": 1}
    assert saved.spec.feedback_basis is saved.spec.synapse_basis  # the shared basis stays shared
    _assert_same_tree(saved.params, result.params)
    _assert_same_tree(saved.fit, result)
    assert type(saved.fit.info) is type(result.info)


def test_every_spec_field_round_trips(tmp_path):
    spec = _network()
    params = spec.init_params(jax.random.key(2))
    saved = io.load(io.save(tmp_path / "m.npz", spec, params))
    assert saved.spec == spec and saved.fit is None and saved.metadata == {}
    for name in ("synapse_basis", "feedback_basis", "input_basis", "connectivity", "visible"):
        np.testing.assert_array_equal(getattr(saved.spec, name), getattr(spec, name))
    _assert_same_tree(saved.params, params)


def test_wta_and_energy_specs_round_trip(tmp_path):
    wta = ps.WTANetwork(3, 2, kernels.raised_cosine(2, first_peak=1, last_peak=5))
    wta_params = wta.init_params(jax.random.key(0))
    saved = io.load(io.save(tmp_path / "wta.npz", wta, wta_params))
    assert saved.spec == wta
    _assert_same_tree(saved.params, wta_params)

    energy = EnergyNetwork((4, 3, 2), activation="tanh", cost="cross_entropy")
    energy_params = energy_init(energy, jax.random.key(1))
    saved = io.load(io.save(tmp_path / "ep.npz", energy, energy_params))
    assert saved.spec == energy
    _assert_same_tree(saved.params, energy_params)


def test_a_training_result_with_optimiser_state_round_trips(tmp_path):
    optimizer = optax.adam(0.1)

    def step(key, state, batch):
        params, opt_state = state
        grad = jnp.mean(params.bias) - jnp.mean(batch) + 0 * jax.random.normal(key)
        updates, opt_state = optimizer.update(
            jax.tree.map(lambda p: jnp.full_like(p, grad), params), opt_state, params
        )
        new = optax.apply_updates(params, updates)
        return type(state)(new, opt_state), type(state)(jnp.float32(grad**2), None)

    spec = ps.Network(2, kernels.raised_cosine(2, first_peak=1, last_peak=4))
    params = spec.init_params(jax.random.key(0))

    from typing import NamedTuple

    class State(NamedTuple):  # a test-local type: not importable, so it may not be saved
        params: object
        opt_state: object

    trainer = Trainer(lambda p: State(p, optimizer.init(p)), jax.jit(step))
    result = fit(trainer, params, np.ones((4, 1)), key=jax.random.key(3), epochs=2)
    with pytest.raises(TypeError, match="only probsnn and optax types"):
        io.save(tmp_path / "r.npz", spec, result.params, fit=result)
    as_dict = {"opt_state": result.state.opt_state, "history": result.history, "note": None}
    saved = io.load(io.save(tmp_path / "r.npz", spec, result.params, fit=as_dict))
    _assert_same_tree(saved.fit, as_dict)


def test_trees_with_keys_round_trip_into_a_template(tmp_path):
    tree = {"key": jax.random.key(4), "legacy": jax.random.PRNGKey(5), "n": 3, "x": np.float32(2)}
    path = io.save_tree(tmp_path / "t", tree, metadata={"a": [1, 2]})
    got, metadata = io.load_tree(path, tree)
    assert metadata == {"a": [1, 2]}
    np.testing.assert_array_equal(jax.random.key_data(got["key"]), jax.random.key_data(tree["key"]))
    np.testing.assert_array_equal(got["legacy"], tree["legacy"])
    assert got["n"] == 3 and got["x"] == np.float32(2) and type(got["x"]) is np.float32
    with pytest.raises(io.FormatError, match="expected structure"):
        io.load_tree(path, {**tree, "x": np.zeros(2, np.float32)})
    with pytest.raises(io.FormatError, match="holds a 'tree', expected a 'model'"):
        io.load(path)


def _rewrite_meta(path, change):
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    change(meta, arrays)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


def test_bad_files_are_refused_with_named_errors(tmp_path):
    spec = ps.Network(2, kernels.raised_cosine(2, first_peak=1, last_peak=4))
    params = spec.init_params(jax.random.key(0))
    path = io.save(tmp_path / "m.npz", spec, params)

    newer = tmp_path / "newer.npz"
    newer.write_bytes(path.read_bytes())
    _rewrite_meta(newer, lambda meta, arrays: meta.update(format_version=io.FORMAT_VERSION + 1))
    with pytest.raises(io.FormatError, match="newer than this probsnn reads"):
        io.load(newer)

    mismatched = tmp_path / "mismatch.npz"
    mismatched.write_bytes(path.read_bytes())
    _rewrite_meta(mismatched, lambda meta, arrays: arrays.update({"params/0": np.zeros((3, 3, 2))}))
    with pytest.raises(io.FormatError, match="do not match the saved spec"):
        io.load(mismatched)

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(io.FormatError, match="not a readable probsnn file"):
        io.load(truncated)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(io.FormatError, match="not a probsnn file"):
        io.load(foreign)
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.npz")
    assert zipfile.is_zipfile(path)  # a plain npz: readable without probsnn


def test_save_refuses_mismatches_and_unsupported_objects(tmp_path):
    spec = ps.Network(2, kernels.raised_cosine(2, first_peak=1, last_peak=4))
    other = ps.Network(3, kernels.raised_cosine(2, first_peak=1, last_peak=4))
    params = other.init_params(jax.random.key(0))
    with pytest.raises(ValueError, match=r"params\.w must have shape"):
        io.save(tmp_path / "m.npz", spec, params)
    with pytest.raises(TypeError, match="spec must be one of"):
        io.save(tmp_path / "m.npz", "network", params)
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        io.save(tmp_path / "m.npz", other, params, metadata={"f": object()})
    with pytest.raises(TypeError, match="cannot save an array of dtype complex"):
        io.save(tmp_path / "m.npz", other, params, fit={"z": np.ones(2, complex)})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.save(tmp_path / "no" / "m.npz", other, params)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_trees_of_known_types_load_without_a_template(tmp_path):
    params = ps.Network(2, kernels.raised_cosine(2, first_peak=1, last_peak=4)).init_params(
        jax.random.key(0)
    )
    tree = {"model": (params, None, [np.arange(3)]), "adam": optax.adam(0.1).init(params)}
    got, _ = io.load_tree(io.save_tree(tmp_path / "t", tree))
    _assert_same_tree(got, tree)
    assert type(got["model"][0]) is ps.Params

    from typing import NamedTuple

    class Local(NamedTuple):  # not importable: stored without a description
        x: object

    path = io.save_tree(tmp_path / "local", Local(np.ones(2)))
    with pytest.raises(io.FormatError, match="pass like="):
        io.load_tree(path)
    got, _ = io.load_tree(path, Local(np.zeros(2)))
    np.testing.assert_array_equal(got.x, np.ones(2))
