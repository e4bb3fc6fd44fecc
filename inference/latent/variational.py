"""Variational learning of networks with hidden neurons: the ELBO's local three-factor rule.

Neurons split into visible X (clamped to data) and hidden H (``spec.visible``). With the causally
conditioned variational distribution q(h‖x) = Π_t Π_{i∈H} p(h_{i,t} | u_{i,t}) — the network's
own hidden dynamics with X clamped — the hidden terms cancel in the ELBO (Jang, Simeone, Gardner &
Grüning 2019, IEEE SPM 36(6):64; docs/theory.md §3):

    log p(x) ≥ ELBO = E_q[ℓ],   ℓ = Σ_t l_t,   l_t = Σ_{i∈X} log p(x_{i,t} | u_{i,t}),

    ∇_θ ELBO = E_q[ Σ_t ∇_θ l_t + (ℓ − b) Σ_t ∇_θ log p(h_t | u_t) ]

for any baseline b independent of the sample. The first (pathwise) term touches the parameters
of visible neurons (w_{·,i}, v_i, c_{·,i}, γ_i for i ∈ X), the second (score-function) term
those of hidden ones; both are "presynaptic trace × postsynaptic error"
(:func:`probsnn.inference.likelihood.online.local_gradient`) and ℓ is one global scalar per
sequence — a neuromodulator-like third factor.

**Rules** (gradient estimators, docs/learning.md). Each returns an estimate of the gradient of
the loss **L = −Σ_sequences ELBO** (plus the optional rate penalty), with the sign of
``jax.grad``, so ``optax.chain(rule, optax.adam(1e-2))`` or ``optax.chain(rule,
optax.sgd(η))`` descends it:

* :func:`variational_rule` — batch over sequences: reads :class:`VariationalSignals` (rasters
  with K hidden samples per data sequence, axes (B, K, T, N)) and returns
  −Σ_sequences mean_K of the estimate above, with the variance-optimal per-parameter baseline
  b = E[ℓ e²] / E[e²] (e the score Σ_t ∇ log p(h_t)) tracked by moving averages of earlier
  batches (Weaver & Tao 2001; Peters & Schaal 2008).
* :func:`online_variational_rule` — streaming, one bin at a time in constant memory:

      ℓ̄_t = κ ℓ̄_{t−1} + (1 − κ) l_t,     e^X_t = κ e^X_{t−1} + (1 − κ) ∇ l_t,
      e^H_t = κ e^H_{t−1} + (1 − κ) ∇ log p(h_t | u_t),     g_t = −[e^X_t + (ℓ̄_t − b_t) e^H_t].

  With the weights held fixed over a sequence and no baseline, Σ_t g_t equals the batch rule
  with the same ``kappa``, whose time-parallel form is
  −[Σ_τ ∇l_τ (1 − κ^{T−τ+1}) + Σ_τ ∇log p(h_τ) A_τ] with A_τ = (1 − κ) Σ_{t≥τ} κ^{t−τ} ℓ̄_t;
  ``kappa=None`` in the batch rule is full-sequence credit, the unbiased gradient of −ELBO.
  A κ in [0, 1) truncates the credit a hidden spike gets from later bins: the estimate is then
  biased (it weighs the hidden parameters' term down) but local in time.
* Optional regulariser towards a target hidden rate r: the loss gets
  +γ_r Σ_t Σ_{i∈H} KL(Bern(σ(u_{i,t})) ‖ Bern(r Δ)) on the sampled trajectory (one-sample
  estimate): its pathwise gradient joins the direct term and it is subtracted from l_t.

**Training.** :func:`probsnn.inference.latent.trainer.variational_trainer` samples K
completions per sequence with :func:`sample_hidden` and follows any rule reading
:class:`VariationalSignals` (this module's, or
:func:`probsnn.inference.latent.multisample.multisample_rule`) through
:func:`probsnn.inference.fit`. :func:`fit_variational_online` streams the online rule over one
long recording in constant memory.

Example::

    spec = ps.Network(6, kernels.raw_lags(3), visible=np.array([1, 1, 0, 0, 0, 0], bool))
    trainer = variational_trainer(spec, optax.adam(0.05), n_samples=8)
    result = inference.fit(trainer, params, visible, key=jax.random.key(0), epochs=200)
    result.history["loss"]  # −ELBO per sequence, per epoch
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks, history
from probsnn.glm import bernoulli_log_prob, check_data, contract, emit_spikes
from probsnn.glm import traces as filter_traces
from probsnn.inference._training import require_params
from probsnn.inference.likelihood.online import MLSignals, local_gradient
from probsnn.inference.likelihood.online import check_signals as check_ml_signals
from probsnn.inference.score import (
    BaselineState,
    baseline_ratio,
    blend,
    blend_moments,
    check_kappa,
    init_baseline,
)
from probsnn.models.hidden import check_hidden_spec, check_visible
from probsnn.network import Network, Params
from probsnn.simulate import sample


class VariationalSignals(NamedTuple):
    """What the batch rules read: K completions of each of B data sequences.

    Attributes:
        spikes: ``(B, K, T, N)`` full rasters, visible columns the data, hidden columns drawn
            from q(h‖x) (see :func:`sample_hidden`).
        inputs: ``(B, T, M)`` exogenous inputs of the sequences, or None.
    """

    spikes: jax.Array
    inputs: jax.Array | None


class VariationalTerms(NamedTuple):
    """Per-raster sums (leading dims of the rasters): ``signal`` ℓ = Σ_t Σ_{i∈X} log p(x_{i,t}|u)
    and ``log_q`` = log q(h‖x) = Σ_t Σ_{i∈H} log p(h_{i,t}|u); log p(x, h) = signal + log_q."""

    signal: jax.Array
    log_q: jax.Array


class VariationalRuleState(NamedTuple):
    """State of :func:`variational_rule`: the baseline's moving averages (param-shaped)."""

    baseline: BaselineState


class OnlineVariationalRuleState(NamedTuple):
    """State of :func:`online_variational_rule`, per trial (leading axis ``n_trials``).

    Attributes:
        direct: κ-filtered ∇ l_t (and the regulariser's pathwise gradient), a :class:`Params`.
        score: κ-filtered ∇ log p(h_t | u_t), a :class:`Params`.
        signal: ``(n_trials,)`` κ-filtered learning signal ℓ̄_t.
        baseline: the baseline's moving averages (param-shaped, shared by the trials).
    """

    direct: Params
    score: Params
    signal: jax.Array
    baseline: BaselineState


# --------------------------------------------------------------------------------------------
# Learning signal and sampling
# --------------------------------------------------------------------------------------------


def variational_terms(spec: Network, params: Params, spikes, inputs=None) -> VariationalTerms:
    """Learning signal ℓ and log q(h‖x) of full rasters, all bins in parallel.

    Args:
        spec: the network (at least one visible and one hidden neuron). params: its Params.
        spikes: ``(..., T, N)`` full rasters (visible = data, hidden = a sample).
        inputs: ``(..., T, M)`` exogenous inputs when the network has them.

    Returns:
        :class:`VariationalTerms` with fields shaped like the rasters' leading dims.

    Raises:
        ValueError, TypeError: as :func:`probsnn.potentials` (empty, non-binary or non-finite
            data, non-finite params), or a spec without hidden neurons.
    """
    check_hidden_spec(spec)
    _checks.finite_tree(spec.check_params(params), "params")
    _checks.nonempty(spikes, "spikes")
    spikes, inputs = check_data(spec, spikes, inputs)
    return _terms(spec, params, spikes, inputs)


@partial(jax.jit, static_argnums=0)
def _terms(spec, params, spikes, inputs):
    return _split_terms(spec, _log_probs(spec, params, filter_traces(spec, spikes, inputs), spikes))


def sample_hidden(spec: Network, params: Params, visible, *, key, n_samples: int, inputs=None):
    """K completions h ~ q(h‖x) of each visible sequence (the visible neurons clamped).

    Args:
        spec, params: the network. visible: ``(T, N_visible)`` or ``(B, T, N_visible)``.
        key: PRNG key. n_samples: K >= 1. inputs: ``(T, M)`` or ``(B, T, M)``.

    Returns:
        uint8 rasters ``(B, K, T, N)`` (``(K, T, N)`` for unbatched ``visible``).

    Raises:
        ValueError, TypeError: see :func:`probsnn.models.hidden.check_visible` (empty, non-binary
            data); K < 1; non-finite params; a key that is not a PRNG key.
    """
    key = _checks.prng_key(key, "key")
    n_samples = _checks.positive_int(n_samples, "n_samples")
    check_hidden_spec(spec)
    _checks.finite_tree(spec.check_params(params), "params")
    _checks.nonempty(visible, "visible")
    visible, inputs, batched = check_visible(spec, visible, inputs)
    spikes = _sample_completions(spec, params, key, visible, inputs, n_samples)
    return spikes if batched else spikes[0]


def _sample_completions(spec, params, key, visible, inputs, n_samples):
    """``(B, K, T, N)`` completions of validated ``(B, T, N_vis)`` data (traceable)."""
    n_seq, n_steps = visible.shape[:2]
    clamp = jnp.repeat(visible, n_samples, axis=0)
    repeated = None if inputs is None else jnp.repeat(inputs, n_samples, axis=0)
    spikes = sample(
        spec, params, key, n_steps, n_trials=n_seq * n_samples, inputs=repeated, clamp=clamp
    )
    return spikes.reshape(n_seq, n_samples, *spikes.shape[1:])


def _log_probs(spec, params, x, spikes):
    """Per-bin, per-neuron log p(s_{i,t} | u_{i,t}) ``(..., T, N)`` from traces ``x``."""
    return bernoulli_log_prob(spikes, contract(spec, params, x))


def _split_terms(spec, log_probs) -> VariationalTerms:
    visible = jnp.asarray(spec.visible, log_probs.dtype)
    signal = jnp.sum(log_probs * visible, axis=(-2, -1))
    log_q = jnp.sum(log_probs * (1.0 - visible), axis=(-2, -1))
    return VariationalTerms(signal=signal, log_q=log_q)


# --------------------------------------------------------------------------------------------
# Shared pieces of the rules
# --------------------------------------------------------------------------------------------


class _RateTarget(NamedTuple):
    """The regulariser: per-neuron target spike probability r Δ (0.5 on visible neurons, where
    it is unused) and its weight γ_r."""

    probability: np.ndarray
    weight: float


def _rate_target(spec: Network, target_rate, rate_weight) -> _RateTarget | None:
    rate_weight = _checks.nonnegative_float(rate_weight, "rate_weight")
    if target_rate is None:
        if rate_weight > 0:
            raise ValueError("rate_weight > 0 needs a target_rate (Hz)")
        return None
    n_hidden = int(np.sum(spec.hidden))
    rate = np.asarray(_checks.real_array(target_rate, "target_rate", min_ndim=0), np.float64)
    if rate.shape not in ((), (n_hidden,)):
        raise ValueError(
            f"target_rate must be a scalar or have shape ({n_hidden},), one rate per hidden "
            f"neuron, got shape {rate.shape}"
        )
    probability = np.broadcast_to(rate * spec.dt, (n_hidden,))
    if not np.all((probability > 0) & (probability < 1)):
        raise ValueError(
            f"target_rate * dt must lie in (0, 1), got target_rate={target_rate} Hz with "
            f"dt={spec.dt}"
        )
    full = np.full(spec.n_neurons, 0.5)
    full[spec.hidden] = probability
    return _RateTarget(probability=full, weight=float(rate_weight))


def rate_kl(potentials, probability):
    """KL(Bern(σ(u)) ‖ Bern(r)) elementwise, stable for any u (log-sigmoid form).

    Args:
        potentials: u ``(..., N)``. probability: r, broadcastable, in (0, 1).
    """
    p = jax.nn.sigmoid(potentials)
    r = jnp.asarray(probability, potentials.dtype)
    return p * (jax.nn.log_sigmoid(potentials) - jnp.log(r)) + (1.0 - p) * (
        jax.nn.log_sigmoid(-potentials) - jnp.log1p(-r)
    )


def _rate_penalty(spec, target, u):
    """γ_r Σ_{i∈H} KL(Bern(σ(u_{i,t})) ‖ Bern(r_i Δ)) per bin ``(..., T)`` (zero without target)."""
    if target is None:
        return jnp.zeros(u.shape[:-1], u.dtype)
    hidden = jnp.asarray(spec.hidden, u.dtype)
    return target.weight * jnp.sum(rate_kl(u, target.probability) * hidden, axis=-1)


def _bin_terms(spec, target, u, spikes):
    """The direct objective d_t = l_t − penalty_t ``(..., T)`` and the hidden log-probabilities
    ``(..., T, N)`` (zero on visible neurons)."""
    log_probs = bernoulli_log_prob(spikes, u)
    visible = jnp.asarray(spec.visible, u.dtype)
    direct = jnp.sum(log_probs * visible, axis=-1) - _rate_penalty(spec, target, u)
    return direct, log_probs * (1.0 - visible)


def _exponential_filter(x, kappa: float, reverse: bool = False):
    """y_t = κ y_{t∓1} + (1 − κ) x_t along the last axis (causal, or anti-causal with reverse)."""

    def body(carry, x_t):
        carry = blend(carry, x_t, kappa)
        return carry, carry

    moved = jnp.moveaxis(x, -1, 0)
    _, y = jax.lax.scan(body, jnp.zeros_like(moved[0]), moved, reverse=reverse)
    return jnp.moveaxis(y, 0, -1)


def _credit(direct_t, kappa):
    """Per-bin weights ``(A, B)`` ``(..., T)`` of the score and direct gradients.

    kappa None: A_τ = ℓ (full sequence), B_τ = 1. Otherwise A_τ = (1−κ) Σ_{t≥τ} κ^{t−τ} ℓ̄_t and
    B_τ = 1 − κ^{T−τ+1}: the time sums of the online rule's filtered traces.
    """
    if kappa is None:
        total = jnp.sum(direct_t, axis=-1, keepdims=True)
        return jnp.broadcast_to(total, direct_t.shape), jnp.ones_like(direct_t)
    n_steps = direct_t.shape[-1]
    filtered = _exponential_filter(direct_t, kappa)
    score_weight = _exponential_filter(filtered, kappa, reverse=True)
    direct_weight = 1.0 - kappa ** (n_steps - jnp.arange(n_steps, dtype=direct_t.dtype))
    return score_weight, jnp.broadcast_to(direct_weight, direct_t.shape)


def _restrict(grad: Params, neurons) -> Params:
    """Keep the gradient entries of the parameters of ``neurons`` (a (N,) 0/1 mask): the
    postsynaptic index of w and c, the neuron of v and the bias."""
    mask = jnp.asarray(neurons, grad.bias.dtype)
    return Params(
        w=grad.w * mask[None, :, None],
        v=grad.v * mask[:, None],
        c=grad.c * mask[None, :, None],
        bias=grad.bias * mask,
    )


def check_signals(spec: Network, signals) -> VariationalSignals:
    """Validate :class:`VariationalSignals`: 0/1 spikes ``(B, K, T, N)`` (none of B, K, T empty),
    finite real inputs ``(B, T, M)`` (None without inputs); values when concrete.

    Raises:
        TypeError: not VariationalSignals, complex or non-numeric arrays.
        ValueError: wrong shapes, empty axes, non-binary spikes, non-finite inputs.
    """
    if not isinstance(signals, VariationalSignals):
        raise TypeError(
            f"signals must be VariationalSignals(spikes, inputs), got {type(signals).__name__}"
        )
    spikes, inputs = signals
    spikes = _checks.spike_array(spikes, "signals.spikes", min_ndim=1)
    if spikes.ndim != 4 or spikes.shape[-1] != spec.n_neurons:
        raise ValueError(
            f"signals.spikes must have shape (B, K, T, {spec.n_neurons}), got {spikes.shape}"
        )
    _checks.nonempty(spikes, "signals.spikes")
    expected = (spikes.shape[0], spikes.shape[2], spec.n_inputs) if spec.n_inputs else None
    got = None if inputs is None else tuple(np.shape(inputs))
    if got != expected:
        raise ValueError(f"signals.inputs must have shape {expected}, got {got}")
    if inputs is not None:
        _checks.real_array(inputs, "signals.inputs")
    return signals


def signal_traces(spec: Network, signals: VariationalSignals):
    """Traces of the rasters ``(B, K, T, N, ·)``, the inputs shared by the K samples."""
    spikes, inputs = signals
    if inputs is not None:
        inputs = jnp.broadcast_to(inputs[:, None], (*spikes.shape[:2], *inputs.shape[1:]))
    return filter_traces(spec, spikes, inputs)


def _per_sample(tree, values):
    """Multiply each leaf ``(S, ...)`` of ``tree`` by ``values`` ``(S,)``."""
    return jax.tree.map(lambda a: a * values.reshape((-1,) + (1,) * (a.ndim - 1)), tree)


# --------------------------------------------------------------------------------------------
# Batch rule
# --------------------------------------------------------------------------------------------


def variational_rule(
    spec: Network,
    *,
    kappa: float | None = None,
    baseline_kappa: float | None = 0.9,
    target_rate=None,
    rate_weight: float = 0.0,
) -> optax.GradientTransformation:
    """The batch variational rule: an estimate of the gradient of −Σ_sequences ELBO.

    **Loss.** L(θ) = −Σ_b E_{q(h‖x_b)}[Σ_t d_t], with the per-bin direct objective
    d_t = l_t − γ_r Σ_{i∈H} KL(Bern(σ(u_{i,t})) ‖ Bern(r Δ)) (d_t = l_t without the
    regulariser; docs/theory.md §3). Per sample (sequence b, completion k) with
    g_τ = ∇ log p(h_τ | u_τ), the rule returns

        ĝ = −Σ_b mean_k [ Σ_τ B_τ ∇d_τ + Σ_τ (A_τ − b B_τ) g_τ ]

    with (A_τ, B_τ) = (Σ_t d_t, 1) for ``kappa=None`` — an unbiased estimate of ∇L, the
    score-function (REINFORCE, Williams 1992) plus pathwise estimator of Jang, Simeone, Gardner
    & Grüning (2019) — or the online rule's filtered credit for κ ∈ [0, 1) (module docstring;
    biased). The baseline b minimises each coordinate's variance, b = E[G ⊙ e] / E[e²] with
    G = Σ_τ A_τ g_τ and e = Σ_τ B_τ g_τ (for kappa=None b = E[ℓ e²] / E[e²]), from moving
    averages over *earlier* updates, so the estimate stays unbiased (the first update has
    b = 0).

    Args:
        spec: the network (at least one visible and one hidden neuron).
        kappa: None, or the online rule's eligibility factor in [0, 1).
        baseline_kappa: forgetting factor in [0, 1) of the baseline's moving averages; None
            switches the baseline off.
        target_rate: the hidden neurons' target rate in Hz, scalar or ``(N_hidden,)``; None for
            no regulariser. rate_weight: γ_r >= 0.

    Returns:
        ``optax.GradientTransformation``: ``init(params) -> VariationalRuleState``;
        ``update(signals: VariationalSignals, state, params) -> (grads, state)``, ``grads`` a
        :class:`~probsnn.Params` estimate of ∇L (spikes ``(B, K, T, N)``, inputs
        ``(B, T, M)``). Compute in float64 by passing float64 spikes.

    Raises:
        ValueError, TypeError: a spec without hidden neurons, κ outside [0, 1), a target rate of
            the wrong shape or outside (0, 1/dt), rate_weight < 0; at update, signals of the
            wrong shape.
    """
    check_hidden_spec(spec)
    kappa = None if kappa is None else check_kappa(kappa)
    if baseline_kappa is not None:
        baseline_kappa = check_kappa(baseline_kappa, "baseline_kappa")
    target = _rate_target(spec, target_rate, rate_weight)

    def init(params):
        return VariationalRuleState(init_baseline(params))

    def update(signals, state, params=None):
        require_params(params, "variational_rule")
        signals = check_signals(spec, signals)
        n_samples = signals.spikes.shape[1]
        x = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), signal_traces(spec, signals))
        spikes = signals.spikes.reshape(-1, *signals.spikes.shape[2:])  # (S, T, N)

        def terms(p, x_s, spikes_s):
            return _bin_terms(spec, target, contract(spec, p, x_s), spikes_s)

        direct_t, _ = terms(params, x, spikes)
        score_weight, direct_weight = _credit(direct_t, kappa)

        def weighted_hidden(p, x_s, spikes_s, weight):
            return jnp.sum(weight[:, None] * terms(p, x_s, spikes_s)[1])

        per_sample = jax.vmap(jax.grad(weighted_hidden), in_axes=(None, 0, 0, 0))
        scores = per_sample(params, x, spikes, direct_weight)  # e_s
        if kappa is None:
            weighted = _per_sample(scores, score_weight[:, 0])  # G_s = ℓ_s e_s
        else:
            weighted = per_sample(params, x, spikes, score_weight)  # G_s
        new_state = state
        if baseline_kappa is not None:
            b = baseline_ratio(state.baseline, 0.0)
            products = jax.tree.map(lambda g, e: jnp.mean(g * e, axis=0), weighted, scores)
            squares = jax.tree.map(lambda e: jnp.mean(e**2, axis=0), scores)
            weighted = jax.tree.map(lambda g, e, b_leaf: g - b_leaf * e, weighted, scores, b)
            new_state = VariationalRuleState(
                blend_moments(state.baseline, products, squares, baseline_kappa)
            )
        direct = jax.grad(lambda p: jnp.sum(direct_weight * terms(p, x, spikes)[0]))(params)
        grads = jax.tree.map(lambda d, g: -(d + jnp.sum(g, axis=0)) / n_samples, direct, weighted)
        return spec.masked(grads), new_state

    return optax.GradientTransformation(init, update)


# --------------------------------------------------------------------------------------------
# Online (streaming) rule
# --------------------------------------------------------------------------------------------


def online_variational_rule(
    spec: Network,
    kappa: float,
    *,
    n_trials: int = 1,
    baseline: bool = True,
    target_rate=None,
    rate_weight: float = 0.0,
) -> optax.GradientTransformation:
    """The streaming rule of docs/theory.md §3, one bin per update: an estimate of the gradient
    of −ELBO that needs only the present bin.

    **Loss.** −Σ_trials ELBO (with the rate penalty of :func:`variational_rule`), streamed bin by
    bin. Per trial, with the bin's direct objective d_t = l_t − γ_r KL_t:

        ℓ̄_t = κ ℓ̄_{t−1} + (1−κ) d_t,   e^X_t = κ e^X_{t−1} + (1−κ) ∇d_t,
        e^H_t = κ e^H_{t−1} + (1−κ) ∇log p(h_t | u_t),
        g_t = −Σ_trials [e^X_t + (ℓ̄_t − b_t) e^H_t]

    (Jang, Simeone, Gardner & Grüning 2019, IEEE SPM 36(6), online learning). Summed over the
    bins of a sequence at fixed θ this is :func:`variational_rule` with the same κ: the credit a
    hidden spike receives from later bins decays with κ, so the estimate of ∇(−ELBO) is biased
    towards the visible (pathwise) term. The per-parameter baseline b_t = m_P / m_Q comes from
    moving averages (factor κ) of ℓ̄ (e^H)² and (e^H)² over earlier bins. Memory: a few
    parameter-shaped arrays per trial, whatever the sequence length.

    Args:
        spec: the network (at least one visible and one hidden neuron).
        kappa: eligibility factor κ in [0, 1).
        n_trials: trials streamed in parallel (each with its own traces and learning signal).
        baseline: use the per-parameter baseline (else b = 0).
        target_rate, rate_weight: the hidden-rate regulariser, as in :func:`variational_rule`.

    Returns:
        ``optax.GradientTransformation``: ``init(params) -> OnlineVariationalRuleState``;
        ``update(signals: MLSignals, state, params) -> (grads, state)``, the signals holding
        the bin's traces (syn ``(n_trials, N, K_syn)`` …, see :func:`probsnn.history.traces`)
        and full spikes ``(n_trials, N)`` (visible data, sampled hidden); ``grads`` is g_t.

    Raises:
        ValueError: κ outside [0, 1), a spec without hidden neurons, bad regulariser settings;
            at update, spikes not shaped ``(n_trials, N)`` or not binary, traces that do not
            match (:func:`probsnn.inference.likelihood.online.check_signals`).
        TypeError: at update, signals that are not :class:`MLSignals`.
    """
    check_hidden_spec(spec)
    kappa = check_kappa(kappa)
    n_trials = _checks.positive_int(n_trials, "n_trials")
    target = _rate_target(spec, target_rate, rate_weight)
    visible = np.asarray(spec.visible, np.float32)

    def init(params):
        per_trial = jax.tree.map(lambda a: jnp.zeros((n_trials, *a.shape), a.dtype), params)
        signal = jnp.zeros((n_trials,), params.bias.dtype)
        return OnlineVariationalRuleState(per_trial, per_trial, signal, init_baseline(params))

    def update(signals, state, params=None):
        require_params(params, "online_variational_rule")
        check_ml_signals(spec, signals)
        if tuple(signals.spikes.shape) != (n_trials, spec.n_neurons):
            raise ValueError(
                f"signals.spikes must have shape ({n_trials}, {spec.n_neurons}) (n_trials, N) "
                f"for one bin, got {tuple(signals.spikes.shape)}"
            )

        def penalty(p, traces):
            return _rate_penalty(spec, target, contract(spec, p, traces))

        def per_trial(traces, spikes):
            grad = local_gradient(spec, params, MLSignals(traces, spikes))  # ∇ log p (score)
            direct = _restrict(grad, visible)
            if target is not None:
                direct = jax.tree.map(jnp.subtract, direct, jax.grad(penalty)(params, traces))
            u = contract(spec, params, traces)
            signal = _bin_terms(spec, target, u[None], spikes[None])[0][0]
            return direct, _restrict(grad, 1.0 - visible), signal

        direct_t, score_t, signal_t = jax.vmap(per_trial)(signals.traces, signals.spikes)
        direct = blend(state.direct, direct_t, kappa)
        score = blend(state.score, score_t, kappa)
        signal = blend(state.signal, signal_t, kappa)
        baseline_state = state.baseline
        b = jax.tree.map(jnp.zeros_like, params)
        if baseline:
            b = baseline_ratio(state.baseline, 0.0)
            squares = jax.tree.map(lambda e: jnp.mean(e**2, axis=0), score)
            products = jax.tree.map(lambda e: jnp.mean(_per_sample(e**2, signal), axis=0), score)
            baseline_state = blend_moments(state.baseline, products, squares, kappa)
        centred = jax.tree.map(lambda e, b_leaf: _per_sample(e, signal) - b_leaf * e, score, b)
        grads = jax.tree.map(lambda d, c: -jnp.sum(d + c, axis=0), direct, centred)
        return spec.masked(grads), OnlineVariationalRuleState(direct, score, signal, baseline_state)

    return optax.GradientTransformation(init, update)


class OnlineVariationalFit(NamedTuple):
    """Result of :func:`fit_variational_online`: final params and the per-bin learning signal
    Σ_trials l_t ``(T,)``, each evaluated before that bin's update."""

    params: Params
    learning_signal: jax.Array


def fit_variational_online(
    spec: Network,
    params: Params,
    visible,
    *,
    key,
    kappa: float,
    inputs=None,
    learning_rate: float = 1e-2,
    optimizer: optax.GradientTransformation | None = None,
    baseline: bool = True,
    target_rate=None,
    rate_weight: float = 0.0,
) -> OnlineVariationalFit:
    """Stream over the bins of ``visible``: sample the hidden spikes of the bin from q, apply
    :func:`online_variational_rule`, update the weights — every bin, in one ``lax.scan``.

    What it adds to :func:`probsnn.inference.fit`: one update per bin over recordings of any
    length in constant memory — traces come from :mod:`probsnn.history` (recursive trace states
    for :class:`~probsnn.kernels.RecursiveBasis` bases, else ring buffers of the last L bins)
    and each bin's
    PRNG key is folded from ``key`` and the bin index, so neither the data's time axis nor the
    samples are ever materialised beyond one bin.

    Args:
        spec, params: the network and its starting parameters.
        visible: ``(T, N_visible)`` or ``(n_trials, T, N_visible)`` (trials run in parallel).
        key: PRNG key. kappa: eligibility factor κ in [0, 1).
        inputs: ``(T, M)`` or ``(n_trials, T, M)`` exogenous inputs.
        learning_rate: η of plain gradient descent ``optax.sgd(η)`` when ``optimizer`` is None.
        optimizer: an optax optimizer applied to the rule's gradients of −ELBO (e.g.
            ``optax.adam(1e-3)``; not a string).
        baseline, target_rate, rate_weight: as in :func:`online_variational_rule`.

    Returns:
        :class:`OnlineVariationalFit`.

    Raises:
        ValueError, TypeError: bad data (empty, non-binary: see
            :func:`probsnn.models.hidden.check_visible`), non-finite params, κ outside [0, 1),
            bad regulariser settings, learning_rate <= 0, a key that is not a PRNG key, an
            optimizer that is not an optax transformation.
    """
    key = _checks.prng_key(key, "key")
    check_hidden_spec(spec)
    _checks.finite_tree(spec.check_params(params), "params")
    _checks.nonempty(visible, "visible")
    if inputs is not None:
        _checks.nonempty(inputs, "inputs")
    visible, inputs, _ = check_visible(spec, visible, inputs)
    learning_rate = _checks.positive_float(learning_rate, "learning_rate")
    if optimizer is not None:
        _checks.optimizer(optimizer)
    # validates κ and the regulariser before tracing
    online_variational_rule(
        spec, kappa, baseline=baseline, target_rate=target_rate, rate_weight=rate_weight
    )
    n_hidden = int(np.sum(spec.hidden))
    rule_options = (
        float(kappa),
        bool(baseline),
        None if target_rate is None else tuple(np.broadcast_to(target_rate, n_hidden).tolist()),
        float(rate_weight),
    )
    dtype = params.bias.dtype
    visible = jnp.asarray(visible, dtype)
    inputs = None if inputs is None else jnp.asarray(inputs, dtype)
    params, signal = _stream(
        spec, rule_options, optimizer, learning_rate, params, key, visible, inputs
    )
    return OnlineVariationalFit(params=params, learning_signal=signal)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _stream(spec, rule_options, optimizer, learning_rate, params, key, visible, inputs):
    """One compilation per (spec, rule settings, optimizer, shapes); η is traced."""
    kappa, baseline, target_rate, rate_weight = rule_options
    n_trials = visible.shape[0]
    rule = online_variational_rule(
        spec,
        kappa,
        n_trials=n_trials,
        baseline=baseline,
        target_rate=None if target_rate is None else np.asarray(target_rate),
        rate_weight=rate_weight,
    )
    optimizer = optax.sgd(learning_rate) if optimizer is None else optimizer
    transform = optax.chain(rule, optimizer)
    visible_index = np.flatnonzero(spec.visible)
    is_visible = jnp.asarray(spec.visible)

    def body(carry, _):
        params, opt_state, past = carry
        # bin t read in place (no time-major copy of the data: memory stays constant in T)
        visible_t = jax.lax.dynamic_index_in_dim(visible, past.t, axis=1, keepdims=False)
        input_t = None
        if inputs is not None:
            input_t = jax.lax.dynamic_index_in_dim(inputs, past.t, axis=1, keepdims=False)
        traces = history.traces(spec, past)
        u = contract(spec, params, traces)  # (n_trials, N)
        clamp_t = jnp.zeros_like(u).at[:, visible_index].set(visible_t)
        spikes_t = emit_spikes(jax.random.fold_in(key, past.t), u, clamp_t, spec.visible)
        spikes_t = spikes_t.astype(u.dtype)
        signal = jnp.sum(bernoulli_log_prob(spikes_t, u) * is_visible)
        updates, opt_state = transform.update(MLSignals(traces, spikes_t), opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, history.push(spec, past, spikes_t, input_t)), signal

    past = history.init(spec, (n_trials,), visible.dtype)
    carry = (params, transform.init(params), past)
    (params, _, _), signal = jax.lax.scan(body, carry, None, length=visible.shape[1])
    return params, signal
