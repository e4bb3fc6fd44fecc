"""Sparse synapses: networks whose coupling is stored per presynaptic neuron, not as N × N.

A :class:`Synapses` object lists, for every presynaptic neuron j, its F_j postsynaptic targets
in a ``(N, F)`` table padded to the largest fan-out F (ELLPACK layout; Kincaid et al. 1989).
A :class:`SparseNetwork` keeps one weight per synapse and basis function, ``w`` ``(N, F, K)``
indexed ``[pre j, synapse s, basis k]`` with target ``targets[j, s]``, so memory is O(N·F·K)
rather than O(N²·K): 100,000 neurons with 1,000 synapses each and three exponential traces
take 1.2 GB of float32 weights. Its potential is the GLM potential of :mod:`probsnn.network`
with the synaptic sum over the listed synapses only,

    u_{i,t} = Σ_{(j,s): targets[j,s] = i} Σ_k w_{j,s,k} x^{syn}_{j,k,t}
              + Σ_k v_{i,k} x^{fb}_{i,k,t} + Σ_{m,k} c_{m,i,k} x^{in}_{m,k,t} + γ_i,

so a sparse network equals the dense :class:`~probsnn.Network` with the same mask
(:meth:`SparseNetwork.to_dense`). :func:`probsnn.sample` draws from it event by event (recursive
bases only: each spike adds its F weight rows to its targets' trace states, work ∝ spikes × F);
:func:`probsnn.potentials` and :func:`probsnn.log_likelihood` accept it. The fitting and
learning functions take dense networks: use :meth:`SparseNetwork.to_dense` where N² fits.
"""

from __future__ import annotations

import hashlib
import math

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks, _native
from probsnn.network import Network, Params, _frozen, random_params, shapes_of


@jax.tree_util.register_static
class Synapses:
    """Per-presynaptic target lists, ``targets`` ``(N, F)`` int32 padded with N.

    Build one with :meth:`from_mask`, :func:`probsnn.topology.fixed_fan_out` or
    :func:`probsnn.topology.random_sparse` (``sparse=True``).

    Args:
        targets: ``(N, F)`` integers; row j lists the distinct postsynaptic neurons of j (none
            equal to j), then the padding value N. F may be 0 (no synapses).

    Raises:
        TypeError: non-integer targets.
        ValueError: not a 2-D array, values outside [0, N], a self-connection, a repeated
            target, a padding value followed by a target.
    """

    def __init__(self, targets):
        table = np.asarray(targets)
        if table.ndim != 2:
            raise ValueError(f"targets must be an (N, F) array, got shape {table.shape}")
        if table.size and not np.issubdtype(table.dtype, np.integer):
            raise TypeError(f"targets must be integers, got dtype {table.dtype}")
        n = table.shape[0]
        _checks.positive_int(n, "targets.shape[0]")
        table = table.astype(np.int32)
        if table.size and (table.min() < 0 or table.max() > n):
            raise ValueError(
                f"targets must lie in [0, {n}] ({n} pads), got {table.min()}..{table.max()}"
            )
        padding = table == n
        if np.any(padding[:, :-1] & ~padding[:, 1:]):
            raise ValueError("targets: a row has a target after its padding value N")
        if np.any(table == np.arange(n)[:, None]):
            raise ValueError(
                "targets lists a self-connection: a neuron's own past enters only through "
                "the feedback kernel"
            )
        ordered = np.sort(table, axis=1)
        if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] < n)):
            raise ValueError("targets repeats a target within a row")
        self._set(table)

    def _set(self, table: np.ndarray):
        self.targets = _frozen(table)
        digest = hashlib.blake2b(self.targets.tobytes(), digest_size=32).digest()
        self._key = (self.targets.shape, digest)

    @classmethod
    def _trusted(cls, table: np.ndarray) -> Synapses:
        """Wrap a table built by this package's generators (valid by construction) without
        the O(N·F log F) checks."""
        synapses = cls.__new__(cls)
        synapses._set(table.astype(np.int32))
        return synapses

    @classmethod
    def from_mask(cls, mask) -> Synapses:
        """The synapses of a bool ``(N, N)`` mask ``[pre, post]`` (False diagonal), targets in
        increasing order.

        Raises:
            ValueError: a mask that is not bool (N, N) or has a True diagonal.
        """
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.shape[0] != mask.shape[1] or mask.dtype != np.bool_:
            raise ValueError(f"mask must be a bool (N, N) array, got {mask.dtype} {mask.shape}")
        n = mask.shape[0]
        counts = mask.sum(axis=1)
        table = np.full((n, int(counts.max(initial=0))), n, np.int32)
        rows, cols = np.nonzero(mask)
        slots = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
        table[rows, slots] = cols
        return cls._trusted(table)

    def device_targets(self) -> jax.Array:
        """``targets`` as a JAX array, transferred once and kept (the samplers pass it into
        their compiled functions rather than baking a large constant into them)."""
        if getattr(self, "_device_targets", None) is None:
            self._device_targets = jnp.asarray(self.targets)
        return self._device_targets

    @property
    def ascending(self) -> bool:
        """Whether every row lists its targets in increasing order (then its padding, N): true
        of the tables this package builds; checked once, in blocks of rows."""
        if getattr(self, "_ascending", None) is None:
            table = self.targets
            block = max(1, 2**24 // max(table.shape[1], 1))
            self._ascending = all(
                bool(np.all(np.diff(table[start : start + block], axis=1) >= 0))
                for start in range(0, table.shape[0], block)
            )
        return self._ascending

    @property
    def n_neurons(self) -> int:
        return self.targets.shape[0]

    @property
    def fan_out(self) -> int:
        """F, the width of the table (the largest out-degree)."""
        return self.targets.shape[1]

    @property
    def valid(self) -> np.ndarray:
        """``(N, F)`` bool, True where a slot holds a synapse."""
        return self.targets < self.n_neurons

    @property
    def n_synapses(self) -> int:
        return int(self.valid.sum())

    def in_degrees(self) -> np.ndarray:
        """``(N,)`` number of presynaptic partners of each neuron."""
        return np.bincount(self.targets[self.valid], minlength=self.n_neurons)

    def to_mask(self) -> np.ndarray:
        """The bool ``(N, N)`` mask ``[pre, post]`` (raises ValueError when too large)."""
        n = self.n_neurons
        _checks.allocation(n * n, "the (N, N) connectivity mask")
        mask = np.zeros((n, n), bool)
        rows = np.broadcast_to(np.arange(n)[:, None], self.targets.shape)
        mask[rows[self.valid], self.targets[self.valid]] = True
        return mask

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, Synapses) and self._key == other._key

    def __repr__(self):
        return f"Synapses(N={self.n_neurons}, fan_out={self.fan_out}, synapses={self.n_synapses})"


@jax.tree_util.register_static
class SparseNetwork:
    """A GLM network with sparse synapses (a jit-static pytree, like :class:`~probsnn.Network`).

    Args:
        n_neurons: N, equal to ``synapses.n_neurons``.
        synapses: a :class:`Synapses`.
        synapse_basis, feedback_basis, input_basis, n_inputs, dt: as for
            :class:`~probsnn.Network`. Sampling needs recursive synapse and feedback bases
            (:class:`~probsnn.kernels.RecursiveBasis`); the likelihood takes any.

    Parameters are :class:`~probsnn.Params` with ``w`` ``(N, F, K_syn)`` (``[pre, synapse,
    basis]``; slots past a neuron's fan-out are ignored), ``v`` ``(N, K_fb)``, ``c``
    ``(M, N, K_in)``, ``bias`` ``(N,)``. All neurons are visible.

    Raises:
        TypeError: synapses that are not :class:`Synapses`; as :class:`~probsnn.Network`.
        ValueError: n_neurons other than the synapses' N; as :class:`~probsnn.Network`.
    """

    def __init__(
        self,
        n_neurons: int,
        synapses: Synapses,
        synapse_basis,
        feedback_basis=None,
        input_basis=None,
        n_inputs: int = 0,
        dt: float = 1e-3,
    ):
        if not isinstance(synapses, Synapses):
            raise TypeError(
                "synapses must be a probsnn.sparse.Synapses (Synapses.from_mask, "
                f"topology.fixed_fan_out), got {type(synapses).__name__}"
            )
        self.n_neurons = _checks.positive_int(n_neurons, "n_neurons")
        if synapses.n_neurons != self.n_neurons:
            raise ValueError(
                f"synapses has {synapses.n_neurons} neurons, n_neurons is {self.n_neurons}"
            )
        self.synapses = synapses
        # the bases, inputs and dt are validated as a dense network's, on a one-neuron network
        shell = Network(1, synapse_basis, feedback_basis, input_basis, n_inputs, dt)
        for name in (
            "synapse_basis",
            "feedback_basis",
            "input_basis",
            "n_inputs",
            "dt",
            "synapse_recursion",
            "feedback_recursion",
            "input_recursion",
        ):
            setattr(self, name, getattr(shell, name))
        self.shares_basis = shell.shares_basis
        self.visible = _frozen(np.ones(self.n_neurons, bool))
        self._key = (self.n_neurons, synapses, shell._key[1:3], shell._key[3:6], shell._key[8:])

    n_lags = Network.n_lags
    n_input_lags = Network.n_input_lags
    recursive = Network.recursive
    hidden = Network.hidden

    @property
    def param_shapes(self) -> Params:
        return shapes_of(self, (self.n_neurons, self.synapses.fan_out))

    def init_params(
        self,
        key,
        *,
        rate: float = 10.0,
        weight_scale: float = 1.0,
        refractory: float = 2.0,
        dtype=jnp.float32,
    ) -> Params:
        """Random parameters as :meth:`probsnn.Network.init_params`: bias = logit(rate Δ),
        w ~ Normal(0, weight_scale² / (K |P_i|)) on the synapses (zero in the padding, |P_i| the
        target's in-degree), c ~ Normal(0, weight_scale² / (K M)), v = −refractory on the first
        feedback basis function.

        Raises:
            TypeError, ValueError: as :meth:`probsnn.Network.init_params`.
        """
        shapes = self.param_shapes
        _checks.allocation(math.prod(shapes.w), "the synaptic weights (N, F, K_syn)")
        fan_in = np.maximum(self.synapses.in_degrees(), 1) * shapes.w[2]
        padded = np.append(1 / np.sqrt(fan_in), 0.0)  # the padding target N gets 0
        scale = padded[self.synapses.targets]  # (N, F)
        return random_params(self, key, rate, weight_scale, refractory, dtype, scale)

    def check_params(self, params) -> Params:
        """As :meth:`probsnn.Network.check_params`, with ``w`` ``(N, F, K_syn)``."""
        _checks.params_of_shapes(params, Params, self.param_shapes, "probsnn.Params")
        return _checks.finite_tree(params, "params")

    def masked(self, params: Params) -> Params:
        """``params`` with the weights of the padding slots set to zero."""
        valid = jnp.asarray(self.synapses.valid, params.w.dtype)[:, :, None]
        return params._replace(w=params.w * valid)

    def to_dense(self, params: Params | None = None):
        """The equal :class:`~probsnn.Network` (mask from the synapses), and with ``params``
        also its dense :class:`~probsnn.Params` (``w`` scattered to ``(N, N, K_syn)``).

        Raises:
            ValueError: N² too large to allocate; params that fail :meth:`check_params`.
        """
        dense = Network(
            self.n_neurons,
            self.synapse_recursion or self.synapse_basis,
            self.feedback_recursion or self.feedback_basis,
            self.input_recursion or self.input_basis,
            self.n_inputs,
            self.dt,
            connectivity=self.synapses.to_mask(),
        )
        if params is None:
            return dense
        self.check_params(params)
        n, valid = self.n_neurons, self.synapses.valid
        rows = np.broadcast_to(np.arange(n)[:, None], valid.shape)[valid]
        w = jnp.zeros(dense.param_shapes.w, params.w.dtype)
        w = w.at[rows, self.synapses.targets[valid]].set(params.w[valid])
        return dense, params._replace(w=w)

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, SparseNetwork) and self._key == other._key

    def __repr__(self):
        k_syn, l_syn = self.synapse_basis.shape
        return (
            f"SparseNetwork(n_neurons={self.n_neurons}, fan_out={self.synapses.fan_out}, "
            f"synapses={self.synapses.n_synapses}, synapse_basis=({k_syn}, {l_syn}), "
            f"n_inputs={self.n_inputs}, dt={self.dt})"
        )


def compiled_kernel() -> bool:
    """Whether :func:`probsnn.sample` delivers a sparse network's spikes on the CPU through
    probsnn's compiled C kernel (built with the system's C compiler on first use and cached;
    ``PROBSNN_NATIVE=off`` turns it off) rather than XLA's gather and scatter. Both give the same
    spikes for the same key. Where every row of targets ascends (:attr:`Synapses.ascending`, true
    of the tables probsnn builds), a bin of many synapse events is split by ranges of targets
    over XLA's CPU threads. Float64 weights and other backends always take XLA's path.

    Measured by ``benchmarks/sampler_sparse_brian2.py`` on a 2-core CPU (10⁸ synapses, 5 Hz,
    1 s simulated, best of 3 rounds): 2.82 s with XLA's path (1.40x Brian2 ``cython``), 1.68 and
    2.47 s with the kernel split over two threads (2.42x and 2.11x)."""
    return _native.available()


def synaptic_input(spec: SparseNetwork, x_syn, w):
    """Σ_{(j,s) → i} Σ_k w_{j,s,k} x_{…,j,k}: traces ``(..., N, K)`` → ``(..., N)``, computed in
    blocks of rows so the per-synapse products never exceed about 2^24 values."""
    n, (fan_out, k) = spec.n_neurons, w.shape[1:]
    valid = spec.synapses.valid
    targets = jnp.asarray(np.where(valid, spec.synapses.targets, 0).ravel())
    w = w * jnp.asarray(valid, w.dtype)[:, :, None]
    batch = x_syn.shape[:-2]
    rows = x_syn.reshape(-1, n, k)
    block = max(1, min(rows.shape[0], 2**24 // max(n * fan_out, 1)))
    padded = -rows.shape[0] % block
    blocks = jnp.pad(rows, ((0, padded), (0, 0), (0, 0))).reshape(-1, block, n, k)

    def one(x):  # (block, N, K) -> (block, N)
        per_synapse = jnp.einsum("bjk,jsk->bjs", x, w, precision="highest").reshape(x.shape[0], -1)
        return jax.ops.segment_sum(per_synapse.T, targets, num_segments=n).T

    out = jax.lax.map(one, blocks).reshape(-1, n)[: rows.shape[0]]
    return out.reshape(*batch, n)


def random_targets(n_neurons: int, counts, rng: np.random.Generator) -> Synapses:
    """Synapses where neuron j projects to ``counts[j]`` distinct targets other than itself,
    drawn uniformly, without building an (N, N) array.

    Sparse rows draw with replacement and draw the repeats again until none is left (the
    procedure is symmetric in the labels, so every subset of the size is equally likely); rows
    with ``counts[j]`` > N/4 take the first ``counts[j]`` of a random permutation. Blocks of
    rows bound the memory to about 2^24 values at a time. Targets come sorted.
    """
    counts = np.asarray(counts, np.int64)
    n, fan_out = n_neurons, int(counts.max(initial=0))
    table = np.full((n, fan_out), n, np.int32)
    if fan_out == 0:
        return Synapses._trusted(table)
    dense_rows = 4 * fan_out > n
    block = max(1, 2**24 // (n if dense_rows else fan_out))
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n), dtype=np.int32)
        draw = _permuted_targets if dense_rows else _distinct_draws
        table[rows] = draw(rows, counts[rows], n, fan_out, rng)
    return Synapses._trusted(table)


def _other_neurons(rows, shape, n, rng):
    """Uniform draws from the N − 1 neurons other than each row's own."""
    draws = rng.integers(0, n - 1, shape, dtype=np.int32)
    return draws + (draws >= rows.reshape(-1, *([1] * (len(shape) - 1))))


def _permuted_targets(rows, counts, n, fan_out, rng):
    order = np.argsort(rng.random((rows.size, n - 1)), axis=1)[:, :fan_out].astype(np.int32)
    targets = np.sort(order + (order >= rows[:, None]), axis=1)  # skip the row's own index
    return np.where(np.arange(fan_out) < counts[:, None], targets, n)


def _distinct_draws(rows, counts, n, fan_out, rng):
    in_row = np.arange(fan_out) < counts[:, None]
    targets = np.where(in_row, _other_neurons(rows, in_row.shape, n, rng), n)
    unsorted = np.arange(rows.size)  # rows to sort and check again
    while unsorted.size:
        block = np.sort(targets[unsorted], axis=1)
        repeated = np.zeros(block.shape, bool)
        repeated[:, 1:] = (block[:, 1:] == block[:, :-1]) & (block[:, 1:] < n)
        which = np.nonzero(repeated)
        block[which] = _other_neurons(rows[unsorted[which[0]]], which[0].shape, n, rng)
        targets[unsorted] = block
        unsorted = unsorted[np.unique(which[0])]
    return targets
