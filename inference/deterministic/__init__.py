"""The deterministic limit: threshold neurons (:mod:`probsnn.lif`) trained as most spiking-network
research trains them, and compared with the stochastic criteria on the same neuron model.

* :mod:`.bptt` — surrogate-gradient back-propagation through time (``surrogate_trainer``) with
  spike-count, maximum-, last- and per-bin-membrane read-outs;
* :mod:`.eprop` — e-prop: eligibility traces × a broadcast learning signal, online in constant
  memory (``eprop_trainer``, ``eprop_gradient``); exact for networks without recurrent weights;
* :mod:`.conversion` — ANN→SNN conversion to integrate-and-fire neurons with data-based
  normalisation (``convert_to_if``) and to Bernoulli neurons (``convert_to_bernoulli``), and the
  likelihood fine-tuning of stochastic networks (``bernoulli_finetune_trainer``);
* :mod:`.equivalence` — surrogate ↔ stochastic gradients measured against the exact gradient of
  the expected loss, computed by enumeration (``surrogate_equivalence``).

Equations: docs/theory.md §10.
"""

from . import bptt, conversion, eprop, equivalence
from .bptt import surrogate_trainer
from .conversion import (
    accuracy_vs_steps,
    bernoulli_finetune_trainer,
    convert_to_bernoulli,
    convert_to_if,
    mlp_trainer,
)
from .eprop import eprop_gradient, eprop_trainer
from .equivalence import surrogate_equivalence

__all__ = [
    "accuracy_vs_steps",
    "bernoulli_finetune_trainer",
    "bptt",
    "conversion",
    "convert_to_bernoulli",
    "convert_to_if",
    "eprop",
    "eprop_gradient",
    "eprop_trainer",
    "equivalence",
    "mlp_trainer",
    "surrogate_equivalence",
    "surrogate_trainer",
]
