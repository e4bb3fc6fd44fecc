"""A sum-of-products learning-rule engine (the form of Loihi's rules; Davies et al. 2018, IEEE
Micro 38(1):82).

A rule is written as

    Δw = Σ_i S_i Π_j (V_ij + C_ij),

a sum of terms, each a scale S_i times a product of factors (V + C), where V names a variable and C
is a constant. An optional synaptic *tag* (an eligibility trace, Loihi's "dt" equation) follows
the same form, tag_t = tag_{t−1} e^{−Δ/τ_tag} + Σ_i S_i Π_j (V_ij + C_ij), and evaluates before Δw,
so Δw may read the updated ``"tag"``. The rule is traced once into an XLA computation.

Variables (bin t):

- ``"pre"``, ``"post"``: the bin's pre/postsynaptic spikes (Loihi's x0, y0);
- traces declared with :class:`TraceSpec` under any name: decay e^{−Δ/τ} and an impulse per spike of
  their side (+1, or a reset to 1 for nearest-spike pairing), read *before* the bin's own spikes
  are added, as in :mod:`.stdp`;
- ``"w"``: the current weight; ``"tag"``: the tag; ``"reward"``: ``signals["reward"]`` (a scalar or
  one value per postsynaptic neuron);
- any other name: an array given in the signals mapping under that name, broadcastable to w.

Pre-side variables are shaped ``(N_pre, 1, …)`` and post-side ones ``(1, N_post, …)`` to broadcast
against w ``(N_pre, N_post, …)``. The built-in rules of :mod:`.stdp` and the maximum-likelihood
rule of the GLM (docs/theory.md §2) are given here as engine rules (:func:`pair_stdp`,
:func:`triplet_stdp`, :func:`reward_stdp`, :func:`ml_sum_of_products`).

Every engine rule is a **plasticity rule** (docs/learning.md): ``update`` returns terminal weight
deltas Δw (the terms' scales are the learning rates; bounded to [0, w_max] when ``w_max`` is
given), applied with ``optax.apply_updates`` and nothing else. Time constants are in ms, with the
bin width ``dt_ms``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probsnn import _checks
from probsnn.glm import contract
from probsnn.inference.plasticity import stdp as _stdp

RESERVED = ("pre", "post", "w", "tag", "reward")


class Factor(NamedTuple):
    """One factor (V + C): the variable's name and a constant C."""

    name: str
    const: float = 0.0


class Term(NamedTuple):
    """One term S Π_j (V_j + C_j): a scale and a tuple of :class:`Factor` (or (name, C) pairs or
    bare names)."""

    scale: float
    factors: tuple


class TraceSpec(NamedTuple):
    """A trace variable: its side (``"pre"`` or ``"post"``), decay time constant in ms, and impulse
    per spike (``"add"``: +1, all-to-all; ``"reset"``: set to 1, nearest-spike)."""

    side: str
    tau_ms: float
    impulse: str = "add"


class EngineState(NamedTuple):
    """The engine's traces (a dict name → ``(N_side,)``) and tag (shaped like w, or None)."""

    traces: dict
    tag: jax.Array | None


def _normalize_terms(terms, what):
    if isinstance(terms, Term):
        terms = (terms,)
    out = []
    for term in terms:
        if not isinstance(term, Term):
            raise TypeError(f"{what} must be a sequence of Term, got {term!r}")
        scale = float(term.scale)
        if not np.isfinite(scale):
            raise ValueError(f"{what}: term scales must be finite, got {term.scale}")
        factors = []
        for f in term.factors:
            f = Factor(f) if isinstance(f, str) else Factor(*f)
            if not isinstance(f.name, str):
                raise TypeError(f"{what}: factor names must be strings, got {f.name!r}")
            if not np.isfinite(float(f.const)):
                raise ValueError(f"{what}: factor constants must be finite, got {f.const}")
            factors.append(Factor(f.name, float(f.const)))
        out.append(Term(scale, tuple(factors)))
    return tuple(out)


def sum_of_products(
    dw: Sequence[Term],
    *,
    traces: Mapping[str, TraceSpec] | None = None,
    dt_ms: float = 1.0,
    tag: Sequence[Term] = (),
    tag_tau_ms: float | None = None,
    w_max: float | None = None,
) -> optax.GradientTransformation:
    """Compile a sum-of-products rule (module equation) into an ``(init, update)`` rule.

    Args:
        dw: the terms of Δw.
        traces: trace variables by name (names must not be reserved: pre, post, w, tag, reward).
        dt_ms: the bin width in ms.
        tag: the terms of the tag increment; empty for no tag.
        tag_tau_ms: decay time constant of the tag in ms (required with ``tag``).
        w_max: when given, weights are kept in [0, w_max].

    Returns:
        ``optax.GradientTransformation``: ``init(w) -> EngineState``;
        ``update(signals, state, w) -> (Δw, state)`` where ``signals`` is a mapping (or an
        :class:`~probsnn.inference.plasticity.stdp.STDPSignals`) holding ``"pre"``, ``"post"`` and
        any other variables the terms read, and Δw is a terminal weight delta (apply it as is,
        docs/learning.md).

    Raises:
        ValueError/TypeError: for malformed terms, a reserved trace name, a bad trace side or
            impulse, non-positive time constants, dt_ms or w_max, a tag without ``tag_tau_ms``, or
            a term reading ``"tag"`` when no tag is defined. ``update`` raises ValueError naming a
            variable missing from the signals, or for spikes that are not 1-D and binary.
    """
    dw = _normalize_terms(dw, "dw")
    tag = _normalize_terms(tag, "tag")
    traces = dict(traces or {})
    decays = {}
    for name, spec in traces.items():
        if name in RESERVED:
            raise ValueError(f"trace name {name!r} is reserved ({RESERVED})")
        if not isinstance(name, str):
            raise TypeError(f"trace names must be strings, got {name!r}")
        if not isinstance(spec, tuple | list) or not 2 <= len(spec) <= 3:
            raise TypeError(
                f"traces[{name!r}] must be a TraceSpec(side, tau_ms, impulse), got {spec!r}"
            )
        spec = TraceSpec(*spec)
        _checks.option(spec.side, f"traces[{name!r}].side", ("pre", "post"))
        _checks.option(spec.impulse, f"traces[{name!r}].impulse", ("add", "reset"))
        decays[name] = _stdp.decay_factor(spec.tau_ms, dt_ms, f"traces[{name!r}].tau_ms")
        traces[name] = spec
    tag_decay = None
    if tag:
        if tag_tau_ms is None:
            raise ValueError("tag_tau_ms is required when tag terms are given")
        tag_decay = _stdp.decay_factor(tag_tau_ms, dt_ms, "tag_tau_ms")
    if not tag and any(f.name == "tag" for t in dw for f in t.factors):
        raise ValueError("a dw term reads 'tag' but no tag terms are given")
    w_max = None if w_max is None else _checks.positive_float(w_max, "w_max")

    def init(w):
        w = _checks.real_array(w, "params (the weights w)", min_ndim=2)
        w = jnp.asarray(w)
        size = {"pre": w.shape[0], "post": w.shape[1]}
        state_traces = {n: jnp.zeros(size[s.side], w.dtype) for n, s in traces.items()}
        return EngineState(state_traces, jnp.zeros_like(w) if tag else None)

    def update(signals, state, w=None):
        if w is None:
            raise ValueError("sum_of_products.update needs params (the current weights w)")
        if isinstance(signals, _stdp.STDPSignals):
            signals = {k: v for k, v in signals._asdict().items() if v is not None}
        if not isinstance(signals, Mapping):
            raise TypeError(
                "signals must be a mapping of variable names to arrays (or STDPSignals), got "
                f"{type(signals).__name__}"
            )
        w = _checks.real_array(w, "params (the weights w)", min_ndim=2)
        extra = (1,) * (w.ndim - 2)

        def side(values, which):
            values = jnp.asarray(values, w.dtype)
            return values.reshape((-1, 1, *extra) if which == "pre" else (1, -1, *extra))

        pre, post = _signal(signals, "pre"), _signal(signals, "post")
        for name, spikes, n in (("pre", pre, w.shape[0]), ("post", post, w.shape[1])):
            if np.ndim(spikes) != 1 or np.shape(spikes)[0] != n:
                raise ValueError(
                    f"signals[{name!r}] must be 1-D spikes of shape ({n},) to match w "
                    f"{tuple(w.shape)}, got {np.shape(spikes)}"
                )
            _checks.spike_array(jnp.asarray(spikes)[None], f"signals[{name!r}]")
        pre, post = jnp.asarray(pre, w.dtype), jnp.asarray(post, w.dtype)
        decayed = {n: state.traces[n] * decays[n] for n in traces}
        env = {"pre": side(pre, "pre"), "post": side(post, "post"), "w": w}
        env.update({n: side(v, traces[n].side) for n, v in decayed.items()})

        def lookup(name):
            if name not in env:
                value = _checks.real_array(_signal(signals, name), f"signals[{name!r}]", min_ndim=0)
                value = jnp.asarray(value, w.dtype)
                if name == "reward" and value.ndim == 1:
                    if value.shape[0] != w.shape[1]:
                        raise ValueError(
                            f"signals['reward'] must be a scalar or ({w.shape[1]},), one per "
                            f"postsynaptic neuron, got shape {value.shape}"
                        )
                    value = side(value, "post")
                try:
                    fits = np.broadcast_shapes(value.shape, w.shape) == tuple(w.shape)
                except ValueError:
                    fits = False
                if not fits:
                    raise ValueError(
                        f"signals[{name!r}] of shape {value.shape} must broadcast to the weights' "
                        f"shape {tuple(w.shape)}"
                    )
                env[name] = value
            return env[name]

        def evaluate(terms):
            total = jnp.zeros_like(w)
            for term in terms:
                product = jnp.asarray(term.scale, w.dtype)
                for f in term.factors:
                    product = product * (lookup(f.name) + f.const)
                total = total + product
            return total

        new_tag = None
        if tag:
            new_tag = state.tag * tag_decay + evaluate(tag)
            env["tag"] = new_tag
        delta = evaluate(dw)
        if w_max is not None:
            delta = jnp.clip(w + delta, 0.0, w_max) - w
        new_traces = {}
        for n, v in decayed.items():
            spikes = pre if traces[n].side == "pre" else post
            new_traces[n] = (
                v + spikes if traces[n].impulse == "add" else jnp.where(spikes > 0, 1.0, v)
            )
        return delta, EngineState(new_traces, new_tag)

    return optax.GradientTransformation(init, update)


def _signal(signals, name):
    if name not in signals:
        raise ValueError(f"the rule reads the variable {name!r}, missing from the signals")
    return signals[name]


def _pair_terms(a_plus, a_minus, weight_dependence, w_max):
    if weight_dependence == "multiplicative":
        # A₊ x (w_max − w) y0 − A₋ x0 y w  =  −A₊ x y0 (w − w_max) − A₋ x0 y w
        return (
            Term(-a_plus, ("x1", "post", ("w", -w_max))),
            Term(-a_minus, ("pre", "y1", "w")),
        )
    return (Term(a_plus, ("x1", "post")), Term(-a_minus, ("pre", "y1")))


def _settings(hand_written, args: tuple, settings: dict) -> dict:
    """Validate the arguments with the hand-written rule (its messages, its defaults) and return
    every argument of it by name, defaults filled in: the engine versions take exactly its
    arguments."""
    hand_written(*args, **settings)
    bound = inspect.signature(hand_written).bind(*args, **settings)
    bound.apply_defaults()
    return bound.arguments


def pair_stdp(*args, **settings) -> optax.GradientTransformation:
    """:func:`probsnn.inference.plasticity.stdp.pair_stdp` written in the engine, with the same
    arguments: Δw = A₊ x₁ y₀ − A₋ x₀ y₁ (additive) or −A₊ x₁ y₀ (w − w_max) − A₋ x₀ y₁ w
    (multiplicative), a terminal weight delta."""
    a = _settings(_stdp.pair_stdp, args, settings)
    impulse = "add" if a["pairing"] == "all" else "reset"
    return sum_of_products(
        _pair_terms(a["a_plus"], a["a_minus"], a["weight_dependence"], a["w_max"]),
        traces={
            "x1": TraceSpec("pre", a["tau_plus_ms"], impulse),
            "y1": TraceSpec("post", a["tau_minus_ms"], impulse),
        },
        dt_ms=a["dt_ms"],
        w_max=a["w_max"],
    )


def triplet_stdp(*args, **settings) -> optax.GradientTransformation:
    """:func:`probsnn.inference.plasticity.stdp.triplet_stdp` in the engine, with the same
    arguments: Δw = A₂⁺ x₁ y₀ + A₃⁺ x₁ y₀ y₂ − A₂⁻ x₀ y₁ − A₃⁻ x₀ y₁ x₂."""
    a = _settings(_stdp.triplet_stdp, args, settings)
    return sum_of_products(
        (
            Term(a["a2_plus"], ("x1", "post")),
            Term(a["a3_plus"], ("x1", "post", "y2")),
            Term(-a["a2_minus"], ("pre", "y1")),
            Term(-a["a3_minus"], ("pre", "y1", "x2")),
        ),
        traces={
            "x1": TraceSpec("pre", a["tau_plus_ms"]),
            "x2": TraceSpec("pre", a["tau_x_ms"]),
            "y1": TraceSpec("post", a["tau_minus_ms"]),
            "y2": TraceSpec("post", a["tau_y_ms"]),
        },
        dt_ms=a["dt_ms"],
        w_max=a["w_max"],
    )


def reward_stdp(*args, **settings) -> optax.GradientTransformation:
    """:func:`probsnn.inference.plasticity.stdp.reward_stdp` in the engine, with the same
    arguments: tag increment A₊ x₁ y₀ − A₋ x₀ y₁ with decay τ_e, Δw = reward · tag (a terminal
    weight delta)."""
    a = _settings(_stdp.reward_stdp, args, settings)
    impulse = "add" if a["pairing"] == "all" else "reset"
    return sum_of_products(
        (Term(1.0, ("reward", "tag")),),
        traces={
            "x1": TraceSpec("pre", a["tau_plus_ms"], impulse),
            "y1": TraceSpec("post", a["tau_minus_ms"], impulse),
        },
        dt_ms=a["dt_ms"],
        tag=_pair_terms(a["a_plus"], a["a_minus"], "additive", None),
        tag_tau_ms=a["tau_eligibility_ms"],
        w_max=a["w_max"],
    )


def ml_sum_of_products(learning_rate: float = 1.0) -> optax.GradientTransformation:
    """The GLM maximum-likelihood rule for the synaptic weights (docs/theory.md §2) written in
    the engine, as a plasticity rule:

        Δw_{j,i,k} = η m_{j,i} x^{syn}_{j,k} s_i − η m_{j,i} x^{syn}_{j,k} σ(u_i),

    two terms over the variables ``"syn"`` (the presynaptic basis traces, ``(N_pre, 1, K)``),
    ``"post"`` (s_t), ``"rate"`` (σ(u_t), ``(1, N_post, 1)``) and ``"mask"`` (the connectivity,
    ``(N_pre, N_post, 1)``); :func:`ml_sum_of_products_signals` builds them from a network bin.

    Δw = η ∂ log p(s_t | u_t)/∂w: one step of gradient *ascent* on the bin's log-likelihood with
    learning rate η (Jang, Simeone, Gardner & Grüning 2019), returned as a **terminal weight
    delta** (docs/learning.md) — apply it with ``optax.apply_updates``, chain no optimizer after
    it. The gradient estimator of the same criterion, which returns the gradient of the negative
    log-likelihood for an optax optimizer, is
    :func:`probsnn.inference.likelihood.online.ml_rule`: with η = 1 its estimate is −Δw.

    Args:
        learning_rate: η, a finite number (the scale of both terms).

    Returns:
        ``optax.GradientTransformation``: ``init(w) -> EngineState``,
        ``update(signals, state, w) -> (Δw (N_pre, N_post, K_syn), state)``.

    Raises:
        ValueError/TypeError: a learning rate that is not a finite number.
    """
    eta = _checks.finite_float(learning_rate, "learning_rate")
    return sum_of_products(
        (Term(eta, ("mask", "syn", "post")), Term(-eta, ("mask", "syn", "rate"))),
    )


def ml_sum_of_products_signals(spec, params, traces, spikes) -> dict:
    """Engine signals of :func:`ml_sum_of_products` for one bin of a :class:`~probsnn.Network`.

    Args:
        spec, params: the network and its :class:`~probsnn.Params`.
        traces: the bin's :class:`~probsnn.Traces` (syn ``(N, K_syn)`` etc., no batch dims).
        spikes: ``(N,)`` the bin's spikes.

    Returns:
        dict with ``"pre"``, ``"post"``, ``"syn"``, ``"rate"`` and ``"mask"``.
    """
    u = contract(spec, params, traces)
    return {
        "pre": spikes,
        "post": spikes,
        "syn": traces.syn[:, None, :],
        "rate": jax.nn.sigmoid(u)[None, :, None],
        "mask": jnp.asarray(spec.connectivity, u.dtype)[:, :, None],
    }
