"""Learning criteria and fitting (installed as ``probsnn.inference``)."""

from .ml import FitInfo, MLFit, fit_ml

__all__ = ["FitInfo", "MLFit", "fit_ml"]
