"""The past of a network one bin at a time, as the bin's presynaptic traces.

The online rules (:func:`probsnn.inference.ml_online_trainer`, the streaming variational rule),
the actor-critic's local score and the particle filter need, in every bin t, the traces
x_{j,k,t} = Σ_{δ>=1} φ_k(δ) s_{j,t−δ} of every presynaptic neuron j — a bin of
:func:`probsnn.glm.traces` — and then push the bin's spikes. Two states hold that past:

* a ring buffer of the last L bins (:class:`probsnn.glm.SamplerState`), for any basis:
  O(K·L·N) per bin and trial;
* for bases that are :class:`~probsnn.kernels.RecursiveBasis` objects, the trace states of
  every mode m of every train (:class:`~probsnn.propagation.ModeState`, presynaptic here):

      e_{m,t+1} = r_m (e_{m,t} + s_t),    f_{m,t+1} = r_m (f_{m,t} + e_{m,t} + s_t),
      x_{k,t} = Σ_m B_{k,m} (e_{m,t} if p_m = 0 else f_{m,t}),

  O(J·N + K·J·N) per bin and trial whatever the kernels' length (Oppenheim & Schafer 2010,
  ch. 6). The recursion has no cut at L lags; the two agree to float round-off, the size of
  the basis matrix's dropped tail (:class:`~probsnn.kernels.RecursiveBasis`).

:func:`init` picks the recursion when the synapse and feedback bases allow it
(``spec.recursive``), else the ring; a network built on the array ``numpy.asarray(basis)`` of a
recursive basis takes the ring with the same traces. The exogenous inputs keep a ring buffer
of their basis's L_in lags in both.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.glm import (
    SamplerState,
    Traces,
    _batch_shape,
    _init_state,
    _ring_traces,
    advance,
    ring_traces,
)
from probsnn.network import Network
from probsnn.propagation import ModeState, recur_modes, zero_modes

#: What :func:`init` accepts as ``method``.
HISTORY_METHODS = ("auto", "ring", "recursive")


def init(spec: Network, batch_shape: tuple[int, ...] = (), dtype=jnp.float32, method="auto"):
    """An empty past (no spikes, zero inputs) for a batch of trials ``batch_shape``.

    Args:
        spec: the network. batch_shape: the batch ``B`` (may be ()).
        dtype: a floating dtype for the states.
        method: ``"recursive"`` (trace states ``(*B, J, N)``; needs recursive bases),
            ``"ring"`` (the last L bins ``(L, *B, N)``) or ``"auto"`` (recursive when
            ``spec.recursive``).

    Returns:
        a :class:`~probsnn.propagation.ModeState` (recursive) or a
        :class:`~probsnn.glm.SamplerState` (ring).

    Raises:
        ValueError: an unknown method, ``"recursive"`` on array bases, a batch size below 1,
            a state too large to allocate.
        TypeError: a batch shape that is not a tuple of integers, a non-floating dtype.
    """
    method = _checks.option(method, "method", HISTORY_METHODS)
    batch_shape = _batch_shape(batch_shape)
    dtype = _checks.float_dtype(dtype, "dtype")
    if method == "recursive" and not spec.recursive:
        raise ValueError(
            "method='recursive' needs RecursiveBasis synapse and feedback bases "
            "(probsnn.kernels.recursive_exponential and friends); this network has array bases"
        )
    recursive = spec.recursive and method != "ring"
    per_trial = _n_states(spec) if recursive else spec.n_lags
    _checks.allocation(per_trial * math.prod(batch_shape) * spec.n_neurons, "the past's states")
    return _init(spec, batch_shape, dtype, recursive)


def _init(spec: Network, batch_shape: tuple[int, ...], dtype, recursive: bool):
    """:func:`init` without the checks (inside compiled code)."""
    if not recursive:
        return _init_state(spec, batch_shape, dtype)
    n_modes, order_one = _modes(spec)
    return zero_modes(spec, batch_shape, n_modes, order_one.size, dtype)


def traces(spec: Network, state) -> Traces:
    """The traces of bin ``state.t``: syn ``(*B, N, K_syn)``, fb ``(*B, N, K_fb)`` or None
    (the feedback shares the synapse basis), inputs ``(*B, M, K_in)`` or None — one bin of
    :func:`probsnn.glm.traces`."""
    if isinstance(state, SamplerState):
        return ring_traces(spec, state)
    values = _mode_values(spec, state)  # (*B, J, N)
    n_syn = spec.synapse_recursion.n_modes
    syn = _mix(spec.synapse_recursion.mixing, values[..., :n_syn, :])
    fb = None
    if not spec.shares_basis:
        fb = _mix(spec.feedback_recursion.mixing, values[..., n_syn:, :])
    x_in = None
    if spec.n_inputs:
        basis = jnp.asarray(spec.input_basis, state.inputs.dtype)
        x_in = jnp.swapaxes(_ring_traces(state.inputs, basis, state.t), -1, -2)
    return Traces(syn=syn, fb=fb, inputs=x_in)


def push(spec: Network, state, spikes_t, input_t=None):
    """The past after bin t: its spikes ``(*B, N)`` and inputs ``(*B, M)`` pushed in."""
    if isinstance(state, SamplerState):
        return advance(state, spikes_t, input_t)
    # every mode of a train is driven by the train itself
    d = jnp.broadcast_to(spikes_t.astype(state.e.dtype)[..., None, :], state.e.shape)
    decays = jnp.asarray(_decays(spec), state.e.dtype)
    return recur_modes(state, d, decays, _modes(spec)[1], input_t)


def take(state, index):
    """The past of trials ``index`` ``(*B)`` along the last batch axis (e.g. the ancestors of a
    particle filter's resampling): a ring buffer or trace states (presynaptic, as here, or the
    sampler's postsynaptic ones of :func:`probsnn.simulate.step_parts`)."""

    def lags(buffer):  # time-major (L, *B, C): the last batch axis is before the channels
        return jnp.take_along_axis(buffer, index[None, ..., None], axis=-2)

    def modes(states):  # (*B, J, N)
        return jnp.take_along_axis(states, index[..., None, None], axis=-3)

    if isinstance(state, SamplerState):
        return state._replace(spikes=lags(state.spikes), inputs=lags(state.inputs))
    return state._replace(e=modes(state.e), f=modes(state.f), inputs=lags(state.inputs))


def _recursions(spec: Network):
    """The synapse recursion, then the feedback's when it has its own basis."""
    if spec.shares_basis:
        return [spec.synapse_recursion]
    return [spec.synapse_recursion, spec.feedback_recursion]


def _modes(spec: Network):
    """J and the indices of the order-1 modes (static)."""
    orders = np.concatenate([r.orders for r in _recursions(spec)])
    return orders.size, np.flatnonzero(orders == 1)


def _decays(spec: Network) -> np.ndarray:
    return np.concatenate([r.decays for r in _recursions(spec)])


def _n_states(spec: Network) -> int:
    n_modes, order_one = _modes(spec)
    return n_modes + order_one.size


def _mode_values(spec: Network, state: ModeState):
    """Each mode's filtered train ``(*B, J, N)``: e for order 0, f for order 1."""
    _, order_one = _modes(spec)
    if not order_one.size:
        return state.e
    return state.e.at[..., order_one, :].set(state.f)


def _mix(mixing: np.ndarray, values):
    """x ``(*B, N, K)`` = Σ_m B_{k,m} values ``(*B, J, N)``."""
    return jnp.einsum(
        "km,...mn->...nk", jnp.asarray(mixing, values.dtype), values, precision="highest"
    )
