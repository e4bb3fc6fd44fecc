"""Unsupervised feature learning by STDP in a soft winner-take-all layer.

K feature neurons read F input spike trains through plastic weights w ``(F, K)``. In bin t, with
input traces x_t = d x_{t−1} + s^{in}_{t−1} (d = e^{−Δ/τ}, strictly causal),

    u_{k,t} = Σ_j w_{jk} x_{j,t} + b_k,     the layer fires with probability ρ, and then
    neuron k_t ~ softmax(u_t / T)                        (a stochastic WTA circuit),

so at most one feature neuron spikes per bin (Nessler, Pfeiffer, Buesing & Maass 2013, PLoS
Comput. Biol. 9:e1003037). A plasticity rule of :mod:`probsnn.inference.plasticity.stdp` (e.g.
pair STDP with hard bounds) updates w after every bin from the input and feature spikes by its
terminal deltas, w ← w + Δw (docs/learning.md). After each sample the weights of every neuron
are rescaled to a fixed total, w_{·k} ← W w_{·k} / Σ_j w_{jk} (synaptic scaling), and the biases
follow a homeostatic rule b_k ← b_k + η (ρT/K − n_k) with n_k the neuron's spike count, so that
every neuron wins its share (Diehl & Cook 2015, Front. Comput. Neurosci. 9:99). Samples are
presented one after the other (``lax.scan``); the learnt features of a sample are the K spike
counts of a presentation without plasticity.

Training follows the one trainer protocol (docs/learning.md): :func:`stdp_features_trainer`
with :func:`probsnn.inference.fit` (a step presents its batch's samples in order; ``fit``
shuffles the samples into batches each epoch). Time is in ms here (``trace_ms``, ``dt_ms``),
like the rest of the STDP layer.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
from probsnn.inference._steps import checked
from probsnn.inference._training import Trainer
from probsnn.inference.plasticity.stdp import STDPSignals, decay_factor


class FeatureLayer(NamedTuple):
    """Settings of the soft-WTA layer.

    Attributes:
        temperature: T > 0 of the softmax (lower: harder competition).
        trace_ms: τ of the input traces that drive the potentials, in ms.
        dt_ms: the bin width in ms.
        layer_rate: ρ ∈ (0, 1], the probability that the layer fires in a bin.
        weight_total: W > 0, each neuron's summed input weight after scaling.
        homeostasis: η >= 0 of the bias rule.
    """

    temperature: float = 0.1
    trace_ms: float = 10.0
    dt_ms: float = 5.0
    layer_rate: float = 1.0
    weight_total: float = 8.0
    homeostasis: float = 0.02


class FeatureParams(NamedTuple):
    """Weights w ``(F, K)`` (input j -> feature k) and biases b ``(K,)``."""

    w: jax.Array
    bias: jax.Array


def check_layer(layer: FeatureLayer) -> FeatureLayer:
    """Validate a :class:`FeatureLayer`; raise naming the bad field."""
    if not isinstance(layer, FeatureLayer):
        raise TypeError(f"layer must be a FeatureLayer, got {type(layer).__name__}")
    for name in ("temperature", "trace_ms", "dt_ms", "weight_total"):
        _checks.positive_float(getattr(layer, name), f"layer.{name}")
    if not 0 < _checks.finite_float(layer.layer_rate, "layer.layer_rate") <= 1:
        raise ValueError(f"layer.layer_rate must lie in (0, 1], got {layer.layer_rate}")
    _checks.nonnegative_float(layer.homeostasis, "layer.homeostasis")
    return layer


def init_feature_params(key, n_inputs: int, n_features: int, layer: FeatureLayer):
    """Uniform random weights scaled to the layer's total per neuron, zero biases.

    Raises:
        TypeError, ValueError: a key that is not a PRNG key, sizes < 1, bad layer settings.
    """
    key = _checks.prng_key(key, "key")
    n_inputs = _checks.positive_int(n_inputs, "n_inputs")
    n_features = _checks.positive_int(n_features, "n_features")
    w = jax.random.uniform(key, (n_inputs, n_features), minval=0.0, maxval=1.0)
    return FeatureParams(_scaled(w, check_layer(layer).weight_total), jnp.zeros(n_features))


def _scaled(w, total):
    return w * (total / jnp.maximum(jnp.sum(w, axis=0, keepdims=True), 1e-12))


def _present(layer, rule, params, key, spikes):
    """One sample ``(T, F)``: feature spikes ``(T, K)`` and the weights after plasticity
    (``rule=None``: no plasticity)."""
    decay = decay_factor(layer.trace_ms, layer.dt_ms, "layer.trace_ms")
    n_features = params.bias.shape[0]
    keys = jax.random.split(key, spikes.shape[0])

    def step(carry, inputs):
        w, rule_state, trace = carry
        spikes_t, key_t = inputs
        key_fire, key_winner = jax.random.split(key_t)
        u = (trace @ w + params.bias) / layer.temperature
        fires = jax.random.bernoulli(key_fire, layer.layer_rate)
        post = jax.nn.one_hot(jax.random.categorical(key_winner, u), n_features) * fires
        if rule is not None:
            delta, rule_state = rule.update(STDPSignals(spikes_t, post), rule_state, w)
            w = w + delta
        return (w, rule_state, trace * decay + spikes_t), post

    rule_state = () if rule is None else rule.init(params.w)
    start = (params.w, rule_state, jnp.zeros(spikes.shape[-1], params.w.dtype))
    (w, _, _), post = jax.lax.scan(step, start, (spikes, keys))
    return w, post


def _reconstruction_error(w, spikes, post):
    """1 − cos(c, w n) for one sample: c ``(F,)`` its input spike counts, n ``(K,)`` the layer's
    spike counts; returns (error, 1) or (0, 0) when c or w n is zero."""
    counts = jnp.sum(spikes, axis=0)
    reconstruction = w @ jnp.sum(post, axis=0)
    squares = (counts @ counts) * (reconstruction @ reconstruction)
    counted = squares > 0
    cosine = counts @ reconstruction * jax.lax.rsqrt(jnp.where(counted, squares, 1))
    return jnp.where(counted, 1 - cosine, 0), counted


def _check_spikes(spikes, params):
    spikes = _checks.spike_array(spikes, "spikes", params.w.shape[0], min_ndim=3)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must have shape (n, T, F), got {tuple(spikes.shape)}")
    _checks.nonempty(spikes, "spikes")
    return jnp.asarray(spikes, params.w.dtype)


class FeatureState(NamedTuple):
    """State of :func:`stdp_features_trainer`: the layer's :class:`FeatureParams` (the rule's
    traces restart with every sample, so nothing else persists between steps)."""

    params: FeatureParams


class FeatureInfo(NamedTuple):
    """Info of one step of :func:`stdp_features_trainer`.

    Attributes:
        loss: the batch's mean reconstruction error (see :func:`stdp_features_trainer`), a
            scalar.
    """

    loss: jax.Array


def stdp_features_trainer(layer: FeatureLayer, rule: optax.GradientTransformation) -> Trainer:
    """STDP feature learning in the soft-WTA layer (module equations) as a trainer
    (docs/learning.md), for :func:`probsnn.inference.fit`.

    ``step(key, state, batch)`` presents the batch's samples ``(B, T, F)`` one after the other
    with plasticity: ``rule`` changes w after every bin, and after every sample the weights are
    rescaled and the biases move homeostatically. ``key`` draws the layer's spikes (split per
    sample). ``fit(trainer, params, spikes, key=key, epochs=E, batch_size=B)`` shuffles the
    samples into batches each epoch; ``batch_size=None`` presents all of them in their order.

    STDP descends no loss. ``Info.loss`` is a monitor that falls as features form, the mean
    cosine **reconstruction error** of the inputs by the features they activate,

        Q = mean_n [1 − c_n · (W m_n) / (‖c_n‖ ‖W m_n‖)],

    over the batch's samples n, with c_n ``(F,)`` the sample's input spike counts, m_n ``(K,)``
    the layer's spike counts during its presentation and W ``(F, K)`` the weights before it
    (a prequential error: the model is scored on a sample before learning from it; samples
    without input or layer spikes are left out). W m_n is the input pattern that the chosen
    features' weights spell out. STDP in a WTA circuit moves each winner's weights towards the
    input patterns that make it win, so that the weights become prototypes of the inputs
    (Nessler et al. 2013; a spherical k-means reading of the layer), and Q falls as they form:
    in [0, 1] for non-negative inputs, 0 when the activated features reproduce the direction of
    every sample's input counts.

    Args:
        layer: the layer's settings, a :class:`FeatureLayer`.
        rule: a plasticity rule of :mod:`probsnn.inference.plasticity.stdp` or
            :mod:`~probsnn.inference.plasticity.rule_engine` (terminal deltas); its params are
            the weights ``(F, K)``.

    Returns:
        ``Trainer(init, step)``: ``init(params: FeatureParams) -> FeatureState``;
        ``step(key, FeatureState, spikes (B, T, F)) -> (FeatureState, FeatureInfo)``, jitted
        (compiles once per batch shape).

    Raises:
        ValueError/TypeError: bad layer settings or a rule without ``init``/``update``;
            ``init`` for params that are not :class:`FeatureParams` of matching shapes or not
            finite; ``step`` for a key that is not a PRNG key, spikes that are not ``(B, T, F)``
            or empty (their values are not checked under jit: pass binary trains).
    """
    check_layer(layer)
    if not (callable(getattr(rule, "init", None)) and callable(getattr(rule, "update", None))):
        raise TypeError(f"rule must be a plasticity rule with init/update, got {rule!r}")

    def init(params):
        return FeatureState(_check_params(params))

    @jax.jit
    def step(key, state, batch):
        params = state.params
        spikes = _check_spikes(batch, params)
        target = layer.layer_rate * spikes.shape[1] / params.bias.shape[0]

        def sample(params, inputs):
            spikes_n, key_n = inputs
            w, post = _present(layer, rule, params, key_n, spikes_n)
            error = _reconstruction_error(params.w, spikes_n, post)
            bias = params.bias + layer.homeostasis * (target - jnp.sum(post, axis=0))
            return FeatureParams(_scaled(w, layer.weight_total), bias), error

        keys = jax.random.split(key, spikes.shape[0])
        params, (errors, counts) = jax.lax.scan(sample, params, (spikes, keys))
        loss = jnp.sum(errors) / jnp.maximum(jnp.sum(counts), 1)
        return FeatureState(params), FeatureInfo(loss)

    return Trainer(init, checked(step, lambda state, batch: _check_spikes(batch, state.params)))


def _check_params(params) -> FeatureParams:
    if not isinstance(params, FeatureParams):
        raise TypeError(f"params must be FeatureParams, got {type(params).__name__}")
    w_shape, bias_shape = np.shape(params.w), np.shape(params.bias)
    if len(w_shape) != 2 or bias_shape != w_shape[1:]:
        raise ValueError(
            f"params.w must be (F, K) and params.bias (K,), got {w_shape} and {bias_shape}"
        )
    return _checks.finite_tree(params, "params")


@partial(jax.jit, static_argnames=("layer",))
def _features(layer, params, key, spikes):
    keys = jax.random.split(key, spikes.shape[0])

    def one(spikes_n, key_n):
        return _present(layer, None, params, key_n, spikes_n)[1]

    return jax.vmap(one)(spikes, keys).astype(jnp.uint8)


def feature_spikes(layer: FeatureLayer, params: FeatureParams, key, spikes):
    """The layer's spikes ``(n, T, K)`` uint8 for input trains ``(n, T, F)``, no plasticity.

    Raises:
        ValueError/TypeError: bad settings, params that are not finite :class:`FeatureParams`,
            a key that is not a PRNG key, or spikes that are not binary ``(n, T, F)``.
    """
    check_layer(layer)
    params = _check_params(params)
    key = _checks.prng_key(key, "key")
    return _features(layer, params, key, _check_spikes(spikes, params))
