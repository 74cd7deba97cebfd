"""`Verifier`: the small, stable contract every scorer implements.

A verifier turns ``(completion, reference)`` into a :class:`Score`. Subclasses implement
``_score`` (the full judgement) and may implement ``_fast_score`` (a cheap path that decides
easy cases in-process and returns ``None`` otherwise). Verifiers whose ``_score`` can be slow or
can blow up on hostile input (symbolic math, code) set ``isolated = True``: their ``_score`` then
always runs in a :class:`~rlvr.verifiers.pool.ScoringPool` worker under a hard wall-clock kill.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

from rlvr.errors import ConfigError
from rlvr.verifiers.pool import ScoringPool, default_workers
from rlvr.verifiers.score import Score

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_INPUT_CHARS = 1_000_000


def completion_text(completion: Any) -> str:
    """The text to score: a string as is; for chat messages, the last assistant message's content.

    TRL passes conversational completions as ``[{"role": "assistant", "content": ...}, ...]``.
    Raises TypeError for anything else (callers turn that into an ``error`` Score).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        content = completion.get("content")
        if isinstance(content, str):
            return content
        raise TypeError("a message dict needs a string 'content'")
    if isinstance(completion, Sequence):
        msgs = [m for m in completion if isinstance(m, Mapping)]
        if len(msgs) != len(completion):
            raise TypeError("a chat completion must be a list of {'role', 'content'} messages")
        assistant = [m for m in msgs if m.get("role") == "assistant" and isinstance(m.get("content"), str)]
        if assistant:
            return assistant[-1]["content"]
        texts = [m["content"] for m in msgs if isinstance(m.get("content"), str)]
        return "\n".join(texts)
    raise TypeError(f"completion must be a string or a list of chat messages, not {type(completion).__name__}")


class Verifier(ABC):
    """Scores completions; never raises on model output and never hangs.

    Attributes subclasses set:
        name:            the component name used in logs, CLI output and reward-function names.
        reference_key:   the row field holding the reference (``answer`` for most verifiers).
        needs_reference: False for verifiers that judge the completion alone (format checks).
        item_kwargs:     extra row fields passed to ``_score`` as keyword arguments.
        isolated:        run ``_score`` in worker processes under a hard timeout.
        preload_modules: modules the worker server imports once, so new workers start warm.
        keep_tail:       when capping a giant completion, keep its end (answers come last).
    """

    name: ClassVar[str] = "verifier"
    reference_key: ClassVar[str] = "answer"
    needs_reference: ClassVar[bool] = True
    item_kwargs: ClassVar[tuple[str, ...]] = ()
    isolated: ClassVar[bool] = False
    preload_modules: ClassVar[tuple[str, ...]] = ()
    keep_tail: ClassVar[bool] = True

    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
    timeout: float = DEFAULT_TIMEOUT_S
    workers: int | None = None

    # ----------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _score(self, completion: str, reference: Any, **kw: Any) -> Score:
        """Judge one (capped) completion text against its reference. May be slow if isolated."""

    def _fast_score(self, completion: str, reference: Any, **kw: Any) -> Score | None:
        """Decide cheap cases in-process without heavy libraries; ``None`` means "use _score"."""
        return None

    # ----------------------------------------------------------------- public API
    def score(self, completion: Any, reference: Any = None, **kw: Any) -> Score:
        """Score one completion (a string or chat messages) against ``reference``."""
        return self.score_many([{"completion": completion, self.reference_key: reference, **kw}])[0]

    def score_many(
        self,
        items: Iterable[Mapping[str, Any]],
        workers: int | None = None,
        timeout: float | None = None,
        on_result: Callable[[int, Score], None] | None = None,
    ) -> list[Score]:
        """Score rows of ``{"completion": ..., "answer": ...}`` in order.

        Cheap cases are decided in this process; the rest go to worker processes (when the
        verifier is ``isolated``), each with a hard ``timeout`` in seconds: a stuck item is killed
        and scored ``timeout``, its worker replaced, and the batch goes on. A malformed row is
        scored ``error`` with the reason. ``on_result(index, score)`` is called as items finish.
        """
        timeout = self.timeout if timeout is None else float(timeout)
        if timeout <= 0:
            raise ConfigError("timeout", f"must be > 0 seconds, got {timeout}", "pass e.g. timeout=10")
        rows = list(items)
        results: list[Score | None] = [None] * len(rows)
        slow: list[tuple[int, str, Any, dict]] = []

        def done(i: int, s: Score) -> None:
            results[i] = s
            if on_result is not None:
                on_result(i, s)

        for i, row in enumerate(rows):
            t0 = time.perf_counter()
            unpacked = self._unpack(row)
            if isinstance(unpacked, Score):
                done(i, unpacked.with_ms((time.perf_counter() - t0) * 1000.0))
                continue
            text, reference, kw = unpacked
            try:
                fast = self._fast_score(text, reference, **kw)
            except Exception:  # a bug in a fast path must not lose the row: fall back to _score
                log.debug("fast path failed on row %d", i, exc_info=True)
                fast = None
            if fast is None and not self.isolated:
                try:
                    fast = self._score(text, reference, **kw)
                except Exception as e:
                    fast = Score.failed("error", f"{type(e).__name__}: {e}"[:500])
            if fast is not None:
                done(i, fast.with_ms((time.perf_counter() - t0) * 1000.0))
            else:
                slow.append((i, text, reference, kw))

        if slow:
            self._pool(workers).map(slow, timeout, on_result=done)
        return [s if s is not None else Score.failed("error", "item was not scored") for s in results]

    def as_reward_func(
        self,
        reference_key: str | None = None,
        name: str | None = None,
        none_on_error: bool = True,
    ) -> Callable[..., list[float | None]]:
        """This verifier as a TRL reward function ``f(prompts, completions, **columns)``.

        The reference comes from the dataset column ``reference_key`` (default: the verifier's
        own, usually ``answer``). With ``none_on_error``, rows the verifier itself failed on
        (status ``error``) return ``None`` so TRL leaves them out instead of punishing the policy.
        """
        key = reference_key or self.reference_key
        verifier = self

        def reward_func(prompts: Any = None, completions: Any = None, **columns: Any) -> list[float | None]:
            if completions is None:
                raise ConfigError("completions", "the reward function got no completions")
            refs = columns.get(key) if verifier.needs_reference else [None] * len(completions)
            if refs is None:
                raise ConfigError(key, f"the dataset has no '{key}' column", f"add it or pass reference_key= to as_reward_func")
            rows = []
            for j, c in enumerate(completions):
                row = {"completion": c, verifier.reference_key: refs[j]}
                for extra in verifier.item_kwargs:
                    if extra in columns:
                        row[extra] = columns[extra][j]
                rows.append(row)
            scores = verifier.score_many(rows)
            return [None if (none_on_error and s.status == "error") else s.reward for s in scores]

        reward_func.__name__ = name or verifier.name
        reward_func.__qualname__ = reward_func.__name__
        return reward_func

    def close(self) -> None:
        """Stop this verifier's worker processes (they also stop at interpreter exit)."""
        pool = self.__dict__.pop("_pool_obj", None)
        if pool is not None:
            pool.close()

    # ----------------------------------------------------------------- plumbing
    def _unpack(self, row: Any) -> Score | tuple[str, Any, dict]:
        if not isinstance(row, Mapping):
            return Score.failed("error", f"row must be an object with 'completion', got {type(row).__name__}")
        if "completion" not in row:
            return Score.failed("error", "row has no 'completion' field")
        if self.needs_reference and self.reference_key not in row:
            return Score.failed("error", f"row has no '{self.reference_key}' field")
        try:
            text = completion_text(row["completion"])
        except TypeError as e:
            return Score.failed("error", str(e))
        if len(text) > self.max_input_chars:
            text = text[-self.max_input_chars :] if self.keep_tail else text[: self.max_input_chars]
        kw = {k: row[k] for k in self.item_kwargs if k in row}
        return text, row.get(self.reference_key), kw

    def _pool(self, workers: int | None) -> ScoringPool:
        size = workers or self.workers or default_workers()
        pool = self.__dict__.get("_pool_obj")
        if pool is None or pool.size != size:
            if pool is not None:
                pool.close()
            pool = ScoringPool(self, size)
            self.__dict__["_pool_obj"] = pool
        return pool

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_pool_obj", None)  # pools hold processes and pipes: never pickled into workers
        return state

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


__all__ = ["Verifier", "completion_text", "DEFAULT_TIMEOUT_S", "DEFAULT_MAX_INPUT_CHARS"]
