"""The Linux calls the zygote needs that Python's standard library lacks (via ctypes), and /proc helpers."""

from __future__ import annotations

import os
import signal
import time

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 36, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LIBC = None
_CAPS = None  # (cap_last_cap, capset header, zeroed capset data), built once before any fork


def libc():
    """glibc with typed prctl/capset, loaded once: the zygote calls this before forking runs."""
    global _LIBC, _CAPS
    if _LIBC is None:
        import ctypes

        lib = ctypes.CDLL(None, use_errno=True)
        lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
        _CAPS = (last, ctypes.byref(Header(0x20080522, 0)), (Data * 2)())
        _LIBC = lib
    return _LIBC


def _check(ret: int, what: str) -> None:
    if ret != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, arg: int = 0) -> None:
    _check(libc().prctl(option, arg, 0, 0, 0), f"prctl({option})")


# clone(2) syscall numbers; elsewhere runs fall back to fork + unshare + fork (one process more).
CLONE_SYSCALL = {"x86_64": 56, "aarch64": 220, "riscv64": 220}.get(os.uname().machine)


def clone_fork(flags: int) -> int:
    """``os.fork()`` straight into new namespaces: the child is pid 1 of a new pid namespace.

    What ``os.fork`` does (Python's before/after-fork hooks around the kernel call), with
    CLONE_NEW* flags that ``fork()`` cannot pass; saves the extra process that ``unshare`` needs
    (CLONE_NEWPID only applies to children). The caller must be single-threaded (the zygote is).
    """
    import ctypes

    py = ctypes.pythonapi
    py.PyOS_BeforeFork()
    pid = libc().syscall(CLONE_SYSCALL, ctypes.c_long(flags | signal.SIGCHLD), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
    if pid == 0:
        py.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    py.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return pid


def unshare(flags: int) -> None:
    _check(libc().unshare(flags), "unshare")


def mount(src, target: str, fstype, flags: int, data=None) -> None:
    import ctypes

    def enc(s):
        return None if s is None else s.encode()
    _check(libc().mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(libc().umount2(target.encode(), flags), f"umount {target}")


def drop_capabilities() -> None:
    """Empty every capability set: bounding, ambient, effective, permitted, inheritable."""
    lib = libc()
    last, header, data = _CAPS
    for cap in range(last + 1):
        _check(lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop bounding capability")
    _check(lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    _check(lib.capset(header, data), "capset")


def remove_sysv_ipc(uid: int) -> None:
    """Remove the System V shared memory, semaphores and queues ``uid`` owns.

    Only an object's owner (or CAP_SYS_ADMIN, which the Docker worker does not have) may remove
    it, so a short-lived child does it as that uid.
    """
    found = []
    for kind in ("shm", "sem", "msg"):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                header = f.readline().split()
                rows = [dict(zip(header, line.split())) for line in f]
        except OSError:
            continue
        key = {"shm": "shmid", "sem": "semid", "msg": "msqid"}[kind]
        found += [(kind, int(r[key])) for r in rows if r.get("uid") == str(uid)]
    if not found:
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            lib = libc()
            for kind, ident in found:  # IPC_RMID is 0 for all three
                if kind == "shm":
                    lib.shmctl(ident, 0, None)
                elif kind == "sem":
                    lib.semctl(ident, 0, 0)
                else:
                    lib.msgctl(ident, 0, None)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def oom_kills() -> int:
    """OOM kills so far in this process's memory cgroup, as a container sees it (0 if unknown)."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def proc_status(pid: str) -> dict:
    """The Uid, PPid, NSsid and State lines of /proc/PID/status, split into fields."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("Uid", "PPid", "NSsid", "State"):
                    out[key] = val.split()
    except OSError:
        pass
    return out


def reap_all() -> None:
    """Reap every child that has already exited (never blocks)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_until_gone(select_pids, budget_s: float = 5.0) -> None:
    """SIGKILL every pid ``select_pids()`` yields until it yields none (a fork bomb keeps forking)."""
    end = time.monotonic() + budget_s
    while time.monotonic() < end:
        pids = list(select_pids())
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap_all()
        time.sleep(0.001)


def rm_tree(path: str) -> None:
    """Delete a file, link or directory tree; errors ignored (best effort cleanup)."""
    import shutil

    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass
