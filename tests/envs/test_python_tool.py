"""PythonTool-v0: tool-call syntaxes, sandboxed runs, the call budget, and scoring of the final answer."""

from __future__ import annotations

import asyncio
import json

import gymnasium
import pytest

import rlvr.envs as E
from rlvr.envs.tools import MAX_CALLS_PER_MESSAGE, parse_tool_calls


def _sandbox_available() -> bool:
    try:
        from rlvr.sandbox import default_backend

        default_backend()
        return True
    except Exception:
        return False


needs_sandbox = pytest.mark.skipif(not _sandbox_available(), reason="no sandbox backend works on this machine")


def test_fenced_python_blocks_are_tool_calls():
    calls = parse_tool_calls("Let me check.\n```python\nprint(1)\n```\nand\n```py\nprint(2)\n```")
    assert [c.arguments["code"] for c in calls] == ["print(1)\n", "print(2)\n"]
    assert parse_tool_calls("```\nprint(1)\n```") == []  # an untagged block is not a call
    assert parse_tool_calls("```python\nprint(1)") == []  # nor an unclosed one


def test_hermes_and_openai_style_json_tool_calls():
    hermes = '<tool_call>{"name": "python", "arguments": {"code": "print(3)"}}</tool_call>'
    openai = json.dumps({"tool_calls": [{"type": "function", "function": {"name": "python", "arguments": json.dumps({"code": "print(4)"})}}]})
    bare = json.dumps([{"name": "python", "arguments": {"code": "print(5)"}}])
    assert [c.arguments["code"] for c in parse_tool_calls(hermes)] == ["print(3)"]
    assert [c.arguments["code"] for c in parse_tool_calls(openai)] == ["print(4)"]
    assert [c.arguments["code"] for c in parse_tool_calls(bare)] == ["print(5)"]


def test_malformed_tool_calls_come_back_with_the_reason():
    (bad,) = parse_tool_calls("<tool_call>{not json}</tool_call>")
    assert "not valid JSON" in bad.error
    (bad,) = parse_tool_calls('{"name": "python", "arguments": "{oops"}')
    assert "arguments" in bad.error


def test_parsing_hostile_text_is_bounded():
    assert len(parse_tool_calls("```python\nx\n```" * 10_000)) == MAX_CALLS_PER_MESSAGE
    assert parse_tool_calls("[" * 100_000) == []
    assert parse_tool_calls("<tool_call>" * 100_000) == []


@needs_sandbox
def test_python_tool_env_passes_check_with_a_reference_path_that_uses_the_tool():
    env = gymnasium.make("rlvr/PythonTool-v0")
    assert E.check(env, seeds=(0, 1)).ok
    _, info = env.reset(seed=0)
    assert info["tools"][0]["function"]["name"] == "python"
    obs, reward, done, _, _ = env.step(env.reference_action())
    assert not done and obs[-1]["role"] == "tool" and obs[-1]["content"].strip() == str(info["task"]["reference"])
    _, reward, done, _, step = env.step(env.reference_action())
    assert done and reward == 1.0 and step["success"] and step["reward_components"]["tool_calls"] == 1.0


@needs_sandbox
def test_tool_output_errors_timeouts_and_unknown_tools_are_fed_back_not_raised():
    env = gymnasium.make("rlvr/PythonTool-v0", limits={"time_limit_s": 1.0})
    env.reset(seed=0)
    obs, *_ = env.step("```python\n1/0\n```")
    assert "runtime_error" in obs[-1]["content"] and "ZeroDivisionError" in obs[-1]["content"]
    obs, *_ = env.step("```python\nwhile True: pass\n```")
    assert "timeout" in obs[-1]["content"]
    obs, *_ = env.step('{"name": "shell", "arguments": {"cmd": "ls"}}')
    assert "unknown tool 'shell'" in obs[-1]["content"]


@needs_sandbox
def test_the_call_budget_is_enforced_then_the_next_message_is_final():
    env = gymnasium.make("rlvr/PythonTool-v0", max_tool_calls=1)
    _, info = env.reset(seed=2)
    _, _, done, _, _ = env.step("```python\nprint(1)\n```")
    assert not done
    obs, _, done, _, _ = env.step("```python\nprint(2)\n```")
    assert not done and "budget exhausted" in obs[-1]["content"]
    _, reward, done, _, step = env.step("```python\nprint(3)\n```")
    assert done and reward == 0.0 and step["reward_components"]["tool_calls"] == 1.0


@needs_sandbox
def test_tool_calls_from_many_concurrent_episodes_run_in_the_shared_sandbox():
    async def one(seed: int) -> float:
        env = gymnasium.make("rlvr/PythonTool-v0")
        await env.areset(seed=seed)
        total = 0.0
        for _ in range(3):
            _, r, done, _, _ = await env.astep(env.reference_action())
            total += r
            if done:
                return total
        return total

    async def main():
        return await asyncio.gather(*(one(s) for s in range(24)))

    assert asyncio.run(main()) == [1.0] * 24


def test_tasks_can_name_their_own_verifier():
    tasks = [{"prompt": "Name the capital of France.", "answer": "Paris", "verifier": "string", "verifier_options": {"mode": "normalized"}}]
    env = gymnasium.make("rlvr/PythonTool-v0", tasks=tasks)
    env.reset(seed=0)
    _, reward, done, _, step = env.step("<answer>paris.</answer>")
    assert done and reward == 1.0 and step["success"]


@needs_sandbox
def test_tool_output_can_come_back_as_a_user_message_for_servers_without_tool_messages():
    env = gymnasium.make("rlvr/PythonTool-v0", tool_role="user")
    env.reset(seed=0)
    obs, *_ = env.step("```python\nprint(6 * 7)\n```")
    assert obs[-1] == {"role": "user", "content": "Tool output:\n42"}


# A tool call that leaves a value wherever a run might keep state, and one that looks for it.
_STORE = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
value = b"rlvr-left-behind"
for d in ("/tmp", "/var/tmp", "/dev/shm", os.getcwd(), os.path.expanduser("~")):
    try:
        with open(os.path.join(d, ".rlvr_left_behind"), "wb") as f:
            f.write(value)
    except OSError:
        pass
for ring in (-4, -5, -3):  # user, user-session and session keyrings
    libc.syscall(248, b"user", b"rlvr_left_behind", value, len(value), ring)
print("stored")
'''
_FIND = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
found = []
for d in ("/tmp", "/var/tmp", "/dev/shm", os.getcwd(), os.path.expanduser("~")):
    if os.path.exists(os.path.join(d, ".rlvr_left_behind")):
        found.append(d)
if libc.syscall(249, b"user", b"rlvr_left_behind", None, 0) > 0:
    found.append("keyring")
print("found:", ",".join(found) or "nothing")
'''


@needs_sandbox
def test_a_value_a_tool_call_stores_in_one_episode_is_gone_in_the_next():
    env = gymnasium.make("rlvr/PythonTool-v0", tasks=[{"prompt": "What is 2+2?", "answer": "4"}], max_tool_calls=2)
    env.reset(seed=0)
    obs, *_ = env.step(f"```python\n{_STORE}```")
    assert "stored" in obs[-1]["content"]
    env.step("<answer>4</answer>")
    env.reset(seed=1)
    obs, *_ = env.step(f"```python\n{_FIND}```")
    assert "found: nothing" in obs[-1]["content"], obs[-1]["content"]
