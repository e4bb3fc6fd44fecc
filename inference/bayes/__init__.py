"""Bayesian GLM networks: posteriors by NUTS or SVI, reported through ArviZ, docs/theory.md §6.

* :mod:`.fit` — ``fit_mcmc`` and ``fit_svi`` on the design-matrix model
  (:func:`probsnn.models.glm_design_model`), returning ``arviz.InferenceData``; reading the
  posterior (``posterior_params``, ``posterior_kernels``), the credible-region synapse test
  ``synapse_test`` and ``auroc``.
* :mod:`.checks` — posterior-predictive checks of the PSTH, the ISI distribution and time
  rescaling (``psth_check``, ``isi_check``, ``time_rescaling_check``); their plots are in
  :mod:`probsnn.plot`.

ArviZ is imported by the functions that use it (it loads matplotlib.pyplot), so importing this
family loads neither.
"""
