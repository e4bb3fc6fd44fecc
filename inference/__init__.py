"""Learning criteria and fitting (installed as ``probsnn.inference``).

Maximum likelihood of GLM networks (:func:`fit_ml`, the online rule :func:`ml_rule` /
:func:`fit_ml_online`) and equilibrium propagation on energy networks (:mod:`.ep`,
:mod:`.spiking_ep`).
"""

from . import ep, spiking_ep
from .ep import (
    EPConfig,
    EPSignals,
    Relaxation,
    RelaxInfo,
    backprop_trainer,
    bptt_gradient,
    ep_estimate,
    ep_gradient,
    ep_rule,
    ep_trainer,
    fit_energy,
    free_phase,
    gradient_check,
    implicit_gradient,
    nudged_phase,
    recurrent_backprop_errors,
    relax,
)
from .ml import FitInfo, MLFit, fit_ml
from .online import EligibilityState, MLSignals, OnlineFit, fit_ml_online, ml_rule
from .spiking_ep import (
    SpikingEPConfig,
    SpikingRelaxation,
    spiking_ep_estimate,
    spiking_ep_trainer,
    spiking_relax,
)

__all__ = [
    "EPConfig",
    "EPSignals",
    "EligibilityState",
    "FitInfo",
    "MLFit",
    "MLSignals",
    "OnlineFit",
    "RelaxInfo",
    "Relaxation",
    "SpikingEPConfig",
    "SpikingRelaxation",
    "backprop_trainer",
    "bptt_gradient",
    "ep",
    "ep_estimate",
    "ep_gradient",
    "ep_rule",
    "ep_trainer",
    "fit_energy",
    "fit_ml",
    "fit_ml_online",
    "free_phase",
    "gradient_check",
    "implicit_gradient",
    "ml_rule",
    "nudged_phase",
    "recurrent_backprop_errors",
    "relax",
    "spiking_ep",
    "spiking_ep_estimate",
    "spiking_ep_trainer",
    "spiking_relax",
]
