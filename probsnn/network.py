"""The network specification (static) and its parameters (a pytree of arrays).

Membrane potential of neuron i at bin t (Jang, Simeone, Gardner & Grüning 2019, IEEE SPM 36(6)):

    u_{i,t} = Σ_{j∈P_i} Σ_k w_{j,i,k} x^{syn}_{j,k,t} + Σ_k v_{i,k} x^{fb}_{i,k,t}
              + Σ_{m,k} c_{m,i,k} x^{in}_{m,k,t} + γ_i,

with x the basis-filtered traces of :func:`probsnn.kernels.filter_spikes`. :class:`Network`
holds everything static (sizes, bases, masks, Δ) so ``jax.jit`` treats it as a compile-time
constant; :class:`Params` holds the arrays that are fitted.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks, topology
from probsnn.kernels import RecursiveBasis


class Params(NamedTuple):
    """GLM network parameters.

    Attributes:
        w: synaptic weights ``(N, N, K_syn)``, indexed ``[pre j, post i, basis k]``; zero where
            the connectivity mask is False.
        v: feedback (self-history) weights ``(N, K_fb)``.
        c: stimulus weights ``(M, N, K_in)``, indexed ``[input m, neuron i, basis k]``.
        bias: γ ``(N,)``.
    """

    w: jax.Array
    v: jax.Array
    c: jax.Array
    bias: jax.Array


@jax.tree_util.register_static
class Network:
    """Static specification of a GLM spiking network (hashable; a jit-static pytree).

    Args:
        n_neurons: N >= 1.
        synapse_basis: ``(K_syn, L_syn)`` basis of the synaptic kernels, or a
            :class:`~probsnn.kernels.RecursiveBasis` (any of the three bases may be one: it
            stands for its matrix everywhere, and when the synapse and feedback bases both are,
            :func:`probsnn.sample` can keep decaying trace states instead of L lags).
        feedback_basis: ``(K_fb, L_fb)`` basis of each neuron's own history kernel; default the
            synapse basis.
        input_basis: ``(K_in, L_in)`` basis of the stimulus kernels; required when n_inputs > 0.
        n_inputs: M >= 0 exogenous input channels.
        dt: bin width Δ in seconds, > 0.
        connectivity: ``(N, N)`` bool mask ``[pre, post]``; default
            :func:`probsnn.topology.dense`. Its diagonal must be False.
        visible: ``(N,)`` bool, which neurons are observed; default all. Hidden neurons are used
            by the variational criteria.

    Raises:
        ValueError, TypeError: naming the offending argument.
    """

    def __init__(
        self,
        n_neurons: int,
        synapse_basis,
        feedback_basis=None,
        input_basis=None,
        n_inputs: int = 0,
        dt: float = 1e-3,
        connectivity=None,
        visible=None,
    ):
        self.n_neurons = _checks.positive_int(n_neurons, "n_neurons")
        self.synapse_basis = _frozen(_checks.basis_matrix(synapse_basis, "synapse_basis"))
        self.feedback_basis = (
            self.synapse_basis
            if feedback_basis is None
            else _frozen(_checks.basis_matrix(feedback_basis, "feedback_basis"))
        )
        self.n_inputs = _checks.positive_int(n_inputs, "n_inputs", minimum=0)
        if self.n_inputs > 0 and input_basis is None:
            raise ValueError(f"input_basis is required when n_inputs={self.n_inputs} > 0")
        if self.n_inputs == 0 and input_basis is not None:
            raise ValueError("input_basis was given but n_inputs is 0; pass n_inputs=M")
        self.input_basis = (
            None
            if input_basis is None
            else _frozen(_checks.basis_matrix(input_basis, "input_basis"))
        )
        self.synapse_recursion = _recursion(synapse_basis)
        self.feedback_recursion = (
            self.synapse_recursion if feedback_basis is None else _recursion(feedback_basis)
        )
        self.input_recursion = _recursion(input_basis)
        self.dt = _checks.positive_float(dt, "dt")
        n = self.n_neurons
        _checks.allocation(
            n * n * max(self.synapse_basis.shape[0], 1), "the synaptic weights (N, N, K_syn)"
        )
        mask = topology.dense(n) if connectivity is None else np.asarray(connectivity)
        if mask.shape != (n, n) or mask.dtype != np.bool_:
            raise ValueError(
                f"connectivity must be a bool ({n}, {n}) array [pre, post], "
                f"got {mask.dtype} {mask.shape}"
            )
        if mask.diagonal().any():
            raise ValueError(
                "connectivity must have a False diagonal: self-coupling enters only through "
                "the feedback kernel"
            )
        self.connectivity = _frozen(mask)
        vis = np.ones(n, dtype=bool) if visible is None else np.asarray(visible)
        if vis.shape != (n,) or vis.dtype != np.bool_:
            raise ValueError(f"visible must be a bool ({n},) array, got {vis.dtype} {vis.shape}")
        self.visible = _frozen(vis)
        self._key = (
            self.n_neurons,
            self.n_inputs,
            self.dt,
            *(_array_key(a) for a in self._arrays()),
            self.synapse_recursion,
            self.feedback_recursion,
            self.input_recursion,
        )

    # -- sizes -----------------------------------------------------------------------------
    @property
    def n_lags(self) -> int:
        """History length kept by the sampler: max(L_syn, L_fb)."""
        return max(self.synapse_basis.shape[1], self.feedback_basis.shape[1])

    @property
    def n_input_lags(self) -> int:
        return 0 if self.input_basis is None else self.input_basis.shape[1]

    @property
    def shares_basis(self) -> bool:
        """True when feedback and synapses use the same basis (their traces are computed once)."""
        return self.feedback_basis is self.synapse_basis or (
            self.feedback_basis.shape == self.synapse_basis.shape
            and np.array_equal(self.feedback_basis, self.synapse_basis)
        )

    @property
    def recursive(self) -> bool:
        """True when the synapse and feedback bases are :class:`~probsnn.kernels.RecursiveBasis`
        objects, so the sampler can keep O(J) trace states per neuron instead of L lags."""
        return self.synapse_recursion is not None and self.feedback_recursion is not None

    @property
    def hidden(self) -> np.ndarray:
        return ~self.visible

    @property
    def param_shapes(self) -> Params:
        return shapes_of(self, (self.n_neurons, self.n_neurons))

    # -- parameters ------------------------------------------------------------------------
    def init_params(
        self,
        key,
        *,
        rate: float = 10.0,
        weight_scale: float = 1.0,
        refractory: float = 2.0,
        dtype=jnp.float32,
    ) -> Params:
        """Random parameters for a network that fires at about ``rate`` Hz.

        bias = logit(rate Δ); w_{j,i,k} ~ Normal(0, weight_scale² / (K |P_i|)) on the mask;
        c ~ Normal(0, weight_scale² / (K M)); v puts −``refractory`` on the first feedback basis
        function (a self-inhibition at short lags for a raised-cosine basis). Use
        ``weight_scale=0, refractory=0`` for an uncoupled starting point.

        Args:
            key: a PRNG key (``jax.random.key(0)``).
            rate: the target rate in Hz, finite, > 0 and < 1/dt.
            weight_scale: finite, >= 0. refractory: finite. dtype: a floating dtype.

        Returns:
            :class:`Params` with this network's shapes, all finite.

        Raises:
            TypeError: a key that is not a PRNG key (e.g. an int seed), a non-numeric option or
                a non-floating dtype.
            ValueError: a non-finite or out-of-range rate, weight_scale or refractory.
        """
        fan_in = np.maximum(self.connectivity.sum(axis=0), 1) * self.synapse_basis.shape[0]
        scale = self.connectivity / np.sqrt(fan_in)  # (N_pre, N_post), 0 off the mask
        return random_params(self, key, rate, weight_scale, refractory, dtype, scale)

    def check_params(self, params) -> Params:
        """Return ``params`` unchanged, raising unless it is a :class:`Params` with this network's
        shapes whose values are real and finite.

        Raises:
            TypeError: not a :class:`Params`, or a complex or non-numeric field.
            ValueError: a field of another shape, or NaN/inf in a field (naming it, e.g.
                ``params.bias``; values are inspected only outside ``jax.jit``).
        """
        _checks.params_of_shapes(params, Params, self.param_shapes, "probsnn.Params")
        return _checks.finite_tree(params, "params")

    def masked(self, params: Params) -> Params:
        """``params`` with synaptic weights outside the connectivity mask set to zero."""
        mask = jnp.asarray(self.connectivity, params.w.dtype)[:, :, None]
        return params._replace(w=params.w * mask)

    # -- kernels ---------------------------------------------------------------------------
    def coupling_kernels(self, params: Params):
        """Synaptic kernels ``(N_pre, N_post, L_syn)``: Σ_k w_{j,i,k} φ^{syn}_{k,δ}.

        Raises:
            TypeError, ValueError: ``params`` that fail :meth:`check_params`.
        """
        self.check_params(params)
        return self.masked(params).w @ jnp.asarray(self.synapse_basis, params.w.dtype)

    def feedback_kernels(self, params: Params):
        """Self-history kernels ``(N, L_fb)``: Σ_k v_{i,k} φ^{fb}_{k,δ}.

        Raises:
            TypeError, ValueError: ``params`` that fail :meth:`check_params`.
        """
        self.check_params(params)
        return params.v @ jnp.asarray(self.feedback_basis, params.v.dtype)

    def input_kernels(self, params: Params):
        """Stimulus kernels ``(M, N, L_in)``; raises ValueError when the network has no inputs."""
        if self.input_basis is None:
            raise ValueError("this network has no exogenous inputs (n_inputs=0)")
        self.check_params(params)
        return params.c @ jnp.asarray(self.input_basis, params.c.dtype)

    # -- identity --------------------------------------------------------------------------
    def _arrays(self):
        return (
            self.synapse_basis,
            self.feedback_basis,
            self.input_basis,
            self.connectivity,
            self.visible,
        )

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, Network) and self._key == other._key

    def __repr__(self):
        k_syn, l_syn = self.synapse_basis.shape
        k_fb, l_fb = self.feedback_basis.shape
        parts = [
            f"n_neurons={self.n_neurons}",
            f"synapse_basis=({k_syn}, {l_syn})",
            f"feedback_basis=({k_fb}, {l_fb})",
        ]
        if self.n_inputs:
            parts += [f"n_inputs={self.n_inputs}", f"input_basis={self.input_basis.shape}"]
        parts += [
            f"dt={self.dt}",
            f"synapses={int(self.connectivity.sum())}",
            f"hidden={int(self.hidden.sum())}",
        ]
        return f"Network({', '.join(parts)})"


def shapes_of(spec, synapse_axes: tuple[int, int]) -> Params:
    """The :class:`Params` shapes of ``spec`` with ``w`` ``(*synapse_axes, K_syn)``."""
    n, m = spec.n_neurons, spec.n_inputs
    k_in = 0 if spec.input_basis is None else spec.input_basis.shape[0]
    return Params(
        w=(*synapse_axes, spec.synapse_basis.shape[0]),
        v=(n, spec.feedback_basis.shape[0]),
        c=(m, n, k_in),
        bias=(n,),
    )


def random_params(spec, key, rate, weight_scale, refractory, dtype, synapse_scale) -> Params:
    """:meth:`Network.init_params` for any network with :class:`Params`: bias = logit(rate Δ),
    w = weight_scale × ``synapse_scale`` ``w.shape[:2]`` × Normal(0, 1), c ~ Normal(0,
    weight_scale² / (K M)), v = −refractory on the first feedback basis function; the options
    validated first (raising as :meth:`Network.init_params` says)."""
    key = _checks.prng_key(key, "key")
    rate = _checks.positive_float(rate, "rate")
    if not rate * spec.dt < 1:
        raise ValueError(f"rate * dt must be < 1, got rate={rate} with dt={spec.dt}")
    weight_scale = _checks.nonnegative_float(weight_scale, "weight_scale")
    refractory = _checks.finite_float(refractory, "refractory")
    dtype = _checks.float_dtype(dtype, "dtype")
    shapes = spec.param_shapes
    key_w, key_c = jax.random.split(key)
    scale = jnp.asarray(weight_scale * synapse_scale, dtype)[:, :, None]
    w = jax.random.normal(key_w, shapes.w, dtype) * scale
    c_scale = weight_scale / np.sqrt(max(spec.n_inputs * shapes.c[2], 1))
    c = jax.random.normal(key_c, shapes.c, dtype) * c_scale
    v = jnp.zeros(shapes.v, dtype).at[:, 0].set(-refractory)
    p = rate * spec.dt
    bias = jnp.full(shapes.bias, np.log(p / (1 - p)), dtype)
    return Params(w=w, v=v, c=c, bias=bias)


def _recursion(basis) -> RecursiveBasis | None:
    return basis if isinstance(basis, RecursiveBasis) else None


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.setflags(write=False)
    return array


def _array_key(array):
    if array is None:
        return None
    return (array.shape, array.dtype.str, array.tobytes())
