"""Compare learning criteria on common tasks: one function, one command, one report.

``compare(tasks, criteria, quick=..., seed=..., n_seeds=..., out=..., workers=...)`` runs every
criterion (:data:`CRITERIA`) on every task (:data:`TASKS`) it applies to, over seeds, caching
finished cells in ``out``, and returns a :class:`Report` (table as text, Markdown, JSON, CSV;
figures). The command line is ``probsnn compare``. A criterion is an adapter class
(:class:`Criterion`) around a learner of :mod:`probsnn.inference`; a task prepares the same data
for every criterion of a seed (:mod:`.tasks`). Not imported by ``import probsnn``: use
``from probsnn import compare``.
"""

from .criteria import CRITERIA, Criterion, Curve, NotApplicable
from .report import Report
from .runner import compare
from .tasks import TASKS, SelectionError, Task

__all__ = [
    "CRITERIA",
    "TASKS",
    "Criterion",
    "Curve",
    "NotApplicable",
    "Report",
    "SelectionError",
    "Task",
    "compare",
]
