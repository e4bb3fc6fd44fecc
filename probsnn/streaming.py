"""Recordings longer than memory: chunks over time with the causal halo of the past.

A bin's potential reads the L bins before it (L = ``spec.n_lags``; the inputs' own history
length for inputs), so a chunk of bins [a, b) is computed exactly from the bins [a − L, b):
the chunk plus a *halo* of the L bins before it, carried from the previous chunk. The first
chunk of a recording has no halo, as the in-memory functions treat the bins before the start as
silent. Summed over the chunks, a likelihood, a gradient or a Hessian-vector product equals the
in-memory one, and the memory held is one chunk, whatever the length of the recording.

Sources (:func:`chunks`):

* an array ``(T, N)`` or ``(n_trials, T, N)``: numpy, ``numpy.memmap`` (a file on disk),
  or anything with ``.shape`` that slices to numpy (h5py and zarr datasets, NWB loaders);
  cut into chunks of ``chunk_bins``;
* a callable returning an iterable of chunks ``(T_c, N)`` (or ``(spikes, inputs)`` pairs) of
  one recording, in order: a loader that reads a file piece by piece. It is called once per pass
  over the data (a fit makes many passes), so it must start again from the beginning each time.

Chunks of one length compile once; the last, shorter chunk of an array compiles once more.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probsnn import _checks
from probsnn.glm import _bernoulli_log_prob, check_data, check_network, contract, traces
from probsnn.network import Network, Params

#: bins per chunk of an array source unless told (about 40 MB of design per 100 columns)
CHUNK_BINS = 100_000


class Chunk(NamedTuple):
    """A piece of a recording: spikes ``(H + C, N)`` and inputs ``(H + C, M)`` or None, the
    first ``halo`` = H rows being the past that the C new bins read."""

    spikes: np.ndarray
    inputs: np.ndarray | None
    halo: int


def chunks(spec: Network, spikes, inputs=None, chunk_bins: int = CHUNK_BINS) -> Iterator[Chunk]:
    """The chunks of a recording with their halos (see the module docstring).

    Args:
        spec: the network (its history lengths set the halo).
        spikes: an array ``(T, N)`` or ``(n_trials, T, N)`` (numpy, memmap, h5py, ...), or a
            callable returning an iterable of chunks ``(T_c, N)`` or ``(spikes, inputs)``.
        inputs: ``(T, M)`` or ``(n_trials, T, M)`` beside an array source (None for a callable,
            whose chunks carry their inputs).
        chunk_bins: new bins per chunk of an array source, >= 1.

    Yields:
        :class:`Chunk` — the trials of an array source one after the other, each from its
        start (no halo).

    Raises:
        TypeError: a spec that is not a network; a source that is neither an array nor a
            callable; inputs beside a callable.
        ValueError: a chunk_bins below 1; arrays of the wrong rank, or spikes and inputs of
            different lengths.
    """
    check_network(spec)
    chunk_bins = _checks.positive_int(chunk_bins, "chunk_bins")
    halo = max(spec.n_lags, spec.n_input_lags)
    if callable(spikes) and not hasattr(spikes, "shape"):
        if inputs is not None:
            raise TypeError("inputs must come inside the chunks of a callable source, got both")
        return _carried(_as_pairs(spikes()), halo)
    if not hasattr(spikes, "shape") or not hasattr(spikes, "__getitem__"):
        raise TypeError(
            "spikes must be an array (T, N) / (n_trials, T, N) or a callable returning chunks, "
            f"got {type(spikes).__name__}"
        )
    return _array_chunks(spikes, inputs, chunk_bins, halo)


def _array_chunks(spikes, inputs, chunk_bins: int, halo: int) -> Iterator[Chunk]:
    if len(spikes.shape) not in (2, 3):
        raise ValueError(f"spikes must be (T, N) or (n_trials, T, N), got shape {spikes.shape}")
    if inputs is not None and tuple(inputs.shape[:-1]) != tuple(spikes.shape[:-1]):
        raise ValueError(
            f"inputs of shape {tuple(inputs.shape)} do not match spikes of shape "
            f"{tuple(spikes.shape)} in their trials and bins"
        )
    trials = [None] if len(spikes.shape) == 2 else range(spikes.shape[0])
    n_bins = spikes.shape[-2]
    for trial in trials:
        for start in range(0, n_bins, chunk_bins):
            first = max(start - halo, 0)
            rows = slice(first, min(start + chunk_bins, n_bins))
            index = rows if trial is None else (trial, rows)
            piece = None if inputs is None else np.asarray(inputs[index])
            yield Chunk(np.asarray(spikes[index]), piece, start - first)


def _as_pairs(source) -> Iterator[tuple]:
    for item in source:
        yield item if isinstance(item, tuple) else (item, None)


def _carried(pairs, halo: int) -> Iterator[Chunk]:
    past, past_inputs = None, None
    for spikes, inputs in pairs:
        spikes = np.asarray(spikes)
        inputs = None if inputs is None else np.asarray(inputs)
        if spikes.ndim != 2:
            raise ValueError(f"each chunk must be (T_c, N), got shape {spikes.shape}")
        if past is None:
            yield Chunk(spikes, inputs, 0)
        else:
            joined = np.concatenate([past, spikes])
            joined_inputs = None if inputs is None else np.concatenate([past_inputs, inputs])
            yield Chunk(joined, joined_inputs, len(past))
        past = _tail(spikes if past is None else np.concatenate([past, spikes]), halo)
        if inputs is not None:
            previous = inputs if past_inputs is None else np.concatenate([past_inputs, inputs])
            past_inputs = _tail(previous, halo)


def _tail(array, halo: int):
    """The last ``halo`` rows (none for a halo of 0)."""
    return array[len(array) - min(halo, len(array)) :]


def log_likelihood(
    spec: Network, params: Params, spikes, inputs=None, chunk_bins: int = CHUNK_BINS
):
    """log p(s) of a recording streamed in chunks: equal to :func:`probsnn.log_likelihood` on
    the whole recording, in the memory of one chunk. A float.

    Args:
        spec, params: the network. spikes, inputs, chunk_bins: the source, as :func:`chunks`.

    Raises:
        ValueError, TypeError: as :func:`chunks`, and as :func:`probsnn.log_likelihood` for
            each chunk's data and the params.
    """
    check_network(spec)
    spec.check_params(params)
    total = 0.0
    for chunk in chunks(spec, spikes, inputs, chunk_bins):
        data, data_inputs = check_data(spec, chunk.spikes, chunk.inputs)
        total += float(_chunk_log_likelihood(spec, params, data, data_inputs, chunk.halo))
    return total


@partial(jax.jit, static_argnums=(0, 4))
def _chunk_log_likelihood(spec, params, spikes, inputs, halo):
    u = contract(spec, params, traces(spec, spikes, inputs))
    return jnp.sum(_bernoulli_log_prob(spikes[halo:], u[halo:]))
