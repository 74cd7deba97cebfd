"""Policy weights shared between the trainer and a generator process: shared-memory tensors + a version.

The trainer ``publish``es its parameters after every optimiser step (a copy into CPU tensors in
shared memory, then the version counter moves); the generator ``pull``s them into its own model
between decode steps, in place, so the rollout engine's view of the weights (and its captured
graphs) stays valid. One lock makes a copy all-or-nothing: a generator never runs with half of
step ``v`` and half of ``v + 1``. Versions are the trainer's optimiser step count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class SharedWeights:
    """Named CPU tensors in shared memory, a version counter and a lock (picklable to a spawned process)."""

    def __init__(self, tensors: dict[str, torch.Tensor], version: Any, lock: Any) -> None:
        self.tensors = tensors
        self._version = version
        self._lock = lock

    @classmethod
    def from_model(cls, model: torch.nn.Module, ctx: Any, version: int = -1) -> "SharedWeights":
        """Shared copies of ``model``'s parameters (by name; tied weights once), at ``version``."""
        tensors = {name: p.detach().to("cpu", copy=True).share_memory_() for name, p in model.named_parameters()}
        return cls(tensors, ctx.Value("q", int(version)), ctx.Lock())

    @property
    def version(self) -> int:
        """The version of the weights now in shared memory (-1 before the first publish)."""
        return int(self._version.value)

    def publish(self, model: torch.nn.Module, version: int) -> None:
        """Copy ``model``'s parameters in and mark them as ``version``."""
        params = dict(model.named_parameters())
        missing = set(self.tensors) - set(params)
        if missing:
            raise KeyError(f"the model lacks shared parameters {sorted(missing)[:3]}")
        with torch.no_grad(), self._lock:
            for name, shared in self.tensors.items():
                shared.copy_(params[name].detach())
            self._version.value = int(version)

    def pull(self, model: torch.nn.Module, known: int | None) -> int | None:
        """Copy the shared weights into ``model`` (in place) when they are newer than ``known``.

        Returns the version now in the model, or None when nothing changed.
        """
        if self._version.value == known or self._version.value < 0:
            return None
        params = dict(model.named_parameters())
        with torch.no_grad(), self._lock:
            for name, shared in self.tensors.items():
                params[name].data.copy_(shared)
            return int(self._version.value)


class WeightFollower:
    """A generator-side model that follows ``SharedWeights``: ``refresh()`` between decode steps."""

    def __init__(self, shared: SharedWeights, model: torch.nn.Module, guard: Callable[[], None] | None = None) -> None:
        self.shared = shared
        self.model = model
        self.guard = guard  # called on every refresh (the generator checks its parent is alive)
        self.version: int = -1
        self.updates = 0
        self.refresh()

    def refresh(self) -> int | None:
        """Take newer weights if there are any; returns the new version, or None."""
        if self.guard is not None:
            self.guard()
        new = self.shared.pull(self.model, self.version)
        if new is not None:
            self.version = new
            self.updates += 1
        return new


__all__ = ["SharedWeights", "WeightFollower"]
