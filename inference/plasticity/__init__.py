"""Plasticity: local rules that return terminal weight deltas, docs/theory.md §8.

* :mod:`.stdp` — trace-based pair (all-to-all or nearest-spike, additive or multiplicative),
  triplet and reward-modulated STDP as ``(init, update)`` rules reading :class:`~.stdp.STDPSignals`;
  ``run_stdp`` over fixed spike trains, the analytical ``pair_window`` and ``measure_window``.
* :mod:`.rule_engine` — the sum-of-products engine (Loihi's form) ``sum_of_products``, the STDP
  rules written in it, and the GLM maximum-likelihood rule as a plasticity rule
  (``ml_sum_of_products``).
* :mod:`.features` — unsupervised feature learning by STDP in a soft winner-take-all layer, and
  its trainer ``stdp_features_trainer``.

These rules are plasticity rules, not gradient estimators (docs/learning.md): each ``update``
returns Δw already scaled and bounded, applied with ``optax.apply_updates`` and nothing else.
Time is in ms here, and every time argument carries its unit in its name (``tau_plus_ms``,
``dt_ms``, ``lags_ms``, ``lags_bins``).
"""
