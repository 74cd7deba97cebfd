"""The TextEnv contract: observations, rewards as named components, transcripts, errors."""

from __future__ import annotations

import gymnasium
import pytest
from gymnasium.error import ResetNeeded

import rlvr.envs as E
from rlvr.envs import Component, ListSource, Rubric, SingleTurnEnv, TextEnv, Turn
from rlvr.errors import ConfigError

TASKS = [{"prompt": "What is 2+2?", "answer": "4"}, {"prompt": "What is 3*3?", "answer": "9"}]


def exact_env(**kw) -> SingleTurnEnv:
    return SingleTurnEnv(ListSource(TASKS), [Component("correct", 1.0, "string", {"mode": "exact"}), E.single_turn.format_component(0.1)], **kw)


class Echo(TextEnv):
    """A multi-turn test env: the model must say 'done'; every turn earns a turn-level 'step' value."""

    multi_turn = True

    def __init__(self, max_turns: int = 3, render_mode: str | None = None) -> None:
        rubric = Rubric([Component("step", 0.1), Component("finished", 1.0)], primary="finished")
        super().__init__(ListSource([{"prompt": "Say done.", "answer": "done"}]), rubric, max_turns=max_turns, render_mode=render_mode)

    def respond(self, action: str) -> Turn:
        if action.strip() == "done":
            return Turn(done=True, rewards={"step": 1.0, "finished": 1.0}, success=True, status="ok")
        return Turn(reply=[{"role": "user", "content": "Not yet."}], rewards={"step": 1.0})

    def reference_action(self) -> str:
        return "done"


def test_reset_returns_the_conversation_and_the_task_info_of_the_contract():
    env = exact_env()
    obs, info = env.reset(seed=0)
    assert [m["role"] for m in obs] == ["system", "user"]
    assert obs[1]["content"] in {t["prompt"] for t in TASKS}
    assert set(info) >= {"task", "task_id", "env_id"}
    assert set(info["task"]) == {"prompt", "reference", "metadata"}
    assert info["task"]["prompt"] == obs[1]["content"]


def test_step_reward_is_the_weighted_sum_of_named_components_and_terminal_info_is_complete():
    env = exact_env()
    _, info = env.reset(seed=0)
    answer = info["task"]["reference"]
    obs, reward, terminated, truncated, info = env.step(f"<think>\nsum\n</think>\n<answer>\n{answer}\n</answer>")
    assert (terminated, truncated) == (True, False)
    assert info["reward_components"] == {"correct": 1.0, "format": 1.0}
    assert info["reward_weights"] == {"correct": 1.0, "format": 0.1}
    assert reward == pytest.approx(1.1)
    assert info["success"] is True and info["status"] == "ok"
    assert info["episode"]["turns"] == 1
    assert info["episode"]["messages"] == obs
    assert obs[-1] == {"role": "assistant", "content": f"<think>\nsum\n</think>\n<answer>\n{answer}\n</answer>"}


def test_a_wrong_answer_is_a_scored_failure_not_an_exception():
    env = exact_env()
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("<answer>5000</answer>")
    assert terminated and reward == 0.0
    assert info["success"] is False and info["status"] == "wrong"


def test_reward_weights_and_extra_components_are_configurable_without_subclassing():
    env = exact_env(reward_weights={"format": 0.0}, rewards={"short": {"fn": lambda answer, task: float(len(answer) < 40), "weight": 0.5}})
    _, info = env.reset(seed=1)
    _, reward, _, _, info = env.step(f"<answer>{info['task']['reference']}</answer>")
    assert info["reward_components"] == {"correct": 1.0, "format": 0.0, "short": 1.0}
    assert reward == pytest.approx(1.5)


def test_a_reward_function_that_raises_scores_zero_with_an_error_status_instead_of_crashing():
    def broken(answer, task):
        raise RuntimeError("boom")

    env = exact_env(rewards={"broken": {"fn": broken, "weight": 1.0}})
    _, info = env.reset(seed=0)
    _, reward, _, _, info = env.step(f"<answer>{info['task']['reference']}</answer>")
    assert info["reward_components"]["broken"] == 0.0
    assert info["scores"]["broken"]["status"] == "error" and "boom" in info["scores"]["broken"]["detail"]


def test_bad_reward_config_fails_at_construction_naming_the_field():
    with pytest.raises(ConfigError, match="reward_weights.nope"):
        exact_env(reward_weights={"nope": 1.0})
    with pytest.raises(ConfigError, match="unknown verifier"):
        exact_env(rewards={"x": {"verifier": "no-such-verifier"}})
    with pytest.raises(ConfigError, match="weight"):
        exact_env(reward_weights={"format": float("nan")})


def test_multi_turn_episode_records_model_and_env_roles_and_turn_level_rewards():
    env = Echo()
    env.reset(seed=0)
    obs, r1, term, _, info1 = env.step("hmm")
    assert not term and info1["reward_components"] == {"step": 1.0} and r1 == pytest.approx(0.1)
    assert [m["role"] for m in obs] == ["user", "assistant", "user"]
    obs, r2, term, _, info2 = env.step("done")
    assert term and r2 == pytest.approx(1.1)
    assert info2["episode"]["reward"] == pytest.approx(1.2)
    assert info2["episode"]["reward_components"] == {"step": 2.0, "finished": 1.0}
    assert [m["role"] for m in info2["episode"]["messages"]] == ["user", "assistant", "user", "assistant"]
    assert info2["episode"]["turns"] == 2


def test_an_episode_that_reaches_max_turns_is_truncated_with_terminal_info():
    env = Echo(max_turns=2)
    env.reset(seed=0)
    env.step("a")
    _, reward, terminated, truncated, info = env.step("b")
    assert (terminated, truncated) == (False, True)
    assert info["success"] is False and info["status"] == "no_answer"
    assert info["reward_components"] == {"step": 1.0, "finished": 0.0}


def test_step_before_reset_or_after_the_end_asks_for_reset():
    env = exact_env()
    with pytest.raises(ResetNeeded):
        env.step("x")
    env.reset(seed=0)
    env.step("x")
    with pytest.raises(ResetNeeded):
        env.step("x")


def test_non_text_actions_are_a_caller_bug_but_any_text_is_fine():
    env = exact_env()
    env.reset(seed=0)
    with pytest.raises(TypeError, match="str"):
        env.step(42)  # type: ignore[arg-type]
    obs, reward, terminated, _, info = env.step("\ud800 broken surrogate " + "x" * 2_000_000)
    assert terminated and reward == 0.0
    assert obs in env.observation_space


def test_reset_options_pick_a_task_by_index_or_give_one_inline():
    env = exact_env()
    _, info = env.reset(options={"index": 1})
    assert info["task"]["prompt"] == TASKS[1]["prompt"]
    _, info = env.reset(options={"task": {"prompt": "Name a prime.", "reference": "2"}})
    assert info["task"]["reference"] == "2"
    _, reward, _, _, _ = env.step("<answer>2</answer>")
    assert reward == pytest.approx(1.0)


def test_ansi_render_shows_the_transcript():
    env = Echo(render_mode="ansi")
    env.reset(seed=0)
    env.step("hmm")
    text = env.render()
    assert "[user]\nSay done." in text and "[assistant]\nhmm" in text


def test_unsupported_render_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="render_mode"):
        Echo(render_mode="rgb_array")


def test_gymnasium_make_returns_the_env_itself_so_async_methods_are_reachable():
    env = gymnasium.make("rlvr/Arithmetic-v0")
    assert isinstance(env, TextEnv)
    assert callable(env.astep) and callable(env.areset)


def test_importing_and_making_every_environment_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys, gymnasium, rlvr.envs as E\n"
        "for i in E.env_ids(): gymnasium.make(i).reset(seed=0)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
