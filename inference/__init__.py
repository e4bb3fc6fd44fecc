"""Learning criteria and fitting (installed as ``probsnn.inference``)."""

from .ml import FitInfo, MLFit, fit_ml
from .online import EligibilityState, MLSignals, OnlineFit, fit_ml_online, ml_rule

__all__ = [
    "EligibilityState",
    "FitInfo",
    "MLFit",
    "MLSignals",
    "OnlineFit",
    "fit_ml",
    "fit_ml_online",
    "ml_rule",
]
