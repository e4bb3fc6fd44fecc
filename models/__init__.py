"""NumPyro model definitions of probsnn (installed as ``probsnn.models``)."""

from .glm import GLMPrior, glm_network, network_params

__all__ = ["GLMPrior", "glm_network", "network_params"]
