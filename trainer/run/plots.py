"""The reward-curve PNG: reward, held-out pass@1, entropy, KL and response length against step."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

# (title, metrics.jsonl keys tried in order, kind of row)
PANELS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("reward (train)", ("reward", "env/reward"), "train"),
    ("held-out pass@1", ("eval/pass@1",), "eval"),
    ("entropy", ("entropy",), "train"),
    ("KL to reference", ("algo/kl", "kl"), "train"),
    ("response length (model tokens)", ("completions/mean_length", "env/model_tokens"), "train"),
)


def _series(rows: Sequence[dict[str, Any]], keys: Sequence[str], kind: str) -> tuple[list[float], list[float], str]:
    for key in keys:
        xs, ys = [], []
        for r in rows:
            if r.get("kind") == kind and isinstance(r.get(key), (int, float)):
                xs.append(float(r["step"]))
                ys.append(float(r[key]))
        if xs:
            return xs, ys, key
    return [], [], keys[0]


def plot_run(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Draw the five panels from metrics.jsonl rows into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.0 * len(PANELS), 3.2))
    for ax, (name, keys, kind) in zip(axes, PANELS):
        xs, ys, key = _series(rows, keys, kind)
        if xs:
            ax.plot(xs, ys, marker="o" if kind == "eval" or len(xs) < 30 else None, linewidth=1.5)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if kind == "eval":
            ax.set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["plot_run", "PANELS"]
