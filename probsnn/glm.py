"""The two hot functions of the GLM network: parallel potentials and one sampling step.

Everything else composes these (Jang, Simeone, Gardner & Grüning 2019, IEEE SPM 36(6):64):

* :func:`potentials` — u for all bins at once from observed spikes: the traces are causal
  convolutions (:func:`probsnn.kernels.filter_spikes`), then one contraction with the weights.
* :func:`step` — one bin of sampling from a small ring buffer of the last L bins.

Spikes are Bernoulli(σ(u)) and conditionally independent given the past, so

    log p(s) = Σ_t Σ_i [ s_{i,t} u_{i,t} − softplus(u_{i,t}) ]
             = Σ_t Σ_i log σ((2 s_{i,t} − 1) u_{i,t}),

the second form being exact for potentials of any size. Every product on the way to u asks for
``precision="highest"``: JAX's default multiplies float32 in TF32 (a 10-bit mantissa) on recent
NVIDIA GPUs, which would move u by about 1e-3 of its terms and make the spikes depend on the
backend.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks, parallel
from probsnn.kernels import FILTER_METHODS, _filter_spikes
from probsnn.network import Network, Params
from probsnn.sparse import SparseNetwork, synaptic_input


class Traces(NamedTuple):
    """Basis-filtered past activity, all bins at once.

    Attributes:
        syn: ``(..., T, N, K_syn)`` synaptic traces of every neuron's spikes.
        fb: ``(..., T, N, K_fb)`` feedback traces, or None when the network shares the synapse
            basis (then ``syn`` serves both).
        inputs: ``(..., T, M, K_in)`` stimulus traces, or None without inputs.
    """

    syn: jax.Array
    fb: jax.Array | None
    inputs: jax.Array | None


class SamplerState(NamedTuple):
    """Ring buffers of the recent past, time-major, for any batch of trials ``B`` (may be ()).

    Attributes:
        spikes: ``(L, *B, N)`` float, bin t − δ stored at row (t − δ) mod L, L = ``spec.n_lags``.
        inputs: ``(L_in, *B, M)`` float, the same for the exogenous inputs (L_in = 0 without).
        t: int32 scalar, the index of the next bin.
    """

    spikes: jax.Array
    inputs: jax.Array
    t: jax.Array


def bernoulli_log_prob(spikes, potentials):
    """log p(s | u) = log σ((2s − 1) u) elementwise: finite and exact for |u| up to 1e30 and beyond.

    Args:
        spikes: 0/1 array (bool, integer or float; nested lists too), broadcastable with
            ``potentials``.
        potentials: u, the logits (a real array or nested lists; integers are taken as float32).

    Returns:
        The broadcast shape of the two, in the floating type of ``potentials``.

    Raises:
        TypeError: complex or non-numeric spikes or potentials.
        ValueError: spikes other than 0 and 1 (checked outside ``jax.jit``), or shapes that do
            not broadcast.
    """
    spikes = _checks.spike_array(spikes, "spikes", min_ndim=0)
    potentials = _checks.real_dtype(potentials, "potentials")
    try:
        np.broadcast_shapes(np.shape(spikes), np.shape(potentials))
    except ValueError:
        raise ValueError(
            f"spikes of shape {tuple(np.shape(spikes))} and potentials of shape "
            f"{tuple(np.shape(potentials))} do not broadcast"
        ) from None
    if not jnp.issubdtype(potentials.dtype, jnp.floating):
        potentials = jnp.asarray(potentials, jnp.float32)
    return _bernoulli_log_prob(spikes, jnp.asarray(potentials))


def _bernoulli_log_prob(spikes, potentials):
    """:func:`bernoulli_log_prob` without the argument checks (inside compiled code)."""
    signs = 2.0 * jnp.asarray(spikes, potentials.dtype) - 1.0
    return jax.nn.log_sigmoid(signs * potentials)


def traces(spec: Network, spikes, inputs=None, method: str = "auto") -> Traces:
    """Filtered traces of ``spikes`` ``(..., T, N)`` and ``inputs`` ``(..., T, M)``.

    A building block of compiled code: only the method and the sizes are checked here (the
    values by :func:`check_data`, which the public functions call first).

    ``method="recursive"`` filters through the recursion of every basis that has one (the others
    as ``"auto"``); it needs at least one :class:`~probsnn.kernels.RecursiveBasis`.

    Raises:
        ValueError: an unknown method, ``"recursive"`` for a network without a recursive basis,
            or empty spikes or inputs.
    """
    method = _checks.option(method, "method", FILTER_METHODS)
    recursions = (spec.synapse_recursion, spec.feedback_recursion, spec.input_recursion)
    if method == "recursive" and all(r is None for r in recursions):
        raise ValueError(
            "method='recursive' needs a network with a RecursiveBasis "
            "(probsnn.kernels.recursive_exponential and friends); this one has array bases"
        )
    _checks.nonempty(spikes, "spikes")
    syn = _filter_spikes(spikes, *_basis(spec.synapse_basis, spec.synapse_recursion, method))
    fb = None
    if not spec.shares_basis:
        fb = _filter_spikes(spikes, *_basis(spec.feedback_basis, spec.feedback_recursion, method))
    x_in = None
    if spec.n_inputs:
        if inputs is None:
            raise ValueError(f"inputs (..., T, {spec.n_inputs}) are required by this network")
        _checks.nonempty(inputs, "inputs")
        x_in = _filter_spikes(inputs, *_basis(spec.input_basis, spec.input_recursion, method))
        x_in = x_in.astype(syn.dtype)
    return Traces(syn=syn, fb=fb, inputs=x_in)


def _basis(matrix, recursion, method: str):
    """``(basis, method)`` for one of the network's bases: its recursive form where it has one,
    else its matrix (filtered as ``"auto"`` when the recursion was asked for)."""
    if recursion is None:
        return matrix, "auto" if method == "recursive" else method
    return recursion, method


def contract(spec: Network, params: Params, x: Traces):
    """Potentials from traces: the weighted sums of the module equation.

    Works for all bins at once (traces ``(..., T, N, K)`` → u ``(..., T, N)``) and for one bin
    (ring-buffer traces ``(..., N, K)`` → u ``(..., N)``, as the online rules use them): the
    contraction names no time axis.
    """
    dtype = x.syn.dtype
    x_fb = x.fb
    if isinstance(spec, SparseNetwork):  # feedback has no diagonal to ride on: its own term
        u = synaptic_input(spec, x.syn, params.w.astype(dtype))
        x_fb = x.syn if x.fb is None else x.fb
    else:
        w = _synaptic_matrix(spec, params, dtype)  # (N, K_syn, N)
        u = jnp.einsum("...jk,jki->...i", x.syn, w, precision="highest")
    u = u + params.bias.astype(dtype)
    if x_fb is not None:
        u = u + jnp.einsum("...ik,ik->...i", x_fb, params.v.astype(dtype), precision="highest")
    if x.inputs is not None:
        u = u + jnp.einsum("...mk,mik->...i", x.inputs, params.c.astype(dtype), precision="highest")
    return u


def potentials(spec: Network, params: Params, spikes, inputs=None, method: str = "auto", mesh=None):
    """Membrane potentials u_{i,t} of every neuron in every bin, computed in parallel over time.

    Args:
        spec: the network. params: its :class:`Params`.
        spikes: ``(..., T, N)`` observed spikes (bool/uint8/float 0-1).
        inputs: ``(..., T, M)`` exogenous inputs when ``spec.n_inputs`` > 0, batch dims matching
            (or absent, shared across trials).
        method: filtering method, see :func:`probsnn.kernels.filter_spikes`.
        mesh: optional :class:`jax.sharding.Mesh` (:func:`probsnn.parallel.trial_mesh`):
            the leading trial axis of ``spikes`` (and ``inputs``) is split over its devices,
            a multiple of their number; the result equals the one-device one.

    Returns:
        ``(..., T, N)`` float32 potentials (float64 for float64 spikes), sharded like the
        spikes when a mesh is given.

    Raises:
        ValueError, TypeError: on non-binary spikes, empty data (no bins or trials), wrong shapes
            or dtypes (complex refused), non-finite inputs, parameters of the wrong shape or with
            NaN/inf (naming the field), an unknown method; with a mesh, spikes without a
            leading trial axis or with trials not a multiple of its devices.
    """
    spikes, inputs = _checked(spec, params, spikes, inputs, mesh)
    method = _checks.option(method, "method", FILTER_METHODS)
    return _potentials(spec, params, spikes, inputs, method)


def log_likelihood(
    spec: Network, params: Params, spikes, inputs=None, method: str = "auto", mesh=None
):
    """Total log-likelihood log p(s) = Σ_{trials,t,i} log σ((2 s_{i,t} − 1) u_{i,t}), a scalar.

    Args and raises as :func:`potentials`. Differentiable in ``params`` (with a mesh too: the
    per-device sums are added across devices).
    """
    spikes, inputs = _checked(spec, params, spikes, inputs, mesh)
    method = _checks.option(method, "method", FILTER_METHODS)
    return _log_likelihood(spec, params, spikes, inputs, method)


def _checked(spec: Network, params: Params, spikes, inputs, mesh):
    """Checked data and params; with a mesh, the data split over trials."""
    spikes, inputs = check_data(spec, spikes, inputs)
    spec.check_params(params)
    mesh = parallel.check_mesh(mesh)
    if mesh is None:
        return spikes, inputs
    if spikes.ndim < 3:
        raise ValueError(
            "with a mesh, spikes must have a leading trial axis (n_trials, T, N), got shape "
            f"{spikes.shape}"
        )
    return parallel.shard_leading((spikes, inputs), mesh, "spikes (trials)")


@partial(jax.jit, static_argnums=(0, 4))
def _potentials(spec, params, spikes, inputs, method):
    return contract(spec, params, traces(spec, spikes, inputs, method))


@partial(jax.jit, static_argnums=(0, 4))
def _log_likelihood(spec, params, spikes, inputs, method):
    u = _potentials(spec, params, spikes, inputs, method)
    return jnp.sum(_bernoulli_log_prob(spikes, u))


def check_network(spec) -> None:
    """Raise TypeError for a spec that is neither a Network nor a SparseNetwork."""
    if not isinstance(spec, Network | SparseNetwork):
        raise TypeError(
            f"spec must be a probsnn.Network or SparseNetwork, got {type(spec).__name__}"
        )


def check_data(spec: Network, spikes, inputs):
    """Validate spikes ``(..., T, N)`` and inputs ``(..., T, M)`` against ``spec``.

    Returns ``(spikes, inputs)``, inputs broadcast to the spikes' batch dimensions.

    Raises:
        TypeError: a spec that is not a Network or SparseNetwork; complex or non-numeric spikes
            or inputs.
        ValueError: non-binary spikes, an empty axis (no bins or trials), inputs that are
            missing, unexpected, non-finite or of the wrong shape.
    """
    check_network(spec)
    spikes = _checks.spike_array(spikes, "spikes", spec.n_neurons)
    _checks.nonempty(spikes, "spikes")
    if spec.n_inputs == 0:
        if inputs is not None:
            raise ValueError("inputs were given but the network has n_inputs=0")
        return spikes, None
    if inputs is None:
        raise ValueError(f"inputs of shape (..., T, {spec.n_inputs}) are required by this network")
    inputs = _checks.real_array(inputs, "inputs", min_ndim=2)
    if inputs.shape[-1] != spec.n_inputs or inputs.shape[-2] != spikes.shape[-2]:
        raise ValueError(
            f"inputs must have shape (..., {spikes.shape[-2]}, {spec.n_inputs}) to match spikes "
            f"{tuple(spikes.shape)}, got {tuple(inputs.shape)}"
        )
    if inputs.ndim > spikes.ndim or tuple(inputs.shape[:-2]) not in (
        (),
        tuple(spikes.shape[:-2]),
    ):
        raise ValueError(
            f"inputs batch dimensions {tuple(inputs.shape[:-2])} must be () or match the spikes' "
            f"{tuple(spikes.shape[:-2])}"
        )
    if inputs.ndim < spikes.ndim:
        inputs = jnp.broadcast_to(inputs, (*spikes.shape[:-2], *inputs.shape[-2:]))
    return spikes, inputs


# --------------------------------------------------------------------------------------------
# Sequential form
# --------------------------------------------------------------------------------------------
class StepWeights(NamedTuple):
    """Parameters rearranged once for the per-bin matrix products of :func:`step_potential`.

    The synaptic weights are one ``(K_syn·N, N)`` matrix with rows ordered (basis k, pre j), so
    that each bin's potentials are a single product of the trials' traces with it.
    """

    syn_basis: jax.Array  # (K_syn, L) zero-padded to the history length
    fb_basis: jax.Array | None  # (K_fb, L) or None when shared with the synapses
    input_basis: jax.Array | None  # (K_in, L_in)
    w: jax.Array  # (K_syn * N, N), feedback folded in when the basis is shared
    v: jax.Array  # (N, K_fb)
    c: jax.Array | None  # (K_in * M, N)
    bias: jax.Array  # (N,)


def step_weights(spec: Network, params: Params, dtype=jnp.float32) -> StepWeights:
    """Rearrange ``params`` for :func:`step_potential` (do it once, outside the time loop)."""
    w = _synaptic_matrix(spec, params, dtype)  # (N_pre, K, N_post)
    c = None
    if spec.n_inputs:
        c = jnp.transpose(params.c.astype(dtype), (2, 0, 1)).reshape(-1, spec.n_neurons)
    return StepWeights(
        syn_basis=_padded_basis(spec, spec.synapse_basis, dtype),
        fb_basis=None if spec.shares_basis else _padded_basis(spec, spec.feedback_basis, dtype),
        input_basis=None if spec.input_basis is None else jnp.asarray(spec.input_basis, dtype),
        w=jnp.transpose(w, (1, 0, 2)).reshape(-1, spec.n_neurons),
        v=params.v.astype(dtype),
        c=c,
        bias=params.bias.astype(dtype),
    )


def init_state(spec: Network, batch_shape: tuple[int, ...] = (), dtype=jnp.float32):
    """An empty past (no spikes, zero inputs) for a batch of trials of shape ``batch_shape``.

    Raises:
        TypeError: a batch shape that is not a tuple of integers, or a non-floating dtype.
        ValueError: a batch size below 1, or a state too large to allocate.
    """
    batch_shape = _batch_shape(batch_shape)
    dtype = _checks.float_dtype(dtype, "dtype")
    _checks.allocation(
        spec.n_lags * math.prod(batch_shape) * spec.n_neurons, "the sampler state (L, *B, N)"
    )
    return _init_state(spec, batch_shape, dtype)


def _batch_shape(batch_shape) -> tuple[int, ...]:
    if not isinstance(batch_shape, tuple | list):
        raise TypeError(f"batch_shape must be a tuple of integers, got {batch_shape!r}")
    return tuple(_checks.positive_int(n, "batch_shape[i]") for n in batch_shape)


def _init_state(spec: Network, batch_shape: tuple[int, ...], dtype):
    """:func:`init_state` without the argument checks (inside compiled code)."""
    return SamplerState(
        spikes=jnp.zeros((spec.n_lags, *batch_shape, spec.n_neurons), dtype),
        inputs=jnp.zeros((spec.n_input_lags, *batch_shape, spec.n_inputs), dtype),
        t=jnp.zeros((), jnp.int32),
    )


def step_potential(weights: StepWeights, state: SamplerState):
    """u_t ``(*B, N)`` from the ring buffers (the same equation as :func:`contract`)."""
    x_syn = _ring_traces(state.spikes, weights.syn_basis, state.t)  # (*B, K_syn, N)
    u = _flat_product(x_syn, weights.w) + weights.bias
    if weights.fb_basis is not None:
        x_fb = _ring_traces(state.spikes, weights.fb_basis, state.t)  # (*B, K_fb, N)
        u = u + jnp.einsum("...kn,nk->...n", x_fb, weights.v, precision="highest")
    if weights.c is not None:
        x_in = _ring_traces(state.inputs, weights.input_basis, state.t)  # (*B, K_in, M)
        u = u + _flat_product(x_in, weights.c)
    return u


def ring_traces(spec: Network, state: SamplerState) -> Traces:
    """Traces of the bin ``state.t`` from the ring buffers.

    Returns a :class:`Traces` with syn ``(*B, N, K_syn)``, fb ``(*B, N, K_fb)`` or None, inputs
    ``(*B, M, K_in)`` or None — one bin of what :func:`traces` computes for all bins.
    """
    dtype = state.spikes.dtype

    def bin_traces(buffer, basis):
        return jnp.swapaxes(_ring_traces(buffer, basis, state.t), -1, -2)

    syn = bin_traces(state.spikes, _padded_basis(spec, spec.synapse_basis, dtype))
    fb = None
    if not spec.shares_basis:
        fb = bin_traces(state.spikes, _padded_basis(spec, spec.feedback_basis, dtype))
    x_in = None
    if spec.n_inputs:
        x_in = bin_traces(state.inputs, jnp.asarray(spec.input_basis, dtype))
    return Traces(syn=syn, fb=fb, inputs=x_in)


def advance(state: SamplerState, spikes_t, input_t=None) -> SamplerState:
    """Push bin t's spikes ``(*B, N)`` and inputs ``(*B, M)`` into the ring buffers."""
    row = state.t % state.spikes.shape[0]
    spike_buffer = state.spikes.at[row].set(spikes_t.astype(state.spikes.dtype))
    input_buffer = state.inputs
    if input_t is not None and state.inputs.shape[0] > 0:
        input_buffer = state.inputs.at[state.t % state.inputs.shape[0]].set(
            input_t.astype(state.inputs.dtype)
        )
    return SamplerState(spikes=spike_buffer, inputs=input_buffer, t=state.t + 1)


def emit_spikes(key, potentials, clamp_t=None, visible=None):
    """The one Bernoulli draw of the library: s_t ~ Bernoulli(σ(u_t)), clamped where observed.

    Args:
        key: PRNG key of the bin. potentials: u_t ``(*B, N)``.
        clamp_t: optional ``(*B, N)`` spikes; the neurons where ``visible`` is True take these
            values (the other columns are ignored), so the draw is one of q(h‖x).
        visible: ``(N,)`` bool mask, required with ``clamp_t``.

    Returns:
        ``(*B, N)`` uint8 spikes.
    """
    drawn = jax.random.bernoulli(key, jax.nn.sigmoid(potentials)).astype(jnp.uint8)
    if clamp_t is None:
        return drawn
    return jnp.where(jnp.asarray(visible), jnp.asarray(clamp_t).astype(jnp.uint8), drawn)


def sample_step(
    weights: StepWeights, state: SamplerState, key, input_t=None, clamp_t=None, visible=None
):
    """:func:`step` on pre-arranged weights (:func:`step_weights`): what a ``lax.scan`` body
    calls, so the weights are rearranged once per scan rather than once per bin."""
    u = step_potential(weights, state)
    spikes_t = emit_spikes(key, u, clamp_t, visible)
    return advance(state, spikes_t, input_t), (spikes_t, u)


def step(spec: Network, params: Params, state: SamplerState, key, input_t=None, clamp_t=None):
    """Sample one bin: u_t from the past, s_t ~ Bernoulli(σ(u_t)), then advance the past.

    Every sampler of the library (:func:`probsnn.sample`, the clamped sampler of q(h‖x), the
    variational and multi-sample estimators) draws its spikes through this step or its
    pre-arranged form :func:`sample_step` (docs/theory.md §2–3). Every argument is validated
    here (the params' values too, outside ``jax.jit``); a loop over many bins should arrange
    the weights once (:func:`step_weights`) and call the unchecked :func:`sample_step`.

    Args:
        spec, params: the network. state: :class:`SamplerState` of a batch ``B`` of trials.
        key: PRNG key for this bin. input_t: ``(*B, M)`` inputs at bin t (None without inputs).
        clamp_t: optional ``(*B, N)`` spikes for the visible neurons (``spec.visible``); the
            hidden neurons are drawn, so the bin is a draw of q(h‖x). Hidden columns are ignored.

    Returns:
        ``(new_state, (spikes_t, u_t))`` with spikes_t ``(*B, N)`` uint8 and u_t ``(*B, N)``.

    Raises:
        TypeError: a key that is not a PRNG key, a state that is not a :class:`SamplerState`,
            complex inputs.
        ValueError: params that fail :meth:`Network.check_params` (another network's sizes,
            NaN/inf), a state of another network, inputs given to a network without inputs or
            missing for one that needs them, inputs or clamp_t of the wrong shape, non-finite
            inputs or non-binary clamp_t.
    """
    key = _checks.prng_key(key, "key")
    spec.check_params(params)
    input_t, clamp_t = check_step(spec, state, input_t, clamp_t)
    weights = step_weights(spec, params, state.spikes.dtype)
    visible = None if clamp_t is None else spec.visible
    return sample_step(weights, state, key, input_t, clamp_t, visible)


def check_step(spec: Network, state, input_t, clamp_t, clamp_tail=None):
    """Validate the sampler ``state`` of ``spec``, the bin's ``input_t`` ``(*B, M)`` and
    ``clamp_t`` ``(*B, *clamp_tail)`` (default ``(*B, N)``); returns ``(input_t, clamp_t)`` as
    arrays or None. Raises TypeError/ValueError naming the argument (see :func:`step`)."""
    if not isinstance(state, SamplerState):
        raise TypeError(
            f"state must be a probsnn.SamplerState (probsnn.init_state), got {type(state).__name__}"
        )
    n_channels = spec.n_neurons
    spike_shape = tuple(np.shape(state.spikes))
    if len(spike_shape) < 2 or spike_shape[0] != spec.n_lags or spike_shape[-1] != n_channels:
        raise ValueError(
            f"state.spikes must have shape ({spec.n_lags}, *B, {n_channels}) for this network "
            f"(init_state(spec, batch_shape)), got {spike_shape}"
        )
    batch = spike_shape[1:-1]
    input_shape = (spec.n_input_lags, *batch, spec.n_inputs)
    if tuple(np.shape(state.inputs)) != input_shape:
        raise ValueError(
            f"state.inputs must have shape {input_shape} for this network, "
            f"got {tuple(np.shape(state.inputs))}"
        )
    if spec.n_inputs == 0 and input_t is not None:
        raise ValueError("input_t was given but the network has n_inputs=0")
    if spec.n_inputs > 0:
        if input_t is None:
            raise ValueError(
                f"input_t of shape {(*batch, spec.n_inputs)} is required by this network "
                f"(n_inputs={spec.n_inputs})"
            )
        input_t = _checks.real_array(input_t, "input_t", min_ndim=0)
        if tuple(input_t.shape) != (*batch, spec.n_inputs):
            raise ValueError(
                f"input_t must have shape {(*batch, spec.n_inputs)}, got {tuple(input_t.shape)}"
            )
    if clamp_t is not None:
        tail = (spec.n_neurons,) if clamp_tail is None else tuple(clamp_tail)
        clamp_t = _checks.spike_array(clamp_t, "clamp_t", min_ndim=0)
        if tuple(clamp_t.shape) != (*batch, *tail):
            raise ValueError(
                f"clamp_t must have shape {(*batch, *tail)}, got {tuple(clamp_t.shape)}"
            )
    return input_t, clamp_t


def _ring_traces(buffer, basis, t):
    """x_k = Σ_δ φ_{k,δ} b_{t−δ} for a ring buffer ``(L, *B, C)``; returns ``(*B, K, C)``."""
    n_lags = buffer.shape[0]
    # Row r holds bin t − δ with δ = ((t − 1 − r) mod L) + 1, i.e. basis column (t − 1 − r) mod L.
    columns = (t - 1 - jnp.arange(n_lags)) % n_lags
    # (K, *B, C)
    traces = jnp.tensordot(basis[:, columns], buffer, axes=(1, 0), precision="highest")
    return jnp.moveaxis(traces, 0, -2)


def _flat_product(x, matrix):
    """``(*B, K, C)`` traces times a ``(K·C, N)`` matrix with rows ordered (k, c)."""
    return jnp.matmul(x.reshape(*x.shape[:-2], -1), matrix, precision="highest")


def _padded_basis(spec: Network, basis, dtype):
    """``basis`` zero-padded to the sampler's history length ``spec.n_lags``."""
    return jnp.asarray(np.pad(basis, ((0, 0), (0, spec.n_lags - basis.shape[1]))), dtype)


def _synaptic_matrix(spec: Network, params: Params, dtype):
    """Masked synaptic weights as ``(N_pre, K_syn, N_post)``, feedback folded into the diagonal
    when feedback and synapses share a basis."""
    w = params.w.astype(dtype) * jnp.asarray(spec.connectivity, dtype)[:, :, None]
    if spec.shares_basis:
        n = spec.n_neurons
        w = w.at[jnp.arange(n), jnp.arange(n)].add(params.v.astype(dtype))
    return jnp.transpose(w, (0, 2, 1))
