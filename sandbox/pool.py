"""WorkerPool: up to N warm workers, each lent to one caller at a time, replaced when broken.

Workers start lazily (the first run pays one start) or all at once with ``warm()``; a worker
that failed is closed and a fresh one starts on the next demand, so a run that crashed its
worker never affects the next run.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from rlvr.errors import SandboxError
from rlvr.sandbox.workers import Worker, WorkerError

log = logging.getLogger(__name__)


class WorkerPool:
    """A bounded set of workers made by ``factory``; thread-safe."""

    def __init__(self, factory: Callable[[], Worker], size: int, name: str = "pool") -> None:
        self._factory = factory
        self.size = size
        self.name = name
        self._idle: list[Worker] = []
        self._count = 0  # started or starting, idle or lent
        self._cond = threading.Condition()
        self._closed = False

    def acquire(self) -> Worker:
        """An idle worker, a newly started one if below size, else wait for one to be released."""
        with self._cond:
            while True:
                if self._closed:
                    raise SandboxError(f"{self.name} is closed")
                while self._idle:
                    w = self._idle.pop()
                    if w.alive:
                        return w
                    self._count -= 1
                    w.close()
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return self._factory()
        except BaseException as e:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            if isinstance(e, WorkerError):
                raise SandboxError(f"{self.name}: could not start a worker: {e}") from None
            raise

    def release(self, worker: Worker, broken: bool = False) -> None:
        """Give a worker back; a broken one is closed and its slot freed."""
        with self._cond:
            if broken or self._closed or not worker.alive:
                self._count -= 1
                drop = True
            else:
                self._idle.append(worker)
                drop = False
            self._cond.notify()
        if drop:
            worker.close()

    def warm(self, n: int | None = None) -> int:
        """Start workers in parallel until ``n`` (default: size) exist; returns how many are idle."""
        want = min(self.size, n or self.size)
        with self._cond:
            missing = max(0, want - self._count)
        if missing:
            with ThreadPoolExecutor(max_workers=missing) as ex:
                workers = list(ex.map(lambda _: self.acquire(), range(missing)))
            for w in workers:
                self.release(w)
        with self._cond:
            return len(self._idle)

    def close(self) -> None:
        """Stop every idle worker now and every lent one when it is released."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for w in idle:
            w.close()

    @property
    def started(self) -> int:
        """Workers started (idle or lent)."""
        with self._cond:
            return self._count


__all__ = ["WorkerPool"]
