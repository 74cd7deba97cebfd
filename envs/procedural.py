"""`ProceduralEnv`: a single-turn environment over any registered task generator.

Each generator file registers its environment id with one line, e.g.
``register_env("rlvr/Arithmetic-v0", ProceduralEnv, kwargs={"generator": "arithmetic"})``.
"""

from __future__ import annotations

from typing import Any, Mapping

from rlvr.envs.generators.base import GeneratorConfig, TaskGenerator, get_generator
from rlvr.envs.rewards import Component
from rlvr.envs.core import DEFAULT_PROMPT
from rlvr.envs.single_turn import SingleTurnEnv, format_component
from rlvr.envs.sources import Curriculum, ProceduralSource, TaskSource
from rlvr.envs.task import Task
from rlvr.errors import ConfigError


class ProceduralEnv(SingleTurnEnv):
    """Generated reasoning problems, one answer each, judged by the generator's own verifier.

    Arguments: ``generator`` (a registered name), ``config``/``difficulty`` (its config),
    ``seed`` (the task stream's seed: task ``i`` is the same for the same seed), or ``tasks``
    (any TaskSource, e.g. a ``Curriculum`` or ``Mixture`` over this generator) instead.
    ``curriculum=True`` wraps the source in a default :class:`Curriculum`.
    Components: ``correct`` (weight 1) and ``format`` (weight 0: logged, not rewarded).
    """

    def __init__(
        self,
        generator: str | TaskGenerator = "arithmetic",
        *,
        config: GeneratorConfig | Mapping[str, Any] | None = None,
        difficulty: int | None = None,
        seed: int = 0,
        tasks: TaskSource | None = None,
        curriculum: bool | Mapping[str, Any] = False,
        format_weight: float = 0.0,
        rewards: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        system_prompt: str | None = DEFAULT_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        overrides = {} if difficulty is None else {"difficulty": difficulty}
        gen = get_generator(generator, config, **overrides) if isinstance(generator, str) else generator
        if not isinstance(gen, TaskGenerator):
            raise ConfigError("generator", f"expected a generator name or TaskGenerator, got {type(gen).__name__}")
        self.generator = gen
        if tasks is None:
            tasks = ProceduralSource(gen, seed=seed)
            if curriculum:
                tasks = Curriculum(tasks, start=gen.config.difficulty, **(dict(curriculum) if isinstance(curriculum, Mapping) else {}))
        components = [
            Component("correct", 1.0, gen.make_verifier(), help=f"1 when the answer is right ({gen.name})"),
            format_component(format_weight),
        ]
        super().__init__(tasks, components, rewards=rewards, reward_weights=reward_weights, system_prompt=system_prompt, render_mode=render_mode)
        self.description = gen.description()

    def solution(self, task: Task) -> str:
        """The generator's rendering of the reference answer."""
        return self.generator.solution(task)


__all__ = ["ProceduralEnv"]
