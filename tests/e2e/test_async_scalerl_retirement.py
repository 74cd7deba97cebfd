"""ScaleRL's no-positive-resampling in a real run: a solved task never comes back, also after --resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium
import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

ENV_ID = "rlvrtest/HalfSolved-v0"
TASKS = 5
SOLVED = {0, 1}  # tasks every answer solves: their first group retires them


class HalfSolved(gymnasium.Env):
    """Five tasks (seed mod 5): tasks 0 and 1 are solved by any answer; the others are never solved, but an
    even-length answer earns half a point (so their groups still carry an advantage)."""

    observation_space = gymnasium.spaces.Text(100)
    action_space = gymnasium.spaces.Text(100)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.task = int(seed) % TASKS
        return [{"role": "user", "content": f"task {self.task}"}], {"task": {"reference": str(self.task)}}

    def step(self, action):
        ok = self.task in SOLVED
        return [], 1.0 if ok else 0.5 * (len(str(action)) % 2 == 0), True, False, {"success": ok}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _task(key: str) -> int:
    return int(key.rsplit("seed=", 1)[1]) % TASKS


def _run(out: Path, resume: bool = False) -> dict:
    from rlvr.trainer.run.config import config_from_dict
    from rlvr.trainer.run.train import run_training

    cfg = config_from_dict({
        "output_dir": str(out), "seed": 2, "device": "cpu",
        "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 256}},
        "environments": [{"id": ENV_ID}],
        "algorithm": {"preset": "scalerl"},  # retire_pass_rate unset: the recipe's 0.9
        "generation": {"num_generations": 2, "prompts_per_step": 4, "max_new_tokens": 4, "max_completion_length": 4,
                       "max_turns": 1, "max_off_policy_steps": 0, "env_workers": 2},
        "optim": {"max_steps": 6, "learning_rate": 1e-3},
        "eval": {"num_tasks": 0},
        "logging": {"progress": False, "sample_rollouts": 0},
        "checkpoint": {"save_steps": 3, "save_total_limit": 5, "save_final_model": False},
    })
    return run_training(cfg, resume=resume)


def test_a_retired_task_never_comes_back_and_resume_replays_the_same_replacements(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(ENV_ID, entry_point=HalfSolved, disable_env_checker=True)
    out = tmp_path / "run"
    _run(out)
    retired = _rows(out / "retired.jsonl")
    assert {_task(r["key"]) for r in retired} == SOLVED and all(r["pass_rate"] == 1.0 for r in retired)
    retired_at = {_task(r["key"]): r["step"] for r in retired}
    order = _rows(out / "data_order.jsonl")
    assert [r["step"] for r in order] == [1, 2, 3, 4, 5, 6]
    for row in order:  # from the step after its retirement on, a task never comes back
        assert not {t for t in map(_task, row["keys"]) if retired_at.get(t, row["step"]) < row["step"]}
    assert max(retired_at.values()) < 6
    assert any(int(k.rsplit("seed=", 1)[1]) >= 1 << 39 for r in order for k in r["keys"])  # spare keys filled in
    assert _rows(out / "metrics.jsonl")[-1]["data/retired_tasks"] == 2.0

    # Interrupt after the step-3 checkpoint (as a kill would leave it) and resume: steps 4-6 replay
    # exactly, with the retirements of steps 1-3 read back from retired.jsonl.
    shutil.rmtree(out / "checkpoints" / "checkpoint-6")
    (out / "summary.json").unlink()
    _run(out, resume=True)
    again = _rows(out / "data_order.jsonl")
    assert [r["step"] for r in again] == [1, 2, 3, 4, 5, 6]
    assert [r["keys"] for r in again] == [r["keys"] for r in order]
    assert _rows(out / "retired.jsonl") == retired
    from rlvr.trainer.run.model_card import run_readme
    from rlvr.trainer.run.rundir import RunDir

    assert "`retired.jsonl`" in run_readme(out) and RunDir(out).only_run_files()
