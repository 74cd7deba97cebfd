"""The ``bwrap`` backend: bubblewrap namespaces around a warm zygote; per-run namespaces inside.

One bwrap per worker: every namespace unshared (user, pid, network, IPC, UTS, cgroup), the
host's /usr read-only, a sanitized /etc, the root and /dev remounted read-only,
``--die-with-parent``, ``--new-session``, an empty environment. As root, bwrap itself runs as a
leased unprivileged uid, so even an escape from the namespaces lands as nobody in particular.

Inside, the zygote keeps CAP_SYS_ADMIN and CAP_NET_ADMIN (in its own user namespace only) to
give every run new mount, pid, IPC and network namespaces (loopback up) with one fresh
size-capped tmpfs on /work, /tmp and /dev/shm; the program itself drops every capability and
gets a seccomp filter denying keyrings and new user namespaces. When a run ends, its pid
namespace's init kills everything left and the kernel frees its tmpfs and sockets: no process,
file, IPC object, socket or key survives into the next run, however the program tried.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

from rlvr.sandbox.backends.base import Backend, Isolation, register_backend
from rlvr.sandbox.backends.network import network_mode
from rlvr.sandbox.cgroups import memory_cgroups_available, worker_cgroup
from rlvr.sandbox.languages import PYTHON_PRELOAD
from rlvr.sandbox.rootfs import ETC_FILES, ETC_HOST_BINDS, PATH, SANDBOX_GID, SANDBOX_UID, program_env, system_python, usr_layout
from rlvr.sandbox.uids import lease_uid
from rlvr.sandbox.workers import ProcessWorker, Worker
from rlvr.sandbox.zygote import launch_argv

STAGE_DIR = "/.rlvr-run"
# Processes of the worker itself in the run's user namespace: bwrap's init, the zygote, this
# run's R and S, and the next run's prepared R and S.
WORKER_PROCESSES = 6


def _root_args() -> list[str]:
    """The read-only host runtime: /usr and the top-level dirs that live in or beside it."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name, kind in usr_layout():
        if kind.startswith("link:"):
            args += ["--symlink", kind[5:], f"/{name}"]
        else:
            args += ["--ro-bind", f"/{name}", f"/{name}"]
    python = os.path.realpath(system_python())
    if not python.startswith("/usr/"):  # e.g. a pyenv interpreter: bind its prefix too
        prefix = os.path.dirname(os.path.dirname(python))
        args += ["--ro-bind", prefix, prefix]
    return args


def bwrap_argv(etc_fds: dict[str, int], hostname: str = "sandbox") -> list[str]:
    """The bwrap command line for one worker, up to (not including) the command to run."""
    args = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--hostname", hostname,
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
        "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP", "--cap-add", "CAP_NET_ADMIN",
        *_root_args(),
        "--dir", "/etc",
    ]
    for path in ETC_HOST_BINDS:
        args += ["--ro-bind-try", path, path]
    for name, fd in etc_fds.items():
        args += ["--perms", "0644", "--file", str(fd), f"/etc/{name}"]
    args += [
        "--proc", "/proc", "--dev", "/dev",
        "--dir", "/work", "--dir", "/tmp", "--dir", STAGE_DIR,
        "--remount-ro", "/dev", "--remount-ro", "/",
        "--clearenv", "--setenv", "PATH", PATH, "--chdir", "/",
    ]
    return args


def _etc_pipes() -> dict[str, int]:
    """One pipe per sanitized /etc file, already filled, for bwrap's ``--file FD``."""
    fds = {}
    for name, text in ETC_FILES.items():
        r, w = os.pipe()
        os.write(w, text.encode())
        os.close(w)
        fds[name] = r
    return fds


@lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bwrap not installed (apt-get install bubblewrap)"
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{exe} does not run: {e}"
    fds = _etc_pipes()
    user = None
    lease = None
    try:
        if os.geteuid() == 0:
            lease = lease_uid()
            user = lease.uid
        kw = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
        r = subprocess.run([*bwrap_argv(fds), "/bin/sh", "-c", "true"], capture_output=True, text=True, timeout=20, pass_fds=tuple(fds.values()), **kw)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{version or exe} cannot start a sandbox: {e}"
    finally:
        for fd in fds.values():
            os.close(fd)
        if lease is not None:
            lease.release()
    if r.returncode != 0:
        return False, f"{version or exe} cannot create namespaces here: {r.stderr.strip()[:200]}"
    return True, f"{version}: all namespaces, read-only /usr, sanitized /etc, per-run pid/mount/IPC/network namespaces and tmpfs"


class BwrapBackend(Backend):
    """bubblewrap around a warm zygote, fresh namespaces per run."""

    name = "bwrap"
    rank = 30  # strongest per-run isolation and the fastest warm path: auto's first choice
    options = ("python", "fresh_network")

    def __init__(self, limits, python: str | None = None, fresh_network: bool = False) -> None:
        super().__init__(limits, python=python, fresh_network=fresh_network)
        self.python = python or system_python()
        self.netns = network_mode(fresh_network)

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        return _probe()

    @property
    def isolation(self) -> Isolation:
        cgroup = memory_cgroups_available()
        return Isolation(
            host_files_hidden=True, network=True, signals=True, private_tmp=True, disk_quota=True, total_memory=cgroup,
            summary="user/pid/net/ipc/uts/mount namespaces; per-run pid, mount, IPC and network namespaces; no keyrings; tmpfs quota"
            + ("; a memory cgroup per worker" if cgroup else "; memory capped per process only (no writable memory cgroup)"),
        )

    def nproc(self, max_processes: int) -> int:
        return max_processes + WORKER_PROCESSES

    def start_worker(self) -> Worker:
        cfg = {"strategy": "pidns", "stage_dir": STAGE_DIR, "disk_mb": self.limits.disk_mb, "netns": self.netns, "tmpdir": "/tmp",
               "preload": list(PYTHON_PRELOAD)}
        fds = _etc_pipes()
        lease = lease_uid() if os.geteuid() == 0 else None
        argv = [*bwrap_argv(fds), *launch_argv(self.python, cfg)]
        try:
            return ProcessWorker(
                argv, program_env(), user=lease.uid if lease else None, pass_fds=tuple(fds.values()),
                on_close=lease.release if lease else None, cgroup=worker_cgroup(self.worker_memory_bytes()), name="bwrap worker",
            )
        except BaseException:
            if lease:
                lease.release()
            raise
        finally:
            for fd in fds.values():
                os.close(fd)


register_backend(BwrapBackend)
