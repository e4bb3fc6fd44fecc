"""The GLM spiking network as a NumPyro model (docs/theory.md §2, §6).

:func:`glm_network`: observed spikes are scored with the parallel likelihood of
:func:`probsnn.glm.potentials`; unobserved spikes are drawn bin by bin with
``numpyro.contrib.control_flow.scan`` over :func:`probsnn.glm.step_potential` (or, for recursive
bases, the decaying trace states of :mod:`probsnn.propagation`) — the same functions as the
fast library paths, so the model's log density equals
:func:`probsnn.log_likelihood` (Jang et al. 2019, IEEE SPM 36(6)).

:func:`glm_design_model`: the same log density for fully observed spikes on a design X of
spike traces computed once (:func:`probsnn.design.build_design`), so that each evaluation is one
matrix product; the model of the Bayesian fits (:mod:`probsnn.inference.bayes.fit`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.contrib.control_flow import scan

from probsnn import _checks
from probsnn.design import Design, column_mask, params_to_coef
from probsnn.glm import check_data, contract
from probsnn.glm import traces as filter_traces
from probsnn.network import Network, Params
from probsnn.simulate import check_propagation, initial_state, sampler_inputs, step_parts

from .priors import GLMPrior, prior_params


def network_params(spec: Network, params=None) -> Params:
    """Parameters for the model: fixed ``Params``, drawn from a :class:`GLMPrior` (see
    :func:`probsnn.models.priors.prior_params`), or, with ``params=None``, ``numpyro.param``
    sites initialised to an uncoupled network at 10 Hz."""
    if isinstance(params, Params):
        return spec.check_params(params)
    if isinstance(params, GLMPrior):
        return prior_params(spec, params)
    if params is not None:
        raise TypeError(
            f"params must be probsnn.Params, probsnn.models.GLMPrior or None, "
            f"got {type(params).__name__}"
        )
    shapes = spec.param_shapes
    pre, post = np.nonzero(spec.connectivity)
    free_w = numpyro.param("w", jnp.zeros((len(pre), shapes.w[2])))
    v = numpyro.param("v", jnp.zeros(shapes.v))
    c = numpyro.param("c", jnp.zeros(shapes.c))
    rate = 10.0 * spec.dt
    bias = numpyro.param("bias", jnp.full(shapes.bias, np.log(rate / (1 - rate))))
    w = jnp.zeros(shapes.w, free_w.dtype).at[pre, post].set(free_w)
    return Params(w=w, v=v, c=c, bias=bias)


def glm_network(
    spec: Network,
    spikes=None,
    *,
    inputs=None,
    params=None,
    n_steps: int | None = None,
    n_trials: int | None = None,
):
    """NumPyro model of a GLM spiking network, s_{i,t} ~ Bernoulli(σ(u_{i,t})).

    Args:
        spec: the network.
        spikes: observed spikes ``(T, N)`` or ``(n_trials, T, N)``; scored in parallel over time
            at the site ``"spikes"``. None: spikes are sampled bin by bin (site ``"spikes_t"``,
            time-major ``(T, n_trials, N)``) and returned, with a deterministic site
            ``"spikes"`` in the library's ``(n_trials, T, N)`` layout.
        inputs: exogenous inputs ``(T, M)`` or ``(n_trials, T, M)`` when ``spec.n_inputs`` > 0.
        params: fixed :class:`~probsnn.Params`, a :class:`GLMPrior`, or None for
            ``numpyro.param`` sites (see :func:`network_params`).
        n_steps, n_trials: sizes when ``spikes`` is None (n_trials default 1).

    Returns:
        The spikes (observed or sampled).

    Raises:
        ValueError, TypeError: on bad data or sizes.
    """
    theta = network_params(spec, params)
    if spikes is not None:
        spikes, inputs = check_data(spec, spikes, inputs)
        x = filter_traces(spec, spikes, inputs)
        u = contract(spec, theta, x)
        likelihood = dist.Bernoulli(logits=u).to_event(2)
        if spikes.ndim == 2:
            return numpyro.sample("spikes", likelihood, obs=spikes)
        if spikes.ndim != 3:
            raise ValueError(f"spikes must be (T, N) or (n_trials, T, N), got {spikes.shape}")
        with numpyro.plate("trials", spikes.shape[0]):
            return numpyro.sample("spikes", likelihood, obs=spikes)
    return _sample_spikes(spec, theta, inputs, n_steps, n_trials)


def _sample_spikes(spec, theta, inputs, n_steps, n_trials):
    if n_steps is None:
        raise ValueError("n_steps is required when spikes is None")
    n_steps = _checks.positive_int(n_steps, "n_steps")
    n_trials = 1 if n_trials is None else _checks.positive_int(n_trials, "n_trials")
    _checks.allocation(
        n_steps * n_trials * spec.n_neurons,
        f"the sampled spikes (n_trials={n_trials}, n_steps={n_steps}, N={spec.n_neurons})",
    )
    inputs = sampler_inputs(spec, inputs, n_steps, n_trials)
    xs = None if inputs is None else jnp.swapaxes(inputs, 0, 1)  # (T, n_trials, M)
    # recursive bases: decaying trace states, spikes delivered event by event; else a ring
    propagation, capacity = check_propagation(spec, "auto", None, n_trials)
    state = initial_state(spec, (n_trials,), propagation)
    potential, deliver = step_parts(spec, theta, propagation, capacity)

    def transition(state, input_t):
        u = potential(state)  # (n_trials, N)
        with numpyro.plate("trials", n_trials):
            spikes_t = numpyro.sample("spikes_t", dist.Bernoulli(logits=u).to_event(1))
        return deliver(state, spikes_t, input_t), spikes_t

    _, spikes = scan(transition, state, xs, length=n_steps)
    return numpyro.deterministic("spikes", jnp.swapaxes(spikes, 0, 1))


def glm_design_model(spec: Network, design: Design, prior: GLMPrior):
    """NumPyro model of a fully observed GLM network on a precomputed design,

        s_{r,i} ~ Bernoulli(σ(u_{r,i})),   u = X B(θ),   θ ~ prior,

    with X ``(R, P)`` the rows of spike traces of :func:`~probsnn.design.build_design` and
    B ``(P, N)`` from :func:`~probsnn.design.params_to_coef`. Same sites and log density as
    ``glm_network(spec, spikes, params=prior)`` (sites ``"w"`` ``(n_synapses, K_syn)``, ``"v"``,
    ``"c"``, ``"bias"``, observed ``"spikes"`` ``(R, N)``; empty groups have no site, see
    :func:`design_params`), but the traces are not recomputed at every evaluation.

    Args:
        spec: the network (all neurons visible). design: its
            :class:`~probsnn.design.Design` for the observed spikes. prior: a
            :class:`GLMPrior`.

    Returns:
        The observed spikes ``design.targets``.

    Raises:
        TypeError: a design that is not a :class:`~probsnn.design.Design` or a prior that is not
            a :class:`GLMPrior`.
        ValueError: a design built for another network (its column count or neuron count).
    """
    check_design(spec, design)
    if not isinstance(prior, GLMPrior):
        raise TypeError(f"prior must be a probsnn.models.GLMPrior, got {type(prior).__name__}")
    u = _design_potentials(spec, design.x, design_params(spec, prior))
    return numpyro.sample("spikes", dist.Bernoulli(logits=u).to_event(2), obs=design.targets)


def check_design(spec: Network, design) -> Design:
    """Raise unless ``design`` is a :class:`~probsnn.design.Design` of ``spec`` (shapes only,
    so it also runs inside ``jax.jit``)."""
    if not isinstance(design, Design):
        raise TypeError(
            f"design must be a probsnn.design.Design (build_design), got {type(design).__name__}"
        )
    n_columns = column_mask(spec).shape[0]
    x_shape, target_shape = tuple(np.shape(design.x)), tuple(np.shape(design.targets))
    if len(x_shape) != 2 or x_shape[1] != n_columns:
        raise ValueError(
            f"design.x must have shape (R, {n_columns}) for this network, got {x_shape}"
        )
    if target_shape != (x_shape[0], spec.n_neurons):
        raise ValueError(
            f"design.targets must have shape ({x_shape[0]}, {spec.n_neurons}), got {target_shape}"
        )
    return design


@functools.partial(jax.jit, static_argnums=0)
def _design_potentials(spec: Network, x, params: Params):
    """u = X B(θ), ``(R, N)`` (one compiled program: NumPyro also runs the model eagerly)."""
    return jnp.matmul(x, params_to_coef(spec, params), precision="highest")


def design_params(spec: Network, prior: GLMPrior) -> Params:
    """Draw :class:`~probsnn.Params` from ``prior`` at the sites of :func:`network_params`,
    skipping empty groups (no synapses, no inputs), whose sites add nothing to the log density
    but break NumPyro's autoguides: the parameter part of :func:`glm_design_model`, a NumPyro
    model of its own (for ``handlers.trace``, ``Predictive`` over latent draws, or drawing a
    ground truth from the prior).

    Raises:
        TypeError: a prior that is not a :class:`GLMPrior`.
    """
    if not isinstance(prior, GLMPrior):
        raise TypeError(f"prior must be a probsnn.models.GLMPrior, got {type(prior).__name__}")
    return prior_params(spec, prior, skip_empty=True)
