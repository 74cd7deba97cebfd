"""`rlvr train --resume` after a real SIGKILL mid-step: same data order, no step lost or repeated."""

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
seed: 3
device: cpu
model: {tiny: {hidden_size: 32, intermediate_size: 64, max_position_embeddings: 256}}
environments:
  - {id: rlvr/Arithmetic-v0, kwargs: {difficulty: 1, system_prompt: ""}}
algorithm: {preset: dr_grpo}
generation: {num_generations: 2, prompts_per_step: 2, max_new_tokens: 4, max_completion_length: 4}
optim: {max_steps: 8, learning_rate: 1.0e-3}
eval: {num_tasks: 0}
logging: {progress: false}
checkpoint: {save_steps: 2, save_total_limit: 5}
"""


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1"}


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by the kill
            pass
    return rows


def _train(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RLVR, "train", str(config), "--output-dir", str(out), *extra], env=_env(),
                          capture_output=True, text=True, timeout=600)


def test_resume_after_sigkill_continues_with_the_same_data_and_no_lost_or_repeated_steps(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)

    # An uninterrupted run is the reference (in this process: the imports are already paid for).
    from rlvr.trainer.run.config import load_config
    from rlvr.trainer.run.train import run_training

    run_training(load_config(config, {"output_dir": str(tmp_path / "straight")}))

    # The same run, killed with SIGKILL while it trains a step after its first checkpoint.
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*RLVR, "train", str(config), "--output-dir", str(killed)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 500
    try:
        while time.time() < deadline:
            steps = [r["step"] for r in _rows(killed / "data_order.jsonl")]
            if (killed / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists() and steps and max(steps) >= 3:
                break  # step 3's rollouts are out: the process is inside step 3 (or later)
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.02)
        else:
            pytest.fail("the run never got past its first checkpoint")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "summary.json").exists()
    killed_at = max(r["step"] for r in _rows(killed / "data_order.jsonl"))
    assert killed_at < 8

    # A resumed run must train the same thing: a changed config is refused, before any work.
    changed = tmp_path / "changed.yaml"
    changed.write_text(CONFIG.replace("seed: 3", "seed: 4"))
    refused = _train(changed, killed, "--resume")
    assert refused.returncode == 2 and "seed" in refused.stderr

    resumed = _train(config, killed, "--resume")
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
    again = _train(config, tmp_path / "straight")
    assert again.returncode == 2 and "--resume" in again.stderr
