"""The criterion registry: one adapter per learner of :mod:`probsnn.inference`.

Each adapter (:class:`~probsnn.compare.criteria.base.Criterion`) is a small class in a module of
its family: :mod:`.glm` (maximum likelihood), :mod:`.variational` (hidden neurons, one or K
samples), :mod:`.information` (InfoMax + read-out, information bottleneck), :mod:`.energy`
(equilibrium propagation and the backprop baseline), :mod:`.stdp` (STDP features + read-out),
:mod:`.surrogate` (deterministic LIF networks: surrogate-gradient BPTT and e-prop),
:mod:`.conversion` (ANN→SNN conversion to integrate-and-fire and to Bernoulli neurons) and
:mod:`.control` (policies learnt from their own episodes, for control tasks). The learners of
a data set do not apply to control tasks, and the control learners apply to nothing else.
"""

from .base import Criterion, Curve, NotApplicable
from .control import (
    MSTDPET,
    NOT_CONTROL,
    ActorCritic,
    EvolutionStrategies,
    MLPPolicyGradient,
    PolicyGradient,
)
from .conversion import BernoulliConversion, Conversion
from .energy import Backprop, EquilibriumPropagation, SpikingEP
from .information import InfoMaxReadout, InformationBottleneck
from .likelihood import MaximumLikelihood, OnlineMaximumLikelihood
from .stdp import STDPReadout
from .surrogate import EProp, Surrogate
from .variational import MultisampleVariational, Variational


def _data_only(criterion: Criterion) -> Criterion:
    """``criterion``, saying why it does not apply to control tasks
    (:data:`.control.NOT_CONTROL`)."""
    criterion.not_applicable = {**criterion.not_applicable, "control": NOT_CONTROL}
    return criterion


#: Registered criteria by name, in table order.
CRITERIA = {
    criterion.name: criterion
    for criterion in (
        *map(
            _data_only,
            (
                MaximumLikelihood(),
                OnlineMaximumLikelihood(),
                Variational(),
                MultisampleVariational(),
                InfoMaxReadout(),
                InformationBottleneck(),
                EquilibriumPropagation(),
                SpikingEP(),
                Backprop(),
                STDPReadout(),
                Surrogate(),
                EProp(),
                Conversion(),
                BernoulliConversion(),
            ),
        ),
        PolicyGradient(),
        MLPPolicyGradient(),
        ActorCritic(),
        MSTDPET(),
        EvolutionStrategies(),
    )
}

__all__ = ["CRITERIA", "Criterion", "Curve", "NotApplicable"]
