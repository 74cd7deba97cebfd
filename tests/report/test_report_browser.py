"""report.html of a short real training run, rendered in headless Chromium (the Debian package).

Fails on any console message of level error or any uncaught page error, checks the screenshot
is not blank, and that the rollout browser's filters change what is shown. Chromium comes from
``scripts/setup-system.sh`` (apt-get install chromium); playwright drives it through the
executable, no browser download.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("trl")
playwright = pytest.importorskip("playwright.sync_api", reason="pip install 'rlvr[dev]' (playwright)")
pytestmark = [pytest.mark.slow, pytest.mark.train]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

TINY = {
    "sft.steps": 60, "sft.batch_size": 8, "optim.max_steps": 6, "generation.prompts_per_step": 2,
    "generation.num_generations": 4, "eval.num_tasks": 6, "eval.samples_per_task": 4, "eval.every_steps": 3,
    "checkpoint.save_steps": 0, "checkpoint.save_final_model": False, "logging.progress": False,
    "logging.logging_steps": 1, "logging.sample_rollouts": 4, "sft.stop_at_success": None,
}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    from rlvr.trainer.demo import run_demo

    out = tmp_path_factory.mktemp("browser") / "run"
    run_demo(str(out), seed=3, device="cpu", overrides=TINY)
    # An adversarial rollout next to the real ones: its text must stay text.
    row = {"step": 6, "env_id": "demo/Arithmetic-v0", "reward": 0.0, "success": False, "status": "wrong",
           "turns": 1, "model_tokens": 40, "components": {"correct": 0.0},
           "messages": [{"role": "user", "content": "1 + 1 ="}, {"role": "assistant", "content": HOSTILE}]}
    with (out / "samples.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    return out


def _shown(page) -> list[tuple[int, str]]:
    return [(int(a.get_attribute("data-step")), a.get_attribute("data-env")) for a in page.query_selector_all("article.rollout")]


def check_in_browser(report: Path, screenshot: Path | None = None) -> dict:
    """Render ``report`` in Chromium, exercise the rollout filters; assert what a reader relies on."""
    from PIL import Image

    problems: list[str] = []
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "assert") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            shot = page.screenshot(full_page=True)

            total = len(_shown(page))
            assert total > 0
            listing = page.text_content("#rollout-list")
            advantages = [float(a) for a in re.findall(r"advantage ([+-]\d+\.\d+)", listing)]
            count_all = page.text_content("#rollout-count")
            steps = sorted({s for s, _ in _shown(page)})
            assert len(steps) > 1, "a real run logs samples at several steps"

            page.fill("#f-step-min", str(steps[-1]))
            page.fill("#f-step-max", str(steps[-1]))
            last = _shown(page)
            assert last and all(s == steps[-1] for s, _ in last)
            assert page.text_content("#rollout-count") != count_all

            page.fill("#f-step-min", "")
            page.fill("#f-step-max", "")
            page.select_option("#f-outcome", "failure")
            failures = page.query_selector_all("article.rollout")
            assert failures and all("bad" in a.get_attribute("class") for a in failures)
            page.select_option("#f-outcome", "")
            env = _shown(page)[0][1]
            page.select_option("#f-env", env)
            assert all(e == env for _, e in _shown(page))
            page.select_option("#f-env", "")
            hostile = None
            if "window.__pwned" in report.read_text():
                page.fill("#f-text", "window.__pwned")  # an adversarial rollout is shown as text
                hostile = (len(_shown(page)), page.text_content("#rollout-list"), page.evaluate("typeof window.__pwned"))
        finally:
            browser.close()

    assert problems == []
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests  # no network
    if screenshot is not None:
        screenshot.write_bytes(shot)
    with Image.open(io.BytesIO(shot)) as im:
        gray = im.convert("L")
        assert im.height > 1500  # the whole page: table, curves, pass@k, lengths, rollouts
        hist = gray.histogram()
        non_white = sum(hist[:250]) / (im.width * im.height)
        assert non_white > 0.02, "the screenshot is blank"
        assert len([h for h in hist if h]) > 20  # text, lines and bands, not one flat colour
    return {"rollouts": total, "steps": steps, "hostile": hostile, "advantages": advantages}


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (scripts/setup-system.sh installs the Debian package)")
def test_report_of_a_real_run_renders_in_chromium(real_run, tmp_path):
    from rlvr.report import write_report

    seen = check_in_browser(write_report(real_run), tmp_path / "report.png")
    count, text, pwned = seen["hostile"]
    assert count == 1 and "window.__pwned = 1" in text and pwned == "undefined"
    # each sample rollout carries the advantage it was trained with (mean over its loss tokens)
    samples = [json.loads(line) for line in (real_run / "samples.jsonl").read_text().splitlines()]
    real = [s["advantage"] for s in samples if "task_key" in s]
    assert real and all(a is None or math.isfinite(a) for a in real)
    recorded = [a for a in real if a is not None]
    assert recorded
    assert len(seen["advantages"]) == len(recorded)  # the browser shows every recorded one
    assert sorted(seen["advantages"]) == pytest.approx(sorted(round(a, 3) for a in recorded), abs=1e-3)
