"""Micro-batching: many concurrent ``await submit(x)`` calls become one blocking batch call.

Episodes run as independent coroutines, but a local model is fastest when it generates for
all of them at once. The batcher waits until ``max_batch`` requests are pending or
``max_wait_s`` has passed since the first, then runs ``fn(batch)`` in a worker thread (so the
event loop keeps stepping environments meanwhile) and hands each caller its own result.

Every batch runs on the batcher's one dedicated thread, never on asyncio's shared pool: CUDA
libraries set up per-thread state (cuBLAS handles, workspaces) on a thread's first GPU call,
which made ``model.generate`` several times slower when successive batches landed on new threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
import logging
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)


@dataclass
class _Pending(Generic[T, R]):
    payload: T
    future: "asyncio.Future[R]"


class MicroBatcher(Generic[T, R]):
    """Collects concurrent requests into batches for ``fn: list[T] -> list[R | Exception]`` (same order).

    An exception *returned* in a slot fails that request alone; one *raised* fails the batch.
    """

    def __init__(self, fn: Callable[[list[T]], list[Any]], max_batch: int, max_wait_s: float = 0.05) -> None:
        self.fn = fn
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self.batch_sizes: list[int] = []  # one entry per batch run, for reports and tests
        self._pending: list[_Pending[T, R]] = []
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start the batching loop in the running event loop."""
        self._wake, self._full = asyncio.Event(), asyncio.Event()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batcher")
        self._task = asyncio.create_task(self._loop(), name="micro-batcher")

    async def close(self) -> None:
        """Stop the loop; requests still pending are cancelled."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for p in self._pending:
            if not p.future.done():
                p.future.cancel()
        self._pending = []

    def shutdown(self) -> None:
        """Stop the batching thread (after :meth:`close`); a later :meth:`start` makes a new one."""
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None

    async def submit(self, payload: T) -> R:
        """Queue one request and wait for its result (or the exception its batch raised)."""
        if self._task is None or self._wake is None or self._full is None:
            raise RuntimeError("MicroBatcher.submit() before start()")
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(payload, fut))
        self._wake.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        return await fut

    async def _loop(self) -> None:
        assert self._wake is not None and self._full is not None
        while True:
            await self._wake.wait()
            if len(self._pending) < self.max_batch and self.max_wait_s > 0:
                # Event.wait under wait_for loses nothing on timeout (unlike Queue.get on 3.10/3.11).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait_s)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if len(self._pending) < self.max_batch:
                self._full.clear()
            if not self._pending:
                self._wake.clear()
            batch = [p for p in batch if not p.future.done()]  # callers cancelled while waiting
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(self._thread, self.fn, [p.payload for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} requests")
            except Exception as e:
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(e)
                continue
            for p, result in zip(batch, results):
                if p.future.done():
                    continue
                if isinstance(result, BaseException):
                    p.future.set_exception(result)
                else:
                    p.future.set_result(result)


__all__ = ["MicroBatcher"]
