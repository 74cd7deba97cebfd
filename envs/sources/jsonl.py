"""`JsonlSource`: tasks from a JSON Lines file, one object per line."""

from __future__ import annotations

import json
from pathlib import Path

from rlvr.envs.sources.base import TaskSource
from rlvr.envs.task import Task
from rlvr.errors import InputError


class JsonlSource(TaskSource):
    """Read ``{"prompt": ..., "answer": ..., ...}`` rows (keys configurable) from ``path``.

    Every other key becomes task metadata (or only ``metadata_keys``); a ``metadata`` object is
    merged in. The file is read once, eagerly, so a bad line fails at construction with its
    line number rather than mid-training.
    """

    def __init__(
        self,
        path: str | Path,
        prompt_key: str = "prompt",
        reference_key: str = "answer",
        id_key: str | None = "id",
        metadata_keys: tuple[str, ...] | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such task file (give a path to a .jsonl file)")
        self._tasks: list[Task] = []
        with self.path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{self.path}:{lineno}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
                self._tasks.append(
                    Task.from_row(
                        row,
                        prompt_key=prompt_key,
                        reference_key=reference_key,
                        id_key=id_key,
                        metadata_keys=metadata_keys,
                        default_id=f"{self.name}:{lineno}",
                        where=where,
                    )
                )
        if not self._tasks:
            raise InputError(f"{self.path}: the file has no tasks")

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, index: int) -> Task:
        return self._tasks[self._check_index(index)]

    def __repr__(self) -> str:
        return f"JsonlSource({str(self.path)!r}, size={len(self)})"


__all__ = ["JsonlSource"]
