"""`Task`: one problem an environment poses — a prompt, a reference to judge against, metadata."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from rlvr.errors import InputError

Message = dict  # {"role": "system"|"user"|"assistant"|"tool", "content": str}


@dataclass(frozen=True)
class Task:
    """One problem.

    prompt:    the user's question (a string), or a list of chat messages to open the episode with.
    reference: what a verifier judges the answer against (an answer string, a test spec, ...).
    metadata:  anything else the environment or verifier needs (difficulty, source, solution, ...).
    id:        a stable identifier: the same task always gets the same id.
    """

    prompt: Any
    reference: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The task as ``{"prompt", "reference", "metadata"}`` (fresh copies, safe to mutate)."""
        return {
            "prompt": copy.deepcopy(self.prompt),
            "reference": copy.deepcopy(self.reference),
            "metadata": copy.deepcopy(dict(self.metadata)),
        }

    def with_metadata(self, **extra: Any) -> "Task":
        """A copy with more metadata keys."""
        return replace(self, metadata={**self.metadata, **extra})

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        *,
        prompt_key: str = "prompt",
        reference_key: str = "answer",
        id_key: str | None = None,
        metadata_keys: tuple[str, ...] | None = None,
        default_id: str = "",
        where: str = "row",
    ) -> "Task":
        """Build a task from a data row; ``InputError`` naming ``where`` if a field is missing."""
        if not isinstance(row, Mapping):
            raise InputError(f"{where}: expected an object with '{prompt_key}' and '{reference_key}', got {type(row).__name__}")
        for key in (prompt_key, reference_key):
            if key not in row:
                have = ", ".join(sorted(map(str, row))) or "nothing"
                raise InputError(f"{where}: missing field '{key}' (the row has: {have}; set prompt_key=/reference_key= to map yours)")
        prompt = row[prompt_key]
        if not _is_prompt(prompt):
            raise InputError(f"{where}: '{prompt_key}' must be a string or a list of {{role, content}} messages")
        if metadata_keys is None:
            skip = {prompt_key, reference_key, id_key}
            meta = {k: v for k, v in row.items() if k not in skip}
        else:
            meta = {k: row[k] for k in metadata_keys if k in row}
        if isinstance(row.get("metadata"), Mapping) and metadata_keys is None:
            meta = {**{k: v for k, v in meta.items() if k != "metadata"}, **row["metadata"]}
        task_id = str(row[id_key]) if id_key and row.get(id_key) is not None else default_id
        return cls(prompt=prompt, reference=row[reference_key], metadata=meta, id=task_id)


def _is_prompt(p: Any) -> bool:
    if isinstance(p, str):
        return True
    return isinstance(p, list) and bool(p) and all(
        isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in p
    )


__all__ = ["Task", "Message"]
