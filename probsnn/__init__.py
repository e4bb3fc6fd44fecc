"""probsnn: probabilistic spiking neural networks on JAX and NumPyro.

Core objects: :class:`Network` (static spec) and :class:`Params` (pytree), the parallel
:func:`potentials` and :func:`log_likelihood`, the sequential :func:`step`, and :func:`sample`.
Submodules: ``kernels``, ``topology``, ``encoding``, ``stats``, ``data``, ``wta`` (winner-take-all
units), ``lif`` (SRM0, LIF and ALIF threshold neurons with escape noise: the deterministic limit),
``surrogate`` (the Heaviside with surrogate derivatives) and ``plot`` (imported on
demand, ``from probsnn import plot``, as it loads matplotlib.pyplot); ``probsnn.models`` and
``probsnn.inference`` hold the NumPyro models and the learning criteria.

Importing probsnn turns on JAX's persistent compilation cache (compiled programs are kept in
``~/.cache/probsnn/jax`` and reused by the next process): :func:`enable_compilation_cache`
says how to move it (``PROBSNN_CACHE_DIR``) or turn it off (``PROBSNN_CACHE=off``).
"""

from probsnn import data, encoding, io, kernels, lif, stats, surrogate, topology
from probsnn._cache import _enable_on_import, disable_compilation_cache, enable_compilation_cache
from probsnn.glm import (
    SamplerState,
    Traces,
    bernoulli_log_prob,
    init_state,
    log_likelihood,
    potentials,
    step,
    traces,
)
from probsnn.network import Network, Params
from probsnn.simulate import sample
from probsnn.sparse import SparseNetwork, Synapses
from probsnn.wta import WTANetwork, WTAParams

__version__ = "0.1.0"

_enable_on_import()

__all__ = [
    "Network",
    "Params",
    "SamplerState",
    "SparseNetwork",
    "Synapses",
    "Traces",
    "WTANetwork",
    "WTAParams",
    "bernoulli_log_prob",
    "data",
    "disable_compilation_cache",
    "enable_compilation_cache",
    "encoding",
    "init_state",
    "io",
    "kernels",
    "lif",
    "log_likelihood",
    "potentials",
    "sample",
    "stats",
    "step",
    "surrogate",
    "topology",
    "traces",
    "wta",
]
