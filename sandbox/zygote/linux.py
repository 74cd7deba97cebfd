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


# ---------------------------------------------------------------- network namespace of a run

def loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace (as bwrap does for its own), so 127.0.0.1 works.

    Through libc rather than the socket module: a runner is a fork of the zygote, and importing
    ``socket`` there would cost every run ~2 ms.
    """
    import ctypes

    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP, AF_INET, SOCK_DGRAM = 0x8913, 0x8914, 0x1, 2, 2
    lib = libc()
    fd = lib.socket(AF_INET, SOCK_DGRAM, 0)
    if fd < 0:
        _check(-1, "socket")
    try:
        req = ctypes.create_string_buffer(b"lo", 40)  # struct ifreq: 16-byte name, then the flags
        _check(lib.ioctl(fd, ctypes.c_ulong(SIOCGIFFLAGS), req), "SIOCGIFFLAGS")
        flags = int.from_bytes(req.raw[16:18], "little") | IFF_UP
        req[16:18] = flags.to_bytes(2, "little")
        _check(lib.ioctl(fd, ctypes.c_ulong(SIOCSIFFLAGS), req), "SIOCSIFFLAGS")
    finally:
        os.close(fd)


# Per-network-namespace fields of /proc/net/sockstat{,6}: sockets in use and in TIME_WAIT.
# (The other fields, and /proc/net/tcp, which walks the host-wide hash table, are global or slow.)
_SOCKSTAT_OWN = {b"TCP:": (b"inuse", b"tw"), b"UDP:": (b"inuse",), b"UDPLITE:": (b"inuse",), b"RAW:": (b"inuse",),
                 b"FRAG:": (b"inuse",), b"TCP6:": (b"inuse",), b"UDP6:": (b"inuse",), b"UDPLITE6:": (b"inuse",),
                 b"RAW6:": (b"inuse",), b"FRAG6:": (b"inuse",)}


def net_fingerprint() -> tuple:
    """What a program could observe of this network namespace: its counters, devices and sockets.

    Two namespaces with equal fingerprints are indistinguishable to a program without
    capabilities: the SNMP/netstat counters (a run that connected anywhere moves them), the
    devices' packet counts, and how many sockets of each kind exist (TIME_WAIT included).
    """
    out = []
    for name in ("snmp", "snmp6", "netstat", "dev", "unix", "packet"):
        try:
            with open(f"/proc/self/net/{name}", "rb") as f:
                out.append(f.read())
        except OSError:
            out.append(None)
    for name in ("sockstat", "sockstat6"):
        try:
            with open(f"/proc/self/net/{name}", "rb") as f:
                for line in f:
                    words = line.split()
                    keep = _SOCKSTAT_OWN.get(words[0] if words else b"")
                    if keep:
                        out += [(words[0], words[i], words[i + 1]) for i in range(1, len(words) - 1) if words[i] in keep]
        except OSError:
            out.append(None)
    return tuple(out)


# ---------------------------------------------------------------- mounts

AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1
MOUNT_SETATTR_SYSCALL = 442  # the same number on every architecture (new syscalls are unified)


def readonly_tree(path: str = "/") -> None:
    """Make every mount at and below ``path`` read-only in this mount namespace."""
    import ctypes

    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
    lib = libc()
    if lib.syscall(ctypes.c_long(MOUNT_SETATTR_SYSCALL), ctypes.c_long(AT_FDCWD), ctypes.c_char_p(path.encode()),
                   ctypes.c_long(AT_RECURSIVE), attr, ctypes.c_long(32)) == 0:
        return
    # Older kernels: remount each mount point read-only, keeping its other flags.
    flag_names = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    for row in rows:
        target = row[4].replace("\\040", " ")
        if target == path or target.startswith(path.rstrip("/") + "/"):
            flags = MS_REMOUNT | MS_BIND | 1  # MS_RDONLY
            for opt in row[5].split(","):
                flags |= flag_names.get(opt, 0)
            try:
                mount(None, target, None, flags)
            except OSError:
                pass


# ---------------------------------------------------------------- reading what a run left

def read_run_file(workdir: str, name: str, uid: int, max_bytes: int):
    """Bytes of ``workdir/name`` if the run's uid could read it itself; (data, None) or (None, why).

    Never follows a link (O_NOFOLLOW on every component), never blocks on a FIFO or device
    (O_NONBLOCK, then regular files only), and takes only a file owned by ``uid`` with one link:
    a hard link to a file the run does not own (``/etc/shadow``) is refused, so a supervisor
    with more privileges than the run never reads for it what it could not read itself.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        dfd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        return None, f"work directory: {e.strerror}"
    try:
        parts = [p for p in name.split("/") if p]
        for part in parts[:-1]:
            nfd = os.open(part, flags | os.O_DIRECTORY, dir_fd=dfd)
            os.close(dfd)
            dfd = nfd
        fd = os.open(parts[-1], flags, dir_fd=dfd)
    except OSError as e:
        os.close(dfd)
        return None, f"{name}: {e.strerror}"
    os.close(dfd)
    try:
        import stat

        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"{name} is not a regular file"
        if st.st_uid != uid or st.st_nlink != 1:
            return None, f"{name} is not the run's own file"
        if st.st_size > max_bytes:
            return None, f"{name} is larger than {max_bytes} bytes"
        chunks, got = [], 0
        while got <= max_bytes:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > max_bytes:
            return None, f"{name} is larger than {max_bytes} bytes"
        return b"".join(chunks), None
    except OSError as e:
        return None, f"{name}: {e.strerror}"
    finally:
        os.close(fd)
