"""Sets, intervals, tuples and matrices of numbers or simple expressions, compared without sympy.

Only shapes whose meaning is unambiguous are handled; anything else returns ``None`` and goes to
math-verify. The rules follow math-verify's own, so both paths agree:

- ``\\{a, b\\}`` is a set: order and repetition do not matter.
- ``(a, b)``, ``[a, b)``, ``[a, b]`` with two entries may be intervals: their brackets must match
  exactly (an open interval is not a closed one). With three or more entries they are tuples:
  order matters and ``[1,2,3]`` equals ``(1,2,3)``, as in math-verify.
- ``\\begin{pmatrix}..\\end{pmatrix}`` (also ``bmatrix``, ``Bmatrix``, ``matrix``, ``smallmatrix``)
  is a matrix: same shape, equal entries. (``vmatrix`` is a determinant and is left to sympy.)

Entries are simple numbers (:mod:`~rlvr.verifiers.numeric`), infinities, or expressions such as
``3\\sqrt{2}`` or ``x+1`` (:mod:`~rlvr.verifiers.rational_expr`, compared exactly). latex2sympy
alone spends 60-200 ms parsing one tuple; this takes microseconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from rlvr.verifiers.numeric import Num, numbers_equal, parse_number
from rlvr.verifiers.rational_expr import Expression, approximate, parse_rational, rationals_equal

MAX_ITEMS = 400
MAX_MATCHED = 20  # sets of expressions are matched pairwise: keep that quadratic step small

_EMPTY = frozenset({"\\emptyset", "\\varnothing", "\\{\\}", "∅", "\\O"})
_MATRIX = re.compile(r"\\begin\{(pmatrix|bmatrix|Bmatrix|matrix|smallmatrix)\}(.*)\\end\{\1\}", re.DOTALL)
_INFINITIES = {"\\infty": 1, "+\\infty": 1, "-\\infty": -1, "\\infinity": 1, "oo": 1, "-oo": -1, "+oo": 1}


@dataclass(frozen=True)
class Inf:
    """Plus or minus infinity, allowed as an interval end point."""

    sign: int


Entry = Num | Inf | Expression


@dataclass(frozen=True)
class Struct:
    """A parsed set (``kind="set"``), interval/tuple (``"seq"``) or matrix (``"matrix"``)."""

    kind: str
    items: tuple
    open: str = ""
    close: str = ""


def _split_top(s: str, sep: str) -> list[str] | None:
    """Split ``s`` on ``sep`` outside brackets; None if brackets do not balance or too many parts."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += len(sep)
            start = i
            if len(parts) > MAX_ITEMS:
                return None
            continue
        i += 1
    if depth != 0:
        return None
    parts.append(s[start:])
    return parts


def _entry(text: str) -> Entry | None:
    text = text.strip()
    if text in _INFINITIES:
        return Inf(_INFINITIES[text])
    return parse_number(text) or parse_rational(text)


def _entries(parts: list[str]) -> tuple[Entry, ...] | None:
    out = []
    for p in parts:
        e = _entry(p)
        if e is None:
            return None
        out.append(e)
    return tuple(out)


def _outer_pair(s: str) -> bool:
    """Does the bracket opening ``s`` close exactly at its last character?"""
    depth = 0
    for i, c in enumerate(s):
        if c in "([{" and not (i and s[i - 1] == "\\"):
            depth += 1
        elif c in ")]}" and not (i and s[i - 1] == "\\"):
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def parse_structure(c: str) -> Struct | None:
    """Parse a compacted answer as a set, interval/tuple or matrix of simple numbers, else None."""
    if len(c) > 20_000:
        return None
    if c in _EMPTY:
        return Struct("set", ())
    if c.startswith("\\{") and c.endswith("\\}"):
        parts = _split_top(c[2:-2], ",")
        items = _entries(parts) if parts is not None else None
        return Struct("set", items) if items is not None else None
    if len(c) >= 2 and c[0] in "([" and c[-1] in ")]" and _outer_pair(c):
        parts = _split_top(c[1:-1], ",")
        if parts is None or len(parts) < 2:
            return None
        items = _entries(parts)
        return Struct("seq", items, c[0], c[-1]) if items is not None else None
    m = _MATRIX.fullmatch(c)
    if m is not None:
        rows = _split_top(m.group(2), "\\\\")
        if rows is None:
            return None
        if rows and rows[-1] == "":
            rows = rows[:-1]
        table = []
        for r in rows:
            cells = _split_top(r, "&")
            entries = _entries(cells) if cells is not None else None
            if entries is None or any(isinstance(e, Inf) for e in entries):
                return None
            table.append(entries)
        if not table or len({len(r) for r in table}) != 1:
            return None
        return Struct("matrix", tuple(table))
    return None


def _as_expression(e: Num | Expression) -> Expression | None:
    if isinstance(e, Expression):
        return e
    return None if (e.huge or e.approx or e.percent) else Expression(e.value)


def _entries_equal(a: Entry, b: Entry) -> bool | None:
    if isinstance(a, Inf) or isinstance(b, Inf):
        return isinstance(a, Inf) and isinstance(b, Inf) and a.sign == b.sign
    if isinstance(a, Num) and isinstance(b, Num):
        return numbers_equal(a, b)
    ea, eb = _as_expression(a), _as_expression(b)
    return None if ea is None or eb is None else rationals_equal(ea, eb)


def _all_equal(xs: tuple, ys: tuple) -> bool | None:
    undecided = False
    for a, b in zip(xs, ys):
        eq = _entries_equal(a, b)
        if eq is False:
            return False
        undecided = undecided or eq is None
    return None if undecided else True


def _position(e: Entry) -> float | None:
    if isinstance(e, Inf):
        return math.inf * e.sign
    if isinstance(e, Num):
        try:
            return None if e.huge else float(e.value)
        except OverflowError:
            return None
    return approximate(e)


def _pair_kind(s: Struct) -> str | None:
    """What latex2sympy makes of a bracketed pair: an interval ``"(]"`` etc., ``"tuple"``, or
    ``"empty"``; None when the end points cannot be ordered here.

    ``(a, b)`` and ``[a, b]`` with ``a < b`` are intervals, otherwise tuples (a point ``(2, 1)``);
    mixed brackets are always intervals, empty when ``a >= b``.
    """
    a, b = _position(s.items[0]), _position(s.items[1])
    if a is None or b is None:
        return None
    gap = b - a if not (math.isinf(a) or math.isinf(b)) else (math.inf if a < b else -math.inf)
    tol = 1e-9 * max(1.0, abs(a), abs(b)) if not math.isinf(gap) else 0.0
    if abs(gap) <= tol and not math.isinf(gap):
        return None  # equal end points ([2, 2] is the set {2}) or too close to call
    if gap > 0:
        return s.open + s.close
    return "tuple" if s.open + s.close in ("()", "[]") else "empty"


def _exact_key(e: Entry) -> tuple[int, Fraction] | None:
    if isinstance(e, Inf):
        return (e.sign, Fraction(0))
    if isinstance(e, Expression) or e.huge or e.approx or e.percent:
        return None  # no exact hashable value: match entries pairwise instead
    return (0, e.value)


def _sets_equal(gold: tuple, pred: tuple) -> bool | None:
    gk = [_exact_key(e) for e in gold]
    pk = [_exact_key(e) for e in pred]
    if None not in gk and None not in pk:
        return set(gk) == set(pk)
    if len(gold) > MAX_MATCHED or len(pred) > MAX_MATCHED:
        return None
    same = [[_entries_equal(g, p) for p in pred] for g in gold]
    gold_matched = [any(row) for row in same]
    pred_matched = [any(same[i][j] for i in range(len(gold))) for j in range(len(pred))]
    if all(gold_matched) and all(pred_matched):
        return True
    if any(None in row for row in same):
        return None  # an undecided pair might have matched
    return False


def structures_equal(gold: Struct, pred: Struct) -> bool | None:
    """Are two structures the same answer? None when it cannot be decided here."""
    if gold.kind != pred.kind:
        return None
    if gold.kind == "set":
        return _sets_equal(gold.items, pred.items)
    if gold.kind == "seq":
        if len(gold.items) != len(pred.items):
            return False
        if len(gold.items) == 2:
            g, p = _pair_kind(gold), _pair_kind(pred)
            if g is None or p is None:
                return None
            if g != p:
                return False  # an interval is not a tuple, and (a, b) is not [a, b]
            if g == "empty":
                return True
        return _all_equal(gold.items, pred.items)
    if len(gold.items) != len(pred.items) or len(gold.items[0]) != len(pred.items[0]):
        return False
    return _all_equal(tuple(x for r in gold.items for x in r), tuple(x for r in pred.items for x in r))


__all__ = ["Struct", "Inf", "parse_structure", "structures_equal"]
