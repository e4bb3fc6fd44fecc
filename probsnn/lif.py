"""Threshold neurons — SRM0, current-based LIF and adaptive LIF — with escape noise.

A :class:`LIFNetwork` is a stack of layers of sizes ``(M, N_1, …, N_L)``; layer l receives the
spikes of layer l − 1 in the same bin (the M inputs for l = 1) and, when ``recurrent``, its own
spikes of the previous bin. With decay factors α = e^{−Δ/τ_mem}, α_s = e^{−Δ/τ_syn},
ρ = e^{−Δ/τ_adapt} (a time constant of 0 gives a factor 0, ∞ gives 1), neuron i of a layer
evolves in bin t as

    I_t = α_s I_{t−1} + Σ_m W^in_{m i} x_{m,t} + Σ_j W^rec_{j i} z_{j,t−1}       (synaptic current)
    v_t = α v_{t−1} + I_t + b_i − ϑ z_{t−1}           reset "subtract"
    v_t = α v_{t−1} (1 − z_{t−1}) + I_t + b_i         reset "zero"
    v_t = α v_{t−1} + I_t + b_i                       reset "none" (SRM0)
    a_t = ρ a_{t−1} + z_{t−1},    A_t = ϑ + β a_t     (ALIF; A_t = ϑ otherwise)
    m_t = v_t − A_t                                   (the margin)

and spikes with

    z_t = H(m_t)                                       at temperature T = 0 (deterministic),
    z_t ~ Bernoulli(σ(m_t / T))                        at T > 0 (escape noise),

except during ``refractory`` bins after a spike, when z_t = 0. The neuron models follow
Gerstner & Kistler (2002) (SRM0: the potential is the linearly filtered input, as in the GLM,
with a hard threshold), Bellec et al. (2018, 2020) (ALIF, reset by subtraction) and
Neftci, Mostafa & Zenke (2019) (current-based LIF). With ``output="membrane"`` the last layer is
a layer of leaky integrators (no threshold, no reset): its voltages are the network's read-out.

At T > 0 the log-probability of the spikes is exact (:func:`log_prob`); as T → 0 the samples
converge to the deterministic spikes wherever no margin is exactly zero. Gradients through
:func:`simulate` use the surrogate derivative of :mod:`probsnn.surrogate` in place of H′; at
T > 0 the sampled spike carries the same surrogate (the straight-through form of Gygax & Zenke
2025). The equations and their references: docs/theory.md §10.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn import surrogate as _surrogate

NEURONS = ("lif", "alif", "srm0")
RESETS = ("subtract", "zero", "none")
OUTPUTS = ("spike", "membrane")
#: Bins per iteration of the compiled time loop: unrolling lets XLA fuse consecutive bins'
#: updates (forward + backward measured 20 % faster than 1 bin per iteration for 100 → 256 → 10
#: neurons × 64 trials × 200 bins on a 2-core CPU).
SCAN_UNROLL = 4


class LayerParams(NamedTuple):
    """One layer's parameters.

    Attributes:
        w_in: ``(M_l, N_l)`` weights from the layer below (or the inputs) ``[pre, post]``.
        w_rec: ``(N_l, N_l)`` recurrent weights ``[pre, post]`` (the diagonal is a
            self-connection, zero at :func:`init_params`, as the reset already acts on a
            neuron's own spike), or ``(0, N_l)`` for a feedforward layer.
        bias: ``(N_l,)``.
    """

    w_in: jax.Array
    w_rec: jax.Array
    bias: jax.Array


class LayerState(NamedTuple):
    """Per-layer dynamic state ``(B, N_l)`` each: current, voltage, adaptation, remaining
    refractory bins, spikes of the previous bin."""

    current: jax.Array
    voltage: jax.Array
    adaptation: jax.Array
    refractory: jax.Array
    spikes: jax.Array


class LIFRecord(NamedTuple):
    """What :func:`simulate` returns, one entry per layer (tuples of length L).

    Attributes:
        spikes: ``(..., T, N_l)`` float spikes (zeros for a membrane read-out layer).
        voltage: ``(..., T, N_l)`` membrane potentials v_t.
        margin: ``(..., T, N_l)`` m_t = v_t − A_t.
        free: ``(..., T, N_l)`` bool, the neuron could spike (not refractory; False for a
            membrane read-out layer).
    """

    spikes: tuple
    voltage: tuple
    margin: tuple
    free: tuple


def _decay(tau: float, dt: float) -> float:
    if tau == 0.0:
        return 0.0
    if math.isinf(tau):
        return 1.0
    return math.exp(-dt / tau)


def _time_constant(value, name: str) -> float:
    if isinstance(value, bool) or np.ndim(value) != 0 or np.iscomplexobj(value):
        raise TypeError(f"{name} must be a real number >= 0 (inf allowed), got {value!r}")
    value = float(value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be >= 0 (0: no memory, inf: no decay), got {value}")
    return value


@jax.tree_util.register_static
class LIFNetwork:
    """Static specification of a layered network of threshold neurons (hashable, jit-static).

    Args:
        sizes: ``(M, N_1, …, N_L)``, inputs then layer sizes, each >= 1, L >= 1.
        neuron: ``"lif"``, ``"alif"`` (adaptive threshold) or ``"srm0"`` (no reset).
        recurrent: every layer has recurrent weights from its own previous-bin spikes.
        reset: ``"subtract"`` (default for LIF/ALIF), ``"zero"`` or ``"none"`` (the only reset
            of SRM0, and its default).
        tau_mem, tau_syn, tau_adapt: time constants in seconds, >= 0 (0: no memory; inf: no
            decay, e.g. ``tau_mem=inf`` for integrate-and-fire neurons).
        adapt_strength: β >= 0, threshold increase per unit of adaptation (ALIF).
        threshold: ϑ, a finite real number.
        refractory: bins of silence after a spike, >= 0.
        dt: Δ, the bin width in seconds, > 0.
        temperature: T >= 0, the escape noise (0: deterministic spikes).
        output: ``"spike"`` or ``"membrane"`` (the last layer integrates without spiking).
        surrogate: the pseudo-derivative of H, one of :data:`probsnn.surrogate.SURROGATES`.
        surrogate_scale: its width s > 0; default T when T > 0 (the escape noise's own
            derivative), else 0.1.
        detach_reset: stop gradients through the reset term (Zenke & Vogels 2021).

    Raises:
        ValueError, TypeError: naming the offending argument.
    """

    def __init__(
        self,
        sizes,
        *,
        neuron: str = "lif",
        recurrent: bool = False,
        reset: str | None = None,
        tau_mem: float = 20e-3,
        tau_syn: float = 5e-3,
        tau_adapt: float = 200e-3,
        adapt_strength: float = 1.0,
        threshold: float = 1.0,
        refractory: int = 0,
        dt: float = 1e-3,
        temperature: float = 0.0,
        output: str = "spike",
        surrogate: str = "sigmoid",
        surrogate_scale: float | None = None,
        detach_reset: bool = False,
    ):
        if isinstance(sizes, str | bytes) or not hasattr(sizes, "__len__"):
            raise TypeError(f"sizes must be a sequence (M, N_1, ..., N_L), got {sizes!r}")
        if len(sizes) < 2:
            raise ValueError(f"sizes must hold the inputs and >= 1 layer, got {tuple(sizes)}")
        self.sizes = tuple(_checks.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes))
        self.neuron = _checks.option(neuron, "neuron", NEURONS)
        if not isinstance(recurrent, bool | np.bool_):
            raise TypeError(f"recurrent must be a bool, got {recurrent!r}")
        self.recurrent = bool(recurrent)
        default_reset = "none" if self.neuron == "srm0" else "subtract"
        self.reset = _checks.option(default_reset if reset is None else reset, "reset", RESETS)
        if self.neuron == "srm0" and self.reset != "none":
            raise ValueError(f"reset must be 'none' for neuron='srm0', got {self.reset!r}")
        self.tau_mem = _time_constant(tau_mem, "tau_mem")
        self.tau_syn = _time_constant(tau_syn, "tau_syn")
        self.tau_adapt = _time_constant(tau_adapt, "tau_adapt")
        self.adapt_strength = _checks.nonnegative_float(adapt_strength, "adapt_strength")
        self.threshold = _checks.finite_float(threshold, "threshold")
        self.refractory = _checks.positive_int(refractory, "refractory", minimum=0)
        self.dt = _checks.positive_float(dt, "dt")
        self.temperature = _checks.nonnegative_float(temperature, "temperature")
        self.output = _checks.option(output, "output", OUTPUTS)
        if self.output == "membrane" and len(self.sizes) < 3:
            raise ValueError(
                "output='membrane' needs at least one spiking layer below the read-out: sizes "
                f"must have >= 3 entries, got {self.sizes}"
            )
        self.surrogate = _checks.option(surrogate, "surrogate", _surrogate.SURROGATES)
        if surrogate_scale is None:
            surrogate_scale = self.temperature if self.temperature > 0 else 0.1
        self.surrogate_scale = _checks.positive_float(surrogate_scale, "surrogate_scale")
        self.detach_reset = bool(detach_reset)
        self.alpha = _decay(self.tau_mem, self.dt)
        self.alpha_syn = _decay(self.tau_syn, self.dt)
        self.rho = _decay(self.tau_adapt, self.dt)

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_spiking_layers(self) -> int:
        """Layers that spike (all but a membrane read-out layer)."""
        return self.n_layers - (self.output == "membrane")

    def _key(self):
        return tuple(sorted(vars(self).items()))

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __repr__(self):
        return (
            f"LIFNetwork(sizes={self.sizes}, neuron={self.neuron!r}, "
            f"recurrent={self.recurrent}, reset={self.reset!r}, T={self.temperature})"
        )

    def param_shapes(self) -> tuple:
        """The ``LayerParams`` shapes of every layer."""
        shapes = []
        for fan_in, size in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            rec = (size, size) if self.recurrent else (0, size)
            shapes.append(((fan_in, size), rec, (size,)))
        return tuple(shapes)

    def check_params(self, params) -> tuple:
        """Raise TypeError/ValueError unless ``params`` is a tuple of :class:`LayerParams` of
        this network's shapes with finite values; return it."""
        if not isinstance(params, tuple | list) or len(params) != self.n_layers:
            raise TypeError(
                f"params must be a tuple of {self.n_layers} LayerParams for sizes {self.sizes}, "
                f"got {type(params).__name__}"
                + (f" of length {len(params)}" if isinstance(params, tuple | list) else "")
            )
        for layer, (value, shapes) in enumerate(zip(params, self.param_shapes(), strict=True)):
            try:
                _checks.params_of_shapes(value, LayerParams, shapes, "LayerParams")
            except (TypeError, ValueError) as err:
                raise type(err)(f"layer {layer}: {err}") from None
        _checks.finite_tree(tuple(params), "params")
        return tuple(params)


def init_params(spec: LIFNetwork, key, gain: float = 1.0, recurrent_gain: float = 0.5) -> tuple:
    """Gaussian weights W^in ~ N(0, gain²/M_l) and W^rec ~ N(0, recurrent_gain²/N_l) (zero
    diagonal), zero biases.

    Args:
        spec: the network.
        key: a PRNG key.
        gain, recurrent_gain: standard deviations times √fan-in, >= 0.

    Returns:
        A tuple of :class:`LayerParams`, float32.

    Raises:
        TypeError: a bad key or spec. ValueError: a negative gain.
    """
    if not isinstance(spec, LIFNetwork):
        raise TypeError(f"spec must be a LIFNetwork, got {type(spec).__name__}")
    key = _checks.prng_key(key)
    gain = _checks.nonnegative_float(gain, "gain")
    recurrent_gain = _checks.nonnegative_float(recurrent_gain, "recurrent_gain")
    params = []
    for (shape_in, shape_rec, shape_bias), k in zip(
        spec.param_shapes(), jax.random.split(key, spec.n_layers), strict=True
    ):
        k_in, k_rec = jax.random.split(k)
        w_in = gain / math.sqrt(shape_in[0]) * jax.random.normal(k_in, shape_in)
        w_rec = jnp.zeros(shape_rec)
        if spec.recurrent:
            size = shape_rec[0]
            w_rec = recurrent_gain / math.sqrt(size) * jax.random.normal(k_rec, shape_rec)
            w_rec = w_rec * (1.0 - jnp.eye(size))
        params.append(LayerParams(w_in, w_rec, jnp.zeros(shape_bias)))
    return tuple(params)


def initial_state(spec: LIFNetwork, n_batch: int, dtype=jnp.float32) -> tuple:
    """All-zero :class:`LayerState` of every layer, ``(n_batch, N_l)`` arrays."""
    states = []
    for size in spec.sizes[1:]:
        zeros = jnp.zeros((n_batch, size), dtype)
        states.append(LayerState(zeros, zeros, zeros, jnp.zeros((n_batch, size), jnp.int32), zeros))
    return tuple(states)


def layer_step(
    spec: LIFNetwork, layer: int, params: LayerParams, state: LayerState, drive, key, forced=None
):
    """Advance one layer by one bin (equations in the module docstring). Unchecked hot-loop
    building block.

    Args:
        spec: the network. layer: the layer's index (the last may be a membrane read-out).
        params: the layer's :class:`LayerParams`. state: its :class:`LayerState` ``(B, N)``.
        drive: ``(B, M_l)`` spikes (or values) of the layer below in this bin.
        key: a PRNG key (used at T > 0 when ``forced`` is None), or None at T = 0.
        forced: optional ``(B, N)`` spikes to impose (teacher forcing, for :func:`log_prob`).

    Returns:
        ``(new_state, (spikes, voltage, margin, free))``, each output ``(B, N)``.
    """
    new, (spikes, voltage, margin, free) = _advance(
        spec, layer, params, state, drive @ params.w_in, key, forced
    )
    if free is None:
        free = jnp.ones(voltage.shape, bool)
    return new, (spikes, voltage, margin, free)


def _advance(
    spec: LIFNetwork,
    layer: int,
    params: LayerParams,
    state: LayerState,
    synaptic,
    key,
    forced,
    straight_through: bool = False,
):
    """:func:`layer_step` with the feedforward input ``synaptic = drive @ W_in`` computed by
    the caller (for a whole run at once, as one matrix product). ``free`` is None when the
    network has no refractory period (every bin is free). With ``straight_through``, forced
    spikes carry the surrogate derivative dz/dm = h(m), as sampled spikes do."""
    current = synaptic if spec.alpha_syn == 0.0 else spec.alpha_syn * state.current + synaptic
    if spec.recurrent:
        current = current + state.spikes @ params.w_rec
    reset_spikes = jax.lax.stop_gradient(state.spikes) if spec.detach_reset else state.spikes
    leak = spec.alpha * state.voltage
    if spec.reset == "subtract":
        voltage = leak + current + params.bias - spec.threshold * reset_spikes
    elif spec.reset == "zero":
        voltage = leak * (1.0 - reset_spikes) + current + params.bias
    else:
        voltage = leak + current + params.bias
    if spec.output == "membrane" and layer == spec.n_layers - 1:
        zeros = jnp.zeros_like(voltage)
        new = LayerState(current, voltage, state.adaptation, state.refractory, zeros)
        return new, (zeros, voltage, voltage, jnp.zeros(voltage.shape, bool))
    adaptation = state.adaptation
    if spec.neuron == "alif":
        adaptation = spec.rho * adaptation + state.spikes
        margin = voltage - (spec.threshold + spec.adapt_strength * adaptation)
    else:
        margin = voltage - spec.threshold
    if forced is not None and straight_through:
        spikes = _surrogate.straight_through(forced, margin, spec.surrogate, spec.surrogate_scale)
    elif forced is not None:
        spikes = forced
    elif spec.temperature > 0:
        draw = jax.random.bernoulli(key, jax.nn.sigmoid(margin / spec.temperature))
        draw = draw.astype(margin.dtype)
        spikes = _surrogate.straight_through(draw, margin, spec.surrogate, spec.surrogate_scale)
    else:
        spikes = _surrogate._spike(margin, spec.surrogate, spec.surrogate_scale)
    if spec.refractory == 0:
        new = LayerState(current, voltage, adaptation, state.refractory, spikes)
        return new, (spikes, voltage, margin, None)
    free = state.refractory == 0
    spikes = jnp.where(free, spikes, 0.0)
    refractory = jnp.where(
        jax.lax.stop_gradient(spikes) > 0, spec.refractory, jnp.maximum(state.refractory - 1, 0)
    )
    new = LayerState(current, voltage, adaptation, refractory.astype(jnp.int32), spikes)
    return new, (spikes, voltage, margin, free)


def _run(spec: LIFNetwork, params, inputs, key, forced, straight_through: bool = False):
    """Scan the layers over time; ``inputs (B, T, M)``, ``forced`` a tuple of ``(B, T, N_l)``
    or None (with ``straight_through``, the forced spikes carry the surrogate derivative).
    Returns an :class:`LIFRecord` of ``(B, T, N_l)`` arrays.

    One scan advances every layer in each bin, the feedforward products inside it: measured
    faster (forward + backward) than running the layers one after the other with each layer's
    input product taken over the whole run at once (34 against 49–78 ms for 100 → 256 → 10
    neurons, 64 trials, 200 bins, on a 2-core CPU)."""
    dtype = jnp.result_type(inputs, *jax.tree.leaves(params))
    n_batch, n_steps = inputs.shape[:2]
    keys = None if key is None else jax.random.split(key, (n_steps, spec.n_layers))

    def bin_step(states, slices):
        drive, bin_keys, bin_forced = slices
        new_states, outputs = [], []
        for layer in range(spec.n_layers):
            layer_forced = None
            if bin_forced is not None and layer < spec.n_spiking_layers:
                layer_forced = bin_forced[layer]
            state, out = _advance(
                spec,
                layer,
                params[layer],
                states[layer],
                drive @ params[layer].w_in,
                None if bin_keys is None else bin_keys[layer],
                layer_forced,
                straight_through,
            )
            new_states.append(state)
            outputs.append(out)
            drive = out[0]
        return tuple(new_states), tuple(outputs)

    time_major = jnp.swapaxes(inputs.astype(dtype), 0, 1)
    forced_tm = None
    if forced is not None:
        forced_tm = tuple(jnp.swapaxes(f.astype(dtype), 0, 1) for f in forced)
    _, outputs = jax.lax.scan(
        bin_step,
        initial_state(spec, n_batch, dtype),
        (time_major, keys, forced_tm),
        unroll=SCAN_UNROLL,
    )
    fields = ([], [], [], [])
    for spikes, voltage, margin, free in outputs:
        if free is None:
            free = jnp.ones(voltage.shape, bool)
        for field, value in zip(fields, (spikes, voltage, margin, free), strict=True):
            field.append(jnp.swapaxes(value, 0, 1))
    return LIFRecord(*(tuple(field) for field in fields))


def _batched_inputs(spec: LIFNetwork, inputs):
    inputs = _checks.real_array(inputs, "inputs", shape_tail=(spec.n_inputs,), min_ndim=2)
    _checks.nonempty(inputs, "inputs")
    lead = inputs.shape[:-2]
    flat = jnp.asarray(inputs)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        flat = flat.astype(jnp.float32)
    flat = flat.reshape((-1, *inputs.shape[-2:]))
    return flat, lead


def _unflatten(record: LIFRecord, lead) -> LIFRecord:
    return jax.tree.map(lambda a: a.reshape(lead + a.shape[1:]), record)


def simulate(spec: LIFNetwork, params, inputs, key=None) -> LIFRecord:
    """Run the network on ``inputs`` from rest (equations in the module docstring).

    Differentiable: gradients use the surrogate derivative of ``spec`` in place of H′.

    Args:
        spec: the network.
        params: a tuple of :class:`LayerParams` (:func:`init_params`).
        inputs: ``(..., T, M)`` input spikes or values in each bin.
        key: a PRNG key, required when ``spec.temperature > 0``.

    Returns:
        An :class:`LIFRecord` of ``(..., T, N_l)`` arrays per layer.

    Raises:
        TypeError, ValueError: a bad spec, params, inputs or key, each named.
    """
    if not isinstance(spec, LIFNetwork):
        raise TypeError(f"spec must be a LIFNetwork, got {type(spec).__name__}")
    params = spec.check_params(params)
    flat, lead = _batched_inputs(spec, inputs)
    if spec.temperature > 0:
        if key is None:
            raise TypeError(f"key is required at temperature {spec.temperature} > 0")
        key = _checks.prng_key(key)
    else:
        key = None
    return _unflatten(_simulate(spec, params, flat, key), lead)


@jax.jit
def _simulate(spec, params, inputs, key):
    return _run(spec, params, inputs, key, None)


def log_prob(spec: LIFNetwork, params, inputs, spikes) -> jax.Array:
    """Exact log-probability of the spikes of every spiking layer at temperature T > 0:

        log p(z | x) = Σ_{l,t,i free} z log σ(m_t/T) + (1 − z) log σ(−m_t/T),

    with the margins m_t computed under the given spikes (teacher forcing: resets, adaptation
    and recurrence see the spikes in ``spikes``). A spike in a refractory bin has probability
    zero (−inf).

    Args:
        spec: a network with ``temperature > 0``.
        params: a tuple of :class:`LayerParams`.
        inputs: ``(..., T, M)``.
        spikes: a tuple of ``(..., T, N_l)`` 0/1 arrays, one per spiking layer.

    Returns:
        ``(...)`` log-probabilities (float32).

    Raises:
        ValueError: temperature 0, or spikes whose shapes or values do not fit.
        TypeError: bad argument types.
    """
    if not isinstance(spec, LIFNetwork):
        raise TypeError(f"spec must be a LIFNetwork, got {type(spec).__name__}")
    if spec.temperature <= 0:
        raise ValueError("log_prob needs spec.temperature > 0 (deterministic spikes have none)")
    params = spec.check_params(params)
    flat, lead = _batched_inputs(spec, inputs)
    if not isinstance(spikes, tuple | list) or len(spikes) != spec.n_spiking_layers:
        raise TypeError(
            f"spikes must be a tuple of {spec.n_spiking_layers} arrays (one per spiking layer)"
        )
    forced = []
    for layer, s in enumerate(spikes):
        expected = (*lead, flat.shape[1], spec.sizes[layer + 1])
        s = _checks.spike_array(s, f"spikes[{layer}]")
        if tuple(s.shape) != expected:
            raise ValueError(f"spikes[{layer}] must have shape {expected}, got {tuple(s.shape)}")
        forced.append(jnp.asarray(s, flat.dtype).reshape(flat.shape[0], *expected[-2:]))
    return _log_prob(spec, params, flat, tuple(forced)).reshape(lead)


@jax.jit
def _log_prob(spec, params, inputs, forced):
    record = _run(spec, params, inputs, None, forced)
    dtype = record.margin[0].dtype
    return spike_log_prob(spec, record, tuple(f.astype(dtype) for f in forced))


def spike_log_prob(spec: LIFNetwork, record: LIFRecord, spikes) -> jax.Array:
    """``(B,)`` Σ over spiking layers, bins and neurons of the Bernoulli log-probabilities of
    ``spikes`` (tuple of ``(B, T, N_l)``) under the margins of ``record`` at spec's
    temperature. Unchecked building block of :func:`log_prob`."""
    total = 0.0
    for layer in range(spec.n_spiking_layers):
        z, m, free = spikes[layer], record.margin[layer], record.free[layer]
        logits = m / spec.temperature
        bernoulli = z * jax.nn.log_sigmoid(logits) + (1.0 - z) * jax.nn.log_sigmoid(-logits)
        impossible = jnp.where(z > 0, -jnp.inf, 0.0)
        total = total + jnp.where(free, bernoulli, impossible).sum(axis=(-2, -1))
    return total
