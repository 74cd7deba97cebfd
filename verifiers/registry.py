"""Verifier registry: a name -> verifier class map, so the CLI and environment configs can say
``"math"`` or ``"code"``. A new verifier is one file ending in one ``register_verifier`` line."""

from __future__ import annotations

import difflib
from typing import Any

from rlvr.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register_verifier(name: str, cls: type) -> None:
    """Make ``cls`` constructible as ``get_verifier(name, **kwargs)``."""
    _REGISTRY[name] = cls


def verifier_names() -> list[str]:
    """Names of every registered verifier, sorted."""
    return sorted(_REGISTRY)


def registered_classes() -> list[type]:
    """Every registered verifier class (for pool preloading)."""
    return list(_REGISTRY.values())


def verifier_class(name: str) -> type:
    """The class registered as ``name``; a clear error with "did you mean" otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(verifier_names())}"
        raise ConfigError("verifier", f"unknown verifier {name!r}", hint) from None


def get_verifier(name: str, **kwargs: Any) -> Any:
    """Construct the verifier registered as ``name`` with its keyword options."""
    cls = verifier_class(name)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"verifier {name!r}", f"bad options: {e}", "see the verifier's docstring for its options") from None


__all__ = ["register_verifier", "get_verifier", "verifier_class", "verifier_names"]
