"""Containment strategies: how one run is isolated from the next and cleaned up after.

``pidns`` (bwrap): the runner makes new mount, pid and IPC namespaces and one fresh tmpfs
    bound on /work, /tmp and /dev/shm; the supervisor is pid 1 of the new pid namespace, so
    "kill everything left" is ``kill(-1)`` and the kernel frees the tmpfs when the run ends.
``uid`` (root without namespaces: Docker workers, local as root): the program runs as a uid
    that nothing else uses; afterwards every process of that uid is killed and its files in
    the shared temp dirs deleted.
``pgroup`` (local, not root): own session under a child subreaper. Weakest: same uid as you.
"""

from __future__ import annotations

import abc
import os
import signal

from . import linux


class Strategy(abc.ABC):
    """The hooks the runner (R), supervisor (S) and program (P) call at fixed points."""

    namespaces = 0  # CLONE_NEW* flags every run gets afresh (its supervisor is then pid 1 of its own)

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg

    @abc.abstractmethod
    def prepare(self) -> str:
        """Before any request is read, already inside ``namespaces``: make the run's world; returns its work directory."""

    def in_supervisor(self) -> None:
        """In S, before the request is read."""

    def begin(self, req: dict, workdir: str) -> None:
        """In S, once the request is read and before its files are written."""

    def files_written(self, workdir: str) -> None:
        """In S, once the request's files are written."""

    def in_program(self) -> None:
        """In P, before limits apply: drop privileges."""

    @abc.abstractmethod
    def kill_all(self, pid: int) -> None:
        """In S, after each step: kill every process the step left."""

    def leave(self, workdir: str) -> None:
        """In S, after the last step and before answering: remove what the run left."""


class PidNamespace(Strategy):
    """bwrap: per-run mount/pid/IPC namespaces and one size-capped tmpfs."""

    namespaces = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC

    def prepare(self) -> str:
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        stage = self.cfg["stage_dir"]
        linux.mount("tmpfs", stage, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"size={int(self.cfg['disk_mb'])}m,mode=0755")
        for sub, target, mode in (("work", "/work", 0o755), ("tmp", "/tmp", 0o1777), ("shm", "/dev/shm", 0o1777)):
            os.mkdir(f"{stage}/{sub}")
            os.chmod(f"{stage}/{sub}", mode)
            linux.mount(f"{stage}/{sub}", target, None, linux.MS_BIND)
        linux.umount(stage)  # the three binds keep the tmpfs alive; nothing else can reach it
        return "/work"

    def in_supervisor(self) -> None:
        linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)

    def begin(self, req: dict, workdir: str) -> None:
        if int(req.get("disk_mb") or self.cfg["disk_mb"]) != int(self.cfg["disk_mb"]):
            linux.mount(None, workdir, None, linux.MS_REMOUNT | linux.MS_NOSUID | linux.MS_NODEV, f"size={int(req['disk_mb'])}m")

    def in_program(self) -> None:
        linux.drop_capabilities()

    def kill_all(self, pid: int) -> None:
        try:
            os.kill(-1, signal.SIGKILL)  # from pid 1 of the run's namespace: everyone but us
        except ProcessLookupError:
            pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


class DedicatedUid(Strategy):
    """Root without namespaces: the program runs as a uid nothing else uses."""

    def prepare(self) -> str:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        if self.cfg.get("ipcns"):
            linux.unshare(linux.CLONE_NEWIPC)
        return self.cfg["workdir"]

    def begin(self, req: dict, workdir: str) -> None:
        # The work dir is the worker's own fixed path, made afresh once the previous run has
        # been cleaned (a prepared runner must not touch it while another run is using it).
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        os.chmod(workdir, 0o700)
        self.before = {d: _entries(d) for d in self.cfg.get("wipe_dirs", [])}

    def files_written(self, workdir: str) -> None:
        uid, gid = self.cfg["uid"], self.cfg["gid"]
        for root, dirs, files in os.walk(workdir):
            os.lchown(root, uid, gid)
            for name in files + dirs:
                os.lchown(os.path.join(root, name), uid, gid)

    def in_program(self) -> None:
        os.setgroups([])
        os.setresgid(self.cfg["gid"], self.cfg["gid"], self.cfg["gid"])
        os.setresuid(self.cfg["uid"], self.cfg["uid"], self.cfg["uid"])
        linux.prctl(linux.PR_SET_DUMPABLE, 1)  # a uid change clears it: /proc/self would stay root's
        os.setsid()

    def _pids(self):
        uid = self.cfg["uid"]
        for name in os.listdir("/proc"):
            try:  # stat is cheap; read the status file only of the uid's own processes
                if name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid and linux.proc_status(name).get("State", ["Z"])[0] != "Z":
                    yield int(name)
            except OSError:
                pass

    def kill_all(self, pid: int) -> None:
        linux.kill_until_gone(self._pids)
        linux.reap_all()

    def leave(self, workdir: str) -> None:
        linux.rm_tree(workdir)  # a mount point (Docker's /work) stays, emptied
        wipe_owned(self.cfg.get("wipe_dirs", []), self.cfg["uid"], everything=bool(self.cfg.get("wipe_all")), known=getattr(self, "before", None))
        if self.cfg.get("sysv_cleanup"):  # no IPC namespace of its own: remove what the run created
            linux.remove_sysv_ipc(self.cfg["uid"])


class ProcessGroup(Strategy):
    """Not root, no namespaces: own session + child subreaper."""

    def prepare(self) -> str:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        return self.cfg["workdir"]

    def begin(self, req: dict, workdir: str) -> None:
        os.makedirs(workdir, mode=0o700, exist_ok=True)

    def in_program(self) -> None:
        os.setsid()

    def kill_all(self, pid: int) -> None:
        me, sid = str(os.getpid()), str(pid)

        def mine():
            for name in os.listdir("/proc"):
                if name.isdigit():
                    st = linux.proc_status(name)
                    if st.get("State", ["?"])[0] != "Z" and (st.get("PPid", [None])[0] == me or st.get("NSsid", [None])[-1] == sid):
                        yield int(name)
        linux.kill_until_gone(mine)
        linux.reap_all()

    def leave(self, workdir: str) -> None:
        linux.rm_tree(workdir)


def _entries(d: str) -> set:
    try:
        return {(e.name, e.inode()) for e in os.scandir(d)}
    except OSError:
        return set()


def wipe_owned(dirs, uid: int, everything: bool = False, known=None) -> None:
    """Delete the entries of ``dirs`` owned by ``uid`` (or all of them).

    ``known``: {dir: {(name, inode)}} seen before the run; those were there already (and are
    not the run's: a sticky temp dir lets nobody replace another's entry), so only the new
    ones are stat'ed — a busy host /tmp holds hundreds of entries.
    """
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        seen = known.get(d, set()) if known else set()
        for e in entries:
            if (e.name, e.inode()) in seen:
                continue
            try:
                if everything or e.stat(follow_symlinks=False).st_uid == uid:
                    linux.rm_tree(e.path)
            except OSError:
                pass


STRATEGIES = {"pidns": PidNamespace, "uid": DedicatedUid, "pgroup": ProcessGroup}
