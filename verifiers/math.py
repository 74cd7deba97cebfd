"""`MathVerifier`: is the final answer in a completion mathematically equal to the reference?

Two paths decide every item:

1. **Fast, in-process** (``_fast_score``, microseconds, no sympy). The answer is extracted and
   normalised (:mod:`~rlvr.verifiers.math_normalize`); then
   - equal normalised text is right;
   - two simple numbers (integers, decimals, fractions, percentages, scientific notation, power
     towers: :mod:`~rlvr.verifiers.numeric`) are compared exactly as fractions, right or wrong;
   - two sets, intervals, tuples or matrices of simple numbers are compared entry by entry
     (:mod:`~rlvr.verifiers.math_structure`);
   - two expressions (polynomials and quotients with square roots and pi: ``(x+3)(x-3)`` vs
     ``x^2-9``, ``\\sqrt{12}`` vs ``2\\sqrt{3}``) are evaluated exactly at random points
     (:mod:`~rlvr.verifiers.rational_expr`).
   The gold side's parse is cached per gold string, so a GRPO group pays for it once.
2. **Slow, isolated** (``_score``, in a worker process under a hard wall-clock kill): everything
   else goes to math-verify and sympy (:mod:`~rlvr.verifiers.math_sympy`): expressions,
   equations, unions, symbolic entries.

Where we deliberately differ from math-verify's default ``verify(parse(gold), parse(completion))``
(each named divergence is pinned by a test in ``tests/verifiers/test_math_divergences.py``; the
differential test against math-verify attributes every disagreement to one of them):

- ``answer-tag``: the content of ``<answer>...</answer>`` is the answer; math-verify does not know
  the tag and misreads ``<answer>852</answer>`` (no number followed by a space or punctuation).
- ``undelimited``: a formula written without ``$..$``, ``\\(..\\)``, ``\\[..\\]`` or ``\\boxed``,
  on a "Final answer:" line or ending a sentence (``\\dfrac{8}{20}``, ``(4,7,1)``, ``y=3x+2``,
  ``- 81``), is read; math-verify reads only plain numbers there.
- ``percent-reading``: a percentage against a plain number has one reading, chosen by that number
  (see :func:`~rlvr.verifiers.numeric.numbers_equal`): ``200\\%`` is not 2 and ``4500\\%`` is not
  45; math-verify grants both readings, so each number has two "right" percentages.
- ``decimal-rounding``: a decimal must be a correct rounding of the reference at the precision
  it is written with, on top of math-verify's 6-decimal rule: ``0.4999999`` is not 1/2,
  ``[0, 1.0000001]`` is not ``[0, 1]``, ``1e-9`` is not ``2e-9`` (math-verify: equal).
- ``value-words``: ``2 squared`` is 4, ``3 halves`` is 3/2, ``2 dozen`` is 24
  (:mod:`~rlvr.verifiers.math_words`); math-verify drops the word and reads 2, 3, 2.
- ``hedges``: ``1 or more``, ``3 at most``, ``5 negative``, ``1 or 2`` are wrong for 1, 3, 5, 1
  unless the reference says the same words; math-verify reads the first number.
- ``relations``: ``100 \\equiv 2``, ``5 \\to 2``, ``5 := 2``, ``x \\approx 2`` are not 2 unless the
  reference is a relation too; math-verify takes the right-hand side. (``x = 2`` is 2 in both.)
- ``too-big``: ``(x+1)^{100000}``, ``5000!`` and similar are ``parse_error`` in microseconds
  (:mod:`~rlvr.verifiers.math_size`); math-verify spends its whole timeout on them.
- ``notation``: ``1.5e3`` is 1500 (math-verify: 1.5*E*3); ``0.\\overline{3}`` is 1/3; ``1 000`` and
  ``1\\,000`` are 1000 (math-verify: 1*0); ``5 million`` is 5000000 and ``12 boys`` is 12
  (math-verify: ``5\\text{ million}`` == 5); a right answer in redundant parentheses or braces, or
  with unbalanced braces from a truncated ``\\boxed{``, is unwrapped before parsing.
- ``several-boxed``: a completion that boxes two or more different answers is wrong, whichever
  comes last (a policy must not box every candidate); math-verify takes the last one.
- ``decimal-comma``: ``1000,99`` and ``0,111`` are not read as decimals (``1,5`` may be a list,
  ``0,111`` a thousands group); math-verify reads a comma as a decimal point there.
- ``inline-across-lines``: an inline ``$..$`` that spans lines is no math environment (as in
  math-verify), but the number inside is still found by the last-number fallback; math-verify
  finds nothing.
- ``set-relation``: ``x \\le 3`` equals ``(-\\infty, 3]`` (math-verify's ``allow_set_relation_comp``).

Where a reference cannot be read at all the score is ``error``; an answer that extracts but
cannot be understood is ``parse_error``; neither is ever rewarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from rlvr.errors import ConfigError
from rlvr.validate import positive_int
from rlvr.verifiers.base import DEFAULT_TIMEOUT_S, Verifier
from rlvr.verifiers.extract import all_boxed, check_order, extract
from rlvr.verifiers.math_normalize import compact, normalize
from rlvr.verifiers.math_size import too_big
from rlvr.verifiers.math_words import hedge, relation
from rlvr.verifiers.math_structure import Struct, parse_structure, structures_equal
from rlvr.verifiers.numeric import Num, numbers_equal, parse_number
from rlvr.verifiers.rational_expr import Expression, parse_rational, rationals_equal
from rlvr.verifiers.registry import register_verifier
from rlvr.verifiers.score import Score

DEFAULT_EXTRACTORS = ("boxed", "answer_tag", "final_answer", "latex", "expression", "last_number")
STRICT_EXTRACTORS = ("boxed", "answer_tag")
MAX_FAST_CHARS = 20_000  # longer answers skip the in-process path: the worker's hard timeout covers them
_PARSED_CHARS = 1000  # how much of the extracted answer a Score keeps


@dataclass(frozen=True)
class Parsed:
    """One side of a comparison, prepared for the fast path."""

    text: str  # normalised LaTeX, what math-verify gets
    key: str  # compacted: the string-equality key
    number: Num | None
    struct: Struct | None
    expr: Expression | None  # an expression for exact identity testing (an exact number is one)
    var: str | None  # "x" when the answer is "x = <rhs>"; number/struct/expr then describe the rhs


def prepare(answer: str) -> Parsed:
    """Normalise one answer and parse it as a simple number or structure where possible."""
    text = normalize(answer)
    key = compact(text)
    var, rhs = None, key
    if len(key) > 2 and key[0].isalpha() and key[1] == "=" and "=" not in key[2:]:
        var, rhs = key[0], key[2:]
    number = parse_number(rhs)
    struct = parse_structure(rhs) if number is None else None
    expr: Expression | None = None
    if number is not None:
        if not (number.huge or number.percent or number.approx):
            expr = Expression(number.value)
    elif struct is None:
        expr = parse_rational(rhs)
    return Parsed(text, key, number, struct, expr, var)


@lru_cache(maxsize=4096)
def prepare_gold(gold: str) -> Parsed:
    """:func:`prepare` for a reference, cached: the completions of one prompt share it."""
    return prepare(gold)


_prepare_short = lru_cache(maxsize=8192)(prepare)


def prepare_pred(answer: str) -> Parsed:
    """:func:`prepare` for a prediction; short ones are cached (a group often repeats answers)."""
    return _prepare_short(answer) if len(answer) <= 200 else prepare(answer)


def fast_verdict(gold: Parsed, pred: Parsed) -> tuple[bool, str] | None:
    """(right?, rule) when the cheap rules decide, else None (then sympy decides)."""
    if gold.key == pred.key:
        return True, "same normalised answer"
    if gold.var and pred.var and gold.var != pred.var:
        return None  # "x = 1" vs "y = 1": math-verify's call
    if gold.number is not None and pred.number is not None:
        eq = numbers_equal(gold.number, pred.number)
        return None if eq is None else (eq, "numbers compared exactly")
    if gold.struct is not None and pred.struct is not None:
        eq = structures_equal(gold.struct, pred.struct)
        return None if eq is None else (eq, _STRUCT_RULES[gold.struct.kind])
    if gold.expr is not None and pred.expr is not None:
        eq = rationals_equal(gold.expr, pred.expr)
        return None if eq is None else (eq, "expressions evaluated exactly at random points")
    return None


_STRUCT_RULES = {
    "set": "sets compared element by element",
    "seq": "intervals/tuples compared entry by entry",
    "matrix": "matrices compared entry by entry",
}


def _references(reference: Any) -> list[str] | None:
    """The accepted answers as strings; None when the reference is unusable."""
    refs = list(reference) if isinstance(reference, (list, tuple)) else [reference]
    out = []
    for r in refs:
        if isinstance(r, bool) or not isinstance(r, (str, int, float)):
            return None
        r = r if isinstance(r, str) else repr(r)
        if not prepare_gold(r).key:
            return None
        out.append(r)
    return out or None


class MathVerifier(Verifier):
    """Score a completion's final answer against a reference answer by mathematical equivalence.

    Args:
        extractors: where to look for the answer, in order (names from
            ``rlvr.verifiers.extract.EXTRACTORS``). Default: last ``\\boxed{}``, then the last
            ``<answer>`` tag, then a "final answer:" line, then the last LaTeX math environment,
            then a plain expression ending the text, then a last number that stands alone.
        strict: only accept an answer in ``\\boxed{}`` or ``<answer>`` tags (no fallbacks).
        timeout: hard per-item limit in seconds for the sympy path (fast-path items never wait).
        workers: worker processes for the sympy path (default: one per core, at most 8).

    The reference may be a string (``"\\frac{1}{2}"``, ``"$(1, 2]$"``), a number, or a list of
    accepted answers. Statuses: ``ok``, ``wrong``, ``no_answer`` (nothing extracted),
    ``parse_error`` (extracted but not understood), ``timeout``, ``error`` (bad reference).
    """

    name = "math"
    isolated = True
    preload_modules = ("rlvr.verifiers.math_sympy",)

    def __init__(
        self,
        extractors: Sequence[str] | None = None,
        strict: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        workers: int | None = None,
    ) -> None:
        if extractors is None:
            extractors = STRICT_EXTRACTORS if strict else DEFAULT_EXTRACTORS
        self.extractors = check_order("extractors", extractors)
        self.strict = bool(strict)
        if self.strict:
            loose = [e for e in self.extractors if e not in STRICT_EXTRACTORS]
            if loose:
                raise ConfigError("extractors", f"strict mode allows only {STRICT_EXTRACTORS}, got {loose}", "drop them or set strict=False")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError("timeout", f"must be > 0 seconds, got {timeout!r}", "e.g. timeout=10")
        self.timeout = float(timeout)
        if workers is not None:
            positive_int("workers", workers, fix="e.g. workers=4")
        self.workers = workers

    # ----------------------------------------------------------------- the two paths
    def _fast_score(self, completion: str, reference: Any, **kw: Any) -> Score | None:
        return self._decide_fast(completion, reference, MAX_FAST_CHARS)

    def _extract(self, completion: str) -> tuple[str | None, str | None]:
        """The answer and the extractor that found it; ``how == "several_boxed"`` when the
        completion boxes different answers and gives no explicit final-answer line besides."""
        answer, how = extract(completion, self.extractors)
        if how == "boxed" and completion.count("box") > 1:
            if len({prepare_pred(b).key for b in all_boxed(completion)}) > 1:
                final = extract(completion, ("final_answer",))[0] if "final_answer" in self.extractors else None
                if final is None or "box" in final:
                    return answer, "several_boxed"
                return final, "final_answer"  # boxed steps, then one explicit final answer
        return answer, how

    def _decide_fast(self, completion: str, reference: Any, max_chars: int | None) -> Score | None:
        refs = _references(reference)
        if refs is None:
            return Score.failed("error", "reference must be a non-empty string, a number, or a list of them")
        answer, how = self._extract(completion)
        if answer is None:
            return Score.failed("no_answer", f"no answer found (looked for: {', '.join(self.extractors)})")
        if max_chars is not None and len(answer) > max_chars:
            return None
        pred = prepare_pred(answer)
        parsed = answer[:_PARSED_CHARS]
        if not pred.key:
            return Score.failed("no_answer", f"the answer is empty once wrappers are removed (via {how})", parsed=parsed)
        if how == "several_boxed":
            return Score.wrong(parsed, "different boxed answers: one final answer is expected (via boxed)")
        golds = [prepare_gold(ref) for ref in refs]
        if any(g.key == pred.key for g in golds):
            return Score.right(parsed, f"same normalised answer (via {how})")
        word = hedge(pred.text)
        if word is not None and not any(hedge(g.text) == word for g in golds):
            return Score.wrong(parsed, f"'{word}' makes this answer something other than one number (via {how})")
        rel = relation(pred.text)
        if rel is not None and not any(relation(g.text) for g in golds):
            return Score.wrong(parsed, f"a relation ({rel}) is not its right-hand side; the reference is no relation (via {how})")
        verdicts = [fast_verdict(g, pred) for g in golds]
        for v in verdicts:
            if v is not None and v[0]:
                return Score.right(parsed, f"{v[1]} (via {how})")
        if any(v is None for v in verdicts):
            big = too_big(pred.text)
            if big is not None:
                return Score.failed("parse_error", f"refused: {big}; exact comparison is hopeless (via {how})", parsed=parsed)
            return None
        return Score.wrong(parsed, f"{verdicts[0][1]} (via {how})")

    def _score(self, completion: str, reference: Any, **kw: Any) -> Score:
        # In a worker, under the hard timeout: the cheap rules first (no size cap here), then sympy.
        fast = self._decide_fast(completion, reference, None)
        if fast is not None:
            return fast
        from rlvr.verifiers import math_sympy  # preloaded in workers; heavy (sympy)

        refs = _references(reference) or []
        answer, how = self._extract(completion)
        if answer is None:  # unreachable: the cheap rules answered no_answer already
            return Score.failed("no_answer", "no answer found")
        parsed = answer[:_PARSED_CHARS]
        pred = prepare_pred(answer).text
        if not any(math_sympy.is_math(x) for x in math_sympy.parse_answer(pred)):
            if any(math_sympy.equivalent(prepare_gold(r).text, pred) for r in refs):
                return Score.right(parsed, f"same text after math-verify normalisation (via {how})")
            return Score.failed("parse_error", "math-verify could not parse the answer", parsed=parsed)
        for ref in refs:
            gold = prepare_gold(ref).text
            if math_sympy.equivalent(gold, pred):
                return Score.right(parsed, f"math-verify: equivalent (via {how})")
        if not any(any(math_sympy.is_math(x) for x in math_sympy.parse_answer(prepare_gold(r).text)) for r in refs):
            return Score.wrong(parsed, "the reference is not a math expression; compared as text")
        return Score.wrong(parsed, f"math-verify: not equivalent (via {how})")


register_verifier("math", MathVerifier)

__all__ = ["MathVerifier", "prepare", "fast_verdict", "DEFAULT_EXTRACTORS", "STRICT_EXTRACTORS"]
