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
  and reports the fit (:class:`FitInfo`).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from probsnn import _checks
from probsnn.design import Design, build_design, coef_to_params, params_to_coef
from probsnn.inference._training import Trainer
from probsnn.network import Network, Params


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
        step_size: ``(N,)`` the accepted step (0 where no step decreased f_i).
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
        converged: whether the stopping criterion was met.
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
) -> MLFit:
    """Penalised maximum-likelihood fit of all neurons from observed spikes.

    Runs the Newton iterations of :func:`newton_trainer` until every neuron's decrement is below
    ``tol`` (or no neuron can improve), then, for λ₁ > 0, FISTA from that point.

    Args:
        spec: the network (all neurons must be visible).
        spikes: ``(..., T, N)`` observed spikes. inputs: ``(..., T, M)`` if the network has inputs.
        l2, l1: penalty strengths λ₂, λ₁ >= 0 on the summed negative log-likelihood.
        init: starting parameters; default an uncoupled network at the observed rates.
        tol: stop when every neuron's Newton decrement ½ gᵀH⁻¹g (an estimate of f − f*) is below
            ``tol`` nats per bin; the default suits float32 data, whose objective is resolved to
            about 1e-8 nats per bin (pass float64 spikes with x64 enabled for tighter fits)
            (for λ₁ > 0: the KKT residual, the gradient mapping's largest entry, per bin).
        max_iter: Newton iterations (FISTA: 200 × max_iter iterations).
        max_cg: cap on conjugate-gradient iterations per Newton step.
        progress: show a progress bar (default: when R × P × N > 5e9).

    Returns:
        :class:`MLFit` with ``params`` and ``info`` (:class:`FitInfo`).

    Raises:
        ValueError: on hidden neurons, negative penalties, bad spikes or inputs, or neurons that
            never or always spike without a penalty.
        FloatingPointError: when the iterate turns non-finite (separable data without l2).
    """
    _check_penalties(l2=l2, l1=l1, tol=tol)
    design = _design(spec, spikes, inputs, penalised=l2 > 0 or l1 > 0, caller="fit_ml")
    rows, n_cols = design.x.shape
    trainer = _trainer(spec, design, l2, tol, max_cg)
    if progress is None:
        progress = rows * n_cols * spec.n_neurons > 5e9
    state = trainer.init(init)
    history = [float(jnp.sum(state.objective))]
    converged, criterion, n_iter = False, float("inf"), 0
    bar = tqdm(total=max_iter, desc="ML fit (Newton)", disable=not progress, leave=False)
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is read after the loop
        state, info = trainer.step(None, state)
        history.append(float(info.loss))
        criterion = float(jnp.max(info.decrement))
        bar.update(1)
        bar.set_postfix(decrement=f"{criterion / rows:.2e}")
        if not np.isfinite(history[-1]):
            raise FloatingPointError(
                "the Newton iterate became non-finite; the data may be separable — add an l2 "
                "penalty"
            )
        converged = bool(info.converged)
        if converged or bool(info.stalled):
            break  # done, or no neuron can decrease its objective at this precision
    bar.close()
    coef = state.coef
    if l1 > 0:
        coef, objective, converged, criterion, lasso_iters, lasso_history = _fista(
            design, coef, l2, l1, tol * rows, 200 * max_iter
        )
        history.extend(lasso_history)
        n_iter += lasso_iters
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


def newton_trainer(
    spec: Network,
    spikes,
    inputs=None,
    *,
    l2: float = 0.0,
    tol: float = 1e-7,
    max_cg: int = 200,
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
        tol: ``info.converged`` when every neuron's Newton decrement is below ``tol`` nats per
            bin (see :func:`fit_ml`).
        max_cg: cap on conjugate-gradient iterations per Newton step.

    Returns:
        :class:`~probsnn.inference.Trainer`: ``init(params) -> NewtonState`` (``params`` None:
        an uncoupled network at the observed rates, :func:`fit_ml`'s default start);
        ``step(key, state, batch=None) -> (NewtonState, NewtonInfo)``, ``key`` unused (the
        solver is deterministic). ``step`` compiles once per design shape.

    Raises:
        ValueError: on hidden neurons, a negative penalty or tolerance, bad spikes or inputs,
            or neurons that never or always spike when l2 = 0; a ``batch`` that is not None.
    """
    _check_penalties(l2=l2, tol=tol)
    max_cg = int(max_cg)
    if max_cg < 1:
        raise ValueError(f"max_cg must be >= 1, got {max_cg}")
    design = _design(spec, spikes, inputs, penalised=l2 > 0, caller="newton_trainer")
    return _trainer(spec, design, l2, tol, max_cg)


def _check_penalties(**values) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value}")


def _design(spec: Network, spikes, inputs, penalised: bool, caller: str) -> Design:
    """The checked design: every neuron visible, finite maximum-likelihood biases."""
    _checks.fully_observed(spec, caller)
    design = build_design(spec, spikes, inputs)
    counts = np.asarray(jnp.sum(design.targets, axis=0))
    degenerate = np.flatnonzero((counts == 0) | (counts == design.x.shape[0]))
    if degenerate.size and not penalised:
        raise ValueError(
            f"spikes of neurons {degenerate.tolist()} are all 0 or all 1, so their maximum-"
            "likelihood bias is infinite; add an l2 or l1 penalty or drop them"
        )
    return design


def _trainer(spec: Network, design: Design, l2: float, tol: float, max_cg: int) -> Trainer:
    """The Newton trainer on a built design (shared by :func:`newton_trainer` and fit_ml)."""
    start = _initial_coef(spec, design, None)
    preconditioner = gram_preconditioner(design, start, l2)
    tol_total = tol * design.x.shape[0]

    def init(params=None) -> NewtonState:
        coef = start if params is None else _initial_coef(spec, design, params)
        return newton_init(spec, design, coef, l2)

    def step(key, state: NewtonState, batch=None):
        del key
        if batch is not None:
            raise ValueError(
                "the Newton trainer holds its data: step takes batch=None (fit with data=None)"
            )
        return newton_step(spec, design, state, preconditioner, l2, max_cg, tol_total)

    return Trainer(init, step)


def _initial_coef(spec: Network, design: Design, init):
    if init is not None:
        return params_to_coef(spec, spec.check_params(init)).astype(design.x.dtype)
    rate = jnp.clip(jnp.mean(design.targets, axis=0), 0.5 / design.x.shape[0], 1 - 1e-6)
    coef = jnp.zeros(design.mask.shape, design.x.dtype)
    return coef.at[-1].set(jnp.log(rate) - jnp.log1p(-rate))


# --------------------------------------------------------------------------------------------
# Smooth part: truncated Newton
# --------------------------------------------------------------------------------------------
def newton_init(spec: Network, design: Design, coef, l2) -> NewtonState:
    """Start the Newton solver at ``coef`` ``(P, N)``."""
    objective = _objective(design, coef, l2, 0.0)
    return NewtonState(params=coef_to_params(spec, coef), coef=coef, objective=objective)


@partial(jax.jit, static_argnums=0)
def newton_step(
    spec: Network, design: Design, state: NewtonState, preconditioner, l2, max_cg, tol_total
) -> tuple[NewtonState, NewtonInfo]:
    """One truncated-Newton iteration for every neuron (see the module docstring).

    ``preconditioner`` holds the Cholesky factors ``(N, P, P)`` of :func:`gram_preconditioner`;
    ``tol_total`` is the decrement (in nats, summed over the design's rows) below which a neuron
    has converged.
    """
    x, mask, pen = design.x, design.mask, design.penalised
    coef = state.coef
    u = x @ coef
    p = jax.nn.sigmoid(u)
    curvature = p * (1 - p)  # (R, N)
    ridge = l2 * pen[:, None] * mask
    grad = (x.T @ (p - design.targets) + l2 * pen[:, None] * coef) * mask

    def hess_vec(v):
        return (x.T @ (curvature * (x @ v)) + ridge * v) * mask

    # Inexact Newton (Eisenstat & Walker 1996): loose CG far from the optimum, tight near it.
    grad_norm = jnp.linalg.norm(grad, axis=0)
    forcing = jnp.clip(jnp.sqrt(grad_norm / (1.0 + jnp.abs(state.objective))), 1e-6, 0.1)
    direction, cg_iters = _pcg(hess_vec, -grad, preconditioner, max_cg, forcing)
    slope = jnp.sum(grad * direction, axis=0)  # (N,) < 0
    step_size, objective = _backtrack(design, coef, direction, slope, state.objective, l2)
    new_coef = jnp.where(step_size[None, :] > 0, coef + step_size[None, :] * direction, coef)
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


@jax.jit
def gram_preconditioner(design: Design, coef, l2):
    """Cholesky factors ``(N, P, P)`` of d̄_i X_iᵀX_i + λ₂ I, neuron i's Hessian when its firing
    probability is constant at its mean d̄_i-level (identity on the columns it does not use).

    Computed once per fit: PCG needs a fixed SPD preconditioner, not the current Hessian.
    """
    x, mask = design.x, design.mask
    p = jax.nn.sigmoid(x @ coef)
    scale = jnp.mean(p * (1 - p), axis=0)
    m = mask.T.astype(x.dtype)  # (N, P)
    blocks = scale[:, None, None] * (x.T @ x)[None] * m[:, :, None] * m[:, None, :]
    ridge = l2 * design.penalised[None, :] * m
    blocks = blocks + jax.vmap(jnp.diag)(ridge + (1 - m))
    # A relative jitter keeps the factorisation finite for nearly collinear traces.
    diagonal = jnp.diagonal(blocks, axis1=1, axis2=2)
    jitter = 100 * jnp.finfo(x.dtype).eps * jnp.mean(diagonal, axis=1)
    return jnp.linalg.cholesky(blocks + jitter[:, None, None] * jnp.eye(x.shape[1], dtype=x.dtype))


def _precondition(chol, r):
    """Solve M_i z_i = r_i for every neuron; r, z ``(P, N)``."""
    z = jax.scipy.linalg.cho_solve((chol, True), r.T[:, :, None])
    return z[:, :, 0].T


def _pcg(hess_vec, rhs, chol, max_iter, rtol):
    """Preconditioned conjugate gradients on every neuron's system at once (``(P, N)`` columns).

    Stops when every column's residual is below ``rtol`` ``(N,)`` times its right-hand side's
    norm.
    """
    rhs_norm = jnp.linalg.norm(rhs, axis=0)
    x0 = jnp.zeros_like(rhs)
    z0 = _precondition(chol, rhs)

    def cond(carry):
        _, r, _, _, k = carry
        return (k < max_iter) & jnp.any(jnp.linalg.norm(r, axis=0) > rtol * rhs_norm)

    def body(carry):
        x, r, z, d, k = carry
        hd = hess_vec(d)
        rz = jnp.sum(r * z, axis=0)
        alpha = rz / jnp.maximum(jnp.sum(d * hd, axis=0), jnp.finfo(rhs.dtype).tiny)
        active = jnp.linalg.norm(r, axis=0) > rtol * rhs_norm
        alpha = jnp.where(active, alpha, 0.0)
        x = x + alpha * d
        r_new = r - alpha * hd
        z_new = _precondition(chol, r_new)
        beta = jnp.sum(r_new * z_new, axis=0) / jnp.maximum(rz, jnp.finfo(rhs.dtype).tiny)
        return x, r_new, z_new, z_new + beta * d, k + 1

    x, _, _, _, k = jax.lax.while_loop(cond, body, (x0, rhs, z0, z0, jnp.int32(0)))
    return x, k


_STEP_SIZES = 0.5 ** np.arange(20)


def _backtrack(design, coef, direction, slope, objective, l2, armijo=1e-4):
    """Largest step 2^-k per neuron with f(b + αδ) <= f(b) + c α gᵀδ (α = 0 if none)."""
    u = design.x @ coef
    du = design.x @ direction
    signs = 2 * design.targets - 1
    pen = design.penalised[:, None] * design.mask

    def objective_at(alpha):
        nll = -jnp.sum(jax.nn.log_sigmoid(signs * (u + alpha * du)), axis=0)
        return nll + 0.5 * l2 * jnp.sum((pen * (coef + alpha * direction)) ** 2, axis=0)

    alphas = jnp.asarray(_STEP_SIZES, coef.dtype)
    candidates = jax.lax.map(objective_at, alphas)  # (n_alphas, N)
    accepted = candidates <= objective + armijo * alphas[:, None] * slope
    first = jnp.argmax(accepted, axis=0)
    ok = jnp.any(accepted, axis=0)
    step = jnp.where(ok, alphas[first], 0.0)
    new_objective = jnp.where(ok, candidates[first, jnp.arange(coef.shape[1])], objective)
    return step, new_objective


# --------------------------------------------------------------------------------------------
# L1: FISTA with adaptive restart
# --------------------------------------------------------------------------------------------
def _fista(design: Design, coef, l2, l1, tol_total, max_iter):
    x, mask, pen = design.x, design.mask, design.penalised[:, None]
    m = mask.astype(x.dtype)
    # Lipschitz constant of the smooth part's gradient per neuron: ¼ λ_max(X_iᵀX_i) + λ₂.
    gram = x.T @ x
    blocks = gram[None] * m.T[:, :, None] * m.T[:, None, :]
    lipschitz = 0.25 * jnp.linalg.eigvalsh(blocks)[:, -1] + l2
    step = 1.0 / lipschitz

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
