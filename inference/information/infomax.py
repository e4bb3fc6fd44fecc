"""Learning spike codes by variational mutual-information criteria: estimator, rule, trainer.

An :class:`InformationCriterion` (constructors in :mod:`.criteria`) is a per-sample objective
f_{θ,ψ}(s; x, y) of the network's spikes s ~ p_θ(s‖x) given exogenous inputs x (and, for the
bottleneck, targets y), with a learned read-out ψ (decoder or critic). Learning minimises its
negative expectation, the **loss** (docs/learning.md; docs/theory.md §4)

    L(θ, ψ) = −J(θ, ψ) = −E_{p(x)} E_{p_θ(s‖x)}[f_{θ,ψ}(s; x, y)],

through the spikes with the score-function identity (Williams 1992; docs/theory.md §3):

    ∇_θ L = E[(ℓ − b) ∇_θ log p_θ(s‖x)] + E[∇_θ ℓ],     ∇_ψ L = E[∇_ψ ℓ],     ℓ = −f,

where ∇_θ log p_θ(s‖x) = Σ_t x_t (s_t − σ(u_t)) is the local presynaptic-trace × postsynaptic-
error score of the ML rule (:func:`probsnn.inference.likelihood.online.local_gradient`), ℓ − b a
global third factor, and b a baseline that does not depend on s: the mean of the other samples
drawn for the same input (``"loo"``, K >= 2 samples per input, Kool et al. 2019), or the
per-parameter variance-optimal constant tracked by moving averages (``"optimal"``,
:func:`probsnn.inference.score.optimal_baseline`). The optimal baseline needs the per-sample
scores (:func:`sample_scores`, memory S × parameters); the others contract the centred signals
with the scores in one backward pass (:func:`weighted_score`).

Samples are laid out ``(B, K, T, N)``: K spike trains of each of B inputs ``(B, T, M)``.

:func:`infomax_rule` is this estimator as an optax gradient transformation (same sign as
``jax.grad`` of L: chain it with ``optax.adam(lr)``). :func:`infomax_trainer` samples the spikes
and applies the rule and an optimizer, in the trainer protocol of
:func:`probsnn.inference.fit`; :func:`evaluate_infomax` measures the loss and the criterion's
metrics on held-out inputs (for validation, e.g. in a ``fit`` callback).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
from probsnn.glm import bernoulli_log_prob, contract, traces
from probsnn.inference._training import Trainer, require_params
from probsnn.inference.likelihood.online import MLSignals, local_gradient
from probsnn.inference.score import (
    BaselineState,
    check_kappa,
    init_baseline,
    leave_one_out,
    optimal_baseline,
    score_gradient,
)
from probsnn.network import Network, Params
from probsnn.simulate import sample

BASELINES = ("loo", "optimal", "none")


class InformationCriterion(NamedTuple):
    """A per-sample objective f to maximise in expectation over the network's spikes; its
    negative mean is the loss that :func:`infomax_rule` and :func:`infomax_trainer` minimise.

    Attributes:
        name: for messages and progress bars.
        signal: ``(spec, hyper, params, readout, spikes, inputs, targets) -> (f, metrics)`` with
            spikes ``(B, K, T, N)`` float (K samples of each of B inputs ``(B, T, M)``), f
            ``(B, K)`` the per-sample objective and metrics a dict of scalars; differentiable in
            params and readout with the spikes held fixed. f of sample (b, k) may depend on all
            inputs and targets of the batch but on no other sample's spikes. A module-level
            function, so that trainers of criteria differing only in ``hyper`` share one
            compilation.
        hyper: the criterion's numbers and arrays (β, γ, r, …), passed to ``signal`` traced.
        init_readout: ``key -> ψ``, the read-out's initial parameters (a pytree, may be ``()``):
            the initial :class:`InfoMaxParams` are ``InfoMaxParams(network_params,
            criterion.init_readout(key))``.
        needs_targets: whether the criterion reads targets ``(B,)`` (the bottleneck).
    """

    name: str
    signal: Callable
    hyper: dict
    init_readout: Callable
    needs_targets: bool = False


def evaluate_signal(
    spec: Network,
    criterion: InformationCriterion,
    params: Params,
    readout,
    spikes,
    inputs,
    targets=None,
):
    """``criterion.signal`` with its hyper-parameters: ``(f (B, K), metrics)``."""
    return criterion.signal(spec, criterion.hyper, params, readout, spikes, inputs, targets)


class InfoMaxParams(NamedTuple):
    """Everything learned: the network's :class:`~probsnn.Params` and the read-out ψ (build it
    with the criterion's ``init_readout(key)``)."""

    network: Params
    readout: Any


class InfoMaxSignals(NamedTuple):
    """What :func:`infomax_rule` reads: spikes ``(B, K, T, N)`` sampled from p_θ(s‖x) for the
    inputs ``(B, T, M)``, and targets ``(B,)`` int (None unless the criterion needs them)."""

    spikes: jax.Array
    inputs: jax.Array
    targets: jax.Array | None = None


class InfoMaxRuleState(NamedTuple):
    """State of :func:`infomax_rule`: the optimal baseline's moving averages (None for the
    ``"loo"`` and ``"none"`` baselines)."""

    baseline: BaselineState | None


def as_float(x):
    """``x`` as a float array: its own dtype when floating, else float32 (spikes stored as
    bool/uint8 are computed in float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def spike_counts(spikes):
    """Spike counts over time, ``(..., T, N) -> (..., N)`` float: the read-outs' features."""
    return jnp.sum(as_float(spikes), axis=-2)


def sample_scores(spec: Network, params: Params, spikes, inputs) -> Params:
    """Per-sample scores ∇_θ log p_θ(s‖x) = Σ_t ∇_θ log p(s_t | u_t), the local ML gradient.

    Args:
        spikes: ``(S, T, N)`` samples; inputs: ``(S, T, M)`` their inputs.

    Returns:
        :class:`~probsnn.Params` with leaves ``(S, ...)``.
    """
    spikes = jnp.asarray(spikes, params.bias.dtype)
    x = traces(spec, spikes, jnp.asarray(inputs, params.bias.dtype))

    def one(sample_traces, sample_spikes):
        return local_gradient(spec, params, MLSignals(sample_traces, sample_spikes))

    return jax.vmap(one)(x, spikes)


def weighted_score(spec: Network, params: Params, spikes, inputs, weights) -> Params:
    """Σ_s w_s ∇_θ log p_θ(s_s‖x_s) in one backward pass: the same local pre-trace × error
    terms as :func:`sample_scores`, contracted with the weights without storing per-sample
    scores (spikes ``(S, T, N)``, inputs ``(S, T, M)``, weights ``(S,)``)."""
    spikes = jnp.asarray(spikes, params.bias.dtype)
    x = traces(spec, spikes, jnp.asarray(inputs, params.bias.dtype))

    def weighted_log_likelihood(p):
        log_p = jnp.sum(bernoulli_log_prob(spikes, contract(spec, p, x)), axis=(-2, -1))
        return jnp.sum(jax.lax.stop_gradient(weights) * log_p)

    return jax.grad(weighted_log_likelihood)(params)


def infomax_gradient(
    spec: Network,
    criterion: InformationCriterion,
    params: InfoMaxParams,
    signals: InfoMaxSignals,
    baseline: str = "none",
    moments: BaselineState | None = None,
    kappa: float = 0.0,
):
    """One score-function estimate of ∇L (module equation) from the spikes in ``signals``.

    Args:
        spec, criterion, params: the network, the criterion and the current parameters.
        signals: :class:`InfoMaxSignals` with K samples of each of B inputs.
        baseline: ``"loo"``, ``"optimal"`` or ``"none"`` (see :func:`infomax_rule`).
        moments: the optimal baseline's moving averages (required for ``"optimal"``).
        kappa: their forgetting factor.

    Returns:
        ``(gradient: InfoMaxParams, f (B, K), metrics, moments)`` — the estimate is the mean
        over the B·K samples of (ℓ − b) ∇ log p(s‖x) + ∇ℓ with ℓ = −f, and ``moments`` the
        updated moving averages (None unless ``"optimal"``).

    Raises:
        ValueError, TypeError: an unknown baseline, ``"optimal"`` without ``moments``, signals
            of the wrong shapes or values (see :func:`infomax_rule`).
    """
    check_baseline(baseline, np.shape(signals.spikes)[1] if np.ndim(signals.spikes) > 1 else 0)
    if baseline == "optimal" and moments is None:
        raise ValueError("baseline='optimal' needs moments (init_baseline(params.network))")
    _check_signals(spec, criterion, signals)
    spikes = as_float(signals.spikes)
    batch, k = spikes.shape[:2]

    def loss(p):
        f, metrics = evaluate_signal(
            spec, criterion, p.network, p.readout, spikes, signals.inputs, signals.targets
        )
        return -jnp.mean(f), (f, metrics)

    pathwise, (f, metrics) = jax.grad(loss, has_aux=True)(params)
    f = jax.lax.stop_gradient(f)
    sample_loss = -f
    flat_spikes = spikes.reshape(batch * k, *spikes.shape[2:])
    own_inputs = jnp.broadcast_to(signals.inputs[:, None], (batch, k, *signals.inputs.shape[1:]))
    flat_inputs = own_inputs.reshape(batch * k, *signals.inputs.shape[1:])
    if baseline == "optimal":
        scores = sample_scores(spec, params.network, flat_spikes, flat_inputs)
        offset, moments = optimal_baseline(moments, sample_loss.ravel(), scores, kappa)
        through_spikes = score_gradient(sample_loss.ravel(), scores, offset)
    else:
        centred = leave_one_out(sample_loss, axis=1) if baseline == "loo" else sample_loss
        through_spikes = weighted_score(
            spec, params.network, flat_spikes, flat_inputs, centred.ravel() / centred.size
        )
    network = jax.tree.map(jnp.add, pathwise.network, through_spikes)
    return InfoMaxParams(network, pathwise.readout), f, metrics, moments


def check_baseline(baseline: str, n_samples: int) -> None:
    """Raise unless ``baseline`` is known and usable with ``n_samples`` samples per input."""
    _checks.option(baseline, "baseline", BASELINES)
    if baseline == "loo" and n_samples < 2:
        raise ValueError(f"baseline='loo' needs n_samples >= 2 per input, got {n_samples}")


def infomax_rule(
    spec: Network, criterion: InformationCriterion, baseline: str = "loo", kappa: float = 0.9
) -> optax.GradientTransformation:
    """The score-function estimate of the gradient of the criterion's loss, as an optax
    gradient transformation (docs/learning.md).

    The loss is L = −E[f] (module equation), the negative of the criterion's objective:
    −(Barber–Agakov bound − H(X)) for :func:`~.criteria.barber_agakov`, −InfoNCE for
    :func:`~.criteria.infonce`, E[−log q(y | s) + β KL] for
    :func:`~.criteria.information_bottleneck`, −(I(X;Y) − γ KL) estimated as in
    :func:`~.criteria.rate_penalised_infomax`. The estimate has the sign of ``jax.grad`` of L:
    use ``optax.chain(infomax_rule(...), optax.adam(lr))``.

    Args:
        spec: a network with exogenous inputs. criterion: an :class:`InformationCriterion`.
        baseline: ``"loo"`` (mean of the other samples of the same input; needs K >= 2),
            ``"optimal"`` (per-parameter E[ℓ e²]/E[e²], moving averages with forgetting
            ``kappa``) or ``"none"``.
        kappa: forgetting factor of the optimal baseline, in [0, 1).

    Returns:
        ``init(params: InfoMaxParams) -> InfoMaxRuleState``;
        ``update(signals: InfoMaxSignals, state, params) -> (grads: InfoMaxParams, state)``,
        ``grads`` the estimate of ∇L from the samples ``(B, K, T, N)`` of the signals.

    Raises:
        TypeError: ``spec`` not a Network, ``criterion`` not an InformationCriterion; at update,
            signals that are not InfoMaxSignals or hold complex values. ValueError: a network
            without inputs, an unknown baseline, κ outside [0, 1); at update, signals of the
            wrong shapes, non-binary spikes, non-finite inputs, K < 2 with ``"loo"``, targets
            missing for a criterion that needs them, params missing or non-finite.
    """
    _check_spec(spec)
    _check_criterion(criterion)
    check_baseline(baseline, 2)
    kappa = check_kappa(kappa)
    static = criterion._replace(hyper=None, init_readout=None)

    def init(params):
        moments = init_baseline(params.network) if baseline == "optimal" else None
        return InfoMaxRuleState(moments)

    def update(signals, state, params=None):
        require_params(params, "infomax_rule")
        _check_params(spec, params)
        _check_signals(spec, criterion, signals)
        check_baseline(baseline, signals.spikes.shape[1])
        gradient, moments = _rule_gradient(
            spec, static, baseline, kappa, criterion.hyper, params, signals, state.baseline
        )
        return gradient, InfoMaxRuleState(moments)

    return optax.GradientTransformation(init, update)


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _rule_gradient(spec, criterion, baseline, kappa, hyper, params, signals, moments):
    """:func:`infomax_gradient` compiled once per network, criterion, baseline and shapes
    (the criterion's hyper-parameters traced)."""
    criterion = criterion._replace(hyper=hyper)
    gradient, _, _, moments = infomax_gradient(
        spec, criterion, params, signals, baseline, moments, kappa
    )
    return gradient, moments


def _check_spec(spec):
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    if spec.n_inputs == 0:
        raise ValueError(
            "the information criteria need a network with exogenous inputs x (n_inputs > 0)"
        )


def _check_criterion(criterion):
    if not isinstance(criterion, InformationCriterion):
        raise TypeError(
            "criterion must be an InformationCriterion (e.g. barber_agakov(spec)), got "
            f"{type(criterion).__name__}"
        )


def _check_params(spec, params):
    """``params`` must be :class:`InfoMaxParams` with the network's shapes, every leaf finite."""
    if not isinstance(params, InfoMaxParams):
        raise TypeError(
            "params must be InfoMaxParams(network_params, readout), the read-out from "
            f"criterion.init_readout(key); got {type(params).__name__}"
        )
    _checks.finite_tree(params, "params")  # named by their path, e.g. params.network.bias
    spec.check_params(params.network)


def _check_signals(spec, criterion, signals):
    if not isinstance(signals, InfoMaxSignals):
        raise TypeError(f"signals must be InfoMaxSignals, got {type(signals).__name__}")
    spikes = _checks.spike_array(signals.spikes, "signals.spikes", min_ndim=1)
    inputs = _checks.real_array(signals.inputs, "signals.inputs")
    if spikes.ndim != 4 or spikes.shape[-1] != spec.n_neurons:
        raise ValueError(
            f"signals.spikes must have shape (B, K, T, {spec.n_neurons}), got {spikes.shape}"
        )
    _checks.nonempty(spikes, "signals.spikes")
    expected = (spikes.shape[0], spikes.shape[2], spec.n_inputs)
    if tuple(inputs.shape) != expected:
        raise ValueError(f"signals.inputs must have shape {expected}, got {tuple(inputs.shape)}")
    if criterion.needs_targets:
        if signals.targets is None:
            raise ValueError(f"the {criterion.name} criterion needs targets, got None")
        _check_targets(signals.targets, spikes.shape[0], "signals.targets")


def _check_targets(targets, n_items: int, name: str):
    """``targets`` ``(n_items,)`` integers (non-negative, when concrete)."""
    dtype = targets.dtype if hasattr(targets, "dtype") else np.asarray(targets).dtype
    shape = tuple(np.shape(targets))
    if not jnp.issubdtype(dtype, jnp.integer) or shape != (n_items,):
        raise ValueError(f"{name} must be ({n_items},) integers, got {dtype} {shape}")
    if _checks.is_concrete(targets) and np.any(np.asarray(targets) < 0):
        raise ValueError(f"{name} must be class indices >= 0, got {np.min(targets)}")


# ------------------------------------------------------------------------------------ trainer


class InfoMaxState(NamedTuple):
    """:func:`infomax_trainer` state: the learned :class:`InfoMaxParams`, the rule's state
    (the optimal baseline's moving averages) and the optimizer's state."""

    params: InfoMaxParams
    rule_state: InfoMaxRuleState
    opt_state: Any


class InfoMaxInfo(NamedTuple):
    """Diagnostics of one :func:`infomax_trainer` step, before its update: ``loss`` the mean
    of ℓ = −f over the B·K samples (the estimate of L), ``loss_std`` its spread across
    samples, and the criterion's ``metrics`` (dict of scalars; ``fit`` records them as
    ``metrics_<name>``)."""

    loss: jax.Array
    loss_std: jax.Array
    metrics: dict


class _StepConfig(NamedTuple):
    """The static (hashable) part of a trainer: one compilation per distinct config."""

    spec: Network
    criterion: InformationCriterion  # with hyper and init_readout set to None
    optimizer: optax.GradientTransformation
    n_samples: int
    baseline: str
    kappa: float


def infomax_trainer(
    spec: Network,
    criterion: InformationCriterion,
    optimizer: optax.GradientTransformation,
    *,
    n_samples: int = 4,
    baseline: str = "loo",
    kappa: float = 0.9,
) -> Trainer:
    """A :class:`~probsnn.inference.Trainer` that follows :func:`infomax_rule` with
    ``optimizer`` (e.g. ``optax.adam(1e-2)``), minimising the criterion's loss L = −E[f].

    ``init(params: InfoMaxParams) -> InfoMaxState``, the initial parameters built as
    ``InfoMaxParams(network_params, criterion.init_readout(key))``.
    ``step(key, state, batch) -> (InfoMaxState, InfoMaxInfo)``: ``batch`` is inputs
    ``(B, T, M)``, or ``(inputs, targets (B,) int)`` for a criterion that needs targets; the
    step draws ``n_samples`` spike trains s ~ p_θ(s‖x) per input with :func:`probsnn.sample`,
    estimates ∇L with the rule and applies the optimizer. Train with
    ``probsnn.inference.fit(trainer, params, inputs or (inputs, targets), key=…, epochs=…,
    batch_size=…)``. Trainers built with the same network, optimizer object and settings from
    criteria that differ only in their hyper-parameters (β, γ, r, …) share one compiled step.

    Raises:
        ValueError: as :func:`infomax_rule`, or ``n_samples`` < 1 (< 2 with ``"loo"``); at
            init, params that are not :class:`InfoMaxParams` of the network or not finite; at
            step, an empty batch or one of the wrong shape or with non-finite inputs, targets
            missing or given where not needed.
        TypeError: an optimizer that is not an optax transformation (e.g. a string), a criterion
            that is not an InformationCriterion; at step, a key that is not a PRNG key.
    """
    _check_spec(spec)
    _check_criterion(criterion)
    _checks.optimizer(optimizer)
    n_samples = _checks.positive_int(n_samples, "n_samples")
    check_baseline(baseline, n_samples)
    kappa = check_kappa(kappa)
    config = _StepConfig(
        spec,
        criterion._replace(hyper=None, init_readout=None),
        optimizer,
        n_samples,
        baseline,
        kappa,
    )

    def init(params):
        _check_params(spec, params)
        moments = init_baseline(params.network) if baseline == "optimal" else None
        return InfoMaxState(params, InfoMaxRuleState(moments), optimizer.init(params))

    def step(key, state, batch):
        key = _checks.prng_key(key, "key")
        inputs, targets = _check_batch(spec, criterion, batch)
        _check_classes(state.params.readout, targets)
        spikes = _draw(spec, n_samples, state.params.network, key, inputs)
        return _train_step(config, criterion.hyper, state, spikes, inputs, targets)

    return Trainer(init, step)


def _draw(spec: Network, n_samples: int, network: Params, key, inputs):
    """K = n_samples spike trains per input with :func:`probsnn.sample` (compiled once per
    network and batch shape, shared by training and evaluation): ``(B, K, T, N)`` float32."""
    batch = inputs.shape[0]
    tiled = jnp.repeat(inputs, n_samples, axis=0)  # (B·K, T, M), input b's samples together
    spikes = sample(spec, network, key, inputs.shape[1], batch * n_samples, inputs=tiled)
    return spikes.reshape(batch, n_samples, *spikes.shape[1:]).astype(jnp.float32)


@partial(jax.jit, static_argnums=0)
def _train_step(config: _StepConfig, hyper, state: InfoMaxState, spikes, inputs, targets):
    criterion = config.criterion._replace(hyper=hyper)
    signals = InfoMaxSignals(spikes, inputs, targets)
    grads, f, metrics, moments = infomax_gradient(
        config.spec,
        criterion,
        state.params,
        signals,
        config.baseline,
        state.rule_state.baseline,
        config.kappa,
    )
    updates, opt_state = config.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    info = InfoMaxInfo(-jnp.mean(f), jnp.std(f), metrics)
    return InfoMaxState(params, InfoMaxRuleState(moments), opt_state), info


@partial(jax.jit, static_argnums=(0, 1))
def _signal(spec: Network, criterion, hyper, params: InfoMaxParams, spikes, inputs, targets):
    criterion = criterion._replace(hyper=hyper)
    return evaluate_signal(spec, criterion, params.network, params.readout, spikes, inputs, targets)


def evaluate_infomax(
    spec: Network,
    criterion: InformationCriterion,
    params: InfoMaxParams,
    key,
    data,
    *,
    n_samples: int = 4,
    batch_size: int | None = None,
) -> dict[str, float]:
    """The criterion's loss and metrics on ``data`` without an update (validation).

    Draws ``n_samples`` spike trains per input and evaluates the criterion on consecutive
    batches of ``batch_size`` inputs (the last ``n mod batch_size`` are left out; InfoNCE's
    bound depends on the batch size, so validate with the training batch size).

    Args:
        spec, criterion: as :func:`infomax_trainer`. params: :class:`InfoMaxParams`.
        key: PRNG key for the spikes.
        data: inputs ``(n, T, M)``, or ``(inputs, targets (n,) int)`` for a criterion that
            needs targets (the trainer's batch format).
        n_samples: K spike trains per input. batch_size: inputs per batch (default all n).

    Returns:
        dict of floats averaged over the batches: ``loss`` (the mean of −f) and each of the
        criterion's metrics (``bound``, ``rate``, ``accuracy``, … as the criterion documents).

    Raises:
        ValueError: bad data (empty, wrong shapes, non-finite), non-finite params,
            ``n_samples`` < 1, a batch size outside 1..n.
        TypeError: a key that is not a PRNG key, params that are not InfoMaxParams.
    """
    _check_spec(spec)
    _check_criterion(criterion)
    _check_params(spec, params)
    key = _checks.prng_key(key, "key")
    n_samples = _checks.positive_int(n_samples, "n_samples")
    inputs, targets = _check_batch(spec, criterion, data)
    _check_classes(params.readout, targets)
    n = inputs.shape[0]
    batch_size = n if batch_size is None else _checks.positive_int(batch_size, "batch_size")
    if batch_size > n:
        raise ValueError(f"batch_size must lie in 1..{n} (the number of inputs), got {batch_size}")
    static = criterion._replace(hyper=None, init_readout=None)
    results = []
    for index, start in enumerate(range(0, n - batch_size + 1, batch_size)):
        rows = slice(start, start + batch_size)
        batch_targets = None if targets is None else targets[rows]
        spikes = _draw(
            spec, n_samples, params.network, jax.random.fold_in(key, index), inputs[rows]
        )
        f, metrics = _signal(
            spec, static, criterion.hyper, params, spikes, inputs[rows], batch_targets
        )
        results.append({"loss": -jnp.mean(f), **metrics})
    results = jax.device_get(results)
    return {name: float(np.mean([r[name] for r in results])) for name in results[0]}


def _check_classes(readout, targets):
    """Targets must index the classes of a :class:`~.criteria.LinearReadout` ``(N, C)`` (the
    bottleneck's decoder): an index >= C would be read out of bounds."""
    weight = getattr(readout, "weight", None)
    if targets is None or weight is None or not _checks.is_concrete(targets):
        return
    n_classes = np.shape(weight)[-1]
    if np.any(np.asarray(targets) >= n_classes):
        raise ValueError(
            f"targets must be class indices in 0..{n_classes - 1} (the read-out's classes), got "
            f"{int(np.max(targets))}"
        )


def _check_batch(spec, criterion, batch):
    """A batch (inputs, or (inputs, targets)) as float32 inputs and int32 targets or None."""
    if isinstance(batch, tuple | list):
        if len(batch) != 2:
            raise ValueError(f"batch must be inputs or (inputs, targets), got {len(batch)} items")
        inputs, targets = batch
    else:
        inputs, targets = batch, None
    inputs = _checks.real_array(inputs, "inputs", min_ndim=3)
    if inputs.ndim != 3 or inputs.shape[-1] != spec.n_inputs:
        raise ValueError(
            f"inputs must have shape (B, T, {spec.n_inputs}), got {tuple(inputs.shape)}"
        )
    _checks.nonempty(inputs, "inputs")
    if criterion.needs_targets:
        if targets is None:
            raise ValueError(
                f"the {criterion.name} criterion needs targets: pass (inputs, targets (B,))"
            )
        _check_targets(targets, inputs.shape[0], "targets")
        targets = jnp.asarray(targets, jnp.int32)
    elif targets is not None:
        raise ValueError(f"the {criterion.name} criterion takes no targets, got some")
    return jnp.asarray(inputs, jnp.float32), targets
