"""probsnn: probabilistic spiking neural networks on JAX and NumPyro."""

__version__ = "0.1.0"
