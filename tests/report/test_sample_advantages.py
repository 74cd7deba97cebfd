"""Sample rollouts carry the advantage they were trained with, so the report's rollout browser can show it.

A real two-step run whose rollouts come from a Python policy that answers right about half the
time (so groups have reward variance); every rollout of the batch is logged and each one's
advantage must agree with GRPO's group normalisation of the logged rewards.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections import defaultdict

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


@pytest.mark.parametrize("preset", ["grpo", "dapo"])
def test_each_sample_rollout_carries_its_group_normalised_advantage(preset, tmp_path):
    from rlvr.report import write_report
    from rlvr.trainer.run.config import config_from_dict
    from rlvr.trainer.run.train import run_training

    policy = tmp_path / "coin.py"
    policy.write_text(COIN)
    out = tmp_path / "run"
    cfg = config_from_dict({
        "output_dir": str(out), "seed": 0, "device": "cpu",
        "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}},
        "environments": [{"id": "rlvr/Arithmetic-v0", "kwargs": {"difficulty": 1, "system_prompt": ""}}],
        "algorithm": {"preset": preset},
        "generation": {"num_generations": 4, "prompts_per_step": 2, "max_new_tokens": 6, "max_completion_length": 16,
                       "max_turns": 1, "backend": "policy", "policy": f"python:{policy}:coin"},
        "optim": {"max_steps": 3, "learning_rate": 1e-4},
        "eval": {"num_tasks": 0},
        "logging": {"sample_rollouts": 8, "progress": False, "logging_steps": 1},
        "checkpoint": {"save_steps": 0, "save_final_model": False},
    })
    assert run_training(cfg)["steps"] == 3
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted({s["step"] for s in samples}) == [1, 2, 3] and len(samples) == 24  # the whole batch of each step

    # DAPO's dynamic sampling: a step that needed a second generation round trains on a merged
    # batch that no longer lines up with the logged first round, so its samples say "not recorded".
    rounds = defaultdict(int)
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

    page = write_report(out).read_text()
    shown = json.loads(page.split('id="rollout-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    key = lambda a: (a is None, a or 0.0)  # noqa: E731
    advantages = sorted((r["advantage"] for r in shown), key=key)  # what the rollout browser renders
    assert advantages == pytest.approx(sorted((s["advantage"] for s in samples), key=key), abs=1e-6)
