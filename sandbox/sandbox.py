"""Sandbox: run untrusted programs under limits on a chosen backend, warm and concurrently.

    with Sandbox("auto", Limits(time_limit_s=2)) as sb:
        r = sb.run(Program("python", "print(input()[::-1])", stdin="abc"))
        rs = sb.run_many([(prog, case) for case in inputs], concurrency=8)

Every run gets a fresh work directory and leaves nothing behind; a run never raises because of
what the program did (that is ``ExecResult.status``). Configuration errors (unknown backend or
language, bad limits) raise ``ConfigError`` at construction; a backend that cannot work on this
machine raises ``SandboxError`` naming what is missing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Sequence, Union

from rlvr.errors import ConfigError, SandboxError
from rlvr.sandbox.backends import backend_class, backend_names
from rlvr.sandbox.compile_cache import CompileCache
from rlvr.sandbox.languages import get_language
from rlvr.sandbox.limits import Limits
from rlvr.sandbox.plan import build_request, outcome
from rlvr.sandbox.pool import WorkerPool
from rlvr.sandbox.program import Data, Program
from rlvr.sandbox.result import ExecResult
from rlvr.sandbox.rootfs import program_env
from rlvr.sandbox.workers import WorkerError

log = logging.getLogger(__name__)

Item = Union[Program, tuple[Program, Data]]


def probe_backends() -> list[tuple[str, bool, str]]:
    """(name, available, detail) for every registered backend, strongest first."""
    out = []
    for name in backend_names():
        try:
            ok, detail = backend_class(name).probe()
        except Exception as e:  # a probe must report, never crash `rlvr doctor`
            ok, detail = False, f"probe failed: {type(e).__name__}: {e}"
        out.append((name, ok, detail))
    return out


def default_backend() -> str:
    """The strongest backend available here (what ``backend="auto"`` picks); SandboxError if none."""
    reasons = []
    for name in backend_names():
        ok, detail = backend_class(name).probe()
        if ok:
            return name
        reasons.append(f"{name}: {detail}")
    raise SandboxError("no sandbox backend is available here (" + "; ".join(reasons) + ")")


class Sandbox:
    """Runs Programs in warm workers of one backend.

    backend:     ``auto`` (strongest available: bwrap, then docker, then local), or a name.
    limits:      ``Limits`` (or a dict of its fields) every run gets unless ``run(limits=...)``.
    concurrency: warm workers kept (and runs in flight); default: the number of CPUs.
    options:     backend options, e.g. ``image=`` and ``docker_host=`` for docker, ``python=``.
    """

    def __init__(self, backend: str = "auto", limits: Limits | dict | None = None, *, concurrency: int | None = None, **options: Any) -> None:
        self.limits = Limits.coerce(limits)
        if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1):
            raise ConfigError("concurrency", f"must be a whole number >= 1, got {concurrency!r}")
        if not isinstance(backend, str):
            raise ConfigError("backend", f"must be a backend name, got {backend!r}")
        name = default_backend() if backend == "auto" else backend
        cls = backend_class(name)
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            raise ConfigError(f"sandbox option {unknown[0]!r}", f"is not an option of the {name} backend", f"options: {', '.join(cls.options) or 'none'}")
        if backend != "auto":
            ok, detail = cls.probe()
            if not ok:
                raise SandboxError(f"sandbox backend {name!r} is not available here: {detail}")
        self.backend = name
        self._backend = cls(self.limits, **options)
        self._env = program_env()
        size = concurrency or os.cpu_count() or 1
        self._pool = WorkerPool(self._backend.start_worker, size, name=f"{name} sandbox")
        self.compile_cache = CompileCache()
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _shutdown, self._pool, self._backend, self._pid)

    # ------------------------------------------------------------------ running

    def run(self, program: Program, *, limits: Limits | dict | None = None) -> ExecResult:
        """Run one program to completion and return what happened (never raises for program behaviour)."""
        if not isinstance(program, Program):
            raise ConfigError("program", f"must be a Program, got {type(program).__name__}")
        if os.getpid() != self._pid:
            raise SandboxError("this Sandbox was created in another process (before a fork): create one in each process")
        lim = self.limits if limits is None else Limits.coerce(limits)
        if lim is not self.limits:
            self._backend.check_limits(lim)
        lang = get_language(program.language)
        artifact, key = None, None
        if lang.compiled:
            key = self.compile_cache.key(program, lang, lim)
            cached = self.compile_cache.get(key)
            if isinstance(cached, ExecResult):
                return cached
            artifact = cached
        req = build_request(program, lang, lim, self._env, self._backend.nproc, artifact)
        try:
            worker = self._pool.acquire()
        except SandboxError as e:
            return ExecResult.sandbox_error(self.backend, str(e))
        oom_before = worker.oom_kills()
        try:
            meta, blobs = worker.call(req.frame, req.deadline_s)
            oom = worker.oom_kills() > oom_before
        except WorkerError as e:
            self._pool.release(worker, broken=True)
            log.warning("sandbox worker failed: %s", e)
            return ExecResult.sandbox_error(self.backend, f"worker failed: {e}")
        except BaseException:
            self._pool.release(worker, broken=True)
            raise
        self._pool.release(worker)
        result, new_artifact = outcome(meta, blobs, lang, lim, self.backend, oom_killed=oom)
        if key is not None and req.compiles:
            if new_artifact is not None:
                self.compile_cache.put(key, new_artifact)
            elif result.stage == "compile" and result.status == "runtime_error":
                self.compile_cache.put(key, result)
        return result

    def run_many(
        self,
        items: Iterable[Item],
        *,
        concurrency: int | None = None,
        limits: Limits | dict | None = None,
        on_result: Callable[[int, ExecResult], None] | None = None,
    ) -> list[ExecResult]:
        """Run many programs (or ``(program, stdin)`` pairs), ``concurrency`` at a time; results in input order.

        Compiled languages compile once per distinct source (see ``compile_cache``), so one
        candidate against many inputs pays one compile. ``on_result(index, result)`` is called
        as each finishes (from worker threads), e.g. to drive a progress bar.
        """
        programs = [_as_program(it, i) for i, it in enumerate(items)]
        if not programs:
            return []
        n = concurrency or self._pool.size
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError("concurrency", f"must be a whole number >= 1, got {concurrency!r}")
        self._pool.size = max(self._pool.size, n)
        results: list[ExecResult | None] = [None] * len(programs)

        def one(i: int) -> None:
            results[i] = self.run(programs[i], limits=limits)
            if on_result is not None:
                on_result(i, results[i])

        if n == 1 or len(programs) == 1:
            for i in range(len(programs)):
                one(i)
        else:
            with ThreadPoolExecutor(max_workers=min(n, len(programs)), thread_name_prefix="rlvr-sandbox") as ex:
                for f in [ex.submit(one, i) for i in range(len(programs))]:
                    f.result()
        return results  # type: ignore[return-value]

    async def arun(self, program: Program, *, limits: Limits | dict | None = None) -> ExecResult:
        """``run`` for asyncio: the blocking work happens on the sandbox's own threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads(), lambda: self.run(program, limits=limits))

    async def arun_many(self, items: Iterable[Item], *, limits: Limits | dict | None = None) -> list[ExecResult]:
        """``run_many`` for asyncio (up to ``concurrency`` in flight)."""
        programs = [_as_program(it, i) for i, it in enumerate(items)]
        return list(await asyncio.gather(*(self.arun(p, limits=limits) for p in programs)))

    # ------------------------------------------------------------------ lifecycle

    def warmup(self, n: int | None = None) -> "Sandbox":
        """Start ``n`` workers now (default: ``concurrency``) so the first runs pay no start-up."""
        try:
            self._pool.warm(n)
        except WorkerError as e:
            raise SandboxError(f"could not start {self.backend} workers: {e}") from None
        return self

    @property
    def isolation(self):
        """What this sandbox's backend guarantees (``rlvr.sandbox.backends.Isolation``)."""
        return self._backend.isolation

    def close(self) -> None:
        """Stop every worker and release the backend's resources (idempotent)."""
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=False)
        self._finalizer()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        pool = getattr(self, "_pool", None)
        return f"Sandbox(backend={getattr(self, 'backend', '?')!r}, concurrency={pool.size if pool else '?'}, limits={self.limits!r})"

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self._pool.size, thread_name_prefix="rlvr-sandbox-async")
            return self._executor


def _shutdown(pool: WorkerPool, backend: Any, owner_pid: int) -> None:
    if os.getpid() != owner_pid:  # a forked child exiting must not stop its parent's workers
        return
    pool.close()
    backend.close()


def _as_program(item: Item, index: int) -> Program:
    if isinstance(item, Program):
        return item
    if isinstance(item, Sequence) and len(item) == 2 and isinstance(item[0], Program):
        return item[0].with_stdin(item[1])
    raise ConfigError(f"items[{index}]", f"must be a Program or a (Program, stdin) pair, got {type(item).__name__}")


__all__ = ["Sandbox", "default_backend", "probe_backends"]
