"""Every public entry point of ``probsnn.inference`` answers bad input with a ValueError or
TypeError that names the argument: no silent NaN, no error from deep inside JAX or NumPyro.

The tables below list the entry points once per class of bad input (issue 17): PRNG keys, empty
data, non-finite parameters and inputs, silent acceptance (complex values, spikes equal to 2,
signals of the wrong type or shape given to a rule's ``update``, optimizers given as strings,
unknown option strings), iteration counts and tolerances, and divergence during training.
Property-based tests (hypothesis) draw the bad values: key-like objects that are not keys,
NaN/inf at random positions of every parameter field, non-binary spike values at random
positions of the rules' signals.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import probsnn as ps
from probsnn import inference, kernels, wta
from probsnn.glm import init_state, ring_traces
from probsnn.inference import score
from probsnn.inference.bayes import checks as bayes_checks
from probsnn.inference.bayes import fit as bayes_fit
from probsnn.inference.energy import ep
from probsnn.inference.energy import spiking_ep as sep
from probsnn.inference.information import criteria, estimators, infomax
from probsnn.inference.latent import multisample, variational
from probsnn.inference.latent import wta as wta_rules
from probsnn.inference.likelihood import online
from probsnn.inference.plasticity import features, rule_engine, stdp
from probsnn.models import energy as em

KEY = jax.random.key(0)
FAST = settings(max_examples=10, deadline=None, derandomize=True)

# --- GLM networks: fully observed, with inputs, with a hidden neuron --------------------------
BASIS = kernels.raw_lags(2)
SPEC = ps.Network(3, BASIS, dt=1e-2)
PARAMS = SPEC.init_params(KEY, rate=20.0)
SPIKES = np.zeros((40, 3), np.uint8)  # every neuron spikes sometimes, never always
SPIKES[::3, 0] = SPIKES[1::4, 1] = SPIKES[2::5, 2] = 1
SPIKES[7, :] = 1
SPEC_IN = ps.Network(3, BASIS, input_basis=kernels.raw_lags(2), n_inputs=2, dt=1e-2)
PARAMS_IN = SPEC_IN.init_params(KEY)
INPUTS = (np.arange(80).reshape(40, 2) % 3 == 0).astype(np.float32)
HIDDEN = ps.Network(3, BASIS, visible=np.array([True, True, False]), dt=1e-2)
HPARAMS = HIDDEN.init_params(KEY)
VISIBLE = SPIKES[:8, :2]
BATCH_VISIBLE = np.stack([SPIKES[:8, :2], SPIKES[8:16, :2]])  # (B=2, T=8, 2)
TRACES = ring_traces(SPEC, init_state(SPEC, (2,)))  # one bin's traces of 2 trials
TRACES_IN = ring_traces(SPEC_IN, init_state(SPEC_IN, (2,)))
BIN = np.array([[1, 0, 1], [0, 0, 1]], np.float32)  # (2 trials, N=3)
VSIGNALS = variational.VariationalSignals(
    np.stack([np.stack([SPIKES[:6]] * 2)] * 2).astype(np.float32), None
)  # (B=2, K=2, T=6, N=3)

# --- WTA networks ------------------------------------------------------------------------------
WSPEC = wta.WTANetwork(2, 2, BASIS)
WPARAMS = WSPEC.init_params(KEY)
ONE_HOT = np.zeros((2, 6, 2, 2), np.uint8)  # (B, T, N, C)
ONE_HOT[:, ::3, 0, 1] = ONE_HOT[:, 1::4, 1, 0] = 1
WTRACES = wta.channel_traces(WSPEC, ONE_HOT[0])  # all bins; index one bin below
WBIN = online.MLSignals(jax.tree.map(lambda a: a[3], WTRACES), ONE_HOT[0, 3])  # one spike
WSIGNALS = wta_rules.WTAVariationalSignals(np.stack([ONE_HOT] * 2, axis=1), None)

# --- information criteria ------------------------------------------------------------------------
CRITERION = criteria.barber_agakov(SPEC_IN)
IPARAMS = infomax.InfoMaxParams(PARAMS_IN, CRITERION.init_readout(KEY))
X = (np.arange(48).reshape(4, 6, 2) % 4 == 0).astype(np.float32)  # (B=4, T=6, M=2)
ISIGNALS = infomax.InfoMaxSignals(np.stack([np.stack([SPIKES[:6]] * 2)] * 4), X)

# --- energy networks ------------------------------------------------------------------------------
ESPEC = em.EnergyNetwork((4, 5, 3))
EPARAMS = em.init_params(ESPEC, KEY)
EINPUTS = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
ELABELS = np.array([0, 1, 2, 0])
EDATA = ep.classification_data(ESPEC, EINPUTS, ELABELS)
ETARGETS = EDATA.targets
SMALL_SPIKING = sep.SpikingEPConfig(
    free=sep.SpikingRelaxation(n_steps=4), nudged=sep.SpikingRelaxation(n_steps=2)
)

# --- plasticity -------------------------------------------------------------------------------
LAYER = features.FeatureLayer()
FPARAMS = features.init_feature_params(KEY, 4, 2, LAYER)
FSPIKES = (np.arange(48).reshape(2, 6, 4) % 5 == 0).astype(np.uint8)  # (n, T, F)
W = jnp.full((3, 2), 0.5)
STDP_BIN = stdp.STDPSignals(np.array([1, 0, 1], np.uint8), np.array([0, 1], np.uint8))

# --- trainers and their first state --------------------------------------------------------------
TRAINERS = {
    "ml_online_trainer": (online.ml_online_trainer(SPEC, optax.sgd(0.1)), PARAMS, SPIKES[None]),
    "variational_trainer": (
        inference.variational_trainer(HIDDEN, optax.sgd(0.1), n_samples=2),
        HPARAMS,
        BATCH_VISIBLE,
    ),
    "wta_trainer": (inference.wta_trainer(WSPEC, optax.sgd(0.1), n_samples=2), WPARAMS, ONE_HOT),
    "infomax_trainer": (
        inference.infomax_trainer(SPEC_IN, CRITERION, optax.sgd(0.1), n_samples=2),
        IPARAMS,
        X,
    ),
    "ep_trainer": (inference.ep_trainer(ESPEC, optax.sgd(0.1)), EPARAMS, EDATA),
    "backprop_trainer": (inference.backprop_trainer(ESPEC, optax.sgd(0.1)), EPARAMS, EDATA),
    "spiking_ep_trainer": (
        inference.spiking_ep_trainer(ESPEC, optax.sgd(0.1), SMALL_SPIKING),
        EPARAMS,
        EDATA,
    ),
    "stdp_features_trainer": (
        inference.stdp_features_trainer(LAYER, stdp.pair_stdp(w_max=1.0)),
        FPARAMS,
        FSPIKES,
    ),
}
STATES = {name: trainer.init(params) for name, (trainer, params, _) in TRAINERS.items()}


def _step(name, key=KEY, batch=None):
    trainer, _, data = TRAINERS[name]
    return trainer.step(key, STATES[name], data if batch is None else batch)


# ---------------------------------------------------------------------------------------------
# Keys: every function that takes a PRNG key refuses an int seed (showing jax.random.key(0)),
# float arrays, strings and batches of keys — before NumPyro's "'int' has no attribute 'shape'"
# or JAX's "invalid PRNG key data".

KEY_TAKERS = {
    "fit": lambda k: inference.fit(*TRAINERS["ml_online_trainer"], key=k, epochs=1),
    "fit_mcmc": lambda k: inference.fit_mcmc(SPEC, SPIKES, key=k),
    "fit_svi": lambda k: inference.fit_svi(SPEC, SPIKES, key=k),
    "time_rescaling_check": lambda k: bayes_checks.time_rescaling_check(SPEC, None, k),
    "sample_hidden": lambda k: variational.sample_hidden(
        HIDDEN, HPARAMS, VISIBLE, key=k, n_samples=2
    ),
    "fit_variational_online": lambda k: inference.fit_variational_online(
        HIDDEN, HPARAMS, VISIBLE, key=k, kappa=0.5
    ),
    "log_marginal_is": lambda k: multisample.log_marginal_is(
        HIDDEN, HPARAMS, VISIBLE, key=k, n_samples=2
    ),
    "iw_bound_estimate": lambda k: multisample.iw_bound_estimate(
        HIDDEN, HPARAMS, VISIBLE, key=k, n_samples=2
    ),
    "log_marginal_smc": lambda k: multisample.log_marginal_smc(
        HIDDEN, HPARAMS, VISIBLE, key=k, n_particles=2
    ),
    "evaluate_infomax": lambda k: infomax.evaluate_infomax(SPEC_IN, CRITERION, IPARAMS, k, X),
    "toyoizumi_window": lambda k: criteria.toyoizumi_window(
        SPEC_IN, PARAMS_IN, np.arange(-2, 3), k, 0.2
    ),
    "ep_estimate": lambda k: ep.ep_estimate(
        ESPEC, EPARAMS, EINPUTS, ETARGETS, estimator="random_sign", key=k
    ),
    "nudging_plan": lambda k: ep.nudging_plan("random_sign", 0.1, k),
    "gradient_check": lambda k: ep.gradient_check(ESPEC, EPARAMS, EINPUTS, ETARGETS, [0.1], key=k),
    "spiking_relax": lambda k: sep.spiking_relax(ESPEC, EPARAMS, EINPUTS, k),
    "spiking_ep_estimate": lambda k: sep.spiking_ep_estimate(
        ESPEC, EPARAMS, EINPUTS, ETARGETS, k, SMALL_SPIKING
    ),
    "spiking_predict": lambda k: sep.spiking_predict(ESPEC, EPARAMS, EINPUTS, key=k),
    "init_feature_params": lambda k: features.init_feature_params(k, 4, 2, LAYER),
    "feature_spikes": lambda k: features.feature_spikes(LAYER, FPARAMS, k, FSPIKES),
    "ml_window_monte_carlo": lambda k: inference.equivalence.ml_window_monte_carlo(
        k, SPEC, PARAMS, np.arange(1, 3), 8
    ),
    "random_slow_rates": lambda k: inference.equivalence.random_slow_rates(k, 2, 10, 1.0),
    "rate_derivative_window": lambda k: inference.equivalence.rate_derivative_window(
        k, np.full((1, 20), 10.0), np.full((1, 20), 10.0), 1.0
    ),
    **{
        f"{name}.step": functools.partial(_step, name)
        for name in (
            "variational_trainer",
            "wta_trainer",
            "infomax_trainer",
            "ep_trainer",
            "spiking_ep_trainer",
            "stdp_features_trainer",
        )
    },
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
        hnp.arrays(np.float32, st.integers(1, 4)),
        hnp.arrays(np.uint32, st.sampled_from([(1,), (3,), (2, 2)])),
    ),
    call=st.sampled_from(["fit_svi", "log_marginal_is", "ep_trainer.step", "toyoizumi_window"]),
)
def test_random_key_like_objects_are_refused(bad, call):
    with pytest.raises(TypeError, match="key must be a"):
        KEY_TAKERS[call](bad)


def test_legacy_keys_still_work():
    legacy = jax.random.PRNGKey(0)
    _, info = TRAINERS["ep_trainer"][0].step(legacy, STATES["ep_trainer"], EDATA)
    assert np.isfinite(float(info.loss))
    assert variational.sample_hidden(HIDDEN, HPARAMS, VISIBLE, key=legacy, n_samples=2).shape == (
        2,
        8,
        3,
    )


# ---------------------------------------------------------------------------------------------
# Empty data: no bins, no trials, no items → ValueError naming the argument the user passed
# (before: ZeroDivisionError in fit_ml, fit_variational_online blaming an argument never passed).

E_T = SPIKES[:0]  # T = 0
E_R = SPIKES[None][:0]  # zero trials

EMPTY = {
    "fit_ml T=0": (lambda: inference.fit_ml(SPEC, E_T), "spikes"),
    "fit_ml 0 trials": (lambda: inference.fit_ml(SPEC, E_R), "spikes"),
    "fit_ml inputs T=0": (
        lambda: inference.fit_ml(SPEC_IN, E_T, INPUTS[:0]),
        "spikes",
    ),
    "newton_trainer T=0": (lambda: inference.newton_trainer(SPEC, E_T), "spikes"),
    "fit_mcmc T=0": (lambda: inference.fit_mcmc(SPEC, E_T, key=KEY), "spikes"),
    "fit_svi 0 trials": (lambda: inference.fit_svi(SPEC, E_R, key=KEY), "spikes"),
    "variational_terms T=0": (
        lambda: variational.variational_terms(HIDDEN, HPARAMS, E_T),
        "spikes",
    ),
    "sample_hidden T=0": (
        lambda: variational.sample_hidden(HIDDEN, HPARAMS, VISIBLE[:0], key=KEY, n_samples=1),
        "visible",
    ),
    "fit_variational_online T=0": (
        lambda: inference.fit_variational_online(HIDDEN, HPARAMS, VISIBLE[:0], key=KEY, kappa=0.5),
        "visible",
    ),
    "fit_variational_online 0 trials": (
        lambda: inference.fit_variational_online(
            HIDDEN, HPARAMS, BATCH_VISIBLE[:0], key=KEY, kappa=0.5
        ),
        "visible",
    ),
    "log_marginal_is T=0": (
        lambda: multisample.log_marginal_is(HIDDEN, HPARAMS, VISIBLE[:0], key=KEY, n_samples=2),
        "visible",
    ),
    "log_marginal_smc T=0": (
        lambda: multisample.log_marginal_smc(HIDDEN, HPARAMS, VISIBLE[:0], key=KEY, n_particles=2),
        "visible",
    ),
    "exact_log_marginal T=0": (
        lambda: multisample.exact_log_marginal(HIDDEN, HPARAMS, VISIBLE[:0]),
        "visible",
    ),
    "ml_online_trainer.step": (lambda: _step("ml_online_trainer", batch=SPIKES[None, :0]), "batch"),
    "variational_trainer.step": (
        lambda: _step("variational_trainer", batch=BATCH_VISIBLE[:, :0]),
        "batch",
    ),
    "wta_trainer.step": (lambda: _step("wta_trainer", batch=ONE_HOT[:, :0]), "batch"),
    "infomax_trainer.step": (lambda: _step("infomax_trainer", batch=X[:, :0]), "inputs"),
    "ep_trainer.step": (lambda: _step("ep_trainer", batch=(EINPUTS[:0], ETARGETS[:0])), "inputs"),
    "stdp_features_trainer.step": (
        lambda: _step("stdp_features_trainer", batch=FSPIKES[:, :0]),
        "spikes",
    ),
    "evaluate_infomax": (
        lambda: infomax.evaluate_infomax(SPEC_IN, CRITERION, IPARAMS, KEY, X[:0]),
        "inputs",
    ),
    "classification_data": (
        lambda: ep.classification_data(ESPEC, EINPUTS[:0], ELABELS[:0]),
        "images",
    ),
    "classification_accuracy": (
        lambda: ep.classification_accuracy(
            lambda p, x: x[:, :3], EPARAMS, EINPUTS[:0], ELABELS[:0]
        ),
        "images",
    ),
    "predict": (lambda: ep.predict(ESPEC, EPARAMS, EINPUTS[:0]), "inputs"),
    "run_stdp": (
        lambda: stdp.run_stdp(stdp.pair_stdp(), W, np.zeros((0, 3)), np.zeros((0, 2))),
        "pre_spikes",
    ),
    "pattern_codes": (lambda: estimators.pattern_codes(E_T), "spikes"),
    "feature_spikes": (lambda: features.feature_spikes(LAYER, FPARAMS, KEY, FSPIKES[:0]), "spikes"),
    "rate_derivative_window": (
        lambda: inference.equivalence.rate_derivative_window(
            KEY, np.zeros((1, 0)), np.zeros((1, 0)), 1.0
        ),
        "rate_pre_hz",
    ),
    "multisample_rule signals": (
        lambda: inference.multisample_rule(HIDDEN, "gem").update(
            VSIGNALS._replace(spikes=VSIGNALS.spikes[:, :, :0]), optax.EmptyState(), HPARAMS
        ),
        "signals.spikes",
    ),
}


@pytest.mark.parametrize(("call", "name"), list(EMPTY.values()), ids=list(EMPTY))
def test_empty_data_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"{name}.*(empty|at least one)"):
        call()


# ---------------------------------------------------------------------------------------------
# Non-finite parameters: NaN or inf in any field of the parameters → ValueError naming the field
# (before: NaN likelihoods, all-NaN InfoMax parameters with a finite objective).


def _poisoned(params, field, index, value):
    """``params`` with ``value`` at flat position ``index`` (mod size) of ``field``."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    names = [jax.tree_util.keystr(path) for path, _ in leaves]
    target = names.index(field)
    arrays = [np.array(leaf, np.float32) for _, leaf in leaves]
    flat = arrays[target].reshape(-1)
    flat[index % flat.size] = value
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in arrays])


def _fields(params):
    return [
        jax.tree_util.keystr(path)
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
        if np.size(leaf)
    ]


PARAM_TAKERS = {
    "fit_ml init": (PARAMS, "init", lambda p: inference.fit_ml(SPEC, SPIKES, init=p)),
    "newton_trainer.init": (
        PARAMS,
        "init",
        lambda p: inference.newton_trainer(SPEC, SPIKES).init(p),
    ),
    "ml_online_trainer.init": (PARAMS, "params", TRAINERS["ml_online_trainer"][0].init),
    "local_gradient": (
        PARAMS,
        "params",
        lambda p: online.local_gradient(SPEC, p, online.MLSignals(TRACES, BIN)),
    ),
    "ml_rule.update": (
        PARAMS,
        "params",
        lambda p: inference.ml_rule(SPEC).update(
            online.MLSignals(TRACES, BIN), inference.ml_rule(SPEC).init(p), p
        ),
    ),
    "variational_terms": (
        HPARAMS,
        "params",
        lambda p: variational.variational_terms(HIDDEN, p, SPIKES[:6]),
    ),
    "sample_hidden": (
        HPARAMS,
        "params",
        lambda p: variational.sample_hidden(HIDDEN, p, VISIBLE, key=KEY, n_samples=1),
    ),
    "fit_variational_online": (
        HPARAMS,
        "params",
        lambda p: inference.fit_variational_online(HIDDEN, p, VISIBLE, key=KEY, kappa=0.5),
    ),
    "variational_trainer.init": (HPARAMS, "params", TRAINERS["variational_trainer"][0].init),
    "multisample_rule.update": (
        HPARAMS,
        "params",
        lambda p: inference.multisample_rule(HIDDEN).update(VSIGNALS, optax.EmptyState(), p),
    ),
    "log_marginal_is": (
        HPARAMS,
        "params",
        lambda p: multisample.log_marginal_is(HIDDEN, p, VISIBLE, key=KEY, n_samples=2),
    ),
    "log_marginal_smc": (
        HPARAMS,
        "params",
        lambda p: multisample.log_marginal_smc(HIDDEN, p, VISIBLE, key=KEY, n_particles=2),
    ),
    "exact_log_marginal": (
        HPARAMS,
        "params",
        lambda p: multisample.exact_log_marginal(HIDDEN, p, VISIBLE[:4]),
    ),
    "wta_trainer.init": (WPARAMS, "params", TRAINERS["wta_trainer"][0].init),
    "wta_ml_rule.update": (
        WPARAMS,
        "params",
        lambda p: inference.wta_ml_rule(WSPEC).update(
            WBIN, inference.wta_ml_rule(WSPEC).init(p), p
        ),
    ),
    "wta_variational_gradient": (
        WPARAMS,
        "params",
        lambda p: wta_rules.wta_variational_gradient(WSPEC, p, WSIGNALS),
    ),
    "infomax_trainer.init": (IPARAMS, "params", TRAINERS["infomax_trainer"][0].init),
    "infomax_rule.update": (
        IPARAMS,
        "params",
        lambda p: inference.infomax_rule(SPEC_IN, CRITERION, "none").update(
            ISIGNALS, infomax.InfoMaxRuleState(None), p
        ),
    ),
    "evaluate_infomax": (
        IPARAMS,
        "params",
        lambda p: infomax.evaluate_infomax(SPEC_IN, CRITERION, p, KEY, X),
    ),
    "toyoizumi_window": (
        PARAMS_IN,
        "params",
        lambda p: criteria.toyoizumi_window(SPEC_IN, p, np.arange(-2, 3), KEY, 0.2),
    ),
    "network_channel": (
        PARAMS_IN,
        "params",
        lambda p: estimators.network_channel(SPEC_IN, p, 2, 0.3),
    ),
    "ml_window": (
        PARAMS,
        "params",
        lambda p: inference.equivalence.ml_window(SPEC, p, np.arange(1, 3)),
    ),
    "ep_trainer.init": (EPARAMS, "params", TRAINERS["ep_trainer"][0].init),
    "backprop_trainer.init": (EPARAMS, "params", TRAINERS["backprop_trainer"][0].init),
    "spiking_ep_trainer.init": (EPARAMS, "params", TRAINERS["spiking_ep_trainer"][0].init),
    "predict": (EPARAMS, "params", lambda p: ep.predict(ESPEC, p, EINPUTS)),
    "ep_estimate": (EPARAMS, "params", lambda p: ep.ep_estimate(ESPEC, p, EINPUTS, ETARGETS)),
    "spiking_ep_estimate": (
        EPARAMS,
        "params",
        lambda p: sep.spiking_ep_estimate(ESPEC, p, EINPUTS, ETARGETS, KEY, SMALL_SPIKING),
    ),
    "spiking_predict": (EPARAMS, "params", lambda p: sep.spiking_predict(ESPEC, p, EINPUTS)),
    "ep_stdp": (
        EPARAMS,
        "params",
        lambda p: inference.equivalence.ep_stdp(ESPEC, p, EINPUTS, ETARGETS),
    ),
    "stdp_features_trainer.init": (FPARAMS, "params", TRAINERS["stdp_features_trainer"][0].init),
    "feature_spikes": (
        FPARAMS,
        "params",
        lambda p: features.feature_spikes(LAYER, p, KEY, FSPIKES),
    ),
}


@FAST
@given(
    taker=st.sampled_from(sorted(PARAM_TAKERS)),
    choice=st.integers(0, 100),
    index=st.integers(0, 1000),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_non_finite_params_are_refused_naming_the_field(taker, choice, index, value):
    params, name, call = PARAM_TAKERS[taker]
    fields = _fields(params)
    field = fields[choice % len(fields)]
    with pytest.raises(ValueError, match=rf"{name}{re.escape(field)} must be finite"):
        call(_poisoned(params, field, index, value))


@pytest.mark.parametrize("taker", sorted(PARAM_TAKERS))
def test_every_param_taker_checks_its_params(taker):
    params, name, call = PARAM_TAKERS[taker]
    field = _fields(params)[-1]
    with pytest.raises(ValueError, match=rf"{name}{re.escape(field)} must be finite"):
        call(_poisoned(params, field, 0, np.nan))


def test_infomax_training_from_a_nan_bias_stops_before_the_first_step():
    """Before: all-NaN parameters came back with a finite objective."""
    trainer, params, data = TRAINERS["infomax_trainer"]
    broken = params._replace(network=params.network._replace(bias=params.network.bias * np.nan))
    with pytest.raises(ValueError, match=r"params\.network\.bias must be finite"):
        inference.fit(trainer, broken, data, key=KEY, epochs=1, progress=False)


def _with(array, value):
    """A copy of ``array`` (as float32) with ``value`` in its first element."""
    array = np.array(array, np.float32)
    array.flat[0] = value
    return array


NON_FINITE_INPUTS = {
    "fit_ml inputs": (
        lambda v: inference.fit_ml(SPEC_IN, SPIKES, _with(INPUTS, v), l2=1.0),
        "inputs",
    ),
    "infomax_trainer.step": (lambda v: _step("infomax_trainer", batch=_with(X, v)), "inputs"),
    "infomax_rule signals": (
        lambda v: inference.infomax_rule(SPEC_IN, CRITERION, "none").update(
            ISIGNALS._replace(inputs=_with(X, v)), infomax.InfoMaxRuleState(None), IPARAMS
        ),
        "signals.inputs",
    ),
    "ep_trainer.step": (
        lambda v: _step("ep_trainer", batch=(_with(EINPUTS, v), ETARGETS)),
        "inputs",
    ),
    "classification_data": (
        lambda v: ep.classification_data(ESPEC, _with(EINPUTS, v), ELABELS),
        "images",
    ),
    "ml_rule traces": (
        lambda v: inference.ml_rule(SPEC).update(
            online.MLSignals(TRACES._replace(syn=TRACES.syn + v), BIN),
            inference.ml_rule(SPEC).init(PARAMS),
            PARAMS,
        ),
        "signals.traces.syn",
    ),
    "score_gradient signal": (
        lambda v: score.score_gradient(np.array([1.0, v]), {"w": np.ones((2, 3))}),
        "signal",
    ),
    "leave_one_out": (lambda v: score.leave_one_out(np.array([1.0, v, 0.0])), "signal"),
    "iw_bound": (lambda v: score.iw_bound(np.array([1.0, abs(v)])), "log_weights"),
    "vimco_signals": (lambda v: score.vimco_signals(np.array([1.0, v])), "log_weights"),
    "log_mean_exp": (lambda v: multisample.log_mean_exp(np.array([1.0, abs(v)])), "log_values"),
    "run_stdp reward": (
        lambda v: stdp.run_stdp(
            stdp.reward_stdp(), W, np.ones((4, 3)), np.ones((4, 2)), np.array([0.0, v, 1, 1])
        ),
        "reward",
    ),
    "window_weight_change": (
        lambda v: inference.equivalence.window_weight_change(
            np.arange(-1, 2), np.ones(3), np.full(8, v), np.ones(8), 1.0
        ),
        "rate_pre_hz",
    ),
    "rate_derivative_window": (
        lambda v: inference.equivalence.rate_derivative_window(
            KEY, np.full((1, 8), v), np.ones((1, 8)), 1.0
        ),
        "rate_pre_hz",
    ),
    "error_slope": (lambda v: ep.error_slope([0.1, 0.2], [0.5, v]), "errors"),
    "relative_error": (
        lambda v: ep.relative_error({"a": np.array([1.0, v])}, {"a": np.ones(2)}),
        "estimate",
    ),
    "gradient_check betas": (
        lambda v: ep.gradient_check(ESPEC, EPARAMS, EINPUTS, ETARGETS, [0.1, v]),
        "betas",
    ),
    "target_rate": (
        lambda v: inference.variational_rule(HIDDEN, target_rate=v, rate_weight=1.0),
        "target_rate",
    ),
}


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize(
    ("call", "name"), list(NON_FINITE_INPUTS.values()), ids=list(NON_FINITE_INPUTS)
)
def test_non_finite_inputs_are_refused_naming_the_argument(call, name, value):
    with pytest.raises(ValueError, match=rf"{name}.*(finite|NaN)"):
        call(value)


# ---------------------------------------------------------------------------------------------
# Silent acceptance: complex numbers, spikes equal to 2 in the rules' signals, signals of the
# wrong type or shape, optimizers given as strings, unknown option strings.

COMPLEX = {
    "fit_ml spikes": (lambda: inference.fit_ml(SPEC, SPIKES + 0j), "spikes"),
    "fit_ml inputs": (lambda: inference.fit_ml(SPEC_IN, SPIKES, INPUTS + 1j, l2=1.0), "inputs"),
    "ml_rule signals": (
        lambda: inference.ml_rule(SPEC).update(
            online.MLSignals(TRACES, BIN + 0j), inference.ml_rule(SPEC).init(PARAMS), PARAMS
        ),
        "signals.spikes",
    ),
    "kappa": (lambda: inference.ml_rule(SPEC, kappa=0.5 + 0.1j), "kappa"),
    "score_gradient": (
        lambda: score.score_gradient(np.ones(2) + 1j, {"w": np.ones((2, 3))}),
        "signal",
    ),
    "iw_bound": (lambda: score.iw_bound(np.ones(3) * 1j), "log_weights"),
    "rate_weight": (
        lambda: inference.variational_rule(HIDDEN, target_rate=10.0, rate_weight=1j),
        "rate_weight",
    ),
    "target_rate": (
        lambda: inference.variational_rule(HIDDEN, target_rate=10 + 1j, rate_weight=1.0),
        "target_rate",
    ),
    "infomax inputs": (lambda: _step("infomax_trainer", batch=X + 0j), "inputs"),
    "toyoizumi input_probs": (
        lambda: criteria.toyoizumi_window(SPEC_IN, PARAMS_IN, np.arange(3), KEY, 0.2 + 0.1j),
        "input_probs",
    ),
    "gamma": (lambda: criteria.rate_penalised_infomax(SPEC_IN, gamma=1j), "gamma"),
    "ess_threshold": (
        lambda: multisample.log_marginal_smc(
            HIDDEN, HPARAMS, VISIBLE, key=KEY, n_particles=2, ess_threshold=0.5j
        ),
        "ess_threshold",
    ),
    "classification_data": (
        lambda: ep.classification_data(ESPEC, EINPUTS + 1j, ELABELS),
        "images",
    ),
    "classification_accuracy": (
        lambda: ep.classification_accuracy(lambda p, x: x[:, :3], EPARAMS, EINPUTS + 1j, ELABELS),
        "images",
    ),
    "Relaxation.step_size": (
        lambda: ep.predict(ESPEC, EPARAMS, EINPUTS, ep.Relaxation(step_size=0.5j)),
        "relaxation.step_size",
    ),
    "run_stdp reward": (
        lambda: stdp.run_stdp(
            stdp.reward_stdp(), W, np.ones((4, 3)), np.ones((4, 2)), np.ones(4) + 1j
        ),
        "reward",
    ),
    "run_stdp w": (
        lambda: stdp.run_stdp(stdp.pair_stdp(), W + 1j, np.ones((4, 3)), np.ones((4, 2))),
        "w",
    ),
    "pair_window lags": (
        lambda: stdp.pair_window(np.arange(3) * 1j, 0.01, 0.01, 10.0, 10.0),
        "lags_ms",
    ),
    "sum_of_products variable": (
        lambda: rule_engine.sum_of_products([rule_engine.Term(1.0, ("pre", "gain"))]).update(
            {"pre": STDP_BIN.pre, "post": STDP_BIN.post, "gain": np.ones(2) * 1j},
            rule_engine.EngineState({}, None),
            W,
        ),
        r"signals\['gain'\]",
    ),
    "auroc scores": (lambda: bayes_fit.auroc(np.ones(4) * 1j, [0, 1, 0, 1]), "scores"),
    "error_slope": (lambda: ep.error_slope([0.1, 0.2j], [0.1, 0.2]), "betas"),
    "window_weight_change": (
        lambda: inference.equivalence.window_weight_change(
            np.arange(-1, 2), np.ones(3) + 1j, np.ones(8), np.ones(8), 1.0
        ),
        "window",
    ),
}


@pytest.mark.parametrize(("call", "name"), list(COMPLEX.values()), ids=list(COMPLEX))
def test_complex_values_are_refused_naming_the_argument(call, name):
    with pytest.raises(TypeError, match=name):
        call()


def _ml_update(spikes):
    rule = inference.ml_rule(SPEC)
    return rule.update(online.MLSignals(TRACES, spikes), rule.init(PARAMS), PARAMS)


def _online_variational_update(spikes):
    rule = inference.online_variational_rule(HIDDEN, 0.5, n_trials=2)
    traces = ring_traces(HIDDEN, init_state(HIDDEN, (2,)))
    return rule.update(online.MLSignals(traces, spikes), rule.init(HPARAMS), HPARAMS)


def _stdp_update(rule, pre):
    return rule.update(STDP_BIN._replace(pre=pre), rule.init(W), W)


RULE_SPIKES = {  # (update as a function of a (2, 3) spike array, the argument's name)
    "ml_rule": (_ml_update, "signals.spikes"),
    "local_gradient": (
        lambda s: online.local_gradient(SPEC, PARAMS, online.MLSignals(TRACES, s)),
        "signals.spikes",
    ),
    "online_variational_rule": (_online_variational_update, "signals.spikes"),
    "variational_rule": (
        lambda s: inference.variational_rule(HIDDEN).update(
            VSIGNALS._replace(spikes=np.broadcast_to(s[None, None, :1], (2, 2, 6, 3))),
            inference.variational_rule(HIDDEN).init(HPARAMS),
            HPARAMS,
        ),
        "signals.spikes",
    ),
    "multisample_rule": (
        lambda s: inference.multisample_rule(HIDDEN).update(
            VSIGNALS._replace(spikes=np.broadcast_to(s[None, None, :1], (2, 2, 6, 3))),
            optax.EmptyState(),
            HPARAMS,
        ),
        "signals.spikes",
    ),
    "infomax_rule": (
        lambda s: inference.infomax_rule(SPEC_IN, CRITERION, "none").update(
            ISIGNALS._replace(spikes=np.broadcast_to(s[None, None, :1], (4, 2, 6, 3))),
            infomax.InfoMaxRuleState(None),
            IPARAMS,
        ),
        "signals.spikes",
    ),
    "pair_stdp": (lambda s: _stdp_update(stdp.pair_stdp(), s[0]), "signals.pre"),
    "triplet_stdp": (lambda s: _stdp_update(stdp.triplet_stdp(), s[0]), "signals.pre"),
    "reward_stdp": (
        lambda s: stdp.reward_stdp().update(
            stdp.STDPSignals(s[0], STDP_BIN.post, 1.0), stdp.reward_stdp().init(W), W
        ),
        "signals.pre",
    ),
    "sum_of_products": (
        lambda s: rule_engine.pair_stdp().update(
            {"pre": s[0], "post": STDP_BIN.post}, rule_engine.pair_stdp().init(W), W
        ),
        r"signals\['pre'\]",
    ),
}


@FAST
@given(
    rule=st.sampled_from(sorted(RULE_SPIKES)),
    position=st.integers(0, 5),
    value=st.sampled_from([2, 3, -1, 0.5]),
)
def test_rules_refuse_spikes_that_are_not_0_or_1(rule, position, value):
    update, name = RULE_SPIKES[rule]
    spikes = np.array(BIN, np.float32)
    spikes.reshape(-1)[position % 3] = value  # the first trial: the bin every rule reads
    with pytest.raises(ValueError, match=rf"{name} must be binary"):
        update(spikes)


def test_one_hot_rules_refuse_two_and_double_symbols():
    rule = inference.wta_ml_rule(WSPEC)
    state = rule.init(WPARAMS)
    twos = WBIN._replace(spikes=np.array(WBIN.spikes) * 2)
    with pytest.raises(ValueError, match=r"signals\.spikes must be binary"):
        rule.update(twos, state, WPARAMS)
    both = WBIN._replace(spikes=np.ones((2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"signals\.spikes must be one-hot"):
        rule.update(both, state, WPARAMS)
    variational_rule = inference.wta_variational_rule(WSPEC)
    with pytest.raises(ValueError, match=r"signals\.spikes must be binary"):
        variational_rule.update(
            WSIGNALS._replace(spikes=WSIGNALS.spikes * 2),
            variational_rule.init(WPARAMS),
            WPARAMS,
        )


WRONG_SIGNALS = {  # rule, what its update needs, its state, params
    "ml_rule": (inference.ml_rule(SPEC), PARAMS),
    "online_variational_rule": (inference.online_variational_rule(HIDDEN, 0.5), HPARAMS),
    "variational_rule": (inference.variational_rule(HIDDEN), HPARAMS),
    "multisample_rule": (inference.multisample_rule(HIDDEN), HPARAMS),
    "wta_ml_rule": (inference.wta_ml_rule(WSPEC), WPARAMS),
    "wta_variational_rule": (inference.wta_variational_rule(WSPEC), WPARAMS),
    "infomax_rule": (inference.infomax_rule(SPEC_IN, CRITERION), IPARAMS),
    "ep_rule": (inference.ep_rule(ESPEC), EPARAMS),
    "pair_stdp": (stdp.pair_stdp(), W),
    "triplet_stdp": (stdp.triplet_stdp(), W),
    "reward_stdp": (stdp.reward_stdp(), W),
    "sum_of_products": (rule_engine.pair_stdp(), W),
}


@pytest.mark.parametrize("signals", [(1, 2), "spikes", None], ids=["tuple", "string", "None"])
@pytest.mark.parametrize(("rule", "params"), list(WRONG_SIGNALS.values()), ids=list(WRONG_SIGNALS))
def test_rule_updates_refuse_signals_of_the_wrong_type(rule, params, signals):
    with pytest.raises(TypeError, match="signals must be"):
        rule.update(signals, rule.init(params), params)


WRONG_SHAPES = {
    "ml_rule: spikes of 5 neurons": (
        lambda: _ml_update(np.zeros((2, 5), np.float32)),
        r"signals\.spikes must have 3 neurons",
    ),
    "ml_rule: traces of other trials": (
        lambda: _ml_update(np.zeros((4, 3), np.float32)),
        r"signals\.traces\.syn must have shape \(4, 3, 2\)",
    ),
    "ml_rule: no input traces": (
        lambda: inference.ml_rule(SPEC_IN).update(
            online.MLSignals(TRACES, BIN), inference.ml_rule(SPEC_IN).init(PARAMS_IN), PARAMS_IN
        ),
        r"signals\.traces\.inputs is required",
    ),
    "ml_rule: input traces without inputs": (
        lambda: _ml_update_with(TRACES_IN),
        r"signals\.traces\.inputs must be None",
    ),
    "pair_stdp: pre of 4": (
        lambda: _stdp_update(stdp.pair_stdp(), np.zeros(4)),
        r"signals\.pre must have shape \(3,\)",
    ),
    "reward_stdp: reward of 3": (
        lambda: stdp.reward_stdp().update(
            STDP_BIN._replace(reward=np.ones(3)), stdp.reward_stdp().init(W), W
        ),
        r"signals\.reward must be a scalar or \(2,\)",
    ),
    "sum_of_products: variable that does not broadcast": (
        lambda: rule_engine.sum_of_products([rule_engine.Term(1.0, ("pre", "gain"))]).update(
            {"pre": STDP_BIN.pre, "post": STDP_BIN.post, "gain": np.ones(5)},
            rule_engine.EngineState({}, None),
            W,
        ),
        r"signals\['gain'\] of shape \(5,\) must broadcast",
    ),
    "variational_rule: 3-D spikes": (
        lambda: inference.variational_rule(HIDDEN).update(
            VSIGNALS._replace(spikes=VSIGNALS.spikes[0]),
            inference.variational_rule(HIDDEN).init(HPARAMS),
            HPARAMS,
        ),
        r"signals\.spikes must have shape \(B, K, T, 3\)",
    ),
    "wta_ml_rule: spikes of 3 units": (
        lambda: inference.wta_ml_rule(WSPEC).update(
            WBIN._replace(spikes=np.zeros((3, 2), np.uint8)),
            inference.wta_ml_rule(WSPEC).init(WPARAMS),
            WPARAMS,
        ),
        r"signals\.spikes must have shape \(\.\.\., 2, 2\)",
    ),
}


def _ml_update_with(traces):
    rule = inference.ml_rule(SPEC)
    return rule.update(online.MLSignals(traces, BIN), rule.init(PARAMS), PARAMS)


@pytest.mark.parametrize(("call", "message"), list(WRONG_SHAPES.values()), ids=list(WRONG_SHAPES))
def test_rule_updates_refuse_signals_of_the_wrong_shape(call, message):
    with pytest.raises(ValueError, match=message):
        call()


OPTIMIZER_TAKERS = {
    "ml_online_trainer": lambda o: online.ml_online_trainer(SPEC, o),
    "variational_trainer": lambda o: inference.variational_trainer(HIDDEN, o),
    "wta_trainer": lambda o: inference.wta_trainer(WSPEC, o),
    "infomax_trainer": lambda o: inference.infomax_trainer(SPEC_IN, CRITERION, o),
    "ep_trainer": lambda o: inference.ep_trainer(ESPEC, o),
    "backprop_trainer": lambda o: inference.backprop_trainer(ESPEC, o),
    "spiking_ep_trainer": lambda o: inference.spiking_ep_trainer(ESPEC, o),
    "fit_variational_online": lambda o: inference.fit_variational_online(
        HIDDEN, HPARAMS, VISIBLE, key=KEY, kappa=0.5, optimizer=o
    ),
    "fit_svi": lambda o: inference.fit_svi(SPEC, SPIKES, key=KEY, optimizer=o),
}


@pytest.mark.parametrize("optimizer", ["adam", optax.adam, 0.01], ids=["string", "factory", "lr"])
@pytest.mark.parametrize("call", list(OPTIMIZER_TAKERS.values()), ids=list(OPTIMIZER_TAKERS))
def test_an_optimizer_that_is_not_an_optax_transformation_is_refused(call, optimizer):
    with pytest.raises(TypeError, match=r"optimizer must be an optax\.GradientTransformation"):
        call(optimizer)


OPTIONS = {  # call with a bad option string; the argument's name
    "multisample_rule method": (lambda: inference.multisample_rule(HIDDEN, "VIMCO"), "method"),
    "multisample_gradient method": (
        lambda: multisample.multisample_gradient(HIDDEN, HPARAMS, VSIGNALS, "iwae"),
        "method",
    ),
    "infomax_rule baseline": (
        lambda: inference.infomax_rule(SPEC_IN, CRITERION, baseline="mean"),
        "baseline",
    ),
    "infomax_trainer baseline": (
        lambda: inference.infomax_trainer(SPEC_IN, CRITERION, optax.sgd(0.1), baseline="LOO"),
        "baseline",
    ),
    "plugin_information correction": (
        lambda: estimators.plugin_information(np.arange(4), np.arange(4), correction="mm"),
        "correction",
    ),
    "fit_mcmc chain_method": (
        lambda: inference.fit_mcmc(SPEC, SPIKES, key=KEY, chain_method="threads"),
        "chain_method",
    ),
    "fit_svi guide": (
        lambda: inference.fit_svi(SPEC, SPIKES, key=KEY, guide="mean_field"),
        "guide",
    ),
    "pair_stdp pairing": (lambda: stdp.pair_stdp(pairing="first"), "pairing"),
    "pair_stdp weight_dependence": (
        lambda: stdp.pair_stdp(weight_dependence="soft"),
        "weight_dependence",
    ),
    "TraceSpec side": (
        lambda: rule_engine.sum_of_products(
            [rule_engine.Term(1.0, ("x",))], traces={"x": rule_engine.TraceSpec("both", 10.0)}
        ),
        r"traces\['x'\]\.side",
    ),
    "TraceSpec impulse": (
        lambda: rule_engine.sum_of_products(
            [rule_engine.Term(1.0, ("x",))],
            traces={"x": rule_engine.TraceSpec("pre", 10.0, "set")},
        ),
        r"traces\['x'\]\.impulse",
    ),
    "EPConfig estimator": (
        lambda: inference.ep_trainer(ESPEC, optax.sgd(0.1), ep.EPConfig(estimator="central")),
        "estimator",
    ),
    "nudging_plan estimator": (lambda: ep.nudging_plan("two_sided", 0.1), "estimator"),
    "gradient_check reference": (
        lambda: ep.gradient_check(ESPEC, EPARAMS, EINPUTS, ETARGETS, [0.1], reference="exact"),
        "reference",
    ),
    "SpikingRelaxation coding": (
        lambda: sep.spiking_predict(
            ESPEC, EPARAMS, EINPUTS, sep.SpikingRelaxation(coding="poisson")
        ),
        r"relaxation\.coding",
    ),
}


@pytest.mark.parametrize(("call", "name"), list(OPTIONS.values()), ids=list(OPTIONS))
def test_unknown_option_strings_list_the_valid_ones(call, name):
    with pytest.raises(ValueError, match=rf"{name} must be one of \("):
        call()


# ---------------------------------------------------------------------------------------------
# Iteration counts and tolerances: every count >= 1, every tolerance finite and > 0.

COUNTS = {
    "fit_ml max_iter=0": (lambda: inference.fit_ml(SPEC, SPIKES, max_iter=0), "max_iter"),
    "fit_ml max_iter=-3": (lambda: inference.fit_ml(SPEC, SPIKES, max_iter=-3), "max_iter"),
    "fit_ml max_cg=0": (lambda: inference.fit_ml(SPEC, SPIKES, max_cg=0), "max_cg"),
    "fit_ml tol=0": (lambda: inference.fit_ml(SPEC, SPIKES, tol=0.0), "tol"),
    "fit_ml tol=-1": (lambda: inference.fit_ml(SPEC, SPIKES, tol=-1.0), "tol"),
    "fit_ml tol=nan": (lambda: inference.fit_ml(SPEC, SPIKES, tol=np.nan), "tol"),
    "fit_ml tol=inf": (lambda: inference.fit_ml(SPEC, SPIKES, tol=np.inf), "tol"),
    "newton_trainer max_cg=0": (
        lambda: inference.newton_trainer(SPEC, SPIKES, max_cg=0),
        "max_cg",
    ),
    "newton_trainer tol=0": (lambda: inference.newton_trainer(SPEC, SPIKES, tol=0.0), "tol"),
    "fit epochs=0": (
        lambda: inference.fit(*TRAINERS["ml_online_trainer"], key=KEY, epochs=0),
        "epochs",
    ),
    "variational_trainer n_samples=0": (
        lambda: inference.variational_trainer(HIDDEN, optax.sgd(0.1), n_samples=0),
        "n_samples",
    ),
    "infomax_trainer n_samples=0": (
        lambda: inference.infomax_trainer(SPEC_IN, CRITERION, optax.sgd(0.1), n_samples=0),
        "n_samples",
    ),
    "Relaxation max_steps=0": (
        lambda: ep.predict(ESPEC, EPARAMS, EINPUTS, ep.Relaxation(max_steps=0)),
        "relaxation.max_steps",
    ),
    "Relaxation tol=0": (
        lambda: ep.predict(ESPEC, EPARAMS, EINPUTS, ep.Relaxation(tol=0.0)),
        "relaxation.tol",
    ),
    "SpikingRelaxation tol=nan": (
        lambda: sep.spiking_predict(ESPEC, EPARAMS, EINPUTS, sep.SpikingRelaxation(tol=np.nan)),
        "relaxation.tol",
    ),
    "trajectory n_steps=0": (
        lambda: ep.trajectory(ESPEC, EPARAMS, EINPUTS, em.init_states(ESPEC, 4), n_steps=0),
        "n_steps",
    ),
    "log_marginal_smc n_repeats=1": (
        lambda: multisample.log_marginal_smc(
            HIDDEN, HPARAMS, VISIBLE, key=KEY, n_particles=2, n_repeats=1
        ),
        "n_repeats",
    ),
}


@pytest.mark.parametrize(("call", "name"), list(COUNTS.values()), ids=list(COUNTS))
def test_iteration_counts_and_tolerances_are_checked(call, name):
    with pytest.raises(ValueError, match=rf"{name} must"):
        call()


# ---------------------------------------------------------------------------------------------
# Training divergence: every trainer reports a scalar loss, and when a learning rate far too
# large sends the parameters off (to 1e29 and beyond, the loss itself may stay finite) fit stops
# with a FloatingPointError naming the epoch.


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_reports_a_finite_scalar_loss(name):
    _, info = _step(name)
    assert np.shape(info.loss) == () and np.isfinite(float(info.loss))


DIVERGING = {
    "ml_online_trainer": lambda o: (online.ml_online_trainer(SPEC, o), PARAMS, SPIKES[None], None),
    "variational_trainer": lambda o: (
        inference.variational_trainer(HIDDEN, o, n_samples=2),
        HPARAMS,
        BATCH_VISIBLE,
        None,
    ),
    "wta_trainer": lambda o: (inference.wta_trainer(WSPEC, o, n_samples=2), WPARAMS, ONE_HOT, None),
    "infomax_trainer": lambda o: (
        inference.infomax_trainer(SPEC_IN, CRITERION, o, n_samples=2),
        IPARAMS,
        X,
        None,
    ),
    "ep_trainer": lambda o: (inference.ep_trainer(ESPEC, o), EPARAMS, EDATA, None),
    "backprop_trainer": lambda o: (inference.backprop_trainer(ESPEC, o), EPARAMS, EDATA, None),
    "spiking_ep_trainer": lambda o: (
        inference.spiking_ep_trainer(ESPEC, o, SMALL_SPIKING),
        EPARAMS,
        EDATA,
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(DIVERGING))
def test_fit_stops_when_a_huge_learning_rate_sends_the_parameters_off(name):
    trainer, params, data, batch_size = DIVERGING[name](optax.sgd(1e30))
    try:
        inference.fit(
            trainer, params, data, key=KEY, epochs=3, batch_size=batch_size, progress=False
        )
    except FloatingPointError as error:
        assert "diverged in epoch 0" in str(error)
    else:
        raise AssertionError(f"{name}: fit trained on with a learning rate of 1e30")
