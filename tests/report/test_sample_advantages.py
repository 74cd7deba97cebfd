"""Sample rollouts carry the advantage they were trained with, so the report's rollout browser can show it.

A real three-step run whose rollouts come from a Python policy that answers right about half the
time (so groups have reward variance); every rollout of the batch is logged and each one's
advantage must agree with GRPO's group normalisation of the logged rewards.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

COIN = textwrap.dedent('''
    import random

    RNG = random.Random(0)

    def coin(messages, task):
        """Right about half the time, wrong otherwise: groups get reward variance."""
        return str(task["reference"]) if RNG.random() < 0.5 else "-1"
''')


def _config(tmp_path: Path, preset: str, prompts: int) -> dict:
    policy = tmp_path / "coin.py"
    policy.write_text(COIN)
    return {
        "output_dir": str(tmp_path / "run"), "seed": 0, "device": "cpu",
        "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}},
        "environments": [{"id": "rlvr/Arithmetic-v0", "kwargs": {"difficulty": 1, "system_prompt": ""}}],
        "algorithm": {"preset": preset},
        "generation": {"num_generations": 4, "prompts_per_step": prompts, "max_new_tokens": 6, "max_completion_length": 16,
                       "max_turns": 1, "backend": "policy", "policy": f"python:{policy}:coin"},
        "optim": {"max_steps": 3, "learning_rate": 1e-4},
        "eval": {"num_tasks": 0},
        "logging": {"sample_rollouts": 8, "progress": False, "logging_steps": 1},
        "checkpoint": {"save_steps": 0, "save_final_model": False},
    }


def _check_advantages(out: Path, preset: str) -> list[dict]:
    """Every logged group's advantages agree with its rewards (centred, right answers pushed up)."""
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted({s["step"] for s in samples}) == [1, 2, 3] and len(samples) == 24  # 8 rollouts of each step
    # DAPO's dynamic sampling: a step that needed a second generation round trains on a merged
    # batch that no longer lines up with the logged first round, so its samples say "not recorded".
    rounds: dict[int, int] = defaultdict(int)
    for line in (out / "data_order.jsonl").read_text().splitlines():
        rounds[json.loads(line)["step"]] += 1
    groups: dict[tuple[int, str], list[tuple[float, float | None]]] = defaultdict(list)
    for s in samples:
        if rounds[s["step"]] > 1:
            assert s["advantage"] is None
            continue
        groups[(s["step"], s["task_key"])].append((s["reward"], s["advantage"]))
    assert groups
    varied = 0
    for rows in groups.values():
        assert len(rows) == 4
        rewards = [r for r, _ in rows]
        mean = sum(rewards) / len(rewards)
        if max(rewards) == min(rewards):  # nothing to learn from a group that all agree: 0, or dropped (DAPO)
            assert all(a == 0 for _, a in rows) if preset == "grpo" else all(a is None for _, a in rows)
            continue
        assert all(a is not None and math.isfinite(a) for _, a in rows)
        varied += 1
        assert sum(a for _, a in rows) == pytest.approx(0.0, abs=1e-4)  # advantages centred on the group mean
        for r, a in rows:
            assert math.copysign(1, a) == math.copysign(1, r - mean) and abs(a) > 0.1  # right answers pushed up
    assert varied >= 2
    return samples


@pytest.mark.parametrize("preset", ["grpo", "dapo"])
def test_each_sample_rollout_carries_its_group_normalised_advantage(preset, tmp_path):
    from rlvr.report import write_report
    from rlvr.trainer.run.config import config_from_dict
    from rlvr.trainer.run.train import run_training

    out = tmp_path / "run"
    assert run_training(config_from_dict(_config(tmp_path, preset, prompts=2)))["steps"] == 3
    samples = _check_advantages(out, preset)

    page = write_report(out).read_text()
    shown = json.loads(page.split('id="rollout-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    key = lambda a: (a is None, a or 0.0)  # noqa: E731
    advantages = sorted((r["advantage"] for r in shown), key=key)  # what the rollout browser renders
    assert advantages == pytest.approx(sorted((s["advantage"] for s in samples), key=key), abs=1e-6)


def test_two_processes_log_rank_zero_rollouts_with_their_gathered_advantages(tmp_path):
    """Under accelerate with two processes the samples are rank 0's rollouts, rows 0..7 of the gathered batch."""
    import yaml

    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    assert accelerate, "accelerate's launcher is installed with the train extra"
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, "grpo", prompts=4)))  # 2 prompts x 4 rollouts per rank
    launch = Path(__file__).resolve().parents[2] / "examples" / "accelerate" / "multi_cpu.yaml"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([accelerate, "launch", "--config_file", str(launch), "-m", "rlvr.cli.main", "train", str(config)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "run"
    assert json.loads((out / "summary.json").read_text())["world_size"] == 2
    samples = _check_advantages(out, "grpo")
    order = {json.loads(line)["step"]: json.loads(line)["keys"] for line in (out / "data_order.jsonl").read_text().splitlines()}
    assert all(s["task_key"] in order[s["step"]][:8] for s in samples)  # rank 0 played the first half


def test_batches_reused_over_several_steps_still_log_samples(tmp_path):
    """optim.num_iterations: 2 generates at steps 1, 3, ...; logging every 2 steps must still log them."""
    from rlvr.trainer.run.config import config_from_dict
    from rlvr.trainer.run.train import run_training

    cfg = _config(tmp_path, "grpo", prompts=2)
    cfg["optim"] = {"max_steps": 4, "learning_rate": 1e-4, "num_iterations": 2}
    cfg["logging"] = {"sample_rollouts": 2, "progress": False, "logging_steps": 2}
    assert run_training(config_from_dict(cfg))["steps"] == 4
    out = tmp_path / "run"
    generated = [json.loads(line)["step"] for line in (out / "data_order.jsonl").read_text().splitlines()]
    assert generated == [1, 3]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [1, 1, 3, 3]
    assert all(s["advantage"] is not None and math.isfinite(s["advantage"]) for s in samples)
