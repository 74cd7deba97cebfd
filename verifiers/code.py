"""`CodeVerifier`: run the program in a completion against its tests in the sandbox.

    >>> v = CodeVerifier()
    >>> tests = {"kind": "io", "cases": [{"stdin": "1 2\\n", "stdout": "3\\n"}], "compare": "tokens"}
    >>> v.score("```python\\nprint(sum(map(int, input().split())))\\n```", tests).status
    'ok'

The reference (row field ``tests``) is a test spec (:mod:`~rlvr.verifiers.code_tests`): ``io``
cases for competitive programming, or ``assert``-style test code for HumanEval/MBPP. The
program is the completion's last fenced block in the language (:mod:`~rlvr.verifiers.code_extract`).

Scores: ``ok`` (reward 1) when every test passes; otherwise ``wrong`` or ``timeout`` (the first
failing test's verdict) with reward 0, or the fraction passed with ``reward_mode="fraction"``;
``no_answer`` without a program; ``error`` for a malformed spec or a sandbox failure (not the
policy's fault: ``as_reward_func`` gives None). Whatever the program does to its own run
(deleting or replacing its binary, killing or starving its harness) is ``wrong``: a run that
fails like a sandbox failure is repeated, then a trivial program tells whose fault it is
(:mod:`~rlvr.verifiers.code_graders`). ``detail`` lists the failing tests first
("case 2: wrong answer: stdin '1 2', expected '3', got '4'"); :meth:`CodeVerifier.judge_many`
returns the same verdicts as JSON-able :class:`~rlvr.verifiers.code_tests.TestResult` lists.

Not ``isolated``: the sandbox already enforces every limit on its own warm workers, so the
verifier drives sandbox runs from threads in this process (one run per io case, one harness run
per assert-style item) with all items of a ``score_many`` call in flight together. Why the
grading cannot be gamed is in :mod:`~rlvr.verifiers.code_graders` and
:mod:`~rlvr.verifiers.code_harness`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

from rlvr.errors import ConfigError, SandboxError
from rlvr.sandbox import ExecResult, Limits, Sandbox, get_language
from rlvr.sandbox.backends import backend_names
from rlvr.verifiers.base import Verifier
from rlvr.verifiers.code_extract import extract_program
from rlvr.verifiers.code_graders import GradeOptions, Grader, make_grader
from rlvr.verifiers.code_tests import SpecError, TestResult, parse_compare, parse_spec
from rlvr.verifiers.registry import register_verifier
from rlvr.verifiers.score import Score

log = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT_S = 5.0
DEFAULT_RUN_TIMEOUT_S = 60.0
PARSED_CHARS = 20_000  # of the extracted program kept in Score.parsed
MAX_DETAIL_GROUPS = 10
ROW_LANGUAGE_KEY = "language"
_SANDBOX_LOCK = threading.Lock()

RewardMode = Literal["all", "fraction"]


@dataclass(frozen=True)
class CodeReport:
    """Everything about one judged completion: its Score, the program and every test's result."""

    score: Score
    program: str | None
    tests: tuple[TestResult, ...]
    kind: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {"score": self.score.to_dict(), "program": self.program, "kind": self.kind, "tests": [t.to_dict() for t in self.tests]}


class CodeVerifier(Verifier):
    """Extract a program, run it on its tests in the sandbox, score pass/fail (see the module docstring).

    Options:
        language:      language of the programs (``python``, ``cpp``, ``c``, ``javascript``, ``bash``);
                       a row's ``language`` field overrides it. Assert-style tests are Python only.
        reward_mode:   ``all`` (1 only when every test passes) or ``fraction`` (tests passed / tests).
        stop_at_first_failure: stop running a program's tests at its first failing one (the
                       rest are ``not_run``; saves sandbox time, feedback shows the first failure).
        compare:       io comparison when a spec has no ``compare`` (``tokens``, ``exact``, ``float:1e-6``).
        require_fence: only accept a fenced code block (otherwise a fence-less completion is the program).
        time_limit_s:  wall-clock seconds per io case / per assert test (a spec's ``time_limit_s`` wins).
        memory_mb:     memory per process of a run.
        limits:        any other :class:`~rlvr.sandbox.Limits` fields (a dict or a Limits).
        backend:       sandbox backend (``auto``: the strongest available), created on first use.
        workers:       sandbox runs in flight (default: one per CPU).
        timeout:       hard cap in seconds on any single sandbox run (``score_many(timeout=)`` overrides).
        sandbox_options: backend options passed to :class:`~rlvr.sandbox.Sandbox` (e.g. ``image``).
    """

    name = "code"
    reference_key = "tests"
    item_kwargs = (ROW_LANGUAGE_KEY,)
    isolated = False
    keep_tail = True

    def __init__(
        self,
        language: str = "python",
        reward_mode: RewardMode = "all",
        stop_at_first_failure: bool = False,
        compare: str = "tokens",
        require_fence: bool = False,
        time_limit_s: float | None = None,
        memory_mb: int | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        backend: str = "auto",
        workers: int | None = None,
        timeout: float = DEFAULT_RUN_TIMEOUT_S,
        sandbox_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.language = _language("language", language)
        if reward_mode not in ("all", "fraction"):
            raise ConfigError("reward_mode", f"must be 'all' or 'fraction', got {reward_mode!r}", "'fraction' gives partial credit per passed test")
        self.reward_mode = reward_mode
        for field, value in (("stop_at_first_failure", stop_at_first_failure), ("require_fence", require_fence)):
            if not isinstance(value, bool):
                raise ConfigError(field, f"must be true or false, got {value!r}")
        self.stop_at_first_failure = stop_at_first_failure
        self.require_fence = require_fence
        try:
            self.compare = parse_compare(compare).name
        except SpecError as e:
            raise ConfigError("compare", str(e)) from None
        self.limits = _limits(limits, time_limit_s, memory_mb)
        if not isinstance(backend, str) or (backend != "auto" and backend not in backend_names()):
            raise ConfigError("backend", f"unknown sandbox backend {backend!r}", f"choose auto, {', '.join(backend_names())}")
        self.backend = backend
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError("workers", f"must be a whole number >= 1, got {workers!r}")
        self.workers = workers
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError("timeout", f"must be > 0 seconds, got {timeout!r}", "e.g. timeout=60")
        self.timeout = float(timeout)
        if sandbox_options is not None and not isinstance(sandbox_options, Mapping):
            raise ConfigError("sandbox_options", f"must be a mapping of backend options, got {type(sandbox_options).__name__}")
        self.sandbox_options = dict(sandbox_options or {})

    # ----------------------------------------------------------------- sandbox lifecycle
    @property
    def sandbox(self) -> Sandbox:
        """The verifier's sandbox, created on first use in each process (SandboxError if no backend works here)."""
        held = self.__dict__.get("_sandbox_obj")
        if held is None or held[0] != os.getpid():  # none yet, or a forked child's copy of its parent's
            with _SANDBOX_LOCK:
                held = self.__dict__.get("_sandbox_obj")
                if held is None or held[0] != os.getpid():
                    sb = Sandbox(self.backend, self.limits, concurrency=self._concurrency(), **self.sandbox_options)
                    held = self.__dict__["_sandbox_obj"] = (os.getpid(), sb)
        return held[1]

    def warmup(self) -> "CodeVerifier":
        """Create the sandbox and start its workers now, so the first batch pays no start-up."""
        self.sandbox.warmup()
        return self

    def close(self) -> None:
        """Stop the sandbox workers (a later call starts new ones)."""
        held = self.__dict__.pop("_sandbox_obj", None)
        if held is not None and held[0] == os.getpid():
            held[1].close()
        super().close()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_sandbox_obj", None)  # workers and pipes stay with the process that made them
        return state

    def _concurrency(self) -> int:
        return self.workers or os.cpu_count() or 1

    # ----------------------------------------------------------------- scoring
    def _score(self, completion: str, reference: Any, **kw: Any) -> Score:
        return self.judge_many([{"completion": completion, self.reference_key: reference, **kw}])[0].score

    def score_many(
        self,
        items: Iterable[Mapping[str, Any]],
        workers: int | None = None,
        timeout: float | None = None,
        on_result: Callable[[int, Score], None] | None = None,
    ) -> list[Score]:
        """Score rows of ``{"completion": ..., "tests": ...}`` in order, all in flight together.

        ``workers``: sandbox runs in flight; ``timeout``: hard cap on any single run (an io case,
        or an assert-style item's whole harness run). Never raises on a row: a malformed row or
        spec is an ``error`` Score. ``on_result(index, score)`` is called as each item finishes.
        """
        on_report = None if on_result is None else (lambda i, r: on_result(i, r.score))
        return [r.score for r in self.judge_many(items, workers=workers, timeout=timeout, on_result=on_report)]

    def judge_many(
        self,
        items: Iterable[Mapping[str, Any]],
        workers: int | None = None,
        timeout: float | None = None,
        on_result: Callable[[int, CodeReport], None] | None = None,
    ) -> list[CodeReport]:
        """Like ``score_many``, returning each item's :class:`CodeReport` (per-test results included)."""
        cap = self.timeout if timeout is None else timeout
        if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not cap > 0:
            raise ConfigError("timeout", f"must be > 0 seconds, got {timeout!r}", "pass e.g. timeout=60")
        rows = list(items)
        reports: list[CodeReport | None] = [None] * len(rows)
        report_lock = threading.Lock()
        started = time.perf_counter()
        limits_cache: dict[float, Limits] = {}

        def limits_for(wall: float) -> Limits:
            lim = limits_cache.get(wall)
            if lim is None:
                lim = limits_cache[wall] = self.limits.replace(time_limit_s=wall, cpu_time_s=None)
            return lim

        def finish(i: int, report: CodeReport) -> None:
            with report_lock:
                reports[i] = report
                if on_result is not None:
                    on_result(i, report)

        graders: list[tuple[int, Grader]] = []
        for i, row in enumerate(rows):
            t0 = time.perf_counter()
            try:
                prepared = self._prepare(row, float(cap), limits_for)
            except Exception as e:  # a bug on an odd row fails that row, never the batch
                log.exception("code verifier could not prepare row %d", i)
                prepared = CodeReport(Score.failed("error", f"{type(e).__name__}: {e}"[:500]), None, (), None)
            if isinstance(prepared, CodeReport):
                finish(i, _with_ms(prepared, t0))
            else:
                graders.append((i, prepared))
        if graders:
            self._drive(graders, workers, lambda i, g: finish(i, _with_ms(self._report(g), started)))
        return [r if r is not None else CodeReport(Score.failed("error", "item was not scored"), None, (), None) for r in reports]

    def _prepare(self, row: Any, cap: float, limits_for: Callable[[float], Limits]) -> CodeReport | Grader:
        """Unpack, extract and validate one row: a finished report, or a grader ready to run."""
        unpacked = self._unpack(row)
        if isinstance(unpacked, Score):
            return CodeReport(unpacked, None, (), None)
        text, reference, kw = unpacked
        language = self.language
        if kw.get(ROW_LANGUAGE_KEY) is not None:
            try:
                language = _language("language", kw[ROW_LANGUAGE_KEY])
            except ConfigError as e:
                return CodeReport(Score.failed("error", f"row language: {e.problem}"), None, (), None)
        try:
            spec = parse_spec(reference, self.compare)
        except SpecError as e:
            return CodeReport(Score.failed("error", f"bad test spec: {e}"), None, (), None)
        if spec.kind == "assert" and language != "python":
            return CodeReport(Score.failed("error", f"assert-style tests run Python programs; this row's language is {language}"), None, (), spec.kind)
        found = extract_program(text, language, raw=not self.require_fence)
        if found.program is None:
            return CodeReport(Score.failed("no_answer", found.how), None, (), spec.kind)
        opts = GradeOptions(language, self.limits.time_limit_s, cap, self.stop_at_first_failure, self.limits, limits_for)
        try:
            return make_grader(found.program, spec, opts)
        except ConfigError as e:  # e.g. a NUL byte the sandbox refuses in a file name (never in a program)
            return CodeReport(Score.failed("error", f"cannot prepare the run: {e}"), found.program, (), spec.kind)

    def _drive(self, graders: list[tuple[int, Grader]], workers: int | None, finished: Callable[[int, Grader], None]) -> None:
        """Run every grader's sandbox runs, ``workers`` at a time, feeding results back as they end."""
        try:
            sandbox = self.sandbox
        except (SandboxError, ConfigError) as e:
            log.warning("code verifier: no sandbox: %s", e)
            for i, g in graders:
                g.error, g.done = f"no sandbox: {e}", True
                finished(i, g)
            return
        lock = threading.Lock()
        idle = threading.Event()
        outstanding = 0
        executor = ThreadPoolExecutor(max_workers=workers or self._concurrency(), thread_name_prefix="rlvr-code")

        def launch(i: int, grader: Grader, runs: list) -> None:
            nonlocal outstanding
            with lock:
                outstanding += len(runs)
            for tag, program, limits in runs:
                executor.submit(one, i, grader, tag, program, limits)

        def one(i: int, grader: Grader, tag: Any, program: Any, limits: Limits) -> None:
            nonlocal outstanding
            try:
                try:
                    result = sandbox.run(program, limits=limits)
                except Exception as e:  # the sandbox must not lose a row: the row is an error instead
                    log.exception("sandbox run failed")
                    result = ExecResult.sandbox_error(sandbox.backend, f"{type(e).__name__}: {e}")
                with lock:
                    try:
                        more = [] if grader.done else grader.feed(tag, result)
                        now_done = grader.done
                    except Exception as e:  # a grader bug fails its row, never the batch
                        log.exception("code grader failed")
                        grader.error, grader.done, more, now_done = f"grader failed: {type(e).__name__}: {e}", True, [], True
                if more:
                    launch(i, grader, more)
                elif now_done:
                    finished(i, grader)
            finally:
                with lock:
                    outstanding -= 1
                    if outstanding == 0:
                        idle.set()

        try:
            for i, grader in graders:
                try:
                    runs = grader.start()
                except Exception as e:  # a grader bug fails its row, never the batch
                    log.exception("code grader failed to start")
                    grader.error, grader.done, runs = f"grader failed: {type(e).__name__}: {e}", True, []
                if runs:
                    launch(i, grader, runs)
                else:
                    grader.done = True
                    finished(i, grader)
            with lock:
                if outstanding == 0:
                    idle.set()
            idle.wait()
        finally:
            executor.shutdown(wait=True)

    # ----------------------------------------------------------------- reports
    def _report(self, grader: Grader) -> CodeReport:
        parsed = grader.program[:PARSED_CHARS]
        kind = grader.spec.kind
        if grader.error is not None:
            return CodeReport(Score(0.0, None, "error", parsed, grader.error), grader.program, tuple(r for r in grader.results if r is not None), kind)
        results = tuple(r if r is not None else TestResult(i, "not_run", "no result") for i, r in enumerate(grader.results))
        if not results:  # a spec always has tests; never call "nothing ran" a pass
            return CodeReport(Score(0.0, None, "error", parsed, "no tests were run"), grader.program, (), kind)
        detail = render_detail(results, kind, getattr(grader.spec.compare, "name", None) if kind == "io" else None)
        passed = sum(r.passed for r in results)
        if passed == len(results):
            return CodeReport(Score(1.0, True, "ok", parsed, detail), grader.program, results, kind)
        first = next((r for r in results if r.verdict not in ("pass", "not_run")), None) or next(r for r in results if not r.passed)
        reward = passed / len(results) if self.reward_mode == "fraction" else 0.0
        status = "timeout" if first.verdict == "timeout" else "wrong"
        return CodeReport(Score(reward, False, status, parsed, detail), grader.program, results, kind)


def render_detail(results: Sequence[TestResult], kind: str, compare: str | None = None) -> str:
    """Human text: a summary line, then failing tests (first failure first), then the passing ones."""
    noun = "case" if kind == "io" else "test"
    n, passed = len(results), [r.index for r in results if r.passed]
    head = f"passed {len(passed)}/{n} {noun}s" + (f" (compare: {compare})" if compare else "")
    groups: dict[tuple[str, str], list[TestResult]] = {}
    for r in results:
        if not r.passed:
            groups.setdefault((r.verdict, r.message), []).append(r)
    words = {"wrong": "wrong answer" if kind == "io" else "failed", "timeout": "timeout", "error": "error", "not_run": "not run"}
    lines = [head]
    for (verdict, message), members in list(groups.items())[:MAX_DETAIL_GROUPS]:
        if len(members) == 1:
            r = members[0]
            who = f"{noun} {r.index + 1}" + (f" `{r.label}`" if kind != "io" and r.label else "")
        else:
            who = f"{noun}s {_ranges([m.index for m in members])}"
        lines.append(f"{who}: {words.get(verdict, verdict)}" + (f": {message}" if message else ""))
    if len(groups) > MAX_DETAIL_GROUPS:
        rest = sum(len(m) for m in list(groups.values())[MAX_DETAIL_GROUPS:])
        lines.append(f"... and {rest} more failing {noun}s")
    if passed and len(passed) < n:
        lines.append(f"passed: {noun}s {_ranges(passed)}")
    return "\n".join(lines)


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 4] -> "1-3, 5" (1-based)."""
    out, start, prev = [], None, None
    for i in sorted(indices):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(f"{start + 1}" if start == prev else f"{start + 1}-{prev + 1}")
            start = prev = i
    if start is not None:
        out.append(f"{start + 1}" if start == prev else f"{start + 1}-{prev + 1}")
    return ", ".join(out)


def _with_ms(report: CodeReport, t0: float) -> CodeReport:
    return CodeReport(report.score.with_ms((time.perf_counter() - t0) * 1000.0), report.program, report.tests, report.kind)


def _language(field: str, value: Any) -> str:
    try:
        return get_language(value).name
    except ConfigError as e:
        raise ConfigError(field, e.problem, e.fix) from None


def _limits(limits: Limits | Mapping[str, Any] | None, time_limit_s: float | None, memory_mb: int | None) -> Limits:
    base = Limits.coerce(limits, time_limit_s=DEFAULT_TIME_LIMIT_S)
    changes = {k: v for k, v in (("time_limit_s", time_limit_s), ("memory_mb", memory_mb)) if v is not None}
    return base.replace(**changes) if changes else base


register_verifier("code", CodeVerifier)

__all__ = ["CodeVerifier", "CodeReport", "render_detail"]
