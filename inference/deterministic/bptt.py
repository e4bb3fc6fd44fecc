"""Surrogate-gradient training of LIF/ALIF networks by backpropagation through time
(installed as ``probsnn.inference.deterministic.bptt``).

A :class:`probsnn.lif.LIFNetwork` classifies an input train ``x (T, M)`` through a read-out of
its last layer (:func:`readout_logits`, ``C`` classes):

* ``"count"``: ``o_c = Σ_t z_{t,c}``, the spike counts of the last (spiking) layer;
* ``"max_membrane"``: ``o_c = max_t v_{t,c}`` of the membrane read-out layer
  (``output="membrane"``; Cramer et al. 2022);
* ``"last_membrane"``: ``o_c = v_{T,c}``, its voltage in the last bin;
* ``"per_step"``: one logit vector per bin, ``o_{t,c} = v_{t,c}`` (Bellec et al. 2020).

The loss is the cross-entropy of the label ``y``, averaged over the batch:

    ℓ = −log softmax(o)_y                                   (count, max, last)
    ℓ = −(1/T) Σ_t log softmax(o_t)_y                       (per_step, the loss of e-prop)

Its gradient is ``jax.grad`` through the ``lax.scan`` of the network over bins (BPTT), with the
network's surrogate derivative h(m) (``spec.surrogate`` of width ``spec.surrogate_scale``,
:mod:`probsnn.surrogate`) in place of H′(m) = 0 wherever the margin m = v − A is not zero
(Neftci, Mostafa & Zenke 2019; SuperSpike: Zenke & Ganguli 2018; the pseudo-derivative of
LSNNs: Bellec et al. 2018). Reset, recurrence and adaptation are differentiated too (except the
reset with ``spec.detach_reset``). What this gradient is, exactly: with S the smooth step of
the surrogate (S′ = h) and m⁰ the margins at the current parameters θ₀, the network whose spikes
are z̃_t(θ) = S(m_t(θ)) + [H(m⁰_t) − S(m⁰_t)] runs through the hard trajectory at θ₀, and the
surrogate gradient is its exact gradient there. At temperature T > 0 the spikes are drawn with
the escape noise σ(m/T) and carry the same surrogate (straight-through); the step's key drives
the noise.

References: Neftci, Mostafa & Zenke (2019), IEEE Signal Process. Mag. 36(6):51; Zenke & Ganguli
(2018), Neural Comput. 30:1514; Bellec, Salaj, Subramoney, Legenstein & Maass (2018), NeurIPS;
Bellec et al. (2020), Nat. Commun. 11:3625; Cramer, Stradmann, Schemmel & Zenke (2022), IEEE
Trans. Neural Netw. Learn. Syst. 33:2744.

:func:`surrogate_trainer` returns the ``Trainer(init, step)`` of :mod:`probsnn.inference._training`
for :func:`probsnn.inference.fit`; :func:`predict` and :func:`accuracy` classify held-out inputs.

Example::

    spec = LIFNetwork((64, 100, 10), output="membrane", dt=5e-3)
    params = init_params(spec, jax.random.key(0))
    trainer = surrogate_trainer(spec, optax.adam(3e-3), readout="per_step")
    result = fit(trainer, params, (spikes, labels), key=jax.random.key(1), epochs=30,
                 batch_size=32)
    acc = accuracy(spec, result.params, test_spikes, test_labels, readout="per_step")
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from probsnn import _checks, lif
from probsnn.inference._steps import checked
from probsnn.inference._training import Trainer
from probsnn.inference.deterministic._arguments import check_key, check_labels, float_dtype

#: The read-outs of :func:`readout_logits`.
READOUTS = ("count", "max_membrane", "last_membrane", "per_step")
_MEMBRANE_READOUTS = ("max_membrane", "last_membrane", "per_step")


class SurrogateState(NamedTuple):
    """The trainer's state: ``params`` (tuple of :class:`probsnn.lif.LayerParams`) and the
    optimiser's ``opt_state``."""

    params: tuple
    opt_state: Any


class SurrogateInfo(NamedTuple):
    """One step's scalars, measured on the batch before the update.

    Attributes:
        loss: the mean cross-entropy ℓ (module docstring).
        accuracy: the fraction of the batch classified right (:func:`predict`'s rule).
        spike_rate: spikes per neuron and bin of the spiking layers, Σ z / (B T Σ_l N_l).
    """

    loss: jax.Array
    accuracy: jax.Array
    spike_rate: jax.Array


def check_readout(spec: lif.LIFNetwork, readout) -> str:
    """Return ``readout`` after checking that it is one of :data:`READOUTS` and fits
    ``spec.output``: ``"count"`` needs a spiking last layer (``output="spike"``), the membrane
    read-outs need ``output="membrane"``.

    Raises:
        TypeError: ``spec`` is no LIFNetwork, or ``readout`` no string.
        ValueError: an unknown read-out, or one that does not fit ``spec.output``.
    """
    if not isinstance(spec, lif.LIFNetwork):
        raise TypeError(f"spec must be a probsnn.lif.LIFNetwork, got {type(spec).__name__}")
    readout = _checks.option(readout, "readout", READOUTS)
    if readout == "count" and spec.output != "spike":
        raise ValueError(
            "readout='count' counts the spikes of the last layer and needs spec.output='spike', "
            f"got output={spec.output!r}; use one of {_MEMBRANE_READOUTS}"
        )
    if readout in _MEMBRANE_READOUTS and spec.output != "membrane":
        raise ValueError(
            f"readout={readout!r} reads the voltage of a membrane read-out layer and needs "
            f"spec.output='membrane', got output={spec.output!r}; use readout='count'"
        )
    return readout


def readout_logits(spec: lif.LIFNetwork, record: lif.LIFRecord, readout: str) -> jax.Array:
    """The class logits of a simulated network (equations in the module docstring).

    Args:
        spec: the network.
        record: an :class:`probsnn.lif.LIFRecord` of ``(..., T, N_l)`` arrays
            (:func:`probsnn.lif.simulate`).
        readout: one of :data:`READOUTS`, fitting ``spec.output``.

    Returns:
        ``(..., C)`` logits, or ``(..., T, C)`` for ``"per_step"``.

    Raises:
        ValueError, TypeError: a read-out that does not fit ``spec`` (:func:`check_readout`), or
            a record without one entry per layer.
    """
    readout = check_readout(spec, readout)
    if not isinstance(record, lif.LIFRecord) or len(record.voltage) != spec.n_layers:
        raise TypeError(
            f"record must be a LIFRecord with {spec.n_layers} layers (probsnn.lif.simulate), got "
            f"{type(record).__name__}"
        )
    return _logits(record, readout)


def _logits(record: lif.LIFRecord, readout: str):
    if readout == "count":
        return record.spikes[-1].sum(axis=-2)
    voltage = record.voltage[-1]
    if readout == "max_membrane":
        return voltage.max(axis=-2)
    if readout == "last_membrane":
        return voltage[..., -1, :]
    return voltage


def _scores(logits, readout: str):
    """``(B, C)`` class scores whose argmax is the prediction: the logits, or for
    ``"per_step"`` Σ_t log softmax(o_t), the class of least per-step loss."""
    if readout == "per_step":
        return jax.nn.log_softmax(logits, axis=-1).sum(axis=-2)
    return logits


def _cross_entropy(logits, labels, readout: str):
    """``(B,)`` per-sample losses ℓ for integer ``labels (B,)``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    if readout == "per_step":
        picked = jnp.take_along_axis(log_p, labels[:, None, None], axis=-1)[..., 0]
        return -picked.mean(axis=-1)
    return -jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]


def _loss_terms(params, spec, inputs, labels, readout, key):
    """``(loss, (accuracy, spike_rate))`` on ``inputs (B, T, M)``, ``labels (B,)``."""
    record = lif._run(spec, params, inputs, key, None)
    logits = _logits(record, readout)
    loss = _cross_entropy(logits, labels, readout).mean()
    correct = jnp.argmax(_scores(logits, readout), axis=-1) == labels
    spikes = sum(record.spikes[layer].sum() for layer in range(spec.n_spiking_layers))
    neurons = sum(spec.sizes[1 : spec.n_spiking_layers + 1])
    rate = spikes / (inputs.shape[0] * inputs.shape[1] * neurons)
    return loss, (correct.mean(), rate)


def _check_inputs(spec, inputs, name: str = "inputs"):
    inputs = _checks.real_array(inputs, name, shape_tail=(spec.n_inputs,), min_ndim=2)
    _checks.nonempty(inputs, name)
    return inputs


def _flat(spec, params, inputs):
    """``inputs (..., T, M)`` as ``(B, T, M)`` in the params' float type, and the lead shape."""
    lead = tuple(inputs.shape[:-2])
    flat = jnp.asarray(inputs, float_dtype(params)).reshape((-1, *inputs.shape[-2:]))
    return flat, lead


def _checked_call(spec, params, inputs, readout, key):
    readout = check_readout(spec, readout)
    params = spec.check_params(params)
    inputs = _check_inputs(spec, inputs)
    return readout, params, inputs, check_key(spec, key)


@functools.partial(jax.jit, static_argnames=("spec", "readout"))
def _loss(params, spec, inputs, labels, readout, key):
    return _loss_terms(params, spec, inputs, labels, readout, key)[0]


def classification_loss(
    spec: lif.LIFNetwork, params, inputs, labels, readout: str, key=None
) -> jax.Array:
    """The mean cross-entropy ℓ of the module docstring, differentiable in ``params`` with the
    surrogate derivative (``jax.grad(classification_loss, argnums=1)`` is the BPTT gradient
    :func:`surrogate_trainer` follows).

    Args:
        spec: the network.
        params: a tuple of :class:`probsnn.lif.LayerParams`.
        inputs: ``(..., T, M)`` input spikes or values.
        labels: ``(...)`` integer classes in ``0..C−1``.
        readout: one of :data:`READOUTS`, fitting ``spec.output``.
        key: a PRNG key for the escape noise, required at ``spec.temperature > 0`` (unused at 0).

    Returns:
        A scalar: ℓ averaged over the samples (``"per_step"``: and over the bins).

    Raises:
        ValueError, TypeError: a read-out that does not fit ``spec``, bad params, inputs of
            another width or non-finite, labels of another shape, out of range or not integer,
            a missing or bad key at T > 0.
    """
    readout, params, inputs, key = _checked_call(spec, params, inputs, readout, key)
    labels = check_labels(labels, inputs.shape[:-2], spec.sizes[-1])
    flat, _ = _flat(spec, params, inputs)
    return _loss(params, spec, flat, jnp.reshape(labels, (-1,)), readout, key)


def surrogate_trainer(
    spec: lif.LIFNetwork, optimizer: optax.GradientTransformation, *, readout: str = "count"
) -> Trainer:
    """Classification by surrogate-gradient BPTT (module docstring), followed by ``optimizer``.

    ``state = init(params)``; ``state, info = step(key, state, (inputs, labels))`` with
    ``inputs (B, T, M)`` spikes (uint8/bool) or real values and ``labels (B,)`` integer classes
    in ``0..C−1``. The step computes ``g = ∂ℓ/∂θ`` by ``jax.grad`` through the scan over bins
    and applies ``optimizer.update(g)``; it is jitted and compiles once per batch shape. At
    temperature T > 0 its key draws the escape noise; at T = 0 the key is unused (may be None).

    Args:
        spec: a :class:`probsnn.lif.LIFNetwork`.
        optimizer: an optax ``GradientTransformation`` (e.g. ``optax.adam(1e-3)``).
        readout: one of :data:`READOUTS`, fitting ``spec.output``.

    Returns:
        ``Trainer(init, step)`` with :class:`SurrogateState` and :class:`SurrogateInfo`.

    Raises:
        TypeError, ValueError: a bad spec, optimizer (e.g. a string) or read-out; at init, bad
            params; at step, a bad key at T > 0 (e.g. an int), a batch that is not
            ``(inputs (B, T, M), labels (B,))``, inputs of another width or non-finite, labels
            out of range or not integer.
    """
    readout = check_readout(spec, readout)
    _checks.optimizer(optimizer)
    stochastic = spec.temperature > 0
    gradient = jax.value_and_grad(_loss_terms, has_aux=True)

    def init(params):
        params = tuple(jax.tree.map(jnp.asarray, spec.check_params(params)))
        return SurrogateState(params, optimizer.init(params))

    @jax.jit
    def step(key, state, batch):
        inputs, labels = batch
        inputs = jnp.asarray(inputs, float_dtype(state.params))
        noise = key if stochastic else None
        (loss, (acc, rate)), grads = gradient(state.params, spec, inputs, labels, readout, noise)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return SurrogateState(params, opt_state), SurrogateInfo(loss, acc, rate)

    def batch_check(state, batch):
        _check_batch(spec, batch)

    return Trainer(init, checked(step, batch_check, uses_key=stochastic))


def _check_batch(spec: lif.LIFNetwork, batch) -> tuple:
    """Return ``batch`` after checking that it is ``(inputs (B, T, M), labels (B,))`` with
    finite inputs of the network's width M and integer labels in ``0..C−1``.

    Raises:
        TypeError: not a pair, non-real inputs or non-integer labels.
        ValueError: other shapes, an empty batch, non-finite inputs, labels out of range.
    """
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        length = f" of length {len(batch)}" if hasattr(batch, "__len__") else ""
        raise TypeError(
            f"batch must be a pair (inputs (B, T, M), labels (B,)), got {type(batch).__name__}"
            + length
        )
    inputs, labels = batch
    inputs = _check_inputs(spec, inputs)
    if inputs.ndim != 3:
        raise ValueError(f"inputs must have shape (B, T, {spec.n_inputs}), got {inputs.shape}")
    labels = check_labels(labels, inputs.shape[:1], spec.sizes[-1])
    return inputs, labels


@functools.partial(jax.jit, static_argnames=("spec", "readout"))
def _predict(spec, params, inputs, readout, key):
    record = lif._run(spec, params, inputs, key, None)
    return jnp.argmax(_scores(_logits(record, readout), readout), axis=-1)


def predict(spec: lif.LIFNetwork, params, inputs, *, readout: str, key=None) -> jax.Array:
    """The predicted classes ``argmax_c s_c``, with ``s = o`` the read-out's logits, or for
    ``"per_step"`` ``s_c = Σ_t log softmax(o_t)_c`` (the class of least loss ℓ).

    Args:
        spec: the network. params: a tuple of :class:`probsnn.lif.LayerParams`.
        inputs: ``(..., T, M)`` input spikes or values.
        readout: one of :data:`READOUTS`, fitting ``spec.output``.
        key: a PRNG key for the escape noise, required at T > 0 (unused at T = 0).

    Returns:
        ``(...)`` int32 classes.

    Raises:
        ValueError, TypeError: as :func:`classification_loss`.
    """
    readout, params, inputs, key = _checked_call(spec, params, inputs, readout, key)
    flat, lead = _flat(spec, params, inputs)
    return _predict(spec, params, flat, readout, key).astype(jnp.int32).reshape(lead)


def accuracy(spec: lif.LIFNetwork, params, inputs, labels, *, readout: str, key=None) -> float:
    """The fraction of ``labels (...)`` that :func:`predict` gets right on ``inputs
    (..., T, M)``.

    Raises:
        ValueError, TypeError: as :func:`classification_loss`.
    """
    inputs = _check_inputs(spec, inputs)
    labels = check_labels(labels, inputs.shape[:-2], spec.sizes[-1])
    predicted = predict(spec, params, inputs, readout=readout, key=key)
    return float(jnp.mean(predicted == jnp.asarray(labels)))


__all__ = [
    "READOUTS",
    "SurrogateInfo",
    "SurrogateState",
    "accuracy",
    "check_readout",
    "classification_loss",
    "predict",
    "readout_logits",
    "surrogate_trainer",
]
