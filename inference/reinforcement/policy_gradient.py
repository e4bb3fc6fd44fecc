"""Policy gradients with exact spike log-probabilities (REINFORCE), and their local form.

For episodes τ of a policy π_θ with per-step log-probabilities log π_θ(step t) (every spike the
network sampled in the step's M bins, and the action; :class:`probsnn.rl.SpikingPolicy`), the
expected return J(θ) = E[Σ_t r_t] has the gradient (Williams 1992)

    ∇J = E[Σ_t ∇ log π_θ(step t) (G_t − b_t)],     G_t = Σ_{t'≥t} γ^{t'−t} r_{t'},

for any baseline b_t that does not depend on the episode's own actions from t on. The estimator
averages over B episodes and the loss it differentiates is

    L(θ) = −(1/B) Σ_b Σ_t alive_{b,t} A_{b,t} log π_θ(step t of episode b),   A = G − b,

so its gradient has ``jax.grad``'s sign (the gradient of −J). Baselines: ``"none"``;
``"batch"`` — the mean of G_t over the batch's episodes at the same step (it includes the
episode itself, so A is exactly (1 − 1/B) times the leave-one-out advantage and the estimate is
shrunk by that factor); ``"leave_one_out"`` —
the mean over the *other* episodes (unbiased; Kool, van Hoof & Welling 2019); ``"value"`` — a
linear value function V(o) = ψ·φ(o) of the observation's receptive-field features, fitted to G by
one regularised least-squares solve per batch on the previous batch's episodes.

For a GLM network the gradient of a step's spike log-probability is local: with the post-error
e_{i,b} = s_{i,b} − σ(u_{i,b}) and the presynaptic traces x of docs/theory.md §1,

    ∂L/∂w_{jik} = −(1/B) Σ_b Σ_t A_{b,t} Σ_{bins of t} e_i x_{jk},   likewise v, c, and γ (x = 1),

a pre-trace × post-error × reward product: the three-factor rule of R-max (Florian 2007;
Frémaux & Gerstner 2016). :func:`three_factor_gradient` computes it that way and equals
``jax.grad`` of :func:`policy_gradient_loss` (tests/rl).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from probsnn import _checks, glm
from probsnn.rl import episodes as rollouts
from probsnn.rl.environments import BaseEnvironment
from probsnn.rl.episodes import check_discount

from .._training import Trainer
from ._episodic import episodic_trainer

BASELINES = ("none", "batch", "leave_one_out", "value")


class PolicyGradientState(NamedTuple):
    """params: the policy's; opt_state: the optimizer's; value: the linear value function's
    weights ``(F,)`` (zeros unless ``baseline="value"``); episodes: episodes sampled so far."""

    params: Any
    opt_state: Any
    value: jax.Array
    episodes: jax.Array


class PolicyGradientInfo(NamedTuple):
    """Per step: loss (L above), mean_return and return_std over the batch's episodes,
    episode_length (mean), spikes_per_step (mean spikes per environment step), grad_norm."""

    loss: jax.Array
    mean_return: jax.Array
    return_std: jax.Array
    episode_length: jax.Array
    spikes_per_step: jax.Array
    grad_norm: jax.Array


def advantages(returns, alive, baseline: str = "leave_one_out", values=None):
    """A = G − b ``(B, H)`` for rewards-to-go ``returns`` and the ``alive`` mask ``(B, H)``.

    ``values`` ``(B, H)`` is the baseline for ``baseline="value"``. Leave-one-out needs B >= 2.

    Raises:
        ValueError: an unknown baseline, a value baseline without values, leave-one-out with
            one episode.
    """
    baseline = _checks.option(baseline, "baseline", BASELINES)
    n = returns.shape[0]
    alive_f = alive.astype(returns.dtype)
    if baseline == "none":
        b = jnp.zeros_like(returns)
    elif baseline == "batch":
        b = jnp.broadcast_to(returns.sum(0) / n, returns.shape)
    elif baseline == "leave_one_out":
        if n < 2:
            raise ValueError("baseline='leave_one_out' needs at least 2 episodes per batch")
        b = (returns.sum(0) - returns) / (n - 1)
    else:
        if values is None:
            raise ValueError("baseline='value' needs values (B, H)")
        b = values
    return (returns - b) * alive_f


def policy_gradient_loss(policy, params, trajectory, advantage):
    """L(θ) = −(1/B) Σ_{b,t} A_{b,t} log π_θ(step t of b) (advantages already masked)."""
    log_pi = policy.log_prob(params, trajectory)
    return -jnp.sum(jax.lax.stop_gradient(advantage) * log_pi) / advantage.shape[0]


def three_factor_gradient(policy, params, trajectory, advantage):
    """∇L of :func:`policy_gradient_loss` for a :class:`probsnn.rl.SpikingPolicy`, computed as
    pre-trace × post-error × advantage sums (module docstring), without automatic
    differentiation.

    Returns:
        :class:`probsnn.Params` shaped like ``params`` (zero outside the connectivity mask).
    """
    spec = policy.network
    record = trajectory.records
    batch, steps, bins = record.spikes.shape[:3]
    spikes = record.spikes.reshape(batch, steps * bins, spec.n_neurons)
    inputs = record.inputs.reshape(batch, steps * bins, spec.n_inputs)
    x = glm.traces(spec, spikes, inputs, "direct")
    u = glm.contract(spec, params, x)
    error = spikes.astype(u.dtype) - jax.nn.sigmoid(u)  # post-error (B, T, N)
    third = jnp.repeat(advantage, bins, axis=1)[..., None]  # (B, T, 1)
    modulated = -third * error / batch
    mask = jnp.asarray(spec.connectivity, u.dtype)[:, :, None]
    w = jnp.einsum("btjk,bti->jik", x.syn, modulated) * mask
    own = x.syn if x.fb is None else x.fb
    v = jnp.einsum("btik,bti->ik", own, modulated)  # a shared basis: own trace = synaptic one
    c = jnp.einsum("btmk,bti->mik", x.inputs, modulated)
    bias = modulated.sum((0, 1))
    return type(params)(w=w, v=v, c=c, bias=bias)


def value_features(policy, observations):
    """Features φ(o) of the value baseline: the observation mapped to [0, 1] through Gaussian
    receptive fields (8 per dimension) and a constant, ``(..., 8·D + 1)``."""
    low, high = jnp.asarray(policy.observation_low), jnp.asarray(policy.observation_high)
    x = jnp.clip((observations - low) / (high - low), 0.0, 1.0)
    centres = jnp.linspace(0.0, 1.0, 8)
    phi = jnp.exp(-0.5 * ((x[..., None] - centres) * 7.0) ** 2)
    phi = phi.reshape(*observations.shape[:-1], -1)
    return jnp.concatenate([phi, jnp.ones((*phi.shape[:-1], 1), phi.dtype)], -1)


def fit_value(features, returns, alive, ridge: float = 1e-3):
    """Least-squares ψ minimising Σ_alive (ψ·φ − G)² + ridge·|ψ|², ``(F,)``."""
    w = alive.astype(features.dtype)[..., None]
    phi = (features * w).reshape(-1, features.shape[-1])
    gram = phi.T @ phi + ridge * jnp.eye(phi.shape[-1], dtype=phi.dtype)
    return jnp.linalg.solve(gram, phi.T @ (returns * alive).reshape(-1))


def policy_gradient_trainer(
    policy,
    environment: BaseEnvironment,
    optimizer: optax.GradientTransformation | None = None,
    *,
    n_episodes: int = 16,
    gamma: float = 1.0,
    baseline: str = "leave_one_out",
    n_steps: int | None = None,
    local: bool = False,
) -> Trainer:
    """REINFORCE on batches of ``n_episodes`` episodes: a :class:`~probsnn.inference.Trainer`
    whose ``step(key, state, batch=None)`` samples the episodes with ``key`` and takes one
    optimizer step on L (module docstring).

    Args:
        policy: :class:`probsnn.rl.SpikingPolicy` or :class:`probsnn.rl.MLPPolicy`.
        environment: :func:`probsnn.rl.make`'s environment.
        optimizer: default ``optax.adam(1e-2)``.
        n_episodes: B per step (>= 2 for leave-one-out). gamma: discount γ in [0, 1].
        baseline: one of ``"none"``, ``"batch"``, ``"leave_one_out"``, ``"value"``.
        n_steps: horizon H (default the environment's limit).
        local: compute the gradient by :func:`three_factor_gradient` (spiking policies only);
            the same numbers as automatic differentiation.

    Raises:
        ValueError, TypeError: naming the argument.
    """
    rollouts.check_pair(policy, environment)
    optimizer = _checks.optimizer(optax.adam(1e-2) if optimizer is None else optimizer)
    n_episodes = _checks.positive_int(n_episodes, "n_episodes")
    gamma = check_discount(gamma)
    baseline = _checks.option(baseline, "baseline", BASELINES)
    if baseline == "leave_one_out" and n_episodes < 2:
        raise ValueError("baseline='leave_one_out' needs n_episodes >= 2")
    n_steps = environment.max_steps if n_steps is None else _checks.positive_int(n_steps, "n_steps")
    if local and not hasattr(policy, "network"):
        raise ValueError("local=True computes the three-factor form of a SpikingPolicy's gradient")
    n_features = policy.n_observations * 8 + 1

    def init(params):
        params = policy.check_params(params)
        return PolicyGradientState(
            params, optimizer.init(params), jnp.zeros(n_features), jnp.zeros((), jnp.int32)
        )

    @partial(jax.jit)
    def step(key, state, batch=None):
        del batch
        trajectory = rollouts._rollout(policy, state.params, environment, key, n_episodes, n_steps)
        returns = rollouts.rewards_to_go(trajectory.rewards, trajectory.alive, gamma)
        features = value_features(policy, trajectory.observations)
        values = features @ state.value
        advantage = advantages(returns, trajectory.alive, baseline, values)
        loss_fn = partial(policy_gradient_loss, policy, trajectory=trajectory, advantage=advantage)
        if local:
            loss = loss_fn(state.params)
            grads = three_factor_gradient(policy, state.params, trajectory, advantage)
        else:
            loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        value = state.value
        if baseline == "value":
            value = fit_value(features, returns, trajectory.alive)
        episode_return = rollouts.episode_returns(trajectory)
        alive = trajectory.alive
        info = PolicyGradientInfo(
            loss=loss,
            mean_return=episode_return.mean(),
            return_std=episode_return.std(),
            episode_length=alive.sum(-1).mean(),
            spikes_per_step=rollouts.spikes_per_step(policy, trajectory),
            grad_norm=jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))),
        )
        new_state = PolicyGradientState(
            optax.apply_updates(state.params, updates),
            opt_state,
            value,
            state.episodes + n_episodes,
        )
        return new_state, info

    return episodic_trainer(init, step, "policy_gradient_trainer")
