"""`ProceduralSource`: endless tasks from a generator, each reproducible from ``(seed, index)``."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rlvr.envs.generators.base import GeneratorConfig, TaskGenerator, get_generator
from rlvr.envs.sources.base import TaskSource
from rlvr.envs.task import Task
from rlvr.errors import ConfigError

DEFAULT_SIZE = 2**31 - 1


class ProceduralSource(TaskSource):
    """Task ``i`` is ``generator.generate(default_rng([seed, difficulty, i]))``: random access, no storage.

    ``generator`` is a registered name or a ``TaskGenerator``; ``config``/keyword fields (for a
    name) set its config, e.g. ``ProceduralSource("arithmetic", difficulty=3, seed=7)``.
    """

    def __init__(
        self,
        generator: str | TaskGenerator,
        config: GeneratorConfig | Mapping[str, Any] | None = None,
        seed: int = 0,
        size: int = DEFAULT_SIZE,
        **fields: Any,
    ) -> None:
        if isinstance(generator, str):
            generator = get_generator(generator, config, **fields)
        elif config is not None or fields:
            generator = type(generator)(config or generator.config, **fields)
        if not isinstance(generator, TaskGenerator):
            raise ConfigError("generator", f"expected a generator name or TaskGenerator, got {type(generator).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError("seed", f"must be a non-negative integer, got {seed!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= DEFAULT_SIZE:
            raise ConfigError("size", f"must be an integer from 1 to {DEFAULT_SIZE}, got {size!r}")
        self.generator = generator
        self.seed = int(seed)
        self.size = int(size)
        self.name = generator.name

    @property
    def difficulty(self) -> int:
        """The generator's difficulty level."""
        return int(self.generator.config.difficulty)

    @property
    def max_difficulty(self) -> int:
        """The highest difficulty level the generator supports."""
        return int(self.generator.config.max_difficulty)

    def at_difficulty(self, difficulty: int) -> "ProceduralSource":
        """The same source (seed, size, other knobs) at another difficulty level."""
        return ProceduralSource(self.generator.with_config(difficulty=difficulty), seed=self.seed, size=self.size)

    def __len__(self) -> int:
        return self.size

    def get(self, index: int) -> Task:
        i = self._check_index(index)
        d = self.difficulty
        problem = self.generator.generate(np.random.default_rng([self.seed, d, i]))
        meta = {"generator": self.name, "difficulty": d, "seed": self.seed, "index": i, **problem.metadata}
        return Task(prompt=problem.question, reference=problem.answer, metadata=meta, id=f"{self.name}/d{d}/s{self.seed}/{i}")

    def __repr__(self) -> str:
        return f"ProceduralSource({self.generator!r}, seed={self.seed})"


__all__ = ["ProceduralSource"]
