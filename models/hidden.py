"""A GLM network with hidden neurons as a NumPyro model p(x, h) and its guide q(h‖x).

Neurons split into visible X (``spec.visible``, observed) and hidden H. Because every neuron's
spikes depend only on the past (Jang, Simeone, Gardner & Grüning 2019, IEEE SPM 36(6):64;
docs/theory.md §3), the joint factorises into two causally conditioned parts,

    p(x, h) = p(h‖x) p(x‖h),   p(h‖x) = Π_t Π_{i∈H} p(h_{i,t} | u_{i,t}),
                                p(x‖h) = Π_t Π_{i∈X} p(x_{i,t} | u_{i,t}),

with p(s | u) = Bernoulli(σ(u)) and u computed from the past of all neurons. The model samples
the hidden raster from p(h‖x) (site ``"h"``, a :class:`HiddenSpikes` distribution) and scores the
visible data under p(x‖h) (site ``"x"``). The guide is q(h‖x) = p(h‖x), the network's own hidden
dynamics with X clamped: the same distribution with the same θ — both programs read the
``numpyro.param`` sites ``"w"``, ``"v"``, ``"c"``, ``"bias"`` (or the same fixed
:class:`~probsnn.Params`). The hidden terms cancel in log p(x, h) − log q(h‖x) = log p(x‖h) = ℓ,
the learning signal.

``SVI(hidden_network, hidden_guide, optax.adam(1e-2), TraceGraph_ELBO())`` then fits θ. Its
gradient estimate is ∇_θ log p(x, h) + ℓ ∇_θ log q(h‖x), h ~ q (TraceGraph_ELBO stops the gradient
of the non-reparameterisable guide term and adds the score term with the downstream cost, which
sums to ℓ per trial): unbiased for ∇_θ ELBO because E_q[∇_θ log q] = 0.

The hidden raster is *one* latent site per trial, sampled bin by bin inside
:meth:`HiddenSpikes.sample` (the clamped sampler, :func:`probsnn.sample`) and scored in parallel
over time. Per-bin sites from ``numpyro.contrib.control_flow.scan`` would not do: TraceGraph_ELBO
treats the scanned time axis like a batch axis and multiplies log q(h_t) by the costs of bin t
only, which drops the credit that later bins give h_t (the score term then vanishes in
expectation, since l_t depends only on the past of h_t).
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from probsnn import _checks
from probsnn.glm import bernoulli_log_prob, contract
from probsnn.glm import traces as filter_traces
from probsnn.network import Network, Params
from probsnn.simulate import sample, sampler_inputs

from .glm import network_params
from .priors import GLMPrior


def check_hidden_spec(spec: Network) -> Network:
    """Raise ValueError unless ``spec`` has at least one visible and one hidden neuron."""
    if not isinstance(spec, Network):
        raise TypeError(f"spec must be a probsnn.Network, got {type(spec).__name__}")
    n_visible = int(np.sum(spec.visible))
    if n_visible == 0 or n_visible == spec.n_neurons:
        raise ValueError(
            "spec must have at least one visible and one hidden neuron, got "
            f"{n_visible} visible of {spec.n_neurons} (set Network(..., visible=mask))"
        )
    return spec


def check_visible(spec: Network, visible, inputs=None):
    """Validate visible spikes and inputs for a network with hidden neurons.

    Args:
        spec: the network (at least one visible and one hidden neuron).
        visible: ``(T, N_visible)`` or ``(n_trials, T, N_visible)`` binary spikes of the visible
            neurons, in the order of ``numpy.flatnonzero(spec.visible)``.
        inputs: ``(T, M)`` (shared) or ``(n_trials, T, M)`` exogenous inputs, when the network
            has them.

    Returns:
        ``(visible, inputs, batched)``: visible as float ``(n_trials, T, N_visible)`` (float64 when
        given as float64, else float32), inputs as float32 ``(n_trials, T, M)`` or None, and
        whether ``visible`` came with a trial axis.

    Raises:
        ValueError, TypeError: a spec without hidden (or visible) neurons, non-binary or empty
            spikes (no bins or trials), a neuron count other than N_visible, or inputs that do
            not match.
    """
    check_hidden_spec(spec)
    n_visible = int(np.sum(spec.visible))
    visible = _checks.spike_array(visible, "visible", min_ndim=2)
    _checks.nonempty(visible, "visible")
    if visible.ndim > 3 or visible.shape[-1] != n_visible:
        raise ValueError(
            f"visible must have shape (T, {n_visible}) or (n_trials, T, {n_visible}): one column "
            f"per visible neuron of the network ({n_visible} visible, "
            f"{spec.n_neurons - n_visible} hidden), got {tuple(visible.shape)}"
        )
    batched = visible.ndim == 3
    visible = jnp.asarray(visible)  # float64 stays float64 when x64 is enabled
    visible = visible if visible.dtype == jnp.float64 else visible.astype(jnp.float32)
    visible = visible if batched else visible[None]
    n_trials, n_steps = visible.shape[:2]
    inputs = sampler_inputs(spec, inputs, n_steps, n_trials, batched)
    return visible, inputs, batched


class HiddenSpikes(dist.Distribution):
    """p(h‖x): the hidden rasters of a network with the visible neurons clamped.

    log p(h‖x) = Σ_t Σ_{i∈H} log σ((2h_{i,t} − 1) u_{i,t}), u from the full raster (visible data
    and h) by :func:`probsnn.potentials`. Batch shape ``(n_trials,)``, event shape
    ``(T, N_hidden)``; samples are uint8, drawn bin by bin by :func:`probsnn.sample` with
    ``clamp``.

    Args:
        spec: the network. params: its :class:`~probsnn.Params` (traced values allowed).
        visible: ``(n_trials, T, N_visible)`` float visible spikes (validated by
            :func:`check_visible`). inputs: ``(n_trials, T, M)`` or None.
    """

    arg_constraints: ClassVar[dict] = {}
    support = constraints.independent(constraints.boolean, 2)
    pytree_data_fields = ("params", "visible", "inputs")
    pytree_aux_fields = ("spec",)
    # Not reparameterisable: without this NumPyro would infer has_rsample from the (empty)
    # parameter constraints and TraceGraph_ELBO would drop the score term.
    has_rsample = False

    def __init__(self, spec: Network, params: Params, visible, inputs=None, *, validate_args=None):
        self.spec, self.params, self.visible, self.inputs = spec, params, visible, inputs
        n_trials, n_steps = visible.shape[:2]
        n_hidden = int(np.sum(spec.hidden))
        super().__init__((n_trials,), (n_steps, n_hidden), validate_args=validate_args)

    def raster(self, hidden):
        """The full raster ``(..., n_trials, T, N)`` for hidden ``(..., n_trials, T, N_h)``."""
        hidden = jnp.asarray(hidden, self.visible.dtype)
        spikes = jnp.zeros((*hidden.shape[:-1], self.spec.n_neurons), hidden.dtype)
        visible = jnp.broadcast_to(self.visible, (*hidden.shape[:-1], self.visible.shape[-1]))
        spikes = spikes.at[..., np.flatnonzero(self.spec.visible)].set(visible)
        return spikes.at[..., np.flatnonzero(self.spec.hidden)].set(hidden)

    def potentials(self, hidden):
        """Potentials u ``(..., n_trials, T, N)`` of the full raster with ``hidden`` spikes."""
        spikes = self.raster(hidden)
        inputs = self.inputs
        if inputs is not None:
            inputs = jnp.broadcast_to(inputs, (*spikes.shape[:-1], inputs.shape[-1]))
        return contract(self.spec, self.params, filter_traces(self.spec, spikes, inputs))

    def log_prob(self, value):
        u = self.potentials(value)[..., np.flatnonzero(self.spec.hidden)]
        return jnp.sum(bernoulli_log_prob(value, u), axis=(-2, -1))

    def sample(self, key, sample_shape=()):
        n_draws = math.prod(sample_shape)
        n_trials, n_steps = self.visible.shape[:2]
        clamp = jnp.tile(self.visible, (n_draws, 1, 1))
        inputs = None if self.inputs is None else jnp.tile(self.inputs, (n_draws, 1, 1))
        spikes = sample(
            self.spec, self.params, key, n_steps, n_draws * n_trials, inputs=inputs, clamp=clamp
        )
        hidden = spikes[..., np.flatnonzero(self.spec.hidden)]
        return hidden.reshape(*sample_shape, *self.batch_shape, *self.event_shape)


def hidden_network(spec: Network, visible, *, inputs=None, params=None):
    """NumPyro model p(x, h) = p(h‖x) p(x‖h) of a network with visible and hidden neurons.

    Args:
        spec: the network; ``spec.visible`` marks the visible neurons (at least one of each).
        visible: observed visible spikes ``(T, N_visible)`` or ``(n_trials, T, N_visible)``,
            columns ordered as ``numpy.flatnonzero(spec.visible)``.
        inputs: exogenous inputs ``(T, M)`` or ``(n_trials, T, M)`` when ``spec.n_inputs`` > 0.
        params: fixed :class:`~probsnn.Params`, a :class:`~probsnn.models.GLMPrior`, or None for
            ``numpyro.param`` sites shared with :func:`hidden_guide`.

    Sites (inside the plate ``"trials"``): ``"h"`` latent ``(n_trials, T, N_hidden)`` from
    :class:`HiddenSpikes`; ``"x"`` observed, Bernoulli(σ(u)) of the visible neurons;
    deterministic ``"spikes"``, the full raster in the layout of ``visible``. To generate
    visible and hidden spikes together use :func:`probsnn.models.glm_network` or
    :func:`probsnn.sample`.

    Returns:
        The full raster.

    Raises:
        ValueError, TypeError: see :func:`check_visible`.
    """
    theta = network_params(spec, params)
    visible, inputs, batched = check_visible(spec, visible, inputs)
    hidden_spikes = HiddenSpikes(spec, theta, visible, inputs)
    with numpyro.plate("trials", visible.shape[0]):
        hidden = numpyro.sample("h", hidden_spikes)
        u = hidden_spikes.potentials(hidden)[..., np.flatnonzero(spec.visible)]
        numpyro.sample("x", dist.Bernoulli(logits=u).to_event(2), obs=visible)
    spikes = hidden_spikes.raster(hidden)
    return numpyro.deterministic("spikes", spikes if batched else spikes[0])


def hidden_guide(spec: Network, visible, *, inputs=None, params=None):
    """NumPyro guide q(h‖x) = p(h‖x): the network's own hidden dynamics, visible clamped.

    Takes the arguments of :func:`hidden_network` (SVI passes the same ones to both);
    ``params`` is fixed :class:`~probsnn.Params` or None (the model's ``numpyro.param`` sites:
    the guide shares θ). Site ``"h"`` ``(n_trials, T, N_hidden)`` in the plate ``"trials"``.

    Returns:
        The full raster (visible data and sampled hidden spikes).

    Raises:
        TypeError: a :class:`~probsnn.models.GLMPrior` (the guide's conditionals are the
            model's, with θ a point value); ValueError, TypeError: see :func:`check_visible`.
    """
    if isinstance(params, GLMPrior):
        raise TypeError(
            "hidden_guide shares the model's parameters θ as point values: pass Params or None, "
            "not a GLMPrior"
        )
    theta = network_params(spec, params)
    visible, inputs, batched = check_visible(spec, visible, inputs)
    hidden_spikes = HiddenSpikes(spec, theta, visible, inputs)
    with numpyro.plate("trials", visible.shape[0]):
        hidden = numpyro.sample("h", hidden_spikes)
    spikes = hidden_spikes.raster(hidden)
    return numpyro.deterministic("spikes", spikes if batched else spikes[0])
