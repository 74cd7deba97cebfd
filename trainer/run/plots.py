"""The run's PNG figures (``reward_curve.png``): the report's curves, drawn from metrics.jsonl rows.

Kept for people who want an image; ``report.html`` is the fuller view. Only panels with data are
drawn and axes start at meaningful values (rates 0-1, lengths and entropy at 0); the numbers come
from :mod:`rlvr.report.series`, the same as the HTML report's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rlvr.report.figures import write_figures
from rlvr.report.load import RunData, Source, load_run


def plot_run(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Draw the curves of one run (its metrics.jsonl ``rows``) into ``path``; eval files next to it are used too."""
    path = Path(path)
    run = load_run(path.parent) if path.parent.is_dir() else RunData(path.parent, "run", 0)
    run.train = [r for r in rows if r.get("kind") == "train" and isinstance(r.get("step"), (int, float))]
    run.evals = [r for r in rows if r.get("kind") == "eval" and isinstance(r.get("step"), (int, float))]
    return write_figures(Source(path.parent, [run]), path, title)


__all__ = ["plot_run"]
