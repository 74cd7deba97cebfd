"""Graders: how one program and one validated spec become sandbox runs, and runs become TestResults.

A grader is a small state machine the verifier's scheduler drives: ``start()`` gives the first
runs, ``feed(tag, result)`` takes each finished run and gives the runs to start next, and once
``done`` its ``results`` hold one :class:`TestResult` per test (``error`` is set instead when the
sandbox itself failed, which is not the program's fault). One grader class per spec kind, in
``GRADERS``.

Whose fault: a run that ends looking like a failure of ours (``sandbox_error``, a test harness
that could not start or report) is run once more; if it fails the same way again, a trivial
program in the same language (``CANARIES``) runs in the same sandbox. If that canary works, the
sandbox works, so the candidate broke its own run (deleting or replacing its binary, symlinking
it into ``/proc``, starving or killing its harness): those tests are ``error`` verdicts and the
Score is ``wrong`` (reward 0). Only when the canary fails too (or the language has no canary) is
the Score ``error``, the status that means "not scored" — a program cannot turn its penalty into
an abstention.

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

#: A trivial program per language that must exit 0 in any working sandbox (see "Whose fault").
#: A language without one keeps every sandbox failure ``error``: better unscored than blamed wrongly.
CANARIES: dict[str, str] = {
    "python": "pass\n",
    "c": "int main(void) { return 0; }\n",
    "cpp": "int main() { return 0; }\n",
    "javascript": "process.exitCode = 0;\n",
    "bash": "exit 0\n",
}


@dataclass(frozen=True)
class Retry:
    """Tag of the second run of a test whose first run failed like a fault of ours."""

    of: Any


CANARY = "canary"  # tag of the canary run


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
    """Base: holds the results and the done/error state, and decides whose fault a failed run is.

    Subclasses implement ``_start`` (first runs), ``_take`` (a finished run -> next runs),
    ``_fault`` (why a run looks like a failure of ours, or None), ``_blame`` (record a test the
    program broke) and ``_canary`` (the trivial run that tells the two apart).
    """

    def __init__(self, program: str, spec: Any, opts: GradeOptions) -> None:
        self.program = program
        self.spec = spec
        self.opts = opts
        self.results: list[TestResult | None] = []
        self.error: str | None = None  # the sandbox failed: an ``error`` Score, not the program's fault
        self.done = False
        self._sent: dict[Any, Run] = {}
        self._suspects: dict[Any, str] = {}  # tag -> fault text, waiting for the canary
        self._canary_state: str | None = None  # None, "running", "ok"

    def start(self) -> list[Run]:
        """The first runs to start."""
        return self._sent_runs(self._start())

    def feed(self, tag: Any, result: ExecResult) -> list[Run]:
        """Take a finished run; return the runs to start next."""
        if tag == CANARY:
            return self._after_canary(result)
        retried = isinstance(tag, Retry)
        key = tag.of if retried else tag
        fault = self._fault(key, result)
        if fault is None:
            return self._sent_runs(self._take(key, result))
        if not retried:  # once more: a passing fault of ours should not cost the program anything
            _, program, limits = self._sent[key]
            return [(Retry(key), self._rerun(key, program), limits)]
        self._suspects[key] = fault
        if self._canary_state == "ok":
            return self._settle()
        if self._canary_state is None:
            self._canary_state = "running"
            canary = self._canary()
            if canary is None:
                return self._ours(f"{fault} (twice; no canary program for {self.opts.language} to tell whose fault it is)")
            return [(CANARY, canary[0], canary[1])]
        return []

    def _after_canary(self, result: ExecResult) -> list[Run]:
        if not self._canary_passed(result):
            first = next(iter(self._suspects.values()), "sandbox failure")
            why = result.detail or result.stderr.strip()[-300:] or f"exit code {result.exit_code}"
            return self._ours(f"{first}; a trivial {self.opts.language} program fails too ({result.status}: {why})")
        self._canary_state = "ok"
        return self._settle()

    def _settle(self) -> list[Run]:
        out: list[Run] = []
        while self._suspects and not self.done:
            key, fault = self._suspects.popitem()
            out += self._blame(key, f"the program broke its own run ({fault}); a trivial program runs fine in the same sandbox")
        return self._sent_runs(out)

    def _ours(self, why: str) -> list[Run]:
        self.error = why
        self.done = True
        return []

    def _sent_runs(self, runs: list[Run]) -> list[Run]:
        for run in runs:
            self._sent[run[0]] = run
        return runs

    def _rerun(self, key: Any, program: Program) -> Program:
        """The program for a test's second run (the same one unless a subclass needs fresh secrets)."""
        return program

    def _canary(self) -> tuple[Program, Limits] | None:
        source = CANARIES.get(self.opts.language)
        if source is None:
            return None
        return Program(self.opts.language, source), self.opts.limits_for(min(max(self.opts.time_limit_s, 5.0), self.opts.run_cap_s))

    def _canary_passed(self, result: ExecResult) -> bool:
        return result.status == "ok"

    @abstractmethod
    def _start(self) -> list[Run]:
        """The first runs to start."""

    @abstractmethod
    def _take(self, tag: Any, result: ExecResult) -> list[Run]:
        """Take a finished run the program is answerable for; return the runs to start next."""

    @abstractmethod
    def _fault(self, tag: Any, result: ExecResult) -> str | None:
        """Why this run looks like a failure of ours (None: a normal verdict)."""

    @abstractmethod
    def _blame(self, tag: Any, why: str) -> list[Run]:
        """Record the test(s) of run ``tag`` as the program's own ``error``; return the runs to start next."""


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

    def _start(self) -> list[Run]:
        if self.sequential or self.compile_first:
            self.next_case = 1
            return [self._run(0)]
        self.next_case = len(self.spec.cases)
        return [self._run(i) for i in range(len(self.spec.cases))]

    def _fault(self, tag: int, result: ExecResult) -> str | None:
        return f"sandbox error on case {tag + 1}: {result.detail}" if result.status == "sandbox_error" else None

    def _take(self, tag: int, result: ExecResult) -> list[Run]:
        case = self.spec.cases[tag]
        label = "stdin " + _show(case.stdin, 60)
        ms = round(result.wall_s * 1000, 3)
        shown = {"input": _show(case.stdin), "expected": _show(case.stdout)}
        if result.status == "ok":
            shown["got"] = _show(result.stdout)
            if self.spec.compare(case.stdout, result.stdout):
                self.results[tag] = TestResult(tag, "pass", "", label, ms, **shown)
            else:
                msg = f"stdin {shown['input']}, expected {shown['expected']}, got {shown['got']}"
                self.results[tag] = TestResult(tag, "wrong", msg, label, ms, **shown)
        else:
            verdict, msg = _failure(result, self.time_limit)
            shown["got"] = msg
            self.results[tag] = TestResult(tag, verdict, f"{msg}; stdin {_show(case.stdin)}" if verdict == "timeout" else msg, label, ms, **shown)
            if result.stage == "compile":  # the same compile error for every case: do not run them
                return self._finish(msg, verdict="error")
        return self._next(tag)

    def _blame(self, tag: int, why: str) -> list[Run]:
        case = self.spec.cases[tag]
        self.results[tag] = TestResult(tag, "error", why, "stdin " + _show(case.stdin, 60), input=_show(case.stdin), expected=_show(case.stdout), got=why)
        return self._next(tag)

    def _next(self, tag: int) -> list[Run]:
        """The runs to start after case ``tag`` got its verdict."""
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

    def _payload(self, key: bytes, plan: Any, entry_point: str | None) -> str:
        return json.dumps({
            "key": key.hex(),
            "plan": plan,
            "entry_point": entry_point,
            "time_limit_s": self.time_limit,
            "stop_at_first_failure": self.opts.stop_at_first_failure,
        })

    def _start(self) -> list[Run]:
        prog = Program("python", harness_source(), files={code_harness.SOLUTION_FILE: self.program}, stdin=self._payload(self.key, self.spec.plan, self.spec.entry_point))
        return [(0, prog, self.opts.limits_for(self.wall))]

    def _rerun(self, key: Any, program: Program) -> Program:
        self.key = secrets.token_bytes(32)  # the second run gets its own secret
        return Program("python", harness_source(), files={code_harness.SOLUTION_FILE: self.program}, stdin=self._payload(self.key, self.spec.plan, self.spec.entry_point))

    def _canary(self) -> tuple[Program, Limits] | None:
        plan, entry, solution = _canary_plan()
        self.canary_key = secrets.token_bytes(32)
        prog = Program("python", harness_source(), files={code_harness.SOLUTION_FILE: solution}, stdin=self._payload(self.canary_key, plan, entry))
        return prog, self.opts.limits_for(min(max(self.time_limit * 2 + 2.0, 10.0), self.opts.run_cap_s))

    def _canary_passed(self, result: ExecResult) -> bool:
        records = list(self._records(result.stdout, self.canary_key))
        return result.status == "ok" and any(r.get("t") == 0 and r.get("v") == "pass" for r in records) and any(r.get("done") == 1 for r in records)

    def _fault(self, tag: int, result: ExecResult) -> str | None:
        if result.status == "sandbox_error":
            return f"sandbox error: {result.detail}"
        records = list(self._records(result.stdout))
        fatal = next((r["fatal"] for r in records if "fatal" in r), None)
        if fatal is not None:
            return f"the test harness failed: {str(fatal)[:300]}"
        if not records and result.exit_code == code_harness.FATAL_EXIT:
            return f"the test harness could not start: {_tail(result.stderr)}"
        return None

    def _blame(self, tag: int, why: str) -> list[Run]:
        for i, label in enumerate(self.spec.labels):
            if self.results[i] is None or self.results[i].verdict != "pass":
                self.results[i] = TestResult(i, "error", why, label, got=why)
        self.done = True
        return []

    def _take(self, tag: int, result: ExecResult) -> list[Run]:
        self.done = True
        records = list(self._records(result.stdout))
        labels = self.spec.labels
        load = next((r for r in records if "load" in r), None)
        if load is not None:
            verdict = load.get("v") if load.get("v") in ("timeout", "error") else "error"
            for i in range(len(labels)):
                self.results[i] = TestResult(i, verdict, str(load["load"])[:600], labels[i], got=str(load["load"])[:200])
            return []
        for r in records:
            k = r.get("t")
            if isinstance(k, int) and 0 <= k < len(labels) and self.results[k] is None and r.get("v") in ("pass", "wrong", "timeout", "error", "not_run"):
                ms = r.get("ms") if isinstance(r.get("ms"), (int, float)) else 0.0
                call, got = str(r.get("c", ""))[:SHOWN_CHARS * 2], str(r.get("r", ""))[:SHOWN_CHARS * 2]
                self.results[k] = TestResult(k, r["v"], str(r.get("m", ""))[:600], labels[k], float(ms), input=call, got=got, expected=labels[k])
        done = any(r.get("done") == len(labels) for r in records)
        if not done:  # the run ended before the harness finished: the test in progress failed
            if result.status == "timeout":
                verdict, why = "timeout", f"the whole run exceeded {self.wall:g}s"
            else:
                verdict, why = "error", f"the test harness was cut short ({result.status}{', ' + result.signal if result.signal else ''})"
            first = True
            for i in range(len(labels)):
                if self.results[i] is None:
                    self.results[i] = TestResult(i, verdict if first else "not_run", why, labels[i], got=why if first else "", expected=labels[i])
                    first = False
        for i in range(len(labels)):
            if self.results[i] is None:  # a complete run names every test; be safe anyway
                self.results[i] = TestResult(i, "error", "no verdict from the test harness", labels[i])
        return []

    def _records(self, stdout: str, key: bytes | None = None):
        """The MAC-verified records (under ``key``, default the run's) in the harness output, in order."""
        key = self.key if key is None else key
        for line in stdout.splitlines():
            if not line.startswith(code_harness.RECORD_PREFIX):
                continue
            mac, _, body = line[len(code_harness.RECORD_PREFIX):].partition(" ")
            want = code_harness.mac(key, body.encode("ascii", "replace"))
            if not hmac.compare_digest(mac.encode("utf-8", "replace"), want.encode("ascii")):
                continue
            try:
                record = json.loads(body)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


@lru_cache(maxsize=1)
def _canary_plan() -> tuple[Any, str, str]:
    """(plan, entry point, solution) of the assert-style canary: one test a trivial program passes."""
    from rlvr.verifiers.code_plan import plan_tests

    return plan_tests("def check(candidate):\n    assert candidate() == 1\n", "one"), "one", "def one():\n    return 1\n"


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


__all__ = ["AssertGrader", "CANARIES", "GRADERS", "GradeOptions", "Grader", "IoGrader", "harness_source", "make_grader", "summarize"]
