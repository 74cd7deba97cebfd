"""``rlvr compare``: the same warm-up, prompts, sample budget and held-out evaluation for several algorithms.

:func:`make_plan` turns one config into a warm-up per seed and one run per algorithm and seed;
:class:`CompareRunner` runs them (one after another or ``parallel`` at a time, resumable) and
writes ``compare.json`` and ``report.html``.
"""

from rlvr.trainer.compare.plan import Algorithm, ComparePlan, RunSpec, make_plan
from rlvr.trainer.compare.runner import CompareRunner

__all__ = ["make_plan", "ComparePlan", "RunSpec", "Algorithm", "CompareRunner"]
