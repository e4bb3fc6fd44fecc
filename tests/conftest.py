"""Shared fixtures: small networks and a float64 switch."""

import warnings

import jax
import numpy as np
import pytest

import probsnn as ps
from probsnn import kernels, topology


def pytest_configure(config):
    """Import ArviZ once in the controlling process, before pytest-xdist starts its workers.

    ArviZ 0.23 writes a once-a-day stamp file in the user's cache when it is imported (write a
    temporary file, then rename it). On a machine whose cache does not have it yet, two workers
    importing ArviZ at the same moment race on that rename and one fails to collect
    (FileNotFoundError). After this import the stamp is there and the workers only read it.
    """
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # ArviZ's refactoring notice
            import arviz  # noqa: F401


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's in-memory compiled programs after each test module.

    Every XLA CPU executable keeps its own memory mappings; a worker that compiles the
    thousands of programs of the whole suite passes the kernel's limit of 65,530 mappings per
    process (vm.max_map_count) and LLVM then crashes (a segfault while compiling or serialising
    a program). Programs shared across modules are reloaded from the persistent cache.
    """
    yield
    jax.clear_caches()


@pytest.fixture
def x64():
    """Run a test in float64 (restores the previous setting)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def make_network(kind: str, n_neurons: int = 5):
    """A small network of each flavour the tests sweep over."""
    cosine = kernels.raised_cosine(3, 1, 8)
    if kind == "dense":
        return ps.Network(n_neurons, cosine, dt=1e-3)
    if kind == "feedforward":
        return ps.Network(
            n_neurons, cosine, connectivity=topology.feedforward([2, n_neurons - 2]), dt=1e-3
        )
    if kind == "sparse_separate_feedback":
        return ps.Network(
            n_neurons,
            cosine,
            feedback_basis=kernels.exponential([0.002, 0.01], 15, 1e-3),
            connectivity=topology.random_sparse(n_neurons, 0.4, seed=3),
            dt=1e-3,
        )
    if kind == "inputs":
        return ps.Network(
            n_neurons,
            kernels.alpha([0.003, 0.006], 20, 1e-3),
            input_basis=kernels.raw_lags(4),
            n_inputs=2,
            connectivity=topology.layered_recurrent([2, n_neurons - 2]),
            dt=1e-3,
        )
    raise ValueError(kind)


NETWORK_KINDS = ["dense", "feedforward", "sparse_separate_feedback", "inputs"]


def random_inputs(spec, key, n_steps, n_trials=None):
    if spec.n_inputs == 0:
        return None
    shape = (n_steps, spec.n_inputs) if n_trials is None else (n_trials, n_steps, spec.n_inputs)
    return jax.random.normal(key, shape)


def numpy_rng(seed=0):
    return np.random.default_rng(seed)
