"""A tiny network with hidden neurons whose log p(x) is computed exactly by enumeration.

2 visible + 2 hidden neurons, raw-lag kernels of length 2, T = 8 (2^16 hidden rasters). The
weights make the hidden neurons matter (ELBO about 1.3 nats below log p(x)); none of the
potentials is exactly 0, where NumPyro's Bernoulli log-probability has a kinked gradient.
"""

import jax.numpy as jnp
import numpy as np

import probsnn as ps
from probsnn import kernels

VISIBLE = np.array([True, True, False, False])
TARGET = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 0], [1, 1], [0, 1]], np.uint8)


def tiny_network(dtype=jnp.float32):
    """(spec, params) of the tiny network."""
    spec = ps.Network(4, kernels.raw_lags(2), visible=VISIBLE, dt=1e-2)
    w = np.zeros((4, 4, 2))
    w[2, 0, 0], w[3, 1, 0], w[3, 0, 1], w[2, 3, 0], w[0, 2, 1] = 1.5, -1.5, 1.0, 1.0, -1.0
    params = ps.Params(
        w=jnp.asarray(w, dtype),
        v=jnp.zeros((4, 2), dtype),
        c=jnp.zeros((0, 4, 0), dtype),
        bias=jnp.asarray([-1.1, 0.45, 0.1, -0.55], dtype),
    )
    return spec, params


def free_weights(spec, params):
    """The NumPyro param map of ``params`` (synaptic weights on the mask only)."""
    pre, post = np.nonzero(spec.connectivity)
    return {"w": params.w[pre, post], "v": params.v, "c": params.c, "bias": params.bias}
