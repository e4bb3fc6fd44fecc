"""The NumPyro models: log density equals the library's likelihood; Predictive samples; the
design-matrix model equals the sequential one."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer import Predictive
from numpyro.infer.util import log_density

import probsnn as ps
from conftest import NETWORK_KINDS, make_network, random_inputs
from probsnn.design import build_design
from probsnn.models import GLMPrior, design_params, glm_design_model, glm_network


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_observed_log_density_equals_log_likelihood(kind):
    spec = make_network(kind)
    params = spec.init_params(jax.random.key(0), rate=60.0)
    inputs = random_inputs(spec, jax.random.key(1), 120, n_trials=2)
    spikes = ps.sample(spec, params, jax.random.key(2), 120, n_trials=2, inputs=inputs)
    density, _ = log_density(glm_network, (spec, spikes), {"inputs": inputs, "params": params}, {})
    expected = ps.log_likelihood(spec, params, spikes, inputs)
    assert float(density) == pytest.approx(float(expected), rel=1e-5)


def test_log_density_is_finite_for_huge_potentials():
    spec = make_network("dense", 3)
    params = spec.init_params(jax.random.key(0), weight_scale=0.0, refractory=0.0)
    params = params._replace(bias=jnp.array([1e4, -1e4, 1e4]))
    spikes = jnp.tile(jnp.array([1, 0, 0], jnp.uint8), (20, 1))
    density, _ = log_density(glm_network, (spec, spikes), {"params": params}, {})
    assert float(density) == pytest.approx(-20 * 1e4, rel=1e-6)
    assert float(density) == pytest.approx(float(ps.log_likelihood(spec, params, spikes)))


def test_predictive_samples_spike_trains_and_scan_density_matches():
    spec = make_network("inputs")
    params = spec.init_params(jax.random.key(0), rate=80.0)
    inputs = random_inputs(spec, jax.random.key(1), 100)
    kwargs = {"inputs": inputs, "params": params, "n_steps": 100, "n_trials": 3}
    draws = Predictive(glm_network, num_samples=2)(jax.random.key(3), spec, **kwargs)
    assert draws["spikes"].shape == (2, 3, 100, 5)
    assert draws["spikes_t"].shape == (2, 100, 3, 5)
    spikes = draws["spikes"][0]
    assert set(np.unique(np.asarray(spikes))) <= {0, 1}
    # The sequential (scan) log density of the sampled spikes equals the parallel likelihood.
    sequential, _ = log_density(glm_network, (spec,), kwargs, {"spikes_t": draws["spikes_t"][0]})
    parallel = ps.log_likelihood(spec, params, spikes, inputs)
    assert float(sequential) == pytest.approx(float(parallel), rel=1e-5)


def test_recursive_networks_sample_on_trace_states_with_the_same_density():
    """A recursive network (alpha synapses, its own exponential feedback, raised-cosine inputs):
    Predictive draws on decaying trace states, and the scan's log density of its draws equals
    the parallel likelihood of the same spikes."""
    spec = ps.Network(
        5,
        ps.kernels.recursive_alpha([3e-3, 10e-3], 1e-3),
        ps.kernels.recursive_exponential([4e-3], 1e-3),
        ps.kernels.raised_cosine(2, 1, 8),
        n_inputs=2,
    )
    params = spec.init_params(jax.random.key(0), rate=80.0, weight_scale=0.3)
    inputs = random_inputs(spec, jax.random.key(1), 200)
    kwargs = {"inputs": inputs, "params": params, "n_steps": 200, "n_trials": 3}
    draws = Predictive(glm_network, num_samples=1)(jax.random.key(3), spec, **kwargs)
    spikes = draws["spikes"][0]
    assert spikes.shape == (3, 200, 5) and 0.02 < float(spikes.mean()) < 0.5
    sequential, _ = log_density(glm_network, (spec,), kwargs, {"spikes_t": draws["spikes_t"][0]})
    parallel = ps.log_likelihood(spec, params, spikes, inputs)
    assert float(sequential) == pytest.approx(float(parallel), rel=1e-5)


def test_predictive_matches_the_fast_sampler_in_distribution():
    """Mean firing from Predictive and from ps.sample agree within sampling error."""
    spec = make_network("dense", 4)
    params = spec.init_params(jax.random.key(0), rate=100.0, weight_scale=1.5)
    draws = Predictive(glm_network, num_samples=1)(
        jax.random.key(1), spec, params=params, n_steps=1500, n_trials=8
    )["spikes"][0]
    fast = ps.sample(spec, params, jax.random.key(2), 1500, n_trials=8)
    a, b = np.asarray(draws, float), np.asarray(fast, float)
    # trial means are independent replicates of each sampler's rate
    diff = a.mean(axis=(1, 2)) - b.mean(axis=(1, 2))
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-3


def test_prior_and_param_modes():
    spec = make_network("sparse_separate_feedback")
    params = spec.init_params(jax.random.key(0))
    spikes = ps.sample(spec, params, jax.random.key(1), 80)
    prior = GLMPrior.normal(scale=0.5)
    trace = handlers.trace(handlers.seed(glm_network, 0)).get_trace(spec, spikes, params=prior)
    n_synapses = int(spec.connectivity.sum())
    assert trace["w"]["value"].shape == (n_synapses, 3)
    # log density = log prior + log likelihood of the scattered parameters
    values = {name: trace[name]["value"] for name in ("w", "v", "c", "bias")}
    density, _ = log_density(glm_network, (spec, spikes), {"params": prior}, values)
    pre, post = np.nonzero(spec.connectivity)
    w = jnp.zeros(spec.param_shapes.w).at[pre, post].set(values["w"])
    theta = ps.Params(w=w, v=values["v"], c=values["c"], bias=values["bias"])
    log_prior = sum(
        float(jnp.sum(d.log_prob(values[name])))
        for name, d in zip(("w", "v", "c", "bias"), prior, strict=True)
    )
    expected = log_prior + float(ps.log_likelihood(spec, theta, spikes))
    assert float(density) == pytest.approx(expected, rel=1e-5)
    # param mode: numpyro.param sites
    trace = handlers.trace(handlers.seed(glm_network, 0)).get_trace(spec, spikes)
    assert trace["w"]["type"] == "param" and trace["bias"]["value"].shape == (5,)
    # custom prior distributions are accepted
    sparse = GLMPrior(w=dist.Laplace(0, 0.1), v=prior.v, c=prior.c, bias=prior.bias)
    handlers.seed(glm_network, 0)(spec, spikes, params=sparse)


def test_model_bad_arguments():
    spec = make_network("dense")
    with pytest.raises(ValueError, match="n_steps is required"):
        handlers.seed(glm_network, 0)(spec, params=spec.init_params(jax.random.key(0)))
    with pytest.raises(TypeError, match="params"):
        handlers.seed(glm_network, 0)(spec, jnp.zeros((5, 5)), params={"w": 1})
    with pytest.raises(ValueError, match="binary"):
        handlers.seed(glm_network, 0)(spec, jnp.full((5, 5), 0.5))


def test_design_model_has_the_log_density_of_glm_network():
    """glm_design_model scores the same spikes on the design built once: same sites, same log
    density as glm_network under the same prior (empty groups aside)."""
    spec = make_network("sparse_separate_feedback")
    params = spec.init_params(jax.random.key(0), rate=60.0)
    spikes = ps.sample(spec, params, jax.random.key(1), 150, n_trials=2)
    prior = GLMPrior.normal(scale=1.5)
    design = build_design(spec, spikes)
    trace = handlers.trace(handlers.seed(design_params, 3)).get_trace(spec, prior)
    values = {k: site["value"] for k, site in trace.items() if site["type"] == "sample"}
    ours = jax.jit(lambda v: log_density(glm_design_model, (spec, design, prior), {}, v)[0])
    seeded = handlers.seed(glm_network, jax.random.key(0))  # its empty "c" site needs a key
    theirs = jax.jit(lambda v: log_density(seeded, (spec, spikes), {"params": prior}, v)[0])
    assert float(ours(values)) == pytest.approx(float(theirs(values)), rel=1e-5)


def test_models_do_not_import_inference():
    probe = (
        "import sys, probsnn.models;"
        "assert not [m for m in sys.modules if m.startswith('probsnn.inference')]"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
