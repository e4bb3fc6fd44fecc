"""Surrogate gradients ⇔ stochastic networks: the equivalence analysis (Gygax & Zenke 2025).

A :class:`~probsnn.lif.LIFNetwork` at temperature T > 0 emits spikes z_{l,t,i} ~ Bernoulli(σ(m/T))
given its margins m (module equations of :mod:`probsnn.lif`). For one input train x ``(T_b, M)``
and a loss L(z) of the last layer's spikes ``(T_b, N_L)``, four gradients of the expected loss
E_z[L] are compared here:

(a) **exact**, by enumerating every spike pattern z of every layer (2^{T_b Σ_l N_l} of them):

        ∇_θ E[L] = ∇_θ Σ_z p_θ(z) L(z),   log p_θ(z) from :func:`probsnn.lif.spike_log_prob`
        (teacher forced: resets, adaptation and recurrence see z) — :func:`exact_expected_gradient`;

(b) **score function** (REINFORCE, Williams 1992) with the leave-one-out baseline, from S samples:

        ĝ = (1/S) Σ_s (L(z_s) − (1/(S−1)) Σ_{r≠s} L(z_r)) ∇_θ log p_θ(z_s),

    unbiased in every configuration — :func:`score_function_gradient`;

(c1) **surrogate gradient** of the deterministic network (T = 0) whose H′ is replaced by the
    pseudo-derivative h of width s (Neftci, Mostafa & Zenke 2019): ∇_θ L(z(θ)) —
    :func:`surrogate_gradient`;

(c2) **stochastic automatic differentiation** (straight-through): each sampled spike carries
    dz/dm = h(m) with h(m) = σ′(m/T)/T, the derivative of its own firing probability (the
    network's ``surrogate="sigmoid"``, ``surrogate_scale=T``); the gradient ∇_θ L(z_s) through
    :func:`probsnn.lif.simulate` averaged over S samples — :func:`stochastic_ad_gradient` — and its
    exact expectation over the enumerated patterns — :func:`expected_stochastic_ad_gradient`.

**One layer, margins blind to the spikes** (no recurrence, reset ``"none"``, no adaptation, no
refractoriness; or a single bin). Then the spikes are independent with p_{ti} = σ(m_{ti}/T),
E[L] = L̃(p) with L̃ the multilinear extension of L off {0,1}, and

    ∂E[L]/∂θ = Σ_{t,i} ∂L̃/∂p_{ti} · h(m_{ti}) ∂m_{ti}/∂θ,
    ĝ_ST(z)  = Σ_{t,i} ∂L/∂z_{ti}(z) · h(m_{ti}) ∂m_{ti}/∂θ.

If L is affine in each spike separately (multilinear: linear read-outs, products of distinct
spikes), ∂L/∂z_{ti} does not depend on z_{ti}, equals L(z; z_{ti}=1) − L(z; z_{ti}=0), and its
expectation over the other (independent) spikes is ∂L̃/∂p_{ti}: **stochastic AD is unbiased**,
E[ĝ_ST] = ∇_θ E[L] exactly. For a linear L = Σ c z, ∂L/∂z = c is constant and every single
sample's ĝ_ST equals the exact gradient — and so does (c1), whose margins are the same. The
straight-through gradient depends on how L is extended off {0,1}, the exact one does not: for
the count error L = ½ Σ_i (n_i − y_i)², n_i = Σ_t z_{ti}, whose z² terms are not multilinear,

    ∇_θ E[L] = E[ĝ_ST] + ∇_θ ½ Σ_{t,i} p_{ti}(1 − p_{ti})

(the derivative of the spikes' own variance is missing), while its multilinear twin
½ Σ_i [(n_i − y_i)² − Σ_t z_{ti}² + n_i] (equal on binary spikes, :func:`count_loss` with
``multilinear=True``) is estimated without bias. With several layers, recurrence or resets the
straight-through gradient replaces the effect of flipping a spike by the derivative of a smooth
spike and is biased; the score function stays unbiased.

**Temperature limits** (measured, not theorems). As T → 0 every one of these gradients vanishes
like e^{−min|m|/T} (min over the margins of the deterministic run), the sampled spikes become the
deterministic ones and (c2) → (c1); whether (c1) then approaches (a) in direction and relative
size depends on the network and the loss: for the multilinear count loss it does in one or two
feedforward layers, not in three recurrent layers (a persistent ~20 % error), and for the
plain count error it does not even in one layer (the missing variance derivative). As T grows,
(c2) tends to (a) — the network linearises, E[z] ≈ ½ + m/(4T), and the straight-through
gradient is exact to leading order in 1/T (slowly for the plain count error) — while (c1),
whose deterministic spikes are no longer typical of the noisy network, departs from it (cosines
below zero at T ≥ 1 in deeper networks). :func:`surrogate_equivalence` measures the agreement
across temperatures, depths and recurrence, and :func:`probsnn.plot.surrogate_equivalence` draws
it.

Every gradient is the gradient of the loss to minimise (the sign of ``jax.grad``), a pytree shaped
like the params (a tuple of :class:`~probsnn.lif.LayerParams`). Computations run in the params'
dtype: enable ``jax_enable_x64`` and pass float64 params for exact comparisons.

References: Gygax & Zenke (2025), Neural Comput. 37(5) (surrogate gradients as stochastic AD);
Williams (1992), Mach. Learn. 8:229 (REINFORCE); Neftci, Mostafa & Zenke (2019), IEEE Signal
Process. Mag. 36:51 (surrogate gradients).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks, lif
from probsnn.inference import score

#: log2 of the most spike patterns :func:`exact_expected_gradient` enumerates.
MAX_PATTERN_BITS = 20
#: The most spike patterns the exact enumeration visits (2^20).
MAX_PATTERNS = 2**MAX_PATTERN_BITS
#: The estimators :func:`surrogate_equivalence` compares with the exact gradient.
ESTIMATORS = ("score_function", "surrogate", "stochastic_ad", "stochastic_ad_expected")
_CHUNK = 2**12  # patterns per enumeration step (bounds the memory of one gradient)


class GradientEstimate(NamedTuple):
    """A gradient of E[L] and what came with it.

    Attributes:
        loss: the loss value behind it, a float: E[L] (exact), the sample mean of L(z_s), or
            L(z) of the deterministic network.
        grad: a pytree shaped like the params: the (estimated) gradient of the loss to minimise.
        stderr: a pytree shaped like the params: the standard error of each entry of ``grad``
            (zeros for the exact and the deterministic gradients).
    """

    loss: float
    grad: tuple
    stderr: tuple


# ------------------------------------------------------------------------------------- losses


def _linear(weights, spikes):
    return jnp.sum(spikes * weights, axis=(-2, -1))


def _count_error(target, spikes):
    return 0.5 * jnp.sum((jnp.sum(spikes, axis=-2) - target) ** 2, axis=-1)


def _multilinear_count_error(target, spikes):
    return _count_error(target, spikes) + 0.5 * jnp.sum(spikes - spikes**2, axis=(-2, -1))


def _float_array(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


def linear_loss(weights):
    """The linear read-out loss L(z) = Σ_{t,i} c_{ti} z_{ti} of the last layer's spikes.

    Multilinear, so that for one layer with spike-blind margins the straight-through gradient
    equals the exact one for every sample (module docstring).

    Args:
        weights: ``(T_b, N_L)`` finite coefficients c.

    Returns:
        ``loss(spikes (B, T_b, N_L)) -> (B,)``, a :class:`jax.tree_util.Partial` (a pytree, so
        that losses that differ only in their coefficients share compiled code).

    Raises:
        ValueError, TypeError: ``weights`` not a finite real 2-D array.
    """
    weights = _checks.real_array(weights, "weights", min_ndim=2)
    if weights.ndim != 2:
        raise ValueError(f"weights must be (T_b, N_L), got shape {tuple(weights.shape)}")
    return jax.tree_util.Partial(_linear, _float_array(weights))


def count_loss(target, *, multilinear: bool = False):
    """The spike-count error of the last layer,

        L(z) = ½ Σ_i (n_i − y_i)²,   n_i = Σ_t z_{ti},

    or, with ``multilinear=True``, its multilinear twin ½ Σ_i [(n_i − y_i)² − Σ_t z_{ti}² + n_i],
    equal on binary spikes (z² = z) but affine in each spike, hence with another
    straight-through gradient (module docstring).

    Args:
        target: ``(N_L,)`` finite target counts y.
        multilinear: use the multilinear twin.

    Returns:
        ``loss(spikes (B, T_b, N_L)) -> (B,)``, a :class:`jax.tree_util.Partial`.

    Raises:
        ValueError, TypeError: ``target`` not a finite real 1-D array; ``multilinear`` not a bool.
    """
    target = _checks.real_array(target, "target")
    if target.ndim != 1:
        raise ValueError(f"target must be (N_L,), got shape {tuple(target.shape)}")
    if not isinstance(multilinear, bool):
        raise TypeError(f"multilinear must be a bool, got {multilinear!r}")
    error = _multilinear_count_error if multilinear else _count_error
    return jax.tree_util.Partial(error, _float_array(target))


# ------------------------------------------------------------------------------------- checks


def _check_problem(spec, params, inputs, loss, *, stochastic: bool = True):
    """Validate the shared arguments; return ``(params, inputs (1, T_b, M), loss)``, params and
    inputs in one float dtype (the params'), the loss as a :class:`jax.tree_util.Partial`."""
    if not isinstance(spec, lif.LIFNetwork):
        raise TypeError(f"spec must be a probsnn.lif.LIFNetwork, got {type(spec).__name__}")
    if spec.output != "spike":
        raise ValueError(
            f"spec.output must be 'spike' (L is a function of the last layer's spikes), "
            f"got {spec.output!r}"
        )
    if stochastic and spec.temperature <= 0:
        raise ValueError(
            f"spec.temperature must be > 0 (the stochastic network), got {spec.temperature}"
        )
    params = spec.check_params(params)
    inputs = _checks.real_array(inputs, "inputs", shape_tail=(spec.n_inputs,), min_ndim=2)
    if inputs.ndim != 2:
        raise ValueError(
            f"inputs must be one input train (T_b, M) = (T_b, {spec.n_inputs}), "
            f"got shape {tuple(inputs.shape)}"
        )
    _checks.nonempty(inputs, "inputs")
    dtype = jnp.result_type(float, *jax.tree.leaves(params))
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
    inputs = jnp.asarray(inputs, dtype)[None]
    if not callable(loss):
        raise TypeError(f"loss must be a function of spikes (B, T_b, N_L) -> (B,), got {loss!r}")
    if not isinstance(loss, jax.tree_util.Partial):
        loss = jax.tree_util.Partial(loss)
    probe = jax.ShapeDtypeStruct((2, inputs.shape[1], spec.sizes[-1]), dtype)
    out = jax.eval_shape(loss, probe)
    shape, dtype_out = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != (2,) or not jnp.issubdtype(dtype_out, jnp.floating):
        raise ValueError(
            f"loss must map spikes (B, T_b, N_L) = (B, {inputs.shape[1]}, {spec.sizes[-1]}) to "
            f"a float array (B,); for B = 2 it returned {out}"
        )
    return params, inputs, loss


def _check_enumerable(spec: lif.LIFNetwork, n_steps: int) -> None:
    n_bits = n_steps * sum(spec.sizes[1:])
    if n_bits > MAX_PATTERN_BITS:
        raise ValueError(
            f"exact enumeration of layers {spec.sizes[1:]} over {n_steps} bins needs 2^{n_bits} "
            f"= {2**n_bits:,} spike patterns, more than MAX_PATTERNS = {MAX_PATTERNS:,}; use "
            "fewer bins or neurons"
        )


def _check_keys(key, n_samples):
    key = _checks.prng_key(key, "key")
    n_samples = _checks.positive_int(n_samples, "n_samples", 2)
    return jax.random.split(key, n_samples)


def _zeros_like(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def _mean_and_stderr(terms):
    """Mean over the leading sample axis and its standard error std/√S (ddof = 1)."""
    n = jax.tree.leaves(terms)[0].shape[0]
    mean = jax.tree.map(lambda a: jnp.mean(a, axis=0), terms)
    stderr = jax.tree.map(lambda a: jnp.std(a, axis=0, ddof=1) / np.sqrt(n), terms)
    return mean, stderr


# ---------------------------------------------------------------------------------- (a) exact


def _patterns(spec: lif.LIFNetwork, n_steps: int, index, dtype) -> tuple:
    """Spike patterns number ``index (C,)``: bit k of the index is spike k of the flattened
    layers; returns a tuple of ``(C, T_b, N_l)`` arrays."""
    n_bits = n_steps * sum(spec.sizes[1:])
    bits = (index[:, None] >> jnp.arange(n_bits)) & 1
    layers, start = [], 0
    for size in spec.sizes[1:]:
        stop = start + n_steps * size
        layers.append(bits[:, start:stop].reshape(-1, n_steps, size).astype(dtype))
        start = stop
    return tuple(layers)


def _forced_straight_through(spec: lif.LIFNetwork, params, inputs, forced) -> lif.LIFRecord:
    """:func:`probsnn.lif._run` with every spike forced to its value in ``forced`` (tuple of
    ``(B, T_b, N_l)``) yet carrying the straight-through derivative dz/dm = h(m) of
    :func:`probsnn.surrogate.straight_through`, as the sampled spikes of the stochastic network
    do. Returns an :class:`~probsnn.lif.LIFRecord` of ``(B, T_b, N_l)`` arrays."""
    return lif._run(spec, params, inputs, None, forced, straight_through=True)


@functools.partial(jax.jit, static_argnames=("straight_through",))
def _enumerated(spec, params, inputs, loss, straight_through: bool):
    """E[L] and, summed over every spike pattern in chunks of :data:`_CHUNK`, either its exact
    gradient ∇_θ Σ_z p_θ(z) L(z) or (``straight_through``) the expected straight-through gradient
    Σ_z p_θ(z) ∇_θ L(z)|_{dz/dm = h(m)} with p held fixed; ``inputs (1, T_b, M)``."""
    n_steps = inputs.shape[1]
    n_patterns = 2 ** (n_steps * sum(spec.sizes[1:]))
    chunk = min(_CHUNK, n_patterns)

    def chunk_terms(params, start):
        spikes = _patterns(spec, n_steps, start + jnp.arange(chunk), inputs.dtype)
        batch = jnp.broadcast_to(inputs, (chunk, *inputs.shape[1:]))
        if not straight_through:
            record = lif._run(spec, params, batch, None, spikes)
            return jnp.sum(jnp.exp(lif.spike_log_prob(spec, record, spikes)) * loss(spikes[-1]))
        fixed = lif._run(spec, jax.lax.stop_gradient(params), batch, None, spikes)
        weights = jnp.exp(lif.spike_log_prob(spec, fixed, spikes))
        record = _forced_straight_through(spec, params, batch, spikes)
        return jnp.sum(weights * loss(record.spikes[-1]))

    def add_chunk(totals, start):
        value, grad = jax.value_and_grad(chunk_terms)(params, start)
        return (totals[0] + value, jax.tree.map(jnp.add, totals[1], grad)), None

    start = (jnp.zeros((), inputs.dtype), jax.tree.map(jnp.zeros_like, params))
    starts = jnp.arange(n_patterns // chunk) * chunk
    (value, grad), _ = jax.lax.scan(add_chunk, start, starts)
    return value, grad


def exact_expected_gradient(spec, params, inputs, loss) -> GradientEstimate:
    """The exact gradient ∇_θ E_z[L(z)] of the stochastic network, by enumeration:

        E[L] = Σ_z p_θ(z) L(z_L),   log p_θ(z) = Σ_{l,t,i} z log σ(m/T) + (1 − z) log σ(−m/T)

    over every pattern z of every layer's spikes (margins computed under z; a spike in a
    refractory bin has p = 0), differentiated with ``jax.grad``.

    Args:
        spec: a :class:`~probsnn.lif.LIFNetwork` with ``temperature > 0`` and spike output.
        params: its tuple of :class:`~probsnn.lif.LayerParams` (their dtype is the compute dtype).
        inputs: ``(T_b, M)``, one input train.
        loss: ``loss(spikes (B, T_b, N_L)) -> (B,)`` of the last layer's spikes, a JAX
            function, e.g. :func:`count_loss` or :func:`linear_loss`.

    Returns:
        :class:`GradientEstimate` with E[L], its gradient and zero standard errors.

    Raises:
        ValueError: more than :data:`MAX_PATTERNS` patterns (2^{T_b Σ_l N_l}), temperature 0, a
            membrane read-out, inputs or a loss of the wrong shape, non-finite values.
        TypeError: arguments of the wrong type.

    Reference: Gygax & Zenke (2025), Neural Comput. 37(5).
    """
    params, inputs, loss = _check_problem(spec, params, inputs, loss)
    _check_enumerable(spec, inputs.shape[1])
    value, grad = _enumerated(spec, params, inputs, loss, False)
    return GradientEstimate(float(value), grad, _zeros_like(grad))


def expected_stochastic_ad_gradient(spec, params, inputs, loss) -> GradientEstimate:
    """The exact expectation of the straight-through (stochastic-AD) gradient:

        E[ĝ_ST] = Σ_z p_θ(z) ∇_θ L(z_L)|_{dz/dm = h(m)},

    each pattern's spikes forced to z but carrying the spec's surrogate derivative h (of width
    ``spec.surrogate_scale``, by default T: h(m) = σ′(m/T)/T), p held fixed. The limit of
    :func:`stochastic_ad_gradient` as S → ∞, without its sampling noise.

    Args, Raises: as :func:`exact_expected_gradient`.

    Returns:
        :class:`GradientEstimate` with E[L], E[ĝ_ST] and zero standard errors.

    Reference: Gygax & Zenke (2025), Neural Comput. 37(5).
    """
    params, inputs, loss = _check_problem(spec, params, inputs, loss)
    _check_enumerable(spec, inputs.shape[1])
    value, grad = _enumerated(spec, params, inputs, loss, True)
    return GradientEstimate(float(value), grad, _zeros_like(grad))


# ------------------------------------------------------------------------- (b) score function


@jax.jit
def _score_samples(spec, params, inputs, loss, keys):
    """Per-sample losses ``(S,)`` and scores ∇_θ log p(z_s) (leaves ``(S, ...)``)."""

    def draw(key):
        record = lif._run(spec, params, inputs, key, None)
        return tuple(jax.lax.stop_gradient(s) for s in record.spikes)

    def log_prob(params, spikes):
        record = lif._run(spec, params, inputs, None, spikes)
        return lif.spike_log_prob(spec, record, spikes)[0]

    spikes = jax.vmap(draw)(keys)
    scores = jax.vmap(jax.grad(log_prob), (None, 0))(params, spikes)
    losses = jax.vmap(lambda s: loss(s[-1])[0])(spikes)
    return losses, scores


def score_function_gradient(spec, params, inputs, loss, *, key, n_samples: int = 1000):
    """The score-function (REINFORCE) estimate of ∇_θ E[L] with the leave-one-out baseline:

        ĝ = (1/S) Σ_s u_s,   u_s = (L(z_s) − (1/(S−1)) Σ_{r≠s} L(z_r)) ∇_θ log p_θ(z_s),

    z_s sampled by :func:`probsnn.lif.simulate`. Unbiased in every configuration (the baseline
    of sample s is independent of it). The standard error is std_s(u_s)/√S: the u_s share the
    baseline, so it is exact only as S → ∞ (ĝ is the sample covariance of L and the score).

    Args:
        spec, params, inputs, loss: as :func:`exact_expected_gradient`.
        key: a PRNG key for the samples.
        n_samples: S >= 2.

    Returns:
        :class:`GradientEstimate` with the mean sampled loss, ĝ and its standard errors.

    Raises:
        ValueError, TypeError: as :func:`exact_expected_gradient` (without the pattern limit),
            a bad key, ``n_samples`` < 2.

    Reference: Williams (1992), Mach. Learn. 8:229; Kool, van Hoof & Welling (2019) (the
    leave-one-out baseline).
    """
    params, inputs, loss = _check_problem(spec, params, inputs, loss)
    keys = _check_keys(key, n_samples)
    losses, scores = _score_samples(spec, params, inputs, loss, keys)
    signal = score.leave_one_out(losses)
    terms = jax.tree.map(lambda e: signal.reshape((-1,) + (1,) * (e.ndim - 1)) * e, scores)
    grad, stderr = _mean_and_stderr(terms)
    return GradientEstimate(float(jnp.mean(losses)), grad, stderr)


# ------------------------------------------------------------------------ (c) surrogate, ST


def _deterministic_twin(spec: lif.LIFNetwork) -> lif.LIFNetwork:
    """The same network at T = 0 keeping spec's surrogate and its width."""
    return lif.LIFNetwork(
        spec.sizes,
        neuron=spec.neuron,
        recurrent=spec.recurrent,
        reset=spec.reset,
        tau_mem=spec.tau_mem,
        tau_syn=spec.tau_syn,
        tau_adapt=spec.tau_adapt,
        adapt_strength=spec.adapt_strength,
        threshold=spec.threshold,
        refractory=spec.refractory,
        dt=spec.dt,
        temperature=0.0,
        output=spec.output,
        surrogate=spec.surrogate,
        surrogate_scale=spec.surrogate_scale,
        detach_reset=spec.detach_reset,
    )


@jax.jit
def _deterministic_value_and_grad(spec, params, inputs, loss):
    def value(params):
        return loss(lif._run(spec, params, inputs, None, None).spikes[-1])[0]

    return jax.value_and_grad(value)(params)


def surrogate_gradient(spec, params, inputs, loss) -> GradientEstimate:
    """The surrogate gradient (c1) of the deterministic network:

        ∇_θ L(z(θ)),   z = H(m) forward,  dz/dm = h(m) backward,

    with spec's surrogate h and width ``spec.surrogate_scale`` — for a network at T > 0 its
    deterministic twin (T = 0), whose default width is T: h(m) = σ′(m/T)/T for the sigmoid.

    Args:
        spec: a :class:`~probsnn.lif.LIFNetwork` with spike output, any temperature.
        params, inputs, loss: as :func:`exact_expected_gradient`.

    Returns:
        :class:`GradientEstimate` with L(z) of the deterministic network, its surrogate gradient
        and zero standard errors.

    Raises:
        ValueError, TypeError: as :func:`exact_expected_gradient` (no temperature or pattern
            limit).

    Reference: Neftci, Mostafa & Zenke (2019), IEEE Signal Process. Mag. 36:51.
    """
    params, inputs, loss = _check_problem(spec, params, inputs, loss, stochastic=False)
    value, grad = _deterministic_value_and_grad(_deterministic_twin(spec), params, inputs, loss)
    return GradientEstimate(float(value), grad, _zeros_like(grad))


@jax.jit
def _straight_through_samples(spec, params, inputs, loss, keys):
    def one(key):
        def sample_loss(params):
            return loss(lif._run(spec, params, inputs, key, None).spikes[-1])[0]

        return jax.value_and_grad(sample_loss)(params)

    return jax.vmap(one)(keys)


def stochastic_ad_gradient(spec, params, inputs, loss, *, key, n_samples: int = 1000):
    """The stochastic-AD (straight-through) gradient (c2) averaged over S samples:

        ĝ = (1/S) Σ_s ∇_θ L(z_s),   z_s ~ p_θ,  dz/dm = h(m)   (:func:`probsnn.lif.simulate`),

    with the spec's surrogate of width ``spec.surrogate_scale`` (default T, the escape noise's
    own derivative σ′(m/T)/T); standard error std_s/√S of the i.i.d. per-sample gradients.

    Args, Raises: as :func:`score_function_gradient`.

    Returns:
        :class:`GradientEstimate` with the mean sampled loss, ĝ and its standard errors.

    Reference: Gygax & Zenke (2025), Neural Comput. 37(5).
    """
    params, inputs, loss = _check_problem(spec, params, inputs, loss)
    keys = _check_keys(key, n_samples)
    losses, grads = _straight_through_samples(spec, params, inputs, loss, keys)
    grad, stderr = _mean_and_stderr(grads)
    return GradientEstimate(float(jnp.mean(losses)), grad, stderr)


# ------------------------------------------------------------------------------------- sweep


class SurrogateEquivalence(NamedTuple):
    """:func:`surrogate_equivalence` result, tidy: one row per (temperature, depth, recurrence,
    estimator), every field ``(R,)``.

    Attributes:
        temperature: T. depth: the number of layers L. recurrent: bool.
        estimator: one of :data:`ESTIMATORS` (str).
        cosine: cos∠(ĝ, ∇E[L]) (NaN where either vanishes).
        relative_error: ‖ĝ − ∇E[L]‖ / ‖∇E[L]‖ (inf where the exact gradient vanishes).
        error_to_stderr: ‖ĝ − ∇E[L]‖ / (Σ SE²)^½ for the sampled estimators — about 1 for an
            unbiased one (E‖ĝ − ∇E[L]‖² = Σ Var ĝ), ≫ 1 for a biased one (or when rare spike
            patterns went unsampled and the SE is underestimated) — NaN for the others.
        exact_norm: ‖∇E[L]‖.
    """

    temperature: np.ndarray
    depth: np.ndarray
    recurrent: np.ndarray
    estimator: np.ndarray
    cosine: np.ndarray
    relative_error: np.ndarray
    error_to_stderr: np.ndarray
    exact_norm: np.ndarray


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a, float)) for a in jax.tree.leaves(tree)])


def _compare(estimate: GradientEstimate, exact: np.ndarray, sampled: bool):
    g = _flat(estimate.grad)
    norm, g_norm = np.linalg.norm(exact), np.linalg.norm(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = float(g @ exact / (g_norm * norm)) if norm > 0 and g_norm > 0 else np.nan
        relative = float(np.linalg.norm(g - exact) / norm)
        ratio = np.nan
        if sampled:
            ratio = float(np.linalg.norm(g - exact) / np.linalg.norm(_flat(estimate.stderr)))
    return cosine, relative, ratio


def _sweep_network(n_inputs, width, depth, recurrent, temperature, reset, threshold):
    return lif.LIFNetwork(
        (n_inputs, *(width,) * depth),
        recurrent=recurrent,
        reset=reset,
        threshold=threshold,
        temperature=temperature,
    )


def surrogate_equivalence(
    temperatures=(0.1, 0.3, 1.0, 3.0),
    depths=(1, 2, 3),
    recurrent=(False, True),
    *,
    key,
    n_samples: int = 2000,
    n_steps: int = 3,
    width: int = 2,
    n_inputs: int = 4,
    reset: str = "subtract",
    threshold: float = 0.5,
    gain: float = 1.5,
    loss=None,
) -> SurrogateEquivalence:
    """Compare (b) the score function, (c1) the surrogate gradient and (c2) stochastic AD —
    sampled and its exact expectation — with (a) the exact gradient of E[L], across
    temperatures, depths and recurrence (module docstring).

    For each (depth L, recurrence) one network of sizes ``(n_inputs, width × L)`` (LIF neurons,
    sigmoid surrogate of width T) gets params from :func:`probsnn.lif.init_params` (``gain``,
    recurrent gain 0.5) and one input train ``(n_steps, n_inputs)`` of Bernoulli(½) spikes, both
    fixed across temperatures, so that only T changes along a curve. Runs in the default float
    dtype (float64 under ``jax_enable_x64``).

    Args:
        temperatures: T > 0 values. depths: numbers of layers >= 1. recurrent: bools.
        key: a PRNG key (params, inputs and samples).
        n_samples: S >= 2 for the sampled estimators.
        n_steps, width, n_inputs: bins, neurons per layer, inputs (n_steps · width · max depth
            <= 20 so that the patterns can be enumerated).
        reset, threshold: the neurons' reset and ϑ.
        gain: the input weights' gain.
        loss: ``loss(spikes (B, n_steps, width)) -> (B,)``; default the multilinear
            :func:`count_loss` with one target spike per output neuron, exact for stochastic AD
            in a spike-blind single layer, so that the deviations measure the network (depth,
            resets, recurrence), not the loss's extension off binary spikes.

    Returns:
        :class:`SurrogateEquivalence`, rows ordered by depth, recurrence, temperature, then
        :data:`ESTIMATORS`.

    Raises:
        ValueError: empty or invalid grids, too many patterns, bad sizes. TypeError: a bad key
            or loss.

    Reference: Gygax & Zenke (2025), Neural Comput. 37(5).
    """
    key = _checks.prng_key(key, "key")
    temperatures = [
        _checks.positive_float(t, f"temperatures[{i}]")
        for i, t in enumerate(_nonempty_grid(temperatures, "temperatures"))
    ]
    depths = [
        _checks.positive_int(d, f"depths[{i}]")
        for i, d in enumerate(_nonempty_grid(depths, "depths"))
    ]
    recurrences = _nonempty_grid(recurrent, "recurrent")
    for i, r in enumerate(recurrences):
        if not isinstance(r, bool | np.bool_):
            raise TypeError(f"recurrent[{i}] must be a bool, got {r!r}")
    n_steps = _checks.positive_int(n_steps, "n_steps")
    width = _checks.positive_int(width, "width")
    _check_enumerable(_sweep_network(1, width, max(depths), False, 1.0, reset, 0.0), n_steps)
    loss = count_loss(np.ones(width), multilinear=True) if loss is None else loss
    rows = []
    for depth in depths:
        for rec in recurrences:
            k_params, k_inputs, k_samples = jax.random.split(
                jax.random.fold_in(key, 2 * depth + int(rec)), 3
            )
            base = _sweep_network(n_inputs, width, depth, bool(rec), 1.0, reset, threshold)
            params = lif.init_params(base, k_params, gain=gain)
            inputs = jax.random.bernoulli(k_inputs, 0.5, (n_steps, n_inputs)).astype(float)
            for temperature in temperatures:
                spec = _sweep_network(
                    n_inputs, width, depth, bool(rec), temperature, reset, threshold
                )
                k_score, k_ad = jax.random.split(jax.random.fold_in(k_samples, len(rows)))
                exact = _flat(exact_expected_gradient(spec, params, inputs, loss).grad)
                estimates = (
                    score_function_gradient(
                        spec, params, inputs, loss, key=k_score, n_samples=n_samples
                    ),
                    surrogate_gradient(spec, params, inputs, loss),
                    stochastic_ad_gradient(
                        spec, params, inputs, loss, key=k_ad, n_samples=n_samples
                    ),
                    expected_stochastic_ad_gradient(spec, params, inputs, loss),
                )
                for name, estimate in zip(ESTIMATORS, estimates, strict=True):
                    sampled = name in ("score_function", "stochastic_ad")
                    rows.append(
                        (
                            temperature,
                            depth,
                            bool(rec),
                            name,
                            *_compare(estimate, exact, sampled),
                            np.linalg.norm(exact),
                        )
                    )
    columns = list(zip(*rows, strict=True))
    dtypes = (float, int, bool, str, float, float, float, float)
    return SurrogateEquivalence(*(np.asarray(c, d) for c, d in zip(columns, dtypes, strict=True)))


def _nonempty_grid(values, name: str) -> list:
    values = list(np.atleast_1d(np.asarray(values, dtype=object)))
    if not values:
        raise ValueError(f"{name} must hold at least one value, got none")
    return values


__all__ = [
    "ESTIMATORS",
    "MAX_PATTERNS",
    "MAX_PATTERN_BITS",
    "GradientEstimate",
    "SurrogateEquivalence",
    "count_loss",
    "exact_expected_gradient",
    "expected_stochastic_ad_gradient",
    "linear_loss",
    "score_function_gradient",
    "stochastic_ad_gradient",
    "surrogate_equivalence",
    "surrogate_gradient",
]
