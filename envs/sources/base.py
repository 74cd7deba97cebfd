"""`TaskSource`: where an environment's tasks come from — random access by index, seeded sampling."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator, Sequence

import numpy as np

from rlvr.envs.task import Task
from rlvr.errors import ConfigError


class TaskSource(ABC):
    """A finite or practically endless collection of tasks.

    ``get(i)`` always returns the same task for the same ``i``; ``sample(rng)`` draws one with a
    NumPy generator (an environment passes its seeded ``np_random``, so a seeded ``reset``
    reproduces its task). ``record(task, success)`` is feedback for adaptive sources
    (curricula); plain sources ignore it.
    """

    name: str = "tasks"

    @abstractmethod
    def __len__(self) -> int:
        """Number of distinct indices ``get`` accepts."""

    @abstractmethod
    def get(self, index: int) -> Task:
        """The task at ``index`` (``0 <= index < len(self)``)."""

    def sample(self, rng: np.random.Generator) -> Task:
        """A task drawn uniformly with ``rng``."""
        n = len(self)
        if n <= 0:
            raise ConfigError("tasks", f"task source {self.name!r} is empty", "give it at least one task")
        return self.get(int(rng.integers(n)))

    def record(self, task: Task, success: bool) -> None:
        """Feedback after an episode on ``task`` ended (used by curricula; ignored here)."""

    def head(self, n: int) -> list[Task]:
        """The first ``n`` tasks."""
        return [self.get(i) for i in range(min(n, len(self)))]

    def __iter__(self) -> Iterator[Task]:
        for i in range(len(self)):
            yield self.get(i)

    def _check_index(self, index: int) -> int:
        n = len(self)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise ConfigError("index", f"must be an integer, got {index!r}")
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise ConfigError("index", f"{index} is out of range for {self.name!r} ({n} tasks)")
        return index

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, size={len(self)})"


class ListSource(TaskSource):
    """Tasks held in memory: a list of ``Task`` objects or ``{"prompt", "answer", ...}`` rows."""

    def __init__(
        self,
        tasks: Sequence[Task | dict[str, Any]],
        name: str = "list",
        prompt_key: str = "prompt",
        reference_key: str = "answer",
        id_key: str | None = None,
    ) -> None:
        self.name = name
        self._tasks: list[Task] = []
        for i, t in enumerate(tasks):
            if not isinstance(t, Task):
                t = Task.from_row(t, prompt_key=prompt_key, reference_key=reference_key, id_key=id_key, where=f"{name}[{i}]")
            if not t.id:
                t = Task(t.prompt, t.reference, t.metadata, f"{name}:{i}")
            self._tasks.append(t)
        if not self._tasks:
            raise ConfigError("tasks", f"task source {name!r} is empty", "give it at least one task")

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, index: int) -> Task:
        return self._tasks[self._check_index(index)]


__all__ = ["TaskSource", "ListSource"]
