"""`rlvr eval` on the real built-in environments: a single-turn verifier env and a multi-turn game."""

from __future__ import annotations

import json
import re

import pytest

from rlvr.envs.evaluation import evaluate


def oracle(messages, task):
    return f"<think>\nI know this one.\n</think>\n<answer>\n{task['reference']}\n</answer>"


def bisect(messages):
    """Binary search on the guess-the-number feedback: a baseline that needs several turns."""
    lo, hi = map(int, re.search(r"from (-?\d+) to (-?\d+)", messages[0]["content"]).groups())
    for m in messages:
        if m["role"] != "user":
            continue
        if hit := re.search(r"higher than (-?\d+)", m["content"]):
            lo = max(lo, int(hit.group(1)) + 1)
        if hit := re.search(r"lower than (-?\d+)", m["content"]):
            hi = min(hi, int(hit.group(1)) - 1)
    return str((lo + hi) // 2)


def test_arithmetic_oracle_and_clueless_baselines(tmp_path):
    right = evaluate("rlvr/Arithmetic-v0", oracle, n=6, k=2, concurrency=4, output=tmp_path / "rollouts.jsonl")
    assert right.pass_at_1 == 1.0 and right.pass_at_k == 1.0 and right.status_counts == {"ok": 12}
    assert right.component_means["correct"] == 1.0
    wrong = evaluate("rlvr/Arithmetic-v0", lambda messages: "no idea", n=6, k=1)
    assert wrong.pass_at_1 == 0.0 and wrong.mean_reward == 0.0 and wrong.component_means["correct"] == 0.0


def test_guess_number_is_played_over_several_turns_until_solved(tmp_path):
    out = tmp_path / "rollouts.jsonl"
    report = evaluate("rlvr/GuessNumber-v0", bisect, n=8, k=1, concurrency=4, env_kwargs={"difficulty": 2}, output=out)
    assert report.pass_at_1 == 1.0 and report.status_counts == {"ok": 8}
    assert report.component_means == {"efficiency": 1.0, "solved": 1.0}  # binary search is the optimum
    assert set(report.component_weights) == {"efficiency", "solved"} and report.mean_turns > 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert max(r["turns"] for r in rows) > 1
    for r in rows:  # the transcript alternates guesses and feedback, one assistant message per turn
        assert sum(m["role"] == "assistant" for m in r["messages"]) == r["turns"]
        assert r["messages"][-1]["content"].startswith("Correct")


def test_unknown_builtin_id_gets_a_suggestion():
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="Arithmetic"):
        evaluate("rlvr/Arithmatic-v0", oracle, n=1)
