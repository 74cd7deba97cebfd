"""What an answer says besides its number: value words, hedges and relations.

Units after a number are dropped (``5 \\text{ cm}``, ``12 boys``: see
:mod:`~rlvr.verifiers.math_normalize`), but three kinds of text change what the answer *is*, and a
reward-maximising policy will try each of them to hit a reference it is unsure of:

- **Value words** (``VALUE_WORDS``) do arithmetic on the number before them: ``2 squared`` is 4,
  ``3 halves`` is 3/2, ``2 dozen`` is 24. They are rewritten into LaTeX, so ``2 squared`` is right
  for 4 and wrong for 2.
- **Hedges** (``HEDGES``) make the answer something other than one number: ``1 or more``,
  ``3 at most``, ``5 negative``, ``2 plus``, ``1 or 2``. An answer with a hedge after its first
  number is wrong unless the reference says the same words.
- **Relations** (``RELATIONS``): ``100 \\equiv 2``, ``5 \\to 2``, ``5 := 2``, ``x \\approx 2`` are
  statements, not their right-hand side, unless the reference is a relation too. (Equations
  ``x = 2`` keep math-verify's reading: the right-hand side.)
"""

from __future__ import annotations

import re

# word -> what it does to the number before it (each is arithmetic, so it may not be dropped)
VALUE_WORDS: dict[str, str] = {
    "squared": "^{2}",
    "cubed": "^{3}",
    "inverse": "^{-1}",
    "reciprocal": "^{-1}",
    "factorial": "!",
    "dozen": "\\times12",
    "dozens": "\\times12",
    "halves": "/2",
    "thirds": "/3",
    "quarters": "/4",
    "fourths": "/4",
    "fifths": "/5",
    "sixths": "/6",
    "eighths": "/8",
    "tenths": "/10",
    "hundredths": "/100",
    "thousandths": "/1000",
}

# words that, after a number, hedge it, bound it or combine it with something else
HEDGES = frozenset({
    "or", "and", "to", "than", "more", "less", "fewer", "least", "most", "over", "under", "above",
    "below", "plus", "minus", "times", "divided", "of", "out", "not", "no", "about", "approximately",
    "approx", "around", "roughly", "nearly", "almost", "maybe", "possibly", "probably", "either",
    "negative", "positive", "double", "twice", "half", "triple", "square", "cube", "root", "power",
})

# symbols that, like the words above, offer several answers at once
HEDGE_SYMBOLS = ("\\lor", "\\vee", "\\land", "\\wedge", "\\pm", "\\mp")

RELATIONS = (
    "\\equiv", "\\to", "\\rightarrow", "\\longrightarrow", "\\mapsto", "\\Rightarrow", "\\implies",
    "\\iff", "\\leftrightarrow", "\\sim", "\\simeq", "\\cong", "\\approx", ":=", "\\coloneqq",
)

_TEXT_WRAP = re.compile(r"\\(?:text|textrm|textbf|mathrm|mbox|operatorname)\s*\{([^{}]{0,200})\}")
_NUMBER_THEN_VALUE_WORD = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:\\(?:text|textrm|mathrm|mbox)\s*\{\s*)?(" + "|".join(VALUE_WORDS) + r")\b(?:\s*\})?",
    re.IGNORECASE,
)
_WORDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}(?![A-Za-z])")
_DIGIT = re.compile(r"\d")
_SUBSCRIPT = re.compile(r"_\s*\{[^{}]*\}")  # \lim_{x \to 0}: a relation inside a subscript is not the answer's
_HEDGE_SYMBOL = re.compile("|".join(re.escape(h) + "(?![A-Za-z])" for h in HEDGE_SYMBOLS))
_RELATION = re.compile("|".join(re.escape(r) + ("(?![A-Za-z])" if r[-1].isalpha() else "") for r in RELATIONS))


def apply_value_words(text: str) -> str:
    """``2 squared`` -> ``{2}^{2}``, ``3 \\text{ halves}`` -> ``{3}/2`` (see ``VALUE_WORDS``)."""
    if not any(w in text.lower() for w in VALUE_WORDS):
        return text
    return _NUMBER_THEN_VALUE_WORD.sub(lambda m: "{" + m.group(1) + "}" + VALUE_WORDS[m.group(2).lower()], text)


def hedge(text: str) -> str | None:
    """The first hedge word after the answer's first number (``1 or more`` -> ``or``), or a hedge
    symbol anywhere (``1 \\lor 2``, ``\\pm 2``), else None."""
    sym = _HEDGE_SYMBOL.search(text)
    if sym is not None:
        return sym.group(0)
    m = _DIGIT.search(text)
    if m is None:
        return None
    rest = _TEXT_WRAP.sub(lambda t: " " + t.group(1) + " ", text[m.end() :])
    for w in _WORDS.findall(rest):
        if w.lower() in HEDGES:
            return w.lower()
    return None


def relation(text: str) -> str | None:
    """The first relation symbol in the answer (``\\equiv``, ``\\to``, ``:=``...), else None."""
    m = _RELATION.search(_SUBSCRIPT.sub(" ", text) if "_" in text else text)
    return m.group(0) if m else None


__all__ = ["VALUE_WORDS", "HEDGES", "HEDGE_SYMBOLS", "RELATIONS", "apply_value_words", "hedge", "relation"]
