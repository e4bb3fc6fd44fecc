"""The shared training loop: batches, keys, history, callback, divergence, bad arguments."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probsnn.inference import Trainer, fit


class State(NamedTuple):
    params: jax.Array
    opt_state: object
    seen: jax.Array  # how often each item was in a batch


class Info(NamedTuple):
    loss: jax.Array
    extra: dict


def mean_trainer(learning_rate=0.1, n_items=12):
    """Fits the mean of the data by Adam on the squared error; counts the items it sees (the
    data carry their index in the last column)."""
    optimizer = optax.adam(learning_rate)

    def init(params):
        return State(params, optimizer.init(params), jnp.zeros(n_items, jnp.int32))

    @jax.jit
    def step(key, state, batch):
        values, index = batch[:, :2], batch[:, 2].astype(jnp.int32)
        noise = 0.0 * jax.random.normal(key)
        loss, grad = jax.value_and_grad(lambda p: jnp.mean((values - p) ** 2) + noise)(state.params)
        updates, opt_state = optimizer.update(grad, state.opt_state, state.params)
        seen = state.seen.at[index].add(1)
        info = Info(loss, {"grad_norm": jnp.linalg.norm(grad), "per_param": jnp.abs(grad)})
        return State(optax.apply_updates(state.params, updates), opt_state, seen), info

    return Trainer(init, step)


def data(n_items=12):
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 1.0, (n_items, 2)).astype(np.float32)
    return np.concatenate([values, np.arange(n_items, dtype=np.float32)[:, None]], axis=1)


def test_epochs_cover_the_items_in_static_batches_and_record_every_info_field():
    result = fit(
        mean_trainer(),
        jnp.zeros(2),
        data(),
        key=jax.random.key(0),
        epochs=4,
        batch_size=5,  # 12 items: two batches of 5 per epoch, 2 items left out each epoch
        progress=False,
    )
    seen = np.asarray(result.state.seen)
    assert seen.sum() == 4 * 10 and seen.max() <= 4 and (seen > 0).sum() >= 10
    assert set(result.history) == {"loss", "extra_grad_norm", "extra_per_param", "seconds"}
    assert all(len(v) == 4 for v in result.history.values())
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_same_key_same_result_and_training_resumes_from_a_state():
    trainer, params, items = mean_trainer(), jnp.zeros(2), data()
    first = fit(
        trainer, params, items, key=jax.random.key(3), epochs=3, batch_size=4, progress=False
    )
    again = fit(
        trainer, params, items, key=jax.random.key(3), epochs=3, batch_size=4, progress=False
    )
    np.testing.assert_array_equal(np.asarray(first.params), np.asarray(again.params))
    more = fit(
        trainer,
        None,
        items,
        key=jax.random.key(4),
        epochs=2,
        batch_size=4,
        progress=False,
        state=first.state,
    )
    assert int(np.asarray(more.state.seen).sum()) == 5 * 12


def test_full_batch_and_data_held_by_the_trainer():
    full = fit(
        mean_trainer(), jnp.zeros(2), data(), key=jax.random.key(0), epochs=2, progress=False
    )
    assert np.all(np.asarray(full.state.seen) == 2)

    calls = []

    def step(key, state, batch):
        calls.append(batch)
        return state, Info(jnp.float32(1.0), {})

    held = Trainer(lambda p: State(p, None, jnp.zeros(1)), step)
    fit(held, jnp.zeros(1), None, key=jax.random.key(0), epochs=3, progress=False)
    assert calls == [None, None, None]


def test_callback_sees_each_epoch_and_can_stop():
    rows = []

    def callback(epoch, state, info):
        rows.append((epoch, info["loss"], state.params.shape))
        return epoch == 2

    result = fit(
        mean_trainer(),
        jnp.zeros(2),
        data(),
        key=jax.random.key(0),
        epochs=10,
        batch_size=6,
        callback=callback,
        progress=False,
    )
    assert [r[0] for r in rows] == [0, 1, 2]
    np.testing.assert_allclose([r[1] for r in rows], result.history["loss"])


def test_divergence_stops_with_a_named_epoch():
    with pytest.raises(FloatingPointError, match=r"epoch 0.*loss is nan"):
        fit(
            mean_trainer(),
            jnp.zeros(2),
            data() * np.nan,
            key=jax.random.key(0),
            epochs=3,
            batch_size=4,
            progress=False,
        )

    def step(key, state, batch):
        return state._replace(params=state.params * jnp.inf), Info(jnp.float32(0.0), {})

    exploding = Trainer(lambda p: State(p, None, jnp.zeros(1)), step)
    with pytest.raises(FloatingPointError, match="parameters hold NaN or inf"):
        fit(exploding, jnp.ones(2), None, key=jax.random.key(0), epochs=2, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": 0}, TypeError, "key must be a PRNG key"),
        ({"key": jax.random.split(jax.random.key(0), 2)}, TypeError, "single PRNG key"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"epochs": 2.5}, TypeError, "epochs must be an integer"),
        ({"batch_size": 13}, ValueError, r"batch_size must lie in 1\.\.12"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"callback": 3}, TypeError, "callback must be callable"),
        ({"data": (np.zeros((12, 3)), np.zeros((11, 1)))}, ValueError, "leading"),
        ({"data": np.zeros((0, 3))}, ValueError, "at least one item"),
        ({"trainer": object()}, TypeError, "init and step"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = {
        "trainer": mean_trainer(),
        "params": jnp.zeros(2),
        "data": data(),
        "key": jax.random.key(0),
        "epochs": 2,
        "batch_size": 4,
        "progress": False,
    }
    arguments.update(kwargs)
    trainer, params, items = (
        arguments.pop("trainer"),
        arguments.pop("params"),
        arguments.pop("data"),
    )
    with pytest.raises(error, match=match):
        fit(trainer, params, items, **arguments)


def _run(**options):
    settings = dict(key=jax.random.key(5), epochs=4, batch_size=4, progress=False)
    return fit(mean_trainer(), jnp.zeros(2), data(), **{**settings, **options})


def test_checkpoints_every_k_epochs_and_after_the_last(tmp_path, monkeypatch):
    from probsnn import io

    written = []
    original = io.save_tree
    monkeypatch.setattr(
        io,
        "save_tree",
        lambda *a, **k: written.append(k["metadata"]["epochs_done"]) or original(*a, **k),
    )
    _run(epochs=5, checkpoint=tmp_path / "c.npz", every=2)
    assert written == [2, 4, 5]
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind


def test_a_crash_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    _run(epochs=2, checkpoint=path)
    before = path.read_bytes()

    def crash(*args, **kwargs):  # dies half-way through writing the archive
        args[0].write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        _run(epochs=3, checkpoint=path, resume=path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    resumed = _run(epochs=4, resume=path)
    np.testing.assert_array_equal(np.asarray(resumed.params), np.asarray(_run().params))


def test_resume_refuses_another_run_and_a_damaged_file(tmp_path):
    from probsnn.io import FormatError

    path = tmp_path / "c.npz"
    _run(epochs=1, checkpoint=path)
    with pytest.raises(ValueError, match="another key"):
        _run(key=jax.random.key(6), resume=path)
    with pytest.raises(ValueError, match="batch_size"):
        _run(batch_size=3, resume=path)
    with pytest.raises(FormatError, match="expected structure"):
        fit(
            mean_trainer(n_items=12),
            jnp.zeros(3),  # another params shape
            data(),
            key=jax.random.key(5),
            epochs=2,
            batch_size=4,
            progress=False,
            resume=path,
        )
    with pytest.raises(FileNotFoundError, match="no such file"):
        _run(resume=tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"")
    with pytest.raises(FormatError, match="not a readable probsnn file"):
        _run(resume=tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="every must be >= 1"):
        _run(checkpoint=path, every=0)


def test_resume_of_a_finished_run_returns_it_and_keeps_the_history(tmp_path):
    path = tmp_path / "c.npz"
    done = _run(checkpoint=path)
    again = _run(resume=path)
    np.testing.assert_array_equal(np.asarray(again.params), np.asarray(done.params))
    np.testing.assert_array_equal(again.history["loss"], done.history["loss"])
