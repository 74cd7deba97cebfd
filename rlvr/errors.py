"""The rlvr exception hierarchy: every message says what went wrong and how to fix it.

Model output never raises (it becomes a ``Score``/``ExecResult`` status); these are for bad
configuration and broken infrastructure, raised before any work starts where possible.
"""

from __future__ import annotations


class RlvrError(Exception):
    """Base class of every error rlvr raises on purpose."""


class ConfigError(RlvrError, ValueError):
    """A user's configuration is invalid; the message names the field and the fix."""

    def __init__(self, field: str, problem: str, fix: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        msg = f"{field}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class InputError(RlvrError, ValueError):
    """A user's input file or data is unusable (missing file, bad JSON on line N, ...)."""


class SandboxError(RlvrError, RuntimeError):
    """The sandbox itself could not run (backend missing, toolchain missing, engine down)."""


class DependencyError(RlvrError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"{package} is not installed (install it with: pip install 'rlvr[{extra}]')")


__all__ = ["RlvrError", "ConfigError", "InputError", "SandboxError", "DependencyError"]
