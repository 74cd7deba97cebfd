"""Code: multi-turn programming — write a program, see the first failing test, fix it, up to ``max_attempts``.

Every attempt is judged by the code verifier (``get_verifier("code")``: the program runs against
the task's tests in the sandbox, hack-resistant). A passing attempt ends the episode; a failing
one is answered with the verifier's report on the failing test, and the model tries again until
``max_attempts`` are used. Components:

* ``correct`` (weight 1): 1 when the final attempt passes every test;
* ``progress`` (weight 0 by default, an optional shaped reward): on each attempt, how much the
  best fraction of tests passed so far went up, so its episode total is the best fraction reached.

Tasks carry the test spec as their reference (``{"kind": "io", "cases": [...]}`` or
``{"kind": "assert", "test": ..., "entry_point": ...}``) and, for the reference check, a
``solution`` program in their metadata.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Mapping

from rlvr.envs import scoring
from rlvr.envs.core import DEFAULT_PROMPT, TextEnv, Turn
from rlvr.envs.registry import register_env
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.sources import as_source
from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.verifiers import Score

SAMPLE_TASKS = "code_sample.jsonl"
SYSTEM_PROMPT = (
    "You are an expert programmer. Reply with the complete solution in one ```python code block. "
    "If a test fails you will see the failure; then reply with the complete corrected code."
)


def sample_tasks_path() -> str:
    """The bundled 15 programming problems (assert-style functions and stdin/stdout programs)."""
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
        self._attempts = 0
        self._best = 0.0

    def on_reset(self, task: Task) -> None:
        self._attempts = 0
        self._best = 0.0

    def _row(self, action: str) -> dict[str, Any]:
        assert self.task is not None
        return {"completion": action, self.verifier.reference_key: self.task.reference}

    def _method(self) -> str:
        # judge_many returns per-test results (verdict, message, label) for precise feedback.
        return "judge_many" if hasattr(self.verifier, "judge_many") else "score_many"

    def respond(self, action: str) -> Turn:
        return self._judge(scoring.score(self.verifier, self._row(action), self._method()))

    async def arespond(self, action: str) -> Turn:
        return self._judge(await scoring.ascore(self.verifier, self._row(action), self._method()))

    def _judge(self, result: Any) -> Turn:
        score: Score = result if isinstance(result, Score) else result.score
        tests = () if isinstance(result, Score) else tuple(result.tests)
        self._attempts += 1
        passed = score.correct is True
        fraction = 1.0 if passed else max(0.0, min(1.0, float(score.reward)))
        gain = max(0.0, fraction - self._best)
        self._best = max(self._best, fraction)
        if passed:
            return Turn(done=True, rewards={"correct": 1.0, "progress": gain}, success=True, status="ok")
        left = self.max_attempts - self._attempts
        feedback = self.feedback(score, tests)
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

    def feedback(self, score: Score, tests: tuple = ()) -> str:
        """What the model is told about a failing attempt: the tally and the first failing test."""
        if score.status == "no_answer":
            return "No program found in your reply: put the complete code in one ```python block."
        lines = [ln for ln in score.detail.strip().splitlines() if ln.strip()]
        text = f"Your program {lines[0]}." if lines and lines[0].startswith("passed") else f"Your program did not pass the tests ({score.status})."
        failing = next((t for t in tests if t.verdict not in ("pass", "not_run")), None)
        if failing is not None:
            text += f"\nFirst failing test: {failing.label}\n{failing.verdict}: {failing.message}"
        elif len(lines) > 1:  # a verifier without per-test results: its report's first failure line
            text += f"\n{lines[1]}"
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
