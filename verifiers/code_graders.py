"""Graders: how one program and one validated spec become sandbox runs, and runs become TestResults.

A grader is a small state machine the verifier's scheduler drives: ``start()`` gives the first
runs, ``feed(tag, result)`` takes each finished run and gives the runs to start next, and once
``done`` its ``results`` hold one :class:`TestResult` per test (``error`` is set instead when the
sandbox itself failed, which is not the program's fault). One grader class per spec kind, in
``GRADERS``.

io: one run per case with only that case's stdin (its expected output never enters the
sandbox; the comparison happens here). Compiled languages run their first case alone, so the
compile happens once and the other cases reuse the cached binary. With ``stop_at_first_failure``
cases run one after another and stop at the first failure.

assert: one run of :mod:`~rlvr.verifiers.code_harness` with the program as ``solution.py`` and
the instrumented test code plus a fresh MAC key on stdin; only records carrying a valid MAC count.
"""

from __future__ import annotations

import hmac
import json
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

from rlvr.sandbox import ExecResult, Limits, Program, get_language
from rlvr.verifiers import code_harness
from rlvr.verifiers.code_tests import AssertSpec, IoSpec, TestResult

SHOWN_CHARS = 200  # of stdin / expected / got in a message
Run = tuple[Any, Program, Limits]  # (tag the grader knows it by, program, limits)


@dataclass(frozen=True)
class GradeOptions:
    """What every grader needs to know besides the program and the spec."""

    language: str
    time_limit_s: float  # per case / per test (a spec's own time_limit_s wins)
    run_cap_s: float  # no single sandbox run may take longer (score_many's timeout)
    stop_at_first_failure: bool
    limits: Limits
    limits_for: Callable[[float], Limits]  # limits with this wall clock (cached by the caller)


def _show(text: str, limit: int = SHOWN_CHARS) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _failure(result: ExecResult, time_limit: float) -> tuple[str, str]:
    """(verdict, message) for a run that did not exit 0."""
    if result.status == "timeout":
        return "timeout", f"time limit {time_limit:g}s exceeded"
    if result.stage == "compile":
        return "error", "compile error: " + _tail(result.stderr or result.detail, 600)
    if result.status == "runtime_error":
        how = f"killed by {result.signal}" if result.signal else f"exit code {result.exit_code}"
        err = _tail(result.stderr)
        return "error", f"runtime error ({how})" + (f": {err}" if err else "")
    return "error", f"{result.status.replace('_', ' ')}" + (f": {result.detail}" if result.detail else "")


class Grader(ABC):
    """Base: holds the results and the done/error state."""

    def __init__(self, program: str, spec: Any, opts: GradeOptions) -> None:
        self.program = program
        self.spec = spec
        self.opts = opts
        self.results: list[TestResult | None] = []
        self.error: str | None = None  # the sandbox failed: an ``error`` Score, not the program's fault
        self.done = False

    @abstractmethod
    def start(self) -> list[Run]:
        """The first runs to start."""

    @abstractmethod
    def feed(self, tag: Any, result: ExecResult) -> list[Run]:
        """Take a finished run; return the runs to start next."""


class IoGrader(Grader):
    """One run per case (see the module docstring)."""

    def __init__(self, program: str, spec: IoSpec, opts: GradeOptions) -> None:
        super().__init__(program, spec, opts)
        self.time_limit = min(spec.time_limit_s or opts.time_limit_s, opts.run_cap_s)
        self.limits = opts.limits_for(self.time_limit)
        self.base = Program(opts.language, program)
        self.results = [None] * len(spec.cases)
        self.sequential = opts.stop_at_first_failure
        self.compile_first = get_language(opts.language).compiled
        self.next_case = 0

    def _run(self, i: int) -> Run:
        return (i, self.base.with_stdin(self.spec.cases[i].stdin), self.limits)

    def start(self) -> list[Run]:
        if self.sequential or self.compile_first:
            self.next_case = 1
            return [self._run(0)]
        self.next_case = len(self.spec.cases)
        return [self._run(i) for i in range(len(self.spec.cases))]

    def feed(self, tag: int, result: ExecResult) -> list[Run]:
        case = self.spec.cases[tag]
        label = "stdin " + _show(case.stdin, 60)
        if result.status == "sandbox_error":
            self.error = f"sandbox error on case {tag + 1}: {result.detail}"
            return self._finish("sandbox error")
        if result.status == "ok":
            if self.spec.compare(case.stdout, result.stdout):
                self.results[tag] = TestResult(tag, "pass", "", label, round(result.wall_s * 1000, 3))
            else:
                msg = f"stdin {_show(case.stdin)}, expected {_show(case.stdout)}, got {_show(result.stdout)}"
                self.results[tag] = TestResult(tag, "wrong", msg, label, round(result.wall_s * 1000, 3))
        else:
            verdict, msg = _failure(result, self.time_limit)
            self.results[tag] = TestResult(tag, verdict, f"{msg}; stdin {_show(case.stdin)}" if verdict == "timeout" else msg, label, round(result.wall_s * 1000, 3))
            if result.stage == "compile":  # the same compile error for every case: do not run them
                return self._finish(msg, verdict="error")
        failed = not self.results[tag].passed
        if self.sequential and failed:
            return self._finish("stopped at the first failure")
        if self.next_case >= len(self.spec.cases):
            self.done = all(r is not None for r in self.results)
            return []
        if self.sequential:
            self.next_case += 1
            return [self._run(self.next_case - 1)]
        rest = range(self.next_case, len(self.spec.cases))  # the compile-first case is in: the rest share its binary
        self.next_case = len(self.spec.cases)
        return [self._run(i) for i in rest]

    def _finish(self, reason: str, verdict: str = "not_run") -> list[Run]:
        for i, r in enumerate(self.results):
            if r is None:
                self.results[i] = TestResult(i, verdict, reason, "stdin " + _show(self.spec.cases[i].stdin, 60))
        self.next_case = len(self.spec.cases)
        self.done = True
        return []


@lru_cache(maxsize=1)
def harness_source() -> str:
    """The harness program text shipped into the sandbox."""
    return resources.files("rlvr.verifiers").joinpath("code_harness.py").read_text(encoding="utf-8")


class AssertGrader(Grader):
    """One harness run for all of a program's assert-style tests."""

    def __init__(self, program: str, spec: AssertSpec, opts: GradeOptions) -> None:
        super().__init__(program, spec, opts)
        self.time_limit = min(spec.time_limit_s or opts.time_limit_s, opts.run_cap_s)
        n = len(spec.labels)
        # Loading the program, then each test, each within the per-test limit, plus interpreter start-up.
        self.wall = min(opts.run_cap_s, self.time_limit * (n + 1) + 2.0)
        self.results = [None] * n
        self.key = secrets.token_bytes(32)

    def start(self) -> list[Run]:
        payload = {
            "key": self.key.hex(),
            "plan": self.spec.plan,
            "entry_point": self.spec.entry_point,
            "time_limit_s": self.time_limit,
            "stop_at_first_failure": self.opts.stop_at_first_failure,
        }
        prog = Program("python", harness_source(), files={code_harness.SOLUTION_FILE: self.program}, stdin=json.dumps(payload))
        return [(0, prog, self.opts.limits_for(self.wall))]

    def feed(self, tag: int, result: ExecResult) -> list[Run]:
        self.done = True
        if result.status == "sandbox_error":
            self.error = f"sandbox error: {result.detail}"
            return []
        records = list(self._records(result.stdout))
        fatal = next((r["fatal"] for r in records if "fatal" in r), None)
        if fatal is not None:
            self.error = f"the test harness failed: {fatal}"
            return []
        if not records and result.exit_code == code_harness.FATAL_EXIT:
            self.error = f"the test harness could not start: {_tail(result.stderr)}"
            return []
        labels = self.spec.labels
        load = next((r for r in records if "load" in r), None)
        if load is not None:
            verdict = load.get("v") if load.get("v") in ("timeout", "error") else "error"
            for i in range(len(labels)):
                self.results[i] = TestResult(i, verdict, str(load["load"])[:600], labels[i])
            return []
        for r in records:
            k = r.get("t")
            if isinstance(k, int) and 0 <= k < len(labels) and self.results[k] is None and r.get("v") in ("pass", "wrong", "timeout", "error", "not_run"):
                ms = r.get("ms") if isinstance(r.get("ms"), (int, float)) else 0.0
                self.results[k] = TestResult(k, r["v"], str(r.get("m", ""))[:600], labels[k], float(ms))
        done = any(r.get("done") == len(labels) for r in records)
        if not done:  # the run ended before the harness finished: the test in progress failed
            if result.status == "timeout":
                verdict, why = "timeout", f"the whole run exceeded {self.wall:g}s"
            else:
                verdict, why = "error", f"the test harness was cut short ({result.status}{', ' + result.signal if result.signal else ''})"
            first = True
            for i in range(len(labels)):
                if self.results[i] is None:
                    self.results[i] = TestResult(i, verdict if first else "not_run", why, labels[i])
                    first = False
        for i in range(len(labels)):
            if self.results[i] is None:  # a complete run names every test; be safe anyway
                self.results[i] = TestResult(i, "error", "no verdict from the test harness", labels[i])
        return []

    def _records(self, stdout: str):
        """The MAC-verified records in the harness output, in order."""
        for line in stdout.splitlines():
            if not line.startswith(code_harness.RECORD_PREFIX):
                continue
            mac, _, body = line[len(code_harness.RECORD_PREFIX):].partition(" ")
            want = code_harness.mac(self.key, body.encode("ascii", "replace"))
            if not hmac.compare_digest(mac.encode("utf-8", "replace"), want.encode("ascii")):
                continue
            try:
                record = json.loads(body)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


GRADERS: dict[str, type[Grader]] = {"io": IoGrader, "assert": AssertGrader}


def make_grader(program: str, spec: IoSpec | AssertSpec, opts: GradeOptions) -> Grader:
    """The grader for ``spec``'s kind."""
    return GRADERS[spec.kind](program, spec, opts)


def summarize(results: Sequence[TestResult]) -> dict[str, int]:
    """Counts per verdict."""
    out: dict[str, int] = {}
    for r in results:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


__all__ = ["AssertGrader", "GRADERS", "GradeOptions", "Grader", "IoGrader", "harness_source", "make_grader", "summarize"]
