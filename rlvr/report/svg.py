"""Line charts as inline SVG strings: a mean line and a shaded min-max band per series.

No JavaScript and no external library: the report's charts are plain markup, so they render
opened from disk, print, and cannot fail at runtime.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

from rlvr.report.series import Band, nice_ticks

# Colour-blind-safe palette (Okabe-Ito), in legend order; the last is for reference lines.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
REFERENCE = "#777777"


def color_of(index: int) -> str:
    """The palette colour of the ``index``-th series."""
    return PALETTE[index % (len(PALETTE) - 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10 or float(v).is_integer():
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def line_chart(
    bands: Sequence[Band],
    *,
    y_range: tuple[float, float],
    x_label: str = "step",
    y_label: str = "",
    colors: dict[str, str] | None = None,
    dashed: Sequence[str] = (),
    log2_x: bool = False,
    markers: bool = False,
    width: int = 440,
    height: int = 250,
) -> str:
    """An SVG chart of ``bands`` (mean line + min-max band); x from the data, y over ``y_range``."""
    left, right, top, bottom = 52, 12, 10, 40
    pw, ph = width - left - right, height - top - bottom
    xs = [x for b in bands for x in b.xs]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if log2_x:
        x0, x1 = math.log2(max(x0, 1.0)), math.log2(max(x1, 1.0))
    if x1 <= x0:
        x1 = x0 + 1.0
    y0, y1 = y_range
    if y1 <= y0:
        y1 = y0 + 1.0

    def sx(x: float) -> float:
        x = math.log2(max(x, 1.0)) if log2_x else x
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        y = min(max(y, y0), y1)
        return top + ph - (y - y0) / (y1 - y0) * ph

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" xmlns="http://www.w3.org/2000/svg">']
    for t in nice_ticks(y0, y1):
        y = sy(t)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(t)}</text>')
    if log2_x:
        xticks = [2 ** i for i in range(int(x0), int(x1) + 1)]
    else:
        xticks = nice_ticks(x0, x1)
    for t in xticks:
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" class="axis"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">{_fmt(t)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" class="label" text-anchor="middle">{escape(x_label)}</text>')
    if y_label:
        parts.append(f'<text transform="translate(12 {top + ph / 2:.1f}) rotate(-90)" class="label" '
                     f'text-anchor="middle">{escape(y_label)}</text>')
    colors = colors or {}
    for i, band in enumerate(bands):
        color = REFERENCE if band.label in dashed else colors.get(band.label, color_of(i))
        pts = list(zip(band.xs, band.mean, band.lo, band.hi))
        if band.seeds > 1 and any(h > lo for _, _, lo, h in pts):
            upper = " ".join(f"{sx(x):.1f},{sy(h):.1f}" for x, _, _, h in pts)
            lower = " ".join(f"{sx(x):.1f},{sy(lo):.1f}" for x, _, lo, _ in reversed(pts))
            parts.append(f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="0.18" stroke="none"/>')
        line = " ".join(f"{sx(x):.1f},{sy(m):.1f}" for x, m, _, _ in pts)
        dash = ' stroke-dasharray="5 4"' if band.label in dashed else ""
        parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"{dash}>'
                     f'<title>{escape(band.label)}</title></polyline>')
        if markers or len(pts) == 1:
            for x, m, lo, h in pts:
                tip = f"{band.label}: {_fmt(x)} → {m:.3f}" + (f" (range {lo:.3f}–{h:.3f})" if band.seeds > 1 else "")
                parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(m):.1f}" r="3" fill="{color}">'
                             f'<title>{escape(tip)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def legend(labels: Sequence[str], colors: dict[str, str], dashed: Sequence[str] = ()) -> str:
    """An HTML legend: one swatch per label."""
    items = []
    for label in labels:
        color = REFERENCE if label in dashed else colors.get(label, "#000")
        style = "border-top: 3px dashed" if label in dashed else "border-top: 3px solid"
        items.append(f'<span class="key"><span class="swatch" style="{style} {color}"></span>{escape(label)}</span>')
    return '<div class="legend">' + "".join(items) + "</div>"


__all__ = ["line_chart", "legend", "color_of", "PALETTE"]
