"""reasoning-gym datasets as rlvr environments: ids, config/seed/difficulty, isolated scoring, check over all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("reasoning_gym")

import rlvr.envs as E  # noqa: E402
from rlvr.envs.adapters import reasoning_gym as A  # noqa: E402
from rlvr.errors import ConfigError  # noqa: E402

# What docs/environments.md lists as unable to pass `check`, with the failing check.
CANNOT_PASS = {
    "boxnet": "reference answer earns full reward",
    "graph_color": "reference answer earns full reward",
    "propositional_logic": "reference answer earns full reward",
    "rubiks_cube": "reference answer earns full reward",
    "rush_hour": "reference answer earns full reward",
    "game_of_life_halting": "answer spam is not rewarded",
    "knights_knaves": "answer spam is not rewarded",
    "quantum_lock": "answer spam is not rewarded",
    "sokoban": "answer spam is not rewarded",
}


def test_every_dataset_is_registered_and_listed_with_its_origin():
    names = A.dataset_names()
    assert len(names) >= 100 and "chain_sum" in names and "composite" not in names
    ids = [i for i in E.env_ids() if i.startswith("reasoning_gym/")]
    assert len(ids) == len(names)
    info = E.describe("reasoning_gym/chain_sum-v0")
    assert info.origin == "reasoning-gym" and info.package.startswith("reasoning-gym") and info.kind == "single-turn"


def test_import_rlvr_envs_does_not_import_reasoning_gym_once_names_are_cached(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = "import sys, json, rlvr.envs as E; print(json.dumps(['reasoning_gym' in sys.modules, sum(i.startswith('reasoning_gym/') for i in E.env_ids())]))"
    first = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120).stdout)
    second = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120).stdout)
    assert first[1] == second[1] >= 100
    assert second[0] is False


def test_seed_size_config_and_difficulty_reach_the_dataset():
    env = E.make("reasoning_gym/chain_sum-v0", seed=5, size=30, config={"min_terms": 4, "max_terms": 4, "min_digits": 1, "max_digits": 1})
    raw = env.unwrapped
    assert len(raw.tasks) == 30
    obs, info = env.reset(seed=0)
    assert obs[-1]["content"].count("+") + obs[-1]["content"].count("-") >= 3
    easy = E.make("reasoning_gym/chain_sum-v0", difficulty=1).unwrapped.verifier.config
    hard = E.make("reasoning_gym/chain_sum-v0", difficulty=3).unwrapped.verifier.config
    assert (easy.max_digits, hard.max_digits) != (hard.max_digits, hard.max_digits) or easy.max_terms < hard.max_terms
    with pytest.raises(ConfigError, match="config"):
        E.make("reasoning_gym/chain_sum-v0", config={"no_such_field": 1})
    with pytest.raises(ConfigError, match="difficulty"):
        E.make("reasoning_gym/chain_sum-v0", difficulty=0)


def test_the_datasets_own_scorer_decides_and_garbage_never_crashes():
    env = E.make("reasoning_gym/basic_arithmetic-v0", size=10)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.unwrapped.reference_action())
    assert reward == 1.0 and info["success"] is True
    for junk in ["", "no tags at all", "<answer>" + "9" * 200_000 + "</answer>", "<answer>\x00\ud800</answer>"]:
        env.reset(seed=0)
        _, reward, terminated, _, info = env.step(junk)
        assert terminated and reward == 0.0 and info["status"] in ("no_answer", "wrong", "parse_error", "error")


def test_a_scorer_that_evals_model_text_runs_in_a_worker_that_can_die_or_hang_without_harm(tmp_path):
    # string_insertion's score_answer eval()s the answer: the payload runs in a pool worker.
    marker = tmp_path / "pwned"
    # A generous limit for the first two: a fresh worker may first have to import reasoning-gym.
    env = E.make("reasoning_gym/string_insertion-v0", size=5, score_timeout=60)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(f"<answer>__import__('pathlib').Path({str(marker)!r}).write_text(str(__import__('os').getpid()))</answer>")
    assert reward == 0.0
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # it ran, but not in this process
    env.reset(seed=0)
    _, reward, _, _, info = env.step("<answer>__import__('os')._exit(3)</answer>")
    assert reward == 0.0 and info["scores"]["correct"]["status"] == "error"
    env = E.make("reasoning_gym/string_insertion-v0", size=5, score_timeout=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step("<answer>__import__('time').sleep(600)</answer>")
    assert reward == 0.0 and info["scores"]["correct"]["status"] == "timeout"
    A.close_verifiers()


def test_partial_credit_is_opt_in():
    strict = E.make("reasoning_gym/string_insertion-v0", size=5)
    partial = E.make("reasoning_gym/string_insertion-v0", size=5, partial_credit=True)
    for env in (strict, partial):
        _, info = env.reset(seed=0)
    as_list = repr(list(info["task"]["reference"]))  # string_insertion gives 0.1 for a list of characters
    rewards = []
    for env in (strict, partial):
        env.reset(seed=0)
        rewards.append(env.step(f"<answer>{as_list}</answer>")[1])
    assert rewards == [0.0, pytest.approx(0.1)]
    A.close_verifiers()


def test_to_dataset_and_reward_funcs_work_on_a_reasoning_gym_env():
    ds = E.to_dataset("reasoning_gym/basic_arithmetic-v0", n=4, seed=0, size=20)
    correct, _ = E.reward_funcs("reasoning_gym/basic_arithmetic-v0", size=20)
    refs = [json.loads(r) for r in ds["reference"]]
    out = correct(prompts=ds["prompt"], completions=[f"<answer>{r}</answer>" for r in refs], reference=ds["reference"],
                  metadata=ds["metadata"], task_prompt=ds["task_prompt"])
    assert out == [1.0] * 4


@pytest.mark.slow
def test_check_over_every_dataset_matches_the_documented_list():
    failing: dict[str, list[str]] = {}
    for name in A.dataset_names():
        try:
            env = E.make(f"reasoning_gym/{name}-v0", size=20)
            problems = E.check(env, seeds=(0,), raise_on_failure=False).problems
        except ConfigError as e:
            problems = [f"config: {e}"]
        finally:
            A.close_verifiers()
        if problems:
            failing[name] = problems
    assert set(failing) == set(CANNOT_PASS), {k: v[:1] for k, v in failing.items()}
    for name, problems in failing.items():
        assert any(CANNOT_PASS[name] in p for p in problems), (name, problems)
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "environments.md")) as f:
        doc = f.read()
    assert all(f"`{name}`" in doc for name in CANNOT_PASS)
    assert f"{len(A.dataset_names()) - len(CANNOT_PASS)} of the {len(A.dataset_names())} datasets pass" in doc
