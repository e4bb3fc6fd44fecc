"""Energy-based learning: equilibrium propagation on layered Hopfield-energy networks
(:mod:`probsnn.models.energy`), docs/theory.md §7.

* :mod:`.ep` — relaxations to fixed points, the EP estimators of the gradient of the cost at the
  free fixed point (one-sided, symmetric, random-sign, holomorphic), the gradient estimator
  ``ep_rule``, exact references (implicit differentiation, BPTT) and the trainers ``ep_trainer``
  and ``backprop_trainer`` (the baseline on the same network);
* :mod:`.spiking_ep` — the same phases with spiking communication (sigma-delta or Bernoulli
  spikes, annealed steps) and ``spiking_ep_trainer``.
"""
