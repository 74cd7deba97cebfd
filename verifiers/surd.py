"""Exact arithmetic with square roots: numbers ``c1 + c2*sqrt(2) + c3*sqrt(6) + ...``.

A value is a ``Fraction`` (rational) or a :class:`Surd`, a map from square-free integers ``b`` to
rational coefficients of ``sqrt(b)``. Square roots of distinct square-free integers are linearly
independent over the rationals, so this form is canonical: two values are equal exactly when
their maps are equal. That makes ``2\\sqrt{3}`` == ``\\sqrt{12}`` a dictionary comparison.

Division is supported by rationals and by single terms (``1/(2\\sqrt{3})``); dividing by a sum
such as ``1 + \\sqrt{2}`` raises :class:`Unsupported` (sympy then decides). Sizes are capped.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd, isqrt
from typing import Union

MAX_TERMS = 64
MAX_RADICAND = 10**12  # square-free parts are found by trial division up to the cube root
MAX_BITS = 20_000


class Unsupported(Exception):
    """The operation leaves the exactly-representable subset."""


class Surd:
    """A sum of rational multiples of square roots of distinct square-free integers (> 1 term)."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict[int, Fraction]) -> None:
        self.terms = terms

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Surd) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

    def __repr__(self) -> str:
        return " + ".join(f"{c}*sqrt({b})" if b != 1 else str(c) for b, c in sorted(self.terms.items()))


Value = Union[Fraction, Surd]


def _terms(v: Value) -> dict[int, Fraction]:
    return v.terms if isinstance(v, Surd) else ({1: v} if v else {})


def _make(terms: dict[int, Fraction]) -> Value:
    terms = {b: c for b, c in terms.items() if c}
    if len(terms) > MAX_TERMS:
        raise Unsupported("too many terms")
    for c in terms.values():
        if c.numerator.bit_length() > MAX_BITS or c.denominator.bit_length() > MAX_BITS:
            raise Unsupported("coefficient too large")
    if not terms:
        return Fraction(0)
    if set(terms) == {1}:
        return terms[1]
    return Surd(terms)


def add(a: Value, b: Value) -> Value:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a + b
    out = dict(_terms(a))
    for k, c in _terms(b).items():
        out[k] = out.get(k, Fraction(0)) + c
    return _make(out)


def neg(a: Value) -> Value:
    return -a if isinstance(a, Fraction) else Surd({b: -c for b, c in a.terms.items()})


def mul(a: Value, b: Value) -> Value:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a * b
    out: dict[int, Fraction] = {}
    for k1, c1 in _terms(a).items():
        for k2, c2 in _terms(b).items():
            g = gcd(k1, k2)  # sqrt(k1) sqrt(k2) = g sqrt(k1 k2 / g^2), and (k1/g)(k2/g) is square-free
            k = (k1 // g) * (k2 // g)
            out[k] = out.get(k, Fraction(0)) + c1 * c2 * g
    return _make(out)


def inverse(a: Value) -> Value:
    if isinstance(a, Fraction):
        if a == 0:
            raise ZeroDivisionError
        return 1 / a
    if len(a.terms) != 1:
        raise Unsupported("dividing by a sum of square roots")
    (k, c), = a.terms.items()
    return Surd({k: 1 / (c * k)})  # 1/(c sqrt(k)) = sqrt(k) / (c k)


def power(a: Value, n: int) -> Value:
    if isinstance(a, Fraction):
        if a == 0 and n < 0:
            raise ZeroDivisionError
        return a**n
    if n < 0:
        a, n = inverse(a), -n
    out: Value = Fraction(1)
    while n:
        if n & 1:
            out = mul(out, a)
        n >>= 1
        if n:
            a = mul(a, a)
    return out


def _square_free(m: int) -> tuple[int, int]:
    """(s, f) with m = s*s*f and f square-free, for 0 < m <= MAX_RADICAND."""
    s, f, p = 1, 1, 2
    while p * p * p <= m:
        e = 0
        while m % p == 0:
            m //= p
            e += 1
        s *= p ** (e // 2)
        f *= p ** (e % 2)
        p += 1 if p == 2 else 2
    # What is left has at most two prime factors, all above the cube root: a square or square-free.
    r = isqrt(m)
    if r * r == m:
        return s * r, f
    return s, f * m


def sqrt(a: Value) -> Value:
    """The exact square root of a non-negative rational."""
    if not isinstance(a, Fraction):
        raise Unsupported("nested square root")
    if a < 0:
        raise Unsupported("square root of a negative number")
    if a == 0:
        return Fraction(0)
    m = a.numerator * a.denominator  # sqrt(p/q) = sqrt(p q) / q
    if m > MAX_RADICAND:
        raise Unsupported("radicand too large")
    s, f = _square_free(m)
    coef = Fraction(s, a.denominator)
    return coef if f == 1 else Surd({f: coef})


__all__ = ["Surd", "Value", "Unsupported", "add", "neg", "mul", "inverse", "power", "sqrt"]
