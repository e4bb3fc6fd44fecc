"""Priors on the parameter groups of the GLM network (docs/theory.md §6).

A :class:`GLMPrior` holds one prior per group — synaptic weights w, feedback weights v, stimulus
weights c, bias γ. Each is either a scalar NumPyro distribution, applied i.i.d. to every element
of the group, or a :class:`GroupPrior` that draws the whole group through its own sites, such as
the hierarchical regularised :class:`Horseshoe` for sparse connectivity. A group of shape
``(*G, K)`` holds G kernels (synapses, neurons, input-neuron pairs) of K basis weights each.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from probsnn import _checks
from probsnn.network import Network, Params


class GroupPrior(abc.ABC):
    """A prior that draws a whole parameter group ``(*G, K)`` through its own sample sites."""

    @abc.abstractmethod
    def sample(self, name: str, shape: tuple[int, ...]):
        """Draw the group (inside a NumPyro model) and return it, shape ``shape``."""

    @abc.abstractmethod
    def site_dims(self, name: str, dims: list[str]) -> dict[str, list[str]]:
        """ArviZ dims of every site :meth:`sample` creates, given the group's ``dims``."""

    @abc.abstractmethod
    def zero_values(self, name: str, shape: tuple[int, ...]) -> dict:
        """Values of latent sites at which the group is zero (an initial point)."""


@dataclasses.dataclass(frozen=True)
class IID(GroupPrior):
    """A scalar distribution applied independently to every element: one site ``name``."""

    distribution: dist.Distribution

    def __post_init__(self):
        if not isinstance(self.distribution, dist.Distribution):
            raise TypeError(
                "distribution must be a numpyro Distribution, "
                f"got {type(self.distribution).__name__}"
            )

    def sample(self, name, shape):
        return numpyro.sample(name, self.distribution.expand(shape).to_event(len(shape)))

    def site_dims(self, name, dims):
        return {name: list(dims)}

    def zero_values(self, name, shape):
        return {name: np.zeros(shape, np.float32)}


@dataclasses.dataclass(frozen=True)
class Horseshoe(GroupPrior):
    """Regularised horseshoe prior (Piironen & Vehtari 2017, Electron. J. Stat. 11:5018),
    non-centred, with one local scale per kernel.

    For a group w of shape ``(*G, K)``, with τ₀ = ``global_scale``, s = ``slab_scale`` and
    ν = ``slab_df``:

        τ = τ₀ τ̃,  τ̃ ~ HalfCauchy(1)                   site ``{name}_tau``     ()
        λ_g ~ HalfCauchy(1)                              site ``{name}_lambda``  G
        c² = s² ĉ,  ĉ ~ InverseGamma(ν/2, ν/2)            site ``{name}_slab``    ()
        z_{g,k} ~ Normal(0, 1)                           site ``{name}_raw``     (*G, K)
        w_{g,k} = τ λ̃_g z_{g,k},  λ̃_g² = c² λ_g² / (c² + τ² λ_g²)   deterministic ``name``

    so c² ~ InverseGamma(ν/2, ν s²/2). The K basis weights of one kernel share λ_g: the prior
    shrinks whole kernels (a synapse is on or off). Weights with τλ_g ≪ c are horseshoe
    distributed, the large ones are regularised to a Normal(0, c²) slab (a Student-t_ν(0, s)
    marginally). The product is computed as τλ̃ = c r / hypot(1, r), r = τλ/c, finite for any λ.
    Non-centring (sampling z rather than w) removes the funnel between w and its scale that
    stalls NUTS (Betancourt & Girolami 2015). Piironen & Vehtari's reference scale for p₀
    expected non-zero kernels among D, n observations and pseudo-noise σ is
    τ₀ = p₀/(D − p₀) σ/√n; for Bernoulli bins of rate p, σ ≈ 1/√(p(1 − p)).

    Raises:
        ValueError, TypeError: ``global_scale``, ``slab_scale`` or ``slab_df`` not a finite
            positive number.
    """

    global_scale: float
    slab_scale: float = 2.0
    slab_df: float = 4.0

    def __post_init__(self):
        for field in ("global_scale", "slab_scale", "slab_df"):
            object.__setattr__(self, field, _checks.positive_float(getattr(self, field), field))

    def sample(self, name, shape):
        if math.prod(shape) == 0:
            return jnp.zeros(shape)
        tau = self.global_scale * numpyro.sample(f"{name}_tau", dist.HalfCauchy(1.0))
        kernels = shape[:-1]
        local = numpyro.sample(
            f"{name}_lambda", dist.HalfCauchy(1.0).expand(kernels).to_event(len(kernels))
        )
        half_df = 0.5 * self.slab_df
        slab = self.slab_scale * jnp.sqrt(
            numpyro.sample(f"{name}_slab", dist.InverseGamma(half_df, half_df))
        )
        standard = dist.Normal(0.0, 1.0).expand(shape).to_event(len(shape))
        raw = numpyro.sample(f"{name}_raw", standard)
        ratio = tau * local / slab
        scale = slab * ratio / jnp.hypot(1.0, ratio)
        return numpyro.deterministic(name, scale[..., None] * raw)

    def site_dims(self, name, dims):
        return {
            name: list(dims),
            f"{name}_raw": list(dims),
            f"{name}_lambda": list(dims[:-1]),
            f"{name}_tau": [],
            f"{name}_slab": [],
        }

    def zero_values(self, name, shape):
        return {f"{name}_raw": np.zeros(shape, np.float32)}


class GLMPrior(NamedTuple):
    """Priors of the parameter groups: each a scalar NumPyro distribution (applied i.i.d.) or a
    :class:`GroupPrior`.

    Synaptic weights are drawn only for the connections present in the mask (group ``"w"`` has
    shape ``(n_synapses, K_syn)``, ordered as ``numpy.nonzero(spec.connectivity)``); the model
    scatters them into the ``(N, N, K_syn)`` array. ``v`` is ``(N, K_fb)``, ``c``
    ``(M, N, K_in)``, ``bias`` ``(N,)``.
    """

    w: dist.Distribution | GroupPrior
    v: dist.Distribution | GroupPrior
    c: dist.Distribution | GroupPrior
    bias: dist.Distribution | GroupPrior

    @classmethod
    def normal(cls, scale: float = 1.0, bias_loc: float = -4.0, bias_scale: float = 2.0):
        """Normal(0, scale²) on w, v, c and Normal(bias_loc, bias_scale²) on the bias. The MAP
        estimate is the L2-penalised ML fit with λ₂ = 1/scale² (plus the bias's penalty)."""
        weights = dist.Normal(0.0, _checks.positive_float(scale, "scale"))
        return cls(w=weights, v=weights, c=weights, bias=_bias(bias_loc, bias_scale))

    @classmethod
    def laplace(cls, scale: float = 1.0, bias_loc: float = -4.0, bias_scale: float = 2.0):
        """Laplace(0, scale) on w, v, c, density exp(−|x|/scale)/(2 scale) (the Bayesian lasso,
        Park & Casella 2008); Normal(bias_loc, bias_scale²) on the bias. The MAP estimate is the
        L1-penalised ML fit with λ₁ = 1/scale (Tibshirani 1996).

        Raises:
            ValueError, TypeError: a scale that is not a finite positive number.
        """
        weights = dist.Laplace(0.0, _checks.positive_float(scale, "scale"))
        return cls(w=weights, v=weights, c=weights, bias=_bias(bias_loc, bias_scale))

    @classmethod
    def horseshoe(
        cls,
        global_scale: float,
        slab_scale: float = 2.0,
        slab_df: float = 4.0,
        scale: float = 1.0,
        bias_loc: float = -4.0,
        bias_scale: float = 2.0,
    ):
        """Sparse connectivity: a regularised :class:`Horseshoe` on the synaptic weights w,
        Normal(0, scale²) on the feedback and stimulus weights, Normal(bias_loc, bias_scale²) on
        the bias.

        Raises:
            ValueError, TypeError: any scale or ``slab_df`` not a finite positive number.
        """
        others = dist.Normal(0.0, _checks.positive_float(scale, "scale"))
        return cls(
            w=Horseshoe(global_scale, slab_scale, slab_df),
            v=others,
            c=others,
            bias=_bias(bias_loc, bias_scale),
        )

    def groups(self) -> dict[str, GroupPrior]:
        """Each group's prior as a :class:`GroupPrior` (scalar distributions wrapped in
        :class:`IID`).

        Raises:
            TypeError: a group that is neither a NumPyro distribution nor a GroupPrior.
            ValueError: a distribution that is not scalar (batch or event shape not ()).
        """
        groups = {}
        for name, prior in zip(self._fields, self, strict=True):
            if isinstance(prior, GroupPrior):
                groups[name] = prior
            elif isinstance(prior, dist.Distribution):
                if prior.batch_shape or prior.event_shape:
                    raise ValueError(
                        f"prior.{name} must be a scalar distribution (applied i.i.d.), got "
                        f"batch_shape {prior.batch_shape} and event_shape {prior.event_shape}"
                    )
                groups[name] = IID(prior)
            else:
                raise TypeError(
                    f"prior.{name} must be a numpyro Distribution or a GroupPrior, "
                    f"got {type(prior).__name__}"
                )
        return groups


def prior_params(spec: Network, prior: GLMPrior, *, skip_empty: bool = False) -> Params:
    """Draw :class:`~probsnn.Params` from ``prior`` inside a NumPyro model.

    Sites are named after the groups (see :class:`GLMPrior`). With ``skip_empty``, groups with no
    element (no synapses, no inputs) get no site: they add nothing to the log density, but their
    zero-size sites break NumPyro's autoguides.
    """
    if not isinstance(prior, GLMPrior):
        raise TypeError(f"prior must be a probsnn.models.GLMPrior, got {type(prior).__name__}")
    groups = prior.groups()
    shapes = spec.param_shapes
    pre, post = np.nonzero(spec.connectivity)
    sizes = Params(w=(len(pre), shapes.w[2]), v=shapes.v, c=shapes.c, bias=shapes.bias)
    values = {}
    for name, shape in zip(Params._fields, sizes, strict=True):
        if skip_empty and math.prod(shape) == 0:
            values[name] = jnp.zeros(shape)
        else:
            values[name] = groups[name].sample(name, shape)
    free_w = values["w"]
    w = jnp.zeros(shapes.w, free_w.dtype).at[pre, post].set(free_w)
    return Params(w=w, v=values["v"], c=values["c"], bias=values["bias"])


def _bias(loc, scale) -> dist.Normal:
    loc = _checks.finite_float(loc, "bias_loc")
    return dist.Normal(loc, _checks.positive_float(scale, "bias_scale"))
