"""Reward-modulated STDP with an eligibility trace (MSTDPET) on a spiking policy's synapses.

Florian (2007, Neural Comput. 19:1468) derives MSTDPET from the policy gradient of a stochastic
spiking network: every synapse keeps an eligibility trace of its pair-STDP increments ξ
(docs/theory.md §8) and a global reward signal r gates it,

    e_t = e_{t−1} e^{−Δ/τ_e} + ξ_t,        Δθ = η (1/B) Σ_b Σ_t r_{b,t} e_{b,t},

per bin t of width Δ over the B episodes of a batch — :func:`probsnn.inference.reward_stdp`
run on the episode's spike trains, its per-bin deltas summed (the same increments, the same
decay factors). It acts on the two kinds of synapses of a :class:`probsnn.rl.SpikingPolicy`:

* **input channels → neurons** (``params.c``): presynaptic "spikes" are the input channels of
  each bin — 0/1 spikes for ``encoding="population"``, the channel probabilities p_r for
  ``encoding="rates"`` (the expected input spike, so the presynaptic trace is its expectation);
  postsynaptic spikes are those of every neuron.
* **neuron → neuron** (``params.w``, within the connectivity mask: hidden → output, and
  hidden → hidden when ``recurrent``): the network's own spikes on both sides.

Both need the one-lag bases (the policy's default), where a weight is one number per synapse.
Biases and self-history weights do not learn.

**The window.** By default the window is *balanced*: fast potentiation (τ₊ = 1 ms, one bin,
the delay of the policy's one-lag synapses) and slow, weak depression (τ₋ = 20 ms) with
A₋ = A₊ [d₊/(1 − d₊)] / [d₋/(1 − d₋)], d = e^{−Δ/τ}. For independent trains of rates ρ_pre,
ρ_post per bin the expected potentiation per bin, A₊ ρ_pre ρ_post d₊/(1 − d₊), then equals the
depression, A₋ ρ_pre ρ_post d₋/(1 − d₋): uncorrelated trains drift by zero on average, and
ξ ≈ A₊ [d₊/(1 − d₊)] x_pre (s_post − ρ̂_post), ρ̂_post the postsynaptic rate over the last τ₋ —
the score (s − σ(u)) x of the policy gradient with a running rate in place of σ(u). Florian's
symmetric window (A₊ = A₋, τ₊ = τ₋ = 20 ms, τ_e = 25 ms) smears the causal one-bin pairing over
20 bins: on a batch of 256 CartPole episodes at initialisation (``"to_go"`` signal) the cosine
between the rule's Δθ and the REINFORCE gradient of the same episodes is 0.18 (w) and 0.05 (c)
with it, 0.83–0.86 (w) and 0.31–0.33 (c) with the balanced window.

**The reward signal.** CartPole pays +1 on every step, so the raw reward carries no
information (gating the eligibility by it only grows every active synapse). r is instead a
reward prediction error (Frémaux & Gerstner 2016), chosen by ``signal``:

* ``"return"`` (default): the episode's return G_{b,0} minus the mean return of the other
  episodes of the batch, delivered once, in the episode's last bin, to the eligibility
  accumulated there: with τ_e = 1 s (250 steps of 4 bins) the pairings of the episode's last
  ~250 steps are credited, the most recent the most — the ones that let the pole fall, or
  (in a long episode) kept it up. Episodic, one scalar per episode, as a reward delivered at
  the end of a trial; chosen because it is the one of the two that learned at all on CartPole
  (below).
* ``"to_go"``: in every bin of step t, the reward-to-go G_{b,t} = Σ_{t'≥t} γ^{t'−t} r_{t'}
  minus the mean G of the other episodes still running at step t (zero after the episode's
  end and for a lone survivor): REINFORCE's advantage, so with a short τ_e the rule is R-max's
  three-factor rule with the STDP increment in place of the score. Over the episodes that
  ended the baseline excludes them: STDP increments, unlike the score, do not average to zero,
  and an advantage that is positive on average late in the episode (survivors against zeros)
  would turn that drift into runaway potentiation.

Either signal is divided by its root mean square over the bins that carry it, so that η sets
the step size whether returns are 20 or 500. The baseline makes E[r] = 0 so the increments'
drift cancels in expectation: E[r ξ] = Cov(r, ξ).

**How well it does.** On CartPole-v1 (``SpikingPolicy.for_environment``, the defaults here)
MSTDPET does not solve the task: after 2,000 episodes the 100-episode evaluation mean moves
from 21–24 to 27–28 (three seeds; ~15 s each on two CPU cores), and trained on to 10,000
episodes it falls back to 13 as the firing runs away (8.6 → 23 spikes per step). The
``"to_go"`` signal gave no gain for η <= 2e-3 and that runaway collapse within 2,000 episodes
for η >= 5e-3. Δθ is a biased estimate of the gradient, added without an optimizer; the same
network reaches 475 with REINFORCE and Adam in ~620 episodes (:func:`policy_gradient_trainer`)
and with evolution strategies in 960–2,240 (:func:`evolution_strategies_trainer`).

This is a plasticity rule: the trainer adds η × the deltas to the parameters (no optimizer, no
loss gradient). Its ``loss`` is −(mean return) of the step's episodes, reported for
:func:`probsnn.inference.fit`; the rule does not follow its gradient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.network import Params
from probsnn.rl import episodes as rollouts
from probsnn.rl.environments import BaseEnvironment
from probsnn.rl.episodes import check_discount

from .._training import Trainer
from ..plasticity import stdp
from ._episodic import episodic_trainer

SIGNALS = ("to_go", "return")


class MSTDPETState(NamedTuple):
    """params: the policy's; episodes: episodes sampled so far."""

    params: Any
    episodes: jax.Array


class MSTDPETInfo(NamedTuple):
    """Per step: loss (−mean return), mean_return, episode_length (mean), spikes_per_step (mean
    spikes per alive environment step), delta_norm (|Δθ| of the step, after η)."""

    loss: jax.Array
    mean_return: jax.Array
    episode_length: jax.Array
    spikes_per_step: jax.Array
    delta_norm: jax.Array


def modulation(trajectory, gamma: float, signal: str, micro_steps: int):
    """The reward signal r of every bin ``(B, H·M)`` (module docstring): the advantage of
    ``signal`` over the other episodes still running at the same step (``"to_go"``, in every
    bin of the step) or over the other episodes (``"return"``, in the episode's last bin),
    divided by its root mean square over the bins that carry it (B >= 2)."""
    alive = trajectory.alive
    to_go = rollouts.rewards_to_go(trajectory.rewards, alive, gamma)
    if signal == "return":
        carried = alive & (
            jnp.arange(alive.shape[1]) == rollouts.episode_lengths(trajectory)[:, None] - 1
        )
        everyone = jnp.ones((alive.shape[0], 1), bool)
        advantage = _leave_one_out(to_go[:, :1], everyone) * carried
    else:
        carried = alive
        advantage = _leave_one_out(to_go, alive)
    scale = jnp.sqrt(jnp.sum(advantage**2) / jnp.maximum(carried.sum(), 1))
    r = advantage / jnp.maximum(scale, 1e-12)
    bins = jnp.repeat(r, micro_steps, axis=1)
    if signal == "return":  # only the last bin of the last step
        bins = bins * (jnp.arange(bins.shape[1]) % micro_steps == micro_steps - 1)
    return bins


def _leave_one_out(values, carried):
    """values − the mean of the other episodes' values at the same step, among the episodes
    that carry a signal there (``carried``); zero where the episode carries none or is alone."""
    weight = carried.astype(values.dtype)
    total = jnp.sum(values * weight, 0)
    others = jnp.sum(weight, 0) - weight
    baseline = (total - values * weight) / jnp.maximum(others, 1)
    return jnp.where(carried & (others > 0), values - baseline, 0.0)


def mstdpet_deltas(policy, rule, trajectory, reward):
    """Σ_t r_t e_t of ``rule`` (:func:`probsnn.inference.reward_stdp`) for every synapse,
    averaged over the episodes: :class:`probsnn.Params` with deltas in ``c`` (inputs → neurons)
    and ``w`` (within the connectivity mask), zeros in ``v`` and ``bias``.

    Args:
        policy: a :class:`probsnn.rl.SpikingPolicy` with one-lag bases.
        rule: the reward-STDP rule (unbounded: no ``w_max``).
        trajectory: B episodes (:class:`probsnn.rl.Trajectory` of the policy).
        reward: ``(B, H·M)`` per-bin reward signal (:func:`modulation`).

    Returns:
        :class:`probsnn.Params`: ``c`` ``(C, N, 1)``, ``w`` ``(N, N, 1)``, ``v`` and ``bias``
        zero. Unchecked (the trainer validates its arguments).
    """
    spec = policy.network
    record = trajectory.records
    batch, steps, bins = record.spikes.shape[:3]
    spikes = record.spikes.reshape(batch, steps * bins, spec.n_neurons).astype(jnp.float32)
    inputs = record.inputs.reshape(batch, steps * bins, spec.n_inputs).astype(jnp.float32)

    def episode(spikes, inputs, reward):
        # the rule without w_max ignores the weights: run it from zero and read Σ_t Δw_t
        c = stdp._run(
            rule, jnp.zeros((spec.n_inputs, spec.n_neurons)), inputs, spikes, reward, False
        )
        w = stdp._run(rule, jnp.zeros((spec.n_neurons,) * 2), spikes, spikes, reward, False)
        return c.w, w.w

    c, w = jax.vmap(episode)(spikes, inputs, reward)
    mask = jnp.asarray(spec.connectivity, jnp.float32)
    return Params(
        w=(w.mean(0) * mask)[:, :, None],
        v=jnp.zeros(spec.param_shapes.v, jnp.float32),
        c=c.mean(0)[:, :, None],
        bias=jnp.zeros(spec.n_neurons, jnp.float32),
    )


def balanced_a_minus(a_plus: float, tau_plus_ms: float, tau_minus_ms: float, dt_ms: float):
    """A₋ = A₊ [d₊/(1 − d₊)] / [d₋/(1 − d₋)], d = e^{−Δ/τ}: the depression that balances the
    potentiation of uncorrelated trains (module docstring).

    Raises:
        ValueError/TypeError: as :func:`probsnn.inference.pair_stdp` for a negative ``a_plus``
            or non-positive time constants.
    """
    a_plus = stdp._check_amplitude(a_plus, "a_plus")
    d_plus = stdp.decay_factor(tau_plus_ms, dt_ms, "tau_plus_ms")
    d_minus = stdp.decay_factor(tau_minus_ms, dt_ms, "tau_minus_ms")
    return a_plus * (d_plus / (1 - d_plus)) / (d_minus / (1 - d_minus))


def mstdpet_trainer(
    policy,
    environment: BaseEnvironment,
    *,
    n_episodes: int = 16,
    a_plus: float = 1.0,
    a_minus: float | None = None,
    tau_plus_ms: float = 1.0,
    tau_minus_ms: float = 20.0,
    tau_eligibility_ms: float = 1000.0,
    learning_rate: float = 2e-2,
    gamma: float = 1.0,
    signal: str = "return",
    n_steps: int | None = None,
) -> Trainer:
    """MSTDPET (module docstring) as a :class:`~probsnn.inference.Trainer` whose
    ``step(key, state, batch=None)`` samples ``n_episodes`` episodes with the current
    parameters and adds η × :func:`mstdpet_deltas` to them.

    Args:
        policy: a :class:`probsnn.rl.SpikingPolicy` with the default one-lag bases.
        environment: a probsnn environment (:func:`probsnn.rl.make`).
        n_episodes: B >= 2 episodes per step (the baseline leaves one out).
        a_plus, a_minus, tau_plus_ms, tau_minus_ms: the pair-STDP window (A₊, A₋ >= 0; τ in ms;
            the bin width is the network's ``dt``); ``a_minus=None`` balances the window
            (module docstring).
        tau_eligibility_ms: τ_e of the eligibility trace (ms).
        learning_rate: η > 0 (the step is η × the deltas of a signal of unit RMS).
        gamma: the discount γ in [0, 1] of the reward-to-go.
        signal: ``"to_go"`` or ``"return"`` (module docstring).
        n_steps: horizon H (default the environment's limit).

    Returns:
        A Trainer; State :class:`MSTDPETState`, Info :class:`MSTDPETInfo`.

    Raises:
        TypeError: a policy that is not a spiking policy, an environment that is not a probsnn
            environment, non-numeric arguments.
        ValueError: a policy whose bases are not one lag, n_episodes < 2, negative amplitudes,
            non-positive time constants or η, γ outside [0, 1], an unknown ``signal``; ``step``
            with a batch.
    """
    _check_policy(policy)
    rollouts.check_pair(policy, environment)
    n_episodes = _checks.positive_int(n_episodes, "n_episodes", minimum=2)
    learning_rate = _checks.positive_float(learning_rate, "learning_rate")
    gamma = check_discount(gamma)
    signal = _checks.option(signal, "signal", SIGNALS)
    n_steps = environment.max_steps if n_steps is None else _checks.positive_int(n_steps, "n_steps")
    dt_ms = 1e3 * policy.network.dt
    if a_minus is None:
        a_minus = balanced_a_minus(a_plus, tau_plus_ms, tau_minus_ms, dt_ms)
    rule = stdp.reward_stdp(
        a_plus, a_minus, tau_plus_ms, tau_minus_ms, tau_eligibility_ms, dt_ms=dt_ms
    )

    def init(params):
        return MSTDPETState(policy.check_params(params), jnp.zeros((), jnp.int32))

    @jax.jit
    def step(key, state):
        trajectory = rollouts._rollout(policy, state.params, environment, key, n_episodes, n_steps)
        reward = modulation(trajectory, gamma, signal, policy.micro_steps)
        deltas = jax.tree.map(
            lambda d: learning_rate * d, mstdpet_deltas(policy, rule, trajectory, reward)
        )
        episode_return = rollouts.episode_returns(trajectory)
        alive = trajectory.alive
        info = MSTDPETInfo(
            loss=-episode_return.mean(),
            mean_return=episode_return.mean(),
            episode_length=alive.sum(-1).mean(),
            spikes_per_step=rollouts.spikes_per_step(policy, trajectory),
            delta_norm=jnp.sqrt(sum(jnp.sum(d**2) for d in jax.tree.leaves(deltas))),
        )
        params = jax.tree.map(jnp.add, state.params, deltas)
        return MSTDPETState(params, state.episodes + n_episodes), info

    return episodic_trainer(init, step, "mstdpet_trainer")


def _check_policy(policy) -> None:
    network = getattr(policy, "network", None)
    if network is None or not hasattr(policy, "micro_steps"):
        raise TypeError(
            "policy must be a probsnn.rl.SpikingPolicy (MSTDPET acts on its synapses), got "
            f"{type(policy).__name__}"
        )
    for name, basis in (("synapse", network.synapse_basis), ("input", network.input_basis)):
        if not np.array_equal(np.asarray(basis), np.ones((1, 1))):
            raise ValueError(
                f"MSTDPET needs the one-lag {name} basis (one weight per synapse, the "
                f"SpikingPolicy default), got a basis of shape {np.shape(basis)}"
            )
