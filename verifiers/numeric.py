"""Exact parsing of simple numeric answers into ``fractions.Fraction``, without sympy.

"Simple" means one number written any of the ways models and datasets write numbers: ``-1,234``,
``1 000``, ``0.75``, ``.5``, ``3/4``, ``\\frac{3}{4}`` (``\\frac34``), ``1\\frac{1}{2}`` (a mixed
number, as math-verify reads it), ``50\\%``, ``1.5e3``, ``1.5\\times10^{3}``, ``2^{10}``, power
towers, and repeating decimals ``0.\\overline{3}``. Anything else returns ``None`` so the caller
can hand it to sympy.

Why hand-written rather than sympy or ``float``: sympy costs milliseconds per answer (the fast
path must cost microseconds), ``float`` is inexact (``0.1 + 0.2``) and ``eval`` is unsafe. Every
size is capped before any arithmetic: a literal has at most ``MAX_DIGITS`` digits and a value at
most ``MAX_BITS`` bits; a larger positive power (``9^9^9^9``, ``1e100000``) is never computed but
returned as :data:`HUGE`, which is provably unequal to any bounded number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_DIGITS = 1000  # digits in one literal
MAX_BITS = 4096  # bits of a computed power's numerator or denominator
MAX_CHARS = 2000  # longer text is not a "simple number"
MAX_DEPTH = 40  # nesting of power towers


@dataclass(frozen=True)
class Num:
    """A parsed simple number.

    value:    the exact value, or None when ``huge`` (its magnitude exceeds 2**MAX_BITS).
    percent:  written with a percent sign (``50\\%``).
    approx:   written as a terminating decimal (``0.33``): such a number may be a rounding of the
              exact answer (see :func:`numbers_equal`).
    half_ulp: half a unit in the last written digit (0.005 for ``0.33``), when known: a correct
              rounding lies within it of the exact value.
    """

    value: Fraction | None
    percent: bool = False
    approx: bool = False
    half_ulp: Fraction | None = None

    @property
    def huge(self) -> bool:
        return self.value is None


HUGE = Num(None)

_INT = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_DEC = rf"(?:{_INT}(?:\.\d*(?:\\overline\{{\d+\}})?)?|\.\d+(?:\\overline\{{\d+\}})?)"
_DEC_RE = re.compile(
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?:\.(?P<frac>\d*)(?:\\overline\{(?P<rep>\d+)\})?)?"
)
_SCI_E = re.compile(rf"(?P<m>{_DEC})[eE](?P<e>[-+]?\d+)")
_SCI_TIMES = re.compile(rf"(?P<m>{_DEC})(?:\\times|\\cdot|\*|×|·)10\^(?:\{{(?P<e>[-+]?\d+)\}}|(?P<e2>[-+]?\d+))")


def _frac_arg(name: str) -> str:
    """``{-1.5}`` or a single digit (``\\frac12``), captured as ``name`` / ``name1``."""
    return rf"(?:\{{(?P<{name}>[-+]?{_DEC})\}}|(?P<{name}1>\d))"


_FRAC = re.compile(r"(?P<w>\d+)?\\frac" + _frac_arg("a") + _frac_arg("b"))
_SLASH = re.compile(rf"(?P<a>{_DEC})/(?P<b>[-+]?{_DEC})")
_PERCENT_SUFFIXES = ("\\%", "%", "percent", "\\text{percent}", "\\text{%}")


def _decimal(text: str) -> Num | None:
    """``1,234.5``, ``.5``, ``5.``, ``0.1\\overline{6}`` -> exact value (None if not a decimal)."""
    m = _DEC_RE.fullmatch(text)
    if m is None or not (m.group("int") or m.group("frac") or m.group("rep")):
        return None
    whole = (m.group("int") or "0").replace(",", "")
    frac = m.group("frac") or ""
    rep = m.group("rep")
    if len(whole) + len(frac) + len(rep or "") > MAX_DIGITS:
        return None
    value = Fraction(int(whole)) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
    if rep:  # 0.1\overline{6}: the repeating block r after k fixed digits adds r / (10^k (10^len(r) - 1))
        value += Fraction(int(rep), 10 ** len(frac) * (10 ** len(rep) - 1))
    approx = bool(frac) and not rep
    return Num(value, approx=approx, half_ulp=Fraction(1, 2 * 10 ** len(frac)) if approx else None)


def _signed_decimal(text: str) -> Num | None:
    sign = -1 if text.startswith("-") else 1
    n = _decimal(text[1:] if text[:1] in "+-" else text)
    return None if n is None else Num(sign * n.value, approx=n.approx, half_ulp=n.half_ulp)


def _pow10(m: Num, exp: int) -> Num | None:
    if m.value == 0:
        return Num(Fraction(0), approx=m.approx, half_ulp=m.half_ulp)
    if exp > MAX_DIGITS:
        return HUGE
    if exp < -MAX_DIGITS:
        return None  # a tiny non-zero value: leave it to sympy
    scale = Fraction(10) ** exp
    return Num(m.value * scale, approx=m.approx, half_ulp=m.half_ulp * scale if m.half_ulp is not None else None)


class _Tower:
    """Right-associative integer powers ``a^b^c``, ``a^{b^{c}}``, ``(a)^{(b)}`` with size caps."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def parse(self) -> Num | None:
        try:
            v = self._pow(0)
        except ValueError:
            return None
        return v if self.i == len(self.s) else None

    def _pow(self, depth: int) -> Num:
        if depth > MAX_DEPTH:
            raise ValueError("too deep")
        base = self._atom(depth)
        if self.i < len(self.s) and self.s[self.i] == "^":
            self.i += 1
            return _power(base, self._pow(depth + 1))
        return base

    def _atom(self, depth: int) -> Num:
        s, i = self.s, self.i
        if i < len(s) and s[i] in "{(":
            close = "}" if s[i] == "{" else ")"
            self.i += 1
            v = self._pow(depth + 1)
            if self.i >= len(s) or s[self.i] != close:
                raise ValueError("unbalanced")
            self.i += 1
            return v
        j = i + 1 if i < len(s) and s[i] in "+-" else i
        k = j
        while k < len(s) and s[k].isdigit():
            k += 1
        if k == j or k - j > MAX_DIGITS:
            raise ValueError("not an integer")
        self.i = k
        return Num(Fraction(int(s[i:k])))


def _power(base: Num, exp: Num) -> Num:
    if base.huge:
        raise ValueError("huge base")
    b = base.value
    if exp.huge:  # HUGE is always a huge *positive* number (see below)
        if b in (0, 1):
            return Num(b)
        if b > 1:
            return HUGE
        raise ValueError("sign or parity of a huge power")
    e = exp.value
    if e.denominator != 1:
        raise ValueError("fractional exponent")
    e = int(e)
    if b == 0:
        if e < 0:
            raise ValueError("division by zero")
        return Num(Fraction(int(e == 0)))
    if abs(b) == 1:
        return Num(b**e)
    bits = max(abs(b.numerator).bit_length(), abs(b.denominator).bit_length())
    if abs(e) * bits > MAX_BITS:
        if e > 0 and b > 1:
            return HUGE
        raise ValueError("too large to compute, of unknown sign, or tiny")
    return Num(b**e)


def parse_number(text: str) -> Num | None:
    """The exact value of ``text`` (already normalised and compacted), or None if not simple."""
    s = text
    if s.isdigit() and len(s) < 20:  # the common case, a plain integer; isdigit is true for "²" too, hence isascii
        return Num(Fraction(int(s))) if s.isascii() else None
    if not s or len(s) > MAX_CHARS:
        return None
    percent = False
    for suffix in _PERCENT_SUFFIXES:
        if s.endswith(suffix) and len(s) > len(suffix):
            s, percent = s[: -len(suffix)], True
            break
    sign = 1
    if s[:1] in "+-":
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
        if len(s) > 2 and s[0] == "(" and s[-1] == ")" and "(" not in s[1:]:
            s = s[1:-1]
    n = _body(s)
    if n is None:
        return None
    if n.huge:
        return HUGE
    return Num(sign * n.value, percent=percent, approx=n.approx, half_ulp=n.half_ulp)


def _body(s: str) -> Num | None:
    d = _decimal(s)
    if d is not None:
        return d
    m = _FRAC.fullmatch(s)
    if m is not None:
        a = _signed_decimal(m.group("a") or m.group("a1"))
        b = _signed_decimal(m.group("b") or m.group("b1"))
        if a is None or b is None or b.value == 0:
            return None
        value = a.value / b.value
        if m.group("w"):  # a mixed number 1\frac{1}{2} = 1 + 1/2 (math-verify reads it the same way)
            if a.value < 0 or b.value < 0 or len(m.group("w")) > MAX_DIGITS:
                return None
            value += int(m.group("w"))
        return Num(value, approx=a.approx or b.approx)
    m = _SLASH.fullmatch(s)
    if m is not None:
        a, b = _decimal(m.group("a")), _signed_decimal(m.group("b"))
        if a is None or b is None or b.value == 0:
            return None
        return Num(a.value / b.value, approx=a.approx or b.approx)
    m = _SCI_E.fullmatch(s) or _SCI_TIMES.fullmatch(s)
    if m is not None:
        mant = _decimal(m.group("m"))
        exp = m.groupdict().get("e") or m.groupdict().get("e2")
        if mant is None or exp is None or len(exp) > 12:
            return None
        return _pow10(mant, int(exp))
    if "^" in s:
        return _Tower(s).parse()
    return None


def _close(a: Fraction, b: Fraction, approx: bool, half_ulp: Fraction | None = None) -> bool:
    if a == b:
        return True
    if not approx:
        return False
    # math-verify rounds floats to 6 decimals (its float_rounding); we ask that too, and that the
    # decimal is a correct rounding of the other value at the precision it was written with:
    # 0.4999999 is not 1/2 (it is 1e-7 off at 7 decimals), 0.3333333 is 1/3.
    if round(a, 6) != round(b, 6):
        return False
    if half_ulp is not None:
        return abs(a - b) <= half_ulp
    return abs(a - b) <= Fraction(1, 10_000) * max(abs(a), abs(b))


def _tolerance(gold: Num, pred: Num, pred_scale: Fraction = Fraction(1), gold_scale: Fraction = Fraction(1)) -> Fraction | None:
    """How far a rounded value may be from the other: the prediction's rounding when it is a
    decimal (a decimal gold is taken as exact: 45.2499999 is not 45.25), else the gold's."""
    side, scale = (pred, pred_scale) if pred.approx else (gold, gold_scale)
    return side.half_ulp * scale if side.approx and side.half_ulp is not None else None


def numbers_equal(gold: Num, pred: Num) -> bool | None:
    """Are two simple numbers the same answer? ``None`` when that cannot be decided here.

    Exact for integers and fractions. A decimal is right when it rounds the other value correctly
    at the precision it was written with *and* agrees with it at 6 decimals (math-verify's rule).
    Two percentages compare as written. A percentage against a plain number ``g`` has one reading,
    chosen by ``g``: within [-1, 1] it is a share of a whole (``0.5`` == ``50\\%``), outside it a
    count of percent (``50`` == ``50\\%``). So ``2\\%`` is right for 2 and ``200\\%`` is not, and
    ``0.5\\%`` is not 1/2; math-verify grants both readings.
    """
    if gold.huge or pred.huge:
        return None if (gold.huge and pred.huge) else False
    approx = gold.approx or pred.approx
    if gold.percent == pred.percent:
        return _close(gold.value, pred.value, approx, _tolerance(gold, pred))
    other = pred if gold.percent else gold
    if other.value != 0 and abs(other.value) <= 1:  # a share: 50\% is 0.5
        hundredth = Fraction(1, 100)
        g = Num(gold.value * hundredth, approx=gold.approx, half_ulp=gold.half_ulp) if gold.percent else gold
        p = Num(pred.value * hundredth, approx=pred.approx, half_ulp=pred.half_ulp) if pred.percent else pred
        return _close(g.value, p.value, approx, _tolerance(g, p, *(hundredth if x.percent else Fraction(1) for x in (pred, gold))))
    return _close(gold.value, pred.value, approx, _tolerance(gold, pred))


__all__ = ["Num", "HUGE", "parse_number", "numbers_equal", "MAX_DIGITS", "MAX_BITS"]
