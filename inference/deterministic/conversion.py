"""ANN → SNN conversion: rate-coded integrate-and-fire networks and Bernoulli networks
(installed as ``probsnn.inference.deterministic.conversion``).

**The ANN.** A multilayer perceptron of sizes ``(M, N_1, …, N_L)`` (parameters: a tuple of
:class:`MLPLayer`), with hidden activations φ = ReLU or the logistic σ and a linear output:

    a_0 = x,    a_l = φ(a_{l−1} W_l + b_l)  (l < L),    o = a_{L−1} W_L + b_L   (logits),

trained by the cross-entropy −log softmax(o)_y (:func:`mlp_trainer`, through
:func:`probsnn.inference.fit`).

**Integrate-and-fire conversion** (:func:`convert_to_if`; Cao, Chen & Khosla 2015; Diehl et al.
2015; Rueckauer et al. 2017). Every unit becomes an IF neuron of :mod:`probsnn.lif` (no leak,
τ_mem = ∞; instantaneous synapses, τ_syn = 0; reset by subtraction; threshold ϑ = 1;
temperature 0):

    v_t = v_{t−1} + z^{l−1}_t W̃_l + b̃_l − z_{t−1},        z_t = H(v_t − 1),

with z^0_t the input in bin t (an analog value x per bin, or a rate-coded spike). Over n bins the
reset by subtraction keeps the count within one spike of the integrated drive, so the rate
r_l = Σ_t z^l_t / n tends to clip(r_{l−1} W̃_l + b̃_l, 0, 1) and, layer by layer, to
clip(a_l/λ_l, 0, 1). Data-based normalisation (Diehl et al. 2015; the robust percentile form of
Rueckauer et al. 2017) picks λ_l, the ``percentile``-th percentile of the positive activations of
layer l on calibration data (of the positive part of the logits for the output layer; λ_0 = 1,
the input taken as it is), and rescales

    W̃_l = W_l λ_{l−1}/λ_l,        b̃_l = b_l/λ_l       (the bias: a constant current per bin),

so that rates rarely saturate at one spike per bin. The class is the output neuron with the most
spikes (:func:`classify`); ties — frequent when few bins have passed — go to the larger residual
membrane after the last bin, v_T − ϑ z_T, which for an IF neuron equals the integrated drive
Σ_t (z^{L−1}_t W̃_L + b̃_L) minus ϑ times the count: the pair (count, residual) ranks the outputs
by their integrated logits. The accuracy approaches the ANN's as the bins grow
(:func:`accuracy_vs_steps`), with an O(1/n) rate error per layer.

**Bernoulli conversion** (:func:`convert_to_bernoulli`). An MLP with *sigmoid* hidden units
becomes a network of stochastic binary neurons (escape noise at temperature 1, no memory, no
threshold, no reset): in every bin t,

    v^l_t = z^{l−1}_t W_l + b_l,        z^l_t ~ Bernoulli(σ(v^l_t)),

the sigmoid belief network of Neal (1992) unrolled over T independent bins. A layer whose input
is exactly the ANN's input (the first, with the analog x in every bin) fires with probability
exactly σ(x W_1 + b_1), the ANN unit's output. Deeper, the input is the random z^{l−1}_t, and
E σ(z W + b) ≠ σ(E[z] W + b) (Jensen): the conversion is then a mean-field approximation whose
error grows with the weights' size, as it does for spike inputs z^0_t in place of their rate.
The output layer's probabilities are σ(logits); classification is by spike counts as above.

**Fine-tuning the Bernoulli network** (:func:`bernoulli_finetune_trainer`). The output neurons
are visible with a *label code*: the true class's output neuron spikes in every bin, the others
stay silent (:func:`label_code`); the hidden spikes h are latent. The criterion is the variational
bound with the network itself as proposal (Rezende & Gerstner 2014; Jang, Simeone, Gardner &
Grüning 2019),

    log p(y | x) = log E_{p(h|x)} p(y | h) ≥ E_{p(h|x)} log p(y | h) = ELBO,

whose gradient is estimated from K samples h^k ~ p(h | x) by the learning signal

    ∇ELBO ≈ (1/K) Σ_k [∇ log p(y | h^k) + (log p(y | h^k) − b_k) ∇ log p(h^k | x)],

unbiased for any baseline b_k independent of h^k (the leave-one-out mean of the other samples'
log p(y | h^j), or a constant). Both log-probabilities are exact (:func:`probsnn.lif.log_prob`'s
teacher-forced Bernoulli terms). The bound rewards hidden activity from which the label code
*typically* follows, which is what classification by the sampled spikes needs; the marginal
log p(y | x) itself would also reward rare hidden patterns that produce it.

References: Cao, Chen & Khosla (2015), IJCV 113:54; Diehl et al. (2015), IJCNN; Rueckauer et al.
(2017), Front. Neurosci. 11:682; Neal (1992), Artif. Intell. 56:71; Rezende & Gerstner (2014),
Front. Comput. Neurosci. 8:38; Jang, Simeone, Gardner & Grüning (2019), IEEE SPM 36(6):64.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks, lif
from probsnn.inference._steps import checked
from probsnn.inference._training import Trainer
from probsnn.inference.deterministic._arguments import check_key, check_labels, float_dtype

#: The hidden activations of :func:`mlp_forward`.
ACTIVATIONS = ("relu", "sigmoid")
#: The named baseline of :func:`bernoulli_finetune_trainer` (a float is a constant baseline).
BASELINES = ("leave-one-out",)


class MLPLayer(NamedTuple):
    """One dense layer of the MLP.

    Attributes:
        weight: ``(M_l, N_l)`` ``[pre, post]``.
        bias: ``(N_l,)``.
    """

    weight: jax.Array
    bias: jax.Array


class MLPState(NamedTuple):
    """:func:`mlp_trainer`'s state: ``params`` (tuple of :class:`MLPLayer`) and the
    optimiser's ``opt_state``."""

    params: tuple
    opt_state: Any


class MLPInfo(NamedTuple):
    """One step's scalars on the batch before the update: ``loss``, the mean cross-entropy
    −log softmax(o)_y; ``accuracy``, the fraction with argmax_c o_c = y."""

    loss: jax.Array
    accuracy: jax.Array


class FinetuneState(NamedTuple):
    """:func:`bernoulli_finetune_trainer`'s state: ``params`` (tuple of
    :class:`probsnn.lif.LayerParams`) and ``opt_state``."""

    params: tuple
    opt_state: Any


class FinetuneInfo(NamedTuple):
    """One step's estimates on the batch before the update (nats per sample of T bins).

    Attributes:
        loss: −(1/(K B)) Σ log p(y | h^k), an unbiased estimate of −ELBO, the loss minimised.
        accuracy: fraction of the K B sampled runs whose output spikes name the class
            (:func:`classify`'s rule).
        log_lik_bound: (1/B) Σ_b [log (1/K) Σ_k p(y_b | h^k)], the importance-weighted
            estimate of log p(y | x) with the network as proposal; its mean is a lower bound,
            tighter than the ELBO (Burda, Grosse & Salakhutdinov 2016).
    """

    loss: jax.Array
    accuracy: jax.Array
    log_lik_bound: jax.Array


# ---------------------------------------------------------------------------------------------
# the MLP


def init_mlp(sizes, key, *, gain: float = 1.0) -> tuple:
    """Gaussian weights W_l ~ N(0, gain²/M_l) and zero biases.

    Args:
        sizes: ``(M, N_1, …, N_L)``, every entry >= 1, L >= 1.
        key: a PRNG key.
        gain: the weights' standard deviation times √fan-in, >= 0 (√2 suits ReLU; He et al.
            2015).

    Returns:
        A tuple of L :class:`MLPLayer`, float32.

    Raises:
        TypeError: sizes not a sequence of integers, a bad key. ValueError: fewer than two
            sizes, a size < 1, a negative gain.
    """
    if isinstance(sizes, str | bytes) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a sequence (M, N_1, ..., N_L), got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold the inputs and >= 1 layer, got {tuple(sizes)}")
    sizes = tuple(_checks.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes))
    key = _checks.prng_key(key)
    gain = _checks.nonnegative_float(gain, "gain")
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(
        MLPLayer(gain / np.sqrt(m) * jax.random.normal(k, (m, n)), jnp.zeros((n,)))
        for m, n, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
    )


def _check_mlp(params) -> tuple:
    """``params`` as a tuple of :class:`MLPLayer` whose shapes chain, finite; raises otherwise."""
    if not isinstance(params, tuple | list) or not params:
        raise TypeError(
            "params must be a non-empty tuple of MLPLayer(weight, bias) (init_mlp), got "
            f"{type(params).__name__}"
        )
    fan_in = None
    for layer, value in enumerate(params):
        if not isinstance(value, MLPLayer):
            raise TypeError(f"params[{layer}] must be an MLPLayer, got {type(value).__name__}")
        shape = tuple(np.shape(value.weight))
        if len(shape) != 2 or (fan_in is not None and shape[0] != fan_in):
            expected = "(M_l, N_l)" if fan_in is None else f"({fan_in}, N_l)"
            raise ValueError(f"params[{layer}].weight must have shape {expected}, got {shape}")
        if tuple(np.shape(value.bias)) != shape[1:]:
            raise ValueError(
                f"params[{layer}].bias must have shape {shape[1:]}, got {np.shape(value.bias)}"
            )
        fan_in = shape[1]
    _checks.finite_tree(tuple(params), "params")
    return tuple(params)


def _activate(a, activation: str):
    return jax.nn.relu(a) if activation == "relu" else jax.nn.sigmoid(a)


def _forward(params, x, activation: str):
    for layer in params[:-1]:
        x = _activate(x @ layer.weight + layer.bias, activation)
    return x @ params[-1].weight + params[-1].bias


def _check_features(x, width: int, name: str):
    x = _checks.real_array(x, name, min_ndim=1)
    if x.shape[-1] != width:
        raise ValueError(
            f"{name} must have {width} features on its last axis (the MLP's input width), got "
            f"shape {tuple(x.shape)}"
        )
    _checks.nonempty(x, name)
    return x


def mlp_forward(params, x, activation: str = "relu") -> jax.Array:
    """The logits o of the MLP (module docstring).

    Args:
        params: a tuple of :class:`MLPLayer`.
        x: ``(..., M)`` inputs.
        activation: the hidden units' φ, one of :data:`ACTIVATIONS`.

    Returns:
        ``(..., C)`` logits.

    Raises:
        TypeError, ValueError: params that are no MLP (shapes that do not chain, non-finite),
            inputs of another width or non-finite, an unknown activation.
    """
    params = _check_mlp(params)
    activation = _checks.option(activation, "activation", ACTIVATIONS)
    x = _check_features(x, params[0].weight.shape[0], "x")
    return _forward(params, jnp.asarray(x, float_dtype(params)), activation)


def _check_batch(batch, width: int, n_classes: int, layout: str):
    """``(inputs, labels)`` with inputs of ``layout`` ``"(B, M)"`` or ``"(B, T, M)"``."""
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(
            f"batch must be a pair (inputs {layout}, labels (B,)), got {type(batch).__name__}"
        )
    inputs, labels = batch
    inputs = _check_features(inputs, width, "inputs")
    if inputs.ndim != layout.count(",") + 1:
        raise ValueError(f"inputs must have shape {layout} with M = {width}, got {inputs.shape}")
    check_labels(labels, inputs.shape[:1], n_classes)


def mlp_accuracy(params, x, labels, activation: str = "relu") -> float:
    """The fraction of ``labels (...)`` equal to argmax_c o_c of :func:`mlp_forward` on
    ``x (..., M)``.

    Raises:
        TypeError, ValueError: as :func:`mlp_forward`; labels of another shape, not integer or
            out of 0..C−1.
    """
    logits = mlp_forward(params, x, activation)
    labels = check_labels(labels, logits.shape[:-1], logits.shape[-1])
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(labels)))


def mlp_trainer(optimizer: optax.GradientTransformation, *, activation: str = "relu") -> Trainer:
    """Cross-entropy training of the MLP by backpropagation, followed by ``optimizer``.

    ``state = init(params)``; ``state, info = step(key, state, (x, labels))`` with ``x (B, M)``
    real inputs and ``labels (B,)`` integer classes in ``0..C−1``; the step minimises
    (1/B) Σ_b −log softmax(o(x_b))_{y_b}. It is deterministic (the key is unused, may be None)
    and jitted.

    Args:
        optimizer: an optax ``GradientTransformation`` (e.g. ``optax.adam(3e-3)``).
        activation: the hidden units' φ, one of :data:`ACTIVATIONS` (ReLU for
            :func:`convert_to_if`, sigmoid for :func:`convert_to_bernoulli`).

    Returns:
        ``Trainer(init, step)`` with :class:`MLPState` and :class:`MLPInfo`.

    Raises:
        TypeError, ValueError: a bad optimizer or activation; at init, params that are no MLP;
            at step, a batch that is not ``(x (B, M), labels (B,))`` of the MLP's width with
            finite inputs and labels in range.
    """
    _checks.optimizer(optimizer)
    activation = _checks.option(activation, "activation", ACTIVATIONS)

    def loss_terms(params, x, labels):
        logits = _forward(params, x, activation)
        picked = jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1)
        correct = jnp.argmax(logits, axis=-1) == labels
        return -picked.mean(), correct.mean()

    gradient = jax.value_and_grad(loss_terms, has_aux=True)

    def init(params):
        params = tuple(jax.tree.map(jnp.asarray, _check_mlp(params)))
        return MLPState(params, optimizer.init(params))

    @jax.jit
    def step(key, state, batch):
        del key
        x, labels = batch
        x = jnp.asarray(x, float_dtype(state.params))
        (loss, accuracy), grads = gradient(state.params, x, labels)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return MLPState(optax.apply_updates(state.params, updates), opt_state), MLPInfo(
            loss, accuracy
        )

    def batch_check(state, batch):
        width, n_classes = state.params[0].weight.shape[0], state.params[-1].bias.shape[0]
        _check_batch(batch, width, n_classes, "(B, M)")

    return Trainer(init, checked(step, batch_check, uses_key=False))


# ---------------------------------------------------------------------------------------------
# conversion


def normalisation_scales(params, calibration_x, *, percentile: float = 99.9) -> np.ndarray:
    """The scales λ_1 … λ_L of the data-based normalisation (Rueckauer et al. 2017).

    λ_l is the ``percentile``-th percentile of the positive values of ReLU(a_{l−1} W_l + b_l)
    over the calibration samples and the layer's units (for l = L, of the positive part of the
    logits); a layer that is never positive gets λ_l = 1. ``percentile=100`` is the maximum
    activation of Diehl et al. (2015).

    Args:
        params: a tuple of :class:`MLPLayer` (a ReLU MLP).
        calibration_x: ``(n, M)`` (or ``(..., M)``) inputs, typically training data.
        percentile: p in (0, 100].

    Returns:
        ``(L,)`` float64 λ_l > 0.

    Raises:
        TypeError, ValueError: params that are no MLP, calibration data of another width, empty
            or non-finite, a percentile outside (0, 100].
    """
    params = _check_mlp(params)
    x = _check_features(calibration_x, params[0].weight.shape[0], "calibration_x")
    percentile = _checks.finite_float(percentile, "percentile")
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
    a = jnp.asarray(x, float_dtype(params)).reshape(-1, x.shape[-1])
    scales = []
    for layer in params:
        a = jax.nn.relu(a @ layer.weight + layer.bias)
        positive = np.asarray(a)[np.asarray(a) > 0]
        scales.append(float(np.percentile(positive, percentile)) if positive.size else 1.0)
    return np.asarray(scales)


def _lif_params(weights_and_biases) -> tuple:
    layers = []
    for w, b in weights_and_biases:
        w = jnp.asarray(w)
        layers.append(lif.LayerParams(w, jnp.zeros((0, w.shape[1]), w.dtype), jnp.asarray(b)))
    return tuple(layers)


def _sizes(params) -> tuple:
    return (params[0].weight.shape[0], *(layer.bias.shape[0] for layer in params))


def if_network(sizes) -> lif.LIFNetwork:
    """The integrate-and-fire network of :func:`convert_to_if`: ``tau_mem=inf``,
    ``tau_syn=0``, ``reset="subtract"``, ``threshold=1``, ``temperature=0``.

    Args:
        sizes: ``(M, N_1, …, N_L)``.

    Raises:
        TypeError, ValueError: bad sizes (:class:`probsnn.lif.LIFNetwork`).
    """
    return lif.LIFNetwork(
        sizes,
        neuron="lif",
        reset="subtract",
        tau_mem=float("inf"),
        tau_syn=0.0,
        threshold=1.0,
        temperature=0.0,
    )


def bernoulli_network(sizes) -> lif.LIFNetwork:
    """The Bernoulli network of :func:`convert_to_bernoulli`: ``neuron="srm0"``
    (``reset="none"``), ``tau_mem=0``, ``tau_syn=0``, ``threshold=0``, ``temperature=1``, so
    that the margin is v_t = z^{l−1}_t W_l + b_l and the spike probability σ(v_t).

    Args:
        sizes: ``(M, N_1, …, N_L)``.

    Raises:
        TypeError, ValueError: bad sizes (:class:`probsnn.lif.LIFNetwork`).
    """
    return lif.LIFNetwork(
        sizes,
        neuron="srm0",
        reset="none",
        tau_mem=0.0,
        tau_syn=0.0,
        threshold=0.0,
        temperature=1.0,
    )


def convert_to_if(params, calibration_x, *, percentile: float = 99.9):
    """Convert a ReLU MLP into a rate-coded network of integrate-and-fire neurons (module
    docstring): W̃_l = W_l λ_{l−1}/λ_l, b̃_l = b_l/λ_l with λ_0 = 1 and λ_l from
    :func:`normalisation_scales` (Rueckauer et al. 2017; Diehl et al. 2015).

    Args:
        params: a tuple of :class:`MLPLayer`, trained with ``activation="relu"``.
        calibration_x: ``(n, M)`` inputs on which the activations are measured.
        percentile: p in (0, 100] (100: the maximum activation).

    Returns:
        ``(spec, lif_params)``: the :func:`if_network` of sizes ``(M, N_1, …, N_L)`` and a
        tuple of :class:`probsnn.lif.LayerParams`. Its inputs are ``(..., T, M)`` values per
        bin: the analog x repeated in every bin, or spikes whose rate per bin is x. Classify
        with :func:`classify`.

    Raises:
        TypeError, ValueError: as :func:`normalisation_scales`.
    """
    params = _check_mlp(params)
    scales = normalisation_scales(params, calibration_x, percentile=percentile)
    below = np.concatenate([[1.0], scales[:-1]])
    converted = [
        (layer.weight * float(lam_below / lam), layer.bias / float(lam))
        for layer, lam_below, lam in zip(params, below, scales, strict=True)
    ]
    return if_network(_sizes(params)), _lif_params(converted)


def convert_to_bernoulli(params):
    """Convert a sigmoid MLP into a network of Bernoulli neurons: in every bin,
    p(z^l_t = 1 | z^{l−1}_t) = σ(z^{l−1}_t W_l + b_l) (module docstring; exact for the first
    layer given the analog input, mean-field beyond it, since E σ(z W + b) ≠ σ(E[z] W + b)).

    Args:
        params: a tuple of :class:`MLPLayer`, trained with ``activation="sigmoid"``.

    Returns:
        ``(spec, lif_params)``: the :func:`bernoulli_network` of the MLP's sizes and the
        weights and biases unchanged, as :class:`probsnn.lif.LayerParams`.

    Raises:
        TypeError, ValueError: params that are no MLP.
    """
    params = _check_mlp(params)
    return bernoulli_network(_sizes(params)), _lif_params(
        (layer.weight, layer.bias) for layer in params
    )


# ---------------------------------------------------------------------------------------------
# classification by output spikes


def _residual(spec, spikes, voltage):
    """The output membrane after the last bin's reset, ``(..., C)``."""
    if spec.reset == "subtract":
        return voltage - spec.threshold * spikes
    if spec.reset == "zero":
        return voltage * (1.0 - spikes)
    return voltage


def _predict(spec, spikes, voltage, n_bins: int):
    """Classes from the output record ``(..., T, C)`` over its first ``n_bins`` bins: most
    spikes, ties to the largest residual membrane."""
    counts = spikes[..., :n_bins, :].sum(axis=-2)
    residual = _residual(spec, spikes[..., n_bins - 1, :], voltage[..., n_bins - 1, :])
    tied = counts == counts.max(axis=-1, keepdims=True)
    return jnp.argmax(jnp.where(tied, residual, -jnp.inf), axis=-1)


def _check_spiking_output(spec):
    if not isinstance(spec, lif.LIFNetwork):
        raise TypeError(f"spec must be a probsnn.lif.LIFNetwork, got {type(spec).__name__}")
    if spec.output != "spike":
        raise ValueError(
            f"the class is read from output spikes: spec.output must be 'spike', got "
            f"{spec.output!r}"
        )


@functools.partial(jax.jit, static_argnames=("spec", "steps"))
def _predictions(spec, params, inputs, key, steps):
    """``(len(steps), B)`` classes after each number of bins in ``steps``, from one run."""
    record = lif._run(spec, params, inputs, key, None)
    spikes, voltage = record.spikes[-1], record.voltage[-1]
    return jnp.stack([_predict(spec, spikes, voltage, n) for n in steps]).astype(jnp.int32)


def _checked_run(spec, params, inputs, key):
    _check_spiking_output(spec)
    params = spec.check_params(params)
    inputs = _checks.real_array(inputs, "inputs", shape_tail=(spec.n_inputs,), min_ndim=2)
    _checks.nonempty(inputs, "inputs")
    key = check_key(spec, key)
    flat = jnp.asarray(inputs, float_dtype(params)).reshape((-1, *inputs.shape[-2:]))
    return params, inputs, flat, key


def classify(spec: lif.LIFNetwork, params, inputs, key=None) -> jax.Array:
    """The class each input gets from the output spikes: argmax_c of the count Σ_t z_{t,c},
    ties broken by the larger residual membrane after the last bin (v_T − ϑ z_T for reset by
    subtraction, v_T (1 − z_T) for reset to zero, v_T without reset).

    Args:
        spec: a :class:`probsnn.lif.LIFNetwork` with ``output="spike"``.
        params: a tuple of :class:`probsnn.lif.LayerParams`.
        inputs: ``(..., T, M)`` input values or spikes per bin.
        key: a PRNG key, required at ``spec.temperature > 0`` (unused at 0).

    Returns:
        ``(...)`` int32 classes.

    Raises:
        TypeError, ValueError: a membrane read-out spec, bad params, inputs of another width or
            non-finite, a missing or bad key at T > 0.
    """
    params, inputs, flat, key = _checked_run(spec, params, inputs, key)
    return _predictions(spec, params, flat, key, (flat.shape[1],))[0].reshape(inputs.shape[:-2])


def accuracy_vs_steps(spec: lif.LIFNetwork, params, inputs, labels, steps=None, key=None):
    """The accuracy of :func:`classify` after each number of bins in ``steps``, from one run
    over all the bins (the network is causal: its first n bins are a run of n bins).

    Args:
        spec: a :class:`probsnn.lif.LIFNetwork` with ``output="spike"``.
        params: a tuple of :class:`probsnn.lif.LayerParams`.
        inputs: ``(..., T, M)`` input values or spikes per bin.
        labels: ``(...)`` integer classes.
        steps: increasing bin counts in 1..T; default the powers of two below T, and T.
        key: a PRNG key, required at ``spec.temperature > 0``.

    Returns:
        ``(len(steps),)`` float64 accuracies.

    Raises:
        TypeError, ValueError: as :func:`classify`; labels of another shape, not integer or out
            of range; steps that are not increasing integers in 1..T.
    """
    params, inputs, flat, key = _checked_run(spec, params, inputs, key)
    labels = check_labels(labels, inputs.shape[:-2], spec.sizes[-1])
    n_bins = inputs.shape[-2]
    if steps is None:
        steps = (*(2**k for k in range(n_bins.bit_length()) if 2**k < n_bins), n_bins)
    if isinstance(steps, str | bytes) or not hasattr(steps, "__len__") or not len(steps):
        raise TypeError(f"steps must be a non-empty sequence of bin counts, got {steps!r}")
    steps = tuple(_checks.positive_int(n, f"steps[{i}]") for i, n in enumerate(steps))
    if steps[-1] > n_bins or any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError(f"steps must increase within 1..{n_bins} (the input's bins), got {steps}")
    predicted = np.asarray(_predictions(spec, params, flat, key, steps))
    return (predicted == np.asarray(labels).reshape(1, -1)).mean(axis=1)


# ---------------------------------------------------------------------------------------------
# fine-tuning the Bernoulli network


def label_code(labels, n_steps: int, n_classes: int) -> jax.Array:
    """The output spikes that code a label: neuron y spikes in every bin, the others never.

    Its log-probability under output margins v_t is Σ_t [log σ(v_{t,y}) + Σ_{c≠y} log σ(−v_{t,c})],
    a one-vs-rest logistic loss per bin; it is the pattern of largest count margin, so a network
    that makes it likely classifies right by counts.

    Args:
        labels: ``(...)`` integer classes in 0..C−1.
        n_steps: T >= 1. n_classes: C >= 1.

    Returns:
        ``(..., T, C)`` float32 0/1.

    Raises:
        TypeError, ValueError: non-integer or out-of-range labels, bad sizes.
    """
    n_steps = _checks.positive_int(n_steps, "n_steps")
    n_classes = _checks.positive_int(n_classes, "n_classes")
    labels = check_labels(labels, np.shape(labels), n_classes)
    return _code(jnp.asarray(labels), n_steps, n_classes, jnp.float32)


def _code(labels, n_steps, n_classes, dtype):
    one_hot = jax.nn.one_hot(labels, n_classes, dtype=dtype)
    return jnp.broadcast_to(one_hot[..., None, :], (*labels.shape, n_steps, n_classes))


def _check_finetune_spec(spec):
    _check_spiking_output(spec)
    if spec.temperature <= 0:
        raise ValueError(
            "fine-tuning needs stochastic neurons: spec.temperature must be > 0 "
            f"(convert_to_bernoulli), got {spec.temperature}"
        )
    if spec.n_layers < 2:
        raise ValueError(
            f"fine-tuning needs at least one hidden layer below the output, got sizes {spec.sizes}"
        )


def _finetune_terms(params, spec, inputs, labels, key, n_samples, baseline):
    """Surrogate loss whose gradient is minus the estimator, and the Info scalars."""
    n_batch, n_steps, _ = inputs.shape
    repeated = jnp.broadcast_to(inputs, (n_samples, *inputs.shape)).reshape(-1, *inputs.shape[1:])
    code = _code(jnp.tile(labels, n_samples), n_steps, spec.sizes[-1], inputs.dtype)
    sampled = lif._run(spec, jax.lax.stop_gradient(params), repeated, key, None)
    hidden = tuple(jax.lax.stop_gradient(z) for z in sampled.spikes[:-1])
    forced = (*hidden, code)
    record = lif._run(spec, params, repeated, None, forced)
    log_joint = lif.spike_log_prob(spec, record, forced)
    # log p(y | h): the output layer's terms alone (hidden layers masked as silent, not free)
    silent = tuple(jnp.zeros_like(f) for f in record.free[:-1])
    masked = record._replace(free=(*silent, record.free[-1]))
    log_lik = lif.spike_log_prob(spec, masked, (*(jnp.zeros_like(z) for z in hidden), code))
    log_prior = log_joint - log_lik
    log_lik = log_lik.reshape(n_samples, n_batch)
    log_prior = log_prior.reshape(n_samples, n_batch)
    if baseline == "leave-one-out":
        reference = (log_lik.sum(axis=0, keepdims=True) - log_lik) / (n_samples - 1)
    else:
        reference = baseline
    signal = jax.lax.stop_gradient(log_lik - reference)
    surrogate = -jnp.mean(log_lik + signal * log_prior)
    predicted = _predict(spec, sampled.spikes[-1], sampled.voltage[-1], n_steps)
    accuracy = jnp.mean(predicted == jnp.tile(labels, n_samples))
    bound = jax.nn.logsumexp(log_lik, axis=0) - jnp.log(n_samples)
    info = FinetuneInfo(-jnp.mean(log_lik), accuracy, jnp.mean(bound))
    return surrogate, info


def bernoulli_finetune_trainer(
    spec: lif.LIFNetwork,
    optimizer: optax.GradientTransformation,
    *,
    n_samples: int = 4,
    baseline: str | float = "leave-one-out",
) -> Trainer:
    """Fine-tune a Bernoulli network (:func:`convert_to_bernoulli`) on the label code by the
    variational bound with the network as proposal (module docstring; Rezende & Gerstner 2014,
    Jang et al. 2019):

        loss = −E_{p(h|x)} log p(y | h)     (≥ −log p(y | x)),
        ∇loss ≈ −(1/(K B)) Σ_{k,b} [∇ log p(y_b | h^k_b)
                                    + (log p(y_b | h^k_b) − b_k) ∇ log p(h^k_b | x_b)],

    with K hidden samples h^k ~ p(h | x) per input, the output spikes forced to
    :func:`label_code` and both log-probabilities exact (teacher-forced Bernoulli terms of
    :func:`probsnn.lif.spike_log_prob`). The estimate is unbiased for the loss's gradient.

    ``state = init(params)``; ``state, info = step(key, state, (inputs, labels))`` with
    ``inputs (B, T, M)`` values or spikes per bin and ``labels (B,)``; the key draws the hidden
    samples; the step is jitted.

    Args:
        spec: a :class:`probsnn.lif.LIFNetwork` at temperature > 0 with a spiking output layer
            (C neurons, one per class) and at least one hidden layer.
        optimizer: an optax ``GradientTransformation``.
        n_samples: K >= 1 hidden samples per input (>= 2 with the leave-one-out baseline).
        baseline: ``"leave-one-out"``, b_k = mean_{j≠k} log p(y | h^j) (the other samples of
            the same input), or a finite float, a constant b.

    Returns:
        ``Trainer(init, step)`` with :class:`FinetuneState` and :class:`FinetuneInfo`.

    Raises:
        TypeError, ValueError: a spec at temperature 0, with a membrane read-out or no hidden
            layer; a bad optimizer, n_samples or baseline (leave-one-out with K = 1); at init,
            bad params; at step, a bad key or a batch that is not ``(inputs (B, T, M),
            labels (B,))`` of the network's width with labels in range.
    """
    _check_finetune_spec(spec)
    _checks.optimizer(optimizer)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    if isinstance(baseline, str):
        baseline = _checks.option(baseline, "baseline", BASELINES)
        if n_samples < 2:
            raise ValueError(
                f"baseline='leave-one-out' needs n_samples >= 2, got {n_samples} (or pass a "
                "float baseline)"
            )
    else:
        baseline = _checks.finite_float(baseline, "baseline")
    gradient = jax.grad(_finetune_terms, has_aux=True)

    def init(params):
        params = tuple(jax.tree.map(jnp.asarray, spec.check_params(params)))
        return FinetuneState(params, optimizer.init(params))

    @jax.jit
    def step(key, state, batch):
        inputs, labels = batch
        inputs = jnp.asarray(inputs, float_dtype(state.params))
        grads, info = gradient(
            state.params, spec, inputs, jnp.asarray(labels), key, n_samples, baseline
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return FinetuneState(optax.apply_updates(state.params, updates), opt_state), info

    def batch_check(state, batch):
        del state
        _check_batch(batch, spec.n_inputs, spec.sizes[-1], "(B, T, M)")

    return Trainer(init, checked(step, batch_check))


__all__ = [
    "ACTIVATIONS",
    "BASELINES",
    "FinetuneInfo",
    "FinetuneState",
    "MLPInfo",
    "MLPLayer",
    "MLPState",
    "accuracy_vs_steps",
    "bernoulli_finetune_trainer",
    "bernoulli_network",
    "classify",
    "convert_to_bernoulli",
    "convert_to_if",
    "if_network",
    "init_mlp",
    "label_code",
    "mlp_accuracy",
    "mlp_forward",
    "mlp_trainer",
    "normalisation_scales",
]
