"""Verifier registry: a name -> verifier class map, so the CLI and environment configs can say
``"math"`` or ``"code"``.

A new verifier is one file in this folder ending in one registration, nothing else::

    @register_verifier("judge")
    class JudgeVerifier(Verifier): ...

Every module of ``rlvr.verifiers`` is imported the first time a name is looked up or listed, so
the new file needs no import line in ``__init__.py``. Third-party verifiers register through the
entry-point group ``rlvr.verifiers`` (``name = "package.module:VerifierClass"``).
"""

from __future__ import annotations

from typing import Any

from rlvr.errors import ConfigError
from rlvr.registry import Registry

VERIFIERS: Registry[type] = Registry("verifier", package="rlvr.verifiers")
_plugins_loaded = False


def register_verifier(name: str, cls: type | str | None = None) -> Any:
    """Make ``cls`` constructible as ``get_verifier(name, **kwargs)``; a class decorator without ``cls``."""
    return VERIFIERS.register(name) if cls is None else VERIFIERS.register(name, cls)


def _load_plugins() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        VERIFIERS.load_entry_points("rlvr.verifiers")


def verifier_names() -> list[str]:
    """Names of every registered verifier, sorted."""
    _load_plugins()
    return VERIFIERS.names()


def registered_classes() -> list[type]:
    """Every registered verifier class (for pool preloading)."""
    return [cls for _, cls in VERIFIERS.items()]


def verifier_class(name: str) -> type:
    """The class registered as ``name``; a clear error with "did you mean" otherwise."""
    if name not in VERIFIERS:
        _load_plugins()
    return VERIFIERS.get(name)


def get_verifier(name: str, **kwargs: Any) -> Any:
    """Construct the verifier registered as ``name`` with its keyword options."""
    cls = verifier_class(name)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"verifier {name!r}", f"bad options: {e}", "see the verifier's docstring for its options") from None


__all__ = ["VERIFIERS", "register_verifier", "get_verifier", "verifier_class", "verifier_names"]
