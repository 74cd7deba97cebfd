"""Code-v0: programs run against hidden tests in the sandbox, public-test feedback, retries, shaped reward."""

from __future__ import annotations

import asyncio
import ast
import json
import re

import gymnasium
import pytest

import rlvr.envs as E


def _code_ready() -> bool:
    try:
        from rlvr.sandbox import default_backend
        from rlvr.verifiers import get_verifier

        default_backend()
        get_verifier("code")
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _code_ready(), reason="needs the code verifier and a working sandbox backend")

ADD_TASK = {
    "prompt": "Write add(a, b).",
    "public_tests": {"kind": "assert", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n", "entry_point": "add"},
    "tests": {"kind": "assert", "test": "def check(candidate):\n    assert candidate(40, 2) == 42\n    assert candidate(-9, -9) == -18\n    assert candidate(7, 0) == 7\n", "entry_point": "add"},
    "solution": "def add(a, b):\n    return a + b\n",
}
# Doubling: public cases 1, 2; hidden cases 5, 6, 7 (never shown to the policy).
DOUBLE_TASK = {
    "prompt": "Read an integer and print twice its value.",
    "public_tests": {"kind": "io", "cases": [{"stdin": "1\n", "stdout": "2\n"}, {"stdin": "2\n", "stdout": "4\n"}]},
    "tests": {"kind": "io", "cases": [{"stdin": "5\n", "stdout": "10\n"}, {"stdin": "6\n", "stdout": "12\n"}, {"stdin": "7\n", "stdout": "14\n"}]},
    "solution": "print(2 * int(input()))\n",
}


def code_env(**kw):
    return gymnasium.make("rlvr/Code-v0", tasks=[ADD_TASK], reference_key="tests", **kw)


def test_code_env_passes_check_on_the_bundled_problems():
    assert E.check(gymnasium.make("rlvr/Code-v0"), seeds=(0, 1, 2)).ok


def test_a_failing_attempt_gets_feedback_and_a_fixed_one_succeeds():
    env = code_env(reward_weights={"progress": 0.5})
    env.reset(seed=0)
    obs, reward, done, _, info = env.step("```python\ndef add(a, b):\n    return a - b\n```")
    assert not done and reward == pytest.approx(0.5 * info["reward_components"].get("progress", 0.0))
    feedback = obs[-1]["content"]
    assert obs[-1]["role"] == "user" and "attempts left" in feedback
    assert "passed 0/2 public tests" in feedback and "assert candidate(1, 2) == 3" in feedback and "returned -1" in feedback
    assert "add(1, 2)" in feedback
    obs, reward, done, _, info = env.step(env.reference_action())
    assert done and info["success"] and info["status"] == "ok"
    assert info["episode"]["reward_components"]["correct"] == 1.0
    assert info["episode"]["reward_components"]["progress"] == pytest.approx(1.0)
    assert info["episode"]["reward"] == pytest.approx(1.5)


def test_attempts_run_out_after_max_attempts():
    env = code_env(max_attempts=2)
    env.reset(seed=0)
    env.step("no code here")
    _, reward, done, truncated, info = env.step("```python\nprint('still nothing')\n```")
    assert done and not truncated and reward == 0.0
    assert info["success"] is False and info["episode"]["turns"] == 2


def test_a_program_that_exits_before_the_tests_run_is_not_rewarded():
    env = code_env(max_attempts=1)
    env.reset(seed=0)
    _, reward, done, _, info = env.step("```python\nimport os\nos._exit(0)\n```")
    assert done and reward == 0.0 and info["success"] is False


def test_many_concurrent_coding_episodes_finish():
    async def one(seed: int) -> bool:
        env = gymnasium.make("rlvr/Code-v0")
        await env.areset(seed=seed)
        _, _, done, _, info = await env.astep(env.reference_action())
        return done and info["success"]

    async def main():
        return await asyncio.gather(*(one(s) for s in range(30)))

    assert all(asyncio.run(main()))


def _quoted(feedback: str, field: str) -> str | None:
    m = re.search(rf"^{field}: (.*)$", feedback, re.M)
    return None if m is None else ast.literal_eval(m.group(1))


def _replayer(table: dict[str, str], store: bool = False) -> str:
    """A 'solution' that only prints outputs it was told; optionally it also leaves them behind and reads back."""
    return f"""```python
import ctypes, json, os, sys
table = {table!r}
places = ["/tmp/.answers", "/var/tmp/.answers", "/dev/shm/.answers", os.path.expanduser("~/.answers"), ".answers"]
libc = ctypes.CDLL(None, use_errno=True)
for p in places:  # answers an earlier rollout left behind
    try:
        table.update(json.load(open(p)))
    except Exception:
        pass
for ring in (-4, -5, -3):  # and its kernel keys (request_key, keyctl_read)
    buf = ctypes.create_string_buffer(4096)
    key = libc.syscall(249, b"user", b"rlvr_answers", None, 0)
    if key > 0:
        n = libc.syscall(250, 11, key, buf, 4096)
        if n > 0:
            table.update(json.loads(buf.raw[:n]))
if {store!r}:
    data = json.dumps(table).encode()
    for p in places:
        try:
            open(p, "w").write(data.decode())
        except Exception:
            pass
    for ring in (-4, -5, -3):
        libc.syscall(248, b"user", b"rlvr_answers", data, len(data), ring)
s = sys.stdin.read()
print(table.get(s, "0"))
```"""


def test_feedback_comes_from_public_tests_only_and_reveals_what_is_configured():
    env = gymnasium.make("rlvr/Code-v0", tasks=[DOUBLE_TASK], max_attempts=3)
    env.reset(seed=0)
    obs, *_ = env.step("```python\nprint(3 * int(input()))\n```")
    feedback = obs[-1]["content"]
    assert "passed 0/2 public tests" in feedback
    assert _quoted(feedback, "input") == "1\n" and _quoted(feedback, "expected") == "2\n" and _quoted(feedback, "got") == "3\n"
    for hidden in ("'5", "'6", "'7", "10", "12", "14", "/3"):
        assert hidden not in feedback
    env = gymnasium.make("rlvr/Code-v0", tasks=[DOUBLE_TASK], max_attempts=3, feedback_reveals=["input", "got"])
    env.reset(seed=0)
    obs, *_ = env.step("```python\nprint(3 * int(input()))\n```")
    assert _quoted(obs[-1]["content"], "expected") is None and _quoted(obs[-1]["content"], "got") == "3\n"


def test_replaying_the_expected_outputs_the_feedback_quoted_earns_nothing():
    # More attempts than public tests: the policy learns every public expected output, then replays them.
    env = gymnasium.make("rlvr/Code-v0", tasks=[DOUBLE_TASK], max_attempts=5)
    env.reset(seed=0)
    table: dict[str, str] = {}
    for _ in range(5):
        obs, reward, done, _, info = env.step(_replayer(table))
        feedback = obs[-1]["content"]
        if done:
            break
        if _quoted(feedback, "input") is not None:
            table[_quoted(feedback, "input")] = _quoted(feedback, "expected").strip()
    assert table == {"1\n": "2", "2\n": "4"}  # the attack got every public answer ...
    assert "passes the public tests but not the hidden tests" in feedback
    assert done and info["success"] is False and info["episode"]["reward_components"]["correct"] == 0.0  # ... and no reward


def test_answers_left_behind_by_one_rollout_are_worth_nothing_to_the_next():
    env = gymnasium.make("rlvr/Code-v0", tasks=[DOUBLE_TASK], max_attempts=3)
    env.reset(seed=0)
    obs, *_ = env.step(_replayer({}, store=True))
    told = {_quoted(obs[-1]["content"], "input"): _quoted(obs[-1]["content"], "expected").strip()}
    env.step(_replayer(told, store=True))  # episode 1 stores what the feedback revealed
    env.reset(seed=1)
    _, reward, done, _, info = env.step(_replayer({}))  # episode 2 reads it back
    assert not done or info["success"] is False
    assert reward == 0.0


def test_the_hidden_tests_decide_success():
    env = gymnasium.make("rlvr/Code-v0", tasks=[DOUBLE_TASK], max_attempts=2)
    env.reset(seed=0)
    _, reward, done, _, info = env.step(env.reference_action())
    assert done and info["success"] and reward == 1.0


def test_a_task_whose_tests_cannot_run_ends_as_error_not_as_a_wrong_answer():
    broken = {**DOUBLE_TASK, "tests": {"kind": "io", "cases": []}}
    env = gymnasium.make("rlvr/Code-v0", tasks=[broken], max_attempts=3)
    env.reset(seed=0)
    obs, reward, done, _, info = env.step(env.reference_action())
    assert done and info["status"] == "error" and info["success"] is False and reward == 0.0
    assert "not in your program" in obs[-1]["content"]


def test_prose_without_code_is_no_answer():
    env = gymnasium.make("rlvr/Code-v0", tasks=[DOUBLE_TASK], max_attempts=1)
    env.reset(seed=0)
    obs, _, done, _, info = env.step("I am not sure how to solve this problem.")
    assert done and info["status"] == "no_answer" and "No program found" in obs[-1]["content"]


def test_bundled_problems_have_several_hidden_tests_unlike_the_public_ones():
    from rlvr.envs.builtin.code import sample_tasks_path
    from rlvr.verifiers.code_tests import parse_spec

    rows = [json.loads(line) for line in open(sample_tasks_path(), encoding="utf-8")]
    assert len(rows) == 15
    for row in rows:
        hidden, public = parse_spec(row["tests"]), parse_spec(row["public_tests"])
        if hidden.kind == "io":
            assert len(hidden.cases) >= 4 and not {c.stdin for c in hidden.cases} & {c.stdin for c in public.cases}, row["id"]
        else:
            assert len(hidden.labels) >= 4 and not set(hidden.labels) & set(public.labels), row["id"]


def test_an_eval_counts_unjudgeable_episodes_apart_from_wrong_ones():
    from rlvr.envs.evaluation import evaluate
    from rlvr.envs.registry import register_env

    broken = {**DOUBLE_TASK, "id": "broken", "tests": {"kind": "io", "cases": []}}
    wrong = {**DOUBLE_TASK, "id": "double"}
    env_id = "codetest/CodeMixed-v0"
    register_env(env_id, "rlvr.envs.builtin.code:CodeEnv", kwargs={"tasks": [broken, wrong], "max_attempts": 1})
    report = evaluate(env_id, lambda messages: "```python\nprint(0)\n```", n=2, k=1)
    assert report.status_counts == {"error": 1, "wrong": 1}
    assert report.episodes_done == 2 and report.episodes_scored == 1 and report.mean_reward == 0.0
