"""Information criteria: learning spike codes that carry information about their inputs.

* :mod:`.estimators` — estimators of I(X;S) for judging codes: exact (joint tables, enumerated
  network channels), plug-in with bias corrections, and the Barber–Agakov and InfoNCE bounds.
* :mod:`.infomax` — the score-function gradient estimator (:func:`~.infomax.infomax_rule`) of
  an :class:`~.infomax.InformationCriterion`'s loss, its trainer
  (:func:`~.infomax.infomax_trainer`) and held-out evaluation.
* :mod:`.criteria` — the criteria: Barber–Agakov InfoMax, InfoNCE, the variational information
  bottleneck and Toyoizumi et al.'s rate-penalised InfoMax (with its STDP window).

Theory: docs/theory.md §4; the learning interface: docs/learning.md.
"""
