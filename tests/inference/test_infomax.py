"""Information criteria for spiking networks: exact loss gradients by enumeration,
unbiasedness, the trainer protocol, learning (exact information rises, STDP window, bottleneck
trade-off, digit representation)."""

import cases_information as cases
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import logsumexp

import probsnn as ps
from probsnn import encoding, kernels
from probsnn.inference import fit, score
from probsnn.inference.information import criteria as crit
from probsnn.inference.information import estimators as mi
from probsnn.inference.information import infomax as im

N_STEPS = 3


def _tiny_network(dtype=jnp.float32):
    """Two recurrently coupled neurons with feedback and two inputs: 2^6 output patterns."""
    spec = ps.Network(2, kernels.raw_lags(2), input_basis=kernels.raw_lags(2), n_inputs=2, dt=1e-3)
    params = spec.init_params(jax.random.key(0), rate=150.0, weight_scale=2.0, refractory=1.0)
    return spec, _cast(params, dtype)


def _cast(tree, dtype):
    """Cast through numpy: no compiled kernels (float64 tests stay cheap)."""
    return jax.tree.map(lambda a: jnp.asarray(np.asarray(a), dtype), tree)


def _binary(seed, shape, p, dtype):
    return jnp.asarray(np.random.default_rng(seed).random(shape) < p, dtype)


@pytest.mark.parametrize("name", ["barber_agakov", "infonce", "bottleneck", "toyoizumi"])
def test_score_function_estimator_is_the_gradient_of_the_enumerated_loss(x64, name):
    """L(θ, ψ) = −mean_b Σ_s p_θ(s‖x_b) f_{θ,ψ}(s; x, y) by enumerating all 64 spike patterns
    of a recurrent two-neuron network: Σ_s p (ℓ ∇log p + ∇ℓ) with ℓ = −f, the local
    pre-trace × error scores of :func:`sample_scores`, equals jax.grad(L) to 1e-9."""
    spec, params = _tiny_network(jnp.float64)
    criterion = cases.criteria(spec)[name]
    inputs = _binary(1, (3, N_STEPS, 2), 0.4, jnp.float64)
    targets = jnp.array([0, 1, 1]) if criterion.needs_targets else None
    readout = cases.random_readout(criterion, 1, jnp.float64)
    learned = im.InfoMaxParams(params, readout)
    spikes, log_prob = cases.enumerated(spec, params, inputs)  # (B, P, T, N), (B, P)
    batch = inputs.shape[0]

    def loss(p):
        f, _ = im.evaluate_signal(spec, criterion, p.network, p.readout, spikes, inputs, targets)
        return -jnp.sum(jnp.exp(log_prob(p.network)) * f) / batch

    exact = jax.jit(jax.grad(loss))(learned)
    weights = jnp.exp(log_prob(params)) / batch  # (B, P)

    def weighted_loss(p):
        f, _ = im.evaluate_signal(spec, criterion, p.network, p.readout, spikes, inputs, targets)
        return -jnp.sum(weights * f), -f

    pathwise, sample_loss = jax.jit(jax.grad(weighted_loss, has_aux=True))(learned)
    n = batch * spikes.shape[1]
    tiled = jnp.broadcast_to(inputs[:, None], (*spikes.shape[:2], *inputs.shape[1:]))
    scores = jax.jit(im.sample_scores, static_argnums=0)(
        spec, params, spikes.reshape(n, N_STEPS, -1), tiled.reshape(n, N_STEPS, -1)
    )
    weighted = (weights * sample_loss).ravel()
    through = jax.tree.map(lambda e: jnp.tensordot(weighted, e, axes=1), scores)
    estimate = im.InfoMaxParams(jax.tree.map(jnp.add, pathwise.network, through), pathwise.readout)
    for got, want in zip(jax.tree.leaves(estimate), jax.tree.leaves(exact), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(exact.network)) > 1e-3


@pytest.mark.parametrize("name", ["barber_agakov", "infonce", "bottleneck", "toyoizumi"])
def test_rule_returns_the_gradient_of_the_loss_not_of_the_objective(x64, name):
    """infomax_rule on an exactly enumerated sample (every pattern repeated in proportion to its
    probability, tests/inference/cases_information.py) equals jax.grad of the loss −E[f] —
    the sign of jax.grad, so ``optax.chain(rule, optax.sgd(η))`` raises the objective."""
    made = cases.exact_rule_case(name, "none")
    grads, _ = made.rule.update(made.signals, made.rule.init(made.params), made.params)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(made.reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    spec, network = cases.quarter_network()
    criterion = cases.criteria(spec)[name]
    inputs, targets = made.signals.inputs, made.signals.targets
    patterns, log_prob = cases.enumerated(spec, network, inputs)

    def objective(p):  # J = E[f] by enumeration
        f, _ = im.evaluate_signal(spec, criterion, p.network, p.readout, patterns, inputs, targets)
        return float(jnp.sum(jnp.exp(log_prob(p.network)) * f))

    stepped = optax.apply_updates(made.params, jax.tree.map(lambda g: -1e-3 * g, grads))
    assert objective(stepped) > objective(made.params)


def test_signals_match_their_equations(x64):
    """Each criterion's f ``(B, K)`` against a direct per-bin evaluation of its equation."""
    spec, params = _tiny_network(jnp.float64)
    criteria = cases.criteria(spec)
    inputs = _binary(2, (3, N_STEPS, 2), 0.4, jnp.float64)
    spikes = _binary(3, (3, 2, N_STEPS, 2), 0.5, jnp.float64)  # (B, K, T, N)
    targets = jnp.array([0, 1, 1])
    counts = spikes.sum(-2)

    readout = cases.random_readout(criteria["barber_agakov"], 2, jnp.float64)
    f, _ = im.evaluate_signal(spec, criteria["barber_agakov"], params, readout, spikes, inputs)
    logits = counts @ readout.weight + readout.bias  # (B, K, M)
    per_bin = ps.bernoulli_log_prob(inputs[:, None], logits[:, :, None, :])  # (B, K, T, M)
    np.testing.assert_allclose(f, per_bin.sum((-2, -1)), rtol=1e-12)

    critic = cases.random_readout(criteria["infonce"], 3, jnp.float64)
    f, _ = im.evaluate_signal(spec, criteria["infonce"], params, critic, spikes, inputs)
    x_counts = inputs.sum(-2)
    for j in range(3):
        for k in range(2):
            scores = np.array(
                [
                    x_counts[i] @ critic.weight @ counts[j, k] + x_counts[i] @ critic.input_weight
                    for i in range(3)
                ]
            )
            want = scores[j] - logsumexp(scores) + np.log(3)
            np.testing.assert_allclose(f[j, k], want, rtol=1e-10)
    assert np.all(f <= np.log(3) + 1e-12)

    classifier = cases.random_readout(criteria["bottleneck"], 4, jnp.float64)
    f, metrics = im.evaluate_signal(
        spec, criteria["bottleneck"], params, classifier, spikes, inputs, targets
    )
    u = ps.potentials(spec, params, spikes, jnp.broadcast_to(inputs[:, None], (3, 2, N_STEPS, 2)))
    p, r = jax.nn.sigmoid(u), 0.1
    kl = np.sum(p * np.log(p / r) + (1 - p) * np.log((1 - p) / (1 - r)), axis=(-2, -1))
    log_q = np.asarray(jax.nn.log_softmax(counts @ classifier.weight + classifier.bias))
    log_q = np.take_along_axis(log_q, np.asarray(targets)[:, None, None], -1)[..., 0]
    np.testing.assert_allclose(f, log_q - 0.3 * kl, rtol=1e-10)
    np.testing.assert_allclose(metrics["kl"], kl.mean(), rtol=1e-10)


def test_weighted_score_contracts_the_per_sample_local_scores(x64):
    """Σ_s w_s ∇log p(s_s‖x_s) in one backward pass equals the weighted sum of the per-sample
    local scores (pre-trace × (s − σ(u)), summed over bins)."""
    spec, params = _tiny_network(jnp.float64)
    spikes = _binary(6, (5, N_STEPS, 2), 0.5, jnp.float64)
    inputs = _binary(7, (5, N_STEPS, 2), 0.5, jnp.float64)
    weights = jnp.asarray(np.random.default_rng(8).normal(size=5))
    scores = im.sample_scores(spec, params, spikes, inputs)
    combined = im.weighted_score(spec, params, spikes, inputs, weights)
    for got, per_sample in zip(combined, scores, strict=True):
        np.testing.assert_allclose(got, jnp.tensordot(weights, per_sample, axes=1), atol=1e-12)


def test_rate_penalised_infomax_gradient_is_that_of_the_exact_information(x64):
    """With every input pattern as reference (weights p(x)), the expected Toyoizumi loss
    gradient Σ_{x,y} p(x) p(y|x) [ℓ ∇log p + ∇ℓ] (ℓ = −f) is −jax.grad of
    I(X;Y) − γ KL(P(Y) ‖ Bern(r)^T) computed independently from the enumerated channel."""
    spec = ps.Network(1, kernels.raw_lags(2), input_basis=kernels.raw_lags(2), n_inputs=2)
    _, params = _poisson_neuron()
    params = _cast(params, jnp.float64)
    n_steps, p_in, gamma, r = 4, 0.3, 0.5, 0.1

    def exact_objective(p):
        channel = mi.network_channel(spec, p, n_steps, p_in)
        information = mi.channel_information(channel.log_px, channel.log_psx)
        log_py = logsumexp(channel.log_px[:, None] + channel.log_psx, axis=0)
        outputs = jnp.asarray(channel.outputs, jnp.float64)
        log_target = jnp.sum(outputs * np.log(r) + (1 - outputs) * np.log(1 - r), axis=(1, 2))
        return information - gamma * jnp.sum(jnp.exp(log_py) * (log_py - log_target))

    exact = jax.jit(jax.grad(lambda p: -exact_objective(p)))(params)
    channel = mi.network_channel(spec, params, n_steps, p_in)
    x = jnp.asarray(channel.inputs, jnp.float64)
    criterion = crit.rate_penalised_infomax(
        spec, gamma, r, reference_inputs=x, reference_log_weights=channel.log_px
    )
    y = jnp.asarray(channel.outputs, jnp.float64)
    spikes = jnp.broadcast_to(y[None], (len(x), len(y), n_steps, 1))  # (B = n_x, K = n_y, T, N)
    weights = jnp.exp(channel.log_psx + channel.log_px[:, None])  # (n_x, n_y)

    def weighted_loss(p):
        f, _ = im.evaluate_signal(spec, criterion, p, (), spikes, x, None)
        return -jnp.sum(weights * f), -f

    pathwise, sample_loss = jax.jit(jax.grad(weighted_loss, has_aux=True))(params)
    n = spikes.shape[0] * spikes.shape[1]
    tiled = jnp.broadcast_to(x[:, None], (len(x), len(y), n_steps, 2)).reshape(n, n_steps, 2)
    scores = jax.jit(im.sample_scores, static_argnums=0)(
        spec, params, spikes.reshape(n, n_steps, 1), tiled
    )
    weighted = (weights * sample_loss).ravel()
    through = jax.tree.map(lambda e: jnp.tensordot(weighted, e, axes=1), scores)
    for got, want in zip(jax.tree.map(jnp.add, pathwise, through), exact, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-13)
    # f without the rate term, averaged, is exactly I(X;Y).
    info_only = crit.rate_penalised_infomax(
        spec, 0.0, r, reference_inputs=x, reference_log_weights=channel.log_px
    )
    f0, _ = jax.jit(lambda p: im.evaluate_signal(spec, info_only, p, (), spikes, x, None))(params)
    np.testing.assert_allclose(
        jnp.sum(weights * f0), mi.channel_information(channel.log_px, channel.log_psx), rtol=1e-10
    )


def test_rule_is_unbiased_and_the_baselines_cut_its_variance():
    """infomax_rule's gradients on 30 independent batches (64 samples of each of 3 inputs)
    average to the enumerated gradient of the loss within 4 standard errors for every
    parameter, with the leave-one-out, optimal and no baseline; both baselines lower the total
    variance."""
    spec, params = _tiny_network()
    criterion = cases.criteria(spec)["bottleneck"]
    inputs = _binary(4, (3, N_STEPS, 2), 0.4, jnp.float32)
    targets = jnp.array([0, 1, 1])
    learned = im.InfoMaxParams(params, cases.random_readout(criterion, 5, jnp.float32))
    spikes_all, log_prob = cases.enumerated(spec, params, inputs)

    def loss(p):
        f, _ = im.evaluate_signal(
            spec, criterion, p.network, p.readout, spikes_all, inputs, targets
        )
        return -jnp.sum(jnp.exp(log_prob(p.network)) * f) / 3

    exact = np.concatenate([np.ravel(g) for g in jax.tree.leaves(jax.grad(loss)(learned))])
    k = 64
    tiled = jnp.repeat(inputs, k, axis=0)
    variances = {}
    for baseline in ("loo", "optimal", "none"):
        rule = im.infomax_rule(spec, criterion, baseline=baseline, kappa=0.5)
        update = jax.jit(rule.update)
        state = rule.init(learned)
        estimates = []
        for batch_key in jax.random.split(jax.random.key(5), 30):
            spikes = ps.sample(spec, params, batch_key, N_STEPS, 3 * k, inputs=tiled)
            spikes = spikes.reshape(3, k, N_STEPS, 2).astype(jnp.float32)  # (B, K, T, N)
            grads, state = update(im.InfoMaxSignals(spikes, inputs, targets), state, learned)
            estimates.append(np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)]))
        estimates = np.array(estimates[5:])  # the optimal baseline's averages warm up
        mean, se = estimates.mean(0), estimates.std(0) / np.sqrt(len(estimates))
        assert np.all(np.abs(mean - exact) <= 4 * se + 1e-6), (baseline, mean - exact, se)
        variances[baseline] = estimates.var(0).sum()
    assert variances["loo"] < 0.7 * variances["none"], variances
    assert variances["optimal"] < 0.7 * variances["none"], variances


def test_trainer_follows_the_rule_and_shares_its_state_layout():
    """One infomax_trainer step with plain SGD moves the parameters by −η × the rule's
    gradient on the step's own samples (the spikes are redrawn from the same key), the State
    holds no key, and the Info's loss is −mean f before the update."""
    spec, params = _tiny_network()
    criterion = cases.criteria(spec)["barber_agakov"]
    eta = 0.1
    trainer = im.infomax_trainer(spec, criterion, optax.sgd(eta), n_samples=3, baseline="none")
    learned = im.InfoMaxParams(params, criterion.init_readout(jax.random.key(0)))
    state = trainer.init(learned)
    assert set(state._fields) == {"params", "rule_state", "opt_state"}
    inputs = _binary(9, (4, N_STEPS, 2), 0.4, jnp.float32)
    key = jax.random.key(3)
    new_state, info = trainer.step(key, state, inputs)
    spikes = ps.sample(spec, params, key, N_STEPS, 12, inputs=jnp.repeat(inputs, 3, axis=0))
    signals = im.InfoMaxSignals(spikes.reshape(4, 3, N_STEPS, 2).astype(jnp.float32), inputs)
    rule = im.infomax_rule(spec, criterion, baseline="none")
    grads, _ = rule.update(signals, rule.init(learned), learned)
    for new, old, g in zip(
        jax.tree.leaves(new_state.params),
        jax.tree.leaves(learned),
        jax.tree.leaves(grads),
        strict=True,
    ):
        np.testing.assert_allclose(new, old - eta * g, rtol=1e-5, atol=1e-6)
    f, metrics = im.evaluate_signal(
        spec, criterion, params, learned.readout, signals.spikes, inputs
    )
    np.testing.assert_allclose(info.loss, -jnp.mean(f), rtol=1e-6)
    assert set(info.metrics) == set(metrics) == {"bound", "rate"}


def test_leave_one_out_signals():
    f = jnp.array([[1.0, 4.0], [3.0, 0.0], [5.0, 2.0]])
    np.testing.assert_allclose(
        score.leave_one_out(f), [[1 - 4, 4 - 1], [3 - 3, 0 - 3], [5 - 2, 2 - 2]]
    )
    np.testing.assert_allclose(score.leave_one_out(f.T, axis=1), score.leave_one_out(f).T)
    with pytest.raises(ValueError, match="number of samples per group"):
        score.leave_one_out(jnp.ones((1, 3)))


# ------------------------------------------------------------------------ Toyoizumi et al.


def _poisson_neuron():
    spec = ps.Network(1, kernels.raw_lags(2), input_basis=kernels.raw_lags(2), n_inputs=2)
    params = spec.init_params(jax.random.key(0), rate=100.0, weight_scale=0.3, refractory=1.0)
    return spec, params


#: One optimizer object: trainers that share it (and differ only in the criterion's
#: hyper-parameters) share one compiled step.
ADAM = optax.adam(0.05)


def _train(spec, criterion, params, data, *, epochs, validation=None):
    """``fit`` an infomax_trainer (:data:`ADAM`, K = 4, batches of 64) from ``params`` and a
    zero read-out; with ``validation`` (the trainer's batch format), a ``fit`` callback records
    :func:`evaluate_infomax` on it before training and after every epoch. Returns
    ``(FitResult, {metric: (epochs + 1,) array})``."""
    trainer = im.infomax_trainer(spec, criterion, ADAM, n_samples=4)
    start = im.InfoMaxParams(params, criterion.init_readout(jax.random.key(0)))
    held_out = []

    def evaluate(index, learned):
        key = jax.random.fold_in(jax.random.key(9), index)
        held_out.append(
            im.evaluate_infomax(spec, criterion, learned, key, validation, batch_size=64)
        )

    callback = None
    if validation is not None:
        evaluate(0, start)

        def callback(epoch, state, info):
            evaluate(epoch + 1, state.params)

    result = fit(
        trainer,
        start,
        data,
        key=jax.random.key(2),
        epochs=epochs,
        batch_size=64,
        callback=callback,
        progress=False,
    )
    names = held_out[0] if held_out else {}
    return result, {name: np.array([row[name] for row in held_out]) for name in names}


@pytest.mark.slow
def test_infomax_learning_increases_the_exact_information_and_the_rate_term_holds_the_rate():
    """A GLM neuron with two Bernoulli(0.3) input trains, 4-bin windows: training with the
    batch marginal (96 steps) raises the exactly enumerated I(X;Y) from < 0.01 to > 0.5 nats;
    the rate penalty (γ = 1, r = 0.1) ends with the firing probability nearer r than γ = 0."""
    spec, params = _poisson_neuron()
    n_steps, p_in, r = 4, 0.3, 0.1

    def exact(p):
        channel = mi.network_channel(spec, p, n_steps, p_in)
        joint = jnp.exp(channel.log_px[:, None] + channel.log_psx)
        rate = jnp.sum(joint * jnp.asarray(channel.outputs).mean((1, 2))[None])
        return float(mi.channel_information(channel.log_px, channel.log_psx)), float(rate)

    before, _ = exact(params)
    data = jax.random.bernoulli(jax.random.key(1), p_in, (2048, n_steps, 2)).astype(jnp.float32)
    results = {}
    for gamma in (0.0, 1.0):
        criterion = crit.rate_penalised_infomax(spec, gamma, r)
        result, _ = _train(spec, criterion, params, data, epochs=3)
        results[gamma] = exact(result.params.network)
        information = result.history["metrics_information"]
        assert information[-1] > information[0]
        assert np.all(np.diff(result.history["loss"]) < 0)
    print(f"exact I(X;Y): before {before:.4f}, after (γ, I, rate): {results}")
    assert before < 0.01
    assert results[0.0][0] > 0.5
    assert abs(results[1.0][1] - r) < abs(results[0.0][1] - r)


@pytest.mark.slow
def test_spiking_bounds_stay_below_the_exact_information_and_rise_with_training():
    """The same neuron trained by Barber–Agakov InfoMax (H(X) = 8 H_b(0.3) exactly) and by
    InfoNCE (batches of 64): the held-out bound rises during training and ends below the
    exactly enumerated I(X;S) of the trained network (within 3 standard errors)."""
    spec, params = _poisson_neuron()
    n_steps, p_in = 4, 0.3
    entropy_x = 2 * n_steps * -(p_in * np.log(p_in) + (1 - p_in) * np.log(1 - p_in))
    data = jax.random.bernoulli(jax.random.key(1), p_in, (3072, n_steps, 2)).astype(jnp.float32)
    train, held_out = data[:2048], data[2048:]
    for criterion in (crit.barber_agakov(spec, entropy_x), crit.infonce(spec)):
        result, validated = _train(spec, criterion, params, train, epochs=2, validation=held_out)
        batch_bounds = [
            im.evaluate_infomax(
                spec, criterion, result.params, key, held_out[64 * i : 64 * (i + 1)]
            )
            for i, key in enumerate(jax.random.split(jax.random.key(3), 16))
        ]
        batch_bounds = [row["bound"] for row in batch_bounds]
        bound, se = np.mean(batch_bounds), np.std(batch_bounds) / np.sqrt(16)
        channel = mi.network_channel(spec, result.params.network, n_steps, p_in)
        exact = float(mi.channel_information(channel.log_px, channel.log_psx))
        print(f"{criterion.name}: bound {bound:.3f} ± {se:.3f} <= exact I {exact:.3f} nats")
        assert validated["bound"][-1] > validated["bound"][0] + 0.05
        assert bound < exact + 3 * se


def test_infomax_window_potentiates_pre_before_post():
    """Toyoizumi et al. (2005): the rule's weight change for one pre spike at t_pre and one post
    spike at t_post is positive for pre-before-post within the EPSP (peaking near its peak),
    negative for post-before-pre (refractoriness); a rate above the target (γ > 0) shifts the
    whole window down (the BCM-like term)."""
    spec = ps.Network(
        1, kernels.raw_lags(3), input_basis=kernels.alpha([0.002], 8, 1e-3), n_inputs=3
    )
    params = spec.init_params(jax.random.key(0), rate=20.0, weight_scale=0.0, refractory=0.0)
    params = params._replace(c=jnp.full((3, 1, 1), 2.0), v=jnp.array([[-4.0, -2.0, -1.0]]))
    lags = np.arange(-6, 7)
    window = crit.toyoizumi_window(spec, params, lags, jax.random.key(1), 0.05, n_references=4096)
    dw = dict(zip(lags.tolist(), window.dw.tolist(), strict=True))
    print("InfoMax window Δt (bins) -> Δw:", {k: round(v, 3) for k, v in dw.items()})
    assert all(dw[lag] > 0.1 for lag in range(1, 5)), dw
    assert all(dw[lag] < 0 for lag in range(-6, 1)), dw
    assert 1 <= lags[np.argmax(window.dw)] <= 3
    penalised = crit.toyoizumi_window(
        spec, params, lags, jax.random.key(1), 0.05, gamma=2.0, target_prob=0.01
    )
    assert np.all(penalised.dw < window.dw)


# ------------------------------------------------------------------ bottleneck and digits


@pytest.mark.slow
def test_bottleneck_trades_spike_rate_for_accuracy_monotonically_in_beta():
    """Four Poisson input patterns to classify: as β grows (0, 0.01, 0.03, 0.1) the held-out
    firing rate falls strictly and the decoding accuracy never rises by more than 2 standard
    errors, and drops overall. The four trainers share one compiled step."""
    n_steps, n_classes = 8, 4
    spec = ps.Network(
        8,
        kernels.raw_lags(1),
        input_basis=kernels.raw_lags(2),
        n_inputs=8,
        connectivity=np.zeros((8, 8), bool),
    )
    params = spec.init_params(jax.random.key(1), rate=100.0, weight_scale=1.0, refractory=0.0)
    prototypes = np.random.default_rng(0).uniform(0.05, 0.6, (n_classes, 8))

    def draw(key, n):
        labels = np.asarray(jax.random.randint(key, (n,), 0, n_classes), np.int32)
        probs = prototypes[labels][:, None, :]
        x = jax.random.bernoulli(jax.random.fold_in(key, 1), probs, (n, n_steps, 8))
        return np.asarray(x, np.float32), labels

    train, test = draw(jax.random.key(2), 1024), draw(jax.random.key(3), 512)
    rows, compiled = [], im._train_step._cache_size()
    for beta in (0.0, 0.01, 0.03, 0.1):
        criterion = crit.information_bottleneck(spec, n_classes, beta, target_prob=0.02)
        _, h = _train(spec, criterion, params, train, epochs=4, validation=test)
        rows.append((beta, h["rate"][-1], h["accuracy"][-1], h["kl"][-1]))
    print("β, rate per bin, accuracy, KL per sample:")
    for row in rows:
        print("  {:5.2f}  {:.4f}  {:.3f}  {:7.2f}".format(*row))
    assert im._train_step._cache_size() == compiled + 1  # one compiled step for every β
    rates, accuracies = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    se = np.sqrt(accuracies * (1 - accuracies) / 512)
    assert np.all(np.diff(rates) < 0), rates
    assert np.all(np.diff(accuracies) < 2 * se[1:]), accuracies
    assert accuracies[0] - accuracies[-1] > 0.1


@pytest.mark.slow
def test_infomax_representation_beats_the_untrained_network_in_a_linear_probe():
    """Digits rate-coded as 64 input spike trains (12 bins): a 32-neuron layer trained by
    Barber–Agakov InfoMax (no labels) gives spike counts whose held-out linear-probe accuracy
    clearly exceeds that of the same network before training."""
    from sklearn.linear_model import LogisticRegression

    images, labels = ps.data.load_digits()
    n_steps, dt = 12, 5e-3
    x = encoding.rate_encode(
        jax.random.key(0),
        images.reshape(len(images), -1),
        n_steps,
        dt=dt,
        max_rate=100.0,
        min_rate=5.0,
    )
    x = np.asarray(x, np.float32)
    n_train = 1200
    basis = kernels.exponential([0.02], 10, dt)
    spec = ps.Network(
        32, basis, input_basis=basis, n_inputs=64, connectivity=np.zeros((32, 32), bool), dt=dt
    )
    params = spec.init_params(jax.random.key(1), rate=20.0, refractory=1.0)

    def probe(p):
        def counts(key, inputs):
            # 256 trials per call: the sampler compiled for training (4 samples × 64) serves.
            padded = np.concatenate([inputs, inputs[: -len(inputs) % 256]])
            chunks = padded.reshape(-1, 256, *inputs.shape[1:])
            keys = jax.random.split(key, len(chunks))
            counted = [
                np.asarray(ps.sample(spec, p, k, n_steps, 256, inputs=c).sum(1))
                for k, c in zip(keys, chunks, strict=True)
            ]
            return np.concatenate(counted)[: len(inputs)]

        train = counts(jax.random.key(5), x[:n_train])
        test = counts(jax.random.key(6), x[n_train:])
        model = LogisticRegression(max_iter=2000).fit(train, labels[:n_train])
        return model.score(test, labels[n_train:])

    result, _ = _train(spec, crit.barber_agakov(spec), params, x[:n_train], epochs=6)
    untrained, trained = probe(params), probe(result.params.network)
    print(f"linear probe on held-out digits: untrained {untrained:.3f}, InfoMax {trained:.3f}")
    assert result.history["metrics_bound"][-1] > result.history["metrics_bound"][0]
    assert trained > untrained + 0.2


# -------------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors():
    spec, params = _tiny_network()
    no_inputs = ps.Network(2, kernels.raw_lags(2))
    with pytest.raises(ValueError, match="exogenous inputs"):
        crit.barber_agakov(no_inputs)
    with pytest.raises(TypeError, match=r"probsnn\.Network"):
        im.infomax_rule("spec", crit.infonce(spec))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        crit.information_bottleneck(spec, 2, beta=-1.0)
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        crit.information_bottleneck(spec, 1, beta=1.0)
    with pytest.raises(ValueError, match=r"target_prob must lie in \(0, 1\)"):
        crit.rate_penalised_infomax(spec, 1.0, target_prob=1.5)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        crit.rate_penalised_infomax(spec, -1.0)
    with pytest.raises(ValueError, match="reference_inputs must have shape"):
        crit.rate_penalised_infomax(spec, reference_inputs=np.zeros((4, 3, 5)))
    with pytest.raises(ValueError, match="normalised"):
        crit.rate_penalised_infomax(
            spec, reference_inputs=np.zeros((4, 3, 2)), reference_log_weights=np.zeros(4)
        )
    criterion = crit.infonce(spec)
    with pytest.raises(ValueError, match="baseline must be one of"):
        im.infomax_rule(spec, criterion, baseline="mean")
    with pytest.raises(ValueError, match="kappa must be in"):
        im.infomax_rule(spec, criterion, kappa=1.0)
    optimizer = optax.scale(0.1)
    with pytest.raises(ValueError, match="needs n_samples >= 2"):
        im.infomax_trainer(spec, criterion, optimizer, n_samples=1)
    rule = im.infomax_rule(spec, criterion)
    learned = im.InfoMaxParams(params, criterion.init_readout(None))
    state = rule.init(learned)
    inputs = jnp.zeros((3, 4, 2))
    with pytest.raises(ValueError, match=r"signals.spikes must have shape \(B, K, T, 2\)"):
        rule.update(im.InfoMaxSignals(jnp.zeros((3, 4, 2)), inputs), state, learned)
    with pytest.raises(ValueError, match=r"signals.inputs must have shape \(2, 4, 2\)"):
        rule.update(im.InfoMaxSignals(jnp.zeros((2, 3, 4, 2)), inputs), state, learned)
    with pytest.raises(ValueError, match="needs params"):
        rule.update(im.InfoMaxSignals(jnp.zeros((3, 2, 4, 2)), inputs), state)
    trainer = im.infomax_trainer(spec, criterion, optimizer)
    with pytest.raises(TypeError, match=r"InfoMaxParams\(network_params, readout\)"):
        trainer.init(params)
    state = trainer.init(learned)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="takes no targets"):
        trainer.step(key, state, (inputs, np.zeros(3, int)))
    with pytest.raises(ValueError, match=r"inputs must have shape \(B, T, 2\)"):
        trainer.step(key, state, jnp.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match=r"batch must be inputs or \(inputs, targets\)"):
        trainer.step(key, state, (inputs, None, None))
    with pytest.raises(ValueError, match=r"batch_size must lie in 1\.\.3"):
        im.evaluate_infomax(spec, criterion, learned, key, inputs, batch_size=8)
    vib = crit.information_bottleneck(spec, 2, 1.0)
    bottleneck = im.infomax_trainer(spec, vib, optimizer)
    vib_state = bottleneck.init(im.InfoMaxParams(params, vib.init_readout(key)))
    with pytest.raises(ValueError, match="needs targets"):
        bottleneck.step(key, vib_state, inputs)
    with pytest.raises(ValueError, match="targets must be"):
        bottleneck.step(key, vib_state, (inputs, np.zeros(3)))
    refs = crit.rate_penalised_infomax(spec, reference_inputs=np.zeros((4, 5, 2)))
    toyoizumi = im.infomax_trainer(spec, refs, optimizer)
    with pytest.raises(ValueError, match=r"reference_inputs must have the inputs' \(T, M\)"):
        toyoizumi.step(key, toyoizumi.init(im.InfoMaxParams(params, ())), inputs)
    with pytest.raises(ValueError, match="lags_bins must be"):
        crit.toyoizumi_window(spec, params, [0.5], jax.random.key(0), 0.1)
    with pytest.raises(ValueError, match="pre must be an input channel"):
        crit.toyoizumi_window(spec, params, [1], jax.random.key(0), 0.1, pre=5)
