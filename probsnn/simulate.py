"""Fast sampling of spike trains from a GLM network, outside NumPyro.

``lax.scan`` over bins of :func:`probsnn.glm.step` with all trials in one batch, so each bin's
coupling is one (trials, K·N) × (K·N, N) matrix product. The state is a ring buffer of the last
L bins, so memory is O(trials × N × L) plus the output.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks, parallel
from probsnn.glm import _init_state, advance, emit_spikes, step_potential, step_weights
from probsnn.network import Network, Params
from probsnn.propagation import (
    PROPAGATIONS,
    SPARSE_CAPACITY,
    ModeState,
    default_capacity,
    init_mode_state,
    mode_advance,
    mode_layout,
    mode_potential,
    mode_weights,
)
from probsnn.sparse import SparseNetwork


def sample(
    spec: Network,
    params: Params,
    key,
    n_steps: int,
    n_trials: int | None = None,
    inputs=None,
    return_potentials: bool = False,
    clamp=None,
    propagation: str = "auto",
    capacity: int | None = None,
    mesh=None,
):
    """Sample spike trains s_{i,t} ~ Bernoulli(σ(u_{i,t})) bin by bin, starting from silence.

    With ``clamp``, the visible neurons (``spec.visible``) are set to the given spikes in every
    bin and only the hidden ones are drawn: a sample of the causally conditioned distribution
    q(h‖x) = Π_t Π_{i∈H} p(h_{i,t} | u_{i,t}) (Jang et al. 2019; docs/theory.md §3).

    Args:
        spec: the network, a :class:`~probsnn.Network` or a
            :class:`~probsnn.sparse.SparseNetwork` (event-driven only, recursive bases).
            params: its :class:`~probsnn.Params`.
        key: a PRNG key, split once per bin; the bin's Bernoulli draws are independent across
            trials and neurons.
        n_steps: T, number of bins.
        n_trials: number of independent trials; None returns unbatched arrays.
        inputs: ``(T, M)`` (shared by all trials) or ``(n_trials, T, M)`` exogenous inputs,
            required when ``spec.n_inputs`` > 0.
        return_potentials: also return the potentials u used in every bin.
        clamp: visible spikes ``(T, N_visible)`` (shared by all trials) or
            ``(n_trials, T, N_visible)``, in the order of ``numpy.flatnonzero(spec.visible)``.
        propagation: how the past reaches the potentials. ``"ring"``: a ring buffer of the
            last L bins, traces Σ_δ φ_{k,δ} s_{t−δ} per bin (any basis; O(N·L + K·N²) per bin
            and trial). ``"dense"``: recursive trace states (bases that are
            :class:`~probsnn.kernels.RecursiveBasis`), the bin's spikes times the (N, J·N)
            mode weights (O(J·N²)). ``"event"``: recursive states plus the weight rows of
            the neurons that spiked (O(spikes·J·N)), the dense product for a bin where a trial
            has more than ``capacity`` spikes. ``"auto"``: for recursive bases ``"event"`` on
            the CPU and ``"dense"`` on an accelerator (where the product runs at matrix speed
            while the event loop's per-spike steps are each a kernel launch: measured on an
            H200, 12 against 1,030 µs per bin at N = 1,000 and 4 % firing), else ``"ring"``.
            All give the same distribution; the recursive ones agree with ``"ring"`` to float
            round-off in u (the basis matrix's dropped tail is below it), so spikes for the same
            key agree except where a uniform draw falls within round-off of σ(u).
        capacity: the event path's spikes per trial and bin (on average over the trials)
            above which a bin takes the dense product; default
            :func:`probsnn.propagation.default_capacity` (N / (4 √n_trials)). For a sparse
            network, the spikes delivered per scatter (all are delivered; default
            :data:`~probsnn.propagation.SPARSE_CAPACITY`).
        mesh: optional :class:`jax.sharding.Mesh` (:func:`probsnn.parallel.trial_mesh`): the
            trials are split over its ``"trials"`` devices (``n_trials`` a multiple of their
            number) and, on a ``"neurons"`` axis, a dense network by postsynaptic neuron (N
            a multiple of its size; pass params placed by
            :func:`probsnn.parallel.shard_params` so that no device holds them whole), with
            the same spikes as on one device for the same key; the outputs stay sharded.

    Returns:
        spikes ``(n_trials, T, N)`` uint8 (``(T, N)`` without trials), and with
        ``return_potentials`` also u of the same shape in float32.

    Raises:
        TypeError: a key that is not a PRNG key (e.g. an int seed: pass ``jax.random.key(0)``),
            non-integer sizes, complex inputs.
        ValueError: sizes below 1 or too large to allocate, params of the wrong shape or with
            NaN/inf (naming the field), inputs missing, unexpected, non-finite or of the wrong
            shape, non-binary clamped spikes, an unknown propagation, ``"dense"`` or
            ``"event"`` on a network whose bases are not recursive, a capacity below 1, a
            sparse network with another propagation or array bases, a mesh without
            ``n_trials`` or with ``n_trials`` not a multiple of its devices.
    """
    spec.check_params(params)
    mesh = parallel.check_mesh(mesh)
    if mesh is not None:
        if n_trials is None:
            raise ValueError("sampling with a mesh needs n_trials (the axis split over devices)")
        parallel.check_divisible(n_trials, mesh, "n_trials")
        if parallel.neuron_shards(mesh) > 1:
            if isinstance(spec, SparseNetwork):
                raise ValueError(
                    "a SparseNetwork is not split over a 'neurons' mesh axis (its synapses are "
                    "stored by presynaptic neuron); use a mesh over trials only"
                )
            parallel.check_divisible(spec.n_neurons, mesh, "the number of neurons", "neurons")
    n_batch = 1 if n_trials is None or not isinstance(n_trials, int) else max(n_trials, 1)
    propagation, capacity = check_propagation(spec, propagation, capacity, n_batch)
    targets = spec.synapses.device_targets() if isinstance(spec, SparseNetwork) else None
    sampler = partial(
        _sample, propagation=propagation, capacity=capacity, targets=targets, mesh=mesh
    )
    request = (key, n_steps, n_trials, inputs, clamp, return_potentials)
    return run_sampler(sampler, _clamped_spikes, spec, params, *request)


def check_propagation(spec: Network, propagation, capacity, n_trials: int = 1):
    """Resolve ``propagation`` (``"auto"`` → for recursive bases ``"event"`` when JAX's default
    backend is the CPU and ``"dense"`` on an accelerator, else ``"ring"``) and ``capacity``
    (default :func:`~probsnn.propagation.default_capacity` for ``n_trials``); returns both.

    Raises:
        ValueError: an unknown option, a recursive method on array bases, a capacity below 1.
        TypeError: a capacity that is not an integer.
    """
    propagation = _checks.option(propagation, "propagation", ("auto", "ring", *PROPAGATIONS))
    if isinstance(spec, SparseNetwork):
        return _sparse_propagation(spec, propagation, capacity)
    if propagation == "auto" and not spec.recursive:
        propagation = "ring"
    elif propagation == "auto":
        propagation = "event" if jax.default_backend() == "cpu" else "dense"
    if propagation in PROPAGATIONS and not spec.recursive:
        raise ValueError(
            f"propagation={propagation!r} needs recursive synapse and feedback bases "
            "(probsnn.kernels.RecursiveBasis, e.g. kernels.recursive_exponential); this "
            "network's bases are arrays: use propagation='ring'"
        )
    if capacity is None:
        capacity = default_capacity(spec.n_neurons, n_trials)
    capacity = min(_checks.positive_int(capacity, "capacity"), spec.n_neurons)
    return propagation, capacity


def _sparse_propagation(spec: SparseNetwork, propagation: str, capacity):
    """A sparse network samples event by event on recursive traces, ``capacity`` spikes per
    scatter (default :data:`~probsnn.propagation.SPARSE_CAPACITY`)."""
    if propagation not in ("auto", "event"):
        raise ValueError(
            f"a SparseNetwork samples with propagation='event' (or 'auto'), got {propagation!r}"
        )
    if not spec.recursive:
        raise ValueError(
            "sampling a SparseNetwork needs recursive synapse and feedback bases "
            "(probsnn.kernels.RecursiveBasis; kernels.fit_exponentials approximates any basis)"
        )
    capacity = SPARSE_CAPACITY if capacity is None else capacity
    return "event", _checks.positive_int(capacity, "capacity")


def run_sampler(sampler, check_clamp, spec, params, key, n_steps, n_trials, inputs, clamp, full):
    """The public samplers' shared front: validate the key, sizes, inputs (against the spec's
    channels for a WTA network) and clamp (``check_clamp(spec, clamp, n_steps, n_trials,
    batched)``), run the compiled ``sampler(spec, params, key, n_steps, n_trials, inputs,
    clamp, full)`` (u is built only when ``full``), drop the trial axis when ``n_trials`` is
    None, and return u too when ``full``."""
    key = _checks.prng_key(key, "key")
    n_steps = _checks.positive_int(n_steps, "n_steps")
    batched = n_trials is not None
    n_trials = _checks.positive_int(n_trials, "n_trials") if batched else 1
    n_channels = getattr(spec, "channels", spec).n_neurons  # N, or N·C for a WTA network
    _checks.allocation(
        n_trials * n_steps * n_channels,
        f"the sampled spikes (n_trials={n_trials}, n_steps={n_steps}, {n_channels} channels)",
    )
    input_spec = getattr(spec, "channels", spec)
    inputs = sampler_inputs(input_spec, inputs, n_steps, n_trials, batched)
    clamp = check_clamp(spec, clamp, n_steps, n_trials, batched)
    spikes, u = sampler(spec, params, key, n_steps, n_trials, inputs, clamp, full)
    if not batched:
        spikes = spikes[0]
        u = None if u is None else u[0]
    return (spikes, u) if full else spikes


@partial(
    jax.jit,
    static_argnames=("spec", "n_steps", "n_trials", "full", "propagation", "capacity", "mesh"),
)
def _sample(
    spec,
    params,
    key,
    n_steps,
    n_trials,
    inputs,
    clamp,
    full,
    propagation,
    capacity,
    targets,
    mesh=None,
):
    visible = None if clamp is None else spec.visible
    if targets is None:  # a dense network: split by postsynaptic neuron on a "neurons" axis
        params = parallel.constrain_params(params, mesh)
    step_fn = sampling_step(spec, params, propagation, capacity, visible, targets)
    state = _split_trials(initial_state(spec, (n_trials,), propagation), mesh)
    inputs, clamp = parallel.constrain_leading((inputs, clamp), mesh)
    spikes, u = scan_bins(step_fn, state, key, n_steps, inputs, clamp, full)
    return tuple(parallel.constrain_axis(out, mesh, 0, 2) for out in (spikes, u))


def step_parts(spec, params, propagation: str, capacity: int, targets=None, dtype=jnp.float32):
    """A sampling bin in two halves, for callers that act between them (the sampler's own
    draw, a NumPyro site, a particle filter's weighting and resampling), with the weights
    arranged once: ``(potential, deliver)``.

    ``potential(state)`` gives u_t ``(*B, N)``; ``deliver(state, spikes_t, input_t=None)`` pushes
    the bin's spikes ``(*B, N)`` and inputs ``(*B, M)``. ``"ring"`` works on the ring buffer
    (:func:`probsnn.glm.step_potential`, :func:`probsnn.glm.advance`); ``"dense"`` and
    ``"event"`` on trace states (:func:`probsnn.propagation.mode_potential`,
    :func:`probsnn.propagation.mode_advance` with ``capacity``). ``propagation`` and
    ``capacity`` as :func:`check_propagation` resolves them; ``targets`` as
    :func:`~probsnn.propagation.mode_weights`; the state from :func:`initial_state`.
    """
    if propagation == "ring":
        weights = step_weights(spec, params, dtype)
        return partial(step_potential, weights), advance
    layout, weights = mode_layout(spec), mode_weights(spec, params, dtype, targets)

    def deliver(state, spikes_t, input_t=None):
        return mode_advance(layout, weights, state, spikes_t, input_t, propagation, capacity)

    return partial(mode_potential, layout, weights), deliver


def sampling_step(spec, params, propagation: str, capacity: int, visible=None, targets=None):
    """One bin of the sampler chosen by :func:`check_propagation`, with the weights arranged
    once: ``step(state, key, input_t=None, clamp_t=None) -> (state, (spikes_t, u_t))``:
    u_t from :func:`step_parts`, s_t ~ Bernoulli(σ(u_t)) (:func:`probsnn.glm.emit_spikes`,
    clamped where observed: ``visible`` is required with ``clamp_t``), then the delivery.
    """
    potential, deliver = step_parts(spec, params, propagation, capacity, targets)

    def step(state, key, input_t=None, clamp_t=None):
        u = potential(state)
        spikes_t = emit_spikes(key, u, clamp_t, visible)
        return deliver(state, spikes_t, input_t), (spikes_t, u)

    return step


def initial_state(spec, batch_shape: tuple[int, ...], propagation: str, dtype=jnp.float32):
    """Silence for :func:`step_parts`: the empty ring buffer or zero trace states."""
    if propagation == "ring":
        return _init_state(spec, batch_shape, dtype)
    return init_mode_state(spec, batch_shape, dtype)


def _split_trials(state, mesh):
    """The sampler state with its trial axis split over the mesh (and its neuron axis over a
    ``"neurons"`` axis): the ring buffers are time-major (L, B, N), the trace states
    trial-major (B, J, N)."""
    if mesh is None:
        return state
    state = state._replace(inputs=parallel.constrain_axis(state.inputs, mesh, 1))
    if isinstance(state, ModeState):
        return state._replace(
            e=parallel.constrain_axis(state.e, mesh, 0, 2),
            f=parallel.constrain_axis(state.f, mesh, 0, 2),
        )
    return state._replace(spikes=parallel.constrain_axis(state.spikes, mesh, 1, 2))


def scan_bins(step_fn, state, key, n_steps: int, inputs=None, clamp=None, potentials=True):
    """Run a sampling step over ``n_steps`` bins with ``lax.scan``, trials leading.

    The one scan of the samplers: the GLM network's (:func:`probsnn.glm.sample_step` and
    :func:`probsnn.propagation.mode_step`) and the WTA network's (:func:`probsnn.wta.step`, its
    own categorical emission) all run through it.

    Args:
        step_fn: ``step_fn(state, key, input_t, clamp_t) -> (state, (spikes_t, u_t))``, with
            input_t ``(B, M)`` or None and clamp_t ``(B, ...)`` or None.
        state: the initial sampler state. key: PRNG key, split once per bin.
        n_steps: T. inputs: ``(B, T, M)`` or None. clamp: ``(B, T, ...)`` or None.
        potentials: keep u of every bin; without it only the spikes are stacked.

    Returns:
        ``(spikes, u)``, each ``(B, T, ...)``; u is None without ``potentials``.
    """
    keys = jax.random.split(key, n_steps)
    xs = (
        keys,
        None if inputs is None else jnp.swapaxes(inputs, 0, 1),
        None if clamp is None else jnp.swapaxes(clamp, 0, 1),
    )

    def body(carry, x_t):
        carry, (spikes_t, u_t) = step_fn(carry, *x_t)
        return carry, (spikes_t, u_t if potentials else None)

    _, (spikes, u) = jax.lax.scan(body, state, xs)
    return jnp.swapaxes(spikes, 0, 1), None if u is None else jnp.swapaxes(u, 0, 1)


def _clamped_spikes(spec: Network, clamp, n_steps: int, n_trials: int, batched: bool):
    """Validate ``clamp`` ``(T, N_vis)`` or ``(n_trials, T, N_vis)``; return uint8
    ``(n_trials, T, N)`` with the visible columns filled (hidden columns are ignored), or None."""
    if clamp is None:
        return None
    n_visible = int(np.sum(spec.visible))
    clamp = _checks.spike_array(clamp, "clamp", n_visible)
    clamp = _checks.per_trial(clamp, "clamp", (n_steps, n_visible), n_trials, batched, jnp.uint8)
    full = jnp.zeros((n_trials, n_steps, spec.n_neurons), jnp.uint8)
    return full.at[..., np.flatnonzero(spec.visible)].set(clamp)


def sampler_inputs(spec: Network, inputs, n_steps: int, n_trials: int, batched: bool = True):
    """Validate sampler inputs, ``(T, M)`` shared or ``(n_trials, T, M)``; returns float32
    ``(n_trials, T, M)``, or None for a network without inputs. Raises ValueError naming
    ``inputs`` on a wrong shape, missing or unexpected inputs."""
    if spec.n_inputs == 0:
        if inputs is not None:
            raise ValueError("inputs were given but the network has n_inputs=0")
        return None
    if inputs is None:
        raise ValueError(f"inputs of shape (T, {spec.n_inputs}) are required by this network")
    inputs = _checks.real_array(inputs, "inputs", min_ndim=2)
    return _checks.per_trial(
        inputs, "inputs", (n_steps, spec.n_inputs), n_trials, batched, jnp.float32
    )
