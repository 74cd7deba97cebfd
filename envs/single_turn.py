"""`SingleTurnEnv`: ask one question, score one answer — the shape of math and reasoning tasks."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

from rlvr.envs.core import DEFAULT_PROMPT, TextEnv, Turn
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.sources.base import TaskSource
from rlvr.envs.task import Task

#: The R1-Zero style instruction: reason in <think>, answer in <answer>.
THINK_ANSWER_PROMPT = (
    "Think about the problem step by step inside <think> </think> tags, then give only the final "
    "answer inside <answer> </answer> tags, for example:\n"
    "<think>\nreasoning here\n</think>\n<answer>\nfinal answer here\n</answer>"
)


def format_component(weight: float) -> Component:
    """The think/answer layout component (``FormatVerifier``), with ``weight``."""
    return Component("format", weight, "format", help="1 when the response is <think>...</think> then <answer>...</answer>")


class SingleTurnEnv(TextEnv):
    """One question, one answer; the answer is scored by the rubric's final components.

    ``tasks`` is any task source; ``rewards``/``reward_weights`` adjust the default components
    (see :meth:`rlvr.envs.rewards.Rubric.build`). The default system prompt is
    :data:`THINK_ANSWER_PROMPT` (reason in ``<think>``, answer in ``<answer>``); pass your own
    string, or ``system_prompt=None`` for none when the task's prompt gives its own instructions.
    """

    DEFAULT_SYSTEM_PROMPT: ClassVar[str | None] = THINK_ANSWER_PROMPT

    def __init__(
        self,
        tasks: TaskSource,
        components: Sequence[Component],
        *,
        rewards: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        system_prompt: str | None = DEFAULT_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        rubric = Rubric.build(components, rewards, reward_weights, primary="correct")
        super().__init__(tasks, rubric, system_prompt=system_prompt, max_turns=1, render_mode=render_mode)

    def respond(self, action: str) -> Turn:
        """Every answer ends the episode; the rubric scores it."""
        return Turn(done=True)

    def solution(self, task: Task) -> str:
        """The answer a perfect response gives (default: the reference as text)."""
        return str(task.reference)

    def format_response(self, answer: str) -> str:
        """``answer`` in the think/answer layout the system prompt asks for."""
        return f"<think>\nThe answer follows.\n</think>\n<answer>\n{answer}\n</answer>"

    def reference_answer(self) -> str | None:
        """The current task's solution, unformatted."""
        return None if self.task is None else self.solution(self.task)

    def reference_action(self) -> str:
        """The reference solution in the requested layout."""
        assert self.task is not None, "call reset() first"
        return self.format_response(self.solution(self.task))


__all__ = ["SingleTurnEnv", "THINK_ANSWER_PROMPT", "format_component"]
