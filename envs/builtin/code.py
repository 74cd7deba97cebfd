"""Code: multi-turn programming — write a program, see the first failing public test, fix it, up to ``max_attempts``.

Every attempt is judged by the code verifier (``get_verifier("code")``: the program runs against
the task's tests in the sandbox, hack-resistant) on two test sets:

* **hidden tests** (the task's reference, row field ``tests``) decide the reward and never show
  up in the conversation, not even as a count;
* **public tests** (row field ``public_tests``, a spec of the same form) are the only source of
  feedback: the tally and the first failing public test, showing what ``feedback_reveals`` lists
  of ``input`` (the stdin or the call), ``expected`` (the expected output or the assert
  statement) and ``got`` (what the program printed or returned, or how it failed). A task
  without public tests gets "did not pass" and nothing more.

So expected outputs the feedback quotes are worth nothing to a policy that replays them (within
an episode, or stored somewhere to read back in a later one): only a program that solves the
hidden cases earns ``correct``. A passing attempt ends the episode; a failing one is answered
with the feedback until ``max_attempts`` are used. A test run that fails through no fault of the
program (a broken sandbox, a malformed spec: Score status ``error``) ends the episode with
status ``error``, which summaries count apart from wrong answers. Components:

* ``correct`` (weight 1): 1 when the final attempt passes every hidden test;
* ``progress`` (weight 0 by default, an optional shaped reward): on each attempt, how much the
  best fraction of hidden tests passed so far went up, so its episode total is the best fraction.

Tasks carry the hidden test spec as their reference (``{"kind": "io", "cases": [...]}`` or
``{"kind": "assert", "test": ..., "entry_point": ...}``), public tests in ``public_tests`` and,
for the reference check, a ``solution`` program in their metadata.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any, Mapping, Sequence

from rlvr.envs import scoring
from rlvr.envs.core import DEFAULT_PROMPT, TextEnv, Turn
from rlvr.envs.registry import register_env
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.sources import as_source
from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.verifiers import Score

SAMPLE_TASKS = "code_sample.jsonl"
REVEALABLE = ("input", "expected", "got")
SYSTEM_PROMPT = (
    "You are an expert programmer. Reply with the complete solution in one ```python code block. "
    "If a test fails you will see the failure; then reply with the complete corrected code."
)


def sample_tasks_path() -> str:
    """The bundled 15 programming problems (assert-style functions and stdin/stdout programs), each with public and hidden tests."""
    return str(resources.files("rlvr.envs.data").joinpath(SAMPLE_TASKS))


class CodeEnv(TextEnv):
    """Write a program; the environment runs the tests in the sandbox and feeds back the first failure."""

    description = "Multi-turn coding: programs run against tests in the sandbox; failing-test feedback, up to max_attempts."
    multi_turn = True
    blocking_respond = True

    def __init__(
        self,
        tasks: Any = None,
        *,
        prompt_key: str = "prompt",
        reference_key: str = "tests",
        public_tests_key: str = "public_tests",
        feedback_reveals: Sequence[str] = REVEALABLE,
        max_attempts: int = 3,
        verifier_options: Mapping[str, Any] | None = None,
        max_feedback_chars: int = 2000,
        rewards: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        system_prompt: str | None = DEFAULT_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 1 <= max_attempts <= 50:
            raise ConfigError("max_attempts", f"must be an integer from 1 to 50, got {max_attempts!r}")
        if isinstance(max_feedback_chars, bool) or not isinstance(max_feedback_chars, int) or max_feedback_chars < 100:
            raise ConfigError("max_feedback_chars", f"must be an integer >= 100, got {max_feedback_chars!r}")
        if not isinstance(public_tests_key, str) or not public_tests_key:
            raise ConfigError("public_tests_key", f"must be the name of the task field holding the public tests, got {public_tests_key!r}")
        if isinstance(feedback_reveals, str):
            feedback_reveals = [w.strip() for w in feedback_reveals.split(",") if w.strip()]
        if not isinstance(feedback_reveals, (list, tuple)) or any(w not in REVEALABLE for w in feedback_reveals):
            raise ConfigError("feedback_reveals", f"must list some of {', '.join(REVEALABLE)}, got {feedback_reveals!r}", "e.g. feedback_reveals=['input', 'got'] hides expected outputs")
        source = as_source(sample_tasks_path() if tasks is None else tasks, prompt_key=prompt_key, reference_key=reference_key)
        # Fraction mode: a failing attempt's reward is the share of tests passed (for ``progress``).
        self.verifier = scoring.shared_verifier("code", **{"reward_mode": "fraction", **dict(verifier_options or {})})
        rubric = Rubric.build(
            [
                Component("correct", 1.0, help="1 when the final attempt passes every test"),
                Component("progress", 0.0, help="gain in the best fraction of tests passed (shaped; sums to the best fraction)"),
            ],
            rewards,
            reward_weights,
            primary="correct",
        )
        super().__init__(source, rubric, system_prompt=SYSTEM_PROMPT if system_prompt is DEFAULT_PROMPT else system_prompt, max_turns=max_attempts, render_mode=render_mode)
        self.max_attempts = max_attempts
        self.max_feedback_chars = max_feedback_chars
        self.public_tests_key = public_tests_key
        self.feedback_reveals = tuple(w for w in REVEALABLE if w in feedback_reveals)
        self._attempts = 0
        self._best = 0.0

    def on_reset(self, task: Task) -> None:
        self._attempts = 0
        self._best = 0.0

    def _rows(self, action: str) -> list[dict[str, Any]]:
        """The hidden-test row, then the public-test row when the task has public tests."""
        assert self.task is not None
        key = self.verifier.reference_key
        rows = [{"completion": action, key: self.task.reference}]
        public = self.task.metadata.get(self.public_tests_key)
        if public is not None:
            rows.append({"completion": action, key: public})
        return rows

    def _method(self) -> str:
        # judge_many returns per-test results (verdict, message, label) for precise feedback.
        return "judge_many" if hasattr(self.verifier, "judge_many") else "score_many"

    def respond(self, action: str) -> Turn:
        futures = [scoring.submit(self.verifier, row, self._method()) for row in self._rows(action)]
        return self._judge(*[f.result() for f in futures])

    async def arespond(self, action: str) -> Turn:
        futures = [scoring.submit(self.verifier, row, self._method()) for row in self._rows(action)]
        return self._judge(*(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))))

    def _judge(self, hidden: Any, public: Any = None) -> Turn:
        score: Score = hidden if isinstance(hidden, Score) else hidden.score
        self._attempts += 1
        if score.status == "error":  # our fault or the task's, not the program's: end, unscored
            note = "The tests could not be run (a problem on our side, not in your program)."
            return Turn(reply=[{"role": "user", "content": note}], done=True, rewards={"correct": 0.0, "progress": 0.0}, success=False, status="error")
        passed = score.correct is True
        fraction = 1.0 if passed else max(0.0, min(1.0, float(score.reward)))
        gain = max(0.0, fraction - self._best)
        self._best = max(self._best, fraction)
        if passed:
            return Turn(done=True, rewards={"correct": 1.0, "progress": gain}, success=True, status="ok")
        left = self.max_attempts - self._attempts
        feedback = self.feedback(score, public)
        if left <= 0:
            return Turn(
                reply=[{"role": "user", "content": f"{feedback}\nNo attempts left."}],
                done=True,
                rewards={"correct": 0.0, "progress": gain},
                success=False,
                status=score.status,
            )
        note = f"{feedback}\nFix the program and reply with the complete code ({left} attempt{'s' if left > 1 else ''} left)."
        return Turn(reply=[{"role": "user", "content": note}], rewards={"progress": gain})

    def feedback(self, hidden: Score, public: Any = None) -> str:
        """What the model is told about a failing attempt: nothing from the hidden tests but "did not pass"."""
        if hidden.status == "no_answer":
            return "No program found in your reply: put the complete code in one ```python block."
        if public is None:
            return "Your program did not pass the tests."
        pscore: Score = public if isinstance(public, Score) else public.score
        tests = () if isinstance(public, Score) else tuple(public.tests)
        if pscore.status == "error":
            return "Your program did not pass the hidden tests (the public tests could not be run)."
        if pscore.correct is True:
            return "Your program passes the public tests but not the hidden tests."
        if tests:
            n_pass = sum(t.passed for t in tests)
            text = f"Your program passed {n_pass}/{len(tests)} public tests."
        else:
            text = f"Your program did not pass the public tests ({pscore.status})."
        failing = next((t for t in tests if t.verdict not in ("pass", "not_run")), None)
        if failing is not None:
            verdict = {"wrong": "wrong answer", "timeout": "time limit exceeded", "error": "error"}.get(failing.verdict, failing.verdict)
            text += f"\nFirst failing public test (test {failing.index + 1}): {verdict}"
            for field in self.feedback_reveals:
                value = getattr(failing, field, "")
                if value:
                    text += f"\n{field}: {value}"
        if len(text) > self.max_feedback_chars:
            text = text[: self.max_feedback_chars] + " ..."
        return text

    def format_response(self, answer: str) -> str:
        """Code in the python block the prompt asks for."""
        return f"```python\n{answer}\n```"

    def reference_action(self) -> str:
        """The task's reference ``solution`` program in a python block."""
        assert self.task is not None, "call reset() first"
        solution = self.task.metadata.get("solution")
        if not isinstance(solution, str):
            raise ConfigError("tasks", f"task {self.task.id} has no 'solution' program for the reference check")
        return self.format_response(solution)


register_env("rlvr/Code-v0", "rlvr.envs.builtin.code:CodeEnv", description=CodeEnv.description)

__all__ = ["CodeEnv", "sample_tasks_path"]
