"""Maximum-likelihood fit of every neuron of a fully observed GLM network at once.

Each neuron i is a logistic regression on the shared design (:mod:`probsnn.design`;
docs/theory.md §2):

    minimise  f_i(b) = −Σ_r log σ((2 s_{r,i} − 1) x_r·b) + ½ λ₂ ‖b‖² + λ₁ ‖b‖₁,

the penalties acting on every coefficient but the bias. Without λ₁ the problem is smooth and
convex, and is solved by a truncated Newton method (Nocedal & Wright 2006, §7.1): each Newton
system H δ = −g is solved by conjugate gradients with Hessian-vector products
H v = Xᵀ(σ'(u) ⊙ X v) for all neurons in two matrix products, preconditioned by the scaled Gram
matrix d̄_i XᵀX (the exact Hessian when the firing probability is constant), then a per-neuron
Armijo backtracking line search. With λ₁ > 0 the fit is FISTA with adaptive restart (Beck &
Teboulle 2009; O'Donoghue & Candès 2015) from the smooth solution.

* :func:`newton_trainer` — the smooth solver as a trainer of the learning interface
  (docs/learning.md): the design and the preconditioner are built once, one ``step`` is one
  Newton iteration, and :func:`probsnn.inference.fit` drives it with ``data=None``.
* :func:`fit_ml` — the solver for users: runs the same steps to a tolerance, then FISTA for λ₁,
  and reports the fit (:class:`FitInfo`). It reports ``converged=True`` only when the stopping
  rule was met, and warns when it was not (:class:`ConvergenceWarning`) or when a neuron's
  coefficients diverge because the data are separable (:class:`SeparationWarning`).

Where the Hessian has no curvature along the conjugate-gradient direction (fitted probabilities
all numerically 0 or 1, e.g. from a far-away start), conjugate gradients stop (Nocedal & Wright
2006, Algorithm 7.1): the step is the preconditioned gradient, or a restart at the default start
(the uncoupled network at the observed rates) when that has a lower objective; a neuron whose
line search fails far from the optimum restarts there too.
"""

from __future__ import annotations

import warnings
from functools import partial, wraps
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from probsnn import _checks, parallel
from probsnn.design import Design, build_design, coef_to_params, params_to_coef
from probsnn.inference._training import Trainer
from probsnn.network import Network, Params


class ConvergenceWarning(RuntimeWarning):
    """:func:`fit_ml` stopped before its stopping rule was met: ``max_iter`` ran out, no neuron
    could decrease its objective any more at the data's precision, or the criterion turned
    non-finite. ``FitInfo.converged`` is then False."""


class SeparationWarning(RuntimeWarning):
    """The maximum-likelihood estimate of some neuron is at infinity: its spikes are (quasi-)
    separable by the covariates (e.g. it never, or always, spikes whenever some trace is
    active), so the Newton iterates grow without bound while the objective barely improves.
    ``FitInfo.converged`` is then False; add an ``l2`` (or ``l1``) penalty."""


class NewtonState(NamedTuple):
    """Iterate of the truncated Newton solver.

    Attributes:
        params: the iterate as :class:`~probsnn.Params`.
        coef: the same, as design coefficients ``(P, N)``.
        objective: ``(N,)`` per-neuron penalised negative log-likelihood at ``coef``.
    """

    params: Params
    coef: jax.Array
    objective: jax.Array


class NewtonInfo(NamedTuple):
    """Diagnostics of one Newton iteration (per neuron where shaped ``(N,)``).

    Attributes:
        loss: the penalised negative log-likelihood Σ_i f_i after the step (scalar).
        objective: ``(N,)`` each neuron's f_i after the step.
        decrement: ``(N,)`` the Newton decrement ½ gᵀH⁻¹g at the start of the step, an estimate
            of f_i − f_i*.
        gradient_norm: ``(N,)`` ‖∇f_i‖ at the start of the step.
        step_size: ``(N,)`` the accepted step (0 where no step decreased f_i; 1 where a neuron
            without curvature was moved to the default start, see :func:`newton_step`).
        cg_iterations: conjugate-gradient iterations of the step (scalar).
        converged: every decrement is below the tolerance (scalar bool).
        stalled: no neuron could decrease its objective (scalar bool): the iterate is at the
            optimum to the data's precision.
    """

    loss: jax.Array
    objective: jax.Array
    decrement: jax.Array
    gradient_norm: jax.Array
    step_size: jax.Array
    cg_iterations: jax.Array
    converged: jax.Array
    stalled: jax.Array


class FitInfo(NamedTuple):
    """Summary of a fit.

    Attributes:
        log_likelihood: total log-likelihood of the data at the fit (scalar).
        objective: per-neuron penalised negative log-likelihood ``(N,)``.
        n_iterations: Newton (or FISTA) iterations run.
        converged: whether the stopping criterion was met (every decrement below ``tol``; with
            l1 > 0 the KKT residual) and no neuron's coefficients diverge (separation).
        criterion: the last value of the stopping criterion (per bin; see :func:`fit_ml`).
        history: total objective at the start and after each Newton iteration (with l1 > 0, then
            the final FISTA objective), a numpy array.
    """

    log_likelihood: float
    objective: np.ndarray
    n_iterations: int
    converged: bool
    criterion: float
    history: np.ndarray


class MLFit(NamedTuple):
    """Result of :func:`fit_ml`: the fitted :class:`~probsnn.Params` and a :class:`FitInfo`."""

    params: Params
    info: FitInfo


def full_precision(function):
    """``function``, run with float32 matrix products at full precision.

    JAX's default precision multiplies float32 matrices in TF32 (a 10-bit mantissa) on recent
    NVIDIA GPUs, which leaves a fit's gradients and Hessian-vector products too coarse for
    Newton's stopping rule: on an H200 (10⁵ bins, 4 bases) N = 1,000 neurons stalled after 18
    iterations 1.4e-4 nats per bin above the optimum that full precision reached in 13, and
    N = 200 stopped unconverged after 27. The fits trace their products under
    ``jax.default_matmul_precision("highest")`` (part of the compilation key, so the user's own
    functions keep their setting); on the CPU float32 products are full float32 either way.
    """

    @wraps(function)
    def at_full_precision(*args, **kwargs):
        with jax.default_matmul_precision("highest"):
            return function(*args, **kwargs)

    return at_full_precision


@full_precision
def fit_ml(
    spec: Network,
    spikes,
    inputs=None,
    *,
    l2: float = 0.0,
    l1: float = 0.0,
    init: Params | None = None,
    tol: float = 1e-7,
    max_iter: int = 50,
    max_cg: int = 200,
    progress: bool | None = None,
    preconditioner: str = "auto",
    mesh=None,
) -> MLFit:
    """Penalised maximum-likelihood fit of all neurons from observed spikes.

    Runs the Newton iterations of :func:`newton_trainer` until every neuron's decrement is below
    ``tol`` (or no neuron can improve), then, for λ₁ > 0, FISTA from that point.

    Args:
        spec: the network (all neurons must be visible).
        spikes: ``(..., T, N)`` observed spikes. inputs: ``(..., T, M)`` if the network has inputs.
        l2, l1: penalty strengths λ₂, λ₁ >= 0 on the summed negative log-likelihood.
        init: starting parameters (finite); default an uncoupled network at the observed rates.
        tol: stop when every neuron's Newton decrement ½ gᵀH⁻¹g (an estimate of f − f*) is below
            ``tol`` > 0 nats per bin; the default suits float32 data, whose objective is resolved
            to about 1e-8 nats per bin (pass float64 spikes with x64 enabled for tighter fits)
            (for λ₁ > 0: the KKT residual, the gradient mapping's largest entry, per bin).
        max_iter: Newton iterations, >= 1 (FISTA: 200 × max_iter iterations).
        max_cg: cap on conjugate-gradient iterations per Newton step, >= 1.
        progress: show a progress bar (default: when R × P × N > 5e9).
        preconditioner: of the conjugate gradients. ``"neuron"``: each neuron's Gram Hessian
            d̄_i X_iᵀX_i + λ₂ I factored on its own (N Cholesky factors, memory N·P²);
            ``"shared"``: one eigendecomposition of XᵀX shared by all neurons (memory P²,
            what makes hundreds of neurons fit; see :func:`gram_preconditioner`); ``"auto"``:
            ``"shared"`` on a mesh or when N·P² > :data:`SHARED_ABOVE`, else ``"neuron"``.
            Both reach the same optimum.
        mesh: optional :class:`jax.sharding.Mesh` (:func:`probsnn.parallel.trial_mesh`): the
            design's R = trials × T rows are split over its devices (R a multiple of their
            number), so every product with X — gradients, Hessian-vector products, the Gram
            matrix, line searches — runs on all of them and is summed across them; the fit
            equals the one-device fit to float round-off.

    Returns:
        :class:`MLFit` with ``params`` and ``info`` (:class:`FitInfo`); ``info.converged`` is True
        only when the stopping rule was met and no neuron's coefficients diverge.

    Raises:
        ValueError: on hidden neurons, negative penalties, a tolerance or iteration count that
            is not positive, empty, non-binary or non-finite spikes or inputs, a non-finite
            ``init``, or neurons that never or always spike without a penalty; a mesh whose
            devices do not divide the design's rows.
        TypeError: a spec that is not a Network, non-numeric sizes, complex data, a mesh that
            is not a jax.sharding.Mesh.
        FloatingPointError: when the iterate turns non-finite (separable data without l2).

    Warns:
        SeparationWarning: when the coefficients of some neuron diverge without a penalty (the
            data are separable, the MLE is at infinity): the iterates move along a direction that
            makes no bin's fit worse (a certificate of separation).
        ConvergenceWarning: when the fit stops before the stopping rule is met (``max_iter``
            exhausted, no further decrease possible at the data's precision, or a non-finite
            criterion).
    """
    _check_penalties(l2=l2, l1=l1)
    tol = _checks.positive_float(tol, "tol")
    max_iter = _checks.positive_int(max_iter, "max_iter")
    max_cg = _checks.positive_int(max_cg, "max_cg")
    if progress is not None and not isinstance(progress, bool | np.bool_):
        raise TypeError(f"progress must be a bool or None, got {progress!r}")
    mesh = parallel.check_mesh(mesh)
    design = _design(spec, spikes, inputs, penalised=l2 > 0 or l1 > 0, caller="fit_ml")
    rows, n_cols = design.x.shape
    kind = check_preconditioner(preconditioner, spec.n_neurons, n_cols, mesh)
    if mesh is not None:
        design = shard_rows(design, mesh)
    trainer = _trainer(spec, design, l2, tol, max_cg, kind)
    if progress is None:
        progress = rows * n_cols * spec.n_neurons > 5e9
    state = trainer.init(init)
    history = [float(jnp.sum(state.objective))]
    converged, criterion, n_iter, stop = False, float("inf"), 0, "max_iter"
    recent = jnp.stack([state.coef] * 4)  # each neuron's last 4 distinct iterates (4, P, N)
    bar = tqdm(total=max_iter, desc="ML fit (Newton)", disable=not progress, leave=False)
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is read after the loop
        state, info = trainer.step(None, state)
        history.append(float(info.loss))
        criterion = float(jnp.max(info.decrement))
        moved = jnp.any(state.coef != recent[-1], axis=0)
        recent = jnp.where(moved, jnp.concatenate([recent[1:], state.coef[None]]), recent)
        bar.update(1)
        bar.set_postfix(decrement=f"{criterion / rows:.2e}")
        if not np.isfinite(history[-1]):
            raise FloatingPointError(
                "the Newton iterate became non-finite; the data may be separable — add an l2 "
                "penalty"
            )
        if not np.isfinite(criterion):
            stop = "the stopping criterion (the Newton decrement) became non-finite"
            break
        converged = bool(info.converged)
        if converged:
            break
        if bool(info.stalled):  # no neuron can decrease its objective at this precision
            stop = (
                "no neuron could decrease its objective any more at the data's precision "
                f"(largest decrement {criterion / rows:.3g} nats per bin > tol={tol:g}; pass "
                "float64 data with x64 enabled, or loosen tol)"
            )
            break
    bar.close()
    if stop == "max_iter":
        stop = (
            f"max_iter={max_iter} Newton iterations ran out (largest decrement "
            f"{criterion / rows:.3g} nats per bin > tol={tol:g}); raise max_iter"
        )
    coef = state.coef
    separated = np.zeros(spec.n_neurons, bool)
    if l2 == 0 and l1 == 0:
        separated = _separated(design, coef, recent[-1] - recent[0])
    if l1 > 0:
        coef, objective, converged, criterion, lasso_iters, lasso_history = _fista(
            design, coef, l2, l1, tol * rows, 200 * max_iter, shared=kind == "shared"
        )
        history.extend(lasso_history)
        n_iter += lasso_iters
        stop = (
            f"FISTA ran out of its {200 * max_iter} iterations (KKT residual "
            f"{criterion / rows:.3g} per bin > tol={tol:g}); raise max_iter"
        )
    if separated.any():
        converged = False
        largest = np.asarray(jnp.max(jnp.abs(coef) * design.mask, axis=0))[separated]
        warnings.warn(
            f"the maximum-likelihood coefficients of neurons {np.flatnonzero(separated).tolist()} "
            f"diverge (largest |coefficient| {np.round(largest, 1).tolist()}): their spikes are "
            "separable by the covariates (a direction improves the fit of every bin), so the MLE "
            "is at infinity; add an l2 (or l1) penalty. FitInfo.converged is False",
            SeparationWarning,
            stacklevel=3,
        )
    elif not converged:
        warnings.warn(
            f"fit_ml did not converge: {stop}. FitInfo.converged is False",
            ConvergenceWarning,
            stacklevel=3,
        )
    objective = _objective(design, coef, l2, l1)
    u = design.x @ coef
    log_lik = float(jnp.sum(jax.nn.log_sigmoid((2 * design.targets - 1) * u)))
    info = FitInfo(
        log_likelihood=log_lik,
        objective=np.asarray(objective),
        n_iterations=n_iter,
        converged=bool(converged),
        criterion=float(criterion) / rows,
        history=np.asarray(history),
    )
    return MLFit(params=coef_to_params(spec, coef), info=info)


#: a bin's fitted probability counts as saturated (near 0 or 1 on the side of its spike) beyond
#: this margin (2s − 1) u: σ(−5) ≈ 6.7e-3
_SATURATED_MARGIN = 5.0
#: the separation test solves a linear program for a neuron whose design (bins × its columns)
#: has at most this many elements
_MAX_LP_ELEMENTS = 2 * 10**7


def _separated(design: Design, coef, step) -> np.ndarray:
    """``(N,)`` bool: neurons whose unpenalised coefficients diverge (separable data).

    A neuron's spikes are (quasi-)separable when some direction d makes no bin's fit worse,
    (2s_r − 1) x_r·d >= 0 for every bin r and > 0 for some: then the objective keeps
    decreasing along d for ever and the MLE is at infinity (Albert & Anderson 1984). Newton's
    iterates then run off roughly along d with ever larger margins. Neurons whose fit has a
    saturated bin (margin (2s − 1) u > 5) and whose move over their last three steps, ``step``
    ``(P, N)``, is nearly such a direction (no bin's margin falls by more than 5 % of the largest
    change), or whose margins exceed 25, are tested exactly: a linear program looks for d
    (maximise Σ_r (2s_r − 1) x_r·d subject to every term >= 0 and |d| <= 1; Konis 2007) and the
    certificate is checked on its solution. Without the program (a neuron's design over
    ``_MAX_LP_ELEMENTS``) the certificate is checked on ``step`` itself.
    """
    signs = 2 * design.targets - 1
    margin = np.asarray(jnp.max(signs * (design.x @ coef), axis=0))
    change = signs * (design.x @ step)  # (R, N): how each bin's margin moved along the step
    largest = np.asarray(jnp.max(jnp.abs(change), axis=0))
    worst = np.asarray(jnp.min(change, axis=0))
    moving = (largest > 0) & (worst >= -0.05 * largest)
    suspects = np.flatnonzero((margin > _SATURATED_MARGIN) & (moving | (margin > 25.0)))
    flagged = np.zeros(coef.shape[1], bool)
    mask = np.asarray(design.mask)
    for neuron in suspects:
        columns = np.flatnonzero(mask[:, neuron])
        if design.x.shape[0] * columns.size > _MAX_LP_ELEMENTS:
            flagged[neuron] = largest[neuron] > 0 and worst[neuron] >= -1e-3 * largest[neuron]
            continue
        from scipy.optimize import linprog  # imported here: only for suspected separation

        terms = np.asarray(design.x[:, columns] * signs[:, neuron : neuron + 1], np.float64)
        solution = linprog(
            -terms.sum(axis=0),
            A_ub=-terms,
            b_ub=np.zeros(terms.shape[0]),
            bounds=(-1.0, 1.0),
            method="highs",
        )
        if solution.status != 0:
            continue
        moved = terms @ solution.x
        top = np.max(np.abs(moved))
        flagged[neuron] = top > 1e-9 and np.min(moved) >= -1e-6 * top
    return flagged


def newton_trainer(
    spec: Network,
    spikes,
    inputs=None,
    *,
    l2: float = 0.0,
    tol: float = 1e-7,
    max_cg: int = 200,
    preconditioner: str = "auto",
    mesh=None,
) -> Trainer:
    """The truncated Newton solver of maximum likelihood as a trainer (docs/learning.md).

    Minimises the penalised negative log-likelihood Σ_i f_i of the module docstring (λ₁ = 0).
    The design of ``spikes`` and the Gram preconditioner (factored once, at the uncoupled model
    of the observed rates) are built here, once; the trainer holds its data, so ``step`` takes
    ``batch=None`` and :func:`probsnn.inference.fit` runs it with ``data=None``, one Newton
    iteration per epoch. Stop when ``info.converged`` (e.g. from a ``fit`` callback).

    Args:
        spec: the network (all neurons must be visible).
        spikes: ``(..., T, N)`` observed spikes. inputs: ``(..., T, M)`` if the network has inputs.
        l2: penalty strength λ₂ >= 0 on the summed negative log-likelihood.
        tol: ``info.converged`` when every neuron's Newton decrement is below ``tol`` > 0 nats
            per bin (see :func:`fit_ml`).
        max_cg: cap on conjugate-gradient iterations per Newton step, >= 1.
        preconditioner, mesh: as in :func:`fit_ml`.

    Returns:
        :class:`~probsnn.inference.Trainer`: ``init(params) -> NewtonState`` (``params`` None:
        an uncoupled network at the observed rates, :func:`fit_ml`'s default start);
        ``step(key, state, batch=None) -> (NewtonState, NewtonInfo)``, ``key`` unused (the
        solver is deterministic). ``step`` compiles once per design shape.

    Raises:
        ValueError: on hidden neurons, a negative penalty, a tolerance or ``max_cg`` that is not
            positive, empty or bad spikes or inputs, or neurons that never or always spike when
            l2 = 0; at init, non-finite params; a ``batch`` that is not None.
        TypeError: a spec that is not a Network, non-numeric settings.
    """
    _check_penalties(l2=l2)
    tol = _checks.positive_float(tol, "tol")
    max_cg = _checks.positive_int(max_cg, "max_cg")
    mesh = parallel.check_mesh(mesh)
    design = _design(spec, spikes, inputs, penalised=l2 > 0, caller="newton_trainer")
    kind = check_preconditioner(preconditioner, spec.n_neurons, design.x.shape[1], mesh)
    if mesh is not None:
        design = shard_rows(design, mesh)
    return _trainer(spec, design, l2, tol, max_cg, kind)


def _check_penalties(**values) -> None:
    for name, value in values.items():
        _checks.nonnegative_float(value, name)


def _design(spec: Network, spikes, inputs, penalised: bool, caller: str) -> Design:
    """The checked design: every neuron visible, data not empty, finite maximum-likelihood
    biases."""
    check_spec(spec, caller)
    _checks.nonempty(spikes, "spikes")
    if inputs is not None:
        _checks.nonempty(inputs, "inputs")
    design = build_design(spec, spikes, inputs)
    counts = np.asarray(jnp.sum(design.targets, axis=0))
    check_counts(counts, design.x.shape[0], penalised, "an l2 or l1 penalty")
    return design


def check_spec(spec, caller: str) -> None:
    """Raise TypeError for a spec that is not a Network, ValueError for hidden neurons."""
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    _checks.fully_observed(spec, caller)


def check_counts(counts, rows: int, penalised: bool, remedy: str) -> None:
    """Raise ValueError naming the neurons whose ``counts`` of spikes in ``rows`` bins are 0
    or all: without a penalty their maximum-likelihood bias is infinite."""
    degenerate = np.flatnonzero((counts == 0) | (counts == rows))
    if degenerate.size and not penalised:
        raise ValueError(
            f"spikes of neurons {degenerate.tolist()} are all 0 or all 1, so their maximum-"
            f"likelihood bias is infinite; add {remedy} or drop them"
        )


def start_at_rates(rate, rows: int, shape, dtype):
    """Coefficients ``shape`` (P, N) of the uncoupled network at the observed firing
    probabilities ``rate`` (N,): zero weights, bias logit(rate), the rate clipped to
    [0.5 / rows, 1 − 1e-6]."""
    rate = jnp.clip(rate, 0.5 / rows, 1 - 1e-6)
    return jnp.zeros(shape, dtype).at[-1].set(jnp.log(rate) - jnp.log1p(-rate))


def shard_rows(design: Design, mesh) -> Design:
    """The design with its rows (x and targets) split over the mesh's ``"trials"`` axis and
    its column masks replicated. Raises ValueError unless the devices divide the rows."""
    rows = parallel.shard_leading((design.x, design.targets), mesh, "the design's rows")
    columns = parallel.replicate((design.mask, design.penalised), mesh)
    return Design(*rows, *columns)


@full_precision
def _trainer(
    spec: Network, design: Design, l2: float, tol: float, max_cg: int, preconditioner: str
) -> Trainer:
    """The Newton trainer on a built design (shared by :func:`newton_trainer` and fit_ml)."""
    start = _initial_coef(spec, design, None)
    preconditioner = gram_preconditioner(design, start, l2, preconditioner)
    restart = (start, _objective(design, start, l2, 0.0))
    tol_total = tol * design.x.shape[0]

    @full_precision
    def init(params=None) -> NewtonState:
        coef = start if params is None else _initial_coef(spec, design, params)
        return newton_init(spec, design, coef, l2)

    @full_precision
    def step(key, state: NewtonState, batch=None):
        del key
        if batch is not None:
            raise ValueError(
                "the Newton trainer holds its data: step takes batch=None (fit with data=None)"
            )
        return newton_step(spec, design, state, preconditioner, l2, max_cg, tol_total, restart)

    return Trainer(init, step)


def _initial_coef(spec: Network, design: Design, init):
    if init is not None:
        _checks.finite_tree(init, "init")  # named as the argument, before the shape checks
        return params_to_coef(spec, spec.check_params(init)).astype(design.x.dtype)
    rate = jnp.mean(design.targets, axis=0)
    return start_at_rates(rate, design.x.shape[0], design.mask.shape, design.x.dtype)


# --------------------------------------------------------------------------------------------
# Smooth part: truncated Newton
# --------------------------------------------------------------------------------------------
def newton_init(spec: Network, design: Design, coef, l2) -> NewtonState:
    """Start the Newton solver at ``coef`` ``(P, N)``."""
    objective = _objective(design, coef, l2, 0.0)
    return NewtonState(params=coef_to_params(spec, coef), coef=coef, objective=objective)


@partial(jax.jit, static_argnums=0)
def newton_step(
    spec: Network,
    design: Design,
    state: NewtonState,
    preconditioner,
    l2,
    max_cg,
    tol_total,
    restart=None,
) -> tuple[NewtonState, NewtonInfo]:
    """One truncated-Newton iteration for every neuron (see the module docstring).

    ``preconditioner`` is :func:`gram_preconditioner`'s (Cholesky factors ``(N, P, P)`` or a
    :class:`SharedPreconditioner`);
    ``tol_total`` is the decrement (in nats, summed over the design's rows) below which a neuron
    has converged. ``restart``: optional ``(coef (P, N), objective (N,))`` of the default start; a
    neuron whose Hessian has no curvature along its step (fitted probabilities all numerically 0
    or 1) or whose line search fails is moved there when its objective is lower (reported with
    step size 1): a safeguard for far-away starts, inactive near an optimum.
    """
    x, mask, pen = design.x, design.mask, design.penalised
    coef = state.coef
    u = x @ coef
    p = jax.nn.sigmoid(u)
    curvature = p * (1 - p)  # (R, N)
    ridge = l2 * pen[:, None] * mask
    grad = (x.T @ (p - design.targets) + l2 * pen[:, None] * coef) * mask

    def hess_vec(v, columns=None):  # H v on the neurons ``columns`` (all when None)
        c, r, m = (a if columns is None else a[:, columns] for a in (curvature, ridge, mask))
        return (x.T @ (c * (x @ v)) + r * v) * m

    # Inexact Newton (Eisenstat & Walker 1996): loose CG far from the optimum, tight near it.
    grad_norm = jnp.linalg.norm(grad, axis=0)
    forcing = jnp.clip(jnp.sqrt(grad_norm / (1.0 + jnp.abs(state.objective))), 1e-6, 0.1)
    direction, cg_iters, flat = _pcg(hess_vec, -grad, preconditioner, max_cg, forcing)
    slope = jnp.sum(grad * direction, axis=0)  # (N,) < 0
    step_size, objective = _backtrack(design, coef, direction, slope, state.objective, l2)
    new_coef = jnp.where(step_size[None, :] > 0, coef + step_size[None, :] * direction, coef)
    if restart is not None:
        # no curvature (every fitted probability numerically 0 or 1, e.g. a far-away start) or
        # no decrease: Newton cannot move such a neuron far, so restart it where the solver
        # starts by default when that is better
        start_coef, start_objective = restart
        reset = (flat | (step_size == 0)) & (start_objective < objective)
        new_coef = jnp.where(reset[None, :], start_coef, new_coef)
        objective = jnp.where(reset, start_objective, objective)
        step_size = jnp.where(reset, 1.0, step_size)
    decrement = -0.5 * slope
    info = NewtonInfo(
        loss=jnp.sum(objective),
        objective=objective,
        decrement=decrement,
        gradient_norm=grad_norm,
        step_size=step_size,
        cg_iterations=cg_iters,
        converged=jnp.max(decrement) <= tol_total,
        stalled=~jnp.any(step_size > 0),
    )
    return NewtonState(coef_to_params(spec, new_coef), new_coef, objective), info


def _objective(design: Design, coef, l2, l1):
    """Per-neuron penalised negative log-likelihood ``(N,)``."""
    u = design.x @ coef
    nll = -jnp.sum(jax.nn.log_sigmoid((2 * design.targets - 1) * u), axis=0)
    pen_coef = coef * design.penalised[:, None] * design.mask
    return nll + 0.5 * l2 * jnp.sum(pen_coef**2, axis=0) + l1 * jnp.sum(jnp.abs(pen_coef), axis=0)


PRECONDITIONERS = ("auto", "neuron", "shared")

#: "auto" shares one factorisation among the neurons above this many elements (N·P²) of
#: per-neuron factors (256 MB in float32)
SHARED_ABOVE = 2**26


class SharedPreconditioner(NamedTuple):
    """One eigendecomposition XᵀX = Q diag(λ) Qᵀ shared by every neuron: neuron i's
    preconditioner is M_i⁻¹ = m_i ⊙ Q diag(1 / (d̄_i λ + λ₂ + ε_i)) Qᵀ (m_i ⊙ ·), its Gram
    Hessian d̄_i XᵀX + λ₂ I compressed to the columns m_i it uses.

    Attributes:
        q: ``(P, P)`` eigenvectors. inverse: ``(P, N)`` the factors 1 / (d̄_i λ_k + λ₂ + ε_i).
        mask: ``(P, N)`` the columns each neuron uses.
    """

    q: jax.Array
    inverse: jax.Array
    mask: jax.Array


def check_preconditioner(preconditioner, n_neurons: int, n_columns: int, mesh) -> str:
    """Resolve ``preconditioner``: ``"auto"`` is ``"shared"`` on a mesh or when N·P² exceeds
    :data:`SHARED_ABOVE`, else ``"neuron"``. Raises ValueError for an unknown name and for
    ``"neuron"`` on a mesh."""
    _checks.option(preconditioner, "preconditioner", PRECONDITIONERS)
    if preconditioner == "auto":
        large = n_neurons * n_columns**2 > SHARED_ABOVE
        return "shared" if mesh is not None or large else "neuron"
    if preconditioner == "neuron" and mesh is not None:
        raise ValueError(
            "preconditioner='neuron' cannot run on a mesh (XLA's CPU batched Cholesky in a "
            "program with cross-device sums can deadlock); use 'shared' (or 'auto')"
        )
    return preconditioner


@jax.jit
def _gram(x):
    """XᵀX ``(P, P)``, in a program of its own: on a mesh the rows' sum crosses devices, and
    the factorisations that follow run in programs without collectives."""
    return x.T @ x


@jax.jit
def _gram_scale(design: Design, coef):
    """d̄_i = mean σ'(u_i) ``(N,)``: each neuron's Gram scale at ``coef``."""
    p = jax.nn.sigmoid(design.x @ coef)
    return jnp.mean(p * (1 - p), axis=0)


def gram_preconditioner(design: Design, coef, l2, kind: str = "neuron"):
    """The conjugate-gradient preconditioner of :func:`newton_step`, built once per fit at
    ``coef``: neuron i's Hessian when its firing probability is constant at its mean level,
    d̄_i X_iᵀX_i + λ₂ I (identity on the columns it does not use).

    ``kind="neuron"``: the Cholesky factors ``(N, P, P)`` of those matrices (memory N·P²).
    ``kind="shared"``: a :class:`SharedPreconditioner` from one eigendecomposition of XᵀX
    (memory P² + P·N; the ridge also acts on the bias column, which only changes the
    preconditioner, not the solution). PCG needs a fixed SPD preconditioner, not the current
    Hessian.
    """
    gram = _gram(design.x)
    scale = _gram_scale(design, coef)
    if kind == "shared":
        return _shared_factors(gram, scale, design.mask, l2)
    return _neuron_factors(gram, scale, design.mask, design.penalised, l2)


def _jitter(gram, scale):
    """A relative jitter ``(N,)`` that keeps factorisations finite for nearly collinear traces."""
    return 100 * jnp.finfo(gram.dtype).eps * scale * jnp.mean(jnp.diagonal(gram))


@jax.jit
def _neuron_factors(gram, scale, mask, penalised, l2):
    m = mask.T.astype(gram.dtype)  # (N, P)
    blocks = scale[:, None, None] * gram[None] * m[:, :, None] * m[:, None, :]
    blocks = blocks + jax.vmap(jnp.diag)(l2 * penalised[None, :] * m + (1 - m))
    eye = jnp.eye(gram.shape[0], dtype=gram.dtype)
    return jnp.linalg.cholesky(blocks + _jitter(gram, scale)[:, None, None] * eye)


@jax.jit
def _shared_factors(gram, scale, mask, l2):
    eigenvalues, q = jnp.linalg.eigh(gram)
    eigenvalues = jnp.maximum(eigenvalues, 0.0)  # round-off below zero
    inverse = 1.0 / (eigenvalues[:, None] * scale[None, :] + l2 + _jitter(gram, scale)[None])
    return SharedPreconditioner(q, inverse, mask.astype(gram.dtype))


def _precondition(preconditioner, r):
    """Solve M_i z_i = r_i for every neuron; r, z ``(P, N)``."""
    if isinstance(preconditioner, SharedPreconditioner):
        q, inverse, mask = preconditioner
        return mask * (q @ (inverse * (q.T @ (mask * r))))
    z = jax.scipy.linalg.cho_solve((preconditioner, True), r.T[:, :, None])
    return z[:, :, 0].T


class PCGState(NamedTuple):
    """Conjugate-gradient iterate of every neuron's system (columns ``(P, N)``): solution x,
    residual r, preconditioned residual z, direction d, the columns done, those found flat at
    the first iteration, the iteration count k and the right-hand side's norms ``(N,)``."""

    x: jax.Array
    r: jax.Array
    z: jax.Array
    d: jax.Array
    done: jax.Array
    flat: jax.Array
    k: jax.Array
    rhs_norm: jax.Array


def pcg_start(rhs, preconditioner) -> PCGState:
    """The conjugate-gradient iterate at x = 0 for the right-hand sides ``rhs`` ``(P, N)``."""
    z0 = _precondition(preconditioner, rhs)
    none = jnp.zeros(rhs.shape[1], bool)
    norm = jnp.linalg.norm(rhs, axis=0)
    return PCGState(jnp.zeros_like(rhs), rhs, z0, z0, none, none, jnp.int32(0), norm)


def pcg_active(state: PCGState, rtol, max_iter):
    """Whether another iteration is needed: some column not done with its residual above
    ``rtol`` ``(N,)`` times its right-hand side's norm, and fewer than ``max_iter`` iterations."""
    return (state.k < max_iter) & jnp.any(_unsolved(state, rtol))


def _unsolved(state: PCGState, rtol):
    return ~state.done & (jnp.linalg.norm(state.r, axis=0) > rtol * state.rhs_norm)


def pcg_advance(state: PCGState, hd, preconditioner, rtol) -> PCGState:
    """One conjugate-gradient iteration given ``hd`` = H d (the Hessian times the direction)."""
    x, r, z, d, done, flat, k, _ = state
    tiny, eps = jnp.finfo(r.dtype).tiny, jnp.finfo(r.dtype).eps
    rz = jnp.sum(r * z, axis=0)
    curvature = jnp.sum(d * hd, axis=0)
    active = _unsolved(state, rtol)
    no_curvature = jnp.where(k == 0, eps**2, eps) * rz
    blocked = active & ~(curvature > no_curvature)
    flat = flat | (blocked & (k == 0))
    x = jnp.where(blocked & (k == 0), d, x)  # d = M⁻¹b at the first iteration
    done = done | blocked
    alpha = rz / jnp.maximum(curvature, tiny)
    alpha = jnp.where(active & ~blocked, alpha, 0.0)
    x = x + alpha * d
    r_new = r - alpha * hd
    z_new = _precondition(preconditioner, r_new)
    beta = jnp.sum(r_new * z_new, axis=0) / jnp.maximum(rz, tiny)
    return state._replace(x=x, r=r_new, z=z_new, d=z_new + beta * d, done=done, flat=flat, k=k + 1)


def _pcg(hess_vec, rhs, preconditioner, max_iter, rtol):
    """Preconditioned conjugate gradients on every neuron's system at once (``(P, N)`` columns).

    Stops when every column's residual is below ``rtol`` ``(N,)`` times its right-hand side's
    norm. A column whose direction has no curvature within rounding stops there, keeping its
    last iterate (Nocedal & Wright 2006, Algorithm 7.1): d'Hd <= ε r'z, ε the dtype's
    resolution. At the first iteration the test is d'Hd <= ε² r'z (every fitted probability
    numerically 0 or 1, e.g. far from the optimum); such a column's solution is the
    preconditioned right-hand side M⁻¹b, and it is reported in ``flat`` ``(N,)``.
    ``hess_vec(v, columns)`` is the Hessian product on the neurons ``columns`` (all when None);
    each iteration computes it on the unsolved columns only (:func:`active_product`).

    Returns:
        ``(x, iterations, flat)``.
    """

    def body(state):
        hd = active_product(hess_vec, state.d, _unsolved(state, rtol))
        return pcg_advance(state, hd, preconditioner, rtol)

    state = jax.lax.while_loop(
        lambda state: pcg_active(state, rtol, max_iter), body, pcg_start(rhs, preconditioner)
    )
    return state.x, state.k, state.flat


#: the narrowest column bucket of :func:`active_product`
MIN_BUCKET = 8


def column_buckets(n: int) -> tuple[int, ...]:
    """The widths N, ⌈N/2⌉, ⌈N/4⌉, … down to :data:`MIN_BUCKET` (static)."""
    widths = [n]
    while widths[-1] > 2 * MIN_BUCKET:
        widths.append(-(-widths[-1] // 2))
    return tuple(widths)


def active_product(product, v, active):
    """``product`` on the ``active`` ``(N,)`` columns of ``v`` ``(P, N)`` only, zeros elsewhere.

    ``product(v_columns, columns)`` maps ``(P, w)`` to ``(P, w)`` (``columns`` None for all).
    The active columns are gathered first, into the narrowest of :func:`column_buckets` that
    holds them (a ``lax.switch`` over static widths): the conjugate gradients' cost per
    iteration follows the neurons still unsolved instead of the slowest one's count times N.
    """
    widths = column_buckets(v.shape[1])
    if len(widths) == 1:
        return product(v, None)
    order = jnp.argsort(~active, stable=True)  # the active columns first
    bucket = jnp.sum(jnp.asarray(widths) >= jnp.sum(active)) - 1

    def gathered(width):
        def run(v):
            columns = order[:width]
            return jnp.zeros_like(v).at[:, columns].set(product(v[:, columns], columns))

        return run

    branches = [lambda v: product(v, None), *(gathered(w) for w in widths[1:])]
    return jax.lax.switch(bucket, branches, v)


_STEP_SIZES = 0.5 ** np.arange(20)


def _backtrack(design, coef, direction, slope, objective, l2):
    """Largest step 2^-k per neuron with f(b + αδ) <= f(b) + c α gᵀδ (α = 0 if none)."""
    nll = step_nll(design.x, design.targets, coef, direction)
    return accept_step(nll, design, coef, direction, slope, objective, l2)


def step_nll(x, targets, coef, direction):
    """The negative log-likelihood ``(n_alphas, N)`` of the rows ``x``, ``targets`` at
    coef + α direction for every step α = 2^-k of the line search."""
    u = x @ coef
    du = x @ direction
    signs = 2 * targets - 1

    def nll_at(alpha):
        return -jnp.sum(jax.nn.log_sigmoid(signs * (u + alpha * du)), axis=0)

    return jax.lax.map(nll_at, jnp.asarray(_STEP_SIZES, coef.dtype))


def accept_step(nll, design, coef, direction, slope, objective, l2, armijo=1e-4):
    """The Armijo line search's step ``(N,)`` and objective from the candidates' negative
    log-likelihoods ``nll`` ``(n_alphas, N)`` (the penalty is added here)."""
    alphas = jnp.asarray(_STEP_SIZES, coef.dtype)
    pen = design.penalised[:, None] * design.mask
    b, d = pen * coef, pen * direction  # ‖b + αd‖² = ‖b‖² + 2α b·d + α² ‖d‖², per neuron
    squares = jnp.sum(b * b, axis=0) + alphas[:, None] * (
        2 * jnp.sum(b * d, axis=0) + alphas[:, None] * jnp.sum(d * d, axis=0)
    )
    candidates = nll + 0.5 * l2 * squares
    accepted = candidates <= objective + armijo * alphas[:, None] * slope
    first = jnp.argmax(accepted, axis=0)
    ok = jnp.any(accepted, axis=0)
    step = jnp.where(ok, alphas[first], 0.0)
    new_objective = jnp.where(ok, candidates[first, jnp.arange(coef.shape[1])], objective)
    return step, new_objective


# --------------------------------------------------------------------------------------------
# L1: FISTA with adaptive restart
# --------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnums=3)
def _lipschitz(gram, mask, l2, shared: bool):
    """Lipschitz constants ``(N,)`` of each neuron's smooth gradient, ¼ λ_max(X_iᵀX_i) + λ₂;
    ``shared``: the bound ¼ λ_max(XᵀX) + λ₂ for all (a principal submatrix's largest
    eigenvalue is at most the matrix's), without the N·P² masked blocks."""
    if shared:
        largest = jnp.linalg.eigvalsh(gram)[-1]
        return jnp.full(mask.shape[1], 0.25 * largest + l2, gram.dtype)
    m = mask.astype(gram.dtype).T
    blocks = gram[None] * m[:, :, None] * m[:, None, :]
    return 0.25 * jnp.linalg.eigvalsh(blocks)[:, -1] + l2


def _fista(design: Design, coef, l2, l1, tol_total, max_iter, shared=False):
    x, mask, pen = design.x, design.mask, design.penalised[:, None]
    step = 1.0 / _lipschitz(_gram(x), mask, l2, shared)

    def smooth_grad(b):
        p = jax.nn.sigmoid(x @ b)
        return (x.T @ (p - design.targets) + l2 * pen * b) * mask

    def prox(b):
        shrunk = jnp.sign(b) * jnp.maximum(jnp.abs(b) - step * l1, 0.0)
        return jnp.where(pen, shrunk, b) * mask

    @jax.jit
    def run(coef):
        start = _objective(design, coef, l2, l1)

        def cond(carry):
            _, _, _, _, change, k = carry
            return (k < max_iter) & (jnp.max(change) > tol_total)

        def body(carry):
            b, y, t, obj, _, k = carry
            b_new = prox(y - step * smooth_grad(y))
            obj_new = _objective(design, b_new, l2, l1)
            restart = obj_new > obj  # O'Donoghue & Candès: restart momentum when f increases
            t_new = jnp.where(restart, 1.0, 0.5 * (1 + jnp.sqrt(1 + 4 * t**2)))
            momentum = jnp.where(restart, 0.0, (t - 1) / t_new)
            y_new = b_new + momentum * (b_new - b)
            # KKT residual: the gradient mapping ‖(y − b_new)/step‖∞, zero exactly at the optimum.
            change = jnp.max(jnp.abs(y - b_new), axis=0) / step
            return b_new, y_new, t_new, obj_new, change, k + 1

        ones = jnp.ones(coef.shape[1], coef.dtype)
        init = (coef, coef, ones, start, jnp.full_like(start, jnp.inf), jnp.int32(0))
        b, _, _, obj, change, k = jax.lax.while_loop(cond, body, init)
        return b, obj, jnp.max(change), k

    b, objective, change, iters = run(coef)
    converged = bool(change <= tol_total)
    return b, objective, converged, float(change), int(iters), [float(jnp.sum(objective))]
