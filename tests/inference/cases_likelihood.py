"""Learning-interface cases of the likelihood family (see test_interface.py)."""

from cases import RuleCase, TrainerCase

RULES: list[RuleCase] = []
TRAINERS: list[TrainerCase] = []
