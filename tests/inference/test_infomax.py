"""Information criteria for spiking networks: exact gradients by enumeration, unbiasedness,
learning (exact information rises, STDP window, bottleneck trade-off, digit representation)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import logsumexp

import probsnn as ps
from probsnn import encoding, kernels
from probsnn.inference import score
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


def _random_readout(criterion, seed, dtype):
    rng = np.random.default_rng(seed)
    zeros = criterion.init_readout(None)
    return jax.tree.map(lambda a: jnp.asarray(0.5 * rng.normal(size=a.shape), dtype), zeros)


def _binary(seed, shape, p, dtype):
    return jnp.asarray(np.random.default_rng(seed).random(shape) < p, dtype)


def _criteria(spec):
    return {
        "barber_agakov": crit.barber_agakov(spec, input_entropy=1.0),
        "infonce": crit.infonce(spec),
        "bottleneck": crit.information_bottleneck(spec, 2, beta=0.3, target_prob=0.1),
        "toyoizumi": crit.rate_penalised_infomax(spec, gamma=0.5, target_prob=0.1),
    }


def _enumerated(spec, params, inputs):
    """Every output pattern as K samples of each input: spikes (P, B, T, N), log p(s_p‖x_b)."""
    patterns = jnp.asarray(mi.enumerate_patterns(N_STEPS, spec.n_neurons), inputs.dtype)
    shape = (len(patterns), inputs.shape[0], *patterns.shape[1:])
    spikes = jnp.broadcast_to(patterns[:, None], shape)
    tiled = jnp.broadcast_to(inputs, (len(patterns), *inputs.shape))

    def log_prob(p):
        u = ps.potentials(spec, p, spikes, tiled)
        return jnp.sum(ps.bernoulli_log_prob(spikes, u), axis=(-2, -1))

    return spikes, log_prob


@pytest.mark.parametrize("name", ["barber_agakov", "infonce", "bottleneck", "toyoizumi"])
def test_score_function_estimator_is_the_gradient_of_the_enumerated_objective(x64, name):
    """J(θ, ψ) = mean_b Σ_s p_θ(s‖x_b) f_{θ,ψ}(s; x, y) by enumerating all 64 spike patterns
    of a recurrent two-neuron network: Σ_s p (f ∇log p + ∇f), with the local
    pre-trace × error scores of :func:`sample_scores`, equals jax.grad(J) to 1e-9."""
    spec, params = _tiny_network(jnp.float64)
    criterion = _criteria(spec)[name]
    inputs = _binary(1, (3, N_STEPS, 2), 0.4, jnp.float64)
    targets = jnp.array([0, 1, 1]) if criterion.needs_targets else None
    readout = _random_readout(criterion, 1, jnp.float64)
    learned = im.InfoMaxParams(params, readout)
    spikes, log_prob = _enumerated(spec, params, inputs)
    batch = inputs.shape[0]

    def objective(p):
        f, _ = im.evaluate_signal(spec, criterion, p.network, p.readout, spikes, inputs, targets)
        return jnp.sum(jnp.exp(log_prob(p.network)) * f) / batch

    exact = jax.jit(jax.grad(objective))(learned)
    weights = jnp.exp(log_prob(params)) / batch  # (P, B)

    def weighted_signal(p):
        f, _ = im.evaluate_signal(spec, criterion, p.network, p.readout, spikes, inputs, targets)
        return jnp.sum(weights * f), f

    pathwise, f = jax.jit(jax.grad(weighted_signal, has_aux=True))(learned)
    n = spikes.shape[0] * batch
    tiled = jnp.broadcast_to(inputs, (spikes.shape[0], *inputs.shape))
    scores = jax.jit(im.sample_scores, static_argnums=0)(
        spec, params, spikes.reshape(n, N_STEPS, -1), tiled.reshape(n, N_STEPS, -1)
    )
    through = jax.tree.map(lambda e: jnp.tensordot((weights * f).ravel(), e, axes=1), scores)
    estimate = im.InfoMaxParams(jax.tree.map(jnp.add, pathwise.network, through), pathwise.readout)
    for got, want in zip(jax.tree.leaves(estimate), jax.tree.leaves(exact), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(exact.network)) > 1e-3


def test_signals_match_their_equations(x64):
    """Each criterion's f against a direct per-bin evaluation of its equation."""
    spec, params = _tiny_network(jnp.float64)
    criteria = _criteria(spec)
    inputs = _binary(2, (3, N_STEPS, 2), 0.4, jnp.float64)
    spikes = _binary(3, (2, 3, N_STEPS, 2), 0.5, jnp.float64)
    targets = jnp.array([0, 1, 1])
    counts = spikes.sum(-2)

    readout = _random_readout(criteria["barber_agakov"], 2, jnp.float64)
    f, _ = im.evaluate_signal(spec, criteria["barber_agakov"], params, readout, spikes, inputs)
    logits = counts @ readout.weight + readout.bias  # (K, B, M)
    per_bin = ps.bernoulli_log_prob(inputs[None], logits[:, :, None, :])  # (K, B, T, M)
    np.testing.assert_allclose(f, per_bin.sum((-2, -1)), rtol=1e-12)

    critic = _random_readout(criteria["infonce"], 3, jnp.float64)
    f, _ = im.evaluate_signal(spec, criteria["infonce"], params, critic, spikes, inputs)
    x_counts = inputs.sum(-2)
    for k in range(2):
        for j in range(3):
            scores = np.array(
                [
                    x_counts[i] @ critic.weight @ counts[k, j] + x_counts[i] @ critic.input_weight
                    for i in range(3)
                ]
            )
            want = scores[j] - logsumexp(scores) + np.log(3)
            np.testing.assert_allclose(f[k, j], want, rtol=1e-10)
    assert np.all(f <= np.log(3) + 1e-12)

    classifier = _random_readout(criteria["bottleneck"], 4, jnp.float64)
    f, metrics = im.evaluate_signal(
        spec, criteria["bottleneck"], params, classifier, spikes, inputs, targets
    )
    u = ps.potentials(spec, params, spikes, jnp.broadcast_to(inputs, (2, *inputs.shape)))
    p, r = jax.nn.sigmoid(u), 0.1
    kl = np.sum(p * np.log(p / r) + (1 - p) * np.log((1 - p) / (1 - r)), axis=(-2, -1))
    log_q = jax.nn.log_softmax(counts @ classifier.weight + classifier.bias)[..., targets]
    log_q = np.take_along_axis(np.asarray(log_q), np.arange(3)[None, :, None], -1)[..., 0]
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
    """With every input pattern as reference (weights p(x)), the expected Toyoizumi update
    Σ_{x,y} p(x) p(y|x) [f ∇log p + ∇f] is jax.grad of I(X;Y) − γ KL(P(Y) ‖ Bern(r)^T)
    computed independently from the enumerated channel."""
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

    exact = jax.jit(jax.grad(exact_objective))(params)
    channel = mi.network_channel(spec, params, n_steps, p_in)
    x = jnp.asarray(channel.inputs, jnp.float64)
    criterion = crit.rate_penalised_infomax(
        spec, gamma, r, reference_inputs=x, reference_log_weights=channel.log_px
    )
    y = jnp.asarray(channel.outputs, jnp.float64)
    spikes = jnp.broadcast_to(y[:, None], (len(y), len(x), n_steps, 1))
    weights = jnp.exp(channel.log_psx.T + channel.log_px[None])  # (n_y, n_x)

    def weighted(p):
        f, _ = im.evaluate_signal(spec, criterion, p, (), spikes, x, None)
        return jnp.sum(weights * f), f

    pathwise, f = jax.jit(jax.grad(weighted, has_aux=True))(params)
    n = spikes.shape[0] * spikes.shape[1]
    tiled = jnp.broadcast_to(x, (len(y), *x.shape)).reshape(n, n_steps, 2)
    scores = jax.jit(im.sample_scores, static_argnums=0)(
        spec, params, spikes.reshape(n, n_steps, 1), tiled
    )
    through = jax.tree.map(lambda e: jnp.tensordot((weights * f).ravel(), e, axes=1), scores)
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
    """infomax_rule's updates on 30 independent batches (64 samples of each of 3 inputs)
    average to the enumerated gradient within 4 standard errors for every parameter, with the
    leave-one-out, optimal and no baseline; both baselines lower the total variance."""
    spec, params = _tiny_network()
    criterion = _criteria(spec)["bottleneck"]
    inputs = _binary(4, (3, N_STEPS, 2), 0.4, jnp.float32)
    targets = jnp.array([0, 1, 1])
    learned = im.InfoMaxParams(params, _random_readout(criterion, 5, jnp.float32))
    spikes_all, log_prob = _enumerated(spec, params, inputs)

    def objective(p):
        f, _ = im.evaluate_signal(
            spec, criterion, p.network, p.readout, spikes_all, inputs, targets
        )
        return jnp.sum(jnp.exp(log_prob(p.network)) * f) / 3

    exact = np.concatenate([np.ravel(g) for g in jax.tree.leaves(jax.grad(objective)(learned))])
    k = 64
    tiled = jnp.tile(inputs, (k, 1, 1))
    variances = {}
    for baseline in ("loo", "optimal", "none"):
        rule = im.infomax_rule(spec, criterion, baseline=baseline, kappa=0.5)
        update = jax.jit(rule.update)
        state = rule.init(learned)
        estimates = []
        for batch_key in jax.random.split(jax.random.key(5), 30):
            spikes = ps.sample(spec, params, batch_key, N_STEPS, 3 * k, inputs=tiled)
            spikes = spikes.reshape(k, 3, N_STEPS, 2).astype(jnp.float32)
            updates, state = update(im.InfoMaxSignals(spikes, inputs, targets), state, learned)
            estimates.append(np.concatenate([np.ravel(u) for u in jax.tree.leaves(updates)]))
        estimates = np.array(estimates[5:])  # the optimal baseline's averages warm up
        mean, se = estimates.mean(0), estimates.std(0) / np.sqrt(len(estimates))
        assert np.all(np.abs(mean - exact) <= 4 * se + 1e-6), (baseline, mean - exact, se)
        variances[baseline] = estimates.var(0).sum()
    assert variances["loo"] < 0.7 * variances["none"], variances
    assert variances["optimal"] < 0.7 * variances["none"], variances


def test_leave_one_out_signals():
    f = jnp.array([[1.0, 4.0], [3.0, 0.0], [5.0, 2.0]])
    np.testing.assert_allclose(
        score.leave_one_out(f), [[1 - 4, 4 - 1], [3 - 3, 0 - 3], [5 - 2, 2 - 2]]
    )
    with pytest.raises(ValueError, match="number of samples per group"):
        score.leave_one_out(jnp.ones((1, 3)))


# ------------------------------------------------------------------------ Toyoizumi et al.


def _poisson_neuron():
    spec = ps.Network(1, kernels.raw_lags(2), input_basis=kernels.raw_lags(2), n_inputs=2)
    params = spec.init_params(jax.random.key(0), rate=100.0, weight_scale=0.3, refractory=1.0)
    return spec, params


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
    optimizer = optax.chain(optax.scale_by_adam(), optax.scale(0.05))
    results = {}
    for gamma in (0.0, 1.0):
        criterion = crit.rate_penalised_infomax(spec, gamma, r)
        trainer = im.infomax_trainer(spec, criterion, optimizer, n_samples=4)
        fit = im.fit_infomax(
            trainer, params, jax.random.key(2), data, epochs=3, batch_size=64, progress=False
        )
        results[gamma] = exact(fit.params.network)
        assert fit.history["information"][-1] > fit.history["information"][0]
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
    optimizer = optax.chain(optax.scale_by_adam(), optax.scale(0.05))
    for criterion in (crit.barber_agakov(spec, entropy_x), crit.infonce(spec)):
        trainer = im.infomax_trainer(spec, criterion, optimizer, n_samples=4)
        fit = im.fit_infomax(
            trainer,
            params,
            jax.random.key(2),
            train,
            epochs=2,
            batch_size=64,
            validation=(held_out, None),
            progress=False,
        )
        batch_bounds = []
        for i, key in enumerate(jax.random.split(jax.random.key(3), 16)):
            _, metrics = trainer.evaluate(fit.params, key, held_out[64 * i : 64 * (i + 1)])
            batch_bounds.append(float(metrics["bound"]))
        bound, se = np.mean(batch_bounds), np.std(batch_bounds) / np.sqrt(16)
        channel = mi.network_channel(spec, fit.params.network, n_steps, p_in)
        exact = float(mi.channel_information(channel.log_px, channel.log_psx))
        print(f"{criterion.name}: bound {bound:.3f} ± {se:.3f} <= exact I {exact:.3f} nats")
        assert fit.history["val_bound"][-1] > fit.history["val_bound"][0] + 0.05
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
    optimizer = optax.chain(optax.scale_by_adam(), optax.scale(0.05))
    rows, compiled = [], im._train_step._cache_size()
    for beta in (0.0, 0.01, 0.03, 0.1):
        criterion = crit.information_bottleneck(spec, n_classes, beta, target_prob=0.02)
        trainer = im.infomax_trainer(spec, criterion, optimizer, n_samples=4)
        fit = im.fit_infomax(
            trainer,
            params,
            jax.random.key(4),
            *train,
            epochs=4,
            batch_size=64,
            validation=test,
            progress=False,
        )
        h = fit.history
        rows.append((beta, h["val_rate"][-1], h["val_accuracy"][-1], h["val_kl"][-1]))
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

    criterion = crit.barber_agakov(spec)
    optimizer = optax.chain(optax.scale_by_adam(), optax.scale(0.05))
    trainer = im.infomax_trainer(spec, criterion, optimizer, n_samples=4)
    fit = im.fit_infomax(
        trainer, params, jax.random.key(2), x[:n_train], epochs=6, batch_size=64, progress=False
    )
    untrained, trained = probe(params), probe(fit.params.network)
    print(f"linear probe on held-out digits: untrained {untrained:.3f}, InfoMax {trained:.3f}")
    assert fit.history["bound"][-1] > fit.history["bound"][0]
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
    with pytest.raises(ValueError, match=r"signals.spikes must have shape \(K, B, T, 2\)"):
        rule.update(im.InfoMaxSignals(jnp.zeros((3, 4, 2)), inputs), state, learned)
    with pytest.raises(ValueError, match=r"signals.inputs must have shape \(3, 4, 2\)"):
        rule.update(im.InfoMaxSignals(jnp.zeros((2, 3, 4, 2)), inputs[:2]), state, learned)
    with pytest.raises(ValueError, match="needs params"):
        rule.update(im.InfoMaxSignals(jnp.zeros((2, 3, 4, 2)), inputs), state)
    trainer = im.infomax_trainer(spec, criterion, optimizer)
    with pytest.raises(ValueError, match="takes no targets"):
        im.fit_infomax(trainer, params, jax.random.key(0), inputs, np.zeros(3, int), epochs=1)
    with pytest.raises(ValueError, match=r"inputs must have shape \(B, T, 2\)"):
        im.fit_infomax(trainer, params, jax.random.key(0), jnp.zeros((3, 4, 5)), epochs=1)
    with pytest.raises(ValueError, match=r"batch_size must lie in 1\.\.3"):
        im.fit_infomax(trainer, params, jax.random.key(0), inputs, epochs=1, batch_size=8)
    bottleneck = im.infomax_trainer(spec, crit.information_bottleneck(spec, 2, 1.0), optimizer)
    with pytest.raises(ValueError, match="needs targets"):
        im.fit_infomax(bottleneck, params, jax.random.key(0), inputs, epochs=1)
    with pytest.raises(ValueError, match="targets must be"):
        im.fit_infomax(bottleneck, params, jax.random.key(0), inputs, np.zeros(3), epochs=1)
    refs = crit.rate_penalised_infomax(spec, reference_inputs=np.zeros((4, 5, 2)))
    toyoizumi = im.infomax_trainer(spec, refs, optimizer)
    with pytest.raises(ValueError, match=r"reference_inputs must have the inputs' \(T, M\)"):
        toyoizumi.step(toyoizumi.init(params, jax.random.key(0)), inputs)
    with pytest.raises(ValueError, match="lags_bins must be"):
        crit.toyoizumi_window(spec, params, [0.5], jax.random.key(0), 0.1)
    with pytest.raises(ValueError, match="pre must be an input channel"):
        crit.toyoizumi_window(spec, params, [1], jax.random.key(0), 0.1, pre=5)
