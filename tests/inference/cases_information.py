"""Learning-interface cases of the information family (see test_interface.py)."""

from cases import RuleCase, TrainerCase

RULES: list[RuleCase] = []
TRAINERS: list[TrainerCase] = []
