"""The Song, Miller & Abbott (2000) network under additive STDP: probsnn vs a numpy time loop.

Setting (issue 5, Speed): 1,000 excitatory Poisson inputs at 10 spikes/s with plastic weights in
[0, g_max], 200 fixed inhibitory inputs, one leaky integrate-and-fire neuron, all-to-all additive
STDP applied every bin (A₊ = 0.005 g_max, A₋ = 1.05 A₊, τ± = 20 ms), ``--seconds`` of simulated
time at ``--dt`` ms. The issue names Brian2 as the peer; Brian2 is not installed here and was not
installed for this benchmark, so the peer is the same network as a numpy loop over bins in the
same process (float64, numpy's default RNG; the same equations, different random numbers, so the
script prints both runs' output rate and weight statistics rather than comparing them exactly).
probsnn runs :func:`probsnn.experiments.song_experiment` under jit (the best of the repeats after
a compile-and-run call). The batched row runs ``--trials`` independent networks with vmap;
the numpy peer has to loop, and its figure is its one-trial time × trials.

Run: python benchmarks/stdp_song.py [--seconds 100] [--dt 1.0] [--trials 100]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from _header import print_header
from _timing import best_time

from probsnn.experiments import song_experiment
from probsnn.inference.plasticity import stdp

W_MAX = 0.015


def numpy_song(seed, n_steps, dt_ms, n_inputs=1000, rate_hz=10.0):
    """The network of :func:`probsnn.experiments.song_experiment` as a numpy loop."""
    rng = np.random.default_rng(seed)
    a_plus = 0.005 * W_MAX
    a_minus = 1.05 * a_plus
    decay, syn, leak = np.exp(-dt_ms / 20.0), np.exp(-dt_ms / 5.0), dt_ms / 20.0
    p_ex, p_in = rate_hz * dt_ms * 1e-3, 10.0 * dt_ms * 1e-3
    w = rng.uniform(0, W_MAX, n_inputs)
    x, y, v, g_ex, g_in, n_spikes = np.zeros(n_inputs), 0.0, -70.0, 0.0, 0.0, 0
    for _ in range(n_steps):
        pre = rng.random(n_inputs) < p_ex
        n_in = np.count_nonzero(rng.random(200) < p_in)
        g_ex = g_ex * syn + w[pre].sum()
        g_in = g_in * syn + 0.05 * n_in
        v += leak * (-70.0 - v + g_ex * (0.0 - v) + g_in * (-70.0 - v))
        spike = v >= -54.0
        if spike:
            v = -60.0
            n_spikes += 1
        x *= decay
        y *= decay
        w = np.clip(w + a_plus * x * spike - a_minus * pre * y, 0.0, W_MAX)
        x += pre
        y += spike
    return w, n_spikes


def summary(w, n_spikes, seconds):
    w = np.asarray(w) / W_MAX
    return (
        f"output {n_spikes / seconds:6.1f} Hz, weights near 0: {np.mean(w < 0.1):.2f}, "
        f"near g_max: {np.mean(w > 0.9):.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=100)
    parser.add_argument("--dt", type=float, default=1.0, help="bin width in ms")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print_header(
        "Song et al. (2000) STDP network: probsnn vs a numpy time loop",
        {
            "numpy": "the same network as a Python loop over bins of numpy vector updates, "
            "float64, numpy's default RNG, one thread"
        },
    )

    n_steps = round(args.seconds * 1000 / args.dt)
    print(
        f"setting: Song et al. network, 1000 inputs at 10 Hz, {args.seconds} s at {args.dt} ms "
        f"({n_steps} bins), batched trials {args.trials}; jax {jax.__version__} on "
        f"{jax.devices()[0].platform}, numpy {np.__version__}; "
        "peer: numpy loop (Brian2 not installed)"
    )
    rule = stdp.pair_stdp(0.005 * W_MAX, 0.00525 * W_MAX, 20.0, 20.0, args.dt, w_max=W_MAX)

    def run(key):
        return song_experiment(key, rule, duration_s=args.seconds, dt_ms=args.dt)

    one = jax.jit(run)
    many = jax.jit(jax.vmap(run))
    (w_np, spikes_np), t_np = best_time(lambda: numpy_song(0, n_steps, args.dt), repeats=1)
    result, t_ps = best_time(lambda: one(jax.random.key(0)), args.repeats, warmup=True)
    print(f"numpy   run: {summary(w_np, spikes_np, args.seconds)}")
    n_ps = float(np.asarray(result.rate_history).sum())
    print(f"probsnn run: {summary(result.w, n_ps, args.seconds)}")
    print(f"one trial:  numpy {t_np:9.2f} s   probsnn {t_ps:8.3f} s   ratio {t_np / t_ps:7.1f}x")
    keys = jax.random.split(jax.random.key(1), args.trials)
    _, t_many = best_time(lambda: many(keys), args.repeats, warmup=True)
    t_np_all = t_np * args.trials
    print(
        f"{args.trials} trials: numpy {t_np_all:9.2f} s (1 trial x {args.trials})   "
        f"probsnn {t_many:8.3f} s   ratio {t_np_all / t_many:7.1f}x"
    )


if __name__ == "__main__":
    main()
