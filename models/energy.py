"""Layered Hopfield-energy networks for equilibrium propagation (``probsnn.models.energy``).

A network has a clamped input layer ``x = s_0`` and free layers ``s_1 .. s_L`` (hidden, then output)
connected in a chain by weights ``W_l`` of shape ``(n_{l-1}, n_l)``. With activation ρ its energy is
(Scellier & Bengio 2017, Front. Comput. Neurosci. 11:24, the layered form of docs/theory.md §7)

    E(s) = Σ_{l≥1} [ ½‖s_l‖² − b_l·ρ(s_l) ] − Σ_{l≥1} ρ(s_{l−1})ᵀ W_l ρ(s_l),     ρ(s_0) := x,

and the total energy of the nudged system is ``F = E + β C``. Two costs are offered:

* ``"squared_error"``: ``C = ½‖s_L − d‖²`` on the output layer's state (the paper's choice);
* ``"cross_entropy"``: the last weight matrix is a readout outside the energy (Laborieux et al.
  2021, Front. Neurosci. 15:633674): ``logits = ρ(s_L) W_out + b_out``,
  ``C = −Σ_k d_k log softmax(logits)_k``; the free layers are then the hidden layers only.

Arrays are ``(batch, units)``; every function maps over the batch and returns per-example values.
The input is used as given (it should lie in ρ's range, e.g. pixel intensities in [0, 1]).

With the hard sigmoid ρ(s) = clip(s, 0, 1) the states live in the box [0, 1] (the paper restricts
them there because ρ is flat outside), so the relaxation is a projected gradient descent and
:func:`project` clips onto the box; smooth activations leave the states unconstrained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from itertools import pairwise
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks

ACTIVATIONS = ("hard_sigmoid", "sigmoid", "tanh")
COSTS = ("squared_error", "cross_entropy")


@jax.custom_jvp
def hard_sigmoid(s):
    """ρ(s) = clip(s, 0, 1), with derivative 1 on the closed interval [0, 1] and 0 outside."""
    return jnp.clip(s, 0.0, 1.0)


@hard_sigmoid.defjvp
def _hard_sigmoid_jvp(primals, tangents):
    (s,), (ds,) = primals, tangents
    return hard_sigmoid(s), ds * _hard_sigmoid_slope(s)


def _hard_sigmoid_slope(s):
    return ((s >= 0.0) & (s <= 1.0)).astype(s.dtype)


def _sigmoid_slope(s):
    value = jax.nn.sigmoid(s)
    return value * (1.0 - value)


def _tanh_slope(s):
    return 1.0 - jnp.tanh(s) ** 2


class Activation(NamedTuple):
    """An activation ρ, its derivative, its state box (or None) and whether it is holomorphic."""

    rho: Callable
    slope: Callable
    box: tuple[float, float] | None
    holomorphic: bool


_ACTIVATION_TABLE = {
    "hard_sigmoid": Activation(hard_sigmoid, _hard_sigmoid_slope, (0.0, 1.0), False),
    "sigmoid": Activation(jax.nn.sigmoid, _sigmoid_slope, None, True),
    "tanh": Activation(jnp.tanh, _tanh_slope, None, True),
}


@dataclasses.dataclass(frozen=True)
class EnergyNetwork:
    """Static description of a layered energy network (hashable, so jit treats it as static).

    Args:
        layer_sizes: ``(n_input, n_hidden..., n_output)``, at least two entries, all >= 1.
        activation: one of ``"hard_sigmoid"`` (default), ``"sigmoid"``, ``"tanh"``.
        cost: ``"squared_error"`` (default) or ``"cross_entropy"`` (needs a hidden layer).

    Raises:
        TypeError: when ``layer_sizes`` is not a tuple of integers, or the activation or the
            cost is not a string.
        ValueError: naming the argument when a size, the activation or the cost is bad.
    """

    layer_sizes: tuple[int, ...]
    activation: str = "hard_sigmoid"
    cost: str = "squared_error"

    def __post_init__(self):
        sizes = self.layer_sizes
        if not isinstance(sizes, tuple | list):
            raise TypeError(f"layer_sizes must be a tuple of integers, got {sizes!r}")
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes needs at least an input and an output size, got {sizes}")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
                raise ValueError(f"layer_sizes must hold integers >= 1, got {tuple(sizes)}")
        object.__setattr__(self, "layer_sizes", tuple(int(n) for n in sizes))
        _checks.option(self.activation, "activation", ACTIVATIONS)
        _checks.option(self.cost, "cost", COSTS)
        if self.cost == "cross_entropy" and len(sizes) < 3:
            raise ValueError(
                "cost='cross_entropy' puts the output in a readout, so layer_sizes needs at least "
                f"one hidden layer; got {tuple(sizes)}"
            )

    @property
    def n_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Sizes of the free (relaxing) layers."""
        if self.cost == "cross_entropy":
            return self.layer_sizes[1:-1]
        return self.layer_sizes[1:]

    @property
    def activation_fns(self) -> Activation:
        return _ACTIVATION_TABLE[self.activation]


class EnergyParams(NamedTuple):
    """Weights ``W_l`` of shape ``(n_{l-1}, n_l)`` and biases ``b_l`` of shape ``(n_l,)``, l = 1..L.

    With ``cost="cross_entropy"`` the last pair is the readout (outside the energy).
    """

    weights: tuple[jax.Array, ...]
    biases: tuple[jax.Array, ...]


def init_params(
    spec: EnergyNetwork, key: jax.Array, gain: float = 1.0, dtype=jnp.float32
) -> EnergyParams:
    """Glorot-uniform weights ``U(−a, a)``, ``a = gain · sqrt(6 / (n_in + n_out))`` (Glorot &
    Bengio 2010), zero biases. A gain below 1 keeps the energy convex at the start (the coupling's
    spectral norm below 1), so relaxations converge fast to a unique fixed point.

    Raises:
        TypeError: a spec that is not an EnergyNetwork, a key that is not a PRNG key (pass
            ``jax.random.key(0)``), a non-floating dtype.
        ValueError: a gain that is not finite.
    """
    if not isinstance(spec, EnergyNetwork):
        raise TypeError(f"spec must be an EnergyNetwork, got {type(spec).__name__}")
    key = _checks.prng_key(key, "key")
    gain = _checks.finite_float(gain, "gain")
    dtype = _checks.float_dtype(dtype, "dtype")
    sizes = spec.layer_sizes
    keys = jax.random.split(key, len(sizes) - 1)
    weights = tuple(
        jax.random.uniform(k, (n_in, n_out), dtype, -1.0, 1.0)
        * gain
        * np.sqrt(6.0 / (n_in + n_out))
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    )
    biases = tuple(jnp.zeros((n,), dtype) for n in sizes[1:])
    return EnergyParams(weights, biases)


def init_states(spec: EnergyNetwork, batch_size: int, dtype=jnp.float32) -> tuple[jax.Array, ...]:
    """Zero states ``(batch_size, n_l)`` for every free layer.

    Raises:
        TypeError, ValueError: a batch_size that is not an integer >= 1, a non-floating dtype.
    """
    batch_size = _checks.positive_int(batch_size, "batch_size")
    dtype = _checks.float_dtype(dtype, "dtype")
    return tuple(jnp.zeros((batch_size, n), dtype) for n in spec.state_sizes)


def check_batch(spec: EnergyNetwork, inputs, targets=None) -> tuple[jax.Array, jax.Array | None]:
    """Validate ``inputs (batch, n_inputs)`` and optional ``targets (batch, n_outputs)``.

    Raises:
        TypeError: for non-real arrays.
        ValueError: for wrong shapes or non-finite values.
    """
    inputs = _finite_matrix(inputs, "inputs", spec.n_inputs)
    if targets is None:
        return inputs, None
    targets = _finite_matrix(targets, "targets", spec.n_outputs)
    if targets.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"targets must have the batch size of inputs ({inputs.shape[0]}), "
            f"got shape {tuple(targets.shape)}"
        )
    return inputs, targets


def _finite_matrix(array, name: str, n_columns: int) -> jax.Array:
    if not hasattr(array, "dtype"):
        array = np.asarray(array)
    if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
        raise TypeError(f"{name} must be a real array, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise ValueError(
            f"{name} must have shape (batch, {n_columns}), got shape {tuple(array.shape)}"
        )
    _checks.nonempty(array, name)
    if not isinstance(array, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(array))):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return jnp.asarray(array, dtype=jnp.result_type(float))


def check_params(spec: EnergyNetwork, params) -> EnergyParams:
    """Validate that ``params`` is an :class:`EnergyParams` with the shapes ``spec`` implies.

    Shapes only: non-finite values pass, so that the relaxations can report a diverged
    network in their info (``RelaxInfo.converged``) rather than refuse it.

    Raises:
        TypeError: when it is not an EnergyParams.
        ValueError: naming the first wrong shape.
    """
    if not isinstance(params, EnergyParams):
        raise TypeError(f"params must be an EnergyParams, got {type(params).__name__}")
    sizes = spec.layer_sizes
    expected_w = list(pairwise(sizes))
    expected_b = [(b,) for b in sizes[1:]]
    got_w = [tuple(np.shape(w)) for w in params.weights]
    got_b = [tuple(np.shape(b)) for b in params.biases]
    if got_w != expected_w:
        raise ValueError(f"params.weights must have shapes {expected_w}, got {got_w}")
    if got_b != expected_b:
        raise ValueError(f"params.biases must have shapes {expected_b}, got {got_b}")
    return params


def check_states(spec: EnergyNetwork, states, batch_size: int, name: str = "states"):
    """Validate a tuple of free-layer states ``(batch_size, n_l)``; return it as a tuple."""
    expected = tuple((batch_size, n) for n in spec.state_sizes)
    shapes = tuple(tuple(np.shape(s)) for s in states) if isinstance(states, tuple | list) else None
    if shapes != expected:
        raise ValueError(f"{name} must be a tuple of arrays with shapes {expected}, got {shapes}")
    if any(not isinstance(s, jax.core.Tracer) and not np.all(np.isfinite(s)) for s in states):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return tuple(jnp.asarray(s) for s in states)


def activities(spec: EnergyNetwork, states) -> tuple[jax.Array, ...]:
    """Firing rates ρ(s_l) of the free layers."""
    rho = spec.activation_fns.rho
    return tuple(rho(s) for s in states)


def _energy_layers(spec: EnergyNetwork, params: EnergyParams):
    """The (W_l, b_l) pairs inside the energy (the readout, if any, is excluded)."""
    n = len(spec.state_sizes)
    return params.weights[:n], params.biases[:n]


def energy(spec: EnergyNetwork, params: EnergyParams, inputs, states) -> jax.Array:
    """Hopfield energy ``E(s)`` per example, shape ``(batch,)`` (equation: module docstring)."""
    weights, biases = _energy_layers(spec, params)
    rates = (inputs, *activities(spec, states))
    value = 0.0
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        s, pre, post = states[layer], rates[layer], rates[layer + 1]
        value = value + 0.5 * jnp.sum(s * s, axis=-1) - post @ b
        value = value - jnp.sum((pre @ w) * post, axis=-1)
    return value


def output_scores(spec: EnergyNetwork, params: EnergyParams, states) -> jax.Array:
    """The network's output ``(batch, n_outputs)``: the output states, or the readout's logits."""
    if spec.cost == "squared_error":
        return states[-1]
    return spec.activation_fns.rho(states[-1]) @ params.weights[-1] + params.biases[-1]


def cost(spec: EnergyNetwork, params: EnergyParams, states, targets) -> jax.Array:
    """Cost ``C`` per example, shape ``(batch,)``: ``½‖s_L − d‖²`` or softmax cross-entropy."""
    scores = output_scores(spec, params, states)
    if spec.cost == "squared_error":
        return 0.5 * jnp.sum((scores - targets) ** 2, axis=-1)
    return -jnp.sum(targets * _log_softmax(scores), axis=-1)


def _log_softmax(scores):
    """``log softmax`` along the last axis that also accepts complex scores (holomorphic EP)."""
    shift = jax.lax.stop_gradient(jnp.max(jnp.real(scores), axis=-1, keepdims=True))
    shifted = scores - shift
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=-1, keepdims=True))


def total_energy(spec: EnergyNetwork, params: EnergyParams, inputs, states, targets, beta):
    """``F = E + β C`` per example, shape ``(batch,)``; β may be complex (holomorphic EP)."""
    return energy(spec, params, inputs, states) + beta * cost(spec, params, states, targets)


def layer_drives(spec: EnergyNetwork, params: EnergyParams, inputs, rates) -> tuple[jax.Array, ...]:
    """Net input to each free layer from its neighbours' rates.

    ``h_l = ρ(s_{l−1}) W_l + ρ(s_{l+1}) W_{l+1}ᵀ + b_l`` with ``ρ(s_0) = x``. ``rates`` may be the
    true ρ(s) or any stand-in for it, such as the spikes of spiking EP (O'Connor et al. 2019).
    """
    weights, biases = _energy_layers(spec, params)
    below = (inputs, *rates[:-1])
    drives = []
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = below[layer] @ w + b
        if layer + 1 < len(weights):
            h = h + rates[layer + 1] @ weights[layer + 1].T
        drives.append(h)
    return tuple(drives)


def energy_gradient(spec: EnergyNetwork, params: EnergyParams, inputs, states, rates=None):
    """``∂E/∂s_l = s_l − ρ'(s_l) ⊙ h_l`` for every free layer, with ``h_l`` from
    :func:`layer_drives` evaluated at ``rates`` (default ρ(s))."""
    if rates is None:
        rates = activities(spec, states)
    slope = spec.activation_fns.slope
    drives = layer_drives(spec, params, inputs, rates)
    return tuple(s - slope(s) * h for s, h in zip(states, drives, strict=True))


def cost_gradient(spec: EnergyNetwork, params: EnergyParams, states, targets):
    """``∂C/∂s_l`` per example for every free layer (by autodiff; each example's cost only
    depends on its own states). Complex states take the holomorphic derivative."""
    holomorphic = jnp.iscomplexobj(states[0])
    total = lambda s: jnp.sum(cost(spec, params, s, targets))  # noqa: E731
    return jax.grad(total, holomorphic=holomorphic)(tuple(states))


def project(spec: EnergyNetwork, states):
    """Project states onto the activation's box ([0, 1] for the hard sigmoid), else identity."""
    box = spec.activation_fns.box
    if box is None:
        return tuple(states)
    return tuple(jnp.clip(s, *box) for s in states)


def predict(spec: EnergyNetwork, params: EnergyParams, states) -> jax.Array:
    """Predicted class per example, ``argmax`` of :func:`output_scores`, shape ``(batch,)``."""
    return jnp.argmax(output_scores(spec, params, states), axis=-1)
