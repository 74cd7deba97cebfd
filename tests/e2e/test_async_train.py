"""`rlvr train` with max_off_policy_steps = 2: SIGKILL mid-step + --resume keeps the data order; refusals exit 2."""

from __future__ import annotations

import json
import signal

import pytest

from .runs import kill_mid_step, read_rows, run_config, train_cli

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

CONFIG = run_config(seed=5, preset="cispo",
                    generation=("{num_generations: 2, prompts_per_step: 2, max_new_tokens: 4, max_completion_length: 4, "
                                "max_off_policy_steps: 2, generator_threads: 1}"),
                    optim="{max_steps: 8, learning_rate: 1.0e-3}")


def _rows(path):
    return read_rows(path, torn_ok=True)  # a line torn by the kill is skipped


def test_on_policy_preset_with_staleness_is_refused_in_one_line_with_exit_2(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG.replace("preset: cispo", "preset: reinforce"))
    refused = train_cli(config, tmp_path / "run")
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "generation.max_off_policy_steps" in lines[0] and "rollout_correction" in lines[0]
    hf = train_cli(tmp_path / "train.yaml", tmp_path / "run2", "--algorithm", "grpo", "--set", "generation.backend=hf")
    assert hf.returncode == 2 and "generation.backend 'hf'" in hf.stderr


def test_async_run_killed_mid_step_resumes_with_the_same_data_and_records_regenerated_rollouts(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)

    from rlvr.trainer.run.config import load_config
    from rlvr.trainer.run.train import run_training

    run_training(load_config(config, {"output_dir": str(tmp_path / "straight")}))

    killed = tmp_path / "killed"
    proc = kill_mid_step(config, killed)  # the trainer only: its generator must notice and go
    assert proc.returncode == -signal.SIGKILL
    submitted_before = [r for r in _rows(killed / "async.jsonl") if r["event"] == "submitted"]
    assert submitted_before  # orders were in flight ahead of the trainer

    resumed = train_cli(config, killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["resumed_from_step"] >= 2

    ref = _rows(tmp_path / "straight" / "data_order.jsonl")
    got = _rows(killed / "data_order.jsonl")
    assert [r["step"] for r in got] == list(range(1, 9))
    assert [r["keys"] for r in got] == [r["keys"] for r in ref]
    train = [r for r in _rows(killed / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 9))
    assert all(r["async/staleness_max"] <= 2 for r in train)
    resumes = [r for r in _rows(killed / "async.jsonl") if r["event"] == "resumed"]
    assert len(resumes) == 1 and resumes[0]["from_step"] == summary["resumed_from_step"]
    assert resumes[0]["regenerated_steps"]  # the in-flight orders the kill lost, regenerated
