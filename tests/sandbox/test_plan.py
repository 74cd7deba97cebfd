"""Status classification: the supervisor's own observations decide, never what the program printed."""

import signal

import pytest

from rlvr.sandbox import Limits
from rlvr.sandbox.languages import get_language
from rlvr.sandbox.plan import classify

LIM = Limits(time_limit_s=2, memory_mb=256)
PY = get_language("python")


def facts(**kw):
    base = {"name": "run", "exit_code": 0, "signal": None, "timed_out": False, "output_exceeded": False, "cpu_s": 0.1, "max_rss_kb": 10_000, "error": None}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "kw,stderr,status",
    [
        ({}, b"", "ok"),
        ({"exit_code": 1}, b"Traceback ... ValueError", "runtime_error"),
        ({"timed_out": True, "exit_code": -9, "signal": 9}, b"", "timeout"),
        ({"output_exceeded": True, "exit_code": -9, "signal": 9}, b"", "output_limit"),
        ({"signal": signal.SIGXCPU, "exit_code": -signal.SIGXCPU}, b"", "timeout"),
        ({"signal": 9, "exit_code": -9, "cpu_s": 2.5}, b"", "timeout"),
        ({"signal": signal.SIGXFSZ, "exit_code": -signal.SIGXFSZ}, b"", "output_limit"),
        ({"exit_code": 1}, b"MemoryError", "memory_limit"),
        ({"exit_code": -11, "signal": 11, "max_rss_kb": 250_000}, b"", "memory_limit"),
        ({"exit_code": -9, "signal": 9}, b"", "killed"),
        ({"exit_code": -11, "signal": 11}, b"", "runtime_error"),
        ({"error": "toolchain missing: 'gcc'"}, b"", "sandbox_error"),
        ({"exit_code": 127}, b"rlvr sandbox: cannot execute", "runtime_error"),
    ],
)
def test_classify(kw, stderr, status):
    assert classify(facts(**kw), stderr, PY, LIM)[0] == status


def test_the_wall_clock_wins_over_what_the_program_did():
    assert classify(facts(timed_out=True, exit_code=0), b"", PY, LIM)[0] == "timeout"
