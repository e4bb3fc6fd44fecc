"""probsnn: probabilistic spiking neural networks on JAX and NumPyro.

Core objects: :class:`Network` (static spec) and :class:`Params` (pytree), the parallel
:func:`potentials` and :func:`log_likelihood`, the sequential :func:`step`, and :func:`sample`.
Submodules: ``kernels``, ``topology``, ``encoding``, ``stats``, ``data``, ``wta`` (winner-take-all
units) and ``plot`` (imported on
demand, ``from probsnn import plot``, as it loads matplotlib.pyplot); ``probsnn.models`` and
``probsnn.inference`` hold the NumPyro models and the learning criteria.
"""

from probsnn import data, encoding, kernels, stats, topology
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
from probsnn.wta import WTANetwork, WTAParams

__version__ = "0.1.0"

__all__ = [
    "Network",
    "Params",
    "SamplerState",
    "Traces",
    "WTANetwork",
    "WTAParams",
    "bernoulli_log_prob",
    "data",
    "encoding",
    "init_state",
    "kernels",
    "log_likelihood",
    "potentials",
    "sample",
    "stats",
    "step",
    "topology",
    "traces",
    "wta",
]
