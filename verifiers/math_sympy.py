"""The slow path of :class:`~rlvr.verifiers.math.MathVerifier`: math-verify and sympy.

Imported only where ``_score`` runs: in scoring-pool workers (the forkserver preloads it, and
importing it warms up the LaTeX parser, so new workers start ready). Never imported by
``import rlvr.verifiers``.

How we call math-verify, and why:
- ``parsing_timeout=None`` / ``timeout_seconds=None``: its own timeout is SIGALRM-based; it fails
  off the main thread and truncates float seconds. The pool's hard per-item kill replaces it.
- The extracted answer is wrapped as ``\\boxed{...}`` so math-verify parses exactly that text;
  if that yields no expression, math-verify's own extraction runs on the bare text.
- ``allow_set_relation_comp=True``: ``x \\le 3`` is accepted for the interval ``(-\\infty, 3]``
  (math-verify already accepts the other direction).
- Parsed golds and predictions, and verdicts, are cached (LRU keyed by the normalised strings):
  the 8 or 16 completions of a GRPO group share one gold and often repeat answers.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from sympy import Basic, Expr, FiniteSet, Interval, MatrixBase, Mul, Rational, Symbol, Tuple, UnevaluatedExpr

_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())
CACHE_MAX_CHARS = 2000  # longer strings are parsed without caching (the cache must stay small)


class _DropDisabledTimeoutWarning(logging.Filter):
    """math-verify warns once per process that its timeout is off; ours is the pool's hard kill."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropDisabledTimeoutWarning())


def is_math(x: Any) -> bool:
    """Is ``x`` a parsed sympy object (not math-verify's raw-string fallback)?"""
    return isinstance(x, (Basic, MatrixBase))


def _parse(text: str) -> tuple:
    got = parse(f"\\boxed{{{text}}}", extraction_config=_CONFIG, parsing_timeout=None)
    if not any(is_math(x) for x in got):
        bare = parse(text, extraction_config=_CONFIG, parsing_timeout=None)
        if any(is_math(x) for x in bare):
            got = bare
    return tuple(got)


_parse_cached = lru_cache(maxsize=4096)(_parse)


def parse_answer(text: str) -> tuple:
    """math-verify's parse of one normalised answer: sympy objects and/or a string fallback."""
    return _parse_cached(text) if len(text) <= CACHE_MAX_CHARS else _parse(text)


def _differs(gold: Any, pred: Any) -> bool:
    """Can math-verify never judge these two equal? (False when unsure.)

    Plain expressions: their values at one point are more than 1e-5 apart (math-verify rounds at
    1e-6), found with evalf at 30 digits, far cheaper than the ``simplify`` math-verify would run.
    Tuples, intervals, finite sets and matrices of the same type: math-verify matches them entry
    by entry, so a shape mismatch or one entry that differs decides it. Anything with a special
    rule in math-verify (relations, percentages, bare symbols or words, mixed types) is "unsure".
    """
    if isinstance(gold, Tuple) and isinstance(pred, Tuple):
        return len(gold) != len(pred) or any(_differs(a, b) for a, b in zip(gold, pred))
    if isinstance(gold, MatrixBase) and isinstance(pred, MatrixBase):
        if gold.shape != pred.shape:
            return True
        return any(_differs(a, b) for a, b in zip(gold, pred))
    if isinstance(gold, Interval) and isinstance(pred, Interval):
        if (gold.left_open, gold.right_open) != (pred.left_open, pred.right_open):
            return True
        return _differs(gold.start, pred.start) or _differs(gold.end, pred.end)
    if isinstance(gold, FiniteSet) and isinstance(pred, FiniteSet):
        g, p = list(gold.args), list(pred.args)
        lonely = lambda xs, ys: any(all(_differs(x, y) for y in ys) for x in xs)
        return lonely(p, g) or lonely(g, p)
    return _expr_differs(gold, pred)


def _expr_differs(gold: Any, pred: Any) -> bool:
    for e in (gold, pred):
        if not isinstance(e, Expr) or isinstance(e, Symbol) or e.has(UnevaluatedExpr):
            return False
        if isinstance(e, Mul) and all(isinstance(a, Symbol) for a in e.args):
            return False  # "abc" may be a word, compared by math-verify as text
    names = sorted(gold.free_symbols | pred.free_symbols, key=str)
    if len(names) > 8:
        return False
    point = {v: Rational(1_000_003 + 7919 * k, 1009 + 31 * k) for k, v in enumerate(names)}
    try:
        a = gold.subs(point).evalf(30)
        b = pred.subs(point).evalf(30)
        if not (a.is_number and b.is_number and a.is_finite and b.is_finite):
            return False
        gap = abs(complex(a - b))
        scale = max(abs(complex(a)), abs(complex(b)))
    except Exception:  # sympy raises many things on odd input; unsure means "ask math-verify"
        return False
    return gap > 1e-5 + 1e-12 * scale


def surely_different(gold: str, pred: str) -> bool:
    """True when every parsed gold/prediction pair is numerically far apart (see _differs)."""
    golds = [g for g in parse_answer(gold) if is_math(g)]
    preds = [p for p in parse_answer(pred) if is_math(p)]
    return bool(golds and preds) and all(_differs(g, p) for g in golds for p in preds)


def _equivalent(gold: str, pred: str) -> bool:
    if surely_different(gold, pred):
        return False
    return bool(
        verify(
            list(parse_answer(gold)),
            list(parse_answer(pred)),
            timeout_seconds=None,
            allow_set_relation_comp=True,
        )
    )


_equivalent_cached = lru_cache(maxsize=8192)(_equivalent)


def equivalent(gold: str, pred: str) -> bool:
    """Does math-verify judge the normalised prediction equal to the normalised gold?"""
    if len(gold) <= CACHE_MAX_CHARS and len(pred) <= CACHE_MAX_CHARS:
        return _equivalent_cached(gold, pred)
    return _equivalent(gold, pred)


_WARM_UP = (
    ("\\frac{1}{2}", "0.5"),
    ("(x+1)^2", "x^2+2x+1"),
    ("2\\sqrt{3}", "\\sqrt{13}"),
    ("y=2x+1", "y-1=2x"),
    ("(-\\infty, 3]", "x \\le 3"),
    ("\\{1, \\sqrt{2}\\}", "\\{\\sqrt{2}, 1\\}"),
    ("\\begin{pmatrix} 1 & x \\end{pmatrix}", "\\begin{pmatrix} 1 & x \\end{pmatrix}"),
)


def _warm_up() -> None:
    # The first parse builds the ANTLR LaTeX parser and the first simplify fills sympy's caches
    # (~0.5 s together); pay that once, in the forkserver, so every forked worker starts warm.
    for gold, pred in _WARM_UP:
        _equivalent(gold, pred)


_warm_up()

__all__ = ["parse_answer", "equivalent", "is_math"]
