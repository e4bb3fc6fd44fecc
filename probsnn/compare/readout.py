"""Linear read-out of spike counts: ridge regression onto one-hot classes.

With count features Φ ``(n, K)`` augmented by a constant column, X = [Φ, 1], and one-hot targets
Y ``(n, C)``, the weights are

    W = (XᵀX + λ D)⁻¹ XᵀY,       D = diag(1, …, 1, 0)   (the constant is not penalised),

and a sample is assigned the class argmax_c (x W)_c (Hoerl & Kennard 1970; the read-out of
liquid-state machines, Maass, Natschläger & Markram 2002). It is how the unsupervised criteria
(STDP, InfoMax) are turned into classifiers: the read-out sees only spike counts.
"""

from __future__ import annotations

import numpy as np


def _design(counts) -> np.ndarray:
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 2 or not np.all(np.isfinite(counts)):
        raise ValueError(f"counts must be a finite (n, K) array, got shape {counts.shape}")
    return np.concatenate([counts, np.ones((len(counts), 1))], axis=1)


def fit_readout(counts, labels, n_classes: int, l2: float = 1.0) -> np.ndarray:
    """Ridge weights ``(K + 1, C)`` from counts ``(n, K)`` and integer labels ``(n,)``.

    Raises:
        ValueError: non-finite counts, labels outside 0..C−1 or of another length, l2 < 0.
    """
    x = _design(counts)
    labels = np.asarray(labels)
    if labels.shape != (len(x),) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be {len(x)} integers in 0..{n_classes - 1}")
    if not np.isfinite(l2) or l2 < 0:
        raise ValueError(f"l2 must be finite and >= 0, got {l2}")
    penalty = np.full(x.shape[1], float(l2))
    penalty[-1] = 0.0
    targets = np.eye(n_classes)[labels]
    return np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ targets)


def predict_readout(weights, counts) -> np.ndarray:
    """Classes ``(n,)`` of count features ``(n, K)`` under read-out ``weights``."""
    return np.argmax(_design(counts) @ np.asarray(weights), axis=1)


def readout_accuracy(train_counts, train_labels, test_counts, test_labels, n_classes, l2=1.0):
    """Held-out accuracy of a read-out fitted on the training counts."""
    weights = fit_readout(train_counts, train_labels, n_classes, l2)
    return float(np.mean(predict_readout(weights, test_counts) == np.asarray(test_labels)))
