"""The NumPyro model p(x, h) and guide q(h‖x): densities, sampling, SVI out of the box."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numpyro import handlers
from numpyro.infer import SVI, Predictive, TraceGraph_ELBO
from numpyro.infer.util import log_density

import probsnn as ps
from conftest import make_network, random_inputs
from probsnn import kernels
from probsnn.inference.latent import multisample, variational
from probsnn.models import GLMPrior, HiddenSpikes, hidden_guide, hidden_network

VISIBLE = np.array([True, False, True, False, False])


def hidden_variant(kind):
    """The conftest network ``kind`` with neurons 0 and 2 visible, 1, 3, 4 hidden."""
    base = make_network(kind, 5)
    return ps.Network(
        5,
        base.synapse_basis,
        feedback_basis=base.feedback_basis,
        input_basis=base.input_basis,
        n_inputs=base.n_inputs,
        connectivity=base.connectivity,
        visible=VISIBLE,
    )


@pytest.mark.parametrize("kind", ["dense", "inputs"])
def test_model_and_guide_log_densities_split_the_joint(kind):
    """With h fixed: log p(x, h) of the model = ps.log_likelihood of the raster = ℓ + log q;
    the guide's log density = log q(h‖x); the deterministic raster holds data and h."""
    spec = hidden_variant(kind)
    params = spec.init_params(jax.random.key(0), rate=80.0, weight_scale=1.5)
    data = jax.random.bernoulli(jax.random.key(1), 0.2, (3, 30, 2)).astype(jnp.uint8)
    inputs = random_inputs(spec, jax.random.key(2), 30, n_trials=3)
    spikes = variational.sample_hidden(
        spec, params, data, key=jax.random.key(3), n_samples=1, inputs=inputs
    )[:, 0]
    hidden = spikes[..., ~VISIBLE]
    kwargs = {"inputs": inputs, "params": params}
    observed = []

    @jax.jit
    def densities(hidden):
        model_density, trace = log_density(hidden_network, (spec, data), kwargs, {"h": hidden})
        guide_density, _ = log_density(hidden_guide, (spec, data), kwargs, {"h": hidden})
        observed.append(trace["x"]["is_observed"])  # recorded while tracing
        return model_density, guide_density, trace["spikes"]["value"], trace["h"]["value"]

    model_density, guide_density, raster, latent = densities(hidden)
    terms = variational.variational_terms(spec, params, spikes, inputs)
    joint = ps.log_likelihood(spec, params, spikes, inputs)
    assert float(model_density) == pytest.approx(float(joint), rel=1e-5)
    assert float(guide_density) == pytest.approx(float(jnp.sum(terms.log_q)), rel=1e-5)
    np.testing.assert_array_equal(raster, spikes)
    np.testing.assert_array_equal(latent, hidden)
    assert observed == [True] and latent.shape == (3, 30, 3)


def test_hidden_spikes_samples_follow_their_log_prob():
    """T = 3, 3 hidden neurons (512 rasters): the frequencies of 40 000 draws of q(h‖x) match
    exp(log_prob) (chi-square, 0.1 % level); draws keep sample_shape and are not
    reparameterisable (TraceGraph_ELBO must add the score term)."""
    spec = hidden_variant("dense")
    params = spec.init_params(jax.random.key(0), rate=150.0, weight_scale=2.0)
    data = jnp.asarray([[[1, 0], [0, 1], [1, 1]]], jnp.float32)
    q = HiddenSpikes(spec, params, data)
    assert not q.has_rsample
    assert q.batch_shape == (1,) and q.event_shape == (3, 3)
    draws = q.sample(jax.random.key(1), (40_000,))
    assert draws.shape == (40_000, 1, 3, 3) and draws.dtype == jnp.uint8
    codes = np.asarray(draws).reshape(40_000, 9) @ (2 ** np.arange(9))
    observed = np.bincount(codes, minlength=512)
    configs = np.array(list(itertools.product([0, 1], repeat=9)))[:, ::-1]  # bit j = column j
    probability = np.exp(np.asarray(q.log_prob(jnp.asarray(configs.reshape(512, 1, 3, 3)))))[:, 0]
    assert probability.sum() == pytest.approx(1.0, abs=1e-4)
    expected = 40_000 * probability
    pooled = expected >= 5
    chi2 = np.sum((observed[pooled] - expected[pooled]) ** 2 / expected[pooled])
    assert chi2 < 1.5 * pooled.sum() + 50  # well below the 0.1 % point of χ²(df ≈ pooled)


@pytest.mark.slow
def test_svi_with_trace_graph_elbo_runs_out_of_the_box_and_shares_parameters():
    """SVI(hidden_network, hidden_guide, adam, TraceGraph_ELBO()) from the default param sites:
    one set of params (w, v, c, bias) serves model and guide, and 150 steps raise the exact ELBO."""
    spec = ps.Network(4, kernels.raw_lags(2), visible=np.array([True, True, False, False]))
    target = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 0], [1, 1], [0, 1]])
    svi = SVI(hidden_network, hidden_guide, optax.adam(0.05), TraceGraph_ELBO())
    result = svi.run(jax.random.key(0), 150, spec, target, progress_bar=False)
    assert set(result.params) == {"w", "v", "c", "bias"}
    initial = svi.get_params(svi.init(jax.random.key(0), spec, target))

    def exact_elbo(values):
        pre, post = np.nonzero(spec.connectivity)
        w = jnp.zeros((4, 4, 2)).at[pre, post].set(values["w"])
        params = ps.Params(w=w, v=values["v"], c=values["c"], bias=values["bias"])
        return float(multisample.exact_elbo(spec, params, target))

    assert exact_elbo(result.params) > exact_elbo(initial) + 3.0
    assert np.mean(result.losses[-20:]) < np.mean(result.losses[:20]) - 3.0


def test_predictive_on_the_guide_draws_hidden_rasters():
    spec = hidden_variant("dense")
    params = spec.init_params(jax.random.key(0), rate=100.0)
    data = np.zeros((2, 12, 2), np.uint8)
    draws = Predictive(hidden_guide, num_samples=3)(jax.random.key(1), spec, data, params=params)
    assert draws["h"].shape == (3, 2, 12, 3)
    assert draws["spikes"].shape == (3, 2, 12, 5)
    assert np.all(np.asarray(draws["spikes"])[..., VISIBLE] == 0)


def test_bad_arguments():
    spec = hidden_variant("dense")
    params = spec.init_params(jax.random.key(0))
    data = np.zeros((10, 2))
    with pytest.raises(TypeError, match="not a GLMPrior"):
        handlers.seed(hidden_guide, 0)(spec, data, params=GLMPrior.normal())
    with pytest.raises(ValueError, match=r"visible must have shape \(T, 2\) or \(n_trials, T, 2\)"):
        handlers.seed(hidden_network, 0)(spec, np.zeros((10, 5)), params=params)
    with pytest.raises(ValueError, match="at least one visible and one hidden"):
        handlers.seed(hidden_network, 0)(make_network("dense", 5), data)
    with pytest.raises(ValueError, match="binary"):
        handlers.seed(hidden_network, 0)(spec, np.full((10, 2), 0.5), params=params)
    with_inputs = hidden_variant("inputs")
    with pytest.raises(ValueError, match="inputs"):
        handlers.seed(hidden_network, 0)(with_inputs, data)
