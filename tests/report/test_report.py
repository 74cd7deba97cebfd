"""report.html and the PNG figures from run files: self-contained, bounded, inert model text, honest numbers."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from rlvr.errors import InputError
from rlvr.report import load_source, write_report
from rlvr.report.figures import write_figures
from rlvr.report.rollouts import MAX_CHARS, rollout_records
from rlvr.report.series import PANELS, aggregate, final_table, panel_bands, smooth, y_range

HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'


def make_run(path, *, algo="grpo", seed=0, steps=20, reward=lambda s: s / 40, samples=None, evals=True):
    """A run directory in the layout rlvr train writes (config.yaml, metrics.jsonl, eval files, samples)."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(
        f"seed: {seed}\nmodel: {{name_or_path: tiny}}\nalgorithm: {{preset: {algo}}}\n"
        "environments: [{id: demo/Arithmetic-v0, weight: 1.0, kwargs: {}}]\n"
        "generation: {num_generations: 4, prompts_per_step: 2, max_new_tokens: 6}\noptim: {max_steps: %d}\n"
        "eval: {num_tasks: 8, samples_per_task: 4, temperature: 1.0, every_steps: 10}\n" % steps)
    rows = [{"step": s, "kind": "train", "reward": reward(s), "entropy": 1.0 - s / 100, "algo/clip_frac": 0.01,
             "completions/mean_length": 3.0} for s in range(1, steps + 1)]
    if evals:
        rows += [{"step": s, "kind": "eval", "eval/pass@1": s / 40, "eval/pass@4": s / 20,
                  "eval/response_tokens_correct": 3.0, "eval/response_tokens_wrong": 4.0 + s / 10}
                 for s in (0, 10, 20)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 21, "kind": "tr')
    if evals:
        (path / "eval_before.json").write_text(json.dumps({"pass@1": 0.0, "pass@2": 0.0, "pass@4": 0.0}))
        (path / "eval_after.json").write_text(json.dumps({"pass@1": 0.5, "pass@2": 0.6, "pass@4": 0.7, "reward": 0.5,
                                                          "response_tokens_correct": 3.0, "response_tokens_wrong": 6.0}))
        (path / "summary.json").write_text(json.dumps({"steps": steps, "wall_s": 12.5}))
    samples = samples if samples is not None else [
        {"step": s, "env_id": "demo/Arithmetic-v0" if s % 2 else "rlvr/Other-v0", "reward": float(s % 3 == 0),
         "success": s % 3 == 0, "components": {"correct": float(s % 3 == 0)}, "turns": 1, "model_tokens": 3,
         "messages": [{"role": "user", "content": f"{s} + 1 ="}, {"role": "assistant", "content": str(s + 1)}]}
        for s in range(1, steps + 1)]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
    (path / "data_order.jsonl").write_text("".join(json.dumps({"step": s, "round": 1, "keys": ["k"] * 8}) + "\n"
                                                   for s in range(1, steps + 1)))
    return path


def make_compare(tmp_path, algos=("grpo", "dr_grpo"), seeds=(0, 1)):
    root = tmp_path / "cmp"
    runs = []
    for a in algos:
        for s in seeds:
            make_run(root / "runs" / f"{a}-seed{s}", algo=a, seed=s, reward=lambda st, s=s: st / 40 + s / 10)
            runs.append({"algorithm": a, "seed": s, "dir": f"runs/{a}-seed{s}"})
    (root / "compare.json").write_text(json.dumps({"algorithms": list(algos), "seeds": list(seeds), "runs": runs}))
    return root


def test_report_is_one_self_contained_file(tmp_path):
    run = make_run(tmp_path / "run")
    page = write_report(run).read_text()
    assert page.startswith("<!DOCTYPE html>")
    # no network: nothing is loaded from anywhere (no src/href to a URL, no CDN, no @import)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "<link" not in page
    assert page.count("<svg") >= 5  # the curves are inline SVG
    assert 'id="rollout-data"' in page and "<style>" in page


def test_model_text_cannot_escape_the_data_block(tmp_path):
    samples = [{"step": 1, "env_id": "demo/Arithmetic-v0", "reward": 1.0, "success": True,
                "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": HOSTILE}]}]
    page = write_report(make_run(tmp_path / "run", samples=samples)).read_text()
    assert "window.__pwned" in page  # it is there, as data...
    assert "<script>window.__pwned" not in page and "<img src=x" not in page  # ...never as markup
    data = re.search(r'<script id="rollout-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)[0]["messages"][1]["content"] == HOSTILE


def test_giant_and_malformed_samples_are_bounded_not_fatal(tmp_path):
    giant = "x" * 2_000_000
    samples = [{"step": 1, "env_id": "e", "reward": float("nan"), "messages": [{"role": "assistant", "content": giant}]},
               {"step": "bad", "messages": "not a list", "components": [1, 2]},
               {"step": 2, "messages": [{"role": "user", "content": {"nested": [1, 2]}}] * 500}]
    run = make_run(tmp_path / "run", samples=samples)
    records = rollout_records(load_source(run))
    assert len(records[0]["messages"][0]["content"]) < MAX_CHARS + 100
    assert records[0]["reward"] is None and records[1]["messages"] == []
    assert len(records[2]["messages"]) <= 41
    assert write_report(run).stat().st_size < 400_000


def test_curves_are_mean_and_min_max_over_seeds():
    band = aggregate("grpo", [[(1, 0.2), (2, 0.4)], [(1, 0.4), (2, 0.8)], [(1, 0.3)]])
    assert band.xs == (1, 2) and band.seeds == 3
    assert band.mean == pytest.approx((0.3, 0.6)) and band.lo == (0.2, 0.4) and band.hi == (0.4, 0.8)
    assert smooth([(1, 1.0), (2, 3.0), (3, 5.0)], 2) == [(1, 1.0), (2, 2.0), (3, 4.0)]


def test_axes_start_at_meaningful_values(tmp_path):
    source = load_source(make_run(tmp_path / "run", reward=lambda s: 0.40 + (s % 3) / 25))
    panels = {p.name: p for p in PANELS}
    # a 0/1 reward between 0.40 and 0.52 is drawn on 0..1, so noise does not look like a trend
    assert y_range(panels["reward"], panel_bands(source, panels["reward"])) == (0.0, 1.0)
    assert y_range(panels["pass1"], panel_bands(source, panels["pass1"])) == (0.0, 1.0)
    lo, hi = y_range(panels["entropy"], panel_bands(source, panels["entropy"]))
    assert lo == 0.0 and hi >= 0.99


def test_no_empty_panels(tmp_path):
    source = load_source(make_run(tmp_path / "run"))
    names = {p.name for p in PANELS if panel_bands(source, p)}
    assert "kl" not in names and {"reward", "pass1", "entropy", "clip"} <= names
    page = write_report(source.path).read_text()
    assert "KL to reference" not in page and "not logged" not in page


def test_a_clip_fraction_that_is_zero_throughout_is_not_drawn(tmp_path):
    run = make_run(tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text().splitlines()[:-1]
    rows = [dict(json.loads(line), **({"algo/clip_frac": 0.0} if '"train"' in line else {})) for line in lines]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    clip = next(p for p in PANELS if p.name == "clip")
    assert panel_bands(load_source(run), clip) == []


def test_final_table_gives_mean_and_sd_over_seeds(tmp_path):
    source = load_source(make_compare(tmp_path))
    header, rows = final_table(source)
    assert [r[0] for r in rows] == ["grpo", "dr_grpo"] and all(r[1] == "2" for r in rows)
    col = header.index("pass@1 final")
    assert rows[0][col] == "0.500 ± 0.000"
    assert "pass@4 final" in header


def test_compare_report_and_png(tmp_path):
    root = make_compare(tmp_path)
    page = write_report(root).read_text()
    assert "rlvr compare: grpo, dr_grpo" in page
    png = write_figures(load_source(root), root / "compare.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as im:
        assert im.width >= 1000 and im.height >= 600


def test_a_run_still_going_is_reported_with_what_it_has(tmp_path):
    run = make_run(tmp_path / "run", evals=False)
    page = write_report(run).read_text()
    assert "still running or stopped early" in page and "No final evaluation yet" in page


def test_not_a_run_directory_is_a_clear_input_error(tmp_path):
    with pytest.raises(InputError, match="neither a run"):
        load_source(tmp_path)


def test_cli_writes_the_report_and_prints_its_path(tmp_path):
    run = make_run(tmp_path / "run")
    r = subprocess.run([sys.executable, "-m", "rlvr.cli.main", "report", str(run)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(run / "report.html") and (run / "report.html").exists()
    assert (run / "reward_curve.png").exists()
    bad = subprocess.run([sys.executable, "-m", "rlvr.cli.main", "report", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a directory" in bad.stderr
