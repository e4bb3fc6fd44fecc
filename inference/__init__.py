"""Learning criteria and fitting (installed as ``probsnn.inference``)."""
