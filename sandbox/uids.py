"""Leases of host uids that nothing else uses, one per running worker (root only).

A worker's programs run as its leased uid, so after each run "kill every process of this uid"
and "delete every temp file of this uid" touch only that run's leftovers. A lease is an
``flock`` on a file in a root-only directory: it is released by the kernel if this process
dies, so a crashed run never strands a uid. A uid that some process is already using (another
tool's, a rootless container's) is skipped.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass

from rlvr.errors import SandboxError

LOCK_DIR = "/run/rlvr-sandbox-uids" if os.path.isdir("/run") else "/tmp/rlvr-sandbox-uids"
PREFERRED_BASE = 1_500_000_000
SPAN = 4096


@dataclass
class UidLease:
    """A uid (and the same-numbered gid) held until ``release()``."""

    uid: int
    fd: int

    @property
    def gid(self) -> int:
        return self.uid

    def release(self) -> None:
        """Give the uid back (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _mapped_base() -> int:
    """A base uid inside this (possibly user-namespaced) system's uid map."""
    try:
        ranges = [tuple(map(int, line.split())) for line in open("/proc/self/uid_map")]
    except OSError:
        return PREFERRED_BASE
    for inside, _outside, count in ranges:
        if inside <= PREFERRED_BASE and PREFERRED_BASE + SPAN <= inside + count:
            return PREFERRED_BASE
    inside, _outside, count = max(ranges, key=lambda r: r[0] + r[2])
    if count < 2 * SPAN:
        raise SandboxError(f"the uid map has no room for {SPAN} sandbox uids (see /proc/self/uid_map)")
    return inside + count - SPAN - 1


def _uids_in_use() -> set[int]:
    used = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                used.add(os.stat(f"/proc/{name}").st_uid)
            except OSError:
                pass
    return used


def lease_uid() -> UidLease:
    """Lease a free uid; SandboxError when all are taken."""
    os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
    base = _mapped_base()
    in_use = _uids_in_use()
    for uid in range(base, base + SPAN):
        if uid in in_use:
            continue
        fd = os.open(os.path.join(LOCK_DIR, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidLease(uid, fd)
    raise SandboxError(f"all {SPAN} sandbox uids from {base} are leased (too many workers running at once)")



def kill_uid_processes(uid: int, budget_s: float = 5.0) -> int:
    """SIGKILL every live process of ``uid`` until none is left (zombies are left to their reaper)."""
    import signal
    import time

    killed = 0
    end = time.monotonic() + budget_s
    while time.monotonic() < end:
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if fields.get("Uid", "").split()[:1] == [str(uid)] and not fields.get("State", "").strip().startswith("Z"):
                pids.append(int(name))
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.002)
    return killed


__all__ = ["UidLease", "kill_uid_processes", "lease_uid"]
