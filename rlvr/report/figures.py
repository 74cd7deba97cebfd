"""The report's curves as one PNG (matplotlib), for people who want an image rather than a page.

Same numbers as ``report.html`` (from :mod:`rlvr.report.series`): only panels with data are
drawn, rates span 0-1, lengths and entropy start at 0, and every algorithm is a mean line
with a min-max band over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

from rlvr.report.load import Source
from rlvr.report.series import PANELS, Band, length_bands, panel_bands, pass_at_k_bands, y_range
from rlvr.report.svg import REFERENCE, color_of

START_LABEL = "start (warm-up)"


def _draw(ax, bands: list[Band], colors: dict[str, str], markers: bool = False) -> None:  # noqa: ANN001
    for i, b in enumerate(bands):
        ref = b.label == START_LABEL
        color = REFERENCE if ref else colors.get(b.label, color_of(i))
        if b.seeds > 1:
            ax.fill_between(b.xs, b.lo, b.hi, color=color, alpha=0.18, linewidth=0)
        ax.plot(b.xs, b.mean, color=color, linewidth=1.8, linestyle="--" if ref else "-",
                marker="o" if markers or len(b.xs) == 1 else None, markersize=3.5, label=b.label)


def write_figures(source: Source, path: str | Path, title: str = "") -> Path | None:
    """Draw every panel that has data into ``path`` (PNG); None when there is nothing to draw yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {a: color_of(i) for i, a in enumerate(source.algorithms)}
    panels: list[tuple[str, list[Band], tuple[float, float], str, str, bool]] = []
    for panel in PANELS:
        if panel.name.startswith("len_"):
            continue
        bands = panel_bands(source, panel)
        if bands:
            panels.append((panel.title, bands, y_range(panel, bands), "step", panel.ylabel, panel.kind == "eval"))
    for verdict, bands in length_bands(source).items():
        if bands:
            hi = max(max(b.hi) for b in bands)
            panels.append((f"length of {verdict} answers", bands, (0.0, max(1.0, hi) * 1.1), "step", "model tokens", True))
    passk = pass_at_k_bands(source)
    if passk:
        panels.append(("final pass@k", passk, (0.0, 1.0), "k (samples per task)", "pass@k", True))
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows + 0.6), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.remove()  # no empty panels
    for ax, (name, bands, (lo, hi), xlabel, ylabel, markers) in zip(axes.flat, panels):
        _draw(ax, bands, colors, markers)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(lo, hi)
        ax.grid(alpha=0.3)
        if xlabel.startswith("k "):
            ax.set_xscale("log", base=2)
            ax.set_xticks([x for x in passk[0].xs])
            ax.set_xticklabels([f"{x:.0f}" for x in passk[0].xs])
    handles, labels = [], []
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, 1.0), fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12, y=1.0 + 0.35 / (3.6 * rows + 0.6), va="bottom")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (3.6 * rows + 0.6)))
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


__all__ = ["write_figures"]
