"""Cheap, linear-time clean-up of an extracted math answer before it is compared.

``normalize`` removes what never changes an answer's meaning: math-mode and ``\\boxed`` wrappers,
``\\left``/``\\right``, spacing commands, ``\\dfrac``, trailing punctuation, a leading currency
sign, degree marks, units (``\\text{cm}``, "dollars", "square units": see ``UNIT_WORDS``) and
redundant outer parentheses or braces, however deeply nested. ``compact`` then drops the spaces
that do not matter (it keeps one between two digits that are not thousands groups, so ``1 2`` never
becomes ``12``). Both run in time linear in the input, with no backtracking regex over model text:
a 1 MB answer or 30 nested parentheses cost microseconds to milliseconds, never seconds.
"""

from __future__ import annotations

import re

from rlvr.verifiers.math_words import HEDGES, apply_value_words

_SPACING = re.compile(r"\\\\|\\[,;:! ]|\\q?quad\b|~|\\displaystyle|\\textstyle")  # "\\\\" (a row break) is kept
_UPRIGHT_CONSTANT = re.compile(r"\\(?:text|mathrm|rm)\s*\{\s*([ie])\s*\}")  # \mathrm{i} is the imaginary unit
_MULTIPLIER_TAIL = re.compile(
    r"(?<=\d)\s*(?:\\text\s*\{\s*)?(hundred|thousand|million|billion|trillion)s?(?:\s*\})?\s*$", re.IGNORECASE
)
_MULTIPLIER_EXP = {"hundred": 2, "thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_LEFT_RIGHT = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?=[(\[)\]|.]|\\[{}|])")
_LEFT_RIGHT_DOT = re.compile(r"\\(?:left|right)\.")
_FRAC_VARIANTS = re.compile(r"\\[dtc]frac")
_FRAC_SHORT = re.compile(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])")  # \frac12 -> \frac{1}{2}
_ONE_CHAR_GROUP = re.compile(r"([\^_])\{\s*([A-Za-z0-9])\s*\}(?![A-Za-z0-9.])")  # x^{2} -> x^2 (not x^{2}3)
_TEXT_CMDS = ("\\text{", "\\textrm{", "\\textbf{", "\\mathrm{", "\\mbox{", "\\mathbf{", "\\boxed{", "\\fbox{")
_WS = re.compile(r"\s+")
_THIN_THOUSANDS = re.compile(r"(\d),\\!\s*(?=\d{3}(?!\d))")
_DIGIT_SPACE_DIGIT = re.compile(r"(\d)\s+(?=\d)")
_COMMA_SPACE_DIGIT = re.compile(r"(?<=\d),\s+(?=\d)")
_THOUSANDS_SPACED = re.compile(r"(?<![\d.])\d{1,3}(?: \d{3})+(?![\d])")

# Units stripped from the end of an answer (after a number, ')' or '}'). Multiplier words such as
# "million" or "dozen" are deliberately absent: "5 million" is not 5. One-letter units need a number
# and a space before them ("5 m"): "5m" may be a product with a variable m, "f \circ g" is no unit.
UNIT_WORDS = (
    "dollars?", "cents?", "usd", "euros?", "pounds?", "yuan", "rupees?", "rs\\.?",
    "mm", "cm", "km", "meters?", "metres?", "centimeters?", "centimetres?", "millimeters?",
    "kilometers?", "kilometres?", "inch(?:es)?", "ft", "feet", "foot", "yards?", "yd",
    "miles?", "mg", "kg", "grams?", "kilograms?", "lbs?", "ounces?", "oz", "tons?",
    "ml", "liters?", "litres?", "gallons?", "gal", "quarts?", "pints?", "cups?",
    "sec", "secs", "seconds?", "mins?", "minutes?", "hr", "hrs", "hours?",
    "days?", "weeks?", "months?", "years?", "mph", "km/h", "kmh", "m/s",
    "degrees?", "deg", "radians?", "rad", "units?", "sq\\.? units?", "square units?",
)
ONE_LETTER_UNITS = "mgslh"
_UNIT_RE = re.compile(
    r"(?:(?<=[\d)}])|\s)\s*(?:(?:sq\.?|square|cubic|cu\.?)\s+)?(?:" + "|".join(UNIT_WORDS) + r")"
    r"(?:\^\{?[23]\}?|²|³)?\s*$"
    r"|(?<=[\d)}])\s+(?:[" + ONE_LETTER_UNITS + r"])(?:\^\{?[23]\}?|²|³)?\s*$",
    re.IGNORECASE,
)
_MULTIPLIERS = frozenset({"hundred", "thousand", "million", "billion", "trillion", "dozen", "percent"})
# Hedges ("1 or more", "3 at most") are never dropped as nouns: rlvr.verifiers.math_words judges them.
_KEEP_WORDS = _MULTIPLIERS | {"percentage", "pct", "infinity"} | HEDGES
_LAST_WORD = re.compile(r"\s+([A-Za-z]{3,})\.?$")
_NUMBER_END = re.compile(r"(?:\d|hundred|thousand|million|billion|trillion)$", re.IGNORECASE)
_TEXT_TAIL = re.compile(r"\\(?:text|textrm|mathrm|mbox)\s*\{([^{}]{0,60})\}(?:\^\{?[23]\}?)?\s*$")
_DEGREE_TAIL = re.compile(r"(?<=[\d}])\s*(?:\^\s*\{?\s*\\circ\s*\}?|\^\s*\\degree|\\degree|°|\\circ)\s*$")  # not f \circ g
_TAIL = 200  # only the last _TAIL characters are examined for units: answers end with them


_BRACKETS = re.compile(r"\\.|[()\[\]{},]", re.DOTALL)


def _scan(s: str) -> tuple[dict[int, int], dict[int, int], set[int]]:
    """One pass over the brackets of ``s`` (escaped ones like ``\\{`` skipped).

    Returns partner maps for ``(``/``)`` and ``{``/``}`` (both directions; an unmatched bracket is
    absent) and the set of ``(`` positions whose own level holds a comma (tuples, intervals).
    """
    paren: dict[int, int] = {}
    brace: dict[int, int] = {}
    comma: set[int] = set()
    p_stack: list[int] = []
    b_stack: list[int] = []
    any_stack: list[tuple[str, int]] = []
    for m in _BRACKETS.finditer(s):
        c, i = m.group(0), m.start()
        if len(c) > 1:
            continue
        if c == "(":
            p_stack.append(i)
        elif c == "{":
            b_stack.append(i)
        elif c == ")" and p_stack:
            j = p_stack.pop()
            paren[i], paren[j] = j, i
        elif c == "}" and b_stack:
            j = b_stack.pop()
            brace[i], brace[j] = j, i
        if c in "([{":
            any_stack.append((c, i))
        elif c in ")]}":
            if any_stack:
                any_stack.pop()
        elif c == "," and any_stack and any_stack[-1][0] == "(":
            comma.add(any_stack[-1][1])
    return paren, brace, comma


_PARENS = re.compile(r"[()]")


def _unnest_runs(s: str) -> str:
    """Drop k redundant layers of ``((((...))))`` at once, using C-speed strip/count.

    The k leading ``(`` and k trailing ``)`` pair up exactly when the inside never closes more
    than it opens; then all k layers go (one stays if the inside is a tuple ``1,2``). This keeps
    a megabyte of nested parentheses cheap before :func:`peel`'s general scan."""
    t = s.strip()
    k = min(len(t) - len(t.lstrip("(")), len(t) - len(t.rstrip(")")))
    if k < 2 or 2 * k >= len(t):
        return s
    inner = t[k:-k]
    depth = 0
    for m in _PARENS.finditer(inner):
        depth += 1 if m.group(0) == "(" else -1
        if depth < 0:
            return s
    if depth != 0:
        return s
    return t[k - 1 : len(t) - k + 1] if _top_level_comma(inner) else inner


def _top_level_comma(s: str) -> bool:
    depth = 0
    for m in _BRACKETS.finditer(s):
        c = m.group(0)
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            return True
    return False


def peel(s: str) -> str:
    """Remove wrappers around the whole answer: ``$..$``, ``\\(..\\)``, ``\\[..\\]``, ``\\boxed{}``,
    ``\\text{}``, ``{..}`` and grouping ``(..)`` (never a tuple's), plus an unmatched leading ``{`` or
    trailing ``}``. Linear: partner positions are computed once and stay valid while peeling."""
    s = _unnest_runs(s)
    paren, brace, comma = _scan(s)
    i, j = 0, len(s) - 1
    while True:  # each round removes at least one character
        while i <= j and s[i].isspace():
            i += 1
        while j >= i and s[j].isspace():
            j -= 1
        if i >= j:
            break
        if s[i] == "$" and s[j] == "$":
            i, j = i + 1, j - 1
        elif s.startswith("\\(", i) and s.startswith("\\)", j - 1) and j - 1 > i + 1:
            i, j = i + 2, j - 2
        elif s.startswith("\\[", i) and s.startswith("\\]", j - 1) and j - 1 > i + 1:
            i, j = i + 2, j - 2
        elif s[i] == "{" and brace.get(i) == j:
            i, j = i + 1, j - 1
        elif s[i] == "{" and i not in brace:
            i += 1
        elif s[j] == "}" and j not in brace and s[j - 1] != "\\":
            j -= 1
        elif s[i] == "\\" and s[j] == "}" and (k := _command_brace(s, i)) >= 0 and brace.get(k) == j:
            i, j = k + 1, j - 1
        elif s[i] == "(" and paren.get(i) == j and i not in comma:
            i, j = i + 1, j - 1
        else:
            break
    return s[i : j + 1] if i <= j else ""


def _command_brace(s: str, i: int) -> int:
    for cmd in _TEXT_CMDS:
        if s.startswith(cmd, i):
            return i + len(cmd) - 1
    return -1


def _strip_tail(s: str) -> str:
    """Trailing punctuation, degree marks and units, examined on the last few characters only."""
    head, tail = s[:-_TAIL], s[-_TAIL:]
    for _ in range(8):
        before = tail
        tail = tail.rstrip().rstrip(".,;:").rstrip()  # not "!": 5! is a factorial
        tail = _DEGREE_TAIL.sub("", tail)
        tail = _MULTIPLIER_TAIL.sub(lambda m: f"\\times10^{{{_MULTIPLIER_EXP[m.group(1).lower()]}}}", tail)
        m = _TEXT_TAIL.search(tail)
        if m and m.start() > 0 and (head or tail[: m.start()].strip()):
            words = m.group(1).strip().lower()
            if words in ("%", "percent"):
                tail = tail[: m.start()] + "\\%"
            elif (
                (len(words) > 1 or words in ONE_LETTER_UNITS)
                and words not in _MULTIPLIERS
                and re.fullmatch(r"[a-z][a-z ./]*", words)
                and not HEDGES.intersection(words.replace(".", " ").split())
            ):
                tail = tail[: m.start()]
        m = _UNIT_RE.search(tail)
        if m and (head or tail[: m.start()].strip()):
            tail = tail[: m.start()]
        tail = _strip_nouns(tail)
        if tail == before:
            break
    return head + tail


_PLAIN = re.compile(r"[-+]?[\d.,/]{1,40}")


def _strip_nouns(tail: str) -> str:
    """Plain words ending an answer right after a number: "12 boys", "5 million people" -> "5 million"."""
    t = tail.rstrip()
    j = len(t)
    while (m := _LAST_WORD.search(t, 0, j)) is not None and m.group(1).lower() not in _KEEP_WORDS:
        j = m.start()
    return t[:j] if j < len(t) and _NUMBER_END.search(t, 0, j) else tail


def normalize(answer: str) -> str:
    """A cleaned-up LaTeX answer with the same meaning (see the module docstring)."""
    if _PLAIN.fullmatch(answer):
        return answer  # the common case, a bare number: nothing to clean
    s = _THIN_THOUSANDS.sub(r"\1,", answer) if "\\!" in answer else answer  # 11,\! 111 is 11,111
    s = s.replace("\u2212", "-").replace("\\$", "$").replace("\\!", "")
    s = _SPACING.sub(lambda m: m.group(0) if m.group(0) == "\\\\" else " ", s)
    s = _UPRIGHT_CONSTANT.sub(r"\1", s)
    s = _LEFT_RIGHT_DOT.sub("", s)
    s = _LEFT_RIGHT.sub("", s)
    s = _FRAC_VARIANTS.sub(r"\\frac", s)
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _ONE_CHAR_GROUP.sub(r"\1\2", s)
    s = s.replace("{,}", ",").replace("∞", "\\infty ")
    s = apply_value_words(s)  # "2 squared" is 4, never a 2 followed by a unit
    s = peel(s)
    for _ in range(4):  # units may sit inside wrappers and wrappers inside units: a few rounds
        before = s
        s = _strip_tail(s)
        s = peel(s)
        if s.startswith("$") and not s.endswith("$"):
            s = s[1:].lstrip()  # a currency sign: "$5" is 5
        s = s.lstrip("=").strip()
        if s == before:
            break
    return _WS.sub(" ", s).strip()


def compact(s: str) -> str:
    """``s`` without insignificant spaces: a key for string equality and numeric parsing."""
    if " " not in s:
        return s
    s = _THOUSANDS_SPACED.sub(lambda m: m.group(0).replace(" ", ""), s)
    s = _DIGIT_SPACE_DIGIT.sub("\\1\x00", s)  # protect "1 2" (not a thousands group) ...
    s = _COMMA_SPACE_DIGIT.sub(",\x00", s)  # ... and "1, 234" (a list, not 1234) ...
    s = _WS.sub("", s)
    return s.replace("\x00", " ")  # ... and give it back its single space


__all__ = ["normalize", "compact", "peel", "UNIT_WORDS", "ONE_LETTER_UNITS"]
