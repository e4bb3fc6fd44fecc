"""Binning, unbinning, real-data loaders and neo/NWB conversions."""

import datetime

import jax
import numpy as np
import pytest

from probsnn import data, encoding


@pytest.fixture(scope="module")
def trains():
    """Dead-time Poisson times of 3 trials × 4 neurons over 2 s, +inf padded (gaps >= 2 ms)."""
    return encoding.poisson_times(jax.random.key(0), 15.0, 2.0, shape=(3, 4), refractory=2e-3)


def test_binning_round_trip_loses_no_spike_and_keeps_times_within_half_a_bin(trains):
    dt = 1e-3
    spikes = data.bin_spike_times(trains, dt, 2.0)
    assert spikes.shape == (3, 2000, 4) and spikes.dtype == np.bool_
    np.testing.assert_array_equal(spikes.sum(axis=1), trains.counts)
    times = data.unbin_spikes(spikes, dt)
    original = np.asarray(trains.times, np.float64)[..., : times.shape[-1]]
    finite = np.isfinite(times)
    np.testing.assert_array_equal(finite, np.isfinite(original))
    assert np.max(np.abs(times[finite] - original[finite])) <= dt / 2 + 1e-6
    np.testing.assert_array_equal(data.bin_spike_times(times, dt, 2.0), spikes)


def test_binning_places_spikes_in_half_open_bins():
    spikes = data.bin_spike_times([[0.0, 0.25, 0.99], [0.5]], 0.1, 1.0, t_start=0.0)
    assert spikes.shape == (10, 2)
    np.testing.assert_array_equal(np.flatnonzero(spikes[:, 0]), [0, 2, 9])
    np.testing.assert_array_equal(np.flatnonzero(spikes[:, 1]), [5])
    shifted = data.bin_spike_times([[10.05]], 0.1, 1.0, t_start=10.0)
    np.testing.assert_array_equal(np.flatnonzero(shifted[:, 0]), [0])


def test_multiple_spikes_per_bin_need_a_policy():
    times = [[0.11, 0.12, 0.35]]
    with pytest.raises(ValueError, match=r"2 spikes of neuron 0 fall in bin 1"):
        data.bin_spike_times(times, 0.1, 1.0)
    clipped = data.bin_spike_times(times, 0.1, 1.0, policy="clip")
    assert clipped.dtype == np.bool_ and clipped.sum() == 2
    counts = data.bin_spike_times(times, 0.1, 1.0, policy="count")
    assert counts.dtype == np.int32 and counts[1, 0] == 2 and counts.sum() == 3
    back = data.unbin_spikes(counts, 0.1)
    np.testing.assert_allclose(back[0], [0.15, 0.15, 0.35])
    with pytest.raises(ValueError, match="policy must be one of"):
        data.bin_spike_times(times, 0.1, 1.0, policy="merge")


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([[0.3, 0.2]], "times must be sorted"),
        ([[0.1, np.nan]], "times must be finite"),
        ([[-np.inf, 0.1]], "times must be finite"),
        ([[0.1, 1.0]], r"times must lie in \[t_start, t_start \+ duration\)"),
        ([[-0.1]], "times must lie in"),
    ],
)
def test_binning_rejects_bad_times(times, message):
    with pytest.raises(ValueError, match=message):
        data.bin_spike_times(times, 0.1, 1.0)


def test_binning_rejects_mismatched_units():
    with pytest.raises(ValueError, match="whole number of bins"):
        data.bin_spike_times([[0.1]], 0.3, 1.0)
    # times in milliseconds against a duration in seconds fall outside the record
    with pytest.raises(ValueError, match="times must lie in"):
        data.bin_spike_times([[12.0, 250.0]], 1e-3, 1.0)
    with pytest.raises(ValueError, match="dt must be"):
        data.bin_spike_times([[0.1]], -0.1, 1.0)


def test_unbin_rejects_non_counts():
    with pytest.raises(ValueError, match="non-negative integer counts"):
        data.unbin_spikes(np.array([[0.5], [1.0]]), 0.1)


def test_pad_and_ragged_times_invert_each_other():
    ragged = [[np.array([0.1, 0.2]), np.array([])], [np.array([0.3]), np.array([0.4, 0.5])]]
    padded = data.pad_times(ragged)
    assert padded.shape == (2, 2, 2) and np.isinf(padded[0, 1]).all()
    back = data.ragged_times(padded)
    for row, expected in zip(back, ragged, strict=True):
        for a, b in zip(row, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="nest evenly"):
        data.pad_times([[[0.1]], [[0.2], [0.3]]])


def test_neo_round_trip_loses_no_spike(trains):
    pytest.importorskip("neo")
    neo_trains = data.to_neo(trains, t_stop=2.0)
    assert len(neo_trains) == 3 and len(neo_trains[0]) == 4
    assert sum(len(t) for trial in neo_trains for t in trial) == int(trains.counts.sum())
    back = data.from_neo(neo_trains)
    np.testing.assert_allclose(back, np.asarray(trains.times)[..., : back.shape[-1]], rtol=1e-6)


def test_neo_units_are_converted_or_rejected():
    neo = pytest.importorskip("neo")
    pq = pytest.importorskip("quantities")
    in_ms = neo.SpikeTrain([5.0, 250.0] * pq.ms, t_stop=1000.0 * pq.ms)
    np.testing.assert_allclose(data.from_neo([in_ms]), [[0.005, 0.25]])
    segment = neo.Segment()
    segment.spiketrains.append(in_ms)
    np.testing.assert_allclose(data.from_neo([segment]), [[[0.005, 0.25]]])
    with pytest.raises(ValueError, match="times do not fit"):
        data.to_neo([[0.5, 1.5]], t_stop=1.0)  # seconds against a stop given in the wrong unit
    with pytest.raises(TypeError, match=r"neo\.SpikeTrain"):
        data.from_neo([[0.1, 0.2], "x"])


def test_nwb_round_trip_through_a_file_loses_no_spike(trains, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    times = np.asarray(trains.times, np.float64)[0]
    nwbfile = pynwb.NWBFile(
        session_description="probsnn test",
        identifier="probsnn-units",
        session_start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )
    nwbfile.units = data.to_nwb_units(times)
    path = tmp_path / "units.nwb"
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        back = data.from_nwb_units(io.read())
    assert np.isfinite(back).sum() == int(trains.counts[0].sum())
    np.testing.assert_array_equal(back, times[:, : back.shape[-1]])
    with pytest.raises(ValueError, match="single trial"):
        data.to_nwb_units(np.asarray(trains.times))


def test_grasshopper_recordings():
    for recording, n_spikes, cutoff in ((1, 929, 200.0), (2, 868, 800.0)):
        rec = data.load_grasshopper(recording)
        assert rec.spike_times.size == n_spikes and rec.cutoff == cutoff
        assert rec.stimulus.shape == (200_000,) and np.isfinite(rec.stimulus).all()
        assert rec.stimulus_dt == pytest.approx(5e-5) and rec.duration == pytest.approx(10.0)
        assert 0 <= rec.spike_times.min() and rec.spike_times.max() < rec.duration
        # a receptor cell firing ~90 spikes/s with a refractory period of a few ms
        assert 80 < n_spikes / rec.duration < 100 and np.diff(rec.spike_times).min() > 2e-3
        spikes = data.bin_spike_times([rec.spike_times], 1e-3, rec.duration)
        assert spikes.sum() == n_spikes
    assert data.load_grasshopper(1).stimulus.max() == pytest.approx(76.4286)
    with pytest.raises(ValueError, match="recording must be 1 or 2"):
        data.load_grasshopper(3)


def test_image_loaders():
    images, labels = data.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1 and set(np.unique(labels)) == set(range(10))
