"""Identity testing for expressions such as ``(x+3)(x-3)`` vs ``x^2-9`` or ``2\\sqrt{3}`` vs
``\\sqrt{12}``, without sympy.

Both answers are parsed into a tiny expression tree (numbers, one-letter variables, ``\\pi``,
``\\sqrt{}`` of constants, ``+ - * /``, ``\\frac``, ``\\cdot``, ``\\times``, implicit
multiplication, integer powers) and evaluated exactly at two random points: rationals as
fractions, square roots in the canonical form of :mod:`~rlvr.verifiers.surd`, and ``\\pi`` as
one more variable (it is transcendental, so an identity in ``\\pi`` holds exactly when it holds
for a random value of it). Values that differ prove the expressions differ. Values that agree at
two independent points from a range of 2**39 mean the expressions are identical except with
probability at most (d / 2**39)**2 for total degree d (the Schwartz-Zippel lemma); sympy's
``simplify`` would spend 10-200 ms reaching the same verdict.

Decimals are exact here, but math-verify compares them after rounding, so an expression holding
a decimal is only ever judged *equal* here (never unequal: sympy decides those).

Why hand-written: sympy's parser alone costs milliseconds, and this subset is small enough to
parse exactly the way latex2sympy does. Anything outside it (functions, ``e`` and ``i``, which
sympy reads as constants, ``\\sqrt`` of a variable, ambiguous ``1/2x``) returns ``None`` and goes
to sympy. Sizes are capped: exponents up to ``MAX_EXP``, values up to ``surd.MAX_BITS`` bits.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

from rlvr.verifiers import surd
from rlvr.verifiers.surd import Unsupported, Value

MAX_CHARS = 500
MAX_EXP = 200
MAX_DEPTH = 60
_CONSTANT_LETTERS = frozenset("eEiI")  # Euler's number and the imaginary unit to latex2sympy

Node = Union[tuple, Fraction, str]
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[A-Za-z]|\\frac|\\cdot|\\times|\\pi|\\sqrt|[-+*/^(){}]")
PI = "\\pi"


@dataclass(frozen=True)
class Expression:
    """A parsed answer: its tree and whether it holds decimals or irrationals (pi, square roots)."""

    tree: Node
    decimal: bool = False


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
        self.decimal = False

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
        return tok is not None and (tok.isalpha() or tok in ("(", "{", "\\frac", PI, "\\sqrt"))

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
            value = _evaluate(e, {})
            if not isinstance(value, Fraction):
                raise _Defer("irrational exponent")
            exp = value
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
            self.decimal = self.decimal or "." in tok
            return Fraction(tok)
        if tok.isalpha() or tok == PI:
            if tok in _CONSTANT_LETTERS:
                raise _Defer("a constant letter")
            return tok
        if tok == "\\sqrt":
            if self.peek() == "[":
                raise _Defer("n-th root")
            arg = self._group()
            if variables(arg):
                raise _Defer("square root of a variable")  # sqrt(x^2) is |x|: sympy's call
            return ("sqrt", arg)
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
            return self.atom()  # \frac12, \frac1x, \sqrt2
        raise _Defer("argument")


def parse_rational(text: str) -> Expression | None:
    """The expression of a compacted answer, or None if it is outside the subset."""
    if not text or len(text) > MAX_CHARS or " " in text:
        return None
    try:
        p = _Parser(_tokens(text))
        node = p.expr()
        return Expression(node, p.decimal) if p.i == len(p.t) else None
    except (_Defer, Unsupported, ValueError, ZeroDivisionError):
        return None


def variables(node: Node) -> set[str]:
    """The variables in a tree: one-letter names and ``\\pi``."""
    if isinstance(node, str):
        return {node}
    if isinstance(node, tuple):
        out: set[str] = set()
        for child in node[1:]:
            if not isinstance(child, int):
                out |= variables(child)
        return out
    return set()


def _evaluate(node: Node, point: dict[str, Fraction]) -> Value:
    if isinstance(node, Fraction):
        return node
    if isinstance(node, str):
        if node not in point:
            raise _Defer("variable in a constant")
        return point[node]
    op = node[0]
    if op == "neg":
        return surd.neg(_evaluate(node[1], point))
    if op == "sqrt":
        return surd.sqrt(_evaluate(node[1], point))
    if op == "^":
        base = _evaluate(node[1], point)
        if isinstance(base, Fraction) and max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(node[2]) > surd.MAX_BITS:
            raise _Defer("value too large")
        return surd.power(base, node[2])
    a, b = _evaluate(node[1], point), _evaluate(node[2], point)
    if op == "+":
        return surd.add(a, b)
    if op == "-":
        return surd.add(a, surd.neg(b))
    if op == "*":
        return surd.mul(a, b)
    return surd.mul(a, surd.inverse(b))  # ZeroDivisionError propagates: the caller tries another point


def rationals_equal(gold: Expression, pred: Expression, points: int = 2, seed: int = 0x5EED) -> bool | None:
    """Equal as expressions? False is certain; True is certain up to ~2**-70 (see above).

    None when the rules cannot decide: values differ but a decimal is involved, no point could
    be evaluated (division by zero everywhere tried), or a value left the exact subset.
    """
    names = sorted(variables(gold.tree) | variables(pred.tree))
    rng = random.Random(seed)
    agreed = 0
    for _ in range(points + 3):  # a few spare points in case one hits a pole
        point = {v: Fraction(rng.randint(2**29, 2**30), rng.randint(1, 2**10)) for v in names}
        try:
            a, b = _evaluate(gold.tree, point), _evaluate(pred.tree, point)
        except ZeroDivisionError:
            continue
        except (_Defer, Unsupported):
            return None
        if a != b:
            return None if (gold.decimal or pred.decimal) else False
        agreed += 1
        if agreed >= points or not names:
            return True
    return None


def approximate(expr: Expression) -> float | None:
    """A float value of a constant expression (only ``\\pi`` may appear), or None."""
    if variables(expr.tree) - {PI}:
        return None
    try:
        value = _evaluate(expr.tree, {PI: Fraction(math.pi)})
    except (_Defer, Unsupported, ZeroDivisionError, OverflowError):
        return None
    try:
        if isinstance(value, Fraction):
            return float(value)
        return float(sum(float(c) * math.sqrt(b) for b, c in value.terms.items()))
    except OverflowError:
        return None


__all__ = ["Expression", "parse_rational", "rationals_equal", "variables", "approximate"]
