"""Learning criteria and fitting (installed as ``probsnn.inference``).

Maximum likelihood of GLM networks (:func:`fit_ml`, the online rule :func:`ml_rule` /
:func:`fit_ml_online`) and equilibrium propagation on energy networks (:mod:`.ep`,
:mod:`.spiking_ep`), STDP rules and the sum-of-products rule engine (:mod:`.stdp`,
:mod:`.rule_engine`) and the STDP-equivalence analyses (:mod:`.stdp_equivalence`).
"""

from . import ep, rule_engine, spiking_ep, stdp, stdp_equivalence
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
from .rule_engine import sum_of_products
from .spiking_ep import (
    SpikingEPConfig,
    SpikingRelaxation,
    spiking_ep_estimate,
    spiking_ep_trainer,
    spiking_relax,
)
from .stdp import (
    STDPSignals,
    measure_window,
    pair_stdp,
    pair_window,
    reward_stdp,
    run_stdp,
    song_experiment,
    triplet_stdp,
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
    "STDPSignals",
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
    "measure_window",
    "ml_rule",
    "nudged_phase",
    "pair_stdp",
    "pair_window",
    "recurrent_backprop_errors",
    "relax",
    "reward_stdp",
    "rule_engine",
    "run_stdp",
    "song_experiment",
    "spiking_ep",
    "spiking_ep_estimate",
    "spiking_ep_trainer",
    "spiking_relax",
    "stdp",
    "stdp_equivalence",
    "sum_of_products",
    "triplet_stdp",
]
