"""pynapple interop: TsGroup/IntervalSet/Tsd <-> binned spikes, inputs and rates."""

import sys
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from probsnn import data

nap = pytest.importorskip("pynapple")


@pytest.fixture(autouse=True)
def _no_warnings():
    """The conversions themselves must not warn (pynapple warns on malformed intervals)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def random_spikes(shape, p=0.2, seed=0):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


def group(trains, start=0.0, end=10.0):
    support = nap.IntervalSet(start, end)
    return nap.TsGroup(
        {key: nap.Ts(t=np.asarray(t, float), time_support=support) for key, t in trains.items()},
        time_support=support,
    )


# ---------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("shape", [(50, 3), (4, 30, 2), (1, 7, 1)])
def test_spikes_round_trip_through_a_tsgroup_exactly(shape):
    spikes = random_spikes(shape)
    units = data.to_pynapple(spikes, 0.01, start=1.5)
    assert isinstance(units, nap.TsGroup) and len(units) == shape[-1]
    trials = 1 if len(shape) == 2 else shape[0]
    assert len(units.time_support) == trials
    np.testing.assert_allclose(units.time_support.start, 1.5 + np.arange(trials) * shape[-2] * 0.01)
    for n in range(shape[-1]):
        assert len(units[n]) == spikes[..., n].sum()
    expected = spikes if trials > 1 else spikes.reshape(shape[-2:])  # one interval: (T, N)
    back = data.from_pynapple(units, 0.01)  # ep=None: the group's time support, one per trial
    assert back.dtype == np.uint8 and back.shape == expected.shape
    np.testing.assert_array_equal(back, expected)
    np.testing.assert_array_equal(data.from_pynapple(units, 0.01, ep=units.time_support), expected)


@settings(max_examples=40, deadline=None)
@given(
    n_trials=st.integers(1, 4),
    n_steps=st.integers(1, 400),
    n_neurons=st.integers(1, 3),
    bin_size=st.floats(1e-5, 0.5),
    start=st.floats(-100.0, 1000.0),
    seed=st.integers(0, 2**31),
)
@example(n_trials=3, n_steps=1, n_neurons=1, bin_size=0.376214990422194, start=1.0, seed=0)
def test_round_trip_is_exact_for_any_bin_size_and_start(
    n_trials, n_steps, n_neurons, bin_size, start, seed
):
    # the example: back-to-back trials whose computed end overshoots the next start by 2e-16
    spikes = random_spikes((n_trials, n_steps, n_neurons), p=0.3, seed=seed)
    units = data.to_pynapple(spikes, bin_size, start=start)
    assert len(units.time_support) == n_trials
    back = data.from_pynapple(units, bin_size)
    np.testing.assert_array_equal(back, spikes if n_trials > 1 else spikes[0])


def test_round_trip_keeps_unit_ids_and_trial_starts():
    spikes = random_spikes((3, 40, 3), seed=1)
    onsets = np.array([2.0, 5.25, 9.0])
    units = data.to_pynapple(spikes, 2e-3, start=onsets, index=[7, 3, 11])
    assert list(units.keys()) == [3, 7, 11]  # pynapple sorts the ids; columns follow them
    np.testing.assert_allclose(units.time_support.start, onsets)
    ep = nap.IntervalSet(onsets, onsets + 40 * 2e-3)
    back = data.from_pynapple(units, 2e-3, ep=ep)
    np.testing.assert_array_equal(back, spikes[..., [1, 0, 2]])
    # spike times are the bin centres
    trial, step = np.nonzero(spikes[..., 0])
    np.testing.assert_allclose(units[7].t, onsets[trial] + (step + 0.5) * 2e-3)


def test_bool_and_float_spikes_are_accepted():
    spikes = random_spikes((20, 2), seed=2)
    for variant in (spikes.astype(bool), spikes.astype(np.float32)):
        back = data.from_pynapple(data.to_pynapple(variant, 0.05), 0.05)
        np.testing.assert_array_equal(back, spikes)


def test_rates_round_trip_through_a_tsdframe_and_bin_average():
    rates = np.random.default_rng(3).gamma(2.0, 10.0, size=(3, 25, 2))
    frame = data.rates_to_pynapple(rates, 0.004, start=[0.0, 1.0, 2.0], index=[4, 9])
    assert isinstance(frame, nap.TsdFrame) and frame.shape == (75, 2)
    assert list(frame.columns) == [4, 9]
    np.testing.assert_array_equal(frame.values, rates.reshape(75, 2))
    np.testing.assert_allclose(frame.t[:3], [0.002, 0.006, 0.010])
    np.testing.assert_allclose(frame.t[25], 1.002)
    np.testing.assert_allclose(frame.time_support.end, [0.1, 1.1, 2.1])
    units = data.to_pynapple(random_spikes((3, 25, 1)), 0.004, start=[0.0, 1.0, 2.0])
    _, back = data.from_pynapple(units, 0.004, inputs=frame)
    np.testing.assert_allclose(back, rates, rtol=1e-6)


def test_single_trial_rates_give_a_single_interval():
    frame = data.rates_to_pynapple(np.ones((10, 1), np.float32), 0.1, start=3.0)
    assert len(frame.time_support) == 1 and frame.values.dtype == np.float32
    np.testing.assert_allclose(frame.time_support.values, [[3.0, 4.0]])


# ---------------------------------------------------------------------------------------------
# trials from an IntervalSet


def test_trials_come_from_the_intervals_in_pynapples_bins():
    units = group({0: [0.505, 0.57, 1.2, 2.0, 2.099, 4.35], 1: [2.05, 4.301]})
    ep = nap.IntervalSet(start=[0.5, 2.0, 4.3], end=[0.6, 2.1, 4.4])
    spikes = data.from_pynapple(units, 0.01, ep=ep)
    assert spikes.shape == (3, 10, 2)
    np.testing.assert_array_equal(
        np.argwhere(spikes[..., 0]), [[0, 0], [0, 7], [1, 0], [1, 9], [2, 5]]
    )
    np.testing.assert_array_equal(np.argwhere(spikes[..., 1]), [[1, 5], [2, 0]])
    for k in range(3):  # the same numbers as pynapple's own count
        own = units.count(0.01, nap.IntervalSet(ep.start[k], ep.end[k])).values
        np.testing.assert_array_equal(spikes[k], own[:10])


def test_one_interval_gives_time_by_neurons():
    units = group({0: [0.25, 0.75]})
    spikes = data.from_pynapple(units, 0.5, ep=nap.IntervalSet(0.0, 1.0))
    np.testing.assert_array_equal(spikes, [[1], [1]])


def test_a_last_partial_bin_is_dropped():
    units = group({0: [0.005, 0.103]})
    spikes = data.from_pynapple(units, 0.01, ep=nap.IntervalSet(0.0, 0.107))
    assert spikes.shape == (10, 1) and spikes.sum() == 1  # 0.103 lies in the partial bin


def test_touching_intervals_keep_all_their_bins():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynapple shortens the first interval by 1 µs
        ep = nap.IntervalSet(start=[0.0, 1.0], end=[1.0, 2.0])
    units = group({0: [0.9995, 1.0005]})
    spikes = data.from_pynapple(units, 1e-3, ep=ep)
    assert spikes.shape == (2, 1000, 1)
    assert spikes[0, 999, 0] == 1 and spikes[1, 0, 0] == 1


def test_unequal_trials_are_refused_not_cut():
    units = group({0: [0.1]})
    ep = nap.IntervalSet(start=[0.0, 2.0], end=[1.0, 2.5])
    with pytest.raises(ValueError, match=r"ep: trials must hold the same number of bins.*100.*50"):
        data.from_pynapple(units, 0.01, ep=ep)
    # equal in whole bins is fine even if the lengths differ by less than a bin
    ok = nap.IntervalSet(start=[0.0, 2.0], end=[1.0, 3.005])
    assert data.from_pynapple(units, 0.01, ep=ok).shape == (2, 100, 1)


# ---------------------------------------------------------------------------------------------
# inputs aligned to the bins


def test_tsd_inputs_are_averaged_in_the_same_bins():
    units = group({0: [0.51, 2.02]})
    t = np.arange(0, 10000) * 1e-3
    stimulus = nap.Tsd(t=t, d=np.sin(t * 7.0), time_support=nap.IntervalSet(0, 10))
    ep = nap.IntervalSet(start=[0.5, 2.0], end=[0.6, 2.1])
    spikes, inputs = data.from_pynapple(units, 0.01, ep=ep, inputs=stimulus)
    assert spikes.shape == (2, 10, 1) and inputs.shape == (2, 10, 1)
    assert inputs.dtype == np.float32
    for k, onset in enumerate([0.5, 2.0]):
        first = round(onset * 1000)
        expected = np.sin(t[first : first + 100] * 7.0).reshape(10, 10).mean(axis=1)
        np.testing.assert_allclose(inputs[k, :, 0], expected, rtol=1e-5, atol=1e-6)


def test_tsdframe_inputs_give_one_column_per_input():
    t = np.arange(0, 2000) * 1e-3
    values = np.stack([t, -2 * t, np.ones_like(t)], axis=1)
    frame = nap.TsdFrame(t=t, d=values, time_support=nap.IntervalSet(0, 2))
    units = group({0: [0.3], 1: [1.1]}, end=2.0)
    spikes, inputs = data.from_pynapple(units, 0.1, ep=nap.IntervalSet(0.0, 2.0), inputs=frame)
    assert spikes.shape == (20, 2) and inputs.shape == (20, 3)
    centres = np.arange(20) * 0.1 + 0.0495  # mean of the 100 samples 0, 1e-3, ... in each bin
    np.testing.assert_allclose(inputs[:, 0], centres, rtol=1e-5)
    np.testing.assert_allclose(inputs[:, 1], -2 * centres, rtol=1e-5)
    np.testing.assert_array_equal(inputs[:, 2], 1.0)


# ---------------------------------------------------------------------------------------------
# bad input gets a named error


def test_more_than_one_spike_per_bin_is_refused_unless_clipped():
    units = group({5: [0.11, 0.12, 0.13, 0.5]})
    with pytest.raises(
        ValueError,
        match=r"unit 5 has 3 spikes in the bin of bin_size=0.1.*largest count in a bin is 3"
        r".*shortest inter-spike interval is 0.01 s.*smaller bin_size",
    ):
        data.from_pynapple(units, 0.1, ep=nap.IntervalSet(0, 1))
    clipped = data.from_pynapple(units, 0.1, ep=nap.IntervalSet(0, 1), policy="clip")
    np.testing.assert_array_equal(clipped[:, 0], [0, 1, 0, 0, 0, 1, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"policy must be one of \('error', 'clip'\)"):
        data.from_pynapple(units, 0.1, policy="count")


@pytest.mark.parametrize(
    ("bin_size", "error", "message"),
    [
        (0.0, ValueError, r"bin_size must be finite and > 0, got 0.0"),
        (-0.1, ValueError, r"bin_size must be finite and > 0"),
        (np.nan, ValueError, r"bin_size must be finite and > 0"),
        (True, TypeError, r"bin_size must be a positive number"),
        ([0.1], TypeError, r"bin_size must be a positive number"),
    ],
)
def test_bad_bin_sizes_are_named(bin_size, error, message):
    units = group({0: [0.1]})
    with pytest.raises(error, match=message):
        data.from_pynapple(units, bin_size)
    with pytest.raises(error, match=message):
        data.to_pynapple(np.zeros((5, 1)), bin_size)
    with pytest.raises(error, match=message):
        data.rates_to_pynapple(np.zeros((5, 1)), bin_size)


def test_from_pynapple_refuses_what_is_not_pynapple():
    with pytest.raises(TypeError, match=r"tsgroup must be a pynapple TsGroup, got ndarray"):
        data.from_pynapple(np.zeros((10, 2)), 0.1)
    with pytest.raises(TypeError, match=r"got Ts \(wrap one train as nap.TsGroup"):
        data.from_pynapple(nap.Ts(t=np.array([0.1, 0.5])), 0.1)
    units = group({0: [0.1]})
    with pytest.raises(TypeError, match=r"ep must be a pynapple IntervalSet, got tuple"):
        data.from_pynapple(units, 0.1, ep=(0.0, 1.0))
    with pytest.raises(TypeError, match=r"inputs must be a pynapple Tsd .* or TsdFrame"):
        data.from_pynapple(units, 0.1, inputs=np.zeros((100, 1)))


def test_intervals_must_lie_in_the_data():
    units = group({0: [0.1]}, end=2.0)
    with pytest.raises(ValueError, match=r"ep: interval 1 \[1.5, 2.5\] is not inside tsgroup"):
        data.from_pynapple(units, 0.1, ep=nap.IntervalSet([0.0, 1.5], [1.0, 2.5]))
    with pytest.raises(ValueError, match=r"ep: interval 0 .* is shorter than one bin"):
        data.from_pynapple(units, 0.5, ep=nap.IntervalSet(0.0, 0.3))
    short = nap.Tsd(
        t=np.arange(0, 1000) * 1e-3, d=np.ones(1000), time_support=nap.IntervalSet(0, 1)
    )
    with pytest.raises(ValueError, match=r"not inside inputs.time_support"):
        data.from_pynapple(units, 0.1, ep=nap.IntervalSet(0.0, 2.0), inputs=short)


def test_inputs_without_a_sample_in_a_bin_are_refused():
    units = group({0: [0.1]}, end=2.0)
    coarse = nap.Tsd(t=np.arange(0, 20) * 0.1, d=np.ones(20), time_support=nap.IntervalSet(0, 2))
    with pytest.raises(ValueError, match=r"inputs: column 0 has no samples .* in the bin"):
        data.from_pynapple(units, 0.05, ep=nap.IntervalSet(0.0, 2.0), inputs=coarse)
    gap = coarse.values.copy()
    gap[3] = np.nan
    holed = nap.Tsd(t=coarse.t, d=gap, time_support=nap.IntervalSet(0, 2))
    with pytest.raises(ValueError, match=r"no samples \(or NaN\) in the bin \[0.3, 0.4\)"):
        data.from_pynapple(units, 0.1, ep=nap.IntervalSet(0.0, 2.0), inputs=holed)


@pytest.mark.parametrize(
    ("spikes", "error", "message"),
    [
        (np.full((5, 2), 2), ValueError, r"spikes must be binary \(0 or 1\), found the value 2"),
        (np.zeros(5), ValueError, r"spikes must have shape \(\.\.\., time, neurons\)"),
        (np.zeros((2, 2, 5, 1)), ValueError, r"spikes must have shape \(T, N\) or \(trials, T, N"),
        (np.zeros((5, 1), complex), TypeError, r"spikes must hold 0/1 spikes"),
    ],
)
def test_to_pynapple_refuses_bad_spikes(spikes, error, message):
    with pytest.raises(error, match=message):
        data.to_pynapple(spikes, 0.1)


def test_to_pynapple_refuses_bad_starts_and_ids():
    spikes = np.zeros((2, 10, 2), np.uint8)
    with pytest.raises(ValueError, match=r"start must be one number or one start per trial"):
        data.to_pynapple(spikes, 0.1, start=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"trials may not overlap.*start\[1\] - start\[0\] = 0.5"):
        data.to_pynapple(spikes, 0.1, start=[0.0, 0.5])
    with pytest.raises(ValueError, match=r"start must be finite"):
        data.to_pynapple(spikes, 0.1, start=np.inf)
    with pytest.raises(ValueError, match=r"start must be one number for \(T, N\) spikes"):
        data.to_pynapple(spikes[0], 0.1, start=[0.0])
    with pytest.raises(ValueError, match=r"index must hold distinct unit ids"):
        data.to_pynapple(spikes, 0.1, index=[3, 3])
    with pytest.raises(ValueError, match=r"index must hold 2 unit ids"):
        data.to_pynapple(spikes, 0.1, index=[3])
    with pytest.raises(TypeError, match=r"index must hold integer unit ids, got 'a'"):
        data.to_pynapple(spikes, 0.1, index=["a", "b"])


def test_rates_to_pynapple_refuses_bad_rates():
    with pytest.raises(ValueError, match=r"rates must be >= 0, found -1.0"):
        data.rates_to_pynapple(-np.ones((4, 2)), 0.1)
    with pytest.raises(ValueError, match=r"rates must be finite"):
        data.rates_to_pynapple(np.full((4, 2), np.nan), 0.1)
    with pytest.raises(ValueError, match=r"rates must have at least 2 dimensions"):
        data.rates_to_pynapple(np.ones(4), 0.1)


def test_missing_pynapple_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynapple", None)
    with pytest.raises(ImportError, match=r"pip install probsnn\[pynapple\]"):
        data.to_pynapple(np.zeros((5, 1)), 0.1)
