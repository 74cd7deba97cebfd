"""The reward-distribution PNG written beside the rollouts."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def save_reward_histogram(rewards: Sequence[float], path: str | Path, title: str) -> Path:
    """Histogram of episode rewards with the mean marked; returns ``path``.

    Uses matplotlib's object API with the Agg canvas directly, so no global backend is touched
    and no display is needed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if rewards:
        lo, hi = min(rewards), max(rewards)
        bins = 20 if hi > lo else 1
        ax.hist(rewards, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, lo + 0.5), color="#4C72B0", edgecolor="white")
        mean = sum(rewards) / len(rewards)
        ax.axvline(mean, color="#C44E52", linestyle="--", label=f"mean {mean:.3f}")
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no scored episodes", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("episode reward")
    ax.set_ylabel("episodes")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path


__all__ = ["save_reward_histogram"]
