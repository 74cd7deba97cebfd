"""Code-v0: programs run against tests in the sandbox, failing-test feedback, retries, shaped reward."""

from __future__ import annotations

import asyncio

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
    "tests": {"kind": "assert", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n", "entry_point": "add"},
    "solution": "def add(a, b):\n    return a + b\n",
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
    assert "passed 0/2 tests" in feedback and "assert candidate(1, 2) == 3" in feedback and "returned -1" in feedback
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
