"""ML fit of a coupled GLM network: probsnn vs NeMoS vs scikit-learn, side by side.

Setting (issue 2): 50 neurons, 20,000 bins, 6 raised-cosine bases over 100 lags (shared by the
couplings and the self-history), dense coupling. Every solver gets the same design matrix and is
run to its own tight tolerance; we report wall time (compiled, second call for the JAX ones)
and the log-likelihood gap to the best one, in nats per bin.

Run: python benchmarks/ml_fit.py [--neurons 50] [--bins 20000]
"""

from __future__ import annotations

import argparse
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from _timing import best_time

import probsnn as ps
from probsnn import kernels
from probsnn.design import build_design, params_to_coef
from probsnn.inference import fit_ml


def log_likelihood(x, y, coef):
    u = x @ coef
    return float(np.sum(-np.logaddexp(0, -(2 * y - 1) * u)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=50)
    parser.add_argument("--bins", type=int, default=20_000)
    parser.add_argument(
        "--sklearn-neurons", type=int, default=10, help="neurons scikit-learn fits (0: skip)"
    )
    args = parser.parse_args()

    basis = kernels.raised_cosine(6, first_peak=1, last_peak=30, length=100)
    spec = ps.Network(args.neurons, basis, dt=5e-3)
    truth = spec.init_params(jax.random.key(0), rate=10.0, weight_scale=0.5, refractory=2.0)
    spikes = ps.sample(spec, truth, jax.random.key(1), n_steps=args.bins)
    design = build_design(spec, spikes)
    x, y, mask = (np.asarray(a, np.float64) for a in (design.x, design.targets, design.mask))
    mask = mask.astype(bool)
    rows, n_cols = x.shape
    print(
        f"setting: N={args.neurons}, T={rows}, P={n_cols} columns ({basis.shape[0]} bases x "
        f"{basis.shape[1]} lags), mean rate {y.mean() / spec.dt:.1f} Hz, float32 unless noted"
    )
    results = {}

    fit_ml(spec, spikes)  # compile
    fit, seconds = best_time(lambda: fit_ml(spec, spikes), repeats=2)
    coef = np.asarray(params_to_coef(spec, fit.params), np.float64)
    results["probsnn fit_ml (Newton-CG)"] = (seconds, log_likelihood(x, y, coef))
    print(f"  probsnn: {fit.info.n_iterations} Newton iterations, converged={fit.info.converged}")

    import nemos as nmo

    # NeMoS runs L-BFGS to a fixed iteration cap; we raise the cap until it reaches probsnn's
    # log-likelihood within 1e-4 nats/bin and time that run (compiled: second call).
    features, targets = jnp.asarray(x[:, :-1], jnp.float32), jnp.asarray(y, jnp.float32)
    target_ll = results["probsnn fit_ml (Newton-CG)"][1]
    for maxiter in (100, 300, 1000, 3000):
        glm = nmo.glm.PopulationGLM(
            observation_model="Bernoulli",
            feature_mask=jnp.asarray(mask[:-1].astype(float)),
            solver_name="LBFGS",
            solver_kwargs={"tol": 1e-12, "maxiter": maxiter},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            glm.fit(features, targets)  # compile
            _, seconds = best_time(lambda glm=glm: glm.fit(features, targets), repeats=1)
        nemos_coef = np.vstack(
            [np.asarray(glm.coef_) * mask[:-1], np.asarray(glm.intercept_)[None]]
        )
        nemos_ll = log_likelihood(x, y, nemos_coef)
        print(
            f"  NeMoS L-BFGS maxiter={maxiter}: {seconds:.2f} s, gap "
            f"{(target_ll - nemos_ll) / rows:.2e} nats/bin"
        )
        if (target_ll - nemos_ll) / rows < 1e-4:
            break
    results[f"NeMoS PopulationGLM (L-BFGS, maxiter={maxiter})"] = (seconds, nemos_ll)

    if args.sklearn_neurons:
        from sklearn.linear_model import LogisticRegression

        # scikit-learn fits one neuron at a time: time a subset with its exact Newton solver and
        # scale to all neurons; the other neurons keep probsnn's coefficients for the likelihood.
        subset = range(min(args.sklearn_neurons, y.shape[1]))

        def sklearn_fit():
            fitted = coef.copy()
            for i in subset:
                cols = mask[:-1, i]
                model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10)
                model.fit(x[:, :-1][:, cols], y[:, i])
                fitted[:-1, i] = 0.0
                fitted[:-1][cols, i] = model.coef_[0]
                fitted[-1, i] = model.intercept_[0]
            return fitted

        sk_coef, seconds = best_time(sklearn_fit, repeats=1)
        scaled = seconds * y.shape[1] / len(subset)
        results[
            f"scikit-learn LogisticRegression (newton-cholesky, float64, "
            f"{len(subset)} neurons timed x{y.shape[1] / len(subset):g})"
        ] = (scaled, log_likelihood(x, y, sk_coef))

    best = max(ll for _, ll in results.values())
    ours = results["probsnn fit_ml (Newton-CG)"][0]
    print(f"{'solver':64s} {'seconds':>9s} {'gap nats/bin':>13s} {'probsnn speed-up':>17s}")
    for name, (seconds, ll) in results.items():
        print(f"{name:64s} {seconds:9.3f} {(best - ll) / rows:13.2e} {seconds / ours:16.1f}x")


if __name__ == "__main__":
    main()
