"""Parsing of repeated ``--option key=value`` flags into typed keyword arguments."""

from __future__ import annotations

import json
from typing import Any

from rlvr.errors import ConfigError


def parse_options(pairs: list[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``["mode=exact", "strict=true", "extractors=[\\"boxed\\"]"]`` -> kwargs; values parsed as JSON when they can be."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(flag, f"{pair!r} is not key=value", f"write e.g. {flag} mode=exact")
        key, raw = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key.isidentifier():
            raise ConfigError(flag, f"{key!r} is not an option name")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


__all__ = ["parse_options"]
