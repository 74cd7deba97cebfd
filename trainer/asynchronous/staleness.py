"""Bounded off-policyness: how stale a group is, and which groups a step may train on.

A group's staleness is the trainer's current version minus the version of its *oldest* model
token (an episode that spanned a weight update has tokens of several versions). A step takes
groups at most ``k`` versions behind and drops staler ones (counted, then regenerated, so no
prompt is lost). Pure functions: unit-testable without processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

# Per-token version of a token the model did not write (environment turns, chat-template glue).
NOT_SAMPLED = -1


def oldest_version(token_versions: Sequence[Sequence[int]]) -> int | None:
    """The oldest version among model-written tokens of some episodes (None when there are none)."""
    found = [v for versions in token_versions for v in versions if v != NOT_SAMPLED]
    return min(found) if found else None


def group_staleness(token_versions: Sequence[Sequence[int]], group_size: int, version: int) -> list[int]:
    """Staleness of each group of ``group_size`` consecutive episodes at trainer ``version``.

    A group without any model token (every episode cut before the first token) counts as fresh.
    """
    if group_size < 1 or len(token_versions) % group_size:
        raise ValueError(f"{len(token_versions)} episodes do not split into groups of {group_size}")
    out = []
    for start in range(0, len(token_versions), group_size):
        oldest = oldest_version(token_versions[start : start + group_size])
        out.append(0 if oldest is None else max(0, version - oldest))
    return out


def stale_groups(staleness: Sequence[int], k: int) -> list[int]:
    """Indices of groups more than ``k`` versions behind (to drop and regenerate)."""
    return [i for i, s in enumerate(staleness) if s > k]


def histogram(staleness: Sequence[int], k: int) -> dict[str, float]:
    """``async/staleness_hist/<s>``: the fraction of groups at each staleness 0..k (and ``>k``)."""
    if not staleness:
        return {}
    counts = Counter(min(s, k + 1) for s in staleness)
    n = len(staleness)
    out = {f"async/staleness_hist/{s}": counts.get(s, 0) / n for s in range(k + 1)}
    out[f"async/staleness_hist/>{k}"] = counts.get(k + 1, 0) / n
    return out


__all__ = ["NOT_SAMPLED", "oldest_version", "group_staleness", "stale_groups", "histogram"]
