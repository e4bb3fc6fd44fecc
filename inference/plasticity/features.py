"""Unsupervised feature learning by STDP in a soft winner-take-all layer.

K feature neurons read F input spike trains through plastic weights w ``(F, K)``. In bin t, with
input traces x_t = d x_{t−1} + s^{in}_{t−1} (d = e^{−Δ/τ}, strictly causal),

    u_{k,t} = Σ_j w_{jk} x_{j,t} + b_k,     the layer fires with probability ρ, and then
    neuron k_t ~ softmax(u_t / T)                        (a stochastic WTA circuit),

so at most one feature neuron spikes per bin (Nessler, Pfeiffer, Buesing & Maass 2013, PLoS
Comput. Biol. 9:e1003037). An STDP rule of :mod:`probsnn.inference.plasticity.stdp` (e.g. pair STDP
with
hard bounds) updates w after every bin from the input and feature spikes. After each sample the
weights of every neuron are rescaled to a fixed total, w_{·k} ← W w_{·k} / Σ_j w_{jk} (synaptic
scaling), and the biases follow a homeostatic rule b_k ← b_k + η (ρT/K − n_k) with n_k the
neuron's spike count, so that every neuron wins its share (Diehl & Cook 2015, Front. Comput.
Neurosci. 9:99). Samples are presented one after the other (``lax.scan``); the learnt features
of a sample are the K spike counts of a presentation without plasticity.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
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
    if not 0 < layer.layer_rate <= 1:
        raise ValueError(f"layer.layer_rate must lie in (0, 1], got {layer.layer_rate}")
    if not np.isfinite(layer.homeostasis) or layer.homeostasis < 0:
        raise ValueError(f"layer.homeostasis must be finite and >= 0, got {layer.homeostasis}")
    return layer


def init_feature_params(key, n_inputs: int, n_features: int, layer: FeatureLayer):
    """Uniform random weights scaled to the layer's total per neuron, zero biases."""
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


@partial(jax.jit, static_argnames=("layer", "rule"))
def _epoch(layer, rule, params, key, spikes):
    target = layer.layer_rate * spikes.shape[1] / params.bias.shape[0]

    def sample(params, inputs):
        spikes_n, key_n = inputs
        w, post = _present(layer, rule, params, key_n, spikes_n)
        counts = jnp.sum(post, axis=0)
        bias = params.bias + layer.homeostasis * (target - counts)
        return FeatureParams(_scaled(w, layer.weight_total), bias), None

    keys = jax.random.split(key, spikes.shape[0])
    return jax.lax.scan(sample, params, (spikes, keys))[0]


def _check_spikes(spikes, params):
    spikes = _checks.spike_array(spikes, "spikes", params.w.shape[0], min_ndim=3)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must have shape (n, T, F), got {tuple(spikes.shape)}")
    return jnp.asarray(spikes, params.w.dtype)


def fit_stdp_features(
    layer: FeatureLayer, rule: optax.GradientTransformation, params: FeatureParams, key, spikes
) -> FeatureParams:
    """One pass over the samples ``(n, T, F)`` in order, with plasticity (module equations).

    Args:
        layer: the layer's settings. rule: an STDP rule of
        :mod:`probsnn.inference.plasticity.stdp`; its
            params are the weights ``(F, K)``. params: the starting :class:`FeatureParams`.
        key: PRNG key of the layer's spikes. spikes: binary input trains ``(n, T, F)``.

    Returns:
        The :class:`FeatureParams` after the pass (shuffle the samples between passes).

    Raises:
        ValueError/TypeError: bad settings, or spikes that are not binary ``(n, T, F)``.
    """
    check_layer(layer)
    return _epoch(layer, rule, params, key, _check_spikes(spikes, params))


@partial(jax.jit, static_argnames=("layer",))
def _features(layer, params, key, spikes):
    keys = jax.random.split(key, spikes.shape[0])

    def one(spikes_n, key_n):
        return _present(layer, None, params, key_n, spikes_n)[1]

    return jax.vmap(one)(spikes, keys).astype(jnp.uint8)


def feature_spikes(layer: FeatureLayer, params: FeatureParams, key, spikes):
    """The layer's spikes ``(n, T, K)`` uint8 for input trains ``(n, T, F)``, no plasticity.

    Raises:
        ValueError/TypeError: bad settings, or spikes that are not binary ``(n, T, F)``.
    """
    check_layer(layer)
    return _features(layer, params, key, _check_spikes(spikes, params))
