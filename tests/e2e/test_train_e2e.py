"""End to end: a short CPU training run on a multi-turn environment mixed with a single-turn one.

Checks what users rely on: environment-written tokens are masked, per-component rewards and
episode statistics are logged, and the run directory has everything `rlvr train` promises.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

from rlvr.trainer.run.config import config_from_dict  # noqa: E402


def tiny_run(out, **extra):
    data = {
        "output_dir": str(out),
        "seed": 0,
        "device": "cpu",
        "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 1024}},
        "environments": [
            {"id": "rlvr/GuessNumber-v0", "weight": 3, "kwargs": {"difficulty": 1}},
            {"id": "rlvr/Arithmetic-v0", "weight": 1, "kwargs": {"difficulty": 1, "system_prompt": ""}},
        ],
        "algorithm": {"preset": "grpo"},  # KL to a reference copy of the policy, too
        "generation": {"num_generations": 2, "prompts_per_step": 4, "max_new_tokens": 6,
                       "max_completion_length": 600, "max_turns": 8},
        "optim": {"max_steps": 3, "learning_rate": 1e-4},
        "eval": {"num_tasks": 4, "samples_per_task": 2, "every_steps": 2},
        "logging": {"sample_rollouts": 8, "progress": False},
        "checkpoint": {"save_steps": 2},
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(data)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from rlvr.trainer.run.train import run_training

    out = tmp_path_factory.mktemp("e2e") / "run"
    summary = run_training(tiny_run(out))
    return out, summary


def test_run_directory_has_everything_rlvr_train_promises(run_dir):
    out, summary = run_dir
    for name in ("config.yaml", "metrics.jsonl", "samples.jsonl", "data_order.jsonl", "eval_before.json",
                 "eval_after.json", "reward_curve.png", "summary.json", "final/config.json",
                 "checkpoints/checkpoint-2/trainer_state.json"):
        assert (out / name).exists(), name
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["steps"] == summary["steps"] == 3
    assert on_disk["wall_s"] > 0
    for phase in ("eval_before", "eval_after"):
        assert 0.0 <= on_disk[phase]["pass@1"] <= 1.0
        assert on_disk[phase]["tasks"] == 4
    assert (out / "reward_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_environment_tokens_are_masked_in_multi_turn_rollouts(run_dir):
    out, _ = run_dir
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    multi = [s for s in samples if s["env_id"] == "rlvr/GuessNumber-v0" and s["turns"] > 1]
    assert multi, "the tiny model's invalid guesses keep GuessNumber episodes going"
    for s in samples:
        runs = s["env_mask_runs"]
        assert sum(n for v, n in runs if v == 1) == s["model_tokens"]
        assert sum(n for v, n in runs if v == 0) == s["env_tokens"]
        assert runs[0][0] == 1  # the completion starts with the model's first turn
    for s in multi:
        # model turn, environment feedback (masked), model turn, ...
        assert [v for v, _ in s["env_mask_runs"]][:3] == [1, 0, 1]
        roles = [m["role"] for m in s["messages"]]
        assert roles.count("assistant") == s["turns"]
        assert s["env_tokens"] > 0


def test_per_component_rewards_and_episode_stats_are_logged(run_dir):
    out, _ = run_dir
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    keys = set().union(*train)
    for key in ("reward", "entropy", "env/reward", "env/success", "env/turns", "env/model_tokens", "env/env_tokens",
                "env/component/solved", "env/component/efficiency", "env/component/correct",
                "env/rlvr/GuessNumber-v0/reward", "env/rlvr/Arithmetic-v0/success", "algo/kl"):
        assert key in keys, key
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 2, 3]  # before, periodic, after
    order = [json.loads(line) for line in (out / "data_order.jsonl").read_text().splitlines()]
    assert [r["step"] for r in order] == [1, 2, 3]
    assert all(len(r["keys"]) == 8 for r in order)  # 4 prompts x 2 generations


def test_the_final_policy_loads_and_generates(run_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = run_dir
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    tok = AutoTokenizer.from_pretrained(out / "final")
    ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    assert model.generate(**ids, max_new_tokens=3, do_sample=False).shape[1] > ids["input_ids"].shape[1]
