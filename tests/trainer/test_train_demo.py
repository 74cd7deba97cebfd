"""The demo's code path (`rlvr demo`) with tiny settings: SFT, evaluation, RL, the same run directory."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

TINY = {
    "sft.steps": 4, "sft.batch_size": 8, "sft.min_steps": 2, "sft.check_every": 2, "sft.probe_tasks": 4,
    "optim.max_steps": 2, "generation.prompts_per_step": 2,
    "generation.num_generations": 2, "eval.num_tasks": 4, "eval.samples_per_task": 2, "eval.every_steps": 0,
    "checkpoint.save_steps": 2, "logging.progress": False, "logging.logging_steps": 1,
}


def test_demo_code_path_writes_the_same_run_directory_as_rlvr_train(tmp_path):
    from rlvr.trainer.demo import run_demo

    out = tmp_path / "demo"
    summary = run_demo(str(out), seed=1, device="cpu", overrides=TINY)
    assert summary["steps"] == 2
    for phase in ("eval_before", "eval_after"):
        assert 0.0 <= summary[phase]["pass@1"] <= 1.0
        assert "greedy_pass@1" in summary[phase]
    for name in ("config.yaml", "metrics.jsonl", "samples.jsonl", "summary.json", "reward_curve.png", "final/config.json",
                 "start_policy/config.json"):
        assert (out / name).exists(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    sft = [r for r in rows if r["kind"] == "sft"]
    assert sft and sft[0]["sft/loss_last"] < sft[0]["sft/loss_first"]
    # The warm-up is partial by design: it stops at the probe's success target or its step cap.
    probe = sft[0]["sft/probe_success"]
    assert 0.0 <= probe <= 1.0
    assert sft[0]["sft/steps"] == 4 or probe >= 0.3
    # The SFT targets are the environment's reference answers: the compact task's bare integers.
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert sample["env_id"] == "rlvr/CompactArithmetic-v0"
    assert sample["messages"][0]["content"].endswith(" =")

    # `make demo` twice: an earlier demo in the folder is replaced, not refused.
    again = run_demo(str(out), seed=1, device="cpu", overrides={**TINY, "optim.max_steps": 1, "sft.steps": 1})
    assert again["steps"] == 1


def test_demo_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    from rlvr.errors import ConfigError
    from rlvr.trainer.demo import run_demo

    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.yaml").write_text("mine: true\n")
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not from an rlvr run"):
        run_demo(str(out), overrides=TINY)
    assert (out / "notes.txt").exists()


def test_the_compact_demo_task_is_scored_by_the_arithmetic_verifier():
    import gymnasium

    import rlvr.envs  # noqa: F401

    env = gymnasium.make("rlvr/CompactArithmetic-v0", config={"difficulty": 3, "digits": 2, "operators": ["+"], "max_terms": 2})
    obs, info = env.reset(seed=5)
    assert [m["role"] for m in obs] == ["user"]
    a, b = obs[0]["content"].removesuffix(" =").split(" + ")
    _, reward, terminated, _, info = env.step(str(int(a) + int(b)))
    assert terminated and reward == 1.0 and info["success"]
    env.reset(seed=5)
    assert env.step(str(int(a) + int(b) + 1))[1] == 0.0
