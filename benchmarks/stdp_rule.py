"""Additive pair STDP with hard bounds on 1,000 Poisson inputs → one output: probsnn vs numpy.

Setting (issue 5, Speed, open-loop part): 1,000 presynaptic Poisson trains at 10 spikes/s and one
postsynaptic Poisson train at 10 spikes/s, 1 ms bins, all-to-all additive STDP with bounds
[0, w_max], applied after every bin. The issue's peer is Brian2, which is not installed here (and
was not installed for this benchmark); the peer is a numpy time loop doing the same trace
updates in one process (float64, the same equations). The spike trains are drawn beforehand and
shared, so only the plasticity is timed; probsnn's figure is the best of the repeats after one
compile-and-run call. A second row times ``--trials`` independent trials batched with vmap,
where the numpy peer loops over trials. The closed-loop Song et al. network (an LIF neuron
whose spikes feed back into the rule) is not part of this benchmark.

Run: python benchmarks/stdp_rule.py [--inputs 1000] [--seconds 10] [--trials 10]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _header import print_header
from _timing import best_time

from probsnn.inference.plasticity import stdp

A_PLUS, A_MINUS, TAU, W_MAX = 0.005 * 0.015, 0.00525 * 0.015, 20.0, 0.015


def numpy_stdp(w, pre, post, dt_ms):
    """The same rule as a numpy loop over bins."""
    decay = np.exp(-dt_ms / TAU)
    x, y = np.zeros(pre.shape[1]), np.zeros(post.shape[1])
    for t in range(pre.shape[0]):
        x *= decay
        y *= decay
        w = np.clip(w + A_PLUS * np.outer(x, post[t]) - A_MINUS * np.outer(pre[t], y), 0, W_MAX)
        x += pre[t]
        y += post[t]
    return w


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dt", type=float, default=1.0, help="bin width in ms")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print_header(
        "Additive pair STDP on Poisson inputs: probsnn vs a numpy time loop",
        {"numpy": "a Python loop over bins of numpy vector trace updates, float64, one thread"},
    )

    n_bins = round(args.seconds * 1000 / args.dt)
    p = 10.0 * args.dt * 1e-3
    rng = np.random.default_rng(0)
    pre = rng.random((args.trials, n_bins, args.inputs)) < p
    post = rng.random((args.trials, n_bins, 1)) < p
    w0 = rng.uniform(0, W_MAX, (args.inputs, 1))
    print(
        f"setting: {args.inputs} inputs -> 1 output, {args.seconds} s at {args.dt} ms "
        f"({n_bins} bins), trials batched {args.trials}; jax {jax.__version__} on "
        f"{jax.devices()[0].platform}, numpy {np.__version__}; "
        "peer: numpy loop (Brian2 not installed)"
    )
    rule = stdp.pair_stdp(A_PLUS, A_MINUS, TAU, TAU, args.dt, w_max=W_MAX)
    pre_j = jnp.asarray(pre, jnp.float32)
    post_j = jnp.asarray(post, jnp.float32)
    w_j = jnp.asarray(w0, jnp.float32)
    one = jax.jit(lambda a, b: stdp.run_stdp(rule, w_j, a, b).w)
    many = jax.jit(jax.vmap(lambda a, b: stdp.run_stdp(rule, w_j, a, b).w))

    w_np, t_np = best_time(lambda: numpy_stdp(w0, pre[0], post[0], args.dt), repeats=1)
    w_ps, t_ps = best_time(lambda: one(pre_j[0], post_j[0]), args.repeats, warmup=True)
    np.testing.assert_allclose(np.asarray(w_ps), w_np, atol=1e-6)
    print(f"one trial:   numpy {t_np:8.3f} s   probsnn {t_ps:8.3f} s   ratio {t_np / t_ps:6.1f}x")
    t_np_all = t_np * args.trials  # the numpy peer loops over trials
    _, t_ps_all = best_time(lambda: many(pre_j, post_j), args.repeats, warmup=True)
    print(
        f"{args.trials} trials:   numpy {t_np_all:8.3f} s (looped, 1 trial x {args.trials})   "
        f"probsnn {t_ps_all:8.3f} s   ratio {t_np_all / t_ps_all:6.1f}x"
    )


if __name__ == "__main__":
    main()
