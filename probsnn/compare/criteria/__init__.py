"""The criterion registry: one adapter per learner of :mod:`probsnn.inference`.

Each adapter (:class:`~probsnn.compare.criteria.base.Criterion`) is a small class in a module of
its family: :mod:`.glm` (maximum likelihood), :mod:`.variational` (hidden neurons, one or K
samples), :mod:`.information` (InfoMax + read-out, information bottleneck), :mod:`.energy`
(equilibrium propagation and the backprop baseline), :mod:`.stdp` (STDP features + read-out),
:mod:`.surrogate` (deterministic LIF networks: surrogate-gradient BPTT and e-prop) and
:mod:`.conversion` (ANN→SNN conversion to integrate-and-fire and to Bernoulli neurons).
"""

from .base import Criterion, Curve, NotApplicable
from .conversion import BernoulliConversion, Conversion
from .energy import Backprop, EquilibriumPropagation, SpikingEP
from .information import InfoMaxReadout, InformationBottleneck
from .likelihood import MaximumLikelihood, OnlineMaximumLikelihood
from .stdp import STDPReadout
from .surrogate import EProp, Surrogate
from .variational import MultisampleVariational, Variational

#: Registered criteria by name, in table order.
CRITERIA = {
    criterion.name: criterion
    for criterion in (
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
    )
}

__all__ = ["CRITERIA", "Criterion", "Curve", "NotApplicable"]
