"""Worker processes that run a verifier's slow path under a hard per-item wall-clock timeout.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot kill one stuck task, and a worker
that dies breaks the whole executor. Here each worker takes one item at a time; a worker that
overruns its deadline is SIGKILLed and replaced, its item scored ``timeout``, and the batch goes
on. Why not math-verify's own timeout: it uses SIGALRM, which only works on the main thread and
truncates float seconds; our deadline is enforced from outside, so scoring works from any thread
or event loop.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import pickle
import sys
import threading
import time
import weakref
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable

from rlvr.verifiers.score import Score

log = logging.getLogger(__name__)

Job = tuple[int, str, Any, dict]  # (index, completion text, reference, extra keyword arguments)

_LIVE_POOLS: "weakref.WeakSet[ScoringPool]" = weakref.WeakSet()


def _context(needs_main: bool = False) -> mp.context.BaseContext:
    # forkserver: workers fork from a clean, pre-imported server, never from a parent that may
    # hold threads (torch, tokenizers) — fork from such a parent can deadlock in the child.
    if needs_main:
        # The verifier's class is defined in __main__: re-importing a script would re-run it
        # (no main guard) or miss a class defined under the guard, and a notebook has no file.
        # A forked child already holds the class.
        return mp.get_context("fork")
    if sys.platform.startswith("linux"):
        return mp.get_context("forkserver")
    return mp.get_context("spawn")


_starting = threading.local()  # set while this thread starts one of our workers
_filter_installed = False
_filter_lock = threading.Lock()


def _install_main_filter() -> None:
    """Wrap ``multiprocessing.spawn.get_preparation_data`` so that *our* worker starts (flagged
    per thread) leave out the "re-import ``__main__``" step; every other process start is as before."""
    global _filter_installed
    with _filter_lock:
        if _filter_installed:
            return
        from multiprocessing import spawn

        original = spawn.get_preparation_data

        def get_preparation_data(name: str) -> dict:
            data = original(name)
            if getattr(_starting, "hide_main", False):
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
            return data

        spawn.get_preparation_data = get_preparation_data
        _filter_installed = True


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its parent (the forkserver) exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getppid()
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(0)
    except (OSError, AttributeError):  # no libc prctl here: the pipe EOF still ends the loop
        pass


def _limit_memory(memory_mb: int | None) -> None:
    if not memory_mb:
        return
    try:
        import resource

        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform: the wall-clock kill still holds
        pass


def _worker_main(conn: Connection, payload: bytes, memory_mb: int | None) -> None:
    """Worker loop: receive a job, score it with the verifier's slow path, send the Score back."""
    _die_with_parent()
    _limit_memory(memory_mb)
    verifier = pickle.loads(payload)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        idx, completion, reference, kw = job
        t0 = time.perf_counter()
        try:
            score = verifier._score(completion, reference, **kw)
        except MemoryError:
            score = Score.failed("error", "the verifier ran out of memory on this input")
        except RecursionError:
            score = Score.failed("parse_error", "answer is nested too deeply to parse")
        except BaseException as e:  # model output must never take the worker down with a traceback
            score = Score.failed("error", f"{type(e).__name__}: {e}"[:500])
        score = score.with_ms((time.perf_counter() - t0) * 1000.0)
        try:
            conn.send((idx, score))
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, payload: bytes, memory_mb: int | None, hide_main: bool) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.conn = parent
        self.proc = ctx.Process(target=_worker_main, args=(child, payload, memory_mb), daemon=True)
        _starting.hide_main = hide_main
        try:
            self.proc.start()
        finally:
            _starting.hide_main = False
        child.close()
        self.job: Job | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.join(timeout=2)
        except Exception:  # already gone
            pass
        try:
            self.conn.close()
        except OSError:
            pass


class ScoringPool:
    """A fixed number of verifier worker processes with per-item deadlines (see module docstring)."""

    def __init__(self, verifier: Any, workers: int, memory_mb: int | None = 4096) -> None:
        self.size = max(1, int(workers))
        self.memory_mb = memory_mb
        self._payload = pickle.dumps(verifier)
        # A pickle names the module of every class in it: "__main__" only when the script defines one.
        self._hide_main = b"__main__" not in self._payload
        if self._hide_main:
            _install_main_filter()
        self._ctx = _context(needs_main=not self._hide_main)
        # The forkserver starts once per process and keeps its first preload list, so preload what
        # every registered verifier wants, not just this one: a string pool started first must
        # not leave later math workers paying sympy's import on their first item.
        from rlvr.verifiers.registry import registered_classes

        preload = sorted({m for cls in (type(verifier), *registered_classes()) for m in getattr(cls, "preload_modules", ())})
        if preload and hasattr(self._ctx, "set_forkserver_preload"):
            self._ctx.set_forkserver_preload(preload)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.replaced = 0
        _LIVE_POOLS.add(self)

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self._payload, self.memory_mb, self._hide_main)

    def map(
        self,
        jobs: Iterable[Job],
        timeout: float,
        on_result: Callable[[int, Score], None] | None = None,
    ) -> dict[int, Score]:
        """Score every job; returns ``{index: Score}``. A job past ``timeout`` seconds is killed."""
        with self._lock:
            try:
                return self._map(deque(jobs), float(timeout), on_result)
            except BaseException:  # KeyboardInterrupt, SystemExit from a signal handler, ...
                self._kill_busy()  # their items are abandoned: never let them grind on for minutes
                raise

    def _kill_busy(self) -> None:
        for w in self._workers:
            if w.job is not None:
                w.kill()
        self._workers = [w for w in self._workers if w.job is None]

    def _map(self, pending: deque, timeout: float, on_result: Callable[[int, Score], None] | None) -> dict[int, Score]:
        results: dict[int, Score] = {}
        while len(self._workers) < min(self.size, max(1, len(pending))):
            self._workers.append(self._spawn())

        def finish(idx: int, score: Score) -> None:
            results[idx] = score
            if on_result is not None:
                on_result(idx, score)

        def replace(w: _Worker) -> None:
            w.kill()
            self._workers[self._workers.index(w)] = self._spawn()
            self.replaced += 1

        while pending or any(w.job is not None for w in self._workers):
            for w in list(self._workers):
                if w.job is None and pending:
                    job = pending.popleft()
                    try:
                        w.conn.send(job)
                    except (BrokenPipeError, OSError):  # died while idle: replace, retry the job
                        replace(w)
                        pending.appendleft(job)
                        continue
                    w.job = job
                    w.deadline = time.monotonic() + timeout
            busy = [w for w in self._workers if w.job is not None]
            if not busy:
                continue
            wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy], timeout=wait_s))
            now = time.monotonic()
            for w in busy:
                assert w.job is not None
                idx = w.job[0]
                if w.conn in ready:
                    try:
                        got_idx, score = w.conn.recv()
                    except (EOFError, OSError, pickle.UnpicklingError):
                        finish(idx, Score.failed("error", "verifier worker crashed on this input (it was replaced)"))
                        w.job = None
                        replace(w)
                        continue
                    w.job = None
                    finish(got_idx, score)
                elif now >= w.deadline:
                    log.debug("item %d exceeded %.2fs; killing its worker", idx, timeout)
                    w.job = None
                    replace(w)
                    finish(idx, Score(0.0, None, "timeout", None, f"scoring exceeded the {timeout:g}s limit", timeout * 1000.0))
        return results

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, any still running after 1 s are killed."""
        with self._lock:
            for w in self._workers:
                try:
                    w.conn.send(None)
                except (OSError, BrokenPipeError, ValueError):
                    pass
            deadline = time.monotonic() + 1.0
            for w in self._workers:
                w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
                if w.proc.is_alive():
                    w.kill()
                else:
                    w.conn.close()
            self._workers = []

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and process-table checks)."""
        return [w.proc.pid for w in self._workers if w.proc.pid is not None]

    def __repr__(self) -> str:
        return f"ScoringPool(workers={self.size}, live={len(self._workers)}, replaced={self.replaced})"


@atexit.register
def _close_all() -> None:
    for pool in list(_LIVE_POOLS):
        try:
            pool.close()
        except Exception:
            pass


def default_workers() -> int:
    """Workers to use when the caller does not say: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


__all__ = ["ScoringPool", "default_workers"]
