"""NUTS effective samples per second: probsnn's design-matrix model vs a naive sequential model.

Setting (issue 8): a 20-neuron network (20 % of synapses, 2 exponential bases over 30 lags shared
by the couplings and the self-history), Normal priors. Both models have the same sites and the
same log density (checked below):

* probsnn — :func:`probsnn.models.glm_design_model`: the traces are computed once, so
  each log-density evaluation is one (T, P) × (P, N) product u = X B(θ).
* naive — the likelihood as a ``lax.scan`` over time bins, recomputing each bin's traces from a
  ring buffer of the observed past (the sampler's step, :func:`probsnn.glm.step_potential`).

Same data, prior, PRNG seed, chains, warm-up and draws. Reported: min and median bulk ESS over
all scalar parameters (ArviZ), wall time of ``MCMC.run`` (compilation included, as a user meets
it), ESS per second, the ratios, and each model's log-density gradient time for context. The
two runs are not bit-identical (float32 sums in another order make the trajectories drift apart),
so their ESS differ by chance; the wall-time ratio is the systematic part.

Run: python benchmarks/nuts_ess.py [--neurons 20] [--bins 1000] [--warmup 200] [--draws 200]
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from _header import print_header
from _timing import best_time
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import initialize_model, log_density

import probsnn as ps
from probsnn import kernels, topology
from probsnn.design import build_design
from probsnn.glm import advance, bernoulli_log_prob, init_state, step_potential, step_weights
from probsnn.models import GLMPrior, design_params, glm_design_model


def scan_model(spec, spikes, prior):
    """The GLM network with a sequential likelihood: one ``lax.scan`` step per time bin."""
    weights = step_weights(spec, design_params(spec, prior))

    def one_bin(carry, spikes_t):
        state, total = carry
        u = step_potential(weights, state)
        total = total + jnp.sum(bernoulli_log_prob(spikes_t, u))
        return (advance(state, spikes_t), total), None

    (_, total), _ = jax.lax.scan(one_bin, (init_state(spec), 0.0), spikes)
    numpyro.factor("spikes", total)


def gradient_seconds(model, key):
    """Best time of one jitted value-and-gradient of the model's potential energy."""
    info = initialize_model(key, model)
    gradient = jax.jit(jax.value_and_grad(info.potential_fn))
    _, seconds = best_time(lambda: gradient(info.param_info.z), repeats=20, warmup=True)
    return seconds


def run_nuts(model, key, args):
    mcmc = MCMC(
        NUTS(model),
        num_warmup=args.warmup,
        num_samples=args.draws,
        num_chains=args.chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    start = time.perf_counter()
    mcmc.run(key)
    jax.block_until_ready(mcmc.get_samples())
    seconds = time.perf_counter() - start
    samples = mcmc.get_samples(group_by_chain=True)
    ess = az.ess(az.from_dict(posterior={k: np.asarray(v) for k, v in samples.items()}))
    values = np.concatenate([np.ravel(ess[name].values) for name in ess.data_vars])
    return values, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=20)
    parser.add_argument("--bins", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args()
    print_header(
        "NUTS ESS per second: probsnn design-matrix model vs a naive scan model",
        {
            "naive model": f"NumPyro NUTS on a lax.scan likelihood, {args.chains} chains "
            f"vectorized, {args.warmup} warm-up + {args.draws} draws, float32; timed: "
            "MCMC.run with compilation"
        },
        packages=("numpyro", "arviz"),
    )

    basis = kernels.exponential([0.002, 0.008], 30, 1e-3)
    mask = topology.random_sparse(args.neurons, 0.2, seed=0)
    spec = ps.Network(args.neurons, basis, dt=1e-3, connectivity=mask)
    truth = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=2.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), args.bins)
    prior = GLMPrior.normal(scale=1.0, bias_loc=-3.5, bias_scale=1.0)
    n_params = int(mask.sum()) * 2 + args.neurons * 3
    print(
        f"setting: N={args.neurons}, T={args.bins}, {basis.shape[1]} lags, {int(mask.sum())} "
        f"synapses, {n_params} "
        f"parameters, mean rate {float(np.mean(spikes)) / spec.dt:.1f} Hz; NUTS "
        f"{args.chains} chains (vectorized) x ({args.warmup} warm-up + {args.draws} draws)"
    )
    design = build_design(spec, spikes)
    observed = jnp.asarray(spikes, jnp.float32)
    models = {
        "probsnn design": functools.partial(glm_design_model, spec, design, prior),
        "naive lax.scan": functools.partial(scan_model, spec, observed, prior),
    }
    n_synapses = int(mask.sum())
    point = {
        "w": jnp.full((n_synapses, 2), 0.1),
        "v": jnp.full((args.neurons, 2), -0.5),
        "bias": jnp.full(args.neurons, -3.0),
    }
    densities = [float(log_density(m, (), {}, point)[0]) for m in models.values()]
    assert np.isclose(*densities, rtol=1e-5), densities

    results = {}
    for name, model in models.items():
        grad = gradient_seconds(model, jax.random.key(2))
        ess, seconds = run_nuts(model, jax.random.key(3), args)
        results[name] = (ess, seconds)
        print(
            f"  {name:15s} gradient {1e3 * grad:7.3f} ms | bulk ESS min {ess.min():6.0f} "
            f"median {np.median(ess):6.0f} | wall {seconds:7.1f} s | "
            f"min ESS/s {ess.min() / seconds:7.2f}, median ESS/s {np.median(ess) / seconds:7.2f}"
        )
    (fast, fast_s), (slow, slow_s) = results.values()
    print(
        f"ratio probsnn / naive: min-ESS/s {(fast.min() / fast_s) / (slow.min() / slow_s):.1f}x, "
        f"median-ESS/s {(np.median(fast) / fast_s) / (np.median(slow) / slow_s):.1f}x, "
        f"wall time {slow_s / fast_s:.1f}x"
    )


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "There are not enough devices", UserWarning)
        main()
