"""Answers too big to compare exactly, refused in microseconds instead of timing out in sympy.

``(x+1)^{100000}`` expands to 100,001 terms; ``5000!`` and ``\\binom{10^6}{5\\cdot10^5}`` are
integers of tens of thousands of digits; ``2^{2^{30}}`` does not fit in memory. Sent to sympy,
each burns the whole per-item timeout (and a worker), and a policy that learns the timeout is
"not wrong" would farm it. :func:`too_big` spots them by their written sizes alone: a symbolic
power above ``MAX_SYMBOLIC_EXPONENT`` (``MAX_GROUP_EXPONENT`` for a bracketed base), a power of a number above ``MAX_POWER_BITS`` bits, a
factorial or binomial of a number above ``MAX_FACTORIAL``. Plain numbers like ``2^{10000}`` are
not affected: :mod:`~rlvr.verifiers.numeric` compares them without ever computing them.
"""

from __future__ import annotations

import math
import re

MAX_SYMBOLIC_EXPONENT = 1000  # x^{1000}: one term, cheap
MAX_GROUP_EXPONENT = 100  # (x+1)^{900} - (x+2)^{900} takes sympy 7 s to expand; ^{100} well under one
MAX_POWER_BITS = 100_000  # a power of a number with a larger value is never needed to grade
MAX_FACTORIAL = 2000  # 2000! has 5,736 digits
MAX_NUMBER_DIGITS = 7  # an exponent or factorial argument written with more digits is refused

_INT = r"(\d{1,%d}(?![\d.]))" % (MAX_NUMBER_DIGITS + 1)
_POWER = re.compile(r"([0-9]+(?:\.[0-9]+)?|[A-Za-z)}\]])\s*\^\s*(?:\{\s*\+?" + _INT + r"\s*\}|" + _INT + r")")
_BIG_EXPONENT = re.compile(r"\^\s*\{?\s*\+?\d{%d,}" % (MAX_NUMBER_DIGITS + 1))
_STACKED = re.compile(r"\^\s*\{[^{}]*\^\s*\{?\s*\d{3,}")  # a^{b^{123}}: a tower with a large top
# the limits of \sum_{k=1}^{100}, \int_0^{10}: bounds, not powers
_LIMITS = re.compile(r"(\\[A-Za-z]+)\s*_\s*(?:\{[^{}]*\}|[^\s{}])\s*\^\s*(?:\{[^{}]*\}|[^\s{}])")
_FACTORIAL = re.compile(r"(\d+)\s*!")
_BINOM = re.compile(r"\\[dt]?binom\s*\{\s*(\d+)\s*\}")


def too_big(text: str) -> str | None:
    """Why ``text`` is hopeless to compare exactly (a short reason), or None."""
    if "^" in text:
        if "_" in text:
            text = _LIMITS.sub(r"\1 ", text)
        if _BIG_EXPONENT.search(text) or _STACKED.search(text):
            return "an exponent too large to evaluate"
        for m in _POWER.finditer(text):
            base, exp = m.group(1), int(m.group(2) or m.group(3))
            if base[0].isdigit():
                b = float(base)
                if b > 1 and exp * math.log2(b) > MAX_POWER_BITS:
                    return f"{base}^{exp} has more than {MAX_POWER_BITS} bits"
            elif base in ")}]" and exp > MAX_GROUP_EXPONENT:
                return f"a power of a bracketed expression with exponent {exp} (limit {MAX_GROUP_EXPONENT})"
            elif exp > MAX_SYMBOLIC_EXPONENT:
                return f"a symbolic power with exponent {exp} (limit {MAX_SYMBOLIC_EXPONENT})"
    if "!" in text:
        for m in _FACTORIAL.finditer(text):
            if len(m.group(1)) > MAX_NUMBER_DIGITS or int(m.group(1)) > MAX_FACTORIAL:
                return f"{m.group(1)}! is too large (limit {MAX_FACTORIAL}!)"
    if "binom" in text:
        for m in _BINOM.finditer(text):
            if len(m.group(1)) > MAX_NUMBER_DIGITS or int(m.group(1)) > MAX_FACTORIAL:
                return f"a binomial coefficient of {m.group(1)} is too large (limit {MAX_FACTORIAL})"
    return None


__all__ = ["too_big", "MAX_SYMBOLIC_EXPONENT", "MAX_GROUP_EXPONENT", "MAX_POWER_BITS", "MAX_FACTORIAL"]
