"""The shared design matrix of a fully observed GLM network.

All neurons regress on the same columns — the synaptic traces of every neuron, the feedback
traces, the stimulus traces and a constant — and differ only in which columns they may use.
So one ``(R, P)`` matrix X and a boolean ``(P, N)`` mask describe every neuron's logistic
regression, and the potentials of all neurons are one product u = X B with B ``(P, N)`` zero
outside the mask (docs/theory.md §2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.glm import check_data, traces
from probsnn.kernels import FILTER_METHODS
from probsnn.network import Network, Params


class Design(NamedTuple):
    """Design of a fully observed network.

    Attributes:
        x: ``(R, P)`` features, R = trials × T rows.
        targets: ``(R, N)`` float spikes.
        mask: ``(P, N)`` bool, columns each neuron uses.
        penalised: ``(P,)`` bool, columns that penalties apply to (all but the bias).
    """

    x: jax.Array
    targets: jax.Array
    mask: jax.Array
    penalised: jax.Array


def build_design(spec: Network, spikes, inputs=None, method: str = "auto") -> Design:
    """Design matrix of ``spikes`` ``(..., T, N)`` (and ``inputs`` ``(..., T, M)``) for ``spec``.

    Column order: synaptic traces ``[j, k]`` (N·K_syn), feedback traces ``[i, k]`` (N·K_fb, only
    when the feedback basis differs from the synaptic one; otherwise neuron i's own synaptic
    block carries its feedback weights), stimulus traces ``[m, k]`` (M·K_in), then the constant.

    Raises:
        ValueError, TypeError: as :func:`probsnn.potentials` for the data and the method, and
            a design too large to allocate (checked before it is built).
    """
    spikes, inputs = check_data(spec, spikes, inputs)
    method = _checks.option(method, "method", FILTER_METHODS)
    rows = int(np.prod(spikes.shape[:-1]))
    mask = column_mask(spec)
    _checks.allocation(
        rows * mask.shape[0], f"the design matrix ({rows} rows, {mask.shape[0]} columns)"
    )
    x = traces(spec, spikes, inputs, method)
    blocks = [x.syn.reshape(rows, -1)]
    if x.fb is not None:
        blocks.append(x.fb.reshape(rows, -1))
    if x.inputs is not None:
        blocks.append(x.inputs.reshape(rows, -1))
    blocks.append(jnp.ones((rows, 1), x.syn.dtype))
    targets = jnp.asarray(spikes, x.syn.dtype).reshape(rows, spec.n_neurons)
    penalised = np.ones(mask.shape[0], dtype=bool)
    penalised[-1] = False
    return Design(
        x=jnp.concatenate(blocks, axis=1),
        targets=targets,
        mask=jnp.asarray(mask),
        penalised=jnp.asarray(penalised),
    )


def column_mask(spec: Network) -> np.ndarray:
    """``(P, N)`` bool: which design columns neuron i uses (see :func:`build_design`)."""
    n = spec.n_neurons
    k_syn, k_fb = spec.synapse_basis.shape[0], spec.feedback_basis.shape[0]
    syn = np.array(spec.connectivity)
    if spec.shares_basis:
        np.fill_diagonal(syn, True)
    blocks = [np.repeat(syn, k_syn, axis=0)]
    if not spec.shares_basis:
        blocks.append(np.repeat(np.eye(n, dtype=bool), k_fb, axis=0))
    if spec.n_inputs:
        blocks.append(np.ones((spec.n_inputs * spec.input_basis.shape[0], n), dtype=bool))
    blocks.append(np.ones((1, n), dtype=bool))
    return np.concatenate(blocks, axis=0)


def params_to_coef(spec: Network, params: Params):
    """Coefficients ``(P, N)`` of the design from :class:`Params` (inverse of coef_to_params).

    Raises:
        TypeError, ValueError: ``params`` that are not :class:`Params` of this network's shapes.
    """
    _checks.params_of_shapes(params, Params, spec.param_shapes, "probsnn.Params")
    n = spec.n_neurons
    w = spec.masked(params).w  # (N, N, K_syn)
    if spec.shares_basis:
        w = w.at[jnp.arange(n), jnp.arange(n)].set(params.v)
    blocks = [jnp.transpose(w, (0, 2, 1)).reshape(-1, n)]
    if not spec.shares_basis:
        k_fb = params.v.shape[1]
        fb = (
            jnp.zeros((n, k_fb, n), params.v.dtype)
            .at[jnp.arange(n), :, jnp.arange(n)]
            .set(params.v)
        )
        blocks.append(fb.reshape(-1, n))
    if spec.n_inputs:
        blocks.append(jnp.transpose(params.c, (0, 2, 1)).reshape(-1, n))
    blocks.append(params.bias[None, :])
    return jnp.concatenate(blocks, axis=0)


def coef_to_params(spec: Network, coef) -> Params:
    """:class:`Params` from design coefficients ``(P, N)``.

    Raises:
        TypeError: complex or non-numeric coefficients.
        ValueError: coefficients of another shape than this network's design ``(P, N)``.
    """
    coef = jnp.asarray(_checks.real_dtype(coef, "coef"))
    expected = (column_mask(spec).shape[0], spec.n_neurons)
    if tuple(coef.shape) != expected:
        raise ValueError(
            f"coef must have the design's shape {expected} (P, N) for this network, "
            f"got {tuple(coef.shape)}"
        )
    n, m = spec.n_neurons, spec.n_inputs
    k_syn, k_fb = spec.synapse_basis.shape[0], spec.feedback_basis.shape[0]
    k_in = 0 if spec.input_basis is None else spec.input_basis.shape[0]
    offset = n * k_syn
    w = jnp.transpose(coef[:offset].reshape(n, k_syn, n), (0, 2, 1))  # (pre, post, k)
    if spec.shares_basis:
        v = w[jnp.arange(n), jnp.arange(n)]
    else:
        fb = coef[offset : offset + n * k_fb].reshape(n, k_fb, n)
        v = fb[jnp.arange(n), :, jnp.arange(n)]
        offset += n * k_fb
    c = jnp.transpose(coef[offset : offset + m * k_in].reshape(m, k_in, n), (0, 2, 1))
    params = Params(w=w, v=v, c=c, bias=coef[-1])
    return spec.masked(params)
