"""Learning spike codes by variational mutual-information criteria: estimator, rule, trainer.

A criterion (:mod:`.mi_criteria`) is a per-sample objective f_{θ,ψ}(s; x, y) of the network's
spikes s ~ p_θ(s‖x) given exogenous inputs x (and, for the bottleneck, targets y), with a learned
read-out ψ (decoder or critic). Its expectation J(θ, ψ) = E_{p(x)} E_{p_θ(s‖x)}[f] is maximised
with the score-function identity through the spikes (Williams 1992; MATH.md §3–4):

    ∇_θ J = E[(f − b) ∇_θ log p_θ(s‖x)] + E[∇_θ f],     ∇_ψ J = E[∇_ψ f],

where ∇_θ log p_θ(s‖x) = Σ_t x_t (s_t − σ(u_t)) is the local presynaptic-trace × postsynaptic-error
score of the ML rule (:func:`probsnn.inference.likelihood.online.local_gradient`), f − b a global
third
factor, and b a baseline that does not depend on s: the mean of the other samples drawn for the
same input (``"loo"``, K >= 2 samples per input, Kool et al. 2019), or the per-parameter
variance-optimal constant tracked by moving averages (``"optimal"``,
:func:`probsnn.inference.score.optimal_baseline`). The optimal baseline needs the per-sample
scores (:func:`sample_scores`, memory S × parameters); the others contract the centred signals
with the scores in one backward pass (:func:`weighted_score`).

:func:`infomax_rule` is this estimator as an optax ``(init, update)`` pair that returns ascent
deltas (the sign convention of :func:`probsnn.inference.ml_rule`): chain it with
``optax.scale(η)`` or ``optax.chain(optax.scale_by_adam(), optax.scale(η))``.
:func:`infomax_trainer` samples the spikes and applies the rule (blackjax-style ``init``/``step``
with a State and an Info); :func:`fit_infomax` runs epochs of mini-batches with a progress bar and
per-epoch metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from probsnn import _checks
from probsnn.glm import bernoulli_log_prob, contract, traces
from probsnn.inference._training import shuffled_epoch
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


class Criterion(NamedTuple):
    """A per-sample objective to maximise in expectation over the network's spikes.

    Attributes:
        name: for messages and progress bars.
        signal: ``(spec, hyper, params, readout, spikes, inputs, targets) -> (f, metrics)`` with
            spikes ``(K, B, T, N)`` float (K samples of each of B inputs ``(B, T, M)``), f
            ``(K, B)`` the per-sample objective and metrics a dict of scalars; differentiable in
            params and readout with the spikes held fixed. f of sample (k, b) may depend on all
            inputs and targets of the batch but on no other sample's spikes. A module-level
            function, so that trainers of criteria differing only in ``hyper`` share one
            compilation.
        hyper: the criterion's numbers and arrays (β, γ, r, …), passed to ``signal`` traced.
        init_readout: ``key -> ψ``, the read-out's initial parameters (a pytree, may be ``()``).
        needs_targets: whether the criterion reads targets ``(B,)`` (the bottleneck).
    """

    name: str
    signal: Callable
    hyper: dict
    init_readout: Callable
    needs_targets: bool = False


def evaluate_signal(
    spec: Network, criterion: Criterion, params: Params, readout, spikes, inputs, targets=None
):
    """``criterion.signal`` with its hyper-parameters: ``(f (K, B), metrics)``."""
    return criterion.signal(spec, criterion.hyper, params, readout, spikes, inputs, targets)


class InfoMaxParams(NamedTuple):
    """Everything learned: the network's :class:`~probsnn.Params` and the read-out ψ."""

    network: Params
    readout: Any


class InfoMaxSignals(NamedTuple):
    """What :func:`infomax_rule` reads: spikes ``(K, B, T, N)`` sampled from p_θ(s‖x) for the
    inputs ``(B, T, M)``, and targets ``(B,)`` int (None unless the criterion needs them)."""

    spikes: jax.Array
    inputs: jax.Array
    targets: jax.Array | None = None


class RuleState(NamedTuple):
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
    criterion: Criterion,
    params: InfoMaxParams,
    signals: InfoMaxSignals,
    baseline: str = "none",
    moments: BaselineState | None = None,
    kappa: float = 0.0,
):
    """One score-function estimate of ∇J (module equation) from the spikes in ``signals``.

    Args:
        spec, criterion, params: the network, the criterion and the current parameters.
        signals: :class:`InfoMaxSignals` with K samples of each of B inputs.
        baseline: ``"loo"``, ``"optimal"`` or ``"none"`` (see :func:`infomax_rule`).
        moments: the optimal baseline's moving averages (required for ``"optimal"``).
        kappa: their forgetting factor.

    Returns:
        ``(gradient: InfoMaxParams, f (K, B), metrics, moments)`` — the estimate is the mean
        over the K·B samples of (f − b) ∇ log p(s‖x) + ∇f, and ``moments`` the updated moving
        averages (None unless ``"optimal"``).
    """
    spikes = as_float(signals.spikes)
    k, b = spikes.shape[:2]

    def objective(p):
        f, metrics = evaluate_signal(
            spec, criterion, p.network, p.readout, spikes, signals.inputs, signals.targets
        )
        return jnp.mean(f), (f, metrics)

    pathwise, (f, metrics) = jax.grad(objective, has_aux=True)(params)
    f = jax.lax.stop_gradient(f)
    flat_spikes = spikes.reshape(k * b, *spikes.shape[2:])
    flat_inputs = jnp.broadcast_to(signals.inputs, (k, *signals.inputs.shape)).reshape(
        k * b, *signals.inputs.shape[1:]
    )
    if baseline == "optimal":
        scores = sample_scores(spec, params.network, flat_spikes, flat_inputs)
        offset, moments = optimal_baseline(moments, f.ravel(), scores, kappa)
        through_spikes = score_gradient(f.ravel(), scores, offset)
    else:
        centred = leave_one_out(f, axis=0) if baseline == "loo" else f
        through_spikes = weighted_score(
            spec, params.network, flat_spikes, flat_inputs, centred.ravel() / centred.size
        )
    network = jax.tree.map(jnp.add, pathwise.network, through_spikes)
    return InfoMaxParams(network, pathwise.readout), f, metrics, moments


def check_baseline(baseline: str, n_samples: int) -> None:
    """Raise unless ``baseline`` is known and usable with ``n_samples`` samples per input."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    if baseline == "loo" and n_samples < 2:
        raise ValueError(f"baseline='loo' needs n_samples >= 2 per input, got {n_samples}")


def infomax_rule(
    spec: Network, criterion: Criterion, baseline: str = "loo", kappa: float = 0.9
) -> optax.GradientTransformation:
    """The criterion's score-function ascent direction as an optax ``(init, update)`` pair.

    Args:
        spec: a network with exogenous inputs. criterion: from :mod:`.mi_criteria`.
        baseline: ``"loo"`` (mean of the other samples of the same input; needs K >= 2),
            ``"optimal"`` (per-parameter E[f e²]/E[e²], moving averages with forgetting ``kappa``)
            or ``"none"``.
        kappa: forgetting factor of the optimal baseline, in [0, 1).

    Returns:
        ``init(params: InfoMaxParams) -> RuleState``;
        ``update(signals: InfoMaxSignals, state, params) -> (updates: InfoMaxParams, state)``,
        the updates being the ascent estimate of ∇J (module equation).

    Raises:
        ValueError: a network without inputs, an unknown baseline, κ outside [0, 1); at update,
            K < 2 with ``"loo"``, targets missing for a criterion that needs them.
    """
    _check_spec(spec)
    check_baseline(baseline, 2)
    kappa = check_kappa(kappa)

    def init(params):
        moments = init_baseline(params.network) if baseline == "optimal" else None
        return RuleState(moments)

    def update(signals, state, params=None):
        if params is None:
            raise ValueError("infomax_rule.update needs params (the current InfoMaxParams)")
        _check_signals(spec, criterion, signals)
        check_baseline(baseline, signals.spikes.shape[0])
        gradient, _, _, moments = infomax_gradient(
            spec, criterion, params, signals, baseline, state.baseline, kappa
        )
        return gradient, RuleState(moments)

    return optax.GradientTransformation(init, update)


def _check_spec(spec):
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    if spec.n_inputs == 0:
        raise ValueError(
            "the information criteria need a network with exogenous inputs x (n_inputs > 0)"
        )


def _check_signals(spec, criterion, signals):
    if not isinstance(signals, InfoMaxSignals):
        raise TypeError(f"signals must be InfoMaxSignals, got {type(signals).__name__}")
    spikes, inputs = signals.spikes, signals.inputs
    if spikes.ndim != 4 or spikes.shape[-1] != spec.n_neurons:
        raise ValueError(
            f"signals.spikes must have shape (K, B, T, {spec.n_neurons}), got {spikes.shape}"
        )
    expected = (spikes.shape[1], spikes.shape[2], spec.n_inputs)
    if tuple(inputs.shape) != expected:
        raise ValueError(f"signals.inputs must have shape {expected}, got {tuple(inputs.shape)}")
    if criterion.needs_targets and signals.targets is None:
        raise ValueError(f"the {criterion.name} criterion needs targets, got None")


# ------------------------------------------------------------------------------------ trainer


class TrainState(NamedTuple):
    """Trainer state: the learned parameters, the rule-and-optimiser state, the PRNG key and
    the number of steps taken."""

    params: InfoMaxParams
    opt_state: Any
    key: jax.Array
    step: jax.Array


class StepInfo(NamedTuple):
    """Diagnostics of one step: the mean objective f and its spread across samples (before the
    update), and the criterion's metrics (dict of scalars)."""

    objective: jax.Array
    objective_std: jax.Array
    metrics: dict


class Trainer(NamedTuple):
    """``init(network_params, key, readout=None) -> TrainState``;
    ``step(state, inputs (B, T, M), targets (B,) | None) -> (TrainState, StepInfo)`` (jitted);
    ``evaluate(params, key, inputs, targets) -> (f (K, B), metrics)`` without an update."""

    spec: Network
    criterion: Criterion
    init: Callable
    step: Callable
    evaluate: Callable


class _StepConfig(NamedTuple):
    """The static (hashable) part of a trainer: one compilation per distinct config."""

    spec: Network
    criterion: Criterion  # with hyper and init_readout set to None
    optimizer: optax.GradientTransformation
    n_samples: int
    baseline: str
    kappa: float


def infomax_trainer(
    spec: Network,
    criterion: Criterion,
    optimizer: optax.GradientTransformation,
    *,
    n_samples: int = 4,
    baseline: str = "loo",
    kappa: float = 0.9,
) -> Trainer:
    """A :class:`Trainer` that follows :func:`infomax_rule` with ``optimizer``.

    Each step draws ``n_samples`` spike trains s ~ p_θ(s‖x) per input with
    :func:`probsnn.sample`, evaluates the rule and applies ``optax.chain(rule, optimizer)``; the
    optimizer receives ascent directions (e.g. ``optax.scale(1e-2)`` or
    ``optax.chain(optax.scale_by_adam(), optax.scale(1e-2))``). Trainers built with the same
    network, optimizer object and settings from criteria that differ only in their
    hyper-parameters (β, γ, r, …) share one compiled step.

    Raises:
        ValueError: as :func:`infomax_rule`, or ``n_samples`` < 1.
    """
    _check_spec(spec)
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
    rule = _chained_rule(config)

    def init(params, key, readout=None):
        spec.check_params(params)
        if readout is None:
            readout = criterion.init_readout(key)
        learned = InfoMaxParams(params, readout)
        return TrainState(learned, rule.init(learned), key, jnp.zeros((), jnp.int32))

    def step(state, inputs, targets=None):
        inputs, targets = _check_batch(spec, criterion, inputs, targets)
        key, sample_key = jax.random.split(state.key)
        spikes = _draw(config, state.params.network, sample_key, inputs)
        return _train_step(config, criterion.hyper, state, key, spikes, inputs, targets)

    def evaluate(params, key, inputs, targets=None):
        inputs, targets = _check_batch(spec, criterion, inputs, targets)
        spikes = _draw(config, params.network, key, inputs)
        return _signal(config, criterion.hyper, params, spikes, inputs, targets)

    return Trainer(spec, criterion, init, step, evaluate)


def _chained_rule(config: _StepConfig, hyper=None):
    criterion = config.criterion._replace(hyper=hyper)
    rule = infomax_rule(config.spec, criterion, config.baseline, config.kappa)
    return optax.chain(rule, config.optimizer)


def _draw(config: _StepConfig, network, key, inputs):
    """K = n_samples spike trains per input with :func:`probsnn.sample` (compiled once per
    network and batch shape, shared by training and evaluation): ``(K, B, T, N)`` float32."""
    k, batch = config.n_samples, inputs.shape[0]
    tiled = jnp.broadcast_to(inputs, (k, *inputs.shape)).reshape(k * batch, *inputs.shape[1:])
    spikes = sample(config.spec, network, key, inputs.shape[1], k * batch, inputs=tiled)
    return spikes.reshape(k, batch, *spikes.shape[1:]).astype(jnp.float32)


@partial(jax.jit, static_argnums=0)
def _train_step(config: _StepConfig, hyper, state: TrainState, key, spikes, inputs, targets):
    rule = _chained_rule(config, hyper)
    signals = InfoMaxSignals(spikes, inputs, targets)
    updates, opt_state = rule.update(signals, state.opt_state, state.params)
    f, metrics = _signal(config, hyper, state.params, spikes, inputs, targets)
    params = optax.apply_updates(state.params, updates)
    info = StepInfo(jnp.mean(f), jnp.std(f), metrics)
    return TrainState(params, opt_state, key, state.step + 1), info


@partial(jax.jit, static_argnums=0)
def _signal(config: _StepConfig, hyper, params: InfoMaxParams, spikes, inputs, targets):
    criterion = config.criterion._replace(hyper=hyper)
    return evaluate_signal(
        config.spec, criterion, params.network, params.readout, spikes, inputs, targets
    )


def _check_batch(spec, criterion, inputs, targets):
    inputs = _checks.real_array(inputs, "inputs", min_ndim=3)
    if inputs.ndim != 3 or inputs.shape[-1] != spec.n_inputs:
        raise ValueError(
            f"inputs must have shape (B, T, {spec.n_inputs}), got {tuple(inputs.shape)}"
        )
    if criterion.needs_targets:
        if targets is None:
            raise ValueError(f"the {criterion.name} criterion needs targets (B,), got None")
        targets = np.asarray(targets)
        if not np.issubdtype(targets.dtype, np.integer) or targets.shape != inputs.shape[:1]:
            raise ValueError(
                f"targets must be ({inputs.shape[0]},) integers, got {targets.dtype} "
                f"{targets.shape}"
            )
        targets = jnp.asarray(targets, jnp.int32)
    elif targets is not None:
        raise ValueError(f"the {criterion.name} criterion takes no targets, got some")
    return jnp.asarray(inputs, jnp.float32), targets


class InfoMaxFit(NamedTuple):
    """Result of :func:`fit_infomax`: learned :class:`InfoMaxParams`, the final
    :class:`TrainState` and per-epoch metrics (dict of numpy arrays: ``objective``, each of the
    criterion's metrics averaged over the epoch's batches, ``seconds``, and ``val_objective`` /
    ``val_<metric>`` on the validation set when one is given, measured before the first epoch
    (entry 0) and after each)."""

    params: InfoMaxParams
    state: TrainState
    history: dict


def fit_infomax(
    trainer: Trainer,
    params: Params,
    key,
    inputs,
    targets=None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    validation: tuple | None = None,
    readout=None,
    progress: bool = True,
) -> InfoMaxFit:
    """Train for ``epochs`` passes of shuffled mini-batches of ``batch_size`` inputs.

    Args:
        trainer: from :func:`infomax_trainer`. params: the network's starting parameters.
        key: PRNG key (shuffling, spike sampling, read-out initialisation).
        inputs: ``(n, T, M)`` input spike trains; targets: ``(n,)`` int for the bottleneck.
        validation: optional ``(inputs, targets)`` (targets None unless needed), evaluated in
            batches of ``batch_size`` (InfoNCE's bound depends on the batch size).
        readout: starting read-out (default ``criterion.init_readout``).
        progress: show a tqdm bar over epochs.

    Returns:
        :class:`InfoMaxFit`.

    Raises:
        ValueError: bad sizes or data; FloatingPointError when the objective becomes non-finite.
    """
    epochs = _checks.positive_int(epochs, "epochs")
    inputs, targets = _check_batch(trainer.spec, trainer.criterion, inputs, targets)
    n = inputs.shape[0]
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must lie in 1..{n} (the number of inputs), got {batch_size}")
    init_key, shuffle_key, eval_key = jax.random.split(key, 3)
    state = trainer.init(params, init_key, readout)
    history: dict[str, list] = {"objective": [], "seconds": []}
    if validation is not None:
        validation = _check_batch(trainer.spec, trainer.criterion, *validation)
        _record(history, _validate(trainer, state.params, eval_key, validation, batch_size))
    bar = tqdm(range(epochs), desc=f"{trainer.criterion.name} epochs", disable=not progress)
    for epoch in bar:
        shuffle_key, epoch_key = jax.random.split(shuffle_key)
        state, infos, seconds = shuffled_epoch(
            epoch_key,
            state,
            lambda s, i: trainer.step(s, inputs[i], None if targets is None else targets[i]),
            n,
            batch_size,
        )
        history["seconds"].append(seconds)
        objective = float(np.mean([i.objective for i in infos]))
        if not np.isfinite(objective):
            raise FloatingPointError(
                f"the {trainer.criterion.name} objective became {objective} in epoch {epoch}; "
                "lower the learning rate"
            )
        history["objective"].append(objective)
        for name in infos[0].metrics:
            history.setdefault(name, []).append(float(np.mean([i.metrics[name] for i in infos])))
        if validation is not None:
            eval_key, key_now = jax.random.split(eval_key)
            _record(history, _validate(trainer, state.params, key_now, validation, batch_size))
        bar.set_postfix(objective=f"{objective:.3g}")
    return InfoMaxFit(state.params, state, {k: np.asarray(v) for k, v in history.items()})


def _validate(trainer, params, key, validation, batch_size):
    inputs, targets = validation
    results = []
    for start in range(0, inputs.shape[0] - batch_size + 1, batch_size):
        key, batch_key = jax.random.split(key)
        batch_targets = None if targets is None else targets[start : start + batch_size]
        f, metrics = trainer.evaluate(
            params, batch_key, inputs[start : start + batch_size], batch_targets
        )
        results.append({"objective": jnp.mean(f), **metrics})
    results = jax.device_get(results)
    return {name: float(np.mean([r[name] for r in results])) for name in results[0]}


def _record(history, values):
    for name, value in values.items():
        history.setdefault(f"val_{name}", []).append(value)
