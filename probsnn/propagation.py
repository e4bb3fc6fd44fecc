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
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _native
from probsnn.glm import _flat_product, _ring_traces, emit_spikes
from probsnn.network import Network, Params
from probsnn.sparse import SparseNetwork

#: Propagation methods of the recursive sampler.
PROPAGATIONS = ("dense", "event")


#: Spikes per scatter of a sparse network's event-driven drive (all trials together).
SPARSE_CAPACITY = 256


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
        w: ``(N, J_syn·N)`` W' with rows ordered pre j and columns (mode m, post i); for a
            :class:`~probsnn.sparse.SparseNetwork` ``(N, F, J_syn)`` per synapse.
        v: ``(J_fb, N)`` feedback weights per feedback mode (``(0, N)`` when the feedback shares
            the synapse basis and is folded into ``w``'s diagonal).
        decays: ``(J,)`` r_m of the synapse modes then the feedback modes.
        input_basis: ``(K_in, L_in)`` or None. c: ``(K_in·M, N)`` or None. bias: ``(N,)``.
        targets: ``(N, F)`` int32 synapse targets (padded with N) of a sparse network, else None.
    """

    w: jax.Array
    v: jax.Array
    decays: jax.Array
    input_basis: jax.Array | None
    c: jax.Array | None
    bias: jax.Array
    targets: jax.Array | None = None


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
    ascending_targets: bool = False  # a sparse network whose every target row ascends


def mode_layout(spec: Network) -> ModeLayout:
    """The static mode layout of a recursive ``spec`` (synapse modes, then feedback modes when
    the feedback basis is not the synapse basis)."""
    recursions = [spec.synapse_recursion]
    if not _folds_feedback(spec):
        recursions.append(spec.feedback_recursion)
    orders = np.concatenate([r.orders for r in recursions])
    return ModeLayout(
        n_synapse_modes=spec.synapse_recursion.n_modes,
        order_one=np.flatnonzero(orders == 1),
        read_e=np.flatnonzero(orders == 0),
        ascending_targets=isinstance(spec, SparseNetwork) and spec.synapses.ascending,
    )


def mode_weights(spec: Network, params: Params, dtype=jnp.float32, targets=None) -> ModeWeights:
    """Arrange ``params`` for :func:`mode_step` (once, outside the time loop).

    A sparse network's target table is read from ``targets`` (an ``(N, F)`` int32 array passed
    into the compiled function, so it is not baked into the program as a constant) or, when
    None, from the spec.

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
    sparse = isinstance(spec, SparseNetwork)
    # a sparse network's padding slots are skipped by the scatter, so w needs no mask there
    w = (params if sparse else spec.masked(params)).w.astype(dtype)
    decays = [spec.synapse_recursion.decays]
    if _folds_feedback(spec):
        w = w.at[jnp.arange(n), jnp.arange(n)].add(params.v.astype(dtype))
        v = jnp.zeros((0, n), dtype)
    else:
        v = jnp.matmul(
            params.v.astype(dtype),
            jnp.asarray(spec.feedback_recursion.mixing, dtype),
            precision="highest",
        ).T
        decays.append(spec.feedback_recursion.decays)
    if sparse:
        modes = _mix(w, spec.synapse_recursion.mixing)  # (N_pre, F, J_syn)
        targets = jnp.asarray(spec.synapses.targets) if targets is None else targets
    else:
        targets = None
        modes = jnp.einsum("jik,km->jmi", w, syn_mixing, precision="highest")
        modes = modes.reshape(n, -1)  # (N_pre, J_syn·N)
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
        targets=targets,
    )


def _running_count(flat):
    """Inclusive running count of the spikes of ``flat`` ``(B, N)`` in row-major order, int32:
    a parallel prefix scan, about 4× faster on XLA's CPU backend than ``jnp.cumsum`` here."""
    return jax.lax.associative_scan(jnp.add, flat.ravel().astype(jnp.int32))


def _mix(w, mixing: np.ndarray):
    """``w`` ``(..., K)`` times the static mixing B ``(K, J)``: the weights themselves when B
    is the identity (exponential bases), else K broadcast multiply-adds (a memory-bound pass;
    XLA's CPU dot with contraction K of 3 ran 15× slower on 10⁸ synapses)."""
    if mixing.shape[0] == mixing.shape[1] and np.array_equal(mixing, np.eye(mixing.shape[0])):
        return w
    rows = jnp.asarray(mixing, w.dtype)
    return sum(w[..., k, None] * rows[k] for k in range(mixing.shape[0]))


def _sum_modes(states, modes):
    """Σ_m states[..., m, :] over the static ``modes``, written as additions: XLA's CPU
    reduction over this short, non-minor axis ran about 15× slower (3.3 against 0.2 ms a bin
    for 3 × 100,000 states)."""
    return sum(states[..., m, :] for m in modes)


def _folds_feedback(spec) -> bool:
    """Feedback sharing the synapse basis rides on W''s diagonal (dense networks only)."""
    return spec.shares_basis and not isinstance(spec, SparseNetwork)


def init_mode_state(spec: Network, batch_shape: tuple[int, ...], dtype=jnp.float32):
    """Silence: zero trace states and inputs for a batch of trials ``batch_shape``."""
    layout = mode_layout(spec)
    n_modes = layout.order_one.size + layout.read_e.size
    return zero_modes(spec, batch_shape, n_modes, layout.order_one.size, dtype)


def zero_modes(spec: Network, batch_shape, n_modes: int, n_order_one: int, dtype):
    """A :class:`ModeState` of zeros: e ``(*B, n_modes, N)``, f ``(*B, n_order_one, N)`` and
    the input ring, at bin 0 (the sampler's postsynaptic states and
    :mod:`probsnn.history`'s presynaptic ones)."""
    return ModeState(
        e=jnp.zeros((*batch_shape, n_modes, spec.n_neurons), dtype),
        f=jnp.zeros((*batch_shape, n_order_one, spec.n_neurons), dtype),
        inputs=jnp.zeros((spec.n_input_lags, *batch_shape, spec.n_inputs), dtype),
        t=jnp.zeros((), jnp.int32),
    )


def mode_potential(layout: ModeLayout, weights: ModeWeights, state: ModeState):
    """u_t ``(*B, N)`` from the trace states: order-0 modes read e, order-1 modes read f."""
    u = _sum_modes(state.e, layout.read_e) + weights.bias
    if layout.order_one.size:
        u = u + _sum_modes(state.f, range(state.f.shape[-2]))
    if weights.c is not None:
        x_in = _ring_traces(state.inputs, weights.input_basis, state.t)  # (*B, K_in, M)
        u = u + _flat_product(x_in, weights.c)
    return u


def drive(weights: ModeWeights, spikes_t, propagation: str, capacity: int, ascending=False):
    """D_t ``(*B, J, N)``: the bin's spikes ``(*B, N)`` through W' (and the feedback modes).

    ``"event"`` adds the row of W' of each spike in turn (a loop whose length is the bin's
    spike count) and takes the dense product instead when the bin has more than ``capacity``
    spikes per trial on average. ``ascending``: a sparse network's target rows all ascend.
    """
    n = spikes_t.shape[-1]
    spikes = spikes_t.astype(weights.w.dtype)
    flat = spikes_t.reshape(-1, n)
    if weights.targets is not None:
        synaptic = _sparse_drive(weights, flat, capacity, ascending)
        synaptic = synaptic.reshape(*spikes.shape[:-1], -1, n)
        return jnp.concatenate([synaptic, spikes[..., None, :] * weights.v], axis=-2)

    def dense(_):
        return jnp.matmul(spikes.reshape(flat.shape), weights.w, precision="highest")

    def event(count):
        # the k-th spike (k < count, row-major over trials then neurons) sits where the running
        # count first reaches k + 1: a vectorised binary search, cheaper than a compaction
        running = _running_count(flat)
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


def _sparse_drive(weights: ModeWeights, flat, capacity: int, ascending: bool = False):
    """``(B, J, N)`` drive of a sparse network from the bin's spikes ``(B, N)``.

    On the CPU with float32 weights, the compiled kernel of :mod:`probsnn._native` adds each
    spike's F synapse rows in one pass; elsewhere (or without the kernel) XLA does
    (:func:`_scatter_drive`). Both add the same updates in the same order: bit-identical drives.
    ``ascending``: every row of the target table ascends (the kernel may then split a bin over
    threads by ranges of targets).
    """
    if weights.w.dtype == jnp.float32 and _native.available():
        total = _kernel_drive(flat, weights.targets, weights.w, capacity, ascending)
    else:
        total = _scatter_drive(flat, weights.targets, weights.w, capacity)
    return jnp.swapaxes(total, -1, -2)


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _kernel_drive(flat, targets, w, capacity: int, ascending: bool = False):
    """The compiled kernel in a CPU lowering, :func:`_scatter_drive` on other platforms."""
    return jax.lax.platform_dependent(
        flat,
        targets,
        w,
        cpu=partial(_native.sparse_drive, ascending=ascending),
        default=partial(_scatter_drive, capacity=capacity),
    )


@_kernel_drive.defjvp
def _kernel_drive_jvp(capacity, ascending, primals, tangents):
    """The drive is linear in w: its tangent is the drive of w's tangent (by XLA's scatter, so
    forward-mode derivatives work as they do without the kernel)."""
    flat, targets, w = primals
    tangent = _scatter_drive(flat, targets, tangents[2], capacity)
    return _kernel_drive(flat, targets, w, capacity, ascending), tangent


def _scatter_drive(flat, targets, w, capacity: int):
    """``(B, N, J)`` drive by XLA: the spikes of ``flat`` ``(B, N)`` are taken ``capacity`` at
    a time (their ranks found as in :func:`drive`), and each adds its F synapses' J mode
    weights ``w`` ``(N, F, J)`` at its ``targets`` ``(N, F)`` in one scatter; the loop runs
    ceil(spikes / capacity) times."""
    n_trials, n = flat.shape
    n_modes = w.shape[-1]
    running = _running_count(flat)
    count = running[-1]
    offsets = jnp.arange(1, capacity + 1, dtype=jnp.int32)

    def add_chunk(carry):
        start, total = carry
        ranks = start + offsets
        index = jnp.searchsorted(running, ranks, side="left")
        trials, pres = jnp.divmod(jnp.minimum(index, n_trials * n - 1), n)
        chunk_targets = targets[pres]  # (C, F)
        keep = (ranks <= count)[:, None] & (chunk_targets < n)
        rows = jnp.where(keep, trials[:, None] * n + chunk_targets, n_trials * n)  # drop
        total = total.at[rows.ravel()].add(w[pres].reshape(-1, n_modes), mode="drop")
        return start + capacity, total

    start = (jnp.zeros((), jnp.int32), jnp.zeros((n_trials * n, n_modes), w.dtype))
    _, total = jax.lax.while_loop(lambda carry: carry[0] < count, add_chunk, start)
    return total.reshape(n_trials, n, n_modes)


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
    observed, as :func:`probsnn.glm.emit_spikes`), then :func:`mode_advance`.

    Returns ``(new_state, (spikes_t, u_t))`` with spikes_t ``(*B, N)`` uint8, u_t ``(*B, N)``.
    """
    u = mode_potential(layout, weights, state)
    spikes_t = emit_spikes(key, u, clamp_t, visible)
    state = mode_advance(layout, weights, state, spikes_t, input_t, propagation, capacity)
    return state, (spikes_t, u)


def mode_advance(
    layout: ModeLayout,
    weights: ModeWeights,
    state: ModeState,
    spikes_t,
    input_t=None,
    propagation: str = "event",
    capacity: int = 64,
) -> ModeState:
    """Deliver the bin's spikes ``(*B, N)``: e ← r(e + D_t), f ← r(f + e + D_t), and store
    ``input_t`` ``(*B, M)`` in the input ring."""
    d = drive(weights, spikes_t, propagation, capacity, layout.ascending_targets)
    return recur_modes(state, d, weights.decays, layout.order_one, input_t)


def recur_modes(state: ModeState, d, decays, order_one: np.ndarray, input_t=None) -> ModeState:
    """One bin of the mode recursions with drive ``d`` ``(*B, J, N)``:
    e ← r(e + d), f ← r(f + e + d) for the static ``order_one`` modes, decays r ``(J,)``;
    ``input_t`` ``(*B, M)`` goes into the input ring."""
    decays = decays[:, None]
    e = decays * (state.e + d)
    f = state.f
    if order_one.size:
        f = decays[order_one] * (state.f + state.e[..., order_one, :] + d[..., order_one, :])
    inputs = state.inputs
    if input_t is not None and inputs.shape[0] > 0:
        inputs = inputs.at[state.t % inputs.shape[0]].set(input_t.astype(inputs.dtype))
    return ModeState(e=e, f=f, inputs=inputs, t=state.t + 1)
