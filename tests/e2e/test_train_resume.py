"""`rlvr train --resume` after a real SIGKILL mid-step: same data order, no step lost or repeated."""

from __future__ import annotations

import json
import signal

import pytest

from .runs import kill_mid_step, read_rows, run_config, train_cli

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

CONFIG = run_config(seed=3, preset="dr_grpo",
                    generation="{num_generations: 2, prompts_per_step: 2, max_new_tokens: 4, max_completion_length: 4}",
                    optim="{max_steps: 8, learning_rate: 1.0e-3}")


def _rows(path):
    return read_rows(path, torn_ok=True)  # a line torn by the kill is skipped


def test_resume_after_sigkill_continues_with_the_same_data_and_no_lost_or_repeated_steps(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)

    # An uninterrupted run is the reference (in this process: the imports are already paid for).
    from rlvr.trainer.run.config import load_config
    from rlvr.trainer.run.train import run_training

    run_training(load_config(config, {"output_dir": str(tmp_path / "straight")}))

    # The same run, killed with SIGKILL while it trains a step after its first checkpoint.
    killed = tmp_path / "killed"
    proc = kill_mid_step(config, killed)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "summary.json").exists()
    killed_at = max(r["step"] for r in _rows(killed / "data_order.jsonl"))
    assert killed_at < 8

    # A resumed run must train the same thing: a changed config is refused, before any work.
    changed = tmp_path / "changed.yaml"
    changed.write_text(CONFIG.replace("seed: 3", "seed: 4"))
    refused = train_cli(changed, killed, "--resume")
    assert refused.returncode == 2 and "seed" in refused.stderr

    resumed = train_cli(config, killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["resumed_from_step"] >= 2

    # Same task keys for every step, each step exactly once.
    ref = _rows(tmp_path / "straight" / "data_order.jsonl")
    got = _rows(killed / "data_order.jsonl")
    assert [r["step"] for r in got] == list(range(1, 9))
    assert [r["keys"] for r in got] == [r["keys"] for r in ref]
    train_steps = [r["step"] for r in _rows(killed / "metrics.jsonl") if r["kind"] == "train"]
    assert train_steps == list(range(1, 9))

    # Without --resume, an existing run is never overwritten.
    again = train_cli(config, tmp_path / "straight")
    assert again.returncode == 2 and "--resume" in again.stderr
