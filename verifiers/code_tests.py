"""Code test specs (validated), output comparators, and the per-test result record.

Two kinds of spec, each parsed by one function in ``SPEC_KINDS``:

``{"kind": "io", "cases": [{"stdin": "1 2\\n", "stdout": "3\\n"}, ...], "compare": "tokens"}``
    Competitive programming: the program reads ``stdin`` and must print ``stdout``.
    ``compare`` (see ``COMPARATORS``): ``exact`` (the same lines; trailing whitespace at line
    ends and trailing blank lines ignored, ``\\r\\n`` read as ``\\n``), ``tokens`` (the same
    whitespace-separated tokens) or ``float:1e-6`` (tokens; where both are numbers they may
    differ by 1e-6 absolute or relative). Optional ``time_limit_s`` per case.
``{"kind": "assert", "test": "def check(candidate): ...", "entry_point": "fn"}``
    HumanEval/MBPP style: Python test code with a ``check(candidate)`` function (or MBPP-style
    top-level asserts calling the function by name). Optional ``time_limit_s`` per test.

A spec may also arrive as its JSON text (dataset columns often hold it that way). A malformed
spec raises ``SpecError`` with the reason; the verifier turns that into an ``error`` Score.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

from rlvr.verifiers.code_plan import plan_tests

VERDICTS = ("pass", "wrong", "timeout", "error", "not_run")
MAX_TIME_LIMIT_S = 3600.0


class SpecError(ValueError):
    """A test spec that cannot be used, with the reason in words."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TestResult:
    """One test's outcome (JSON-able through ``to_dict``).

    index:    0-based position of the case / assert statement.
    verdict:  ``pass``, ``wrong`` (wrong output / failed assertion), ``timeout``, ``error``
              (crash, exception, compile error, memory or output limit) or ``not_run``.
    message:  why, in one line ("expected '3', got '4'").
    label:    what the test is (the assert statement's first line, or the case's stdin).
    ms:       time the sandbox measured for it (0 when unknown).
    input, expected, got: the same facts taken apart, each already shortened for display, so a
              caller can choose what to reveal (an environment's feedback): the case's stdin or
              the call made, the expected output or the assert statement, and what the program
              printed or returned (or how it failed). Empty when unknown.
    """

    __test__ = False  # not a pytest class

    index: int
    verdict: str
    message: str = ""
    label: str = ""
    ms: float = 0.0
    input: str = ""
    expected: str = ""
    got: str = ""

    @property
    def passed(self) -> bool:
        """True when the test passed."""
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return asdict(self)


# --------------------------------------------------------------------------- comparators

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.I)


def _lines(text: str) -> list[str]:
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def compare_exact(expected: str, got: str) -> bool:
    """The same lines, ignoring trailing whitespace on each line and trailing blank lines."""
    return _lines(expected) == _lines(got)


def compare_tokens(expected: str, got: str) -> bool:
    """The same whitespace-separated tokens."""
    return expected.split() == got.split()


def compare_floats(expected: str, got: str, eps: float = 1e-6) -> bool:
    """Tokens equal, numbers within ``eps`` (absolute or relative)."""
    a, b = expected.split(), got.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        if not (_NUMBER.fullmatch(x) and _NUMBER.fullmatch(y)):
            return False
        fx, fy = float(x), float(y)
        if math.isnan(fx) or math.isnan(fy):
            if not (math.isnan(fx) and math.isnan(fy)):
                return False
        elif not math.isclose(fx, fy, rel_tol=eps, abs_tol=eps):
            return False
    return True


@dataclass(frozen=True)
class Comparator:
    """A named output comparison (``compare`` of an io spec)."""

    name: str
    fn: Callable[[str, str], bool] = field(repr=False, compare=False)

    def __call__(self, expected: str, got: str) -> bool:
        return self.fn(expected, got)


COMPARATORS: dict[str, Callable[[str], Comparator]] = {
    "exact": lambda arg: Comparator("exact", compare_exact),
    "tokens": lambda arg: Comparator("tokens", compare_tokens),
    "float": lambda arg: _float_comparator(arg),
}


def _float_comparator(arg: str) -> Comparator:
    try:
        eps = float(arg) if arg else 1e-6
    except ValueError:
        raise SpecError(f"compare 'float:{arg}': the tolerance must be a number, e.g. float:1e-6") from None
    if not (math.isfinite(eps) and eps >= 0):
        raise SpecError(f"compare 'float:{arg}': the tolerance must be a finite number >= 0")
    return Comparator(f"float:{eps:g}", lambda e, g: compare_floats(e, g, eps))


def parse_compare(text: str) -> Comparator:
    """``exact``, ``tokens``, ``float`` or ``float:<eps>`` -> a Comparator; SpecError otherwise."""
    if not isinstance(text, str):
        raise SpecError(f"'compare' must be a string such as 'tokens', got {type(text).__name__}")
    name, _, arg = text.strip().partition(":")
    make = COMPARATORS.get(name.strip().lower())
    if make is None or (arg and name.strip().lower() != "float"):
        raise SpecError(f"unknown compare {text!r}: use one of exact, tokens, float:<tolerance>")
    return make(arg.strip())


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class IoCase:
    """One stdin -> expected stdout case."""

    stdin: str
    stdout: str


@dataclass(frozen=True)
class IoSpec:
    """A validated io spec."""

    cases: tuple[IoCase, ...]
    compare: Comparator
    time_limit_s: float | None = None
    kind: str = "io"


@dataclass(frozen=True)
class AssertSpec:
    """A validated assert-style spec; ``labels`` name its tests in order, ``plan`` is what the harness runs."""

    test: str
    entry_point: str | None
    labels: tuple[str, ...]
    plan: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    time_limit_s: float | None = None
    kind: str = "assert"


def _time_limit(spec: Mapping[str, Any]) -> float | None:
    value = spec.get("time_limit_s")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= MAX_TIME_LIMIT_S):
        raise SpecError(f"'time_limit_s' must be a number of seconds in (0, {MAX_TIME_LIMIT_S:g}], got {value!r}")
    return float(value)


def _unknown_keys(spec: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(str(k) for k in spec if k not in known)
    if extra:
        raise SpecError(f"unknown field(s) {', '.join(map(repr, extra))} in a {spec.get('kind')} spec; known: {', '.join(sorted(known))}")


def parse_io(spec: Mapping[str, Any], default_compare: str = "tokens") -> IoSpec:
    """Validate an io spec."""
    _unknown_keys(spec, {"kind", "cases", "compare", "time_limit_s"})
    cases = spec.get("cases")
    if not isinstance(cases, (list, tuple)) or not cases:
        raise SpecError("an io spec needs 'cases': a non-empty list of {'stdin': ..., 'stdout': ...}")
    out = []
    for i, case in enumerate(cases):
        if not isinstance(case, Mapping):
            raise SpecError(f"case {i + 1} must be an object with 'stdin' and 'stdout', got {type(case).__name__}")
        stdin, stdout = case.get("stdin", ""), case.get("stdout")
        if stdin is None:
            stdin = ""
        if not isinstance(stdin, str):
            raise SpecError(f"case {i + 1}: 'stdin' must be a string, got {type(stdin).__name__}")
        if not isinstance(stdout, str):
            raise SpecError(f"case {i + 1}: 'stdout' (the expected output) must be a string, got {type(stdout).__name__}")
        extra = sorted(str(k) for k in case if k not in ("stdin", "stdout"))
        if extra:
            raise SpecError(f"case {i + 1}: unknown field(s) {', '.join(map(repr, extra))}; a case has 'stdin' and 'stdout'")
        out.append(IoCase(stdin, stdout))
    compare = spec.get("compare", default_compare)
    if not isinstance(compare, str):
        raise SpecError(f"'compare' must be a string such as 'tokens', got {type(compare).__name__}")
    compare = parse_compare(compare)
    return IoSpec(tuple(out), compare, _time_limit(spec))


@lru_cache(maxsize=1024)
def _plan(test: str, entry_point: str | None) -> Mapping[str, Any]:
    # Cached: a GRPO group shares one spec among all its completions.
    try:
        return plan_tests(test, entry_point)
    except (ValueError, SyntaxError, RecursionError, MemoryError) as e:
        raise SpecError(str(e) if isinstance(e, ValueError) else "'test' cannot be prepared: " + type(e).__name__) from None


def parse_assert(spec: Mapping[str, Any], default_compare: str = "tokens") -> AssertSpec:
    """Validate an assert-style spec (the test code must parse and contain tests)."""
    _unknown_keys(spec, {"kind", "test", "entry_point", "time_limit_s"})
    test = spec.get("test")
    if not isinstance(test, str) or not test.strip():
        raise SpecError("an assert spec needs 'test': Python source defining check(candidate)")
    entry = spec.get("entry_point")
    if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()):
        raise SpecError(f"'entry_point' must be a Python function name, got {entry!r}")
    plan = _plan(test, entry)
    return AssertSpec(test, entry, tuple(plan["labels"]), plan, _time_limit(spec))


SPEC_KINDS: dict[str, Callable[..., IoSpec | AssertSpec]] = {"io": parse_io, "assert": parse_assert}


def parse_spec(raw: Any, default_compare: str = "tokens") -> IoSpec | AssertSpec:
    """A test spec (dict or its JSON text) -> IoSpec / AssertSpec; SpecError with the reason."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise SpecError("the tests field is text but not a JSON object") from None
    if not isinstance(raw, Mapping):
        raise SpecError(f"the tests field must be an object with 'kind' ('io' or 'assert'), got {type(raw).__name__}")
    kind = raw.get("kind")
    parser = SPEC_KINDS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise SpecError(f"unknown test kind {kind!r}: use one of {', '.join(map(repr, SPEC_KINDS))}")
    return parser(raw, default_compare)


__all__ = [
    "AssertSpec",
    "COMPARATORS",
    "Comparator",
    "IoCase",
    "IoSpec",
    "SPEC_KINDS",
    "SpecError",
    "TestResult",
    "VERDICTS",
    "compare_exact",
    "compare_floats",
    "compare_tokens",
    "parse_compare",
    "parse_spec",
]
