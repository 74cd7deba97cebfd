"""Containment strategies: how one run is isolated from the next and cleaned up after.

``pidns`` (bwrap, Docker, local as root): the runner makes new mount, pid and IPC namespaces
    and one fresh tmpfs bound on every writable place; the supervisor is pid 1 of the new pid
    namespace, so "kill everything left" is ``kill(-1)`` and the kernel frees the tmpfs when
    the run ends; the run's network namespace holds nothing an earlier run left. As real root
    (Docker, local) the program also runs as a uid of its own.
``uid`` (root where namespaces are refused: Docker under AppArmor, local in some containers):
    the program runs as a uid that nothing else uses; afterwards every process of that uid is
    killed and its files in the shared temp dirs deleted, at any depth.
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

    def in_zygote(self, notify_fd: int) -> None:
        """In the zygote, once, before any runner: ``notify_fd`` is where a supervisor asks for ``refresh_network``."""

    def refresh_network(self) -> None:
        """In the zygote, when a supervisor found the shared network namespace used."""

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

    def run_uid(self) -> int:
        """The uid the program runs as (whose files the supervisor may read for it)."""
        return os.getuid()

    @abc.abstractmethod
    def kill_all(self, pid: int) -> None:
        """In S, after each step: kill every process the step left."""

    def leave(self, workdir: str) -> None:
        """In S, after the last step and before answering: remove what the run left."""


class PidNamespace(Strategy):
    """Per-run mount/pid/IPC/network namespaces and one size-capped tmpfs (bwrap, Docker, local as root).

    cfg: ``stage_dir`` (an empty directory to mount the run's tmpfs on), ``disk_mb``,
    ``mounts`` ([target, mode] pairs bound to directories of that one tmpfs; the first is the
    work dir unless ``workdir`` names one to make inside them), ``netns`` (``run``: a new
    network namespace per run; ``clean``: one that no earlier run has changed, see
    ``refresh_network``; loopback up either way), ``uid``/``gid`` (the program's uid when the
    supervisor is real root: Docker, local), ``readonly_root`` (remount every host mount
    read-only for the run: local).
    """

    def __init__(self, cfg: dict) -> None:
        super().__init__(cfg)
        self.netns = cfg.get("netns")  # "run": a new one per run; "clean": shared until a run changes it; else none
        self.namespaces = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | (linux.CLONE_NEWNET if self.netns == "run" else 0)
        self.mounts = cfg.get("mounts") or [["/work", 0o755], ["/tmp", 0o1777], ["/dev/shm", 0o1777]]
        self.net_baseline = None
        self.notify_fd = -1

    def in_zygote(self, notify_fd: int) -> None:
        self.notify_fd = notify_fd
        if self.netns == "clean":
            self.refresh_network()

    def refresh_network(self) -> None:
        """In the zygote (or a supervisor): move to a new network namespace and remember how it looks unused.

        A network namespace costs ~1-2 ms of CPU to make and again to tear down, about a tenth
        of a small run; most runs never touch the network, so ``clean`` mode shares one between
        runs and each supervisor checks, before its program starts, that nothing an earlier run
        did is observable (``net_fingerprint``); if anything is, that run gets a new namespace and
        the zygote makes a new shared one for later runs.
        """
        linux.unshare(linux.CLONE_NEWNET)
        self._loopback()
        self.net_baseline = linux.net_fingerprint()

    def _loopback(self) -> None:
        if self.cfg.get("loopback", True):
            try:
                linux.loopback_up()
            except OSError:
                pass  # no CAP_NET_ADMIN here: the run simply has no loopback

    def prepare(self) -> str:
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        if self.cfg.get("readonly_root"):
            linux.readonly_tree("/")
        if self.netns == "run":
            self._loopback()
        if os.path.ismount("/dev/mqueue"):  # it shows the queues of the IPC namespace it was mounted in: the run's own
            linux.mount("mqueue", "/dev/mqueue", "mqueue", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
        stage = self.cfg["stage_dir"]
        linux.mount("tmpfs", stage, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, f"size={int(self.cfg['disk_mb'])}m,mode=0755")
        fds = [os.open(stage, os.O_RDONLY | os.O_DIRECTORY)]
        for i, (_, mode) in enumerate(self.mounts):
            sub = f"{stage}/{i}"
            os.mkdir(sub)
            os.chmod(sub, mode)
            if "uid" in self.cfg and i == 0 and not self.cfg.get("workdir"):  # the work dir is the run's own
                os.chown(sub, self.cfg["uid"], self.cfg["gid"])
            fds.append(os.open(sub, os.O_RDONLY | os.O_DIRECTORY))  # the stage may sit under a target (local: /tmp)
        for fd, (target, _) in zip(fds[1:], self.mounts):
            linux.mount(f"/proc/self/fd/{fd}", target, None, linux.MS_BIND)
            os.close(fd)
        linux.umount(f"/proc/self/fd/{fds[0]}")  # the binds keep the tmpfs alive; nothing else can reach it
        os.close(fds[0])
        workdir = self.cfg.get("workdir")
        if workdir:  # inside one of the mounts (local: /tmp is the run's own, so its work dir lives there)
            os.mkdir(workdir, 0o700)
            if "uid" in self.cfg:
                os.chown(workdir, self.cfg["uid"], self.cfg["gid"])
            return workdir
        return self.mounts[0][0]

    def in_supervisor(self) -> None:
        linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)

    def begin(self, req: dict, workdir: str) -> None:
        if self.netns == "clean" and linux.net_fingerprint() != self.net_baseline:
            self.refresh_network()  # this run gets a fresh namespace of its own ...
            try:
                os.write(self.notify_fd, b"n")  # ... and the zygote makes a fresh shared one for the next
            except OSError:
                pass
        if int(req.get("disk_mb") or self.cfg["disk_mb"]) != int(self.cfg["disk_mb"]):
            linux.mount(None, self.mounts[0][0], None, linux.MS_REMOUNT | linux.MS_NOSUID | linux.MS_NODEV, f"size={int(req['disk_mb'])}m")

    def files_written(self, workdir: str) -> None:
        if "uid" in self.cfg:
            _chown_tree(workdir, self.cfg["uid"], self.cfg["gid"])

    def in_program(self) -> None:
        if "uid" in self.cfg:
            _become(self.cfg["uid"], self.cfg["gid"])
        else:
            linux.drop_capabilities()

    def run_uid(self) -> int:
        return self.cfg.get("uid", os.getuid())

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


def _chown_tree(top: str, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(top):
        os.lchown(root, uid, gid)
        for name in files + dirs:
            os.lchown(os.path.join(root, name), uid, gid)


def _become(uid: int, gid: int) -> None:
    """Real root to ``uid``: no groups, no capabilities left (a uid change from 0 clears them)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    linux.prctl(linux.PR_SET_DUMPABLE, 1)  # a uid change clears it: /proc/self would stay root's


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
        _chown_tree(workdir, self.cfg["uid"], self.cfg["gid"])

    def in_program(self) -> None:
        _become(self.cfg["uid"], self.cfg["gid"])
        os.setsid()

    def run_uid(self) -> int:
        return self.cfg["uid"]

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
    """Delete every entry ``uid`` created in ``dirs``, at any depth (or, with ``everything``, all entries).

    A run's uid can create entries only in directories it may write: its own (deleted whole)
    and world-writable ones, such as ``/tmp/.X11-unix`` inside /tmp, so those are searched
    too. Nothing is followed: entries are lstat'ed and links deleted as links. ``known``:
    {dir: {(name, inode)}} of the top level before the run; those were there already (a
    sticky temp dir lets nobody replace another's entry), so only new ones are stat'ed.
    """
    import stat

    for d in dirs:
        seen = known.get(d, set()) if known else set()
        pending = [(d, seen)]
        while pending:
            where, skip = pending.pop()
            try:
                entries = list(os.scandir(where))
            except OSError:
                continue
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                    if everything or st.st_uid == uid:
                        if (e.name, e.inode()) not in skip or everything:
                            linux.rm_tree(e.path)
                    elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002:
                        pending.append((e.path, set()))
                except OSError:
                    pass


STRATEGIES = {"pidns": PidNamespace, "uid": DedicatedUid, "pgroup": ProcessGroup}
