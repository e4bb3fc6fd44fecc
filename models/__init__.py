"""NumPyro model definitions of probsnn (installed as ``probsnn.models``).

:func:`glm_network` — the GLM spiking network; :func:`glm_design_model` — the same for fully
observed spikes on a precomputed design, the model of the Bayesian fits (its parameter part
:func:`design_params`); :mod:`.energy` — layered Hopfield-energy networks for equilibrium
propagation; :mod:`.priors` — Normal, Laplace and regularised-horseshoe priors
(:class:`GLMPrior`) for Bayesian fits; :func:`hidden_network` / :func:`hidden_guide` — p(x, h)
and q(h‖x) of a network with hidden neurons, for SVI with ``TraceGraph_ELBO``.
"""

from . import energy, priors
from .energy import EnergyNetwork, EnergyParams
from .glm import design_params, glm_design_model, glm_network, network_params
from .hidden import HiddenSpikes, hidden_guide, hidden_network
from .priors import IID, GLMPrior, GroupPrior, Horseshoe

__all__ = [
    "IID",
    "EnergyNetwork",
    "EnergyParams",
    "GLMPrior",
    "GroupPrior",
    "HiddenSpikes",
    "Horseshoe",
    "design_params",
    "energy",
    "glm_design_model",
    "glm_network",
    "hidden_guide",
    "hidden_network",
    "network_params",
    "priors",
]
