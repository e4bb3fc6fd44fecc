"""Learning-interface cases of the plasticity family (see test_interface.py).

The family's rules (pair, triplet and reward STDP, the sum-of-products engine) are plasticity
rules that return terminal weight deltas, not gradient estimators (docs/learning.md), so they
have no RULES case; the STDP feature layer's trainer is checked like every other trainer.
"""

import jax
import numpy as np
from cases import MadeTrainer, RuleCase, TrainerCase

from probsnn.inference.plasticity import features
from probsnn.inference.plasticity.stdp import pair_stdp


def _stdp_features() -> MadeTrainer:
    layer = features.FeatureLayer(temperature=0.2, weight_total=4.0)
    rule = pair_stdp(0.02, 0.01, 10.0, 10.0, layer.dt_ms, w_max=1.0)
    params = features.init_feature_params(jax.random.key(0), 8, 3, layer)
    spikes = (np.random.default_rng(0).random((12, 10, 8)) < 0.3).astype(np.uint8)
    return MadeTrainer(features.stdp_features_trainer(layer, rule), params, spikes, 4)


RULES: list[RuleCase] = []
TRAINERS: list[TrainerCase] = [TrainerCase("stdp_features_trainer", _stdp_features)]
