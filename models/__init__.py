"""NumPyro model definitions of probsnn (installed as ``probsnn.models``)."""
