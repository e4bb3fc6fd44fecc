"""ML fit of a coupled GLM network: probsnn vs NeMoS vs scikit-learn, side by side.

Setting (issue 2): 50 neurons, 20,000 bins, 6 raised-cosine bases over 100 lags (shared by the
couplings and the self-history), dense coupling. Every solver gets the same design matrix; we
report wall time (the JAX ones on a later call than the compiling one, except ``glm.fit``, below)
and the log-likelihood gap to the best solution any of them found, in nats per bin.

probsnn's Newton-CG and scikit-learn's Newton-Cholesky run to their tolerance. NeMoS's L-BFGS
stops at its iteration cap (``maxiter``) long before its gradient tolerance, so its time depends on
the cap: the script finds the crossing, the smallest cap whose fit is within ``--gap`` (1e-4)
nats/bin of the best log-likelihood (probsnn's or scikit-learn's), by stepping NeMoS's own
solver once and watching the gap fall, confirms it with ``glm.fit(maxiter=crossing)``, and times
NeMoS at that cap interleaved with probsnn round by round (``--repeats``), twice: ``glm.fit`` as
a user calls it (NeMoS 0.2 builds a new solver and so compiles its loop again on every call) and
the same solver loop alone, compiled once (second call), the figure without compilation.

Run: python benchmarks/ml_fit.py [--neurons 50] [--bins 20000] [--gap 1e-4]
(NeMoS: ``pip install -e ".[bench]"``, or beside the project's own jax:
``pip install --target DIR --no-deps nemos optimistix lazy_loader equinox lineax jaxtyping
wadler_lindig`` and ``PYTHONPATH=DIR``.)
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from _header import print_header
from _timing import best_time

import probsnn as ps
from probsnn import kernels
from probsnn.design import build_design, params_to_coef
from probsnn.inference import fit_ml


def log_likelihood(x, y, coef):
    u = x @ coef
    return float(np.sum(-np.logaddexp(0, -(2 * y - 1) * u)))


class NemosFit:
    """NeMoS's ``PopulationGLM`` (Bernoulli, L-BFGS) on the design matrix, at a given cap."""

    def __init__(self, x, y, mask, tol):
        import nemos as nmo

        self.nmo, self.x, self.y, self.mask, self.tol = nmo, x, y, mask, tol
        self.features = jnp.asarray(x[:, :-1], jnp.float32)
        self.targets = jnp.asarray(y, jnp.float32)
        self.feature_mask = jnp.asarray(mask[:-1].astype(float))

    def model(self, maxiter):
        return self.nmo.glm.PopulationGLM(
            observation_model="Bernoulli",
            feature_mask=self.feature_mask,
            solver_name="LBFGS",
            solver_kwargs={"tol": self.tol, "maxiter": maxiter},
        )

    def fit(self, glm):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "reached the maximum number of iterations"
            return jax.block_until_ready(glm.fit(self.features, self.targets).coef_)

    def result(self, glm):
        """(log-likelihood, L-BFGS steps taken) of a fitted model."""
        return self.log_likelihood(glm.coef_, glm.intercept_), int(glm.optim_info_.num_steps)

    def log_likelihood(self, coef, intercept):
        coef = np.vstack([np.asarray(coef) * self.mask[:-1], np.asarray(intercept)[None]])
        return log_likelihood(self.x, self.y, coef)

    def compiled_solver(self, glm):
        """NeMoS's solver loop alone, compiled once: ``glm.fit`` compiles its solver loop
        (``optimistix.minimise``) again on every call, since each call builds a new solver;
        this runs the solver ``glm.fit`` last built (same loss, cap and starting point) under
        one ``equinox.filter_jit``. Returns a function of no arguments giving the parameters."""
        import equinox as eqx
        from nemos.glm.params import GLMParams

        start = GLMParams(*glm.initialize_params(self.features, self.targets))
        run = eqx.filter_jit(glm.solver_run)

        def solve():
            return jax.block_until_ready(run(start, self.features, self.targets)[0])

        return solve


def find_crossing(nemos, best_ll, rows, args):
    """Smallest ``maxiter`` whose NeMoS fit is within ``args.gap`` nats/bin of ``best_ll``.

    L-BFGS with a Wolfe line search lowers the loss every step, so the gap falls monotonically:
    one pass of NeMoS's own solver step (``glm.solver_update``, the step ``glm.fit`` loops over)
    finds the first step below the gap, printing the gap at the ``--scan`` steps on the way; a
    ``glm.fit`` with that cap then confirms it (its cap raised by ``--resolution`` until it does,
    should the compiled loop round differently); with ``--maxiter`` only the confirmation runs.
    Returns (maxiter, fitted model)."""
    import equinox as eqx
    from nemos.glm.params import GLMParams

    glm = nemos.model(max(args.scan))
    user_params = glm.initialize_params(nemos.features, nemos.targets)
    state = glm.initialize_solver_and_state(nemos.features, nemos.targets, user_params)
    params = GLMParams(*user_params)
    step = eqx.filter_jit(glm.solver_update)
    sign = jnp.asarray(2 * nemos.y - 1, jnp.float32)
    feature_mask = nemos.feature_mask

    @jax.jit
    def ll(params):
        u = nemos.features @ (params.coef * feature_mask) + params.intercept
        return jnp.sum(jax.nn.log_sigmoid(sign * u))

    crossing, start = args.maxiter or None, time.perf_counter()
    for k in range(1, 0 if args.maxiter else max(args.scan) + 1):
        params, state, _ = step(params, state, nemos.features, nemos.targets)
        gap = (best_ll - float(ll(params))) / rows
        if k in args.scan or gap < args.gap:
            print(
                f"  NeMoS L-BFGS step {k:6d}: gap {gap:9.2e} nats/bin (float32 log-likelihood; "
                f"{time.perf_counter() - start:.0f} s stepping)",
                flush=True,
            )
        if gap < args.gap:
            crossing = k
            break
    if crossing is None:
        raise SystemExit(f"NeMoS did not reach {args.gap} nats/bin in {max(args.scan)} steps")
    maxiter = crossing
    while True:
        glm = nemos.model(maxiter)
        seconds = best_time(lambda glm=glm: nemos.fit(glm), repeats=1)[1]
        ll_fit, steps = nemos.result(glm)
        gap = (best_ll - ll_fit) / rows
        print(
            f"  glm.fit with maxiter={maxiter}: {steps} steps, gap {gap:.2e} nats/bin "
            f"({seconds:.1f} s)",
            flush=True,
        )
        if gap < args.gap:
            return maxiter, glm
        maxiter = int(np.ceil(maxiter * (1 + args.resolution)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=50)
    parser.add_argument("--bins", type=int, default=20_000)
    parser.add_argument(
        "--sklearn-neurons", type=int, default=10, help="neurons scikit-learn fits (0: skip)"
    )
    parser.add_argument("--gap", type=float, default=1e-4, help="nats/bin that count as equal")
    parser.add_argument(
        "--scan",
        type=int,
        nargs="+",
        default=[100, 300, 1000, 3000, 10000],
        help="L-BFGS steps at which the gap is printed; the last is the most tried",
    )
    parser.add_argument(
        "--resolution", type=float, default=0.02, help="step of the confirming fit's cap"
    )
    parser.add_argument(
        "--maxiter",
        type=int,
        default=0,
        help="skip the search: confirm and time NeMoS at this cap (a crossing found before)",
    )
    parser.add_argument("--nemos-tol", type=float, default=1e-12)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds")
    args = parser.parse_args()

    print_header(
        "ML fit of a coupled GLM network: probsnn vs NeMoS vs scikit-learn",
        {
            "probsnn": "fit_ml (Newton-CG, float32, defaults: tol=1e-7 nats/bin Newton decrement, "
            "max_iter=50); timed: the compiled call",
            "NeMoS": f"PopulationGLM(observation_model='Bernoulli', solver_name='LBFGS', "
            f"solver_kwargs={{'tol': {args.nemos_tol:g}, 'maxiter': the crossing}}), "
            "feature_mask = the network's couplings, float32, default optax.lbfgs "
            "(memory 10, zoom line search); timed: glm.fit (which compiles its solver loop on "
            "every call) and the solver loop alone compiled once (second call)",
            "scikit-learn": "LogisticRegression(C=inf, solver='newton-cholesky', tol=1e-10), "
            "float64, one neuron at a time; timed on --sklearn-neurons neurons and scaled",
        },
        packages=("nemos", "optax", "optimistix", "scikit-learn"),
    )
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

    def probsnn_fit():
        return fit_ml(spec, spikes)

    fit = probsnn_fit()  # compile
    fit, seconds = best_time(probsnn_fit, repeats=2)
    coef = np.asarray(params_to_coef(spec, fit.params), np.float64)
    probsnn_name = "probsnn fit_ml (Newton-CG)"
    results[probsnn_name] = (seconds, log_likelihood(x, y, coef))
    print(f"  probsnn: {fit.info.n_iterations} Newton iterations, converged={fit.info.converged}")

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

    # NeMoS's L-BFGS runs to its iteration cap: find the smallest cap within --gap nats/bin of
    # the best log-likelihood so far, then time it (second call) interleaved with probsnn.
    nemos = NemosFit(x, y, mask, args.nemos_tol)
    reference = max(ll for _, ll in results.values())
    print(f"NeMoS crossing: smallest maxiter within {args.gap:g} nats/bin of the best so far")
    maxiter, glm = find_crossing(nemos, reference, rows, args)  # glm.fit compiled
    solve = nemos.compiled_solver(glm)
    solved = solve()  # compile
    fit_name = f"NeMoS glm.fit (L-BFGS, maxiter={maxiter}; recompiles on every call)"
    solver_name = f"NeMoS solver loop alone, compiled once (maxiter={maxiter})"
    names = (probsnn_name, fit_name, solver_name)
    times = {name: [] for name in names}
    calls = {probsnn_name: probsnn_fit, fit_name: lambda: nemos.fit(glm), solver_name: solve}
    for round_ in range(args.repeats):
        for name in names:
            solved_or_fit, seconds = best_time(calls[name], repeats=1)
            times[name].append(seconds)
            if name == solver_name:
                solved = solved_or_fit
        ours = times[probsnn_name][-1]
        print(
            f"  round {round_ + 1}: probsnn {ours:.3f} s, NeMoS glm.fit {times[fit_name][-1]:.3f} "
            f"s ({times[fit_name][-1] / ours:.1f}x), NeMoS solver loop "
            f"{times[solver_name][-1]:.3f} s ({times[solver_name][-1] / ours:.1f}x)",
            flush=True,
        )
    nemos_ll, steps = nemos.result(glm)
    results[probsnn_name] = (min(times[probsnn_name]), results[probsnn_name][1])
    results[fit_name] = (min(times[fit_name]), nemos_ll)
    results[solver_name] = (
        min(times[solver_name]),
        nemos.log_likelihood(solved.coef, solved.intercept),
    )

    best = max(ll for _, ll in results.values())
    if best > reference:
        print(f"  (a NeMoS fit beat the reference by {(best - reference) / rows:.1e} nats/bin)")
    ours = results[probsnn_name][0]
    print(
        f"best time of {args.repeats} interleaved rounds (scikit-learn: one); gap to the best "
        "log-likelihood any solver reached"
    )
    print(f"{'solver':80s} {'seconds':>9s} {'gap nats/bin':>13s} {'probsnn speed-up':>17s}")
    for name, (seconds, ll) in results.items():
        print(f"{name:80s} {seconds:9.3f} {(best - ll) / rows:13.2e} {seconds / ours:16.1f}x")
    print(f"NeMoS at the {args.gap:g} nats/bin crossing ({maxiter} L-BFGS steps, {steps} taken):")
    for name in (fit_name, solver_name):
        per_round = [t / o for t, o in zip(times[name], times[probsnn_name], strict=True)]
        print(
            f"  {name.split(' (')[0]}: {results[name][0]:.3f} s = "
            f"{results[name][0] / ours:.1f}x probsnn (per round "
            f"{min(per_round):.1f}-{max(per_round):.1f}x)"
        )


if __name__ == "__main__":
    main()
