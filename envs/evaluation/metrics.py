"""Evaluation metrics as pure functions (the trainer reuses them for its own eval logs).

pass@k is the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models
Trained on Code", eq. 1): with ``n`` samples of a task of which ``c`` are correct,
``pass@k = 1 - C(n-c, k) / C(n, k)``, computed per task and then averaged over tasks.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping, Sequence

from rlvr.errors import ConfigError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn (without replacement) from ``n`` is correct.

    ``c`` of the ``n`` samples are correct. Exact: Python's integer binomials have no overflow
    and ``int / int`` is correctly rounded, so there is no need for the product-form trick.
    """
    if not (n >= 1 and 1 <= k <= n and 0 <= c <= n):
        raise ConfigError("k", f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}",
                          "draw at least k samples per task")
    if n - c < k:  # every draw of k samples contains a correct one
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(groups: Iterable[Sequence[bool]], k: int) -> float | None:
    """pass@k averaged over tasks; ``groups`` holds each task's per-sample successes.

    Tasks with fewer than ``k`` samples (e.g. an interrupted run) are left out; None when no
    task has ``k`` samples.
    """
    values = [pass_at_k(len(g), sum(bool(x) for x in g), k) for g in groups if len(g) >= k]
    return sum(values) / len(values) if values else None


def k_values(k_max: int) -> list[int]:
    """The k's a report shows: 1, 2, 4, ... up to ``k_max``, and ``k_max`` itself."""
    ks = [1]
    while ks[-1] * 2 <= k_max:
        ks.append(ks[-1] * 2)
    if ks[-1] != k_max:
        ks.append(k_max)
    return ks


def pass_at_k_curve(groups: Sequence[Sequence[bool]], k_max: int) -> dict[int, float]:
    """``{k: mean pass@k}`` for every k in :func:`k_values` that some task has samples for."""
    out = {}
    for k in k_values(k_max):
        value = mean_pass_at_k(groups, k)
        if value is not None:
            out[k] = value
    return out


def mean_and_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and population standard deviation; (None, None) for no values."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def component_means(components: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of every reward component over episodes; an episode without a component counts 0 for it."""
    if not components:
        return {}
    names = sorted({name for c in components for name in c})
    return {name: sum(float(c.get(name, 0.0)) for c in components) / len(components) for name in names}


def status_counts(statuses: Iterable[str]) -> dict[str, int]:
    """``{status: count}``, most common first."""
    return dict(Counter(statuses).most_common())


__all__ = ["pass_at_k", "mean_pass_at_k", "pass_at_k_curve", "k_values", "mean_and_std", "component_means", "status_counts"]
