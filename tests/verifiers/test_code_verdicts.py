"""Whose fault: what a program does to itself is ``wrong``; ``error`` (not scored) only when our side fails.

A policy rewarded 0.0 for a wrong answer but None ("not scored") for a verifier error would learn
to break its own run. These tests drive the real sandbox with programs that sabotage themselves,
and a sandbox that fails on its own (always, or once) to show the other side of the line.
"""

from __future__ import annotations

import os
import threading

import pytest

from rlvr.sandbox import ExecResult
from rlvr.verifiers import CodeVerifier
from rlvr.verifiers import code_harness as H


def _sandbox_works() -> bool:
    try:
        from rlvr.sandbox import default_backend

        default_backend()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _sandbox_works(), reason="needs a working sandbox backend")

DOUBLE = {"kind": "io", "cases": [{"stdin": f"{i}\n", "stdout": f"{2 * i}\n"} for i in range(1, 5)]}
ADD = {"kind": "assert", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n", "entry_point": "add"}

# Wrong C programs (they print 7) that also wreck their own binary in the ways a policy would try.
_C_HEAD = "#include <stdio.h>\n#include <unistd.h>\n#include <sys/stat.h>\nint main(int argc, char **argv) {\n"
SABOTAGE = {
    "deletes_its_binary": 'unlink(argv[0]); unlink("main");',
    "replaces_it_with_a_script": 'unlink(argv[0]); FILE *f = fopen(argv[0], "w"); if (f) { fputs("#!/bin/sh\\necho 8\\n", f); fclose(f); chmod(argv[0], 0755); }',
    "symlinks_it_to_proc_pagemap": 'unlink(argv[0]); unlink("main"); symlink("/proc/self/pagemap", argv[0]); symlink("/proc/self/pagemap", "main");',
    "symlinks_it_to_proc_kmsg": 'unlink(argv[0]); symlink("/proc/kmsg", argv[0]);',
    "turns_it_into_a_fifo": 'unlink(argv[0]); mkfifo(argv[0], 0777);',
    "turns_it_into_a_directory": 'unlink(argv[0]); mkdir(argv[0], 0777);',
}


@pytest.fixture(scope="module")
def c_verdicts():
    v = CodeVerifier(language="c", workers=2)
    try:
        names = list(SABOTAGE)
        rows = [{"completion": f"```c\n{_C_HEAD}{SABOTAGE[n]}\nprintf(\"7\\n\");\nreturn 0;\n}}\n```", "tests": DOUBLE} for n in names]
        yield dict(zip(names, v.score_many(rows)))
    finally:
        v.close()


@pytest.mark.parametrize("name", list(SABOTAGE))
def test_a_wrong_c_program_that_sabotages_its_own_binary_is_wrong_not_an_error(c_verdicts, name):
    s = c_verdicts[name]
    assert s.status == "wrong" and s.reward == 0.0 and s.correct is False, s.detail


class _Sandbox:
    """Stands in for the verifier's sandbox: forwards to a real one except where told to fail."""

    def __init__(self, real, fail) -> None:
        self.real, self.fail, self.backend = real, fail, real.backend
        self.calls = 0
        self.lock = threading.Lock()

    def run(self, program, limits=None):
        with self.lock:
            self.calls += 1
            n = self.calls
        failed = self.fail(n, program)
        return failed if failed is not None else self.real.run(program, limits=limits)


def _with_sandbox(v: CodeVerifier, fail) -> _Sandbox:
    fake = _Sandbox(v.sandbox, fail)
    v.__dict__["_sandbox_obj"] = (os.getpid(), fake)
    return fake


def _broken(n, program):
    return ExecResult.sandbox_error("fake", "worker died")


def test_a_sandbox_that_fails_for_every_program_is_an_error_not_a_wrong_answer():
    v = CodeVerifier()
    real = v.sandbox
    try:
        fake = _with_sandbox(v, _broken)
        for tests, program in ((DOUBLE, "print(2 * int(input()))"), (ADD, "def add(a, b):\n    return a + b")):
            s = v.score(f"```python\n{program}\n```", tests)
            assert s.status == "error" and s.correct is None, s.detail
            assert "a trivial python program fails too" in s.detail
            assert v.as_reward_func()(completions=[f"```python\n{program}\n```"], tests=[tests]) == [None]
        assert fake.calls >= 3  # the run, its retry, the canary
    finally:
        real.close()


def test_a_sandbox_failure_that_passes_is_retried_and_costs_the_program_nothing():
    v = CodeVerifier()
    real = v.sandbox
    try:
        _with_sandbox(v, lambda n, program: ExecResult.sandbox_error("fake", "worker died") if n == 1 else None)
        assert v.score("```python\nprint(2 * int(input()))\n```", DOUBLE).status == "ok"
        _with_sandbox(v, lambda n, program: ExecResult.sandbox_error("fake", "worker died") if n == 1 else None)
        assert v.score("```python\ndef add(a, b):\n    return a + b\n```", ADD).status == "ok"
    finally:
        real.close()


def test_a_harness_the_program_keeps_from_starting_is_the_programs_fault():
    # Whatever a candidate does that makes its harness run end like our failure (here: exit code
    # FATAL_EXIT, no records), twice, while the canary harness works: wrong, not error.
    bad = "def add(a, b):\n    return a - b\n"

    def starved(n, program):
        if program.files.get(H.SOLUTION_FILE) == bad.encode():
            return ExecResult("runtime_error", H.FATAL_EXIT, "", "rlvr-harness: MemoryError\n", 0.01, 0.01, 1.0, "fake")
        return None

    v = CodeVerifier()
    real = v.sandbox
    try:
        _with_sandbox(v, starved)
        s = v.score(f"```python\n{bad}```", ADD)
        assert s.status == "wrong" and s.reward == 0.0, s.detail
        assert "the program broke its own run" in s.detail and "could not start" in s.detail
    finally:
        real.close()
