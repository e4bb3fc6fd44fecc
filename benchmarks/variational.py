"""Variational learning with hidden neurons: the local rule vs NumPyro SVI, online vs batch, and
the online rule's memory for long recordings.

Setting (issue 6): N = 40 neurons (10 visible, 30 hidden), 3 raised-cosine bases (L = 15), dense
coupling; 64 visible sequences of T = 100 bins from a random teacher. One epoch = 4 mini-batches
of 16 sequences, K = 4 hidden completions per sequence. Peers, each timed after compilation:

* local rule — :func:`probsnn.inference.latent.trainer.variational_trainer` (clamped sampler +
  the batch rule with the per-parameter baseline + Adam), one jitted step per mini-batch;
* NumPyro — ``SVI(hidden_network, hidden_guide, adam, TraceGraph_ELBO(num_particles=4))`` on
  the same data and mini-batches, ``svi.update`` jitted;
* online — :func:`probsnn.inference.fit_variational_online` streaming the 64 sequences as
  parallel recordings, one update per bin (T = 100 updates instead of 4).

Memory: XLA's compiled temporary buffers of the streaming rule for T = 10⁴ and T = 10⁶ (the data
and the per-bin learning signal are arguments and outputs; the working set must not grow), and
the wall time of one T = 10⁶ pass.

Run: python benchmarks/variational.py [--long-steps 1000000]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _header import print_header
from _timing import best_time
from numpyro.infer import SVI, TraceGraph_ELBO

import probsnn as ps
from probsnn import kernels
from probsnn.inference.latent import variational
from probsnn.inference.latent.trainer import variational_trainer
from probsnn.models import hidden_guide, hidden_network


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-steps", type=int, default=1_000_000)
    args = parser.parse_args()
    print_header(
        "Variational learning with hidden neurons: local rule vs NumPyro SVI",
        {
            "NumPyro": "SVI(hidden_network, hidden_guide, optax.adam(1e-2), "
            "TraceGraph_ELBO(num_particles=4)), svi.update jitted, float32"
        },
        packages=("numpyro", "optax"),
    )

    n, n_visible, n_seq, n_steps, batch, n_samples = 40, 10, 64, 100, 16, 4
    basis = kernels.raised_cosine(3, first_peak=1, last_peak=8)
    spec = ps.Network(n, basis, visible=np.arange(n) < n_visible, dt=1e-3)
    teacher = spec.init_params(jax.random.key(0), rate=40.0, weight_scale=1.0)
    data = ps.sample(spec, teacher, jax.random.key(1), n_steps, n_trials=n_seq)[..., :n_visible]
    data = jnp.asarray(data, jnp.float32)
    start = spec.init_params(jax.random.key(2), rate=20.0, weight_scale=0.3)
    batches = [data[i : i + batch] for i in range(0, n_seq, batch)]

    trainer = variational_trainer(spec, optax.adam(1e-2), n_samples=n_samples)
    step_keys = list(jax.random.split(jax.random.key(3), len(batches)))

    def local_epoch():
        state = trainer.init(start)
        for step_key, visible in zip(step_keys, batches, strict=True):
            state, _ = trainer.step(step_key, state, visible)
        return state.params

    _, local_seconds = best_time(local_epoch, 3, warmup=True)

    svi = SVI(hidden_network, hidden_guide, optax.adam(1e-2), TraceGraph_ELBO(n_samples))
    svi_state = svi.init(jax.random.key(4), spec, batches[0])
    update = jax.jit(lambda state, visible: svi.update(state, spec, visible))

    def svi_epoch():
        state = svi_state
        for visible in batches:
            state, loss = update(state, visible)
        return loss

    _, svi_seconds = best_time(svi_epoch, 3, warmup=True)

    def online_pass():
        return variational.fit_variational_online(
            spec, start, data, key=jax.random.key(5), kappa=0.9, learning_rate=1e-3
        ).params

    _, online_seconds = best_time(online_pass, 3, warmup=True)

    print(
        f"setting: N={n} ({n_visible} visible), K_basis=3, L={basis.shape[1]}, {n_seq} sequences "
        f"x T={n_steps}, mini-batches of {batch}, K={n_samples} samples"
    )
    print(f"local rule (trainer):        {local_seconds * 1e3:8.1f} ms/epoch, 4 updates")
    print(
        f"NumPyro SVI TraceGraph_ELBO: {svi_seconds * 1e3:8.1f} ms/epoch, 4 updates "
        f"-> local rule is {svi_seconds / local_seconds:.1f}x faster"
    )
    print(
        f"online rule (streaming):     {online_seconds * 1e3:8.1f} ms/epoch, {n_steps} updates "
        f"({n_steps / online_seconds:.0f} updates/s vs {4 / local_seconds:.0f} batch updates/s)"
    )

    small = ps.Network(4, kernels.raw_lags(2), visible=np.array([True, True, False, False]))
    small_params = small.init_params(jax.random.key(6), rate=50.0)
    options = (0.9, True, None, 0.0)
    temporary = {}
    for length in (10_000, args.long_steps):
        compiled = variational._stream.lower(
            small,
            options,
            None,
            1e-3,
            small_params,
            jax.random.key(7),
            jnp.zeros((1, length, 2)),
            None,
        ).compile()
        temporary[length] = compiled.memory_analysis().temp_size_in_bytes
    long_data = (jax.random.uniform(jax.random.key(8), (1, args.long_steps, 2)) < 0.05).astype(
        jnp.float32
    )
    _, long_seconds = best_time(
        lambda: (
            variational.fit_variational_online(
                small, small_params, long_data, key=jax.random.key(9), kappa=0.9, learning_rate=1e-3
            ).params
        ),
        1,
        warmup=True,
    )
    print(
        "online rule working memory (XLA temporaries), 2 visible + 2 hidden: "
        + ", ".join(f"T={t:,}: {b:,} bytes" for t, b in temporary.items())
        + f"; T={args.long_steps:,} streamed in {long_seconds:.1f} s "
        f"({args.long_steps / long_seconds / 1e3:.0f} k bins/s)"
    )


if __name__ == "__main__":
    main()
