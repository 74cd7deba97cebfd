"""The backend interface and registry: a new backend is one module in this folder ending in
``@register_backend`` on its class (modules here are imported when the registry is first used).

A backend knows how to start a worker (a warm zygote inside its kind of isolation) and what
that isolation guarantees. Everything else (requests, limits, statuses, pools, compile caching)
is shared, so backends differ only where isolation differs.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from rlvr.errors import ConfigError
from rlvr.registry import Registry
from rlvr.sandbox.limits import Limits
from rlvr.sandbox.workers import Worker


@dataclass(frozen=True)
class Isolation:
    """What a backend guarantees beyond the rlimits every backend applies (used by docs and tests)."""

    host_files_hidden: bool  # the host's /etc, home and checkout are not visible
    network: bool  # no network at all (a private, empty network namespace)
    signals: bool  # the program cannot signal processes outside its own run (host, other runs)
    private_tmp: bool  # /tmp and /dev/shm are the run's own
    disk_quota: bool  # writes are capped by a size-limited tmpfs
    total_memory: bool  # all the run's processes together are capped (cgroup or container), not just each
    summary: str


class Backend(abc.ABC):
    """Starts workers of one isolation kind. Subclasses set the class attributes below."""

    name: ClassVar[str]
    rank: ClassVar[int]  # ``auto`` picks the available backend with the highest rank
    options: ClassVar[tuple[str, ...]] = ()  # keyword options Sandbox(...) passes through

    def __init__(self, limits: Limits, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            allowed = ", ".join(self.options) or "none"
            raise ConfigError(f"sandbox option {sorted(unknown)[0]!r}", f"is not an option of the {self.name} backend", f"options: {allowed}")
        self.limits = limits

    @classmethod
    @abc.abstractmethod
    def probe(cls) -> tuple[bool, str]:
        """(available, one-line detail) for this machine; cheap enough for ``rlvr doctor``."""

    @property
    @abc.abstractmethod
    def isolation(self) -> Isolation:
        """What this backend's workers guarantee on this machine."""

    @abc.abstractmethod
    def start_worker(self) -> Worker:
        """Start one warm worker (blocking until it is ready)."""

    def nproc(self, max_processes: int) -> int:
        """RLIMIT_NPROC giving the program ``max_processes`` on this backend."""
        return max_processes

    def check_limits(self, limits: Limits) -> None:
        """Raise ConfigError if per-run ``limits`` exceed what this sandbox's workers were built for.

        Workers are capped as a whole (a memory cgroup or a container) when they start, from
        the sandbox's limits; a run may ask for less, not more.
        """
        for name in CAPPED_PER_WORKER:
            if getattr(limits, name) > getattr(self.limits, name):
                raise ConfigError(f"limits.{name}", f"{getattr(limits, name)} exceeds the {getattr(self.limits, name)} this sandbox's workers were made with",
                                  "create the Sandbox with the larger limit")

    def worker_memory_bytes(self) -> int:
        """The cap on a whole worker: its largest step, its tmpfs, and the worker's own processes."""
        lim = self.limits
        return (max(lim.memory_mb, lim.compile_memory_mb) + 3 * lim.disk_mb + WORKER_OVERHEAD_MB) << 20

    def close(self) -> None:
        """Release what the backend holds beyond its workers (idempotent)."""


CAPPED_PER_WORKER = ("memory_mb", "compile_memory_mb", "disk_mb", "max_processes")
# Memory of a worker's zygote, runner and supervisor (and bwrap) beyond what its program uses.
WORKER_OVERHEAD_MB = 160

BACKENDS: Registry[type[Backend]] = Registry("sandbox backend", field="backend", package="rlvr.sandbox.backends")


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Make ``cls`` available as ``Sandbox(backend=cls.name)``."""
    BACKENDS.register(cls.name, cls)
    return cls


def backend_class(name: str) -> type[Backend]:
    """The backend class called ``name``; ConfigError with a suggestion otherwise."""
    return BACKENDS.get(name)


def backend_names() -> list[str]:
    """Registered backend names, strongest first."""
    return sorted(BACKENDS.names(), key=lambda n: -BACKENDS.get(n).rank)


__all__ = ["BACKENDS", "Backend", "Isolation", "backend_class", "backend_names", "register_backend"]
