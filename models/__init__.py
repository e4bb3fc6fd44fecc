"""NumPyro model definitions of probsnn (installed as ``probsnn.models``).

:func:`glm_network` — the GLM spiking network; :mod:`.energy` — layered Hopfield-energy networks
for equilibrium propagation.
"""

from . import energy
from .energy import EnergyNetwork, EnergyParams
from .glm import GLMPrior, glm_network, network_params

__all__ = ["EnergyNetwork", "EnergyParams", "GLMPrior", "energy", "glm_network", "network_params"]
