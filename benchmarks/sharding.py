"""Data parallelism over trials: 1, 2 and 4 devices, and NUTS chain methods.

Setting (issue 16): a 40-neuron network (3 raised-cosine bases over 30 lags, dense coupling,
~3 % firing), 16 trials × 2,000 bins. Each device count runs in its own process (the count is
fixed when JAX starts: ``XLA_FLAGS=--xla_force_host_platform_device_count=D``); D = 1 is the
plain one-device call (no mesh), D > 1 passes ``mesh=probsnn.parallel.trial_mesh()``. Timed,
compilation excluded (best of ``--repeats``): ``probsnn.sample`` (ring buffer), the
log-likelihood with its gradient, and 5 Newton iterations of ``fit_ml`` (l2 = 1, the shared
preconditioner, which a mesh uses). The sharded results are checked against D = 1 (same spikes;
likelihood and fit to float round-off).

NUTS (``--chains`` chains on the 4-device process, a 10-neuron network): ``fit_mcmc`` with
``chain_method`` sequential, vectorized and parallel; bulk ESS (minimum over parameters, ArviZ)
per second of wall time, compilation included as a user meets it.

On a 2-core CPU the forced devices share 2 cores, so up to ~2× is possible; a device count
above the core count only adds partitioning overhead.

Run: python benchmarks/sharding.py [--devices 1 2 4] [--repeats 3] [--chains 4]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

N_NEURONS, N_BINS = 40, 2000


def worker(n_devices: int, repeats: int, chains: int) -> dict:
    import jax
    import numpy as np
    from _timing import best_time

    import probsnn as ps
    from probsnn import inference, kernels, parallel

    assert jax.device_count() == n_devices, jax.devices()
    mesh = parallel.trial_mesh() if n_devices > 1 else None
    spec = ps.Network(N_NEURONS, kernels.raised_cosine(3, 1, 30), dt=1e-3)
    params = spec.init_params(jax.random.key(0), rate=30.0, weight_scale=0.5)
    key = jax.random.key(1)
    spikes, sample_s = best_time(
        lambda: ps.sample(spec, params, key, N_BINS, 16, mesh=mesh), repeats, warmup=True
    )

    def value_and_grad():
        return jax.value_and_grad(lambda p: ps.log_likelihood(spec, p, spikes, mesh=mesh))(params)

    (loglik, _), grad_s = best_time(value_and_grad, repeats, warmup=True)
    with warnings.catch_warnings():  # 5 Newton iterations: the same work on every device count
        warnings.simplefilter("ignore", inference.ConvergenceWarning)
        fit, fit_s = best_time(
            lambda: inference.fit_ml(
                spec, spikes, l2=1.0, max_iter=5, preconditioner="shared", mesh=mesh
            ),
            1,
            True,
        )
    result = {
        "devices": n_devices,
        "sample_s": sample_s,
        "grad_s": grad_s,
        "fit_s": fit_s,
        "spike_sum": int(np.asarray(spikes, np.int64).sum()),
        "loglik": float(loglik),
        "bias": np.asarray(fit.params.bias).tolist(),
        "rate": float(np.asarray(spikes).mean()),
    }
    if n_devices >= chains:
        result["nuts"] = nuts_methods(chains)
    return result


def nuts_methods(chains: int) -> dict:
    import arviz as az
    import jax

    import probsnn as ps
    from probsnn import inference, kernels

    spec = ps.Network(10, kernels.raised_cosine(2, 1, 20), dt=1e-3)
    truth = spec.init_params(jax.random.key(0), rate=10.0, weight_scale=0.5)
    spikes = ps.sample(spec, truth, jax.random.key(1), 2000, 1)
    rows = {}
    for method in ("sequential", "vectorized", "parallel"):
        began = time.perf_counter()
        idata = inference.fit_mcmc(
            spec,
            spikes,
            key=jax.random.key(2),
            num_warmup=150,
            num_samples=150,
            num_chains=chains,
            chain_method=method,
            n_predictive=0,
            progress=False,
        )
        seconds = time.perf_counter() - began
        ess = az.ess(idata, var_names=["w", "v", "bias"], method="bulk").to_array().min()
        rows[method] = {
            "seconds": seconds,
            "ess": float(ess),
            "used": idata.sample_stats.attrs["chain_method"],
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, args.chains)))
        return
    from _header import print_header
    from _timing import worker_result

    print_header(
        "Data parallelism over trials: forced host devices, sample / likelihood / fit_ml, NUTS",
        {"probsnn, 1 device": "the same calls without a mesh (the reference of each ratio)"},
    )
    results = []
    for n_devices in args.devices:
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_devices}"}
        arguments = ["--worker", n_devices, "--repeats", args.repeats, "--chains", args.chains]
        results.append(worker_result(__file__, *arguments, env=env))
    base = results[0]
    print(f"\n{N_NEURONS} neurons, 3 bases x 30 lags, 16 trials x {N_BINS:,} bins")
    print(f"{'devices':>8} {'sample s':>9} {'x':>5} {'loglik+grad s':>14} {'x':>5}", end="")
    print(f" {'fit_ml 5 it. s':>14} {'x':>5}")
    for row in results:
        print(
            f"{row['devices']:>8} {row['sample_s']:>9.3f}"
            f" {base['sample_s'] / row['sample_s']:>5.2f}"
            f" {row['grad_s']:>14.3f} {base['grad_s'] / row['grad_s']:>5.2f}"
            f" {row['fit_s']:>14.2f} {base['fit_s'] / row['fit_s']:>5.2f}"
        )
    for row in results[1:]:
        same = row["spike_sum"] == base["spike_sum"]
        dll = abs(row["loglik"] - base["loglik"]) / abs(base["loglik"])
        dbias = max(abs(a - b) for a, b in zip(row["bias"], base["bias"], strict=True))
        print(
            f"{row['devices']} devices vs 1: same spikes {same}, log-likelihood rel. diff "
            f"{dll:.1e}, fit_ml bias max diff {dbias:.1e}"
        )
    print(f"firing probability per bin {base['rate']:.3f}")
    for row in results:
        if "nuts" not in row:
            continue
        print(
            f"\nNUTS, {args.chains} chains x 150 draws (150 warm-up), 10 neurons, 2,000 bins, "
            f"{row['devices']} devices; wall time includes compilation"
        )
        print(f"{'method':>11} {'used':>11} {'seconds':>8} {'min ESS':>8} {'ESS/s':>7}")
        for method, cell in row["nuts"].items():
            print(
                f"{method:>11} {cell['used']:>11} {cell['seconds']:>8.1f} {cell['ess']:>8.0f}"
                f" {cell['ess'] / cell['seconds']:>7.1f}"
            )


if __name__ == "__main__":
    main()
