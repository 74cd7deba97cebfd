"""`rlvr compare`: one warm-up per seed, same prompts and budget for every algorithm, resumable, one report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")
pytestmark = pytest.mark.train

CHAT = ("{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] + '<|im_end|>' }}"
        "{% else %}{{ m['content'] + '\n' }}{% endif %}{% endfor %}")
ENV = {"id": "rlvr/Arithmetic-v0", "kwargs": {"config": {"difficulty": 1, "digits": 1, "operators": ["+"], "max_terms": 2},
                                              "system_prompt": ""}}


def write_config(tmp_path: Path, **extra) -> Path:
    cfg = {
        "output_dir": str(tmp_path / "cmp"), "seed": 4, "device": "cpu",
        "model": {"name_or_path": "tiny", "chat_template": CHAT,
                  "tiny": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}},
        "environments": [ENV],
        "generation": {"num_generations": 2, "prompts_per_step": 2, "max_new_tokens": 4, "max_completion_length": 4,
                       "max_turns": 1},
        "optim": {"max_steps": 50, "learning_rate": 1e-3},
        "sft": {"steps": 3, "batch_size": 4, "target": "answer", "warmup_steps": 1},
        "eval": {"num_tasks": 3, "samples_per_task": 2, "every_steps": 1},
        "logging": {"logging_steps": 1, "sample_rollouts": 2},
        "checkpoint": {"save_steps": 1, "save_total_limit": 1, "save_final_model": False},
        "compare": {"seeds": 2, "algorithms": {"grpo_no_std": {"preset": "grpo", "overrides": {"scale": "none"}}}},
        **extra,
    }
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_plan_gives_every_algorithm_the_same_start_prompts_and_budget(tmp_path):
    from rlvr.trainer.compare import make_plan

    plan = make_plan(write_config(tmp_path), algorithms=["grpo", "grpo_no_std", "maxrl"], budget_samples=9)
    assert plan.steps == 2 and plan.budget_samples == 8  # 9 rollouts -> 2 whole steps of 2 prompts x 2
    assert [w.seed for w in plan.warmups] == [4, 5] == plan.seeds
    assert len(plan.runs) == 6
    for run in plan.runs:
        cfg = run.config
        assert cfg["optim"]["max_steps"] == 2 and cfg["sft"]["steps"] == 0
        assert cfg["model"]["name_or_path"] == str(plan.warmup_policy(run.seed))
        # everything but the algorithm section (and where it writes) is the same within a seed
        same = {k: v for k, v in cfg.items() if k not in ("algorithm", "output_dir")}
        twin = next(r for r in plan.runs if r.seed == run.seed and r.algorithm == "grpo").config
        assert same == {k: v for k, v in twin.items() if k not in ("algorithm", "output_dir")}
    labelled = next(r for r in plan.runs if r.algorithm == "grpo_no_std")
    assert labelled.config["algorithm"] == {"preset": "grpo", "overrides": {"scale": "none"}}


def test_plan_errors_name_the_field_and_the_fix(tmp_path):
    from rlvr.errors import ConfigError
    from rlvr.trainer.compare import make_plan

    config = write_config(tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'dr_grpo'"):
        make_plan(config, algorithms=["dr_grpoo"])
    with pytest.raises(ConfigError, match="--budget-samples: 3 is less than one step's 4 rollouts"):
        make_plan(config, algorithms=["grpo"], budget_samples=3)
    with pytest.raises(ConfigError, match="--seeds"):
        make_plan(config, algorithms=["grpo"], seeds=0)
    bad = write_config(tmp_path, compare={"algorithm": ["grpo"]})
    with pytest.raises(ConfigError, match="compare: allowed fields"):
        make_plan(bad)


def test_eval_reports_lengths_of_right_and_wrong_answers_and_tells_mixture_entries_apart():
    from rlvr.trainer.run.evaluate import summarize_eval

    rows = [{"task": 0, "env_id": "e", "entry": 0, "success": True, "reward": 1.0, "tokens": 3},
            {"task": 0, "env_id": "e", "entry": 0, "success": False, "reward": 0.0, "tokens": 9},
            {"task": 1, "env_id": "e", "entry": 1, "success": False, "reward": 0.0, "tokens": 11},
            {"task": 1, "env_id": "e", "entry": 1, "success": False, "reward": 0.0, "tokens": 5}]
    out = summarize_eval(rows, 2, 1.0, 0.1)
    assert out["response_tokens_correct"] == 3 and out["response_tokens_wrong"] == pytest.approx(25 / 3)
    assert out["per_env"] == {"e[0]": {"pass@1": 0.5, "tasks": 1}, "e[1]": {"pass@1": 0.0, "tasks": 1}}


def test_heldout_sampling_is_fixed_by_run_seed_and_step_and_leaves_training_randomness_alone():
    import torch

    from rlvr.trainer.engine import SamplingParams
    from rlvr.trainer.rollout.backends import make_backend
    from rlvr.trainer.rollout.chat import ChatFormatter
    from rlvr.trainer.rollout.runner import EnvRunner
    from rlvr.trainer.rollout.tasks import TaskKey
    from rlvr.trainer.run.config import EnvConfig
    from rlvr.trainer.run.evaluate import eval_seed, evaluate_heldout, seeded_sampling
    from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=512))
    env = EnvConfig(ENV["id"], kwargs=ENV["kwargs"])
    runner = EnvRunner([env], ChatFormatter(tok), make_backend("auto", model, tok, max_batch=8, max_seq_len=512),
                       max_new_tokens=12, max_completion_length=12, max_turns=1)
    keys = [TaskKey(0, ENV["id"], s) for s in range(4)]
    params = SamplingParams(max_new_tokens=12, temperature=1.0)

    def play(seed: int) -> list[list[int]]:
        torch.rand(7)  # training moved the global stream in between: must not matter
        with seeded_sampling(seed):
            return [list(ep.completion_ids) for ep in runner.run(keys, params)]

    try:
        before = play(eval_seed(4, 0))
        assert play(eval_seed(4, 0)) == before  # two algorithms of seed 4 see the same eval_before samples
        assert play(eval_seed(4, 20)) != before  # a later evaluation draws fresh samples
        assert eval_seed(4, 0) != eval_seed(5, 0) and eval_seed(4, 0, rank=1) != eval_seed(4, 0)

        state = torch.get_rng_state()
        first = evaluate_heldout(runner, keys, samples_per_task=3, temperature=1.0, max_new_tokens=12, seed=eval_seed(4, 0))
        assert torch.equal(torch.get_rng_state(), state)  # the training sampler's stream is untouched
        torch.rand(5)
        again = evaluate_heldout(runner, keys, samples_per_task=3, temperature=1.0, max_new_tokens=12, seed=eval_seed(4, 0))
        assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in again.items() if k != "seconds"}
    finally:
        runner.close()


@pytest.mark.slow
def test_compare_runs_resumes_and_reports(tmp_path):
    config = write_config(tmp_path)
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "rlvr.cli.main", "compare", str(config), "--algorithms", "grpo,grpo_no_std",
           "--seeds", "1", "--budget-samples", "8"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == str(out / "report.html")
    doc = json.loads((out / "compare.json").read_text())
    assert doc["algorithms"] == ["grpo", "grpo_no_std"] and doc["steps"] == 2 and doc["budget_samples"] == 8
    assert [(x["algorithm"], x["status"]) for x in doc["runs"]] == [("grpo", "done"), ("grpo_no_std", "done")]
    for entry in doc["runs"]:
        numbers = entry["numbers"]
        assert numbers["finished"] and numbers["steps"] == 2 and numbers["samples_budget"] == 8
        assert 0.0 <= numbers["pass@1"] <= 1.0 and set(numbers["pass@k"]) == {"1", "2"}
        assert "pass1" in entry["curves"] and "entropy" in entry["curves"]
    # same prompts in the same order for both algorithms
    orders = [[row["keys"] for row in map(json.loads, (out / x["dir"] / "data_order.jsonl").read_text().splitlines())]
              for x in doc["runs"]]
    assert orders[0] == orders[1] and len(orders[0]) == 2
    # both started from the one warm-up of the seed
    assert (out / "warmup" / "seed-4" / "start_policy" / "config.json").exists()
    # ... and were evaluated on identical samples before training (sampling seeded by run seed and step)
    befores = [{k: v for k, v in json.loads((out / x["dir"] / "eval_before.json").read_text()).items() if k != "seconds"}
               for x in doc["runs"]]
    assert befores[0] == befores[1]
    page = (out / "report.html").read_text()
    assert "grpo_no_std" in page and "rollout-data" in page and (out / "compare.png").exists()

    # An interrupted comparison: one run lost its end; running the command again redoes only that run.
    (out / "runs" / "grpo_no_std-seed4" / "summary.json").unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "warm-up seed-4: already done" in again.stderr and "run grpo-seed4: already done" in again.stderr
    assert "run grpo_no_std-seed4: done in" in again.stderr
    doc = json.loads((out / "compare.json").read_text())
    assert doc["runs"][1]["resumed"] is True and doc["runs"][1]["numbers"]["steps"] == 2


@pytest.mark.parametrize("config", sorted((Path(__file__).resolve().parents[2] / "examples" / "compare").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_example_comparisons_are_valid_plans(config):
    from rlvr.trainer.compare import make_plan

    plan = make_plan(config)
    assert len(plan.algorithms) >= 2 and len(plan.seeds) == 3 and plan.warmups
