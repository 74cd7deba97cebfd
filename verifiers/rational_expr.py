"""Identity testing for rational expressions (``(x+3)(x-3)`` vs ``x^2-9``) without sympy.

Both answers are parsed into a tiny expression tree (numbers, one-letter variables, ``+ - * /``,
``\\frac``, ``\\cdot``, ``\\times``, implicit multiplication, integer powers) and evaluated with
exact fractions at two random points. Values that differ prove the expressions differ. Values
that agree at two independent points from a range of 2**30 mean the expressions are identical
except with probability at most (d / 2**30)**2 for total degree d (the Schwartz-Zippel lemma);
sympy's ``simplify`` would spend 10-200 ms reaching the same verdict.

Why hand-written: sympy's parser alone costs milliseconds, and this subset is small enough to
parse exactly the way latex2sympy does. Anything outside it (``\\sqrt``, ``\\pi``, functions,
``e`` and ``i``, which sympy reads as constants, ambiguous ``1/2x``) returns ``None`` and goes to
sympy. Sizes are capped: exponents up to ``MAX_EXP``, intermediate values up to ``MAX_BITS``.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import Union

MAX_CHARS = 500
MAX_EXP = 200
MAX_BITS = 20_000
MAX_DEPTH = 60
_CONSTANT_LETTERS = frozenset("eEiI")  # Euler's number and the imaginary unit to latex2sympy

Node = Union[tuple, Fraction, str]
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[A-Za-z]|\\frac|\\cdot|\\times|[-+*/^(){}]")


class _Defer(Exception):
    """Outside the supported subset: let sympy decide."""


def _tokens(s: str) -> list[str]:
    out = []
    pos = 0
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            raise _Defer(s[pos : m.start()])
        out.append(m.group(0))
        pos = m.end()
    if pos != len(s):
        raise _Defer(s[pos:])
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.t = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise _Defer(f"expected {want}")
        self.i += 1
        return tok

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Defer("too deep")
        node: Node
        if self.peek() in ("+", "-"):
            neg = self.take() == "-"
            node = self.term()
            node = ("neg", node) if neg else node
        else:
            node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = (op, node, self.term())
        self.depth -= 1
        return node

    def _starts_factor(self, tok: str | None) -> bool:
        return tok is not None and (tok.isalpha() or tok in ("(", "{", "\\frac"))

    def term(self) -> Node:
        node = self.power()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times"):
                self.take()
                node = ("*", node, self.power())
            elif tok == "/":
                self.take()
                node = ("/", node, self.power())
                if self._starts_factor(self.peek()):
                    raise _Defer("1/2x is ambiguous")
            elif self._starts_factor(tok):
                node = ("*", node, self.power())
            else:
                return node

    def power(self) -> Node:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        tok = self.peek()
        if tok is not None and tok[0].isdigit() and "." not in tok:
            exp = Fraction(int(self.take()))
        elif tok == "{":
            self.take()
            e = self.expr()
            self.take("}")
            exp = _evaluate(e, {})
        else:
            raise _Defer("unsupported exponent")
        if exp.denominator != 1 or abs(exp) > MAX_EXP:
            raise _Defer("exponent not a small integer")
        if self.peek() == "^":
            raise _Defer("a^b^c")
        return ("^", base, int(exp))

    def atom(self) -> Node:
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            return Fraction(tok)
        if tok.isalpha():
            if tok in _CONSTANT_LETTERS:
                raise _Defer("a constant letter")
            return tok
        if tok in ("(", "{"):
            node = self.expr()
            self.take(")" if tok == "(" else "}")
            return node
        if tok == "\\frac":
            return ("/", self._group(), self._group())
        raise _Defer(tok)

    def _group(self) -> Node:
        tok = self.peek()
        if tok == "{":
            self.take()
            node = self.expr()
            self.take("}")
            return node
        if tok is not None and (tok.isalpha() or (tok.isdigit() and len(tok) == 1)):
            return self.atom()  # \frac12, \frac1x
        raise _Defer("\\frac argument")


def parse_rational(text: str) -> Node | None:
    """The expression tree of a compacted answer, or None if it is outside the subset."""
    if not text or len(text) > MAX_CHARS or " " in text:
        return None
    try:
        p = _Parser(_tokens(text))
        node = p.expr()
        return node if p.i == len(p.t) else None
    except (_Defer, ValueError, ZeroDivisionError):
        return None


def variables(node: Node) -> set[str]:
    """The one-letter variables in a tree."""
    if isinstance(node, str):
        return {node}
    if isinstance(node, tuple):
        out: set[str] = set()
        for child in node[1:]:
            if not isinstance(child, int):
                out |= variables(child)
        return out
    return set()


def _evaluate(node: Node, point: dict[str, Fraction]) -> Fraction:
    if isinstance(node, Fraction):
        return node
    if isinstance(node, str):
        if node not in point:
            raise _Defer("variable in a constant")
        return point[node]
    op = node[0]
    if op == "neg":
        return -_evaluate(node[1], point)
    if op == "^":
        base = _evaluate(node[1], point)
        if base == 0 and node[2] < 0:
            raise ZeroDivisionError
        if max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(node[2]) > MAX_BITS:
            raise _Defer("value too large")
        out = base ** node[2]
    else:
        a, b = _evaluate(node[1], point), _evaluate(node[2], point)
        if op == "+":
            out = a + b
        elif op == "-":
            out = a - b
        elif op == "*":
            out = a * b
        else:
            out = a / b  # ZeroDivisionError propagates: the caller tries another point
    if out.numerator.bit_length() > MAX_BITS or out.denominator.bit_length() > MAX_BITS:
        raise _Defer("value too large")
    return out


def rationals_equal(gold: Node, pred: Node, points: int = 2, seed: int = 0x5EED) -> bool | None:
    """Equal as rational functions? False is certain; True is certain up to ~2**-50 (see above).

    None when no point could be evaluated (division by zero everywhere tried) or a value grew
    past the size cap.
    """
    names = sorted(variables(gold) | variables(pred))
    rng = random.Random(seed)
    agreed = 0
    for _ in range(points + 3):  # a few spare points in case one hits a pole
        point = {v: Fraction(rng.randint(2**29, 2**30), rng.randint(1, 2**10)) for v in names}
        try:
            a, b = _evaluate(gold, point), _evaluate(pred, point)
        except ZeroDivisionError:
            continue
        except _Defer:
            return None
        if a != b:
            return False
        agreed += 1
        if agreed >= points or not names:
            return True
    return None


__all__ = ["parse_rational", "rationals_equal", "variables"]
