"""Recursive traces and event-driven propagation: a sampling step whose cost follows the spikes.

For a network whose synapse and feedback bases are :class:`~probsnn.kernels.RecursiveBasis`
objects (modes δ^{p_m} r_m^δ mixed by B), the synaptic part of the potential is, per
postsynaptic neuron i and mode m, a filtered sum of weighted spikes:

    u_{i,t} = Σ_m y_{i,m,t} + (inputs) + γ_i,     y_{i,m} = mode m filtering D_{i,m},
    D_{i,m,t} = Σ_j W'_{j,m,i} s_{j,t},           W'_{j,m,i} = Σ_k w_{j,i,k} B_{k,m}

(feedback enters as the diagonal j = i, or as its own modes when its basis differs). Each bin
updates J states per neuron (:class:`~probsnn.kernels.RecursiveBasis` gives the recursions), and
the drive D_t is either one product of the bin's spikes with the ``(N, J·N)`` matrix W'
(``"dense"``) or the sum of the rows of W' of the neurons that spiked (``"event"``): work
∝ spikes × J·N, as in event-driven simulators (Brette et al. 2007, J Comput Neurosci 23:349).
The event path loops over the bin's spikes; a bin with more than ``capacity`` spikes per trial
on average takes the dense product instead. Both give the same drive up to float round-off
(the order of the sums differs), hence the same spikes for the same key except where a
uniform draw falls within round-off of σ(u).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn.glm import _flat_product, _ring_traces, emit_spikes
from probsnn.network import Network, Params

#: Propagation methods of the recursive sampler.
PROPAGATIONS = ("dense", "event")


def default_capacity(n_neurons: int, n_trials: int = 1) -> int:
    """Spikes per trial and bin (on average over the batch) up to which the event path adds
    rows rather than taking the dense product: N / (4 √B), at least 8.

    The event path costs about the same per spike whatever the batch, while the dense product
    reads W' once per bin for all B trials, so its cost per trial falls with B. Measured on a
    2-core CPU (N = 1,000, J = 3; benchmarks/sampler_activity.py) the two cross near 30 % of N
    spiking for one trial and near 6 % for 16 trials, which N / (4 √B) follows.
    """
    return max(8, math.ceil(n_neurons / (4 * math.sqrt(n_trials))))


class ModeWeights(NamedTuple):
    """Parameters arranged once for :func:`mode_step` (static layout in :class:`ModeLayout`).

    Attributes:
        w: ``(N, J_syn·N)`` W' with rows ordered pre j and columns (mode m, post i).
        v: ``(J_fb, N)`` feedback weights per feedback mode (``(0, N)`` when the feedback shares
            the synapse basis and is folded into ``w``'s diagonal).
        decays: ``(J,)`` r_m of the synapse modes then the feedback modes.
        input_basis: ``(K_in, L_in)`` or None. c: ``(K_in·M, N)`` or None. bias: ``(N,)``.
    """

    w: jax.Array
    v: jax.Array
    decays: jax.Array
    input_basis: jax.Array | None
    c: jax.Array | None
    bias: jax.Array


class ModeState(NamedTuple):
    """Recursive trace states of a batch ``B`` of trials.

    Attributes:
        e: ``(*B, J, N)`` Σ_{δ>=1} r_m^δ D_{m,t−δ} for every mode m (synapse modes first).
        f: ``(*B, J_1, N)`` Σ_{δ>=1} δ r_m^δ D_{m,t−δ} for the order-1 modes.
        inputs: ``(L_in, *B, M)`` ring buffer of the exogenous inputs (``L_in = 0`` without).
        t: int32 scalar, the index of the next bin.
    """

    e: jax.Array
    f: jax.Array
    inputs: jax.Array
    t: jax.Array


class ModeLayout(NamedTuple):
    """Static (NumPy) description of the modes: which are order 1 and which the potential reads."""

    n_synapse_modes: int
    order_one: np.ndarray  # indices of the order-1 modes among all J
    read_e: np.ndarray  # indices of the order-0 modes (their e enters u)


def mode_layout(spec: Network) -> ModeLayout:
    """The static mode layout of a recursive ``spec`` (synapse modes, then feedback modes when
    the feedback basis is not the synapse basis)."""
    recursions = [spec.synapse_recursion]
    if not spec.shares_basis:
        recursions.append(spec.feedback_recursion)
    orders = np.concatenate([r.orders for r in recursions])
    return ModeLayout(
        n_synapse_modes=spec.synapse_recursion.n_modes,
        order_one=np.flatnonzero(orders == 1),
        read_e=np.flatnonzero(orders == 0),
    )


def mode_weights(spec: Network, params: Params, dtype=jnp.float32) -> ModeWeights:
    """Arrange ``params`` for :func:`mode_step` (once, outside the time loop).

    Raises:
        ValueError: a network whose synapse and feedback bases are not both recursive.
    """
    if not spec.recursive:
        raise ValueError(
            "recursive propagation needs RecursiveBasis synapse and feedback bases "
            "(probsnn.kernels.recursive_exponential and friends); this network has array bases"
        )
    n = spec.n_neurons
    syn_mixing = jnp.asarray(spec.synapse_recursion.mixing, dtype)  # (K, J_syn)
    w = params.w.astype(dtype) * jnp.asarray(spec.connectivity, dtype)[:, :, None]
    decays = [spec.synapse_recursion.decays]
    if spec.shares_basis:
        w = w.at[jnp.arange(n), jnp.arange(n)].add(params.v.astype(dtype))
        v = jnp.zeros((0, n), dtype)
    else:
        v = (params.v.astype(dtype) @ jnp.asarray(spec.feedback_recursion.mixing, dtype)).T
        decays.append(spec.feedback_recursion.decays)
    modes = jnp.einsum("jik,km->jmi", w, syn_mixing).reshape(n, -1)  # (N_pre, J_syn·N)
    c = None
    if spec.n_inputs:
        c = jnp.transpose(params.c.astype(dtype), (2, 0, 1)).reshape(-1, n)
    return ModeWeights(
        w=modes,
        v=v,
        decays=jnp.asarray(np.concatenate(decays), dtype),
        input_basis=None if spec.input_basis is None else jnp.asarray(spec.input_basis, dtype),
        c=c,
        bias=params.bias.astype(dtype),
    )


def init_mode_state(spec: Network, batch_shape: tuple[int, ...], dtype=jnp.float32):
    """Silence: zero trace states and inputs for a batch of trials ``batch_shape``."""
    layout = mode_layout(spec)
    n_modes = layout.order_one.size + layout.read_e.size
    return ModeState(
        e=jnp.zeros((*batch_shape, n_modes, spec.n_neurons), dtype),
        f=jnp.zeros((*batch_shape, layout.order_one.size, spec.n_neurons), dtype),
        inputs=jnp.zeros((spec.n_input_lags, *batch_shape, spec.n_inputs), dtype),
        t=jnp.zeros((), jnp.int32),
    )


def mode_potential(layout: ModeLayout, weights: ModeWeights, state: ModeState):
    """u_t ``(*B, N)`` from the trace states: order-0 modes read e, order-1 modes read f."""
    u = jnp.sum(state.e[..., layout.read_e, :], axis=-2) + weights.bias
    if layout.order_one.size:
        u = u + jnp.sum(state.f, axis=-2)
    if weights.c is not None:
        x_in = _ring_traces(state.inputs, weights.input_basis, state.t)  # (*B, K_in, M)
        u = u + _flat_product(x_in, weights.c)
    return u


def drive(weights: ModeWeights, spikes_t, propagation: str, capacity: int):
    """D_t ``(*B, J, N)``: the bin's spikes ``(*B, N)`` through W' (and the feedback modes).

    ``"event"`` adds the row of W' of each spike in turn (a loop whose length is the bin's
    spike count) and takes the dense product instead when the bin has more than ``capacity``
    spikes per trial on average.
    """
    n = spikes_t.shape[-1]
    spikes = spikes_t.astype(weights.w.dtype)
    flat = spikes_t.reshape(-1, n)

    def dense(_):
        return spikes.reshape(flat.shape) @ weights.w

    def event(count):
        # the k-th spike (k < count, row-major over trials then neurons) sits where the running
        # count first reaches k + 1: a vectorised binary search, cheaper than a compaction
        running = jnp.cumsum(flat.ravel(), dtype=jnp.int32)
        ranks = jnp.arange(1, capacity * flat.shape[0] + 1, dtype=jnp.int32)
        trials, pres = jnp.divmod(jnp.searchsorted(running, ranks, side="left"), n)
        width = weights.w.shape[1]

        def add_row(i, total):  # total: (B·J·N,), trial-major, updated in place
            offset = trials[i] * width
            row = jax.lax.dynamic_index_in_dim(weights.w, pres[i], keepdims=False)
            updated = jax.lax.dynamic_slice(total, (offset,), (width,)) + row
            return jax.lax.dynamic_update_slice(total, updated, (offset,))

        start = jnp.zeros(flat.shape[0] * width, weights.w.dtype)
        return jax.lax.fori_loop(0, count, add_row, start).reshape(flat.shape[0], width)

    if propagation == "dense":
        synaptic = dense(None)
    else:
        count = jnp.sum(flat, dtype=jnp.int32)
        synaptic = jax.lax.cond(count > capacity * flat.shape[0], dense, event, count)
    synaptic = synaptic.reshape(*spikes.shape[:-1], -1, n)
    if weights.v.shape[0] == 0:
        return synaptic
    feedback = spikes[..., None, :] * weights.v
    return jnp.concatenate([synaptic, feedback], axis=-2)


def mode_step(
    layout: ModeLayout,
    weights: ModeWeights,
    state: ModeState,
    key,
    input_t=None,
    clamp_t=None,
    visible=None,
    propagation: str = "event",
    capacity: int = 64,
):
    """One sampling bin on recursive traces: u_t, s_t ~ Bernoulli(σ(u_t)) (clamped where
    observed, as :func:`probsnn.glm.emit_spikes`), then e ← r(e + D_t), f ← r(f + e + D_t).

    Returns ``(new_state, (spikes_t, u_t))`` with spikes_t ``(*B, N)`` uint8, u_t ``(*B, N)``.
    """
    u = mode_potential(layout, weights, state)
    spikes_t = emit_spikes(key, u, clamp_t, visible)
    d = drive(weights, spikes_t, propagation, capacity)
    decays = weights.decays[:, None]
    e = decays * (state.e + d)
    f = state.f
    if layout.order_one.size:
        one = layout.order_one
        f = decays[one] * (state.f + state.e[..., one, :] + d[..., one, :])
    inputs = state.inputs
    if input_t is not None and inputs.shape[0] > 0:
        inputs = inputs.at[state.t % inputs.shape[0]].set(input_t.astype(inputs.dtype))
    return ModeState(e=e, f=f, inputs=inputs, t=state.t + 1), (spikes_t, u)
