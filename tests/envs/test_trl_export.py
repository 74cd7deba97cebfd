"""rlvr environments in stock TRL: to_dataset / reward_funcs, and two steps of trl.GRPOTrainer on them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rlvr.envs as E
from rlvr.errors import ConfigError


def _answer(ref: str) -> list[dict]:
    return [{"role": "assistant", "content": f"<think>\nworked\n</think>\n<answer>\n{ref}\n</answer>"}]


def test_importing_rlvr_envs_loads_neither_datasets_nor_torch():
    code = "import sys, rlvr.envs; print(json.dumps(['datasets' in sys.modules, 'torch' in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == [False, False]


def test_to_dataset_gives_distinct_tasks_in_trls_conversational_format():
    ds = E.to_dataset("rlvr/Arithmetic-v0", n=16, seed=3, difficulty=2)
    assert len(ds) == 16 and len(set(ds["task_id"])) == 16
    assert set(ds.column_names) >= {"prompt", "reference", "metadata", "task_id", "env_id"}
    first = ds[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert json.loads(first["metadata"])["difficulty"] == 2
    again = E.to_dataset("rlvr/Arithmetic-v0", n=16, seed=3, difficulty=2)
    assert again["task_id"] == ds["task_id"]  # the seed reproduces the draw
    no_system = E.to_dataset("rlvr/Arithmetic-v0", n=2, seed=3, difficulty=2, system_prompt=None)
    assert [m["role"] for m in no_system[0]["prompt"]] == ["user"]


def test_to_dataset_refuses_more_distinct_tasks_than_a_finite_source_has_and_multi_turn_envs():
    with pytest.raises(ConfigError, match="only"):
        E.to_dataset("rlvr/Math-v0", n=1_000_000)
    with pytest.raises(ConfigError, match="multi-turn"):
        E.to_dataset("rlvr/GuessNumber-v0", n=2)


def test_reward_funcs_are_one_per_component_and_sum_to_the_environments_reward():
    ds = E.to_dataset("rlvr/Math-v0", n=4, seed=0)
    funcs = E.reward_funcs("rlvr/Math-v0")
    assert [f.__name__ for f in funcs] == ["correct", "format"]
    refs = [json.loads(r) for r in ds["reference"]]
    completions = [_answer(refs[0]), _answer("definitely wrong"), [{"role": "assistant", "content": ""}], _answer(refs[3])]
    columns = {"prompts": ds["prompt"], "completions": completions, "reference": ds["reference"], "metadata": ds["metadata"], "task_prompt": ds["task_prompt"]}
    got = {f.__name__: f(**columns) for f in funcs}
    assert got["correct"] == [1.0, 0.0, 0.0, 1.0]
    assert got["format"] == pytest.approx([0.1, 0.1, 0.0, 0.1])
    env = E.make("rlvr/Math-v0")
    for i, c in enumerate(completions):
        env.reset(options={"index": 0, "task": {"prompt": json.loads(ds["task_prompt"][i]), "reference": refs[i], "metadata": json.loads(ds["metadata"][i])}})
        _, reward, *_ = env.step(c[0]["content"])
        assert got["correct"][i] + got["format"][i] == pytest.approx(reward)


def test_a_reward_func_never_crashes_on_garbage_completions():
    ds = E.to_dataset("rlvr/Arithmetic-v0", n=3, seed=0)
    (correct, _fmt) = E.reward_funcs("rlvr/Arithmetic-v0")
    out = correct(prompts=ds["prompt"], completions=["\x00" * 100_000, [{"role": "assistant", "content": "<answer>" * 5000}], 42],
                  reference=ds["reference"], metadata=ds["metadata"])
    assert out[:2] == [0.0, 0.0] and out[2] is None  # a non-text completion cannot be scored: TRL leaves it out


@pytest.mark.slow
@pytest.mark.train
def test_two_steps_of_stock_grpo_trainer_on_an_rlvr_environment(tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.trainer.tiny import tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer)
    dataset = E.to_dataset("rlvr/Arithmetic-v0", n=8, seed=0, difficulty=1, system_prompt=None)
    funcs = E.reward_funcs("rlvr/Arithmetic-v0", difficulty=1, system_prompt=None)
    calls = []

    def spy(f):
        def wrapped(*a, **kw):
            out = f(*a, **kw)
            calls.append((f.__name__, out))
            return out

        wrapped.__name__ = f.__name__
        return wrapped

    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
        max_steps=2, learning_rate=1e-4, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
        disable_tqdm=True, seed=0,
    )
    trainer = GRPOTrainer(model, reward_funcs=[spy(f) for f in funcs], args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2
    assert {name for name, _ in calls} == {"correct", "format"}
    assert all(len(out) == 4 and all(v is None or 0.0 <= v <= 1.0 for v in out) for _, out in calls)
    logged = [h for h in trainer.state.log_history if "rewards/correct/mean" in h]
    assert len(logged) == 2
