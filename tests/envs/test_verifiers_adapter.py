"""PrimeIntellect verifiers environments (single-turn, multi-turn, tool) played as rlvr Gymnasium envs.

The environments live in tests/envs/plugins as an installed package would (a dist-info that
requires verifiers); rewards are compared with what verifiers itself computes when its own
rollout loop replays the same model messages and its rubric scores the result.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("datasets")
from importlib import metadata as importlib_metadata  # noqa: E402

try:
    importlib_metadata.distribution("verifiers")
except importlib_metadata.PackageNotFoundError:
    pytest.skip("verifiers is not installed", allow_module_level=True)

import rlvr.envs as E  # noqa: E402
from rlvr.envs.adapters import verifiers_env as V  # noqa: E402

PLUGINS = Path(__file__).parent / "plugins"
ENVS = {"vf-echo-single": "vf_echo_single", "vf-guess-multi": "vf_guess_multi", "vf-calc-tool": "vf_calc_tool"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("vfdists")
    for dist, module in ENVS.items():
        info = root / f"{module}-0.1.dist-info"
        info.mkdir()
        info.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\nRequires-Dist: verifiers>=0.3\n")
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(root))
    mp.syspath_prepend(str(PLUGINS))
    V.register_all()
    yield
    mp.undo()
    V.register_all()


def play(env_id: str, seed: int, actions) -> tuple[list, float, dict]:
    env = E.make(env_id)
    obs, info = env.reset(seed=seed)
    total, sent = 0.0, []
    for action in actions(info["task"]):
        sent.append(action)
        obs, reward, terminated, truncated, step = env.step(action)
        total += reward
        if terminated or truncated:
            return sent, total, step
    raise AssertionError("episode did not end")


def verifiers_reward(env_id: str, seed: int, sent: list[str]) -> float:
    """verifiers' own rollout loop replaying ``sent``, scored by its own rubric."""
    gym_env = E.make(f"verifiers/{env_id}-v0").unwrapped
    gym_env.reset(seed=seed)
    row = dict(gym_env.tasks.dataset[int(gym_env.task.metadata["row"])])
    vf_env = V.load(env_id, {})
    replies = iter(sent)
    client = V.scripted_client(lambda prompt, tools: V.response_for(next(replies), bool(tools)))

    async def run():
        state = await vf_env.rollout(row, client, "scripted", {})
        await vf_env.rubric.score_rollout(state)
        return state

    return float(asyncio.run(run())["reward"])


def test_installed_verifiers_environments_are_listed(installed):
    ids = [i for i in E.env_ids() if i.startswith("verifiers/")]
    assert sorted(ids) == sorted(f"verifiers/{e}-v0" for e in ENVS)
    info = E.describe("verifiers/vf-guess-multi-v0")
    assert info.origin == "verifiers" and info.kind == "multi-turn"
    assert [c["name"] for c in info.components] == ["solved", "fewer_turns", "num_turns"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_turn_rewards_equal_verifiers_own(installed, seed):
    for answer in (lambda t: [t["reference"]], lambda t: ["a much longer wrong answer"]):
        sent, total, step = play("verifiers/vf-echo-single-v0", seed, answer)
        assert set(step["reward_components"]) == {"exact_match", "brevity", "num_turns"}
        assert total == pytest.approx(verifiers_reward("vf-echo-single", seed, sent))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_turn_rewards_equal_verifiers_own(installed, seed):
    def guesses(task):
        yield "5"
        yield task["reference"]

    sent, total, step = play("verifiers/vf-guess-multi-v0", seed, guesses)
    assert step["success"] is True and step["episode"]["turns"] == 2
    assert step["episode"]["messages"][-1]["content"] == "Correct!"
    assert total == pytest.approx(verifiers_reward("vf-guess-multi", seed, sent))


def test_multi_turn_stops_at_the_environments_max_turns(installed):
    sent, total, step = play("verifiers/vf-guess-multi-v0", 0, lambda t: iter(["0"] * 10))
    assert len(sent) == 4 and step["success"] is False
    assert total == pytest.approx(verifiers_reward("vf-guess-multi", 0, sent))


@pytest.mark.parametrize("seed", [0, 1])
def test_tool_env_calls_the_tool_from_text_and_rewards_equal_verifiers_own(installed, seed):
    def use_tool(task):
        a, b = [int(x) for x in task["prompt"][-1]["content"].split("?")[0].split("is ")[1].split(" + ")]
        yield f'<tool_call>{json.dumps({"name": "add", "arguments": {"a": a, "b": b}})}</tool_call>'
        yield task["reference"]

    sent, total, step = play("verifiers/vf-calc-tool-v0", seed, use_tool)
    msgs = step["episode"]["messages"]
    assert [m["role"] for m in msgs][-3:] == ["assistant", "tool", "assistant"]
    assert step["reward_components"]["correct"] == 1.0 and step["reward_components"]["add_calls"] == 1.0
    assert total == pytest.approx(verifiers_reward("vf-calc-tool", seed, sent))


def test_garbage_actions_never_crash_a_verifiers_env(installed):
    for env_id in ("verifiers/vf-calc-tool-v0", "verifiers/vf-guess-multi-v0"):
        env = E.make(env_id)
        env.reset(seed=0)
        for junk in ["<tool_call>{not json</tool_call>", "<tool_call>" + json.dumps({"name": "rm", "arguments": {}}) + "</tool_call>", "\x00" * 10_000]:
            _, _, terminated, truncated, _ = env.step(junk)
            if terminated or truncated:
                env.reset(seed=0)
