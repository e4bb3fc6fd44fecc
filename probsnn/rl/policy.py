"""Spiking policies: GLM networks that read observations and emit actions.

A :class:`SpikingPolicy` is a :class:`probsnn.Network` with exogenous inputs, run for M bins
(micro-steps) per environment step (docs/theory.md §11):

* **encoding** — each observation dimension, mapped to [0, 1] by the environment's ranges, drives R
  input channels with Gaussian receptive fields, p_r(x) = p_max exp(−(x − μ_r)² / (2 w²)),
  μ_r = r/(R − 1), w = 1/(R − 1) (Pouget, Dayan & Zemel 2000). ``encoding="population"`` draws
  input spikes ~ Bernoulli(p_r) in every bin; ``encoding="rates"`` presents p_r itself (the rate
  code, noiseless).
* **network** — H hidden neurons followed by the output neurons, numbered in that order; the
  inputs reach every neuron, hidden neurons project to the outputs (and to each other when
  ``recurrent``). Every neuron spikes in bin t with probability σ(u_t) (docs/theory.md §1–2); the
  past carries over from one environment step to the next within an episode. With the default
  one-lag bases, bin b's inputs drive bin b + 1 and a hidden spike reaches the outputs one bin
  later, so the outputs see the current observation from the step's second bin on without hidden
  neurons and from its third bin on through them (earlier bins still read the previous step's
  observation): use M >= 3 with hidden neurons.
* **decoding** — ``"count"``: G output neurons per action; the action is drawn from
  softmax(β n_a), n_a the spike count of group a over the step's M bins; ``"first"``: the group
  that spikes first wins, ties and silence broken uniformly at random (first-to-spike);
  ``"population"`` (continuous actions): output neuron o prefers the action
  a_o = low + (high − low) o/(O − 1) and the action is the count-weighted mean of the a_o (the
  middle of the range when the outputs are silent).

Everything the policy samples has an exact log-probability given the observations:

    log π(step t) = Σ_{b<M} Σ_i log σ((2 s_{i,b} − 1) u_{i,b}) + log p(a_t | spikes of step t),

where the second term does not depend on the parameters (it is −log of the tie count for
first-to-spike, log softmax(β n)_a for counts, 0 for population decoding). :meth:`spike_log_prob`
is the first term, equal to :func:`probsnn.log_likelihood` of the episode's spikes and inputs.

Policies follow one protocol, shared with :class:`probsnn.rl.MLPPolicy`: ``init_params(key)``,
``initial_carry()``, ``act(params, carry, observation, key) -> (carry, action, record)`` and
``log_prob(params, trajectory) -> (B, H)`` on a :class:`probsnn.rl.Trajectory`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks, glm, kernels, simulate
from probsnn.network import Network, Params
from probsnn.rl.environments import BaseEnvironment, check_environment, check_observation

DECODERS = ("count", "first", "population")
ENCODINGS = ("rates", "population")


class SpikeRecord(NamedTuple):
    """What a spiking policy sampled in one environment step (leading axes ``(..., )``).

    Attributes:
        inputs: ``(..., M, C)`` float32 input channels per bin (probabilities or 0/1 spikes).
        spikes: ``(..., M, N)`` uint8 spikes of every neuron per bin.
        action_log_prob: ``(...,)`` log p(action | spikes), independent of the parameters.
    """

    inputs: jax.Array
    spikes: jax.Array
    action_log_prob: jax.Array


@jax.tree_util.register_static
class SpikingPolicy:
    """A GLM network policy (static, hashable; see the module docstring for the equations).

    Args:
        n_observations: the observation size D >= 1.
        n_actions: the number of discrete actions A >= 2 (None for a continuous action).
        action_range: ``(low, high)`` of a one-dimensional continuous action (with
            ``decoder="population"``).
        observation_low, observation_high: ``(D,)`` ranges mapped to [0, 1] (default [0, 1]).
        n_hidden: H >= 0 hidden neurons. receptive_fields: R >= 2 input channels per dimension.
        micro_steps: M >= 1 bins per environment step.
        decoder: ``"count"`` (default), ``"first"`` or ``"population"`` (continuous).
        group_size: G >= 1 output neurons per discrete action. n_outputs: O >= 2 output neurons
            of a population decoder.
        encoding: ``"rates"`` (default) or ``"population"``. max_probability: p_max in (0, 1).
        inverse_temperature: β > 0 of the count decoder.
        recurrent: hidden-to-hidden synapses.
        synapse_basis, feedback_basis, input_basis: ``(K, L)`` bases (default: one lag,
            ``kernels.raw_lags(1)``: bin t − 1 drives bin t).
        dt: bin width in seconds.

    Raises:
        ValueError, TypeError: naming the argument (an action space the decoder cannot serve,
            sizes below their minimum, unknown option strings, ranges of the wrong shape).
    """

    def __init__(
        self,
        n_observations: int,
        n_actions: int | None = None,
        *,
        action_range=None,
        observation_low=None,
        observation_high=None,
        n_hidden: int = 32,
        receptive_fields: int = 8,
        micro_steps: int = 4,
        decoder: str = "count",
        group_size: int = 4,
        n_outputs: int = 16,
        encoding: str = "rates",
        max_probability: float = 0.9,
        inverse_temperature: float = 2.0,
        recurrent: bool = False,
        synapse_basis=None,
        feedback_basis=None,
        input_basis=None,
        dt: float = 1e-3,
    ):
        self.n_observations = _checks.positive_int(n_observations, "n_observations")
        self.decoder = _checks.option(decoder, "decoder", DECODERS)
        self.encoding = _checks.option(encoding, "encoding", ENCODINGS)
        if self.decoder == "population":
            if n_actions is not None or action_range is None:
                raise ValueError(
                    "decoder='population' serves a continuous action: pass action_range=(low, "
                    f"high) and no n_actions, got n_actions={n_actions!r}, "
                    f"action_range={action_range!r}"
                )
            low, high = (_checks.finite_float(v, "action_range") for v in action_range)
            if not low < high:
                raise ValueError(f"action_range must have low < high, got {action_range!r}")
            self.n_actions = None
            self.action_range = (low, high)
            self.n_outputs = _checks.positive_int(n_outputs, "n_outputs", minimum=2)
        else:
            if n_actions is None or action_range is not None:
                raise ValueError(
                    f"decoder={decoder!r} serves a discrete action: pass n_actions >= 2 and no "
                    f"action_range (use decoder='population' for a continuous action), got "
                    f"n_actions={n_actions!r}, action_range={action_range!r}"
                )
            self.n_actions = _checks.positive_int(n_actions, "n_actions", minimum=2)
            self.action_range = None
            self.group_size = _checks.positive_int(group_size, "group_size")
            self.n_outputs = self.n_actions * self.group_size
        self.n_hidden = _checks.positive_int(n_hidden, "n_hidden", minimum=0)
        self.receptive_fields = _checks.positive_int(receptive_fields, "receptive_fields", 2)
        self.micro_steps = _checks.positive_int(micro_steps, "micro_steps")
        self.max_probability = _checks.probability(max_probability, "max_probability")
        self.inverse_temperature = _checks.positive_float(
            inverse_temperature, "inverse_temperature"
        )
        self.recurrent = bool(recurrent)
        self.observation_low = _range(observation_low, 0.0, self.n_observations, "observation_low")
        self.observation_high = _range(
            observation_high, 1.0, self.n_observations, "observation_high"
        )
        if not np.all(self.observation_low < self.observation_high):
            raise ValueError("observation_low must be below observation_high in every dimension")
        one_lag = kernels.raw_lags(1)
        n = self.n_hidden + self.n_outputs
        mask = np.zeros((n, n), dtype=bool)
        mask[: self.n_hidden, self.n_hidden :] = True
        if self.recurrent:
            mask[: self.n_hidden, : self.n_hidden] = ~np.eye(self.n_hidden, dtype=bool)
        self.network = Network(
            n,
            one_lag if synapse_basis is None else synapse_basis,
            feedback_basis=feedback_basis,
            input_basis=one_lag if input_basis is None else input_basis,
            n_inputs=self.n_observations * self.receptive_fields,
            dt=dt,
            connectivity=mask,
        )
        # the sampler's path and capacity: trace states, event-driven, for recursive bases
        self._propagation = simulate.check_propagation(self.network, "auto", None)
        self._key = (
            self.n_observations,
            self.n_actions,
            self.action_range,
            self.n_hidden,
            self.receptive_fields,
            self.micro_steps,
            self.decoder,
            self.n_outputs,
            self.encoding,
            self.max_probability,
            self.inverse_temperature,
            self.observation_low.tobytes(),
            self.observation_high.tobytes(),
            self.network,
        )

    @classmethod
    def for_environment(cls, environment: BaseEnvironment, **options) -> SpikingPolicy:
        """A policy sized for ``environment`` (its observation size, action space and encoding
        ranges); ``options`` as the constructor. A continuous action gets the population
        decoder."""
        check_environment(environment)
        if environment.continuous:
            options.setdefault("decoder", "population")
            sizes = {"action_range": (environment.action_low, environment.action_high)}
        else:
            sizes = {"n_actions": environment.n_actions}
        return cls(
            environment.n_observations,
            observation_low=environment.observation_low,
            observation_high=environment.observation_high,
            **sizes,
            **options,
        )

    # -- sizes --------------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.network.n_inputs

    @property
    def n_neurons(self) -> int:
        return self.network.n_neurons

    @property
    def outputs(self) -> slice:
        """The output neurons' indices in the network."""
        return slice(self.n_hidden, self.n_neurons)

    # -- the policy protocol ------------------------------------------------------------------
    def init_params(self, key, *, rate: float = 50.0, weight_scale: float = 1.0) -> Params:
        """Random :class:`probsnn.Params` (:meth:`probsnn.Network.init_params` with no
        refractory self-inhibition), firing near ``rate`` Hz before learning."""
        return self.network.init_params(key, rate=rate, weight_scale=weight_scale, refractory=0.0)

    def initial_carry(self):
        """The network's empty past at the start of an episode (one episode; vmap for more): a
        :class:`probsnn.SamplerState`, or the decaying trace states
        (:class:`probsnn.propagation.ModeState`) of a network with recursive bases."""
        return simulate.initial_state(self.network, (), self._propagation[0])

    def encode(self, observation, key):
        """Input channels ``(M, D·R)`` for one observation ``(D,)`` (channel d·R + r)."""
        low, high = jnp.asarray(self.observation_low), jnp.asarray(self.observation_high)
        x = jnp.clip((observation - low) / (high - low), 0.0, 1.0)
        centres = jnp.linspace(0.0, 1.0, self.receptive_fields)
        width = 1.0 / (self.receptive_fields - 1)
        p = self.max_probability * jnp.exp(-0.5 * ((x[:, None] - centres) / width) ** 2)
        p = jnp.broadcast_to(p.reshape(-1), (self.micro_steps, self.n_inputs))
        if self.encoding == "rates":
            return p
        return jax.random.bernoulli(key, p).astype(jnp.float32)

    def act(self, params: Params, carry, observation, key):
        """One environment step: encode, run M bins, decode.

        Args:
            params: :class:`probsnn.Params`. carry: the network's past for one episode (as
                :meth:`initial_carry` gives it). observation: ``(D,)``.
            key: a PRNG key, split into the encoder's, each bin's and the decoder's.

        Returns:
            ``(carry, action, record)``: the advanced past, the action (int32 scalar, or a
            float32 scalar for a continuous action) and a :class:`SpikeRecord`.

        Raises:
            ValueError, TypeError: an observation of another shape, complex or non-numeric.
        """
        observation = check_observation(observation, self.n_observations)
        key_input, key_bins, key_action = jax.random.split(key, 3)
        inputs = self.encode(observation, key_input)
        step = simulate.sampling_step(self.network, params, *self._propagation)
        spikes = []
        for bin_key, input_t in zip(
            jax.random.split(key_bins, self.micro_steps), inputs, strict=True
        ):
            carry, (spikes_t, _) = step(carry, bin_key, input_t)
            spikes.append(spikes_t)
        spikes = jnp.stack(spikes)  # (M, N)
        action, action_log_prob = self.decode(spikes, key_action)
        return carry, action, SpikeRecord(inputs, spikes, action_log_prob)

    def decode(self, spikes, key):
        """The action and its log-probability given one step's spikes ``(M, N)``."""
        out = spikes[:, self.outputs].astype(jnp.float32)  # (M, O)
        if self.decoder == "population":
            counts = out.sum(0)
            low, high = self.action_range
            preferred = jnp.linspace(low, high, self.n_outputs)
            total = counts.sum()
            mean = jnp.where(
                total > 0, counts @ preferred / jnp.maximum(total, 1.0), 0.5 * (low + high)
            )
            return mean.astype(jnp.float32), jnp.zeros((), jnp.float32)
        groups = out.reshape(self.micro_steps, self.n_actions, self.group_size).sum(-1)  # (M, A)
        if self.decoder == "count":
            logits = self.inverse_temperature * groups.sum(0)
            action = jax.random.categorical(key, logits)
            return action.astype(jnp.int32), jax.nn.log_softmax(logits)[action]
        fired = groups > 0
        first_bin = jnp.where(fired.any(0), jnp.argmax(fired, axis=0), self.micro_steps)
        winners = first_bin == first_bin.min()  # all groups when silent
        action = jax.random.categorical(key, jnp.where(winners, 0.0, -jnp.inf))
        return action.astype(jnp.int32), -jnp.log(winners.sum().astype(jnp.float32))

    def spike_log_prob(self, params: Params, trajectory):
        """Σ over each step's bins and neurons of log p(s | past, inputs): ``(B, H)``; the
        episode's spike train ``(B, H·M, N)`` is one GLM trajectory from an empty past, so the
        sum over steps is :func:`probsnn.log_likelihood` of it."""
        record = trajectory.records
        batch, steps = record.spikes.shape[:2]
        spikes = record.spikes.reshape(batch, steps * self.micro_steps, self.n_neurons)
        inputs = record.inputs.reshape(batch, steps * self.micro_steps, self.n_inputs)
        method = "recursive" if self.network.recursive else "direct"
        u = glm.contract(self.network, params, glm.traces(self.network, spikes, inputs, method))
        per_bin = glm._bernoulli_log_prob(spikes, u).sum(-1)
        return per_bin.reshape(batch, steps, self.micro_steps).sum(-1)

    def log_prob(self, params: Params, trajectory):
        """log π of every step ``(B, H)``: :meth:`spike_log_prob` + log p(action | spikes)."""
        return self.spike_log_prob(params, trajectory) + trajectory.records.action_log_prob

    def spike_counts(self, trajectory):
        """Spikes of all neurons per environment step, ``(B, H)``."""
        return trajectory.records.spikes.sum((-1, -2), dtype=jnp.int32)

    def check_params(self, params) -> Params:
        return self.network.check_params(params)

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, SpikingPolicy) and other._key == self._key

    def __repr__(self):
        return (
            f"SpikingPolicy(D={self.n_observations}, H={self.n_hidden}, outputs="
            f"{self.n_outputs}, decoder={self.decoder!r}, M={self.micro_steps})"
        )


def _range(values, default: float, size: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(size, default, np.float32)
    array = np.asarray(_checks.real_array(values, name, min_ndim=1), np.float32)
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {array.shape}")
    return array
