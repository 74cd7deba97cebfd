"""Limits: every resource cap a sandboxed program runs under, validated when it is built."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from collections.abc import Mapping
from typing import Any

from rlvr.errors import ConfigError


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Limits:
    """Resource caps for one program run (and its compile step, for compiled languages).

    Every backend enforces the per-process caps with rlimits inside the sandbox; ``disk_mb`` is a
    private tmpfs size under bwrap and Docker (the local backend writes to the host disk and only
    ``max_file_mb`` bounds it). A value that makes no sense raises ``ConfigError`` naming the
    field, before any program runs.
    """

    time_limit_s: float = _help(
        "Wall-clock seconds the program may run before it is killed with all its descendants (status 'timeout').", 10.0
    )
    cpu_time_s: float | None = _help(
        "CPU seconds per process (RLIMIT_CPU, rounded up); None means the same as time_limit_s.", None
    )
    memory_mb: int = _help(
        "Memory per process in MiB: address space for Python/C/C++/Bash, data segment for JavaScript "
        "(V8 reserves virtual space it never uses). Exceeding it ends the run with status 'memory_limit'.",
        512,
    )
    stack_mb: int | None = _help(
        "Stack size per process in MiB (deep recursion in competitive programs needs more than the usual 8); "
        "None means 64, or half of memory_mb if that is less.",
        None,
    )
    max_processes: int = _help(
        "Processes plus threads the program may have alive at once (RLIMIT_NPROC in its own user "
        "namespace, or its own uid); a fork bomb hits this and fails to fork.",
        64,
    )
    max_output_bytes: int = _help(
        "Bytes of stdout and of stderr kept each; a program printing more is killed (status 'output_limit').",
        1_000_000,
    )
    max_file_mb: int = _help(
        "Largest single file the program may write, in MiB (RLIMIT_FSIZE): a longer write fails, and a program "
        "that does not ignore SIGXFSZ (C, C++, Bash) ends with status 'output_limit'.",
        64
    )
    disk_mb: int = _help(
        "Size in MiB of the private writable space: one tmpfs for the work dir, /tmp and /dev/shm under bwrap, "
        "one each under Docker; the local backend has no quota.",
        128,
    )
    max_open_files: int = _help("Open file descriptors per process (RLIMIT_NOFILE).", 256)
    cpus: float = _help("CPUs a Docker worker container may use (cgroup quota); other backends rely on RLIMIT_CPU.", 1.0)
    compile_time_limit_s: float = _help("Wall-clock seconds for the compile step of C and C++.", 30.0)
    compile_memory_mb: int = _help("Address-space cap in MiB for the compile step (compilers need more than programs).", 1024)

    def __post_init__(self) -> None:
        _positive_number(self, "time_limit_s", upper=24 * 3600)
        if self.cpu_time_s is not None:
            _positive_number(self, "cpu_time_s", upper=24 * 3600)
        _positive_int(self, "memory_mb", lower=16, upper=1 << 20)
        if self.stack_mb is not None:
            _positive_int(self, "stack_mb", lower=1, upper=1 << 20)
        _positive_int(self, "max_processes", lower=1, upper=1 << 16)
        _positive_int(self, "max_output_bytes", lower=1, upper=1 << 32)
        _positive_int(self, "max_file_mb", lower=1, upper=1 << 20)
        _positive_int(self, "disk_mb", lower=1, upper=1 << 20)
        _positive_int(self, "max_open_files", lower=16, upper=1 << 20)
        _positive_number(self, "cpus", upper=1024)
        _positive_number(self, "compile_time_limit_s", upper=24 * 3600)
        _positive_int(self, "compile_memory_mb", lower=64, upper=1 << 20)
        if self.stack_mb is not None and self.stack_mb >= self.memory_mb:
            raise ConfigError("limits.stack_mb", f"{self.stack_mb} MiB is not below memory_mb ({self.memory_mb} MiB)", "lower stack_mb or raise memory_mb")

    @property
    def stack(self) -> int:
        """Stack MiB actually applied (``stack_mb`` or its default)."""
        return self.stack_mb if self.stack_mb is not None else min(64, self.memory_mb // 2)

    @property
    def cpu_seconds(self) -> int:
        """Whole CPU seconds for RLIMIT_CPU (never below 1)."""
        return max(1, math.ceil(self.cpu_time_s if self.cpu_time_s is not None else self.time_limit_s))

    def replace(self, **changes: Any) -> "Limits":
        """A copy with some fields changed (validated again); unknown names raise ConfigError."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise ConfigError(f"limits.{name}", "is not a limit", f"known limits: {', '.join(sorted(known))}")
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Limits":
        """Build from a plain mapping (a config file's ``limits:`` section)."""
        return cls().replace(**dict(data))

    @classmethod
    def coerce(cls, limits: "Limits | Mapping[str, Any] | None", **defaults: Any) -> "Limits":
        """``limits`` as a ``Limits``: itself, a mapping of fields (over ``defaults``), or None
        (``defaults`` alone); anything else is a ConfigError. The one conversion every room uses."""
        if isinstance(limits, cls):
            return limits
        if limits is None:
            return cls().replace(**defaults) if defaults else cls()
        if isinstance(limits, Mapping):
            return cls().replace(**{**defaults, **dict(limits)})
        raise ConfigError("limits", f"must be a Limits or a dict of its fields, got {type(limits).__name__}",
                          "e.g. limits={'time_limit_s': 5, 'memory_mb': 256}")

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Field name -> help text, for CLI help and docs."""
        return {f.name: f.metadata["help"] for f in fields(cls)}


def _positive_number(obj: Limits, name: str, upper: float) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"limits.{name}", f"must be a number, got {value!r}")
    if not 0 < value <= upper:
        raise ConfigError(f"limits.{name}", f"must be in (0, {upper:g}], got {value!r}")


def _positive_int(obj: Limits, name: str, lower: int, upper: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"limits.{name}", f"must be a whole number, got {value!r}")
    if not lower <= value <= upper:
        raise ConfigError(f"limits.{name}", f"must be between {lower} and {upper}, got {value}")


__all__ = ["Limits"]
