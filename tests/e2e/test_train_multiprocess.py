"""`accelerate launch --num_processes 2` on CPU (gloo): the same kind of run as one process.

accelerate starts several local processes only for a multi-GPU setup (``--multi_gpu``, or
``examples/accelerate/multi_cpu.yaml``); without CUDA each process joins a gloo group.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .runs import cli_env, run_config

pytest.importorskip("accelerate")
pytestmark = [pytest.mark.slow, pytest.mark.train]

CONFIG = run_config(seed=1, preset="dapo",
                    model="{tiny: {hidden_size: 32, intermediate_size: 64, max_position_embeddings: 512}}",
                    environment="{id: rlvr/GuessNumber-v0, kwargs: {difficulty: 1}}",
                    generation="{num_generations: 2, prompts_per_step: 4, max_new_tokens: 4, max_completion_length: 160}",
                    optim="{max_steps: 2, learning_rate: 1.0e-3}", eval="{num_tasks: 6, samples_per_task: 2}",
                    logging="{progress: false, sample_rollouts: 4}", checkpoint="{save_steps: 2}")


def test_two_cpu_processes_train_one_run_with_gathered_rollouts(tmp_path):
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    assert accelerate, "accelerate's launcher is installed with the train extra"
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    launch_config = Path(__file__).resolve().parents[2] / "examples" / "accelerate" / "multi_cpu.yaml"
    cmd = [accelerate, "launch", "--config_file", str(launch_config), "-m", "rlvr.cli.main", "train", str(config),
           "--output-dir", str(out)]
    result = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    # Both ranks' rollouts are in every generation round's record: 4 prompts x 2 generations,
    # split 4 + 4 (DAPO's dynamic sampling may add rounds to a step).
    order = [json.loads(line) for line in (out / "data_order.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in order}) == [1, 2]
    assert [r["round"] for r in order if r["step"] == 1][0] == 1
    assert all(len(r["keys"]) == 8 for r in order)
    # Held-out evaluation is sharded and gathered: every task counted once.
    assert summary["eval_before"]["tasks"] == 6 and summary["eval_after"]["tasks"] == 6
    for name in ("config.yaml", "metrics.jsonl", "samples.jsonl", "reward_curve.png", "final/config.json",
                 "checkpoints/checkpoint-2/trainer_state.json"):
        assert (out / name).exists(), name
    train = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]  # written once, by the main process
    assert "env/component/solved" in train[0] or "env/turns" in train[0]
