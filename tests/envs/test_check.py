"""rlvr.envs.check: every built-in passes; broken and hackable environments are caught."""

from __future__ import annotations

import gymnasium
import pytest

import rlvr.envs as E
from rlvr.envs import Component, ListSource, Rubric, SingleTurnEnv, TextEnv, Turn
from rlvr.envs.registry import env_record

BUILTINS = [i for i in E.env_ids() if env_record(i).origin == "builtin"]
TASKS = [{"prompt": f"What is {a}+{a}?", "answer": str(2 * a)} for a in range(1, 6)]


def test_every_issue_listed_builtin_is_registered():
    for env_id in ("rlvr/Math-v0", "rlvr/Arithmetic-v0", "rlvr/Countdown-v0", "rlvr/LinearEquation-v0", "rlvr/GuessNumber-v0",
                   "rlvr/LetterCounting-v0", "rlvr/BaseConversion-v0"):
        assert env_id in BUILTINS


@pytest.mark.parametrize("env_id", BUILTINS)
def test_every_builtin_passes_check(env_id):
    report = E.check(gymnasium.make(env_id))
    assert report.ok
    assert "reference answer earns full reward" in report.passed
    assert "answer spam is not rewarded" in report.passed


@pytest.mark.parametrize("env_id", ["rlvr/Arithmetic-v0", "rlvr/Countdown-v0", "rlvr/LinearEquation-v0", "rlvr/GuessNumber-v0"])
def test_builtins_pass_check_at_the_hardest_difficulty_too(env_id):
    assert E.check(gymnasium.make(env_id, difficulty=10), seeds=(5, 6)).ok


def _answers_anything(answer, task):
    return 1.0  # a "verifier" that rewards every answer: the classic reward hack


def test_check_catches_a_verifier_that_rewards_everything():
    env = SingleTurnEnv(ListSource(TASKS), [Component("correct", 1.0, _answers_anything)])
    report = E.check(env, raise_on_failure=False)
    assert not report.ok
    assert any(p.startswith("empty answer earns zero") for p in report.problems)
    assert any(p.startswith("answer spam is not rewarded") for p in report.problems)


def test_check_catches_a_verifier_that_takes_the_last_of_many_numbers_as_a_list_answer():
    def any_number_listed(answer, task):
        return float(str(task.reference) in answer.replace("<answer>", " ").replace("</answer>", " ").split())

    env = SingleTurnEnv(ListSource(TASKS), [Component("correct", 1.0, any_number_listed)])
    report = E.check(env, raise_on_failure=False)
    assert any("spam" in p for p in report.problems)


def test_check_catches_a_reference_path_that_does_not_earn_full_reward():
    class WrongReference(SingleTurnEnv):
        def solution(self, task):
            return "not the answer"

    env = WrongReference(ListSource(TASKS), [Component("correct", 1.0, "string")])
    with pytest.raises(E.EnvCheckError, match="reference path earned 0"):
        E.check(env)


def test_check_catches_an_episode_that_never_ends():
    class Endless(TextEnv):
        def respond(self, action):
            return Turn(reply=[{"role": "user", "content": "again"}])

        def reference_action(self):
            return "x"

    env = Endless(ListSource(TASKS), Rubric([Component("correct", 1.0, "string")]), max_turns=10**6)
    report = E.check(env, seeds=(0,), raise_on_failure=False)
    assert any("did not end within" in p for p in report.problems)


def test_check_catches_seeds_that_do_not_reproduce_tasks():
    import random

    class Unseeded(SingleTurnEnv):
        def _pick_task(self, options):
            return self.tasks.get(random.randrange(len(self.tasks)))

    env = Unseeded(ListSource(TASKS), [Component("correct", 1.0, "string")])
    report = E.check(env, raise_on_failure=False)
    assert any(p.startswith("seeds reproduce tasks") or p.startswith("gymnasium check_env") for p in report.problems)


def test_check_error_lists_every_problem():
    env = SingleTurnEnv(ListSource(TASKS), [Component("correct", 1.0, _answers_anything)])
    with pytest.raises(E.EnvCheckError) as err:
        E.check(env)
    assert len(err.value.problems) >= 2
    assert all(p in str(err.value) for p in err.value.problems)
