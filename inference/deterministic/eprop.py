"""E-prop: online gradients for a spiking layer under a leaky read-out (Bellec et al. 2020).

The network is ``LIFNetwork((M, N, C), output="membrane")``: one spiking layer of N LIF, ALIF or
SRM0 neurons (recurrent or not) and C leaky read-out integrators whose voltages y_t are the
logits of the class in every bin (notation of :mod:`probsnn.lif`). The loss to minimise is the
per-bin cross-entropy averaged over the B trials and T bins,

    E = (1 / BT) Σ_{b,t} −log softmax(y_t)_{c_b},      ∂E/∂y_t = (π_t − onehot(c_b)) / BT,

with π_t = softmax(y_t). The read-out integrates the hidden spikes with the network's own two
filters, I^o_t = α_s I^o_{t−1} + z_t W^out and y_t = α y_{t−1} + I^o_t + b^out, so y_t is
z filtered by the causal kernel κ of these two recursions.

**Eligibility vectors.** For a hidden synapse θ = W_{ij} (presynaptic signal p_t: the input
x_{i,t} for W^in, the previous-bin spike z_{i,t−1} for W^rec) or the bias b_j, neuron j's state
(I, v, a) carries the vector ε_t = ∂(I_t, v_t, a_t)/∂θ along the neuron's own dynamics, and
e_t = ∂z_t/∂θ = ψ_t (ε^v_t − β ε^a_t) with the pseudo-derivative ψ_t = h(m_t) (zero in refractory
bins; the straight-through derivative of the sampled spike at T > 0):

    ε^I_t = α_s ε^I_{t−1} + p_t + W^rec_{jj} e_{t−1}                (p_t = 0 for the bias)
    ε^v_t = α ε^v_{t−1} + ε^I_t + [θ = b_j] − ϑ e_{t−1}                       reset "subtract"
    ε^v_t = α (1 − z_{t−1}) ε^v_{t−1} + ε^I_t + [θ = b_j] − α v_{t−1} e_{t−1}  reset "zero"
    ε^v_t = α ε^v_{t−1} + ε^I_t + [θ = b_j]                                    reset "none"
    ε^a_t = ρ ε^a_{t−1} + e_{t−1}                                              (ALIF)

The current-based synapse filters the input twice (ε^I, then ε^v). The neuron's own previous
spike acts through the reset, the adaptation and W^rec_{jj}, so the voltage's self-derivative is
α − ϑψ_{t−1} ("subtract") or α(1 − z_{t−1}) − α v_{t−1} ψ_{t−1} ("zero"), as in BPTT; with
``spec.detach_reset`` the reset's terms in e_{t−1} (−ϑ e_{t−1}, −α v_{t−1} e_{t−1}) are dropped,
the reset still acting in the forward pass.

**Eligibility traces and learning signal.** The traces e_t are filtered by the read-out's two
recursions, ē = κ ∗ e (f_t = α_s f_{t−1} + e_t, ē_t = α ē_{t−1} + f_t), and meet the learning
signal L_{t,j} = Σ_k B_{jk} (π_{t,k} − onehot_k), with the ``(N, C)`` feedback matrix B = W^out
("symmetric": the error sent back through the read-out's own weights) or a fixed random matrix
("random": feedback alignment, Lillicrap et al. 2016; Murray 2019):

    ∂E/∂θ_{ij} ≈ (1 / BT) Σ_{b,t} L_{t,j} ē_{t,ij}.

E-prop keeps only neuron j's own path from θ to z_t (e_t), so the estimate is EXACT for a
network without recurrent weights between distinct neurons (with symmetric feedback): there
the other neurons' spikes do not depend on θ, and κ carries every later effect of z_t on the
read-out. With recurrence, the paths through the other neurons are dropped (Bellec et al. 2020).
The read-out's gradients are exact: ∂E/∂W^out = (1/BT) Σ (κ ∗ z)_tᵀ (π_t − onehot) and
∂E/∂b^out = (1/BT) Σ_t (Σ_{s≤t} α^{t−s}) Σ_b (π_t − onehot).

**Memory.** One forward pass over the bins carries the state, the eligibility vectors and traces
``(B, P, N)`` (P = M, + N when recurrent, + 1 for the bias) and the running sums: nothing of
size T is built besides the inputs, which are read one bin at a time (:func:`eprop_gradient`
compiles to a loop whose temporary memory does not depend on T). The carry is all the next bin
needs, so a long recording could be fed in chunks of bins, each chunk continuing the previous
chunk's carry.

References: Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020), Nature
Communications 11:3625; Murray (2019), eLife 8:e43299 (random feedback in recurrent networks).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks, lif
from probsnn import surrogate as _surrogate
from probsnn.inference._steps import checked
from probsnn.inference._training import Trainer
from probsnn.inference.deterministic._arguments import check_key

#: The feedback matrices of the learning signal: W^outᵀ or a fixed random matrix.
FEEDBACKS = ("symmetric", "random")


class EpropState(NamedTuple):
    """State of :func:`eprop_trainer`.

    Attributes:
        params: the network's tuple of two :class:`probsnn.lif.LayerParams`.
        opt_state: the optimizer's state.
        feedback: the fixed ``(N, C)`` random feedback matrix, or None (symmetric feedback).
    """

    params: tuple
    opt_state: object
    feedback: jax.Array | None


class EpropInfo(NamedTuple):
    """What a step of :func:`eprop_trainer` reports (scalars).

    Attributes:
        loss: the per-bin cross-entropy averaged over bins and trials, before the update.
        accuracy: the fraction of trials whose class is predicted: the class of least per-bin
            loss, argmax_c Σ_t log softmax(y_t)_c.
        spike_rate: hidden spikes per neuron per bin.
    """

    loss: jax.Array
    accuracy: jax.Array
    spike_rate: jax.Array


class _Carry(NamedTuple):
    """Everything e-prop carries from one bin to the next (no (T, …) array)."""

    hidden: lif.LayerState  # (B, N)
    readout: lif.LayerState  # (B, C)
    eps_current: jax.Array  # ε^I (B, P, N), P = M (+ N if recurrent) + 1 (the bias row)
    eps_voltage: jax.Array  # ε^v (B, P, N)
    eps_adaptation: jax.Array | None  # ε^a (B, P, N) for ALIF
    spike_sensitivity: jax.Array  # e_{t-1} = ∂z_{t-1}/∂θ (B, P, N)
    trace_synaptic: jax.Array  # f_t = α_s f_{t-1} + e_t (B, P, N)
    trace: jax.Array  # ē_t = α ē_{t-1} + f_t (B, P, N)
    spikes_synaptic: jax.Array  # α_s-filtered hidden spikes (B, N)
    spikes_filtered: jax.Array  # κ ∗ z (B, N)
    bias_filter: jax.Array  # Σ_{s<=t} α^{t-s}, scalar
    grad_hidden: jax.Array  # Σ L ē over trials and bins (P, N)
    grad_out: jax.Array  # (N, C)
    grad_out_bias: jax.Array  # (C,)
    loss_sum: jax.Array
    log_prob_sum: jax.Array  # Σ_t log softmax(y_t) (B, C)
    spike_sum: jax.Array
    bins: jax.Array  # bins done (int32), the index of the next bin


def check_network(spec) -> lif.LIFNetwork:
    """Raise unless ``spec`` is a :class:`probsnn.lif.LIFNetwork` of one spiking layer under a
    membrane read-out (sizes ``(M, N, C)``, ``output="membrane"``); return it.

    Raises:
        TypeError: not a LIFNetwork. ValueError: another architecture.
    """
    if not isinstance(spec, lif.LIFNetwork):
        raise TypeError(f"spec must be a probsnn.lif.LIFNetwork, got {type(spec).__name__}")
    if spec.output != "membrane" or spec.n_layers != 2:
        raise ValueError(
            "e-prop needs one spiking layer under a membrane read-out: LIFNetwork((M, N, C), "
            f"output='membrane'), got sizes={spec.sizes}, output={spec.output!r}"
        )
    return spec


def random_feedback(spec: lif.LIFNetwork, key, dtype=jnp.float32) -> jax.Array:
    """A fixed random feedback matrix B_{jk} ~ N(0, 1/N), ``(N, C)`` like W^out, for the
    learning signal L_{t,j} = Σ_k B_{jk} (π_{t,k} − onehot_k) (Lillicrap et al. 2016; Murray
    2019).

    Raises:
        TypeError: a bad spec or key. ValueError: a spec e-prop does not handle.
    """
    check_network(spec)
    key = _checks.prng_key(key)
    _checks.float_dtype(dtype)
    n_hidden, n_classes = spec.sizes[1:]
    return jax.random.normal(key, (n_hidden, n_classes), dtype) / math.sqrt(n_hidden)


def _check_batch(spec, inputs, labels):
    """``inputs (B, T, M)`` finite real and ``labels (B,)`` integers in [0, C)."""
    inputs = _checks.real_array(inputs, "inputs", shape_tail=(spec.n_inputs,), min_ndim=3)
    if inputs.ndim != 3:
        raise ValueError(f"inputs must have shape (B, T, M), got {tuple(inputs.shape)}")
    _checks.nonempty(inputs, "inputs")
    if not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    if not (jnp.issubdtype(labels.dtype, jnp.integer) and labels.dtype != bool):
        raise TypeError(f"labels must be an integer array of classes, got dtype {labels.dtype}")
    if tuple(labels.shape) != inputs.shape[:1]:
        raise ValueError(
            f"labels must have shape (B,) = {inputs.shape[:1]} (one class per trial), got "
            f"{tuple(labels.shape)}"
        )
    n_classes = spec.sizes[-1]
    if _checks.is_concrete(labels):
        values = np.asarray(labels)
        if np.any((values < 0) | (values >= n_classes)):
            bad = values[(values < 0) | (values >= n_classes)].flat[0]
            raise ValueError(f"labels must lie in [0, {n_classes}), found {bad}")
    return inputs, labels


def _check_feedback_matrix(spec, matrix):
    expected = tuple(spec.sizes[1:])
    matrix = _checks.real_array(matrix, "feedback_matrix")
    if tuple(matrix.shape) != expected:
        raise ValueError(
            f"feedback_matrix must have the shape of W^out, (N, C) = {expected}, got "
            f"{tuple(matrix.shape)}"
        )
    return matrix


def eprop_gradient(spec, params, inputs, labels, *, feedback_matrix=None, key=None):
    """The e-prop estimate of ∂E/∂θ for every parameter (equations in the module docstring),
    in one forward pass over the bins (jitted; memory independent of T).

    Exact, up to rounding, for a network without recurrent weights between distinct neurons
    and symmetric feedback; the read-out's gradients are always exact.

    Args:
        spec: ``LIFNetwork((M, N, C), output="membrane", ...)``.
        params: its tuple of two :class:`probsnn.lif.LayerParams`.
        inputs: ``(B, T, M)`` inputs of every bin.
        labels: ``(B,)`` integer classes in [0, C).
        feedback_matrix: optional ``(N, C)`` matrix B of the learning signal
            L_{t,j} = Σ_k B_{jk} (π_{t,k} − onehot_k) (e.g. :func:`random_feedback`); None
            uses W^out (symmetric feedback).
        key: a PRNG key, required at temperature T > 0 (the spikes are sampled; the key of bin
            t is ``jax.random.fold_in(key, t)``).

    Returns:
        A gradient pytree with the structure of ``params`` (the sign of ``jax.grad``; zeros for
        the read-out's unused recurrent weights).

    Raises:
        TypeError, ValueError: a bad spec, params, inputs, labels, feedback matrix or key,
            each named.
    """
    check_network(spec)
    params = spec.check_params(params)
    inputs, labels = _check_batch(spec, inputs, labels)
    if feedback_matrix is not None:
        feedback_matrix = _check_feedback_matrix(spec, feedback_matrix)
    key = check_key(spec, key)
    grads, _ = _eprop(spec, params, feedback_matrix, inputs, labels, key)
    return grads


@jax.jit(static_argnames="spec")
def _eprop(spec, params, feedback, inputs, labels, key):
    """``(grads, (loss, predicted classes (B,), spike_rate))`` of one batch."""
    dtype = jnp.result_type(*jax.tree.leaves(params))
    carry = _start(spec, inputs.shape[0], dtype)
    carry = _advance(spec, params, feedback, carry, inputs, labels, key)
    return _finish(spec, params, carry)


def _start(spec, n_batch: int, dtype) -> _Carry:
    n_inputs, n_hidden, n_classes = spec.sizes
    n_pre = n_inputs + n_hidden * spec.recurrent + 1
    elig = jnp.zeros((n_batch, n_pre, n_hidden), dtype)
    zero = jnp.zeros((), dtype)
    hidden, readout = lif.initial_state(spec, n_batch, dtype)
    return _Carry(
        hidden=hidden,
        readout=readout,
        eps_current=elig,
        eps_voltage=elig,
        eps_adaptation=elig if spec.neuron == "alif" else None,
        spike_sensitivity=elig,
        trace_synaptic=elig,
        trace=elig,
        spikes_synaptic=jnp.zeros((n_batch, n_hidden), dtype),
        spikes_filtered=jnp.zeros((n_batch, n_hidden), dtype),
        bias_filter=zero,
        grad_hidden=jnp.zeros((n_pre, n_hidden), dtype),
        grad_out=jnp.zeros((n_hidden, n_classes), dtype),
        grad_out_bias=jnp.zeros((n_classes,), dtype),
        loss_sum=zero,
        log_prob_sum=jnp.zeros((n_batch, n_classes), dtype),
        spike_sum=zero,
        bins=jnp.zeros((), jnp.int32),
    )


def _advance(spec, params, feedback, carry: _Carry, inputs, labels, key) -> _Carry:
    """Run the bins of ``inputs (B, T', M)`` (a whole recording or the next chunk of one) from
    ``carry``, reading one bin at a time."""
    dtype = carry.eps_voltage.dtype
    targets = jax.nn.one_hot(labels, spec.sizes[-1], dtype=dtype)
    feedback = params[1].w_in if feedback is None else jnp.asarray(feedback, dtype)

    def body(t, carry):
        drive = jax.lax.dynamic_index_in_dim(inputs, t, axis=1, keepdims=False).astype(dtype)
        bin_key = None if key is None else jax.random.fold_in(key, carry.bins)
        return _bin(spec, params, feedback, targets, carry, drive, bin_key)

    return jax.lax.fori_loop(0, inputs.shape[1], body, carry)


def _voltage_derivatives(spec, previous: lif.LayerState):
    """(∂v_t/∂v_{t−1}, ∂v_t/∂z_{t−1}) of the hidden neurons, broadcastable to (B, P, N)."""
    reset_gain = 0.0 if spec.detach_reset else 1.0
    if spec.reset == "subtract":
        return spec.alpha, -spec.threshold * reset_gain
    if spec.reset == "zero":
        decay = spec.alpha * (1.0 - previous.spikes)[:, None, :]
        return decay, -spec.alpha * reset_gain * previous.voltage[:, None, :]
    return spec.alpha, 0.0


def _bin(spec, params, feedback, targets, carry: _Carry, drive, key) -> _Carry:
    """One bin: the network's step, the eligibility vectors and traces, the sums."""
    hidden_params, out_params = params
    previous = carry.hidden
    hidden, (spikes, _, margin, free) = lif.layer_step(spec, 0, hidden_params, previous, drive, key)
    readout, (_, output, _, _) = lif.layer_step(spec, 1, out_params, carry.readout, spikes, None)

    # eligibility vectors ε_t and e_t = ∂z_t/∂θ (rows: inputs, previous spikes, bias)
    bias_column = jnp.ones_like(drive[:, :1])
    presynaptic = [drive, previous.spikes] if spec.recurrent else [drive]
    current_drive = jnp.concatenate([*presynaptic, jnp.zeros_like(bias_column)], axis=1)
    bias_drive = jnp.concatenate([*(jnp.zeros_like(p) for p in presynaptic), bias_column], axis=1)
    before = carry.spike_sensitivity  # e_{t-1}
    eps_current = spec.alpha_syn * carry.eps_current + current_drive[:, :, None]
    if spec.recurrent:
        eps_current = eps_current + jnp.diagonal(hidden_params.w_rec) * before
    decay, reset = _voltage_derivatives(spec, previous)
    eps_voltage = decay * carry.eps_voltage + eps_current + bias_drive[:, :, None] + reset * before
    eps_margin = eps_voltage
    eps_adaptation = carry.eps_adaptation
    if spec.neuron == "alif":
        eps_adaptation = spec.rho * eps_adaptation + before
        eps_margin = eps_voltage - spec.adapt_strength * eps_adaptation
    pseudo = _surrogate.surrogate_derivative(margin, spec.surrogate, spec.surrogate_scale)
    pseudo = jnp.where(free, pseudo, 0.0)
    sensitivity = pseudo[:, None, :] * eps_margin

    # eligibility traces filtered by the read-out, learning signal, gradient sums
    trace_synaptic = spec.alpha_syn * carry.trace_synaptic + sensitivity
    trace = spec.alpha * carry.trace + trace_synaptic
    error = jax.nn.softmax(output, axis=-1) - targets  # (B, C)
    signal = error @ feedback.T  # L_t (B, N)
    spikes_synaptic = spec.alpha_syn * carry.spikes_synaptic + spikes
    spikes_filtered = spec.alpha * carry.spikes_filtered + spikes_synaptic
    bias_filter = spec.alpha * carry.bias_filter + 1.0
    log_probs = jax.nn.log_softmax(output, axis=-1)
    return _Carry(
        hidden=hidden,
        readout=readout,
        eps_current=eps_current,
        eps_voltage=eps_voltage,
        eps_adaptation=eps_adaptation,
        spike_sensitivity=sensitivity,
        trace_synaptic=trace_synaptic,
        trace=trace,
        spikes_synaptic=spikes_synaptic,
        spikes_filtered=spikes_filtered,
        bias_filter=bias_filter,
        grad_hidden=carry.grad_hidden + jnp.einsum("bpn,bn->pn", trace, signal),
        grad_out=carry.grad_out + spikes_filtered.T @ error,
        grad_out_bias=carry.grad_out_bias + bias_filter * error.sum(axis=0),
        loss_sum=carry.loss_sum - jnp.sum(targets * log_probs),
        log_prob_sum=carry.log_prob_sum + log_probs,
        spike_sum=carry.spike_sum + spikes.sum(),
        bins=carry.bins + 1,
    )


def _finish(spec, params, carry: _Carry):
    """The averaged gradients (structure of params) and (loss, predicted classes (B,), spike
    rate)."""
    n_inputs, n_hidden, _ = spec.sizes
    n_batch = carry.log_prob_sum.shape[0]
    count = n_batch * carry.bins.astype(carry.loss_sum.dtype)
    grad_hidden = carry.grad_hidden / count
    hidden_params, out_params = params
    w_rec = grad_hidden[n_inputs:-1] if spec.recurrent else jnp.zeros_like(hidden_params.w_rec)
    grads = (
        lif.LayerParams(grad_hidden[:n_inputs], w_rec, grad_hidden[-1]),
        lif.LayerParams(
            carry.grad_out / count, jnp.zeros_like(out_params.w_rec), carry.grad_out_bias / count
        ),
    )
    predicted = jnp.argmax(carry.log_prob_sum, axis=-1)
    return grads, (carry.loss_sum / count, predicted, carry.spike_sum / (count * n_hidden))


def eprop_trainer(spec, optimizer, *, feedback: str = "symmetric", key=None) -> Trainer:
    """E-prop as a trainer: one gradient (:func:`eprop_gradient`) and one optimizer update per
    batch.

    Args:
        spec: ``LIFNetwork((M, N, C), output="membrane", ...)`` (LIF, ALIF or SRM0 neurons,
            recurrent or not, any temperature).
        optimizer: an optax transformation; it receives the gradient of the loss to minimise.
        feedback: ``"symmetric"`` (B = W^out in the learning signal) or ``"random"`` (a fixed
            random B drawn from ``key`` by :func:`random_feedback` at ``init``).
        key: a PRNG key for the random feedback matrix; only with ``feedback="random"``.

    Returns:
        :class:`~probsnn.inference.Trainer`: ``init(params) -> EpropState``;
        ``step(key, state, batch) -> (EpropState, EpropInfo)`` with ``batch = (inputs (B, T, M),
        labels (B,))``; ``key`` samples the spikes at T > 0 and is unused (may be None) at
        T = 0. The step is jitted and compiles once per batch shape.

    Raises:
        TypeError: a bad spec or optimizer, a missing or bad key for random feedback; at init,
            bad params; at a step, a bad key or batch (named).
        ValueError: a spec that is not one spiking layer under a membrane read-out, an unknown
            feedback, a key given with symmetric feedback; at init and step, values that do not
            fit (named).
    """
    check_network(spec)
    _checks.optimizer(optimizer)
    feedback = _checks.option(feedback, "feedback", FEEDBACKS)
    if feedback == "random":
        if key is None:
            raise TypeError("key is required with feedback='random' (it draws the matrix)")
        key = _checks.prng_key(key)
    elif key is not None:
        raise ValueError("key is only used with feedback='random'; leave it None")

    def init(params) -> EpropState:
        params = spec.check_params(params)
        dtype = jnp.result_type(*jax.tree.leaves(params))
        matrix = random_feedback(spec, key, dtype) if feedback == "random" else None
        return EpropState(params, optimizer.init(params), matrix)

    def check_batch(state, batch):
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise TypeError(
                f"batch must be a pair (inputs (B, T, M), labels (B,)), got {type(batch).__name__}"
            )
        _check_batch(spec, *batch)

    @jax.jit
    def step(key, state: EpropState, batch):
        inputs, labels = batch
        sampling = key if spec.temperature > 0 else None
        grads, (loss, predicted, rate) = _eprop(
            spec, state.params, state.feedback, inputs, labels, sampling
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        accuracy = jnp.mean(predicted == labels)
        return EpropState(params, opt_state, state.feedback), EpropInfo(loss, accuracy, rate)

    return Trainer(init, checked(step, check_batch, uses_key=spec.temperature > 0))


__all__ = [
    "FEEDBACKS",
    "EpropInfo",
    "EpropState",
    "check_network",
    "eprop_gradient",
    "eprop_trainer",
    "random_feedback",
]
