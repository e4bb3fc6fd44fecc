"""Winner-take-all (WTA) circuits: multi-valued spiking units (Jang, Skatchkovsky & Simeone 2020).

Each unit i emits in every bin either silence or one of C symbols. Its C potentials

    u^b_{i,t} = Σ_{j∈P_i} Σ_{a,k} w_{j,a,i,b,k} x^{syn}_{j,a,k,t}
                + Σ_{a,k} v_{i,a,b,k} x^{fb}_{i,a,k,t}
                + Σ_{m,k} c_{m,i,b,k} x^{in}_{m,k,t} + γ_{i,b}

filter the past symbol spikes s^a_j of all units (x the basis traces of docs/theory.md §1, one per
symbol channel), and

    p(s^b_{i,t} = 1 | u_{i,t}) = e^{u^b} / (1 + Σ_{b'} e^{u^{b'}}),   silence otherwise
    (docs/theory.md §2; Jang, Skatchkovsky & Simeone 2020, "VOWEL: a local online learning rule for
    recurrent networks of probabilistic spiking winner-take-all circuits", ICPR).

That is a softmax over the C + 1 logits (0, u^1, …, u^C), so log p is a log-softmax with a zero
logit for silence — exact for potentials of any size. With C = 1 the unit is the binary GLM
neuron of :mod:`probsnn.glm`.

Spikes are one-hot ``(..., T, N, C)`` uint8 with at most one 1 per unit and bin (all zeros =
silence). The N·C symbol channels, flattened unit-major, are filtered exactly as a binary network
of N·C neurons: :attr:`WTANetwork.channels` is that network (its connectivity couples every symbol
of j to every symbol of i where j → i), and its traces and ring buffers are reused from
:mod:`probsnn.glm`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.glm import (
    SamplerState,
    Traces,
    _init_state,
    advance,
    check_step,
    init_state,
    ring_traces,
    traces,
)
from probsnn.glm import check_data as check_channel_data
from probsnn.kernels import FILTER_METHODS
from probsnn.network import Network
from probsnn.simulate import run_sampler, scan_bins


class WTAParams(NamedTuple):
    """WTA network parameters.

    Attributes:
        w: synaptic weights ``(N, C, N, C, K_syn)`` indexed ``[pre j, its symbol a, post i,
            its symbol b, basis k]``; zero where the unit connectivity mask is False.
        v: feedback weights ``(N, C, C, K_fb)`` ``[unit i, past symbol a, symbol b, basis k]``.
        c: stimulus weights ``(M, N, C, K_in)``.
        bias: γ ``(N, C)``.
    """

    w: jax.Array
    v: jax.Array
    c: jax.Array
    bias: jax.Array


@jax.tree_util.register_static
class WTANetwork:
    """Static specification of a network of WTA units (hashable; a jit-static pytree).

    Args:
        n_units: N >= 1 units. n_symbols: C >= 1 symbols per unit.
        synapse_basis, feedback_basis, input_basis, n_inputs, dt: as :class:`probsnn.Network`.
        connectivity: ``(N, N)`` bool unit mask ``[pre, post]`` with a False diagonal (a unit's
            own past enters through the feedback weights v, which couple its symbols).
        visible: ``(N,)`` bool, which units are observed; default all.

    Raises:
        ValueError, TypeError: naming the offending argument.
    """

    def __init__(
        self,
        n_units: int,
        n_symbols: int,
        synapse_basis,
        feedback_basis=None,
        input_basis=None,
        n_inputs: int = 0,
        dt: float = 1e-3,
        connectivity=None,
        visible=None,
    ):
        n_units = _checks.positive_int(n_units, "n_units")
        self.n_symbols = _checks.positive_int(n_symbols, "n_symbols")
        self.units = Network(
            n_units,
            synapse_basis,
            feedback_basis=feedback_basis,
            input_basis=input_basis,
            n_inputs=n_inputs,
            dt=dt,
            connectivity=connectivity,
            visible=visible,
        )
        block = np.ones((self.n_symbols, self.n_symbols), dtype=bool)
        self.channels = Network(
            n_units * self.n_symbols,
            self.units.synapse_basis,
            feedback_basis=self.units.feedback_basis,
            input_basis=self.units.input_basis,
            n_inputs=n_inputs,
            dt=dt,
            connectivity=np.kron(self.units.connectivity, block),
            visible=np.repeat(self.units.visible, self.n_symbols),
        )

    # -- sizes -----------------------------------------------------------------------------
    @property
    def n_units(self) -> int:
        return self.units.n_neurons

    @property
    def n_inputs(self) -> int:
        return self.units.n_inputs

    @property
    def visible(self) -> np.ndarray:
        return self.units.visible

    @property
    def hidden(self) -> np.ndarray:
        return self.units.hidden

    @property
    def param_shapes(self) -> WTAParams:
        n, c, m = self.n_units, self.n_symbols, self.n_inputs
        k_in = 0 if self.units.input_basis is None else self.units.input_basis.shape[0]
        return WTAParams(
            w=(n, c, n, c, self.units.synapse_basis.shape[0]),
            v=(n, c, c, self.units.feedback_basis.shape[0]),
            c=(m, n, c, k_in),
            bias=(n, c),
        )

    # -- parameters ------------------------------------------------------------------------
    def init_params(
        self,
        key,
        *,
        rate: float = 10.0,
        weight_scale: float = 1.0,
        refractory: float = 2.0,
        dtype=jnp.float32,
    ) -> WTAParams:
        """Random parameters for units that emit some symbol at about ``rate`` Hz.

        bias = log(p/C) − log(1 − p) with p = rate Δ (every symbol has probability p/C and
        silence 1 − p); w ~ Normal(0, weight_scale² / (K C |P_i|)) on the mask; c ~ Normal(0,
        weight_scale² / (K M)); v puts −``refractory`` on the first feedback basis function
        between all symbol pairs. With C = 1 this is :meth:`probsnn.Network.init_params`.

        Raises:
            TypeError: a key that is not a PRNG key, a non-numeric option, a non-floating dtype.
            ValueError: a non-finite or out-of-range rate, weight_scale or refractory.
        """
        key = _checks.prng_key(key, "key")
        rate = _checks.positive_float(rate, "rate")
        if not rate * self.units.dt < 1:
            raise ValueError(f"rate * dt must be < 1, got rate={rate} with dt={self.units.dt}")
        weight_scale = _checks.nonnegative_float(weight_scale, "weight_scale")
        refractory = _checks.finite_float(refractory, "refractory")
        dtype = _checks.float_dtype(dtype, "dtype")
        _checks.allocation(math.prod(self.param_shapes.w), "the synaptic weights (N, C, N, C, K)")
        p = rate * self.units.dt
        bias = float(np.log(p / self.n_symbols) - np.log1p(-p))
        return _random_params(self, key, weight_scale, refractory, bias, dtype)

    def check_params(self, params) -> WTAParams:
        """Return ``params`` unchanged, raising unless it is a :class:`WTAParams` with this
        network's shapes whose values are real and finite.

        Raises:
            TypeError: not a :class:`WTAParams`, or a complex or non-numeric field.
            ValueError: a field of another shape, or NaN/inf in a field (naming it; values are
                inspected only outside ``jax.jit``).
        """
        _checks.params_of_shapes(params, WTAParams, self.param_shapes, "probsnn.wta.WTAParams")
        return _checks.finite_tree(params, "params")

    # -- identity --------------------------------------------------------------------------
    def __hash__(self):
        return hash((self.n_symbols, self.units))

    def __eq__(self, other):
        return (
            isinstance(other, WTANetwork)
            and self.n_symbols == other.n_symbols
            and self.units == other.units
        )

    def __repr__(self):
        return f"WTANetwork(n_symbols={self.n_symbols}, units={self.units!r})"


@partial(jax.jit, static_argnums=(0, 5))
def _random_params(spec: WTANetwork, key, weight_scale, refractory, bias, dtype) -> WTAParams:
    """The draws of :meth:`WTANetwork.init_params`, compiled once per network and dtype."""
    shapes = spec.param_shapes
    key_w, key_c = jax.random.split(key)
    fan_in = np.maximum(spec.units.connectivity.sum(axis=0), 1) * shapes.w[4] * spec.n_symbols
    scale = (1.0 / np.sqrt(fan_in))[None, None, :, None, None]
    w = weight_scale * jax.random.normal(key_w, shapes.w, dtype) * scale
    w = w * _unit_mask(spec, dtype)
    c_scale = 1.0 / np.sqrt(max(spec.n_inputs * shapes.c[3], 1))
    c = weight_scale * c_scale * jax.random.normal(key_c, shapes.c, dtype)
    v = jnp.zeros(shapes.v, dtype).at[..., 0].set(-refractory)
    return WTAParams(w=w, v=v, c=c, bias=jnp.full(shapes.bias, bias, dtype))


# --------------------------------------------------------------------------------------------
# Symbols
# --------------------------------------------------------------------------------------------
def symbol_probabilities(potentials):
    """(p(silence), p(symbol 1), …, p(symbol C)) = softmax(0, u^1, …, u^C) on the last axis.

    Args:
        potentials: u ``(..., C)``.

    Returns:
        ``(..., C + 1)`` probabilities summing to one, silence first; exact for any finite u.

    Raises:
        TypeError: complex or non-numeric potentials. ValueError: potentials without a symbol
            axis (a scalar or C = 0).
    """
    potentials = _potential_array(potentials)
    return jax.nn.softmax(_logits(potentials), axis=-1)


def _potential_array(potentials):
    potentials = _checks.real_dtype(potentials, "potentials")
    if potentials.ndim < 1 or potentials.shape[-1] < 1:
        raise ValueError(
            f"potentials must have a symbol axis (..., C) with C >= 1, "
            f"got shape {tuple(potentials.shape)}"
        )
    if not jnp.issubdtype(potentials.dtype, jnp.floating):
        return jnp.asarray(potentials, jnp.float32)
    return jnp.asarray(potentials)


def wta_log_prob(spikes, potentials):
    """log p(s | u) for one-hot symbol spikes, the log-softmax of (0, u) at the emitted symbol.

        log p = Σ_b s^b u^b − log(1 + Σ_b e^{u^b})

    Args:
        spikes: one-hot ``(..., C)`` (any real dtype; all zeros = silence). potentials: u
            ``(..., C)``.

    Returns:
        ``(...)`` log-probabilities, finite for finite u of any size.

    Raises:
        TypeError: complex or non-numeric arrays. ValueError: spikes that are not one-hot
            (checked outside ``jax.jit``) or whose shape does not broadcast with the potentials'.
    """
    potentials = _potential_array(potentials)
    spikes = check_one_hot(spikes, "spikes", min_ndim=1)
    try:
        np.broadcast_shapes(tuple(spikes.shape), tuple(potentials.shape))
    except ValueError:
        raise ValueError(
            f"spikes of shape {tuple(spikes.shape)} and potentials of shape "
            f"{tuple(potentials.shape)} do not broadcast"
        ) from None
    return _wta_log_prob(spikes, potentials)


def _wta_log_prob(spikes, potentials):
    """:func:`wta_log_prob` without the argument checks (inside compiled code)."""
    log_p = jax.nn.log_softmax(_logits(potentials), axis=-1)
    s = jnp.asarray(spikes, log_p.dtype)
    silence = 1.0 - jnp.sum(s, axis=-1)
    return silence * log_p[..., 0] + jnp.sum(s * log_p[..., 1:], axis=-1)


def one_hot(symbols, n_symbols: int):
    """Symbol indices ``(...)`` in 0..C (0 = silence, b = symbol b) → one-hot uint8 ``(..., C)``.

    Raises:
        TypeError: non-integer symbols. ValueError: C < 1 or indices outside 0..C.
    """
    n_symbols = _checks.positive_int(n_symbols, "n_symbols")
    symbols = jnp.asarray(symbols) if not hasattr(symbols, "dtype") else symbols
    if not jnp.issubdtype(symbols.dtype, jnp.integer):
        raise TypeError(f"symbols must be integers in 0..{n_symbols}, got dtype {symbols.dtype}")
    if _checks.is_concrete(symbols):
        values = np.asarray(symbols)
        if values.size and (values.min() < 0 or values.max() > n_symbols):
            raise ValueError(
                f"symbols must lie in 0..{n_symbols} (0 = silence), "
                f"found values in [{values.min()}, {values.max()}]"
            )
    return jax.nn.one_hot(symbols, n_symbols + 1, dtype=jnp.uint8)[..., 1:]


def to_symbols(spikes):
    """One-hot spikes ``(..., C)`` → int32 symbol indices ``(...)`` (0 = silence)."""
    spikes = check_one_hot(spikes, "spikes")
    s = jnp.asarray(spikes, jnp.int32)
    return jnp.sum(s * jnp.arange(1, s.shape[-1] + 1, dtype=jnp.int32), axis=-1)


def check_one_hot(
    spikes, name: str, n_symbols: int | None = None, n_units: int | None = None, min_ndim: int = 2
):
    """Validate one-hot symbol spikes ``(..., N, C)``: 0/1 values, at most one symbol per unit.

    Raises:
        TypeError: a non-numeric dtype. ValueError: a wrong shape, a value other than 0/1, or two
            symbols of one unit in the same bin.
    """
    spikes = _checks.spike_array(spikes, name, n_symbols, min_ndim=min_ndim)
    if n_units is not None and (spikes.ndim < 3 or spikes.shape[-2] != n_units):
        raise ValueError(
            f"{name} must have shape (..., T, {n_units}, {spikes.shape[-1]}) "
            f"(units, symbols last), got {tuple(spikes.shape)}"
        )
    if _checks.is_concrete(spikes):
        per_unit = np.asarray(spikes).astype(np.int64).sum(axis=-1)
        if np.any(per_unit > 1):
            where = tuple(int(i) for i in np.argwhere(per_unit > 1)[0])
            raise ValueError(
                f"{name} must be one-hot (at most one symbol per unit and bin), found "
                f"{int(per_unit[where])} symbols at index {where}"
            )
    return spikes


def _logits(potentials):
    zero = jnp.zeros((*potentials.shape[:-1], 1), potentials.dtype)
    return jnp.concatenate([zero, potentials], axis=-1)


# --------------------------------------------------------------------------------------------
# Parallel potentials and likelihood
# --------------------------------------------------------------------------------------------
def channel_traces(spec: WTANetwork, spikes, inputs=None, method: str = "auto") -> Traces:
    """Traces of the N·C symbol channels for all bins: syn ``(..., T, N·C, K_syn)`` etc."""
    flat = jnp.reshape(spikes, (*spikes.shape[:-2], -1))
    return traces(spec.channels, flat, inputs, method)


def contract(spec: WTANetwork, params: WTAParams, x: Traces):
    """Potentials u ``(..., N, C)`` from channel traces (syn ``(..., N·C, K_syn)``, …).

    Works for one bin (ring-buffer traces) and for all bins (leading time axis) alike.
    """
    dtype = x.syn.dtype
    n, c = spec.n_units, spec.n_symbols
    u = jnp.einsum("...ak,akb->...b", x.syn, _coupling(spec, params, dtype))
    u = u.reshape(*u.shape[:-1], n, c) + params.bias.astype(dtype)
    if x.fb is not None:
        fb = x.fb.reshape(*x.fb.shape[:-2], n, c, x.fb.shape[-1])
        u = u + jnp.einsum("...iak,iabk->...ib", fb, params.v.astype(dtype))
    if x.inputs is not None:
        u = u + jnp.einsum("...mk,mibk->...ib", x.inputs, params.c.astype(dtype))
    return u


def check_data(spec: WTANetwork, spikes, inputs):
    """Validate one-hot spikes ``(..., T, N, C)`` and inputs ``(..., T, M)`` against ``spec``."""
    spikes = check_one_hot(spikes, "spikes", spec.n_symbols, spec.n_units)
    _checks.nonempty(spikes, "spikes")
    flat = jnp.reshape(jnp.asarray(spikes), (*spikes.shape[:-2], -1))
    _, inputs = check_channel_data(spec.channels, flat, inputs)
    return spikes, inputs


def potentials(spec: WTANetwork, params: WTAParams, spikes, inputs=None, method: str = "auto"):
    """Potentials u ``(..., T, N, C)`` of every unit and symbol in every bin, in parallel.

    Args:
        spec, params: the network. spikes: one-hot ``(..., T, N, C)``. inputs: ``(..., T, M)``
            when ``spec.n_inputs`` > 0. method: see :func:`probsnn.kernels.filter_spikes`.

    Raises:
        ValueError, TypeError: on spikes that are not one-hot or empty, wrong shapes, bad params
            (another network's shapes, NaN/inf), an unknown method.
    """
    spikes, inputs = check_data(spec, spikes, inputs)
    spec.check_params(params)
    method = _checks.option(method, "method", FILTER_METHODS)
    return _potentials(spec, params, spikes, inputs, method)


def log_prob(spec: WTANetwork, params: WTAParams, spikes, inputs=None, method: str = "auto"):
    """Per-unit, per-bin log p(s_{i,t} | u_{i,t}) ``(..., T, N)`` (see :func:`wta_log_prob`).

    Args and raises as :func:`potentials`. Sum over the visible units for the learning signal of
    variational learning (docs/theory.md §3).
    """
    spikes, inputs = check_data(spec, spikes, inputs)
    spec.check_params(params)
    method = _checks.option(method, "method", FILTER_METHODS)
    return _log_prob(spec, params, spikes, inputs, method)


def log_likelihood(spec: WTANetwork, params: WTAParams, spikes, inputs=None, method="auto"):
    """Total log p(s) = Σ_{trials,t,i} log p(s_{i,t} | u_{i,t}), a scalar differentiable in params.

    With C = 1 it equals :func:`probsnn.log_likelihood` of the binary network. Args and raises as
    :func:`potentials`.
    """
    return jnp.sum(log_prob(spec, params, spikes, inputs, method))


@partial(jax.jit, static_argnums=(0, 4))
def _potentials(spec, params, spikes, inputs, method):
    return contract(spec, params, channel_traces(spec, spikes, inputs, method))


@partial(jax.jit, static_argnums=(0, 4))
def _log_prob(spec, params, spikes, inputs, method):
    return _wta_log_prob(spikes, _potentials(spec, params, spikes, inputs, method))


def _unit_mask(spec: WTANetwork, dtype):
    """The unit connectivity broadcast to ``w``'s shape ``(N, 1, N, 1, 1)``."""
    return jnp.asarray(spec.units.connectivity, dtype)[:, None, :, None, None]


def _coupling(spec: WTANetwork, params: WTAParams, dtype):
    """Masked synaptic weights as ``(N·C_pre, K_syn, N·C_post)``, the feedback weights folded
    into the diagonal unit blocks when feedback and synapses share a basis."""
    n, c = spec.n_units, spec.n_symbols
    w = params.w.astype(dtype) * _unit_mask(spec, dtype)
    if spec.units.shares_basis:
        units = jnp.arange(n)
        w = w.at[units, :, units].add(params.v.astype(dtype))  # blocks (N, C_a, C_b, K)
    return jnp.transpose(w, (0, 1, 4, 2, 3)).reshape(n * c, w.shape[-1], n * c)


# --------------------------------------------------------------------------------------------
# Sequential form
# --------------------------------------------------------------------------------------------
def init_wta_state(spec: WTANetwork, batch_shape: tuple[int, ...] = (), dtype=jnp.float32):
    """An empty past for a batch of trials: the ring buffers of the N·C symbol channels."""
    return init_state(spec.channels, batch_shape, dtype)


def step_potentials(spec: WTANetwork, params: WTAParams, state: SamplerState):
    """u_t ``(*B, N, C)`` of the bin ``state.t`` from the ring buffers."""
    return contract(spec, params, ring_traces(spec.channels, state))


def step(spec: WTANetwork, params: WTAParams, state: SamplerState, key, input_t=None, clamp_t=None):
    """Sample one bin: each unit draws silence or a symbol from softmax(0, u_t), then the past
    advances.

    Args:
        spec, params: the network. state: :class:`~probsnn.SamplerState` of the channels
            (:func:`init_wta_state`). key: PRNG key of this bin. input_t: ``(*B, M)`` or None.
        clamp_t: optional one-hot ``(*B, N, C)``; the visible units take these spikes.

    Returns:
        ``(new_state, (spikes_t, u_t))``, spikes_t one-hot ``(*B, N, C)`` uint8, u_t float.

    Raises:
        TypeError: a key that is not a PRNG key, a state that is not a SamplerState, complex
            inputs.
        ValueError: params that fail :meth:`WTANetwork.check_params`, a state of another
            network, inputs given to a network without inputs or missing for one that needs
            them, inputs or clamp_t of the wrong shape, clamp_t that is not one-hot.
    """
    key = _checks.prng_key(key, "key")
    spec.check_params(params)
    input_t, clamp_t = check_step(
        spec.channels,
        state,
        input_t,
        clamp_t,
        clamp_tail=(spec.n_units, spec.n_symbols),
    )
    if clamp_t is not None:
        check_one_hot(clamp_t, "clamp_t", spec.n_symbols, min_ndim=2)
    return _step(spec, params, state, key, input_t, clamp_t)


def _step(spec: WTANetwork, params: WTAParams, state: SamplerState, key, input_t, clamp_t):
    """:func:`step` without the argument checks (the body of the sampler's scan)."""
    u = step_potentials(spec, params, state)
    symbols = jax.random.categorical(key, _logits(u), axis=-1)
    spikes_t = jax.nn.one_hot(symbols, spec.n_symbols + 1, dtype=jnp.uint8)[..., 1:]
    if clamp_t is not None:
        spikes_t = jnp.where(jnp.asarray(spec.visible)[:, None], clamp_t, spikes_t)
    flat = spikes_t.reshape(*spikes_t.shape[:-2], -1)
    return advance(state, flat, input_t), (spikes_t, u)


def sample(
    spec: WTANetwork,
    params: WTAParams,
    key,
    n_steps,
    n_trials=None,
    inputs=None,
    return_potentials=False,
    clamp=None,
):
    """Sample symbol spike trains bin by bin from silence (``lax.scan`` over :func:`step`).

    With ``clamp`` the visible units are set to the given spikes and only the hidden ones are
    drawn: a sample of q(h‖x), the hidden units' own dynamics (docs/theory.md §3).

    Args:
        spec, params: the network. key: PRNG key, split once per bin.
        n_steps: T. n_trials: number of trials, None for unbatched output.
        inputs: ``(T, M)`` shared or ``(n_trials, T, M)``, required when ``spec.n_inputs`` > 0.
        return_potentials: also return u.
        clamp: one-hot ``(T, N_visible, C)`` shared or ``(n_trials, T, N_visible, C)``, units in
            the order of ``numpy.flatnonzero(spec.visible)``.

    Returns:
        one-hot uint8 spikes ``(n_trials, T, N, C)`` (``(T, N, C)`` without trials), and with
        ``return_potentials`` also u of the same shape.

    Raises:
        ValueError, TypeError: on bad sizes, parameter shapes, inputs or clamped spikes.
    """
    spec.check_params(params)
    request = (key, n_steps, n_trials, inputs, clamp, return_potentials)
    return run_sampler(_sample, _clamped_spikes, spec, params, *request)


@partial(jax.jit, static_argnums=(0, 3, 4, 7))
def _sample(spec, params, key, n_steps, n_trials, inputs, clamp, full):
    def step_fn(state, step_key, input_t, clamp_t):
        return _step(spec, params, state, step_key, input_t, clamp_t)

    state = _init_state(spec.channels, (n_trials,), jnp.float32)
    return scan_bins(step_fn, state, key, n_steps, inputs, clamp, full)


def _clamped_spikes(spec: WTANetwork, clamp, n_steps: int, n_trials: int, batched: bool):
    """Validate ``clamp``; return uint8 ``(n_trials, T, N, C)`` with the visible units filled."""
    if clamp is None:
        return None
    n_visible = int(np.sum(spec.visible))
    clamp = check_one_hot(clamp, "clamp", spec.n_symbols, n_visible)
    shared = (n_steps, n_visible, spec.n_symbols)
    clamp = _checks.per_trial(clamp, "clamp", shared, n_trials, batched, jnp.uint8)
    full = jnp.zeros((n_trials, n_steps, spec.n_units, spec.n_symbols), jnp.uint8)
    return full.at[:, :, np.flatnonzero(spec.visible)].set(clamp)
