"""`Curriculum`: raise the difficulty when the recent success rate is high (and lower it when low)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Sequence

import numpy as np

from rlvr.envs.sources.base import TaskSource
from rlvr.envs.sources.procedural import ProceduralSource
from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.validate import positive_int

log = logging.getLogger(__name__)


class Curriculum(TaskSource):
    """Serve tasks at the current level; move up a level once the success rate is high enough.

    ``levels`` is a ``ProceduralSource`` (levels are its difficulties ``1..max_difficulty``) or a
    list of sources, easiest first. After every ``window`` episodes finished *at the current
    level* (results from tasks handed out before a level change are ignored), the success rate
    is compared with ``raise_at`` (go up one level) and, if set, ``lower_at`` (go down one).
    Environments call ``record`` when an episode ends; ``history`` lists every level change as
    ``(episodes_recorded, new_level, success_rate)``.
    """

    def __init__(
        self,
        levels: ProceduralSource | Sequence[TaskSource],
        start: int = 1,
        window: int = 32,
        raise_at: float = 0.8,
        lower_at: float | None = None,
        name: str = "curriculum",
    ) -> None:
        if isinstance(levels, ProceduralSource):
            self._procedural: ProceduralSource | None = levels
            self._levels: dict[int, TaskSource] = {levels.difficulty: levels}
            self.max_level = levels.max_difficulty
        else:
            levels = list(levels)
            if not levels or not all(isinstance(s, TaskSource) for s in levels):
                raise ConfigError("levels", "must be a ProceduralSource or a non-empty list of task sources")
            self._procedural = None
            self._levels = {i + 1: s for i, s in enumerate(levels)}
            self.max_level = len(levels)
        if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start <= self.max_level:
            raise ConfigError("start", f"must be a level from 1 to {self.max_level}, got {start!r}")
        positive_int("window", window)
        if not 0.0 < raise_at <= 1.0:
            raise ConfigError("raise_at", f"must be in (0, 1], got {raise_at!r}")
        if lower_at is not None and not 0.0 <= lower_at < raise_at:
            raise ConfigError("lower_at", f"must be in [0, raise_at), got {lower_at!r}")
        self.name = name
        self.window = window
        self.raise_at = float(raise_at)
        self.lower_at = None if lower_at is None else float(lower_at)
        self._level = start
        self._recent: deque[bool] = deque(maxlen=window)
        self._recorded = 0
        self.history: list[tuple[int, int, float]] = []
        self._lock = threading.Lock()

    @property
    def level(self) -> int:
        """The current level (1 = easiest)."""
        return self._level

    def _source(self, level: int) -> TaskSource:
        src = self._levels.get(level)
        if src is None:
            assert self._procedural is not None
            src = self._levels[level] = self._procedural.at_difficulty(level)
        return src

    def __len__(self) -> int:
        return len(self._source(self._level))

    def get(self, index: int) -> Task:
        level = self._level
        return self._source(level).get(index).with_metadata(curriculum_level=level)

    def sample(self, rng: np.random.Generator) -> Task:
        level = self._level
        return self._source(level).sample(rng).with_metadata(curriculum_level=level)

    def record(self, task: Task, success: bool) -> None:
        with self._lock:
            if task.metadata.get("curriculum_level") != self._level:
                return
            self._recorded += 1
            self._recent.append(bool(success))
            if len(self._recent) < self.window:
                return
            rate = sum(self._recent) / len(self._recent)
            new = self._level
            if rate >= self.raise_at and self._level < self.max_level:
                new = self._level + 1
            elif self.lower_at is not None and rate <= self.lower_at and self._level > 1:
                new = self._level - 1
            if new != self._level:
                log.info("curriculum %s: level %d -> %d (success rate %.2f over %d episodes)", self.name, self._level, new, rate, len(self._recent))
                self._level = new
                self._recent.clear()
                self.history.append((self._recorded, new, rate))

    def __repr__(self) -> str:
        return f"Curriculum(level={self._level}/{self.max_level}, window={self.window}, raise_at={self.raise_at})"


__all__ = ["Curriculum"]
