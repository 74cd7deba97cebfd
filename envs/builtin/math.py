"""Math: single-turn problems from any math task source, checked by ``MathVerifier`` plus a format component."""

from __future__ import annotations

from importlib import resources
from typing import Any, Mapping

from rlvr.envs.registry import register_env
from rlvr.envs.rewards import Component
from rlvr.envs.core import DEFAULT_PROMPT
from rlvr.envs.single_turn import SingleTurnEnv, format_component
from rlvr.envs.sources import as_source
from rlvr.envs.task import Task

SAMPLE_TASKS = "math_sample.jsonl"


def sample_tasks_path() -> str:
    """The bundled 32-problem sample set (used when no ``tasks`` are given)."""
    return str(resources.files("rlvr.envs.data").joinpath(SAMPLE_TASKS))


class MathEnv(SingleTurnEnv):
    """Math problems with one final answer, judged by symbolic equivalence (math-verify + sympy).

    ``tasks``: any task source — a ``.jsonl`` path, a local dataset path, a ``datasets.Dataset``,
    a list of rows, a TaskSource, or a generator name (default: the bundled sample set).
    ``prompt_key``/``reference_key`` name the fields of rows (e.g. ``problem``/``solution`` for
    MATH, ``question``/``answer`` for GSM8K after extracting its final number).
    Components: ``correct`` (``MathVerifier``, weight 1) and ``format`` (think/answer layout,
    weight ``format_weight``, default 0.1). ``math_options`` go to ``MathVerifier`` (e.g.
    ``{"strict": True}`` to accept only ``\\boxed{}`` or ``<answer>`` answers).
    """

    description = "Math problems, one final answer, judged by symbolic equivalence (math-verify) plus a format reward."

    def __init__(
        self,
        tasks: Any = None,
        *,
        prompt_key: str = "prompt",
        reference_key: str = "answer",
        format_weight: float = 0.1,
        math_options: Mapping[str, Any] | None = None,
        rewards: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        system_prompt: str | None = DEFAULT_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        source = as_source(sample_tasks_path() if tasks is None else tasks, prompt_key=prompt_key, reference_key=reference_key)
        components = [
            Component("correct", 1.0, "math", dict(math_options or {}), help="1 when the final answer equals the reference"),
            format_component(format_weight),
        ]
        super().__init__(source, components, rewards=rewards, reward_weights=reward_weights, system_prompt=system_prompt, render_mode=render_mode)

    def solution(self, task: Task) -> str:
        """The reference answer (the first one when several are accepted)."""
        ref = task.reference
        return str(ref[0] if isinstance(ref, (list, tuple)) and ref else ref)


register_env("rlvr/Math-v0", "rlvr.envs.builtin.math:MathEnv", description=MathEnv.description)

__all__ = ["MathEnv", "sample_tasks_path"]
