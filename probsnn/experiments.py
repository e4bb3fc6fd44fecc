"""Experiments: complete simulated studies built on the library's rules (the face layer).

:func:`song_experiment` — one leaky integrate-and-fire neuron learning its excitatory inputs by a
plasticity rule of :mod:`probsnn.inference.plasticity` (Song, Miller & Abbott 2000): synaptic
competition (a bimodal weight distribution under additive STDP) and output-rate regulation.

This module imports :mod:`probsnn.inference`; ``import probsnn`` does not load it (import it as
``from probsnn import experiments``). Time arguments carry their unit in their name
(``dt_ms``, ``duration_s``), as in the STDP layer (docs/learning.md).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
from probsnn.encoding import poisson_spikes
from probsnn.inference.plasticity.stdp import STDPSignals


class SongResult(NamedTuple):
    """:func:`song_experiment` result: final weights ``(n_inputs,)``, the output spike count per
    second of simulated time ``(duration_s,)`` (a rate in Hz), and the mean output rate over the
    last quarter of the run."""

    w: jax.Array
    rate_history: jax.Array
    output_rate_hz: jax.Array


def song_experiment(
    key,
    rule: optax.GradientTransformation,
    *,
    w_max: float = 0.015,
    n_inputs: int = 1000,
    input_rate_hz=10.0,
    duration_s: int = 100,
    dt_ms: float = 1.0,
    n_inhibitory: int = 200,
    inhibitory_rate_hz: float = 10.0,
    g_inhibitory: float = 0.05,
) -> SongResult:
    """One leaky integrate-and-fire neuron driven by Poisson inputs through plastic excitatory
    synapses (Song, Miller & Abbott 2000, Nat. Neurosci. 3:919).

    τ_m dV/dt = V_rest − V + g_ex (E_ex − V) + g_in (E_in − V), with τ_m = 20 ms, V_rest = −70 mV,
    threshold −54 mV, reset −60 mV, E_ex = 0 mV, E_in = −70 mV; the conductances (in units of the
    leak) decay with τ = 5 ms and jump by w_j at a spike of excitatory input j and by
    ``g_inhibitory`` at an inhibitory one. Inputs are Poisson (Bernoulli(1 − e^{−λΔ}) per bin,
    :func:`probsnn.encoding.poisson_spikes`), drawn at most 100 bins at a time inside an outer
    ``lax.scan``; with one concrete rate for all inputs, a chunk's bins are drawn as one train
    of geometric gaps (a random number per spike, not per bin: at 10 Hz and 1 ms bins this
    was the run's largest cost); ``rule`` (e.g.
    :func:`probsnn.inference.plasticity.stdp.pair_stdp` with bounds [0, w_max]) updates the
    weights after every bin by its terminal deltas, w ← w + Δw. The
    initial weights are uniform on [0, w_max]. Forward-Euler integration.

    Args:
        key: PRNG key (inputs and initial weights).
        rule: a plasticity rule (terminal weight deltas, docs/learning.md) reading
            :class:`~probsnn.inference.plasticity.stdp.STDPSignals`; its params are the weights
            ``(n_inputs, 1)``.
        w_max: the largest excitatory conductance jump g_max (leak units), for the initial weights.
        n_inputs, input_rate_hz: the plastic excitatory inputs (the rate may be a traced scalar,
            e.g. under vmap).
        duration_s: simulated seconds (an integer). dt_ms: the bin width in ms (divides 1000).
        n_inhibitory, inhibitory_rate_hz, g_inhibitory: the fixed inhibitory inputs.

    Returns:
        :class:`SongResult`. Vmap over ``key`` and/or ``input_rate_hz`` for batched trials.

    Raises:
        ValueError/TypeError: naming the argument for non-positive sizes, w_max, dt_ms, or a dt_ms
            that does not divide 1000 ms; negative or non-finite rates or g_inhibitory; a key
            that is not a PRNG key; a rule that is not an optax GradientTransformation.
    """
    key = _checks.prng_key(key, "key")
    if not (callable(getattr(rule, "init", None)) and callable(getattr(rule, "update", None))):
        raise TypeError(
            "rule must be an optax.GradientTransformation (a plasticity rule such as "
            f"pair_stdp(...)), got {type(rule).__name__}"
        )
    if _checks.is_concrete(input_rate_hz):
        rate = _checks.real_array(input_rate_hz, "input_rate_hz", min_ndim=0)
        if np.any(np.asarray(rate) < 0):
            raise ValueError(f"input_rate_hz must be >= 0, got {input_rate_hz!r}")
    inhibitory_rate_hz = _checks.nonnegative_float(inhibitory_rate_hz, "inhibitory_rate_hz")
    g_inhibitory = _checks.nonnegative_float(g_inhibitory, "g_inhibitory")
    w_max = _checks.positive_float(w_max, "w_max")
    n_inputs = _checks.positive_int(n_inputs, "n_inputs")
    n_inhibitory = _checks.positive_int(n_inhibitory, "n_inhibitory", minimum=0)
    duration_s = _checks.positive_int(duration_s, "duration_s")
    dt_ms = _checks.positive_float(dt_ms, "dt_ms")
    steps_per_s = round(1000.0 / dt_ms)
    if abs(steps_per_s * dt_ms - 1000.0) > 1e-9:
        raise ValueError(f"dt_ms must divide 1000 ms evenly, got {dt_ms}")
    k_w, k_run = jax.random.split(key)
    w0 = jax.random.uniform(k_w, (n_inputs, 1), maxval=w_max)
    dt_s = dt_ms * 1e-3
    leak, syn = dt_ms / 20.0, float(np.exp(-dt_ms / 5.0))
    chunk_steps = max(d for d in range(1, min(steps_per_s, 100) + 1) if steps_per_s % d == 0)

    def step(carry, x_t):
        w, state, v, g_ex, g_in = carry
        pre, n_in = x_t
        g_ex = g_ex * syn + jnp.sum(pre * w[:, 0])
        g_in = g_in * syn + g_inhibitory * n_in
        v = v + leak * (-70.0 - v + g_ex * (0.0 - v) + g_in * (-70.0 - v))
        spike = v >= -54.0
        v = jnp.where(spike, -60.0, v)
        delta, state = rule.update(STDPSignals(pre, spike.astype(w.dtype)[None]), state, w)
        return (w + delta, state, v, g_ex, g_in), spike

    def chunk(carry, key_chunk):
        # inputs for ≤ 100 bins drawn at once (vectorized RNG, small enough to stay in cache
        # when trials are batched), then a scan over those bins
        k_ex, k_in = jax.random.split(key_chunk)
        pre = poisson_spikes(k_ex, input_rate_hz, dt_s, (chunk_steps, n_inputs)).astype(w0.dtype)
        inhibitory = poisson_spikes(k_in, inhibitory_rate_hz, dt_s, (chunk_steps, n_inhibitory))
        n_in = jnp.sum(inhibitory, axis=1)
        carry, spikes = jax.lax.scan(step, carry, (pre, n_in.astype(w0.dtype)))
        return carry, jnp.sum(spikes)

    def second(carry, s):
        keys = jax.random.split(jax.random.fold_in(k_run, s), steps_per_s // chunk_steps)
        carry, counts = jax.lax.scan(chunk, carry, keys)
        return carry, jnp.sum(counts)

    init = (w0, rule.init(w0), jnp.asarray(-70.0), jnp.asarray(0.0), jnp.asarray(0.0))
    (w, *_), counts = jax.lax.scan(second, init, jnp.arange(duration_s))
    rate = counts.astype(w.dtype)
    tail = max(duration_s // 4, 1)
    return SongResult(w[:, 0], rate, jnp.mean(rate[-tail:]))
