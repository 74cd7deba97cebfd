"""`rlvr train` with max_off_policy_steps = 2: SIGKILL mid-step + --resume keeps the data order; refusals exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

RLVR = [sys.executable, "-m", "rlvr.cli.main"]

CONFIG = """
seed: 5
device: cpu
model: {tiny: {hidden_size: 32, intermediate_size: 64, max_position_embeddings: 256}}
environments:
  - {id: rlvr/Arithmetic-v0, kwargs: {difficulty: 1, system_prompt: ""}}
algorithm: {preset: cispo}
generation: {num_generations: 2, prompts_per_step: 2, max_new_tokens: 4, max_completion_length: 4,
             max_off_policy_steps: 2, generator_threads: 1}
optim: {max_steps: 8, learning_rate: 1.0e-3}
eval: {num_tasks: 0}
logging: {progress: false}
checkpoint: {save_steps: 2, save_total_limit: 5}
"""


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1"}


def _rows(path: Path) -> list[dict]:
    rows = []
    for line in (path.read_text().splitlines() if path.exists() else []):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by the kill
            pass
    return rows


def _train(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RLVR, "train", str(config), "--output-dir", str(out), *extra], env=_env(),
                          capture_output=True, text=True, timeout=600)


def test_on_policy_preset_with_staleness_is_refused_in_one_line_with_exit_2(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG.replace("preset: cispo", "preset: reinforce"))
    refused = _train(config, tmp_path / "run")
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "generation.max_off_policy_steps" in lines[0] and "rollout_correction" in lines[0]
    hf = _train(tmp_path / "train.yaml", tmp_path / "run2", "--algorithm", "grpo", "--set", "generation.backend=hf")
    assert hf.returncode == 2 and "generation.backend 'hf'" in hf.stderr


def test_async_run_killed_mid_step_resumes_with_the_same_data_and_records_regenerated_rollouts(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)

    from rlvr.trainer.run.config import load_config
    from rlvr.trainer.run.train import run_training

    run_training(load_config(config, {"output_dir": str(tmp_path / "straight")}))

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*RLVR, "train", str(config), "--output-dir", str(killed)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 500
    try:
        while time.time() < deadline:
            steps = [r["step"] for r in _rows(killed / "data_order.jsonl")]
            if (killed / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists() and steps and max(steps) >= 3:
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.02)
        else:
            pytest.fail("the run never got past its first checkpoint")
        os.kill(proc.pid, signal.SIGKILL)  # the trainer only: its generator must notice and go
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    submitted_before = [r for r in _rows(killed / "async.jsonl") if r["event"] == "submitted"]
    assert submitted_before  # orders were in flight ahead of the trainer

    resumed = _train(config, killed, "--resume")
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
