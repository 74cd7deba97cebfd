"""The ``local`` backend: a plain child process under rlimits. The weakest isolation; say so.

As root, each worker's programs run as a leased uid of their own (RLIMIT_NPROC only binds
non-root uids). Where the kernel lets root make namespaces, every run gets new mount, pid,
IPC and network namespaces in which the whole host is read-only and /tmp, /var/tmp and
/dev/shm are one fresh tmpfs of its own (so nothing a run writes outlives it, at any depth).
Otherwise the run shares the host's temp dirs and, after it, every process of its uid is killed
and every file of its uid in the world-writable dirs under /tmp, /var/tmp and /dev/shm deleted
(at any depth). Either way the program still *reads* the host's filesystem as that uid would
(world-readable files, /etc/passwd, the checkout if its permissions allow).

Not root: programs run as *your* uid in their own session under a child subreaper: they can
read and write whatever you can, reach the network, signal your processes, and leave files
for later runs. Use bwrap or Docker for anything you do not trust; the first local sandbox of
a process logs a warning saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import logging
from functools import lru_cache

from rlvr.sandbox.backends.base import Backend, Isolation, register_backend
from rlvr.sandbox.backends.network import network_mode
from rlvr.sandbox.cgroups import memory_cgroups_available, worker_cgroup
from rlvr.sandbox.languages import PYTHON_PRELOAD
from rlvr.sandbox.rootfs import program_env, system_python
from rlvr.sandbox.uids import kill_uid_processes, lease_uid
from rlvr.sandbox.workers import ProcessWorker, Worker
from rlvr.sandbox.zygote import launch_argv
from rlvr.sandbox.zygote.strategies import wipe_owned

log = logging.getLogger(__name__)

WIPE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


WARNED = False  # the one-time warning (per process) that local lacks what bwrap and docker give


@lru_cache(maxsize=2)
def _can_unshare(flags: int) -> bool:
    """Whether a root child here may create these namespaces (not in every container)."""
    code = f"import ctypes,sys; sys.exit(0 if ctypes.CDLL(None).unshare({flags}) == 0 else 1)"
    try:
        return subprocess.run([system_python(), "-I", "-c", code], timeout=10, capture_output=True).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _can_unshare_net() -> bool:
    return _can_unshare(0x40000000 | 0x08000000)


def _per_run_namespaces() -> bool:
    """Mount, pid, IPC and network namespaces per run: root where the kernel allows them."""
    return os.geteuid() == 0 and _can_unshare(0x00020000 | 0x20000000 | 0x08000000 | 0x40000000)


def lacks() -> list[str]:
    """The guarantees bwrap and docker give that local does not, on this machine."""
    if os.geteuid() != 0:
        return ["host files readable and writable (your own uid)", "network reachable", "your processes can be signalled",
                "/tmp and /dev/shm shared with you; files a run leaves there persist for later runs", "no disk quota"]
    out = ["host files readable (as a leased uid: world-readable files, /etc/passwd)"]
    if _per_run_namespaces():
        out.append("host directories and their names visible (read-only)")
    else:
        out += ["no private /tmp: concurrent runs of other workers can read a run's world-readable temp files",
                "no disk quota"]
        if not _can_unshare_net():
            out.append("network reachable")
    return out


def _own_process_count() -> int:
    uid, n = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                n += os.stat(f"/proc/{name}").st_uid == uid
            except OSError:
                pass
    return n


class LocalBackend(Backend):
    """Child process + rlimits + (as root) a dedicated uid and no network."""

    name = "local"
    rank = 10
    options = ("python", "fresh_network")

    def __init__(self, limits, python: str | None = None, fresh_network: bool = False) -> None:
        super().__init__(limits, python=python, fresh_network=fresh_network)
        self.netns_mode = network_mode(fresh_network)
        self.python = python or system_python()
        self.root = os.geteuid() == 0
        self.netns = self.root and _can_unshare_net()
        self.namespaces = _per_run_namespaces()
        self._base = tempfile.mkdtemp(prefix=f"rlvr-sbx-{os.getpid()}-")
        os.chmod(self._base, 0o711 if self.root else 0o700)
        self._stage = os.path.join(self._base, "stage")  # the runs' tmpfs is mounted here first, in their own namespace
        os.mkdir(self._stage, 0o700)
        _warn_once()
        self._nproc_extra = 0 if self.root else _own_process_count() + 32

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        python = system_python()
        if not os.access(python, os.X_OK):
            return False, f"no system Python at {python}"
        if os.geteuid() == 0:
            if _per_run_namespaces():
                how = "per-run namespaces, read-only host, private temp dirs, no network"
            else:
                how = "no network (private netns)" if _can_unshare_net() else "network NOT isolated"
            return True, f"child process + rlimits as a leased uid, {how}; weakest: lacks " + "; ".join(lacks())
        return True, "child process + rlimits as your own uid (not root): weakest: lacks " + "; ".join(lacks())

    @property
    def isolation(self) -> Isolation:
        return Isolation(
            host_files_hidden=False,
            network=self.netns,
            signals=self.root,
            private_tmp=self.namespaces,
            disk_quota=self.namespaces,
            total_memory=memory_cgroups_available(),
            summary="rlimits, own session, " + ("a leased uid, per-run namespaces, read-only host" if self.namespaces else
                                                "a leased uid and no network" if self.netns else "a leased uid" if self.root else "your own uid"),
        )

    def nproc(self, max_processes: int) -> int:
        return max_processes + self._nproc_extra

    def start_worker(self) -> Worker:
        cfg = {
            "parent_pid": os.getpid(),
            "workdir": os.path.join(self._base, f"w{len(os.listdir(self._base))}-{os.urandom(3).hex()}"),
            "preload": list(PYTHON_PRELOAD),
        }
        if not self.root:
            cfg["strategy"] = "pgroup"
            return ProcessWorker(launch_argv(self.python, cfg), program_env(), name="local worker")
        lease = lease_uid()
        if self.namespaces:
            cfg.update(strategy="pidns", uid=lease.uid, gid=lease.gid, stage_dir=self._stage, disk_mb=self.limits.disk_mb, netns=self.netns_mode,
                       readonly_root=True, mounts=[[d, 0o1777] for d in WIPE_DIRS], workdir="/tmp/work", tmpdir="/tmp")
        else:
            cfg.update(strategy="uid", uid=lease.uid, gid=lease.gid, worker_netns=self.netns, ipcns=self.netns, sysv_cleanup=not self.netns,
                       wipe_dirs=list(WIPE_DIRS))

        def on_close() -> None:  # the zygote is gone; its runs' setsid'd processes may not be
            kill_uid_processes(lease.uid)
            wipe_owned(WIPE_DIRS, lease.uid)
            lease.release()

        try:
            return ProcessWorker(launch_argv(self.python, cfg), program_env(), on_close=on_close,
                                 cgroup=worker_cgroup(self.worker_memory_bytes()), name="local worker")
        except BaseException:
            on_close()
            raise

    def close(self) -> None:
        shutil.rmtree(self._base, ignore_errors=True)


def _warn_once() -> None:
    global WARNED
    if not WARNED:
        WARNED = True
        log.warning("the local sandbox backend is the weakest: it lacks %s. Use bwrap or docker for untrusted code "
                    "(`rlvr doctor` shows which work here).", "; ".join(lacks()))


register_backend(LocalBackend)
