"""The Yin-Yang data set (Kriener, Göltz & Petrovici 2022): geometry, sampling, published splits."""

import numpy as np
import pytest

from probsnn.data import load_yinyang, yinyang_labels

R, r = 0.5, 0.1  # the published radii


def s_curve_oracle(x, y, r_small=r, r_big=R):
    """Independent formulation of the geometry: dots by distance, yang above the S curve made of
    the lower half of the left circle (x <= R) and the upper half of the right one (x > R)."""
    labels = np.full(x.shape, -1)
    for i, (px, py) in enumerate(zip(x.ravel(), y.ravel(), strict=True)):
        if np.hypot(px - r_big, py - r_big) > r_big:
            continue
        if min(np.hypot(px - c, py - r_big) for c in (r_big / 2, 1.5 * r_big)) < r_small:
            labels.flat[i] = 2
            continue
        centre, sign = (r_big / 2, -1) if px <= r_big else (1.5 * r_big, 1)
        boundary = r_big + sign * np.sqrt(max(r_big**2 / 4 - (px - centre) ** 2, 0.0))
        labels.flat[i] = int(py > boundary)
    return labels


def test_published_splits_are_reproduced_point_for_point():
    # class counts and first rows of the published training, validation and test files
    published = {
        (5000, 42): ([1681, 1702, 1617], [0.6803075385877797, 0.450499251969543], 2),
        (1000, 41): ([316, 336, 348], [0.6805727261759029, 0.3209733938933629], 0),
        (1000, 40): ([350, 316, 334], [0.23409664559563403, 0.4017249751828972], 2),
    }
    for (n, seed), (counts, first, label) in published.items():
        features, labels = load_yinyang(n, seed=seed)
        assert features.shape == (n, 4) and features.dtype == np.float32
        assert labels.shape == (n,) and labels.dtype == np.int32
        np.testing.assert_array_equal(np.bincount(labels), counts)
        np.testing.assert_array_equal(features[0, :2], np.float32(first))
        assert labels[0] == label


def test_classes_are_balanced_in_expectation_and_uniform_within_their_regions():
    features, labels = load_yinyang(3000, seed=7)
    counts = np.bincount(labels, minlength=3)
    expected = len(labels) / 3
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 13.8  # chi-square with 2 degrees of freedom, p = 0.001
    x, y = features[:, 0].astype(np.float64), features[:, 1].astype(np.float64)
    in_right_circle = np.hypot(x - 1.5 * R, y - R) <= R / 2
    in_left_dot = np.hypot(x - 0.5 * R, y - R) < r
    near_dot_centre = np.minimum(np.hypot(x - 0.5 * R, y - R), np.hypot(x - 1.5 * R, y - R))
    # uniform within a class: the fraction of its points in a sub-region is the area ratio
    checks = [
        # yin inside the right half circle (without its dot) over the whole of yin
        (in_right_circle[labels == 0], (R**2 / 4 - r**2) / ((R**2 - 2 * r**2) / 2)),
        # by the point symmetry, yang inside the left half circle
        (
            ~in_right_circle[labels == 1] & (np.hypot(x - R / 2, y - R) <= R / 2)[labels == 1],
            (R**2 / 4 - r**2) / ((R**2 - 2 * r**2) / 2),
        ),
        (in_left_dot[labels == 2], 0.5),  # the two dots equally
        (near_dot_centre[labels == 2] < r / 2, 0.25),  # the inner disc of radius r/2
    ]
    for hits, p in checks:
        z = (hits.mean() - p) / np.sqrt(p * (1 - p) / hits.size)
        assert abs(z) < 4, (hits.mean(), p)


@pytest.mark.parametrize(("r_small", "r_big"), [(0.1, 0.5), (0.3, 2.0)])
def test_every_point_lies_in_the_big_circle_and_in_its_region(r_small, r_big):
    features, labels = load_yinyang(1500, seed=3, r_small=r_small, r_big=r_big)
    x, y = features[:, 0].astype(np.float64), features[:, 1].astype(np.float64)
    assert np.all(np.hypot(x - r_big, y - r_big) <= r_big * (1 + 1e-6))
    np.testing.assert_array_equal(s_curve_oracle(x, y, r_small, r_big), labels)
    np.testing.assert_array_equal(yinyang_labels(x, y, r_small=r_small, r_big=r_big), labels)
    assert set(np.unique(labels)) == {0, 1, 2}


def test_features_are_the_coordinates_and_their_mirror_images():
    features, _ = load_yinyang(500, seed=11)
    np.testing.assert_allclose(features[:, 2:], 1.0 - features[:, :2], rtol=0, atol=1e-7)
    assert features.min() >= 0 and features.max() <= 1


def test_labels_at_known_points_of_the_published_geometry():
    arc = np.sqrt(R**2 / 4 - (R / 4) ** 2)  # height of the half circles at x = R/4 from centres
    eps = 1e-6
    points = {
        (R / 2, R): 2,  # dot centres
        (1.5 * R, R): 2,
        (R / 2 + r - eps, R): 2,  # just inside / outside the left dot, inside the left circle
        (R / 2 + r + eps, R): 1,
        (1.5 * R - r - eps, R): 0,  # the same for the right dot, in the right circle
        (R / 4, R - arc + eps): 1,  # just above / below the S curve, left half
        (R / 4, R - arc - eps): 0,
        (2 * R - R / 4, R + arc + eps): 1,  # right half
        (2 * R - R / 4, R + arc - eps): 0,
        (R, 2 * R - eps): 1,  # top and bottom of the big circle
        (R, eps): 0,
        (R / 4, R + 0.1): 1,  # upper left: inside the left circle, above the centre line
        (1.75 * R, R - 0.1): 0,
        (0.0, 0.0): -1,  # outside the big circle
        (2 * R, 2 * R): -1,
    }
    xy = np.array(list(points))
    got = yinyang_labels(xy[:, 0], xy[:, 1])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, list(points.values()))
    np.testing.assert_array_equal(s_curve_oracle(xy[:, 0], xy[:, 1]), list(points.values()))


def test_the_point_reflection_swaps_yin_and_yang_and_keeps_the_dots():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 2 * R, (2, 4000))
    labels = yinyang_labels(x, y)
    np.testing.assert_array_equal(labels, s_curve_oracle(x, y))
    swapped = np.array([1, 0, 2, -1])[labels]  # -1 indexes the last entry: outside stays outside
    np.testing.assert_array_equal(yinyang_labels(2 * R - x, 2 * R - y), swapped)
    assert np.all(np.isin([0, 1, 2, -1], labels))


def test_a_seed_gives_the_same_points_and_another_seed_new_ones():
    first, again, other = (load_yinyang(200, seed=s) for s in (4, 4, 5))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_a_linear_classifier_reaches_the_published_linear_accuracy_and_a_local_one_far_more():
    linear_model = pytest.importorskip("sklearn.linear_model")
    neighbors = pytest.importorskip("sklearn.neighbors")
    train_x, train_y = load_yinyang(5000, seed=42)
    test_x, test_y = load_yinyang(1000, seed=40)
    linear = linear_model.LogisticRegression().fit(train_x[:, :2], train_y)
    accuracy = linear.score(test_x[:, :2], test_y)
    # published shallow network: 64.3 %; allow 3 binomial standard errors of 1,000 test points
    assert abs(accuracy - 0.643) < 3 * np.sqrt(0.643 * 0.357 / 1000)
    local = neighbors.KNeighborsClassifier(5).fit(train_x[:, :2], train_y)
    assert local.score(test_x[:, :2], test_y) > 0.95  # the classes are separable, not linearly


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 2.5}, TypeError, "n_samples"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**32}, ValueError, "seed"),
        ({"seed": 1.0}, TypeError, "seed"),
        ({"r_small": 0.25}, ValueError, "r_small"),
        ({"r_small": float("nan")}, ValueError, "r_small"),
        ({"r_big": -1.0}, ValueError, "r_big"),
        ({"r_big": [0.5]}, TypeError, "r_big"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, name):
    with pytest.raises(error, match=name):
        load_yinyang(**{"n_samples": 10, **kwargs})


def test_bad_points_are_named():
    with pytest.raises(ValueError, match="same shape"):
        yinyang_labels(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="x must be finite"):
        yinyang_labels(np.array([np.nan]), np.zeros(1))
    with pytest.raises(TypeError, match="y must be a real array"):
        yinyang_labels(np.zeros(1), np.zeros(1, complex))
    with pytest.raises(ValueError, match="r_small"):
        yinyang_labels(np.zeros(1), np.zeros(1), r_small=0.3)
