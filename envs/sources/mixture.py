"""`Mixture`: draw tasks from several sources with weights that can change during training."""

from __future__ import annotations

import math
import threading
from typing import Mapping, Sequence

import numpy as np

from rlvr.envs.sources.base import TaskSource
from rlvr.envs.task import Task
from rlvr.errors import ConfigError

_MAX_SIZE = 2**31 - 1


class Mixture(TaskSource):
    """A weighted mixture: each draw picks a source with probability ``weight / Σ weights``.

    ``sources`` is ``{name: source}`` (or a list, named by each source's ``name``). Each task
    gets ``metadata["source"]`` = its source's name, and ``record`` feedback is forwarded to that
    source (so a curriculum inside a mixture still learns). ``get(i)`` is a deterministic draw
    seeded by ``(seed, i)``. ``set_weight`` re-weights at runtime (weight 0 pauses a source).
    """

    def __init__(
        self,
        sources: Mapping[str, TaskSource] | Sequence[TaskSource],
        weights: Mapping[str, float] | Sequence[float] | None = None,
        seed: int = 0,
        name: str = "mixture",
    ) -> None:
        if isinstance(sources, Mapping):
            named = dict(sources)
        else:
            named = {}
            for s in sources:
                if s.name in named:
                    raise ConfigError("sources", f"two sources are named {s.name!r}", "pass a {name: source} dict instead")
                named[s.name] = s
        if not named:
            raise ConfigError("sources", "a mixture needs at least one source")
        for n, s in named.items():
            if not isinstance(s, TaskSource):
                raise ConfigError(f"sources.{n}", f"is not a TaskSource ({type(s).__name__})")
        self.sources = named
        self.name = name
        self.seed = int(seed)
        self._lock = threading.Lock()
        if weights is None:
            w = {n: 1.0 for n in named}
        elif isinstance(weights, Mapping):
            missing = set(named) - set(weights)
            extra = set(weights) - set(named)
            if missing or extra:
                raise ConfigError("weights", f"must name every source exactly (missing {sorted(missing)}, unknown {sorted(extra)})")
            w = dict(weights)
        else:
            if len(weights) != len(named):
                raise ConfigError("weights", f"has {len(weights)} entries for {len(named)} sources")
            w = dict(zip(named, weights))
        self._weights: dict[str, float] = {}
        for n, v in w.items():
            self._set(n, v)
        self._check_total()

    def _set(self, name: str, weight: float) -> None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"weights.{name}", f"must be a finite number >= 0, got {weight!r}")
        self._weights[name] = float(weight)

    def _check_total(self) -> None:
        if sum(self._weights.values()) <= 0:
            raise ConfigError("weights", "at least one source needs a positive weight")

    @property
    def weights(self) -> dict[str, float]:
        """Current weights by source name."""
        return dict(self._weights)

    def set_weight(self, name: str, weight: float) -> None:
        """Change one source's weight (takes effect on the next draw)."""
        if name not in self.sources:
            raise ConfigError("name", f"{name!r} is not a source of this mixture", f"sources: {sorted(self.sources)}")
        with self._lock:
            old = self._weights[name]
            self._set(name, weight)
            try:
                self._check_total()
            except ConfigError:
                self._weights[name] = old
                raise

    def __len__(self) -> int:
        return min(_MAX_SIZE, sum(len(s) for s in self.sources.values()))

    def get(self, index: int) -> Task:
        i = self._check_index(index)
        return self.sample(np.random.default_rng([self.seed, i]))

    def sample(self, rng: np.random.Generator) -> Task:
        with self._lock:
            names = list(self._weights)
            p = np.array([self._weights[n] for n in names], dtype=float)
        pick = names[int(rng.choice(len(names), p=p / p.sum()))]
        task = self.sources[pick].sample(rng)
        return task.with_metadata(source=pick)

    def record(self, task: Task, success: bool) -> None:
        src = self.sources.get(task.metadata.get("source", ""))
        if src is not None:
            src.record(task, success)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={w:g}" for n, w in self._weights.items())
        return f"Mixture({parts})"


__all__ = ["Mixture"]
