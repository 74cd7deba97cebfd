"""The ``local`` backend: a plain child process under rlimits. The weakest isolation; say so.

As root, each worker's programs run as a leased uid of their own (RLIMIT_NPROC only binds
non-root uids), in a private empty network namespace and IPC namespace, and after every run
every process of that uid is killed and its files in /tmp, /var/tmp and /dev/shm deleted. The
program still sees the host's filesystem as that uid would (world-readable files, /etc/passwd,
the checkout if its permissions allow) and the host's process list.

Not root: programs run as *your* uid in their own session under a child subreaper: they can
read and write whatever you can, reach the network, and signal your processes. Use bwrap or
Docker for anything you do not trust.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import lru_cache

from rlvr.sandbox.backends.base import Backend, Isolation, register_backend
from rlvr.sandbox.cgroups import memory_cgroups_available, worker_cgroup
from rlvr.sandbox.languages import PYTHON_PRELOAD
from rlvr.sandbox.rootfs import program_env, system_python
from rlvr.sandbox.uids import kill_uid_processes, lease_uid
from rlvr.sandbox.workers import ProcessWorker, Worker
from rlvr.sandbox.zygote import launch_argv
from rlvr.sandbox.zygote.strategies import wipe_owned

WIPE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


@lru_cache(maxsize=1)
def _can_unshare_net() -> bool:
    """Whether a root child here may create a network namespace (not in every container)."""
    code = "import ctypes,sys; sys.exit(0 if ctypes.CDLL(None).unshare(0x40000000|0x08000000) == 0 else 1)"
    try:
        return subprocess.run([system_python(), "-I", "-c", code], timeout=10, capture_output=True).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


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
    options = ("python",)

    def __init__(self, limits, python: str | None = None) -> None:
        super().__init__(limits, python=python)
        self.python = python or system_python()
        self.root = os.geteuid() == 0
        self.netns = self.root and _can_unshare_net()
        self._base = tempfile.mkdtemp(prefix=f"rlvr-sbx-{os.getpid()}-")
        os.chmod(self._base, 0o711 if self.root else 0o700)
        self._nproc_extra = 0 if self.root else _own_process_count() + 32

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        python = system_python()
        if not os.access(python, os.X_OK):
            return False, f"no system Python at {python}"
        if os.geteuid() == 0:
            net = "no network (private netns)" if _can_unshare_net() else "network NOT isolated"
            return True, f"child process + rlimits as a leased uid, {net}; host files visible: weakest isolation"
        return True, "child process + rlimits as your own uid (not root): no file, network or process isolation; weakest"

    @property
    def isolation(self) -> Isolation:
        return Isolation(
            host_files_hidden=False,
            network=self.netns,
            signals=self.root,
            private_tmp=False,
            disk_quota=False,
            total_memory=memory_cgroups_available(),
            summary="rlimits, own session, " + ("a leased uid and no network" if self.netns else "a leased uid" if self.root else "your own uid"),
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
        cfg.update(strategy="uid", uid=lease.uid, gid=lease.gid, netns=self.netns, ipcns=self.netns, sysv_cleanup=not self.netns,
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


register_backend(LocalBackend)
