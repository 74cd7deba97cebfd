"""Writing one's own environment: multi-turn from max_turns, the removable default system prompt,
rlvr's own "did you mean" for wrong-case and wrong-version ids, and the multi-turn example."""

from __future__ import annotations

import json
import pickle
import sys
import tomllib
from pathlib import Path

import gymnasium
import pytest
from typer.testing import CliRunner

import rlvr.envs as E
from rlvr.cli.main import app
from rlvr.envs import Component, ListSource, Rubric, SingleTurnEnv, TextEnv, Turn
from rlvr.envs.core import DEFAULT_PROMPT
from rlvr.envs.single_turn import THINK_ANSWER_PROMPT
from rlvr.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_turn_env"
runner = CliRunner()


class Plain(TextEnv):
    """A TextEnv that never says whether it is multi-turn."""

    def __init__(self, max_turns: int = 1, **kw) -> None:
        super().__init__(ListSource([{"prompt": "Say ok.", "answer": "ok"}]), Rubric([Component("ok", 1.0)]), max_turns=max_turns, **kw)

    def respond(self, action: str) -> Turn:
        return Turn(done=action == "ok", rewards={"ok": float(action == "ok")})


def test_multi_turn_follows_max_turns_unless_the_class_says_otherwise():
    assert Plain(max_turns=1).multi_turn is False
    assert Plain(max_turns=4).multi_turn is True
    assert Plain.multi_turn is False  # read on the class, before any instance: the old default
    guess = E.make("rlvr/GuessNumber-v0")
    assert guess.unwrapped.multi_turn is True


def test_a_multi_turn_env_without_the_flag_is_listed_as_multi_turn():
    E.register_env("test/PlainMulti-v0", lambda **kw: Plain(max_turns=3, **kw))
    try:
        assert E.describe("test/PlainMulti-v0").kind == "multi-turn"
    finally:
        gymnasium.registry.pop("test/PlainMulti-v0", None)
        E.registry._REG.records.pop("test/PlainMulti-v0", None)


def single(**kw) -> SingleTurnEnv:
    return SingleTurnEnv(ListSource([{"prompt": "Reply with the word yes.", "answer": "yes"}]), [Component("correct", 1.0, "string")], **kw)


def test_the_default_system_prompt_is_the_documented_think_answer_prompt():
    obs, _ = single().reset(seed=0)
    assert obs[0] == {"role": "system", "content": THINK_ANSWER_PROMPT}
    assert "THINK_ANSWER_PROMPT" in (SingleTurnEnv.__doc__ or "")


@pytest.mark.parametrize("removed", [None, ""])
def test_system_prompt_none_or_empty_removes_the_system_message(removed):
    obs, _ = single(system_prompt=removed).reset(seed=0)
    assert [m["role"] for m in obs] == ["user"]
    obs, _ = E.make("rlvr/Math-v0", system_prompt=removed).reset(seed=0)
    assert [m["role"] for m in obs] == ["user"]


def test_an_own_system_prompt_replaces_the_default_and_a_wrong_type_names_the_field():
    obs, _ = single(system_prompt="Answer in one word.").reset(seed=0)
    assert obs[0] == {"role": "system", "content": "Answer in one word."}
    with pytest.raises(ConfigError, match="system_prompt"):
        single(system_prompt=42)


def test_the_default_marker_survives_pickling():
    assert pickle.loads(pickle.dumps(DEFAULT_PROMPT)) is DEFAULT_PROMPT


def test_cli_env_arg_system_prompt_null_removes_the_system_message():
    for env_id in ("rlvr/Math-v0", "rlvr/Arithmetic-v0", "rlvr/GuessNumber-v0"):
        result = runner.invoke(app, ["envs", "show", env_id, "-E", "system_prompt=null", "--json"])
        assert result.exit_code == 0, result.output
        roles = [m["role"] for m in json.loads(result.output)["sample"]["messages"]]
        assert roles == ["user"], (env_id, roles)
    kept = runner.invoke(app, ["envs", "show", "rlvr/Math-v0", "--json"])
    assert json.loads(kept.output)["sample"]["messages"][0]["role"] == "system"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("ux/Reverse-V0", "ux/Reverse-v0"), ("UX/reverse-v0", "ux/Reverse-v0"), ("ux/Reverse-v3", "ux/Reverse-v1"), ("ux/Revers-v0", "ux/Reverse-v0")],
)
def test_wrong_case_or_version_gets_rlvrs_own_did_you_mean(typed, meant):
    for v in (0, 1):
        E.register_env(f"ux/Reverse-v{v}", lambda **kw: single(**kw))
    try:
        with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
            E.make(typed)
    finally:
        for v in (0, 1):
            gymnasium.registry.pop(f"ux/Reverse-v{v}", None)
            E.registry._REG.records.pop(f"ux/Reverse-v{v}", None)


def test_cli_wrong_version_is_one_line_with_rlvrs_suggestion_and_exit_2(capsys, monkeypatch):
    from rlvr.cli import main

    monkeypatch.setattr(sys, "argv", ["rlvr", "envs", "show", "rlvr/Math-V1"])
    with pytest.raises(SystemExit) as e:
        main.run()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2
    assert err.count("\n") == 0 and "did you mean 'rlvr/Math-v0'" in err


@pytest.fixture
def wordguess(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    entry = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]["rlvr.envs"]
    (env_id, target), = entry.items()
    E.register_env(env_id, target)
    yield env_id
    gymnasium.registry.pop(env_id, None)
    E.registry._REG.records.pop(env_id, None)
    sys.modules.pop("acme_wordguess", None)


def test_the_multi_turn_example_passes_check_and_plays_a_real_game(wordguess):
    env = E.make(wordguess)
    report = E.check(env)
    assert report.ok and len(report.passed) >= 6
    obs, info = env.reset(seed=0)
    secret = info["task"]["reference"]
    wrong = "crane" if secret != "crane" else "plumb"
    obs, reward, terminated, truncated, step = env.step(wrong)
    assert not terminated and step["reward_components"] == {"valid": 1.0}
    assert len(obs[-1]["content"].split()[0]) == 5  # the letter marks
    obs, reward, terminated, _, step = env.step(secret.upper())
    assert terminated and step["success"] is True
    assert step["episode"]["reward_components"]["solved"] == 1.0
    assert reward == pytest.approx(1.0 + 0.5 * 5 / 6)
    assert E.describe(wordguess).kind == "multi-turn"


def test_the_multi_turn_example_is_truncated_at_its_turn_cap(wordguess):
    env = E.make(wordguess, max_turns=2)
    env.reset(seed=0)
    env.step("zzzzzzz")
    _, _, terminated, truncated, info = env.step("qqqqqqq")
    assert (terminated, truncated) == (False, True) and info["success"] is False
