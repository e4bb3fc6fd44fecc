"""The Heaviside spike function with a surrogate derivative (Neftci, Mostafa & Zenke 2019).

A threshold neuron spikes when its margin m = v − ϑ crosses zero, z = H(m), whose derivative is
zero almost everywhere. Surrogate-gradient training keeps H in the forward pass and replaces
H′(m) by a smooth pseudo-derivative h(m) in the backward pass. Every surrogate here is the
density of a smooth step of width ``scale`` (it integrates to one), so that ``scale`` means the
same thing for all of them:

* ``"sigmoid"``: h(m) = σ′(m/s)/s = σ(m/s) σ(−m/s)/s — the derivative of the escape-noise spike
  probability σ(m/s) of a neuron at temperature s. It is what stochastic automatic
  differentiation of the stochastic network gives (Gygax & Zenke 2025), hence the default;
* ``"fast_sigmoid"``: h(m) = 1 / (2s (1 + |m|/s)²), SuperSpike's (Zenke & Ganguli 2018) shape;
* ``"arctan"``: h(m) = 1 / (π s (1 + (m/s)²)), the derivative of ½ + arctan(m/s)/π
  (Fang et al. 2021);
* ``"triangle"``: h(m) = max(0, 1 − |m|/s)/s (Esser et al. 2016; Bellec et al. 2018 use a
  triangle of height 0.3).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from probsnn import _checks

#: The surrogate derivatives by name (see the module docstring).
SURROGATES = ("sigmoid", "fast_sigmoid", "arctan", "triangle")


def surrogate_derivative(margin, surrogate: str = "sigmoid", scale: float = 1.0) -> jax.Array:
    """The pseudo-derivative h(m) of H(m) (equations in the module docstring).

    Args:
        margin: m = v − ϑ, any shape, float.
        surrogate: one of :data:`SURROGATES`.
        scale: s > 0, the width of the smooth step (the potential's units).

    Returns:
        h(m), the shape of ``margin``; every h integrates to one over m.

    Raises:
        ValueError: an unknown ``surrogate`` or ``scale`` <= 0.
    """
    surrogate = _checks.option(surrogate, "surrogate", SURROGATES)
    scale = _checks.positive_float(scale, "scale")
    return _derivative(jnp.asarray(margin), surrogate, scale)


def _derivative(margin, surrogate: str, scale: float):
    x = margin / scale
    if surrogate == "sigmoid":
        return jax.nn.sigmoid(x) * jax.nn.sigmoid(-x) / scale
    if surrogate == "fast_sigmoid":
        return 0.5 / (scale * (1.0 + jnp.abs(x)) ** 2)
    if surrogate == "arctan":
        return 1.0 / (jnp.pi * scale * (1.0 + x**2))
    return jnp.maximum(0.0, 1.0 - jnp.abs(x)) / scale


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _spike(margin, surrogate: str, scale: float):
    return (margin > 0).astype(margin.dtype)


@_spike.defjvp
def _spike_jvp(surrogate, scale, primals, tangents):
    (margin,), (tangent,) = primals, tangents
    return _spike(margin, surrogate, scale), _derivative(margin, surrogate, scale) * tangent


def heaviside(margin, surrogate: str = "sigmoid", scale: float = 1.0) -> jax.Array:
    """z = H(m) = 1[m > 0] in the forward pass, dz/dm = h(m) in the backward pass.

    Args:
        margin: m = v − ϑ, float, any shape.
        surrogate: the pseudo-derivative h, one of :data:`SURROGATES`.
        scale: s > 0, its width.

    Returns:
        Spikes, float, the shape of ``margin``.

    Raises:
        ValueError: an unknown ``surrogate`` or ``scale`` <= 0.
        TypeError: a ``margin`` that is not a real float array.
    """
    surrogate = _checks.option(surrogate, "surrogate", SURROGATES)
    scale = _checks.positive_float(scale, "scale")
    margin = jnp.asarray(margin)
    if not jnp.issubdtype(margin.dtype, jnp.floating):
        raise TypeError(f"margin must be a real float array, got dtype {margin.dtype}")
    return _spike(margin, surrogate, scale)


def straight_through(sample, margin, surrogate: str, scale: float):
    """``sample`` in the forward pass, with dz/dm = h(m) in the backward pass.

    For a Bernoulli spike drawn with probability σ(m/s) and the sigmoid surrogate of width s this
    is the stochastic derivative of Gygax & Zenke (2025). Unchecked hot-loop building block.

    Args:
        sample: sampled spikes (0/1 float), the shape of ``margin``.
        margin: m, float.
        surrogate, scale: as in :func:`heaviside`.
    """
    smooth = _spike(margin, surrogate, scale)
    return sample + (smooth - jax.lax.stop_gradient(smooth))
