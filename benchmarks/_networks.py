"""The discrete-time networks of the sampler benchmarks, with no simulator imported.

``sampler_brian2.py`` and ``sampler_sparse_brian2.py`` set Brian2 beside probsnn on these
networks; ``sampler_sparse.py`` times probsnn alone on them (on a machine without Brian2, such as
an accelerator). Three exponential synaptic traces of 5, 20 and 50 ms at 1 ms bins,
x_{j,k,t} = r_k (x_{j,k,t−1} + s_{j,t−1}) with r_k = e^{−Δ/τ_k}, and a refractory self-weight
on the 5 ms trace.
"""

from __future__ import annotations

import numpy as np

DT_S = 1e-3
TAUS_S = np.array([0.005, 0.020, 0.050])
K = len(TAUS_S)
DECAYS = np.exp(-DT_S / TAUS_S)  # r_k
MASSES = DECAYS / (1 - DECAYS)  # m_k = Σ_{δ≥1} r_k^δ
REFRACTORY = 2.0


def sparse_weights(synapses, scale: float, seed: int):
    """float32 w ``(N, F, K)`` ~ Normal(0, scale² / (K d_target)) (0 in padding slots) and
    v ``(N, K)`` = (−REFRACTORY, 0, 0), for the synapse table ``synapses``
    (:class:`probsnn.Synapses`, targets ``(N, F)``)."""
    rng = np.random.default_rng(seed)
    n, fan_out = synapses.targets.shape
    degree = np.maximum(synapses.in_degrees(), 1)
    per_target = np.append(scale / np.sqrt(K * degree), 0.0).astype(np.float32)
    w = rng.standard_normal((n, fan_out, K), dtype=np.float32)
    w *= per_target[synapses.targets][:, :, None]
    v = np.zeros((n, K), np.float32)
    v[:, 0] = -REFRACTORY
    return w, v


def add_sparse_arguments(parser) -> None:
    """The sparse network's command-line sizes (``--neurons``, ``--fan-out``, ``--steps``,
    ``--rate``, ``--weight-scale``, ``--calibration``), shared by the sparse benchmarks."""
    parser.add_argument("--neurons", type=int, nargs="+", default=[100_000])
    parser.add_argument("--fan-out", type=int, default=1000, help="synapses per neuron")
    parser.add_argument("--steps", type=int, default=1000, help="bins of 1 ms")
    parser.add_argument("--rate", type=float, default=0.005, help="firing probability per bin")
    parser.add_argument("--weight-scale", type=float, default=1.0, help="g in w's variance")
    parser.add_argument("--calibration", type=int, default=2, help="bias calibration runs")
