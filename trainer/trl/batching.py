"""Row bookkeeping on TRL rollout batches: select, concatenate, shuffle by group, count.

A rollout batch is the dict TRL's ``GRPOTrainer._generate_and_score_completions`` returns: per-row
tensors with the ``G`` completions of a prompt in consecutive rows, prompts left-padded,
completion-aligned tensors right-padded, plus a few 0-dim scalars. Dynamic sampling needs to keep
some groups of one generation round and append groups from the next, which TRL cannot do; these
helpers do it without knowing anything about the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

# Left-padded (prompt side) keys and their padding value (None = the tokenizer's pad id).
PROMPT_KEYS: dict[str, float | None] = {"prompt_ids": None, "prompt_mask": 0}
# Right-padded (completion side) keys and their padding value; other 2-D tensors pad with 0.
COMPLETION_PAD: dict[str, float | None] = {"completion_ids": None, "completion_mask": 0, "tool_mask": 1}


def select_rows(batch: dict[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """Keep ``rows`` (a 1-D index tensor) of every per-row entry; 0-dim entries are kept as they are."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if value is None:
            out[key] = None
        elif isinstance(value, torch.Tensor):
            out[key] = value if value.ndim == 0 else value[rows.to(value.device)]
        elif isinstance(value, list):
            out[key] = [value[i] for i in rows.tolist()]
        else:
            out[key] = value
    return out


def _pad_to(t: torch.Tensor, width: int, value: float, left: bool) -> torch.Tensor:
    missing = width - t.size(1)
    if missing <= 0:
        return t
    filler = torch.full((t.size(0), missing, *t.shape[2:]), value, dtype=t.dtype, device=t.device)
    return torch.cat([filler, t] if left else [t, filler], dim=1)


def concat_rows(batches: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Concatenate rollout batches row-wise, re-padding prompt (left) and completion (right) tensors.

    0-dim tensors (batch-level scalars such as ``num_items_in_batch``) are dropped: they describe
    one round, and the caller recomputes whatever it needs for the combined batch.
    """
    if not batches:
        raise ValueError("concat_rows needs at least one batch")
    keys = list(batches[0])
    for b in batches[1:]:
        if set(b) != set(keys):
            raise ValueError(f"rollout batches disagree on keys: {sorted(keys)} vs {sorted(b)}")
    out: dict[str, Any] = {}
    for key in keys:
        values = [b[key] for b in batches]
        first = values[0]
        if first is None:
            out[key] = None
        elif isinstance(first, torch.Tensor) and first.ndim == 0:
            continue
        elif isinstance(first, torch.Tensor) and first.ndim == 1:
            out[key] = torch.cat(values)
        elif isinstance(first, torch.Tensor):
            left = key in PROMPT_KEYS
            pad = PROMPT_KEYS.get(key) if left else COMPLETION_PAD.get(key, 0)
            pad = pad_token_id if pad is None else pad
            width = max(v.size(1) for v in values)
            out[key] = torch.cat([_pad_to(v, width, pad, left) for v in values])
        elif isinstance(first, list):
            out[key] = [x for v in values for x in v]
        else:
            raise ValueError(f"cannot concatenate rollout field {key!r} of type {type(first).__name__}")
    return out


def group_permutation(num_rows: int, group_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A row permutation that shuffles whole groups and keeps each group's rows consecutive."""
    if num_rows % group_size:
        raise ValueError(f"{num_rows} rows do not split into groups of {group_size}")
    order = torch.randperm(num_rows // group_size, generator=generator)
    return (order[:, None] * group_size + torch.arange(group_size)[None, :]).reshape(-1)


def shuffle_groups(batch: dict[str, Any], group_size: int) -> dict[str, Any]:
    """Shuffle a rollout batch by whole groups (TRL shuffles rows, which splits groups)."""
    first = next(v for v in batch.values()
                 if isinstance(v, list) or (isinstance(v, torch.Tensor) and v.ndim > 0))
    return select_rows(batch, group_permutation(len(first), group_size))


__all__ = [
    "select_rows",
    "concat_rows",
    "group_permutation",
    "shuffle_groups",
]
