"""Learning criteria for probabilistic spiking networks (installed as ``probsnn.inference``).

A map of the families, one sub-package each, read top-down:

* :mod:`.likelihood` — maximum likelihood of fully observed GLM networks: the truncated-Newton
  solver on the shared design (``fit_ml``, ``newton_trainer``, ``fit_ml_streaming`` for
  recordings read in chunks; its warnings
  ``ConvergenceWarning`` and ``SeparationWarning``) and the local online rule
  "presynaptic trace × postsynaptic error" (``ml_rule``, ``ml_online_trainer``).
* :mod:`.latent` — hidden neurons: the ELBO's three-factor rules (``variational_rule``,
  ``online_variational_rule``), multi-sample bounds (``multisample_rule``), estimators of
  log p(x), winner-take-all units (``wta_ml_rule``, ``wta_variational_rule``) and their
  trainers.
* :mod:`.information` — mutual-information criteria (Barber–Agakov InfoMax, InfoNCE, the
  information bottleneck, Toyoizumi's rate-penalised InfoMax) with ``infomax_rule`` /
  ``infomax_trainer``, and MI estimators.
* :mod:`.bayes` — Bayesian GLM networks with NumPyro's NUTS and SVI, reported as ArviZ
  InferenceData, and their posterior-predictive checks.
* :mod:`.energy` — equilibrium propagation on energy networks (real-valued and spiking) and the
  backprop baseline on the same networks.
* :mod:`.plasticity` — STDP (pair, triplet, reward-modulated), the sum-of-products rule engine
  and unsupervised STDP feature learning.
* :mod:`.deterministic` — threshold neurons in their deterministic limit: surrogate-gradient
  BPTT, e-prop, ANN→SNN conversion and where surrogate and stochastic gradients agree.
* :mod:`.reinforcement` — spiking policies trained by reward (:mod:`probsnn.rl`): REINFORCE
  with exact spike log-probabilities and its three-factor form, actor-critic, reward-modulated
  STDP, evolution strategies.
* :mod:`.equivalence` — where the gradient rules and STDP coincide (ML, rate-derivative, EP and
  InfoMax windows).
* :mod:`.score` — score-function estimators and baselines shared by the families;
  ``fit`` / ``Trainer`` — the one training loop and trainer protocol.

Every gradient estimator (``*_rule`` above, except the plasticity rules) is an optax
``GradientTransformation`` returning the gradient of a loss to minimise, so
``optax.chain(rule, optax.adam(lr))`` is always right; plasticity rules return terminal weight
deltas. Every criterion has a trainer ``init(params)`` / ``step(key, state, batch)`` driven by
:func:`fit`. Samples are ``(B, K, T, N)``. See docs/learning.md; the equations are in
docs/theory.md.
"""

from . import (
    bayes,
    deterministic,
    energy,
    equivalence,
    information,
    latent,
    likelihood,
    plasticity,
    reinforcement,
    score,
)
from ._training import FitResult, Trainer, fit
from .bayes.fit import fit_mcmc, fit_svi
from .energy.ep import backprop_trainer, ep_rule, ep_trainer
from .energy.spiking_ep import spiking_ep_trainer
from .information.criteria import (
    barber_agakov,
    infonce,
    information_bottleneck,
    rate_penalised_infomax,
)
from .information.infomax import infomax_rule, infomax_trainer
from .latent.multisample import multisample_rule
from .latent.trainer import variational_trainer, wta_trainer
from .latent.variational import fit_variational_online, online_variational_rule, variational_rule
from .latent.wta import wta_ml_rule, wta_variational_rule
from .likelihood.newton import ConvergenceWarning, SeparationWarning, fit_ml, newton_trainer
from .likelihood.online import ml_online_trainer, ml_rule
from .likelihood.streaming import fit_ml_streaming
from .plasticity.features import stdp_features_trainer
from .plasticity.rule_engine import sum_of_products
from .plasticity.stdp import pair_stdp, reward_stdp, triplet_stdp

__all__ = [
    "ConvergenceWarning",
    "FitResult",
    "SeparationWarning",
    "Trainer",
    "backprop_trainer",
    "barber_agakov",
    "bayes",
    "deterministic",
    "energy",
    "ep_rule",
    "ep_trainer",
    "equivalence",
    "fit",
    "fit_mcmc",
    "fit_ml",
    "fit_ml_streaming",
    "fit_svi",
    "fit_variational_online",
    "infomax_rule",
    "infomax_trainer",
    "infonce",
    "information",
    "information_bottleneck",
    "latent",
    "likelihood",
    "ml_online_trainer",
    "ml_rule",
    "multisample_rule",
    "newton_trainer",
    "online_variational_rule",
    "pair_stdp",
    "plasticity",
    "rate_penalised_infomax",
    "reinforcement",
    "reward_stdp",
    "score",
    "spiking_ep_trainer",
    "stdp_features_trainer",
    "sum_of_products",
    "triplet_stdp",
    "variational_rule",
    "variational_trainer",
    "wta_ml_rule",
    "wta_trainer",
    "wta_variational_rule",
]
