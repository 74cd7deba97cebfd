"""Scoring from many episodes at once: shared verifier instances and a batching front for their pools.

Hundreds of concurrent episodes must not each start a verifier worker pool, and a verifier's
pool scores one ``score_many`` call at a time. So environments get verifiers by name through
:func:`shared_verifier` (one instance, hence one pool, per name and options in a process) and
submit rows through :func:`submit`: requests that arrive while a batch is being scored are
gathered into the next ``score_many`` call, so the pool's workers all stay busy. Sync callers
wait on the returned future; async callers ``await`` it without tying up a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import json
import logging
import queue
import threading
import weakref
from typing import Any, Mapping

from rlvr.verifiers import FormatVerifier, Score, StringVerifier, Verifier, get_verifier

log = logging.getLogger(__name__)

_SHARED: dict[tuple[str, str], Verifier] = {}
_SHARED_LOCK = threading.Lock()


def shared_verifier(name: str, **options: Any) -> Verifier:
    """The process-wide verifier registered as ``name`` with ``options`` (built on first use)."""
    key = (name, json.dumps(options, sort_keys=True, default=repr))
    with _SHARED_LOCK:
        verifier = _SHARED.get(key)
        if verifier is None:
            verifier = get_verifier(name, **options)
            _SHARED[key] = verifier
        return verifier


class _Batcher:
    """A daemon thread that runs queued rows of one verifier through one batch method in batches.

    The method is ``score_many`` (results: Scores) or any other method of the same shape
    (``rows -> list of results in order``), e.g. ``CodeVerifier.judge_many`` for per-test reports.
    """

    def __init__(self, verifier: Verifier, method: str = "score_many", max_batch: int = 256) -> None:
        self._verifier = weakref.ref(verifier)
        self._method = method
        self._queue: "queue.SimpleQueue[tuple[Mapping[str, Any], cf.Future] | None]" = queue.SimpleQueue()
        self._max_batch = max_batch
        self._thread = threading.Thread(target=self._run, name=f"rlvr-score-{verifier.name}-{method}", daemon=True)
        self._thread.start()
        weakref.finalize(verifier, self._queue.put, None)  # a sentinel ends the thread with its verifier

    def submit(self, row: Mapping[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        self._queue.put((row, fut))
        return fut

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            verifier = self._verifier()
            if verifier is None:
                for _, fut in batch:
                    fut.set_exception(RuntimeError("the verifier was garbage-collected before scoring"))
                return
            _settle(verifier, self._method, batch)
            del verifier


def _settle(verifier: Verifier, method: str, batch: list[tuple[Mapping[str, Any], cf.Future]]) -> None:
    """Run ``batch`` through ``verifier.<method>`` and resolve each row's future."""
    try:
        results = getattr(verifier, method)([row for row, _ in batch])
    except Exception as e:  # a bug in a verifier must fail its rows, never the episodes' threads
        log.exception("verifier %s failed on a batch of %d", verifier.name, len(batch))
        for _, fut in batch:
            if method == "score_many":
                fut.set_result(Score.failed("error", f"{type(e).__name__}: {e}"[:500]))
            else:
                fut.set_exception(e)
        return
    results = list(results)
    if len(results) != len(batch):
        problem = RuntimeError(f"verifier {verifier.name}.{method} returned {len(results)} results for {len(batch)} rows")
        for _, fut in batch:
            fut.set_exception(problem)
        return
    for (_, fut), result in zip(batch, results):
        fut.set_result(result)


_BATCHERS: "weakref.WeakKeyDictionary[Verifier, dict[str, _Batcher]]" = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def _wants_batching(verifier: Verifier) -> bool:
    # Verifiers known to answer in microseconds in-process (string, format, countdown, base
    # digits: ``inline = True``) are called directly: a thread hop would cost more. Every other
    # verifier may block (worker pools, sandboxed test runs), so it goes through a batcher thread
    # and never runs on an event loop.
    return not (isinstance(verifier, (StringVerifier, FormatVerifier)) or getattr(verifier, "inline", False))


def submit(verifier: Verifier, row: Mapping[str, Any], method: str = "score_many") -> cf.Future:
    """Run ``row`` through ``verifier.<method>`` (default ``score_many``): a future of its result.

    For ``score_many`` the future always holds a :class:`Score` (a failing verifier gives an
    ``error`` Score); other batch methods propagate their exceptions through the future.
    """
    if not _wants_batching(verifier):
        fut: cf.Future = cf.Future()
        _settle(verifier, method, [(row, fut)])
        return fut
    with _BATCHERS_LOCK:
        per_method = _BATCHERS.setdefault(verifier, {})
        batcher = per_method.get(method)
        if batcher is None:
            batcher = per_method[method] = _Batcher(verifier, method)
    return batcher.submit(row)


def score(verifier: Verifier, row: Mapping[str, Any], method: str = "score_many") -> Any:
    """Score one row, blocking until its batch is done."""
    return submit(verifier, row, method).result()


async def ascore(verifier: Verifier, row: Mapping[str, Any], method: str = "score_many") -> Any:
    """Score one row without blocking the event loop."""
    return await asyncio.wrap_future(submit(verifier, row, method))


class TaskVerifier(Verifier):
    """Routes each row to the verifier its task names (``metadata["verifier"]``), else a default.

    Lets one environment serve a mixture of tasks judged differently (math answers, exact
    strings, ...). ``verifier_options`` in the task metadata are that verifier's options. Rows are
    grouped per verifier so each group is one ``score_many`` call on a shared instance.
    """

    name = "task"
    item_kwargs = ("verifier", "verifier_options")

    def __init__(self, default: str = "math", **options: Any) -> None:
        self.default = default
        self.options = options
        shared_verifier(default, **options)  # a bad default name or option fails now, not mid-episode

    def _route(self, row: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        name = row.get("verifier") or self.default
        opts = row.get("verifier_options")
        if not isinstance(name, str):
            name = self.default
        return name, (dict(opts) if isinstance(opts, Mapping) else (self.options if name == self.default else {}))

    def _score(self, completion: str, reference: Any, **kw: Any) -> Score:
        return self.score_many([{"completion": completion, "answer": reference, **kw}])[0]

    def score_many(self, items: Any, workers: int | None = None, timeout: float | None = None, on_result: Any = None) -> list[Score]:
        rows = list(items)
        out: list[Score | None] = [None] * len(rows)
        groups: dict[str, tuple[Verifier | None, list[int], str]] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping) or "completion" not in row:
                out[i] = Score.failed("error", "row must be an object with 'completion'")
                continue
            name, opts = self._route(row)
            key = json.dumps([name, opts], sort_keys=True, default=repr)
            if key not in groups:
                try:
                    groups[key] = (shared_verifier(name, **opts), [], "")
                except Exception as e:  # an unknown verifier named by one task fails that task only
                    groups[key] = (None, [], f"{type(e).__name__}: {e}")
            groups[key][1].append(i)
        for verifier, idx, problem in groups.values():
            if verifier is None:
                for i in idx:
                    out[i] = Score.failed("error", problem[:500])
                continue
            sub = [{"completion": rows[i]["completion"], verifier.reference_key: rows[i].get(self.reference_key)} for i in idx]
            for i, s in zip(idx, verifier.score_many(sub, workers=workers, timeout=timeout)):
                out[i] = s
        scores = [s if s is not None else Score.failed("error", "item was not scored") for s in out]
        if on_result is not None:
            for i, s in enumerate(scores):
                on_result(i, s)
        return scores


__all__ = ["shared_verifier", "submit", "score", "ascore", "TaskVerifier"]
