"""``report.html``: one self-contained page about a run or a comparison of algorithms.

Charts are inline SVG, the style sheet and the rollout browser's script are inlined from
``report.css`` and ``report.js`` next to this module; nothing is fetched, so the file works
opened from disk, offline, and can be mailed as it is.
"""

from __future__ import annotations

import datetime as _dt
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from rlvr.report.load import Source, load_source
from rlvr.report.rollouts import rollout_records, script_json
from rlvr.report.series import PANELS, final_table, length_bands, nice_ceiling, panel_bands, pass_at_k_bands, y_range
from rlvr.report.svg import color_of, legend, line_chart

REPORT_FILE = "report.html"
START_LABEL = "start (warm-up)"


def _asset(name: str) -> str:
    return resources.files("rlvr.report").joinpath(name).read_text(encoding="utf-8")


def _describe(source: Source) -> str:
    """A few lines on what was run: model, environments, budget, evaluation."""
    run = source.runs[0] if source.runs else None
    cfg = run.config if run else {}
    model = (cfg.get("model") or {}).get("name_or_path", "?")
    envs = ", ".join(str(e.get("id")) + (f" {e.get('kwargs')}" if e.get("kwargs") else "")
                     for e in cfg.get("environments") or [] if isinstance(e, dict))
    g, o, ev = cfg.get("generation") or {}, cfg.get("optim") or {}, cfg.get("eval") or {}
    if source.compare is not None and "/warmup/seed-" in str(model):
        model = "each seed's SFT warm-up (warmup/seed-N/start_policy), shared by every algorithm"
    lines = [f"<b>model</b> {escape(str(model))}", f"<b>environments</b> {escape(envs or '?')}"]
    if o and g:
        lines.append(f"<b>budget</b> {o.get('max_steps')} steps × {g.get('prompts_per_step')} prompts × "
                     f"{g.get('num_generations')} rollouts, up to {g.get('max_new_tokens')} new tokens a turn")
    if ev:
        every = f", every {ev.get('every_steps')} steps" if ev.get("every_steps") else ", before and after"
        lines.append(f"<b>held-out evaluation</b> {ev.get('num_tasks')} tasks × {ev.get('samples_per_task')} samples "
                     f"at temperature {ev.get('temperature')}{every}")
    cmp = source.compare or {}
    if cmp.get("command"):
        lines.append(f"<b>command</b> <code>{escape(str(cmp['command']))}</code>")
    seeds = sorted({r.seed for r in source.runs})
    unfinished = [r.label for r in source.runs if not r.finished]
    lines.append(f"<b>runs</b> {len(source.runs)}: {len(source.algorithms)} algorithm(s) × seeds {seeds}"
                 + (f"; still running or stopped early: {escape(', '.join(unfinished))}" if unfinished else ""))
    return "<ul class='meta'>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def _table(source: Source) -> str:
    header, rows = final_table(source)
    if not rows:
        return "<p class='empty'>No run has finished an evaluation yet.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    note = ("mean ± standard deviation over seeds" if any(len(source.runs_of(a)) > 1 for a in source.algorithms)
            else "one seed per algorithm: no spread shown")
    return f"<table id='final-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p class='note'>{note}; " \
           "pass@k from the final held-out evaluation (unbiased estimator over the samples per task).</p>"


def _figure(title: str, svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure class='panel'><h3>{escape(title)}</h3>{svg}{cap}</figure>"


def _curves(source: Source, colors: dict[str, str]) -> str:
    figures = []
    for panel in PANELS:
        if panel.name.startswith("len_"):
            continue  # shown in the length section
        bands = panel_bands(source, panel)
        if not bands:
            continue  # no empty panels: a metric nobody logged is left out
        markers = panel.kind == "eval"
        svg = line_chart(bands, y_range=y_range(panel, bands), y_label=panel.ylabel, colors=colors, markers=markers)
        figures.append(_figure(panel.title, svg, panel.caption))
    return "<div class='grid'>" + "".join(figures) + "</div>" if figures else "<p class='empty'>No metrics logged yet.</p>"


def _pass_at_k(source: Source, colors: dict[str, str]) -> str:
    bands = pass_at_k_bands(source)
    if not bands:
        return "<p class='empty'>No final evaluation yet.</p>"
    svg = line_chart(bands, y_range=(0.0, 1.0), x_label="k (samples per task)", y_label="pass@k", colors=colors,
                     dashed=(START_LABEL,), log2_x=True, markers=True)
    return "<div class='grid'>" + _figure("final pass@k against k", svg,
                                          "dashed: the starting policy (after the warm-up, before RL)") + "</div>"


def _lengths(source: Source, colors: dict[str, str]) -> str:
    bands = length_bands(source)
    figures = []
    for verdict, title in (("correct", "length of correct answers"), ("wrong", "length of wrong answers")):
        if bands[verdict]:
            hi = max(v for b in bands[verdict] for v in b.hi)
            svg = line_chart(bands[verdict], y_range=(0.0, nice_ceiling(max(hi, 1.0))), y_label="model tokens",
                             colors=colors, markers=True)
            figures.append(_figure(title, svg))
    if not figures:
        return "<p class='empty'>No lengths logged yet.</p>"
    return "<div class='grid'>" + "".join(figures) + "</div>"


def render(source: Source, title: str | None = None) -> str:
    """The whole page for ``source`` as one HTML string."""
    algos = source.algorithms
    colors = {a: color_of(i) for i, a in enumerate(algos)}
    title = title or (f"rlvr compare: {', '.join(algos)}" if source.compare else
                      f"rlvr run: {algos[0] if algos else 'run'} ({source.path.name})")
    records = rollout_records(source)
    generated = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_asset("report.css")}</style>
</head>
<body>
<header>
<h1>{escape(title)}</h1>
<p class="source">{escape(str(source.path))} · written {generated}</p>
{_describe(source)}
</header>
<main>
<section id="final">
<h2>Final held-out numbers</h2>
{_table(source)}
</section>
<section id="curves">
<h2>Training curves</h2>
{legend(algos, colors)}
<p class="note">Lines: mean over seeds; shaded: min–max over seeds. Training curves are a trailing mean over about
1/20 of the logged steps; held-out points are as measured. Rates span 0–1 and lengths start at 0.</p>
{_curves(source, colors)}
</section>
<section id="passk">
<h2>pass@k</h2>
{legend(algos + [START_LABEL], colors, dashed=(START_LABEL,))}
{_pass_at_k(source, colors)}
</section>
<section id="lengths">
<h2>Length of correct and wrong answers over training</h2>
{_lengths(source, colors)}
</section>
<section id="rollouts">
<h2>Rollouts</h2>
<p class="note">Sample rollouts logged during training (prompt, completion, environment turns, reward components,
advantage where recorded). Filter by run, step, reward and environment.</p>
<div id="filters">
<label>run <select id="f-run"><option value="">all</option></select></label>
<label>environment <select id="f-env"><option value="">all</option></select></label>
<label>step from <input id="f-step-min" type="number" step="1"></label>
<label>to <input id="f-step-max" type="number" step="1"></label>
<label>outcome <select id="f-outcome"><option value="">all</option><option value="success">success</option>
<option value="failure">failure</option></select></label>
<label>reward ≥ <input id="f-reward-min" type="number" step="any"></label>
<label>reward ≤ <input id="f-reward-max" type="number" step="any"></label>
<label>text <input id="f-text" type="search" title="words to find in the messages"></label>
</div>
<p id="rollout-count" class="count"></p>
<div id="rollout-list"></div>
<button id="rollout-more" type="button" hidden>show more</button>
</section>
</main>
<footer>Written by <code>rlvr report</code> from the run files (metrics.jsonl, eval_*.json, samples.jsonl). Self-contained:
no network access.</footer>
<script id="rollout-data" type="application/json">{script_json(records)}</script>
<script>{_asset("report.js")}</script>
</body>
</html>
"""


def write_report(path: str | Path, output: str | Path | None = None, title: str | None = None) -> Path:
    """Read a run or comparison directory and write its ``report.html`` (returns the file's path)."""
    source = load_source(path)
    out = Path(output) if output else source.path / REPORT_FILE
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(source, title), encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = ["render", "write_report", "REPORT_FILE"]
