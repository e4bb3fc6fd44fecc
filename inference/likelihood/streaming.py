"""Maximum likelihood on recordings longer than memory: :func:`fit_ml` chunk by chunk.

The same truncated-Newton solver as :func:`~probsnn.inference.likelihood.newton.fit_ml`
(preconditioned conjugate gradients on Hessian-vector products, an Armijo line search per
neuron), with every product with the design X computed as a sum over chunks of the recording
(:mod:`probsnn.streaming`: each chunk's design is built from the chunk and the halo of its past,
so it equals those rows of the whole design). One pass over the data gives the objective and
gradient, one pass each Hessian-vector product, one pass the line search's candidates; only one
chunk's design is held at a time, so the memory does not grow with the recording's length, and
the fit equals the in-memory fit.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.design import Design, build_design, coef_to_params
from probsnn.network import Network
from probsnn.streaming import CHUNK_BINS, chunks

from .newton import (
    ConvergenceWarning,
    FitInfo,
    MLFit,
    _check_penalties,
    _neuron_factors,
    _shared_factors,
    accept_step,
    check_counts,
    check_preconditioner,
    check_spec,
    full_precision,
    pcg_active,
    pcg_advance,
    pcg_start,
    start_at_rates,
    step_nll,
)


@full_precision
def fit_ml_streaming(
    spec: Network,
    spikes,
    inputs=None,
    *,
    chunk_bins: int = CHUNK_BINS,
    l2: float = 0.0,
    tol: float = 1e-7,
    max_iter: int = 50,
    max_cg: int = 200,
    preconditioner: str = "auto",
) -> MLFit:
    """Penalised maximum-likelihood fit of all neurons from a recording read in chunks.

    Minimises Σ_i f_i as :func:`~probsnn.inference.likelihood.newton.fit_ml` does (λ₁ = 0),
    from the uncoupled network at the observed rates, to the same optimum; each pass over the
    data reads the source again (:func:`probsnn.streaming.chunks`), so a memory-mapped file or
    a loader of pieces serves recordings larger than memory.

    Args:
        spec: the network (all neurons visible).
        spikes: an array ``(T, N)`` / ``(n_trials, T, N)`` (numpy, ``numpy.memmap``, h5py, ...)
            or a callable returning the recording's chunks in order (see
            :func:`probsnn.streaming.chunks`). inputs: beside an array source.
        chunk_bins: new bins per chunk of an array source.
        l2, tol, max_iter, max_cg, preconditioner: as in
            :func:`~probsnn.inference.likelihood.newton.fit_ml`.

    Returns:
        :class:`~probsnn.inference.likelihood.newton.MLFit`.

    Raises:
        ValueError, TypeError: as :func:`~probsnn.inference.likelihood.newton.fit_ml` and
            :func:`probsnn.streaming.chunks`.

    Warns:
        ConvergenceWarning: when the fit stops before its stopping rule is met (it includes a
            neuron whose coefficients diverge on separable data, which the in-memory fit
            names with a SeparationWarning).
    """
    _check_penalties(l2=l2)
    tol = _checks.positive_float(tol, "tol")
    max_iter = _checks.positive_int(max_iter, "max_iter")
    max_cg = _checks.positive_int(max_cg, "max_cg")
    check_spec(spec, "fit_ml_streaming")
    passes = _Passes(spec, spikes, inputs, chunk_bins)
    rows, counts = passes.counts()
    check_counts(counts, rows, l2 > 0, "an l2 penalty")
    mask, penalised = passes.columns
    kind = check_preconditioner(preconditioner, spec.n_neurons, mask.shape[0], None)
    coef = start_at_rates(counts / rows, rows, mask.shape, passes.dtype)
    gram, curvature = passes.gram(coef)
    scale = curvature / rows
    if kind == "shared":
        factors = _shared_factors(gram, scale, mask, l2)
    else:
        factors = _neuron_factors(gram, scale, mask, penalised, l2)
    columns = Design(None, None, mask, penalised)
    pen = penalised[:, None] * mask
    tol_total = tol * rows
    objective, grad = passes.objective_and_gradient(coef, l2, pen)
    history = [float(jnp.sum(objective))]
    converged, criterion, n_iter, stalled = False, float("inf"), 0, False
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is read after the loop
        grad_norm = jnp.linalg.norm(grad, axis=0)
        forcing = jnp.clip(jnp.sqrt(grad_norm / (1.0 + jnp.abs(objective))), 1e-6, 0.1)
        ridge = l2 * pen
        state = pcg_start(-grad, factors)
        while bool(pcg_active(state, forcing, max_cg)):
            hd = (passes.hessian_vector(coef, state.d) + ridge * state.d) * mask
            state = _advance(state, hd, factors, forcing)
        direction = state.x
        slope = jnp.sum(grad * direction, axis=0)
        nll = passes.step_nll(coef, direction)
        step, _ = _accept(nll, columns, coef, direction, slope, objective, l2)
        coef = jnp.where(step[None, :] > 0, coef + step[None, :] * direction, coef)
        decrement = -0.5 * slope
        criterion = float(jnp.max(decrement))
        stalled = not bool(jnp.any(step > 0))
        converged = criterion <= tol_total
        objective, grad = passes.objective_and_gradient(coef, l2, pen)
        history.append(float(jnp.sum(objective)))
        if converged or stalled:
            break
    if not converged:
        reason = "no neuron could decrease its objective" if stalled else f"max_iter={max_iter}"
        warnings.warn(
            f"fit_ml_streaming stopped before its stopping rule was met ({reason}; largest "
            f"decrement {criterion / rows:.3g} nats per bin > tol={tol:g}); FitInfo.converged "
            "is False",
            ConvergenceWarning,
            stacklevel=3,
        )
    penalty = 0.5 * l2 * jnp.sum((pen * coef) ** 2, axis=0)
    info = FitInfo(
        log_likelihood=-float(jnp.sum(objective - penalty)),
        objective=np.asarray(objective),
        n_iterations=n_iter,
        converged=bool(converged),
        criterion=criterion / rows,
        history=np.asarray(history),
    )
    return MLFit(coef_to_params(spec, coef), info)


class _Passes:
    """Sums over the chunks of a recording of the solver's products with the design."""

    def __init__(self, spec: Network, spikes, inputs, chunk_bins: int):
        self.spec, self.source = spec, (spikes, inputs, chunk_bins)
        first = next(iter(self._designs()), None)
        if first is None:
            raise ValueError("spikes must hold at least one bin, got an empty recording")
        self.dtype = first.x.dtype
        self.columns = (first.mask, first.penalised)

    def _designs(self):
        for chunk in chunks(self.spec, *self.source):
            design = build_design(self.spec, chunk.spikes, chunk.inputs)
            yield design._replace(x=design.x[chunk.halo :], targets=design.targets[chunk.halo :])

    def counts(self):
        rows, counts = 0, 0.0
        for design in self._designs():
            rows += design.x.shape[0]
            counts = counts + np.asarray(jnp.sum(design.targets, axis=0), np.float64)
        return rows, counts

    def gram(self, coef):
        return _summed(_chunk_gram(d.x, coef) for d in self._designs())

    def objective_and_gradient(self, coef, l2, pen):
        nll, grad = _summed(_chunk_gradient(d.x, d.targets, coef) for d in self._designs())
        mask = self.columns[0]
        objective = nll + 0.5 * l2 * jnp.sum((pen * coef) ** 2, axis=0)
        return objective, (grad + l2 * pen * coef) * mask

    def hessian_vector(self, coef, v):
        return _summed(_chunk_hessian_vector(d.x, coef, v) for d in self._designs())

    def step_nll(self, coef, direction):
        return _summed(_step_nll(d.x, d.targets, coef, direction) for d in self._designs())


def _summed(parts):
    """The elementwise sum of a stream of equal pytrees."""
    total = None
    for part in parts:
        total = part if total is None else jax.tree.map(jnp.add, total, part)
    return total


@jax.jit
def _chunk_gram(x, coef):
    p = jax.nn.sigmoid(x @ coef)
    return x.T @ x, jnp.sum(p * (1 - p), axis=0)


@jax.jit
def _chunk_gradient(x, targets, coef):
    u = x @ coef
    nll = -jnp.sum(jax.nn.log_sigmoid((2 * targets - 1) * u), axis=0)
    return nll, x.T @ (jax.nn.sigmoid(u) - targets)


@jax.jit
def _chunk_hessian_vector(x, coef, v):
    p = jax.nn.sigmoid(x @ coef)
    return x.T @ (p * (1 - p) * (x @ v))


_step_nll = jax.jit(step_nll)
_advance = jax.jit(pcg_advance)
_accept = jax.jit(accept_step)
