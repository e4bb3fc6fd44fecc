"""Latent-variable learning: networks with hidden neurons (docs/theory.md §3).

* :mod:`.variational` — the ELBO's local three-factor rules (batch :func:`variational_rule`,
  streaming :func:`online_variational_rule` / :func:`fit_variational_online`) and the clamped
  sampler of q(h‖x) (:func:`sample_hidden`);
* :mod:`.multisample` — K-sample bounds: the VIMCO and GEM rules (:func:`multisample_rule`) and
  estimators of log p(x) (importance sampling, particle filter, exact enumeration);
* :mod:`.wta` — the same criteria for networks of winner-take-all units;
* :mod:`.trainer` — :func:`variational_trainer` and :func:`wta_trainer`, the family's trainers
  for :func:`probsnn.inference.fit`.

Every rule is a gradient estimator of a loss to minimise (−ELBO, −IW_K, −log p(x), −log p);
samples are ``(B, K, T, N)`` (a trailing symbol axis for WTA); see docs/learning.md.
"""
