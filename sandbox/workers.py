"""Workers: one warm zygote each, spoken to in frames; a worker serves one request at a time.

``Worker`` is the small interface the pool uses; ``ProcessWorker`` runs the zygote as a child
process over pipes (the local and bwrap backends); the Docker backend has its own worker that
speaks the same frames over an attached container stream.
"""

from __future__ import annotations

import abc
import logging
import os
import select
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Sequence

from rlvr.sandbox.zygote.frames import decode_frame

if TYPE_CHECKING:
    from rlvr.sandbox.cgroups import MemoryCgroup

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0


class WorkerError(Exception):
    """The worker died, hung or broke the protocol; it must be discarded."""


class _Spawner:
    """One long-lived thread that starts every worker process.

    Both ``bwrap --die-with-parent`` and the zygote's PR_SET_PDEATHSIG fire when the *thread*
    that forked them exits, not the process. Workers are started from pool threads and
    ``run_many`` threads that come and go, so the fork itself always happens here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = os.getpid()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():  # a forked child has no such thread
                self._pid = os.getpid()
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlvr-sandbox-spawner")
            future = self._executor.submit(subprocess.Popen, *args, **kwargs)
        return future.result()


_SPAWNER = _Spawner()


class Worker(abc.ABC):
    """A started zygote that answers one request frame at a time."""

    runs = 0

    def oom_kills(self) -> int:
        """OOM kills so far among this worker's processes (0 where not observable from the host)."""
        return 0

    @abc.abstractmethod
    def call(self, frame: bytes, timeout_s: float) -> tuple[dict, list[bytes]]:
        """Send one request frame; return the answer (meta, blobs). Raises WorkerError."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the worker and everything in it (idempotent)."""

    @property
    @abc.abstractmethod
    def alive(self) -> bool:
        """False once the worker has died or been closed."""


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


class ProcessWorker(Worker):
    """The zygote as a child process: requests on its stdin, answers on its stdout."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        user: int | None = None,
        pass_fds: Sequence[int] = (),
        on_close: Callable[[], None] | None = None,
        cgroup: "MemoryCgroup | None" = None,
        name: str = "worker",
    ) -> None:
        self.name = name
        self._on_close = on_close
        self.cgroup = cgroup
        self._log = tempfile.TemporaryFile(prefix="rlvr-sbx-log-")
        kw = {}
        if user is not None:
            kw.update(user=user, group=user, extra_groups=[])
        try:
            self._proc = _SPAWNER.popen(
                list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
                pass_fds=tuple(pass_fds), start_new_session=True, cwd="/", **kw,
            )
        except OSError as e:
            self._cleanup()
            raise WorkerError(f"could not start {argv[0]}: {e}") from e
        if cgroup is not None:
            cgroup.adopt_tree(self._proc.pid)  # before the zygote (busy importing) forks any run
        self._in = self._proc.stdin.fileno()
        self._out = self._proc.stdout.fileno()
        try:
            meta, _ = self._read_frame(_Deadline(READY_TIMEOUT_S))
        except WorkerError as e:
            self.close()
            raise WorkerError(f"{name} did not start: {e}") from None
        if not meta.get("ready"):
            self.close()
            raise WorkerError(f"{name} sent {meta!r} instead of its ready message")
        self.pid = meta.get("pid")

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def oom_kills(self) -> int:
        return self.cgroup.oom_kills() if self.cgroup is not None else 0

    def call(self, frame: bytes, timeout_s: float) -> tuple[dict, list[bytes]]:
        deadline = _Deadline(timeout_s)
        try:
            _write_all(self._in, frame, deadline)
        except (BrokenPipeError, OSError) as e:
            raise WorkerError(f"{self.name} is gone ({e}){self._log_tail()}") from None
        meta, blobs = self._read_frame(deadline)
        self.runs += 1
        return meta, blobs

    def _read_frame(self, deadline: _Deadline) -> tuple[dict, list[bytes]]:
        def read_exact(n: int) -> bytes:
            buf = bytearray()
            while len(buf) < n:
                left = deadline.left()
                if left <= 0:
                    raise WorkerError(f"{self.name} did not answer in time")
                ready, _, _ = select.select([self._out], [], [], left)
                if not ready:
                    continue
                chunk = os.read(self._out, min(n - len(buf), 1 << 20))
                if not chunk:
                    raise WorkerError(f"{self.name} exited{self._log_tail()}")
                buf += chunk
            return bytes(buf)

        try:
            meta, blobs = decode_frame(read_exact)
        except WorkerError:
            raise
        except (ValueError, OSError) as e:
            raise WorkerError(f"{self.name} broke the protocol: {e}") from None
        if meta is None:
            raise WorkerError(f"{self.name} exited{self._log_tail()}")
        return meta, blobs

    def _log_tail(self) -> str:
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - 2000))
            tail = self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; its log ends: {tail}" if tail else ""

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %s) did not exit after SIGKILL", self.name, proc.pid)
        if proc is not None:
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            self._log.close()
        except OSError:
            pass
        if self.cgroup is not None:
            self.cgroup.destroy()
        if self._on_close is not None:
            cb, self._on_close = self._on_close, None
            cb()


def _write_all(fd: int, data: bytes, deadline: _Deadline) -> None:
    view = memoryview(data)
    while view:
        left = deadline.left()
        if left <= 0:
            raise WorkerError("timed out sending the request")
        _, ready, _ = select.select([], [fd], [], left)
        if ready:
            view = view[os.write(fd, view[: 1 << 16]) :]


__all__ = ["ProcessWorker", "Worker", "WorkerError"]
