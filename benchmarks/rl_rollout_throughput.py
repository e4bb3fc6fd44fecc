"""Environment steps per second of a spiking policy: the compiled rollout vs a gymnasium loop.

Setting (issue 18, Speed): CartPole-v1 and the default spiking policy,
``SpikingPolicy.for_environment(probsnn.rl.make("cartpole"))`` (8 receptive fields per
observation dimension, 32 hidden and 8 output neurons, 4 bins per environment step, count
decoder), at its random initial parameters. One timed unit is a batch of B episodes of H = 500
steps (``--episodes``, ``--steps``):

* probsnn: :func:`probsnn.rl.rollout` — gymnax's CartPole and the policy in one compiled
  ``lax.scan`` over the steps, vectorised over the episodes; the compilation (cold: the persistent
  cache is off) is timed apart from the runs;
* gymnasium: :func:`probsnn.rl.gymnasium.gymnasium_rollout` — gymnasium's own vectorised CartPole
  (``CartPoleVectorEnv``, numpy) with B sub-environments stepped from a Python loop, the policy's
  ``act`` compiled once (vmapped over the B sub-environments) and called at every step.

A third line steps ONE gymnasium CartPole (``n_envs=1``) from the same loop, episode after
episode, as a user who steps an environment by hand would; its steps/s is compared with the
compiled rollout's at each B.

Both produce the same :class:`probsnn.rl.Trajectory` of B × H steps, the policy acting at every
one of them (a finished episode is held and masked): steps/s = B·H / seconds. The compiled rollout
steps gymnax at every slot; the loop stops stepping gymnasium once all B episodes have ended (the
mean episode length is printed: an untrained policy drops the pole in ~25 steps, so the loop's
time is nearly all the policy's per-step calls). Per step of the batch, both run the same network
arithmetic (M bins of N neurons for each of B episodes); the loop adds one compiled call, a
device-to-host copy of the actions and gymnasium's step. The ratio is therefore about
1 + (the loop's own cost) / (the arithmetic), which falls as B grows: the printed per-step times
split the two. Timings alternate, probsnn one call then the loop one call, round by round, so a
loaded machine slows both alike; the table gives the medians, the ratio of medians (loop time /
compiled time) and the range of the per-round ratios. The load average is printed at the start
and the end.

Run: python benchmarks/rl_rollout_throughput.py [--episodes 16 64 256] [--steps 500]
    [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics

import jax
import numpy as np
from _header import print_header
from _timing import best_time

import probsnn
from probsnn import rl
from probsnn.rl.gymnasium import GymnasiumEnvironment, gymnasium_rollout


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def compare(policy, params, n_episodes: int, n_steps: int, repeats: int, seed: int):
    """Time both rollouts of ``n_episodes`` × ``n_steps``; print one block of the table."""
    env = rl.make("cartpole")
    gym_env = GymnasiumEnvironment("CartPole-v1", n_envs=n_episodes)
    key = jax.random.key(seed)

    def compiled(k):
        return rl.rollout(policy, params, env, k, n_episodes, n_steps)

    def loop(k):
        return gymnasium_rollout(policy, params, gym_env, k, n_episodes, n_steps)

    first_compiled = best_time(lambda: compiled(key), repeats=1)[1]
    first_loop = best_time(lambda: loop(key), repeats=1)[1]
    times = []
    lengths = {"compiled": [], "loop": []}
    for r in range(repeats):
        k = jax.random.fold_in(key, r + 1)
        trajectory, own = best_time(lambda k=k: compiled(k), repeats=1)
        lengths["compiled"].append(float(rl.episode_lengths(trajectory).mean()))
        trajectory, theirs = best_time(lambda k=k: loop(k), repeats=1)
        lengths["loop"].append(float(rl.episode_lengths(trajectory).mean()))
        times.append((own, theirs))
    gym_env.close()
    own, theirs = zip(*times, strict=True)
    steps = n_episodes * n_steps
    rounds = [t / o for o, t in times]
    compile_s = first_compiled - min(own)
    print(
        f"\nB = {n_episodes} episodes x H = {n_steps} steps ({steps} steps per call); first call "
        f"(not timed): compiled {first_compiled:.2f} s, of which compilation ~{compile_s:.2f} s; "
        f"loop {first_loop:.2f} s (its act compiled for B)"
    )
    print(
        f"mean episode length: compiled {np.mean(lengths['compiled']):.1f}, loop "
        f"{np.mean(lengths['loop']):.1f} steps"
    )
    print(f"{'':34s} {'median s':>9s} {'steps/s':>11s} {'ratio':>7s} {'per round':>12s}")
    print(
        f"{'probsnn.rl.rollout (compiled)':34s} {statistics.median(own):9.4f} "
        f"{steps / statistics.median(own):11.3g}"
    )
    ratio = statistics.median(theirs) / statistics.median(own)
    print(
        f"{'gymnasium_rollout (Python loop)':34s} {statistics.median(theirs):9.4f} "
        f"{steps / statistics.median(theirs):11.3g} {ratio:6.1f}x "
        f"{min(rounds):5.1f}-{max(rounds):.1f}x"
    )
    per_step = [1e6 * statistics.median(x) / n_steps for x in (own, theirs)]
    print(
        f"per environment step of the batch: compiled {per_step[0]:.0f} us, loop "
        f"{per_step[1]:.0f} us (the loop's own cost ~{per_step[1] - per_step[0]:.0f} us)"
    )
    return ratio, steps / statistics.median(own)


def single_environment(policy, params, n_episodes: int, n_steps: int, seed: int) -> float:
    """Steps/s of the policy stepping ONE gymnasium CartPole in a Python loop (``n_envs=1``,
    episodes one after another): how a user steps a gymnasium environment by hand."""
    gym_env = GymnasiumEnvironment("CartPole-v1", n_envs=1)
    key = jax.random.key(seed)
    gymnasium_rollout(policy, params, gym_env, key, 1, n_steps)  # compiles act for one env
    _, seconds = best_time(
        lambda: gymnasium_rollout(policy, params, gym_env, key, n_episodes, n_steps), repeats=3
    )
    gym_env.close()
    rate = n_episodes * n_steps / seconds
    print(
        f"\none gymnasium environment in a Python loop ({n_episodes} episodes x {n_steps} steps, "
        f"best of 3): {seconds:.3f} s, {rate:.3g} steps/s, {1e6 / rate:.0f} us per step"
    )
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5, help="alternating timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gymnasium

    print_header(
        "CartPole-v1 rollout throughput of a spiking policy: compiled scan vs gymnasium loop",
        {
            "probsnn": "probsnn.rl.rollout: gymnax CartPole + policy in one jax.jit(lax.scan), "
            "vmapped over episodes, float32, XLA CPU",
            "gymnasium": f"gymnasium {gymnasium.__version__} CartPoleVectorEnv (numpy, float64 "
            "state) stepped from Python; policy act jitted once, vmapped over sub-environments",
        },
        packages=("gymnax", "gymnasium"),
    )
    probsnn.disable_compilation_cache()  # the compilation is cold: no program from disk
    policy = rl.SpikingPolicy.for_environment(rl.make("cartpole"))
    params = policy.init_params(jax.random.key(args.seed))
    print(f"policy: {policy} ({policy.n_inputs} input channels), random initial parameters")
    print(f"load average (1, 5, 15 min) at start: {load_average()}")
    results = [
        compare(policy, params, n, args.steps, args.repeats, args.seed) for n in args.episodes
    ]
    single = single_environment(policy, params, 4, args.steps, args.seed)
    print(
        "\nratio (vector-env loop time / compiled time, same B) per B: "
        + ", ".join(f"{n}: {r:.1f}x" for n, (r, _) in zip(args.episodes, results, strict=True))
    )
    print(
        "ratio (compiled steps/s / one-environment loop steps/s) per B: "
        + ", ".join(
            f"{n}: {rate / single:.0f}x"
            for n, (_, rate) in zip(args.episodes, results, strict=True)
        )
        + " (goal >= 20x)"
    )
    print(f"load average (1, 5, 15 min) at end: {load_average()}")


if __name__ == "__main__":
    main()
