"""Every public entry point of the core (``probsnn``) and of ``probsnn.models`` answers bad input
with a ValueError or TypeError that names the argument: no silent NaN, no deep JAX/NumPy error.

The tables below list the entry points once per class of bad input (issue 17): PRNG keys, empty
data, non-finite parameters and inputs, silent acceptance (complex values, non-binary spikes,
inputs a network does not have), unclear errors (another network's params, out-of-range
indices, requests too large to allocate) and option strings. Property-based tests (hypothesis)
draw the bad values: key-like objects that are not keys, NaN/inf at random positions of every
parameter field, non-binary spike values at random positions.
"""

from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import probsnn as ps
from probsnn import _checks, data, design, encoding, kernels, plot, stats, topology, wta
from probsnn.models import GLMPrior, energy, glm_design_model, glm_network, hidden_network

KEY = jax.random.key(0)
BASIS = kernels.raised_cosine(2, 1, 4)
SPEC = ps.Network(3, BASIS)
PARAMS = SPEC.init_params(KEY)
SPEC_IN = ps.Network(3, BASIS, input_basis=kernels.raw_lags(2), n_inputs=2)
PARAMS_IN = SPEC_IN.init_params(KEY)
HIDDEN = ps.Network(3, BASIS, visible=np.array([True, True, False]))
WSPEC = wta.WTANetwork(2, 2, BASIS)
WPARAMS = WSPEC.init_params(KEY)
ESPEC = energy.EnergyNetwork((2, 3, 2))
SPIKES = (np.arange(24).reshape(8, 3) % 5 == 0).astype(np.uint8)  # (T=8, N=3)
INPUTS = np.linspace(-1.0, 1.0, 16, dtype=np.float32).reshape(8, 2)  # (T=8, M=2)
ONE_HOT = np.zeros((8, 2, 2), np.uint8)
ONE_HOT[::3, 0, 1] = 1
HAS_SPIKE = SPIKES.copy()
P = np.full(SPIKES.shape, 0.1)
FAST = settings(max_examples=15, deadline=None, derandomize=True)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _song(key=KEY, **options):
    from probsnn.experiments import song_experiment
    from probsnn.inference.plasticity.stdp import pair_stdp

    options = {"n_inputs": 2, "duration_s": 1, "n_inhibitory": 0, **options}
    return song_experiment(key, pair_stdp(w_max=0.015), **options)


class _Check(NamedTuple):
    observed: np.ndarray
    predictive: np.ndarray
    pvalue: np.ndarray
    grid: np.ndarray


# ---------------------------------------------------------------------------------------------
# Keys: every function that takes a PRNG key refuses an int seed (showing jax.random.key(0)),
# float arrays, strings and batches of keys.

KEY_TAKERS = {
    "sample": lambda k: ps.sample(SPEC, PARAMS, k, 4),
    "Network.init_params": lambda k: SPEC.init_params(k),
    "step": lambda k: ps.step(SPEC, PARAMS, ps.init_state(SPEC), k),
    "WTANetwork.init_params": lambda k: WSPEC.init_params(k),
    "wta.sample": lambda k: wta.sample(WSPEC, WPARAMS, k, 4),
    "wta.step": lambda k: wta.step(WSPEC, WPARAMS, wta.init_wta_state(WSPEC), k),
    "poisson_spikes": lambda k: encoding.poisson_spikes(k, 10.0, 1e-3, (4, 2)),
    "poisson_times": lambda k: encoding.poisson_times(k, 10.0, 1.0),
    "thinned_times": lambda k: encoding.thinned_times(k, lambda t: 0 * t + 5.0, 10.0, 1.0),
    "rate_encode": lambda k: encoding.rate_encode(k, np.full(3, 0.5), 4, dt=1e-3, max_rate=50.0),
    "population_encode": lambda k: encoding.population_encode(
        k, np.full(2, 0.5), 4, 3, dt=1e-3, max_rate=50.0
    ),
    "synchrony_encode": lambda k: encoding.synchrony_encode(
        k, np.full(2, 0.5), 4, 3, dt=1e-3, rate=20.0
    ),
    "time_rescaling": lambda k: stats.time_rescaling(HAS_SPIKE, P, key=k),
    "time_rescaling_glm": lambda k: stats.time_rescaling_glm(SPEC, PARAMS, HAS_SPIKE, key=k),
    "energy.init_params": lambda k: energy.init_params(ESPEC, k),
    "song_experiment": _song,
}
BAD_KEYS = {
    "int seed": 0,
    "numpy int": np.int64(3),
    "float array": jnp.zeros(2),
    "uint32 of shape (3,)": np.zeros(3, np.uint32),
    "string": "seed",
    "batch of keys": jax.random.split(KEY, 2),
}


@pytest.mark.parametrize("bad", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
@pytest.mark.parametrize("call", list(KEY_TAKERS.values()), ids=list(KEY_TAKERS))
def test_every_key_taker_refuses_what_is_not_one_prng_key(call, bad):
    with pytest.raises(TypeError, match=r"key must be a (single )?PRNG key"):
        call(bad)


@pytest.mark.parametrize("call", list(KEY_TAKERS.values()), ids=list(KEY_TAKERS))
def test_an_int_seed_is_answered_with_how_to_make_a_key(call):
    with pytest.raises(TypeError, match=r"pass jax\.random\.key\(7\) instead"):
        call(7)


@FAST
@given(
    bad=st.one_of(
        st.integers(),
        st.floats(allow_nan=True),
        st.text(max_size=3),
        st.none(),
        hnp.arrays(np.float32, st.integers(1, 4)),
        hnp.arrays(np.uint32, st.sampled_from([(1,), (3,), (2, 2)])),
        hnp.arrays(np.int32, (2,)),
    ),
    call=st.sampled_from(["sample", "Network.init_params", "poisson_spikes", "step"]),
)
def test_random_key_like_objects_are_refused(bad, call):
    with pytest.raises(TypeError, match="key must be a"):
        KEY_TAKERS[call](bad)


def test_legacy_and_typed_keys_both_work():
    legacy = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(
        ps.sample(SPEC, PARAMS, legacy, 5), ps.sample(SPEC, PARAMS, np.asarray(legacy), 5)
    )
    assert encoding.poisson_spikes(KEY, 10.0, 1e-3, (5, 2)).shape == (5, 2)


# ---------------------------------------------------------------------------------------------
# Empty data: no bins, no trials, no neurons → ValueError naming the argument (before: a
# ZeroDivisionError deep in JAX, or NaN).

E_T = np.zeros((0, 3), np.uint8)  # T = 0
E_R = np.zeros((0, 8, 3), np.uint8)  # zero trials
E_N = np.zeros((8, 0), np.uint8)  # zero neurons

EMPTY = {
    "potentials T=0": (lambda: ps.potentials(SPEC, PARAMS, E_T), "spikes"),
    "log_likelihood T=0": (lambda: ps.log_likelihood(SPEC, PARAMS, E_T), "spikes"),
    "log_likelihood 0 trials": (lambda: ps.log_likelihood(SPEC, PARAMS, E_R), "spikes"),
    "log_likelihood inputs": (
        lambda: ps.log_likelihood(SPEC_IN, PARAMS_IN, E_T, np.zeros((0, 2))),
        "spikes",
    ),
    "traces T=0": (lambda: ps.traces(SPEC, E_T), "spikes"),
    "filter_spikes T=0": (lambda: kernels.filter_spikes(E_T, BASIS), "spikes"),
    "filter_spikes N=0": (lambda: kernels.filter_spikes(E_N, BASIS), "spikes"),
    "build_design T=0": (lambda: design.build_design(SPEC, E_T), "spikes"),
    "psth T=0": (lambda: stats.psth(E_T, dt=1e-3), "spikes"),
    "psth 0 trials": (lambda: stats.psth(E_R, dt=1e-3), "spikes"),
    "psth N=0": (lambda: stats.psth(E_N, dt=1e-3), "spikes"),
    "isi_histogram": (lambda: stats.isi_histogram(E_T, 3), "spikes"),
    "interspike_intervals": (lambda: stats.interspike_intervals(E_R), "spikes"),
    "cv": (lambda: stats.cv(E_T), "spikes"),
    "fano_factor": (lambda: stats.fano_factor(np.zeros((2, 0, 3))), "spikes"),
    "cross_correlogram": (lambda: stats.cross_correlogram(E_N, 2), "spikes"),
    "time_rescaling": (lambda: stats.time_rescaling(E_T, np.zeros((0, 3))), "spikes"),
    "rate_decode": (lambda: encoding.rate_decode(E_T, dt=1e-3, max_rate=10.0), "spikes"),
    "latency_decode": (lambda: encoding.latency_decode(E_T, dt=1e-3), "spikes"),
    "phase_decode": (lambda: encoding.phase_decode(E_T, period=4), "spikes"),
    "population_decode": (
        lambda: encoding.population_decode(np.zeros((0, 4)), 2, dt=1e-3, max_rate=10.0),
        "spikes",
    ),
    "synchrony_decode": (lambda: encoding.synchrony_decode(np.zeros((0, 4)), 2), "spikes"),
    "rate_encode F=0": (
        lambda: encoding.rate_encode(KEY, np.zeros(0), 4, dt=1e-3, max_rate=10.0),
        "values",
    ),
    "latency_encode 0 items": (
        lambda: encoding.latency_encode(np.zeros((0, 3)), 4, dt=1e-3),
        "values",
    ),
    "phase_encode F=0": (lambda: encoding.phase_encode(np.zeros(0), 4, period=2), "values"),
    "wta.potentials T=0": (
        lambda: wta.potentials(WSPEC, WPARAMS, np.zeros((0, 2, 2), np.uint8)),
        "spikes",
    ),
    "wta.log_likelihood 0 trials": (
        lambda: wta.log_likelihood(WSPEC, WPARAMS, np.zeros((0, 8, 2, 2), np.uint8)),
        "spikes",
    ),
    "unbin_spikes": (lambda: data.unbin_spikes(E_T, 1e-3), "spikes"),
    "bin_spike_times no neuron": (
        lambda: data.bin_spike_times(np.zeros((0, 2)), 1e-3, 1.0),
        "times",
    ),
    "plot.raster": (lambda: plot.raster(E_T), "spikes"),
    "plot.kernels": (lambda: plot.kernels(np.zeros((2, 0))), "kernels"),
    "glm_network T=0": (lambda: glm_network(SPEC, E_T, params=PARAMS), "spikes"),
    "hidden_network T=0": (
        lambda: hidden_network(HIDDEN, np.zeros((0, 2), np.uint8), params=PARAMS),
        "visible",
    ),
    "energy.check_batch": (lambda: energy.check_batch(ESPEC, np.zeros((0, 2))), "inputs"),
}


@pytest.mark.parametrize("call,name", list(EMPTY.values()), ids=list(EMPTY))
def test_empty_data_is_refused_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


# ---------------------------------------------------------------------------------------------
# Non-finite parameters and inputs, and scalar options that would make parameters non-finite.


def _with(params, field, index, value):
    array = np.array(getattr(params, field), dtype=np.float32)
    array.flat[index % array.size] = value
    return params._replace(**{field: jnp.asarray(array)})


PARAM_USERS = {
    "check_params": lambda p: SPEC_IN.check_params(p),
    "potentials": lambda p: ps.potentials(SPEC_IN, p, SPIKES, INPUTS),
    "log_likelihood": lambda p: ps.log_likelihood(SPEC_IN, p, SPIKES, INPUTS),
    "sample": lambda p: ps.sample(SPEC_IN, p, KEY, 8, inputs=INPUTS),
    "step": lambda p: ps.step(SPEC_IN, p, ps.init_state(SPEC_IN), KEY, INPUTS[0]),
    "time_rescaling_glm": lambda p: stats.time_rescaling_glm(SPEC_IN, p, SPIKES, INPUTS),
    "coupling_kernels": lambda p: SPEC_IN.coupling_kernels(p),
    "glm_network": lambda p: glm_network(SPEC_IN, SPIKES, inputs=INPUTS, params=p),
}


@FAST
@given(
    field=st.sampled_from(ps.Params._fields),
    index=st.integers(0, 10**6),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    user=st.sampled_from(sorted(PARAM_USERS)),
)
def test_nan_or_inf_anywhere_in_params_is_named_by_field(field, index, value, user):
    bad = _with(PARAMS_IN, field, index, value)
    with pytest.raises(ValueError, match=rf"params\.{field} must be finite"):
        PARAM_USERS[user](bad)


@FAST
@given(
    field=st.sampled_from(["w", "v", "bias"]),  # c is empty: the network has no inputs
    index=st.integers(0, 10**6),
    user=st.sampled_from(["log_likelihood", "sample", "potentials"]),
)
def test_nan_in_wta_params_is_named_by_field(field, index, user):
    bad = _with(WPARAMS, field, index, np.nan)
    call = {
        "log_likelihood": lambda: wta.log_likelihood(WSPEC, bad, ONE_HOT),
        "sample": lambda: wta.sample(WSPEC, bad, KEY, 4),
        "potentials": lambda: wta.potentials(WSPEC, bad, ONE_HOT),
    }[user]
    with pytest.raises(ValueError, match=rf"params\.{field} must be finite"):
        call()


NAN, INF = float("nan"), float("inf")
NON_FINITE = {
    "init_params weight_scale nan": (
        lambda: SPEC.init_params(KEY, weight_scale=NAN),
        "weight_scale",
    ),
    "init_params weight_scale inf": (
        lambda: SPEC.init_params(KEY, weight_scale=INF),
        "weight_scale",
    ),
    "init_params weight_scale < 0": (
        lambda: SPEC.init_params(KEY, weight_scale=-1.0),
        "weight_scale",
    ),
    "init_params refractory nan": (lambda: SPEC.init_params(KEY, refractory=NAN), "refractory"),
    "init_params rate inf": (lambda: SPEC.init_params(KEY, rate=INF), "rate"),
    "wta init_params weight_scale": (
        lambda: WSPEC.init_params(KEY, weight_scale=NAN),
        "weight_scale",
    ),
    "wta init_params refractory": (lambda: WSPEC.init_params(KEY, refractory=INF), "refractory"),
    "energy init_params gain": (lambda: energy.init_params(ESPEC, KEY, gain=NAN), "gain"),
    "raised_cosine last_peak": (lambda: kernels.raised_cosine(3, 1, INF), "last_peak"),
    "raised_cosine first_peak": (lambda: kernels.raised_cosine(3, NAN, 8), "first_peak"),
    "exponential tau": (lambda: kernels.exponential([NAN], 5, 1e-3), "time_constants"),
    "GLMPrior bias_loc": (lambda: GLMPrior.normal(bias_loc=NAN), "bias_loc"),
    "random_sparse density": (lambda: topology.random_sparse(3, NAN), "density"),
    "psth bandwidth": (lambda: stats.psth(SPIKES, dt=1e-3, bandwidth=INF), "bandwidth"),
    "psth level": (lambda: stats.psth(SPIKES, dt=1e-3, level=NAN), "level"),
    "potentials inputs": (
        lambda: ps.potentials(SPEC_IN, PARAMS_IN, SPIKES, np.where(INPUTS > 0, NAN, INPUTS)),
        "inputs",
    ),
    "sample inputs": (lambda: ps.sample(SPEC_IN, PARAMS_IN, KEY, 8, inputs=INPUTS * INF), "inputs"),
    "step input_t": (
        lambda: ps.step(SPEC_IN, PARAMS_IN, ps.init_state(SPEC_IN), KEY, np.array([NAN, 0.0])),
        "input_t",
    ),
    "filter_spikes signal": (lambda: kernels.filter_spikes(np.full((4, 2), NAN), BASIS), "spikes"),
    "filter_spikes basis": (lambda: kernels.filter_spikes(SPIKES, BASIS * NAN), "basis"),
    "combine weights": (lambda: kernels.combine(np.array([NAN, 1.0]), BASIS), "weights"),
    "poisson_spikes rate": (lambda: encoding.poisson_spikes(KEY, NAN, 1e-3, (4, 2)), "rate"),
    "rate_encode values": (
        lambda: encoding.rate_encode(KEY, np.array([NAN]), 4, dt=1e-3, max_rate=10.0),
        "values",
    ),
    "tuning_rates values": (
        lambda: encoding.tuning_rates(np.array([INF]), 3, max_rate=10.0),
        "values",
    ),
    "time_rescaling p": (lambda: stats.time_rescaling(HAS_SPIKE, P * NAN), "p"),
    "unbin_spikes t_start": (lambda: data.unbin_spikes(SPIKES, 1e-3, t_start=NAN), "t_start"),
    "bin_spike_times t_start": (
        lambda: data.bin_spike_times([[0.1]], 1e-3, 1.0, t_start=INF),
        "t_start",
    ),
    "energy check_batch": (lambda: energy.check_batch(ESPEC, np.full((1, 2), INF)), "inputs"),
    "plot.kernels": (lambda: plot.kernels(np.array([1.0, NAN])), "kernels"),
    "song_experiment g_inhibitory": (lambda: _song(g_inhibitory=NAN), "g_inhibitory"),
    "song_experiment input_rate_hz": (lambda: _song(input_rate_hz=-1.0), "input_rate_hz"),
}


@pytest.mark.parametrize("call,name", list(NON_FINITE.values()), ids=list(NON_FINITE))
def test_non_finite_values_are_refused_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


# ---------------------------------------------------------------------------------------------
# Silent acceptance: complex values lost their imaginary part, inputs a network does not have
# were ignored, spikes of 2 were scored, integer weights cast the basis to integers.

C = np.complex64(1 + 1j)
COMPLEX = {
    "potentials spikes": (lambda: ps.potentials(SPEC, PARAMS, SPIKES * C), "spikes"),
    "potentials inputs": (lambda: ps.potentials(SPEC_IN, PARAMS_IN, SPIKES, INPUTS * C), "inputs"),
    "sample inputs": (lambda: ps.sample(SPEC_IN, PARAMS_IN, KEY, 8, inputs=INPUTS * C), "inputs"),
    "check_params": (
        lambda: SPEC.check_params(PARAMS._replace(bias=PARAMS.bias.astype(jnp.complex64))),
        "params.bias",
    ),
    "filter_spikes": (lambda: kernels.filter_spikes(SPIKES * C, BASIS), "spikes"),
    "combine weights": (lambda: kernels.combine(np.array([1, 2]) * C, BASIS), "weights"),
    "bernoulli_log_prob spikes": (lambda: ps.bernoulli_log_prob(SPIKES * C, np.zeros(3)), "spikes"),
    "bernoulli_log_prob potentials": (
        lambda: ps.bernoulli_log_prob(SPIKES, np.zeros(3) * C),
        "potentials",
    ),
    "poisson_spikes rate": (lambda: encoding.poisson_spikes(KEY, 10 * C, 1e-3, (4, 2)), "rate"),
    "rate_encode values": (
        lambda: encoding.rate_encode(KEY, np.full(2, 0.5) * C, 4, dt=1e-3, max_rate=10.0),
        "values",
    ),
    "tuning_rates values": (
        lambda: encoding.tuning_rates(np.full(2, 0.5) * C, 3, max_rate=10.0),
        "values",
    ),
    "time_rescaling p": (lambda: stats.time_rescaling(HAS_SPIKE, P * C), "p"),
    "pad_times": (lambda: data.pad_times([np.array([0.1, 0.2]) * C]), "times"),
    "unbin_spikes": (lambda: data.unbin_spikes(SPIKES * C, 1e-3), "spikes"),
    "plot.connectivity": (lambda: plot.connectivity(np.eye(2) * C), "strength"),
    "energy check_batch": (lambda: energy.check_batch(ESPEC, np.ones((1, 2)) * C), "inputs"),
    "wta.symbol_probabilities": (lambda: wta.symbol_probabilities(np.ones(2) * C), "potentials"),
    "coef_to_params": (lambda: design.coef_to_params(SPEC, np.ones((7, 3)) * C), "coef"),
}


@pytest.mark.parametrize("call,name", list(COMPLEX.values()), ids=list(COMPLEX))
def test_complex_values_are_refused_not_truncated(call, name):
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        call()


def test_step_refuses_inputs_the_network_does_not_have_and_requires_those_it_has():
    with pytest.raises(ValueError, match="input_t was given but the network has n_inputs=0"):
        ps.step(SPEC, PARAMS, ps.init_state(SPEC), KEY, np.zeros(2))
    with pytest.raises(ValueError, match=r"input_t of shape \(2,\) is required"):
        ps.step(SPEC_IN, PARAMS_IN, ps.init_state(SPEC_IN), KEY)
    with pytest.raises(ValueError, match=r"input_t must have shape \(4, 2\)"):
        ps.step(SPEC_IN, PARAMS_IN, ps.init_state(SPEC_IN, (4,)), KEY, np.zeros(2))
    with pytest.raises(ValueError, match="input_t was given"):
        wta.step(WSPEC, WPARAMS, wta.init_wta_state(WSPEC), KEY, np.zeros(1))


def _binary_users(spikes):
    """Entry points that read 0/1 spikes, each called with ``spikes`` ``(T=8, N=3)``."""
    return {
        "bernoulli_log_prob": lambda: ps.bernoulli_log_prob(spikes, np.zeros(3)),
        "log_likelihood": lambda: ps.log_likelihood(SPEC, PARAMS, spikes),
        "potentials": lambda: ps.potentials(SPEC, PARAMS, spikes),
        "build_design": lambda: design.build_design(SPEC, spikes),
        "psth": lambda: stats.psth(spikes, dt=1e-3),
        "cross_correlogram": lambda: stats.cross_correlogram(spikes, 2),
        "time_rescaling": lambda: stats.time_rescaling(spikes, P),
        "rate_decode": lambda: encoding.rate_decode(spikes, dt=1e-3, max_rate=10.0),
        "plot.raster": lambda: plot.raster(spikes),
        "glm_network": lambda: glm_network(SPEC, spikes, params=PARAMS),
        "sample clamp": lambda: ps.sample(HIDDEN, PARAMS, KEY, 8, clamp=spikes[:, :2]),
        "hidden_network": lambda: hidden_network(HIDDEN, spikes[:, :2], params=PARAMS),
        "step clamp_t": lambda: ps.step(SPEC, PARAMS, ps.init_state(SPEC), KEY, None, spikes[0]),
    }


NAMES = {"sample clamp": "clamp", "hidden_network": "visible", "step clamp_t": "clamp_t"}


@FAST
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(
            lambda v: np.float32(v) not in (0.0, 1.0)
        ),
        st.sampled_from([2.0, -1.0, 0.5]),
    ),
    row=st.integers(0, 7),
    column=st.integers(0, 1),
    user=st.sampled_from(sorted(_binary_users(SPIKES))),
)
def test_non_binary_spikes_are_refused_at_any_position(value, row, column, user):
    spikes = SPIKES.astype(np.float32)
    spikes[row, column] = value
    name = NAMES.get(user, "spikes")
    with pytest.raises(ValueError, match=rf"\b{name} must be binary"):
        _binary_users(spikes)[user]()


def test_integer_spikes_of_two_are_refused_by_bernoulli_log_prob():
    with pytest.raises(ValueError, match=r"spikes must be binary .* found the value 2"):
        ps.bernoulli_log_prob(jnp.array([2]), jnp.array([0.0]))


def test_wta_spikes_must_be_one_hot():
    two_symbols = np.ones((8, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="spikes must be one-hot"):
        wta.log_likelihood(WSPEC, WPARAMS, two_symbols)
    with pytest.raises(ValueError, match="spikes must be one-hot"):
        wta.wta_log_prob(two_symbols, np.zeros((8, 2, 2)))
    with pytest.raises(ValueError, match="clamp_t must be one-hot"):
        wta.step(WSPEC, WPARAMS, wta.init_wta_state(WSPEC), KEY, None, two_symbols[0])


def test_combine_with_integer_weights_keeps_the_basis_real():
    kernel = kernels.combine(np.array([1, 2]), BASIS)
    assert jnp.issubdtype(kernel.dtype, jnp.floating)
    np.testing.assert_allclose(kernel, np.array([1.0, 2.0]) @ BASIS, rtol=1e-6)
    kernel = kernels.combine(np.array([True, False]), BASIS)
    np.testing.assert_allclose(kernel, BASIS[0], rtol=1e-6)


def test_python_lists_are_accepted_like_arrays():
    spikes = SPIKES.tolist()
    np.testing.assert_allclose(
        kernels.filter_spikes(spikes, BASIS.tolist()), kernels.filter_spikes(SPIKES, BASIS)
    )
    np.testing.assert_allclose(
        kernels.combine([1.0, 2.0], BASIS), kernels.combine(np.array([1.0, 2.0]), BASIS)
    )
    np.testing.assert_allclose(
        ps.bernoulli_log_prob([1, 0], [0.5, -0.5]),
        ps.bernoulli_log_prob(np.array([1, 0]), np.array([0.5, -0.5], np.float32)),
    )
    np.testing.assert_allclose(
        ps.log_likelihood(SPEC, PARAMS, spikes), ps.log_likelihood(SPEC, PARAMS, SPIKES)
    )


def test_lists_of_strings_are_refused_clearly():
    with pytest.raises(TypeError, match="weights must be a real array"):
        kernels.combine(["a", "b"], BASIS)
    with pytest.raises(TypeError, match="spikes"):
        ps.bernoulli_log_prob(["a"], [0.0])
    with pytest.raises(TypeError, match="potentials must be a real array"):
        ps.bernoulli_log_prob([1], ["a"])


def test_shapes_that_do_not_broadcast_are_named():
    with pytest.raises(
        ValueError, match=r"spikes of shape \(8, 3\) and potentials of shape \(2,\)"
    ):
        ps.bernoulli_log_prob(SPIKES, np.zeros(2))


# ---------------------------------------------------------------------------------------------
# Unclear errors: another network's params, another network's state, out-of-range indices,
# messages naming the wrong argument, requests too large to allocate.


def test_step_names_params_and_state_of_another_network():
    other = ps.Network(4, BASIS).init_params(KEY)
    with pytest.raises(ValueError, match=r"params\.w must have shape \(3, 3, 2\)"):
        ps.step(SPEC, other, ps.init_state(SPEC), KEY)
    with pytest.raises(ValueError, match=r"state\.spikes must have shape"):
        ps.step(SPEC, PARAMS, ps.init_state(ps.Network(4, BASIS)), KEY)
    with pytest.raises(TypeError, match=r"state must be a probsnn\.SamplerState"):
        ps.step(SPEC, PARAMS, (np.zeros((4, 3)), np.zeros((0, 0)), 0), KEY)
    with pytest.raises(TypeError, match=r"params must be a probsnn\.Params"):
        ps.step(SPEC, WPARAMS, ps.init_state(SPEC), KEY)


PSTH = stats.psth(SPIKES, dt=1e-3)
ISI = stats.isi_histogram(SPIKES, 3)
CHECK = _Check(np.ones((8, 3)), np.ones((5, 8, 3)), np.full(3, 0.5), np.arange(8) * 1e-3)
INDICES = {
    "psth": (lambda i: plot.psth(PSTH, neurons=[0, i]), "neurons"),
    "isi": (lambda i: plot.isi(ISI, neuron=i), "neuron"),
    "raster trial": (lambda i: plot.raster(SPIKES, trial=i), "trial"),
    "raster neuron": (lambda i: plot.raster(SPIKES[None], by="trial", neuron=i), "neuron"),
    "psth_check": (lambda i: plot.psth_check(CHECK, neurons=[i]), "neurons"),
    "isi_check": (lambda i: plot.isi_check(CHECK, neuron=i), "neuron"),
}


@pytest.mark.parametrize("index", [3, -1, 10**9])
@pytest.mark.parametrize("call,name", list(INDICES.values()), ids=list(INDICES))
def test_plot_helpers_refuse_out_of_range_indices(call, name, index):
    with pytest.raises(ValueError, match=rf"{name}(\[\d\])? must be in \[0, \d\)"):
        call(index)


@pytest.mark.parametrize("call,name", list(INDICES.values()), ids=list(INDICES))
def test_plot_helpers_refuse_non_integer_indices(call, name):
    with pytest.raises(TypeError, match=rf"{name}(\[\d\])? must be an integer index"):
        call(0.5)


def test_messages_name_the_argument_that_is_wrong():
    with pytest.raises(ValueError, match="last_peak must be finite"):
        kernels.raised_cosine(3, 1, float("inf"))
    with pytest.raises(ValueError, match="first_peak must be >= 0"):
        kernels.raised_cosine(3, -1, 8)
    with pytest.raises(ValueError, match="coef must have the design's shape"):
        design.coef_to_params(SPEC, np.zeros((3, 3)))
    with pytest.raises(TypeError, match=r"design must be a probsnn\.design\.Design"):
        glm_design_model(SPEC, np.zeros((8, 7)), GLMPrior.normal())
    with pytest.raises(TypeError, match="rate_fn must be a function"):
        encoding.thinned_times(KEY, 5.0, 10.0, 1.0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        topology.random_sparse(3, 0.5, seed=1.5)
    with pytest.raises(ValueError, match="recording must be 1 or 2"):
        data.load_grasshopper(True)


HUGE = {
    "sample": (lambda: ps.sample(SPEC, PARAMS, KEY, 10**6, 10**6), "sampled spikes"),
    "wta.sample": (lambda: wta.sample(WSPEC, WPARAMS, KEY, 10**6, 10**6), "sampled spikes"),
    "glm_network": (
        lambda: numpyro.handlers.seed(glm_network, 0)(
            SPEC, params=PARAMS, n_steps=10**6, n_trials=10**6
        ),
        "sampled spikes",
    ),
    "poisson_spikes": (lambda: encoding.poisson_spikes(KEY, 1.0, 1e-3, (10**6, 10**6)), "spikes"),
    "poisson_times": (
        lambda: encoding.poisson_times(KEY, 1.0, 1.0, shape=(10**5,), max_spikes=10**5),
        "spike times",
    ),
    "thinned_times": (
        lambda: encoding.thinned_times(
            KEY, jnp.sin, 1.0, 1.0, shape=(10**5,), max_candidates=10**5
        ),
        "candidate times",
    ),
    "latency_encode": (lambda: encoding.latency_encode(np.ones(10**3), 10**7, dt=1e-3), "spikes"),
    "raised_cosine": (lambda: kernels.raised_cosine(3, 1, 1e12), "basis"),
    "raised_cosine absurd": (lambda: kernels.raised_cosine(3, 1, 1e300), "basis"),
    "raw_lags": (lambda: kernels.raw_lags(10**5), "basis"),
    "topology.dense": (lambda: topology.dense(10**5), "connectivity"),
    "Network": (lambda: ps.Network(10**5, BASIS), "synaptic weights"),
    "bin_spike_times": (lambda: data.bin_spike_times([[0.5]], 1e-12, 1.0), "binned spikes"),
    "psth bandwidth": (lambda: stats.psth(SPIKES, dt=1e-3, bandwidth=1e6), "smoothing window"),
}


@pytest.mark.parametrize("call,what", list(HUGE.values()), ids=list(HUGE))
def test_requests_too_large_to_allocate_fail_at_once(call, what):
    with pytest.raises(ValueError, match=rf"{what}.* elements .* reduce the sizes"):
        call()


@pytest.mark.parametrize(
    "call,what",
    [
        (lambda: design.build_design(SPEC, SPIKES), "design matrix"),
        (lambda: kernels.filter_spikes(SPIKES, BASIS), "traces"),
        (lambda: stats.isi_histogram(SPIKES, 100), "ISI histogram"),
        (lambda: stats.cross_correlogram(SPIKES, 7), "correlograms"),
        (lambda: data.unbin_spikes(SPIKES * 60, 1e-3), "spike times"),
    ],
    ids=["build_design", "filter_spikes", "isi_histogram", "cross_correlogram", "unbin_spikes"],
)
def test_size_guards_run_before_the_allocation(monkeypatch, call, what):
    monkeypatch.setattr(_checks, "MAX_ELEMENTS", 20)
    with pytest.raises(ValueError, match=rf"{what}.* would hold"):
        call()


# ---------------------------------------------------------------------------------------------
# Option strings: a wrong one lists the valid ones; a non-string is a TypeError.

OPTIONS = {
    "filter_spikes method": (lambda v: kernels.filter_spikes(SPIKES, BASIS, v), "method", "fft"),
    "potentials method": (
        lambda v: ps.potentials(SPEC, PARAMS, SPIKES, method=v),
        "method",
        "direct",
    ),
    "log_likelihood method": (
        lambda v: ps.log_likelihood(SPEC, PARAMS, SPIKES, method=v),
        "method",
        "auto",
    ),
    "traces method": (lambda v: ps.traces(SPEC, SPIKES, method=v), "method", "fft"),
    "build_design method": (lambda v: design.build_design(SPEC, SPIKES, method=v), "method", "fft"),
    "wta.potentials method": (
        lambda v: wta.potentials(WSPEC, WPARAMS, ONE_HOT, method=v),
        "method",
        "fft",
    ),
    "poisson_spikes method": (
        lambda v: encoding.poisson_spikes(KEY, 5.0, 1e-3, (4, 2), method=v),
        "method",
        "sparse",
    ),
    "latency_encode code": (
        lambda v: encoding.latency_encode(np.ones(2), 4, dt=1e-3, code=v),
        "code",
        "log",
    ),
    "latency_decode code": (
        lambda v: encoding.latency_decode(SPIKES, dt=1e-3, code=v),
        "code",
        "log",
    ),
    "cross_correlogram method": (
        lambda v: stats.cross_correlogram(SPIKES, 2, method=v),
        "method",
        "direct",
    ),
    "bin_spike_times policy": (
        lambda v: data.bin_spike_times([[0.1]], 1e-3, 1.0, policy=v),
        "policy",
        "clip",
    ),
    "plot.raster by": (lambda v: plot.raster(SPIKES, by=v), "by", "trial"),
    "EnergyNetwork activation": (
        lambda v: energy.EnergyNetwork((2, 2), activation=v),
        "activation",
        "tanh",
    ),
    "EnergyNetwork cost": (
        lambda v: energy.EnergyNetwork((2, 3, 2), cost=v),
        "cost",
        "cross_entropy",
    ),
}


@pytest.mark.parametrize("call,name,valid", list(OPTIONS.values()), ids=list(OPTIONS))
def test_unknown_option_strings_list_the_valid_ones(call, name, valid):
    with pytest.raises(ValueError, match=rf"{name} must be one of \(.*'{valid}'.*\), got 'bogus'"):
        call("bogus")
    with pytest.raises(TypeError, match=rf"{name} must be one of"):
        call(3)


# ---------------------------------------------------------------------------------------------
# Other scalar options: dtypes and sizes.


def test_dtypes_and_batch_shapes_are_checked():
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        SPEC.init_params(KEY, dtype=jnp.int32)
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        WSPEC.init_params(KEY, dtype="int8")
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        energy.init_params(ESPEC, KEY, dtype=jnp.int32)
    with pytest.raises(TypeError, match="batch_shape must be a tuple"):
        ps.init_state(SPEC, 3)
    with pytest.raises(ValueError, match=r"batch_shape\[i\] must be >= 1"):
        ps.init_state(SPEC, (0,))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        energy.init_states(ESPEC, 0)
    with pytest.raises(TypeError, match="spec must be an EnergyNetwork"):
        energy.init_params((2, 3), KEY)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda ragged: ps.log_likelihood(SPEC, PARAMS, ragged), "spikes"),
        (lambda ragged: kernels.filter_spikes(ragged, BASIS), "spikes"),
        (lambda ragged: ps.bernoulli_log_prob(ragged, np.zeros(3)), "spikes"),
    ],
    ids=["log_likelihood", "filter_spikes", "bernoulli_log_prob"],
)
def test_ragged_nested_lists_are_named(call, name):
    with pytest.raises(TypeError, match=rf"{name} must be an array .*ragged"):
        call([[0, 1, 0], [1, 0]])


@pytest.mark.parametrize("bad", ["0.5", b"0.5", 1j, True, [0.5]])
def test_numbers_given_as_strings_or_other_types_are_refused(bad):
    """A number option (a bin width, a temperature, a threshold) takes a real scalar only: the
    string "0.5" is refused, not parsed."""
    with pytest.raises(TypeError, match="dt must be a positive number"):
        ps.Network(3, np.ones((1, 2)), dt=bad)
    with pytest.raises(TypeError, match="threshold must be a real number"):
        ps.lif.LIFNetwork((2, 3), threshold=bad)
