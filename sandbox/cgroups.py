"""A memory cgroup per worker (root, local and bwrap backends): the cap rlimits cannot give.

RLIMIT_AS caps each process, so a run with ``max_processes`` processes could still hold
``max_processes x memory_mb`` of the host's memory. A worker's cgroup caps the whole run (and
its tmpfs pages) at ``memory_mb + disk_mb`` plus the worker's own overhead; the kernel's OOM
killer then picks the program (it sets its ``oom_score_adj`` to 1000), and the OOM-kill counter
tells the host that the run died of memory. Docker workers get the same from the engine.

Best effort: needs root and a writable memory controller (cgroup v1, or v2 with the controller
delegated); otherwise ``MemoryCgroup.create`` returns None and runs keep their rlimits only.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PREFIX = "rlvr-sbx-"


class MemoryCgroup:
    """One worker's memory cgroup."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls, name: str, limit_bytes: int) -> "MemoryCgroup | None":
        """A new cgroup under this process's own, capped at ``limit_bytes``; None where impossible."""
        if os.geteuid() != 0:
            return None
        try:
            base, version = _own_memory_cgroup()
            if base is None:
                return None
            _remove_stale(base, version)
            path = base / name
            path.mkdir()
        except OSError as e:
            log.debug("no memory cgroup: %s", e)
            return None
        cg = cls(path, version)
        try:
            if version == 1:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                if (path / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            else:
                (path / "memory.max").write_text(str(limit_bytes))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
        except OSError as e:
            log.debug("memory cgroup %s unusable: %s", path, e)
            cg.destroy()
            return None
        return cg

    def adopt_tree(self, pid: int) -> None:
        """Move ``pid`` and all its descendants in (children forked after their parent moved follow it)."""
        todo = [pid]
        while todo:
            p = todo.pop()
            try:
                (self.path / "cgroup.procs").write_text(str(p))
            except OSError:
                continue  # exited meanwhile
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
            except OSError:
                pass

    def oom_kills(self) -> int:
        """How many processes the kernel has OOM-killed in this cgroup so far."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def destroy(self) -> None:
        """Kill anything left inside and remove the cgroup (idempotent)."""
        for _ in range(100):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.01)
        log.warning("could not remove memory cgroup %s", self.path)


@lru_cache(maxsize=1)
def memory_cgroups_available() -> bool:
    """Whether workers here can get a memory cgroup (tried once per process)."""
    cg = MemoryCgroup.create(f"{PREFIX}{os.getpid()}-probe", 1 << 30)
    if cg is None:
        return False
    cg.destroy()
    return True


def worker_cgroup(limit_bytes: int) -> "MemoryCgroup | None":
    """A fresh cgroup for one worker of this process (named after the process, for stale cleanup)."""
    return MemoryCgroup.create(f"{PREFIX}{os.getpid()}-{os.urandom(4).hex()}", limit_bytes)


def _remove_stale(base: Path, version: int) -> None:
    """Remove worker cgroups left by host processes that no longer exist."""
    for d in base.glob(f"{PREFIX}*"):
        try:
            pid = int(d.name[len(PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            MemoryCgroup(d, version).destroy()
        except (ValueError, PermissionError):
            pass


def _own_memory_cgroup() -> tuple[Path | None, int]:
    """(directory of this process's memory cgroup, cgroup version), or (None, 0)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = ROOT / "memory" / path.lstrip("/")
            return (base, 1) if base.is_dir() else (None, 0)
    for line in lines:
        if line.startswith("0::"):
            base = ROOT / line[3:].lstrip("/")
            controllers = (base / "cgroup.subtree_control")
            if controllers.exists() and "memory" in controllers.read_text().split():
                return base, 2
    return None, 0


__all__ = ["MemoryCgroup", "memory_cgroups_available", "worker_cgroup"]
