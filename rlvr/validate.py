"""Small validators shared by every config: each raises :class:`~rlvr.errors.ConfigError`
naming the field, so a bad value fails before any work starts with the same wording everywhere."""

from __future__ import annotations

import math
from typing import Any

from rlvr.errors import ConfigError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(field: str, value: Any, *, fix: str | None = None) -> int:
    """``value`` if it is an int >= 1."""
    if not _is_int(value) or value < 1:
        raise ConfigError(field, f"must be a positive integer, got {value!r}", fix)
    return value


def non_negative_int(field: str, value: Any, *, fix: str | None = None) -> int:
    """``value`` if it is an int >= 0."""
    if not _is_int(value) or value < 0:
        raise ConfigError(field, f"must be an integer >= 0, got {value!r}", fix)
    return value


def int_in_range(field: str, value: Any, lower: int, upper: int, *, fix: str | None = None) -> int:
    """``value`` if it is an int with ``lower <= value <= upper``."""
    if not _is_int(value) or not lower <= value <= upper:
        raise ConfigError(field, f"must be an integer in [{lower}, {upper}], got {value!r}", fix)
    return value


def positive_number(field: str, value: Any, *, upper: float = math.inf, fix: str | None = None) -> float:
    """``value`` as a float if it is a finite number > 0 (and <= ``upper``)."""
    if _is_int(value) or isinstance(value, float):
        v = float(value)
        if math.isfinite(v) and 0 < v <= upper:
            return v
    bound = "" if upper == math.inf else f" and <= {upper:g}"
    raise ConfigError(field, f"must be a number > 0{bound}, got {value!r}", fix)


def non_negative_number(field: str, value: Any, *, fix: str | None = None) -> float:
    """``value`` as a float if it is a finite number >= 0."""
    if (_is_int(value) or isinstance(value, float)) and math.isfinite(float(value)) and value >= 0:
        return float(value)
    raise ConfigError(field, f"must be a number >= 0, got {value!r}", fix)


def probability(field: str, value: Any, *, fix: str | None = None) -> float:
    """``value`` as a float if it lies in [0, 1]."""
    if (_is_int(value) or isinstance(value, float)) and 0.0 <= float(value) <= 1.0:
        return float(value)
    raise ConfigError(field, f"must be a number in [0, 1], got {value!r}", fix)


def one_of(field: str, value: Any, choices: Any, *, kind: str | None = None) -> Any:
    """``value`` if it is one of ``choices``; did-you-mean otherwise."""
    from rlvr.registry import unknown_name_error

    if value in choices:
        return value
    raise unknown_name_error(field, kind or field, str(value), [str(c) for c in choices])


__all__ = ["positive_int", "non_negative_int", "int_in_range", "positive_number",
           "non_negative_number", "probability", "one_of"]
