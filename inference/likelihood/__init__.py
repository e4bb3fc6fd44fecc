"""Maximum likelihood of fully observed GLM networks, docs/theory.md §2.

* :mod:`.newton` — the batch solver: every neuron's penalised logistic regression on the shared
  design, by truncated Newton (and FISTA for an L1 penalty); ``fit_ml`` and the trainer
  ``newton_trainer`` (one step = one Newton iteration), and the warnings ``fit_ml`` raises,
  ``ConvergenceWarning`` and ``SeparationWarning``.
* :mod:`.streaming` — ``fit_ml_streaming``: the same solver on recordings read chunk by chunk
  (memory-mapped files, loaders), in the memory of one chunk.
* :mod:`.online` — the local online rule (presynaptic trace × postsynaptic error): the score
  ``local_gradient``, the gradient estimator ``ml_rule`` and the trainer ``ml_online_trainer``
  (one update per bin).
"""

from .newton import ConvergenceWarning, SeparationWarning

__all__ = ["ConvergenceWarning", "SeparationWarning"]
