"""`StringVerifier`: exact, normalised, regex and multiple-choice answers."""

from __future__ import annotations

import re
import string as _string
import unicodedata
from typing import Any, Literal

import regex  # the `regex` package: same syntax as `re`, plus a timeout for user patterns on model text

from rlvr.errors import ConfigError
from rlvr.verifiers.base import Verifier
from rlvr.verifiers.registry import register_verifier
from rlvr.verifiers.extract import check_order, extract
from rlvr.verifiers.score import Score

Mode = Literal["exact", "normalized", "regex", "choice"]
MODES = ("exact", "normalized", "regex", "choice")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", _string.punctuation)
_WS = re.compile(r"\s+")
# Choice patterns, most specific first: "B" alone, "(B)", "answer/option/choice B", a lone letter.
_CHOICE_ALONE = re.compile(r"^\s*\(?([A-Z])[).:]?\s*$")
_CHOICE_PAREN = re.compile(r"\(([A-Z])\)")
_CHOICE_NAMED = re.compile(r"(?:answer|option|choice)(?:\s+is)?\s*:?\s*\(?([A-Z])\b", re.IGNORECASE)
_CHOICE_WORD = re.compile(r"(?<![A-Za-z'])([A-Z])(?![A-Za-z'])")


def normalize_text(s: str) -> str:
    """Casefold, NFKC, drop punctuation and English articles, collapse whitespace (SQuAD-style)."""
    s = unicodedata.normalize("NFKC", s).casefold()
    s = s.translate(_PUNCT)
    s = _ARTICLES.sub(" ", s)
    return _WS.sub(" ", s).strip()


class StringVerifier(Verifier):
    """Compare the extracted answer to a reference string.

    Modes: ``exact`` (after stripping whitespace), ``normalized`` (casefold, punctuation and
    articles removed), ``regex`` (the reference is a pattern that must match the whole answer;
    evaluated with a timeout so a pathological pattern cannot hang scoring) and ``choice``
    (multiple choice: the reference is a letter such as ``"B"``; the completion's chosen letter
    is found in "(B)", "B.", "answer: B" or ``\\boxed{B}``). A reference may also be a list of
    accepted answers.
    """

    name = "string"

    def __init__(
        self,
        mode: Mode = "normalized",
        extractors: tuple[str, ...] = ("answer_tag", "boxed", "final_answer", "whole"),
        choices: str = "ABCDEFGHIJ",
        regex_timeout: float = 0.5,
    ) -> None:
        if mode not in MODES:
            raise ConfigError("mode", f"unknown mode {mode!r}", f"choose one of {', '.join(MODES)}")
        self.mode = mode
        self.extractors = check_order("extractors", extractors)
        if not choices or not all(c in _string.ascii_uppercase for c in choices):
            raise ConfigError("choices", f"must be capital letters, got {choices!r}", "e.g. choices='ABCD'")
        self.choices = choices
        if regex_timeout <= 0:
            raise ConfigError("regex_timeout", "must be > 0 seconds")
        self.regex_timeout = float(regex_timeout)

    def _score(self, completion: str, reference: Any, **kw: Any) -> Score:
        refs = reference if isinstance(reference, (list, tuple)) else [reference]
        if not refs or any(not isinstance(r, str) for r in refs):
            return Score.failed("error", "reference must be a string or a list of strings")
        answer, how = extract(completion, self.extractors)
        if answer is None:
            return Score.failed("no_answer", "no answer found")
        if self.mode == "choice":
            letter = self._choice(answer)
            if letter is None:
                return Score.failed("parse_error", f"no choice letter among {self.choices!r}", parsed=answer[:200])
            ok = any(letter == r.strip().upper().strip("()") for r in refs)
            return Score.right(letter, f"choice via {how}") if ok else Score.wrong(letter, f"choice via {how}")
        if self.mode == "regex":
            try:
                ok = any(regex.fullmatch(r, answer.strip(), timeout=self.regex_timeout) for r in refs)
            except TimeoutError:
                return Score.failed("timeout", "reference pattern took too long on this answer", parsed=answer[:200])
            except regex.error as e:
                return Score.failed("error", f"reference is not a valid regex: {e}")
        elif self.mode == "exact":
            ok = any(answer.strip() == r.strip() for r in refs)
        else:
            na = normalize_text(answer)
            ok = any(na == normalize_text(r) for r in refs)
        parsed = answer[:1000]
        return Score.right(parsed, f"{self.mode} via {how}") if ok else Score.wrong(parsed, f"{self.mode} via {how}")

    def _choice(self, answer: str) -> str | None:
        # Only an unambiguous pick counts: "A or B" is no answer, not a lucky guess.
        for pattern in (_CHOICE_ALONE, _CHOICE_PAREN, _CHOICE_NAMED, _CHOICE_WORD):
            found = {m.group(1).upper() for m in pattern.finditer(answer)} & set(self.choices)
            if found:
                return found.pop() if len(found) == 1 else None
        return None


register_verifier("string", StringVerifier)

__all__ = ["StringVerifier", "normalize_text", "MODES"]
