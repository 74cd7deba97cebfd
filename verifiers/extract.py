"""Answer extraction: find the final answer inside a model's completion.

Every extractor is linear-time over capped input (no backtracking regexes on model text), returns
``None`` when it finds nothing, and is registered by name in ``EXTRACTORS`` so verifiers can be
configured with an ordered list. MathVerifier's default order reads what math-verify reads, most
explicit first:

1. ``boxed``: the last ``\\boxed{}`` (or ``\\fbox{}``);
2. ``answer_tag``: the last ``<answer>...</answer>``;
3. ``final_answer``: the rest of the line after "final answer:", "the answer is", "answer:";
4. ``latex``: the last LaTeX math environment (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``),
   unless a number follows it in the text (then the answer is after it);
5. ``expression``: a plain expression ending the text (``The result is 3\\sqrt{3}.``);
6. ``last_number``: the last number, and only if it stands alone: a digit run that is part of
   something larger (``\\frac{7}{3}``, ``x^2``, ``a_3``, ``QX3Z``, the ``74`` of ``2,74``) is no
   answer at all, never a fragment mistaken for one.
"""

from __future__ import annotations

import re
from typing import Callable

Extractor = Callable[[str], "str | None"]

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_OPEN_RE = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE_RE = re.compile(r"</answer>", re.IGNORECASE)
_FINAL_RE = re.compile(r"(?:final answer|the answer is|answer\s*:)[^\S\n]*(?:is)?[^\S\n]*:?[^\S\n]*", re.IGNORECASE)
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+(?:\.\d+)?)?(?:[eE][-+]?\d+)?|-?\.\d+")
_GLUED_UNIT = re.compile(r"(?:mm|cm|km|kg|mg|ml|m|g|l|s|h)(?:²|³)?(?![A-Za-z])")
_MATH_DELIMS = re.compile(r"\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_CLOSERS = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_DIGIT = re.compile(r"\d")
MAX_EXPRESSION_CHARS = 300  # a plain expression ending the text is short; longer tails are prose


def braced(text: str, open_index: int) -> str:
    """Content of the ``{...}`` group whose ``{`` is at ``open_index``; unbalanced -> the rest."""
    depth = 0
    for j in range(open_index, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : j]
    return text[open_index + 1 :]


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``); balanced braces, unbalanced tolerated."""
    last = None
    for m in _BOXED_RE.finditer(text):
        last = m
    if last is None:
        return None
    return braced(text, last.end() - 1).strip()


def all_boxed(text: str, limit: int = 50) -> list[str]:
    """Contents of every ``\\boxed{...}`` (at most ``limit``, the last ones), in order."""
    starts = [m.end() - 1 for m in _BOXED_RE.finditer(text)][-limit:]
    return [braced(text, i).strip() for i in starts]


def answer_tag(text: str) -> str | None:
    """Content of the last ``<answer>...</answer>`` block (an unclosed last tag runs to the end)."""
    opens = list(_ANSWER_OPEN_RE.finditer(text))
    if not opens:
        return None
    start = opens[-1].end()
    close = _ANSWER_CLOSE_RE.search(text, start)
    return text[start : close.start() if close else len(text)].strip()


def final_answer(text: str) -> str | None:
    """The rest of the line after the last "final answer:", "the answer is" or "answer:"."""
    last = None
    for m in _FINAL_RE.finditer(text):
        last = m
    if last is None:
        return None
    line = text[last.end() :].split("\n", 1)[0].strip()
    line = line.rstrip(".").strip()
    if line[:1] == "$" or line[:2] in ("\\(", "\\["):
        spans = _math_spans(line)  # "$14{,}916$. I hope it is correct": the opening formula only
        return line[spans[0][0] : spans[0][1]].strip() or None if spans else line
    if line[:1].isalpha() and _WORD.match(line) and (_DIGIT.search(line) or "$" in line):
        # "The largest $n$ is 34": a sentence, so read it as one (a value word or hedge right after
        # a number stays in the answer: this only applies when the line opens with words)
        return last_latex(line) or plain_expression(line) or last_number(line) or line
    return line or None


def _math_spans(text: str) -> list[tuple[int, int, int]]:
    """``(content start, content end, end of closing delimiter)`` of every math environment.

    One left-to-right pass over the delimiters; ``\\$`` (an escaped dollar) is skipped, an inline
    ``$..$`` or ``\\(..\\)`` never spans a line break (as in math-verify), an unclosed one is ignored.
    """
    spans = []
    opener: str | None = None
    start = 0
    for m in _MATH_DELIMS.finditer(text):
        tok = m.group(0)
        if tok == "\\$":
            continue
        if opener is None:
            if tok in _CLOSERS:
                opener, start = tok, m.end()
            continue
        if tok == _CLOSERS[opener]:
            content_end = m.start()
            if not (opener in ("$", "\\(") and "\n" in text[start:content_end]):
                spans.append((start, content_end, m.end()))
            opener = None
        elif opener in ("$", "\\(") and "\n" in text[start : m.start()]:
            opener = tok if tok in _CLOSERS else None  # the unclosed inline one ended at the line break
            start = m.end()
    return spans


def last_latex(text: str) -> str | None:
    """Content of the last LaTeX math environment, if no number follows it in the text."""
    for start, end, after in reversed(_math_spans(text)):
        content = text[start:end].strip()
        if not content:
            continue
        if _DIGIT.search(text, after):
            return None  # "Since $x = 3$, the total is 12": the answer is the later number
        return content
    return None


_EXPR_CHUNK = re.compile(r"[0-9A-Za-z\\{}()\[\]^_+\-*/=.,|!<>':%&]+")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_NAMED_GROUP = re.compile(r"\\(?:begin|end|text|textbf|textrm|mathrm|mbox|operatorname)\s*\{[^{}]*\}")
_WORD = re.compile(r"[A-Za-z]{2,}")


def _mathy(chunk: str) -> bool:
    """Could this chunk be part of a formula? (no plain word of two or more letters outside
    ``\\text{}``-like groups and ``\\begin{..}``/``\\end{..}``)"""
    bare = _NAMED_GROUP.sub("T", chunk).replace(" ", "")
    if not _EXPR_CHUNK.fullmatch(bare):
        return False
    return _WORD.search(_COMMAND.sub(" ", bare)) is None


def plain_expression(text: str) -> str | None:
    """A formula ending the last line, written without math delimiters: ``so it is -\\frac{5}{4}.``

    Whitespace-separated chunks are taken from the end while they look like formula parts (no
    plain word); the result must hold a digit or a LaTeX command. After an ``=`` only the right
    side is kept (``x = 3 \\cdot 4 = 12`` gives ``12``).
    """
    tail = text.rstrip()[-4 * MAX_EXPRESSION_CHARS :]
    line = tail.rsplit("\n", 1)[-1].strip().rstrip(".;:!?,").rstrip()
    chunks = _split_outside_braces(line)
    taken: list[str] = []
    size = 0
    for chunk in reversed(chunks):
        if not _mathy(chunk) or size + len(chunk) > MAX_EXPRESSION_CHARS:
            if chunk.strip(",;:").lower() in _ENUMERATING:
                return None  # "x = 1, 2, or 3": an enumeration, not one answer
            break
        taken.append(chunk)
        size += len(chunk) + 1
    expr = " ".join(reversed(taken)).strip()
    if "=" in expr:
        expr = expr.rsplit("=", 1)[1].strip()
    expr = expr.lstrip(",:")
    if not expr or not (_DIGIT.search(expr) or _COMMAND.search(expr)):
        return None
    return expr


def _split_outside_braces(line: str) -> list[str]:
    """``line.split()``, except that spaces inside ``{...}`` do not split (``\\text{ yes }``)."""
    chunks, depth, start = [], 0, None
    for i, c in enumerate(line):
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        if c.isspace() and depth == 0:
            if start is not None:
                chunks.append(line[start:i])
                start = None
        elif start is None:
            start = i
    if start is not None:
        chunks.append(line[start:])
    return chunks


_ENUMERATING = frozenset({"or", "and"})
_ENUMERATION_BEFORE = re.compile(r"\b(?:or|and)[\s,]*$", re.IGNORECASE)
_GLUED_BEFORE = frozenset("{^_\\")  # a digit run right after these is an argument, not a number


def last_number(text: str) -> str | None:
    """The last number-looking token (``-1,234.5``, ``3e8``), only if it stands alone.

    When the last digit run is a fragment (glued to a letter, inside braces, an exponent or a
    subscript, or a decimal-comma number), None: an earlier number is not the final answer either.
    """
    last = None
    for m in _NUMBER_RE.finditer(text):
        last = m
    if last is None:
        return None
    token = last.group(0)
    before = text[last.start() - 1] if last.start() > 0 else " "
    after = text[last.end()] if last.end() < len(text) else " "
    if before.isalpha() or before in _GLUED_BEFORE or after in "}_^/":
        return None
    if after.isalpha() and not _GLUED_UNIT.match(text, last.end()):
        return None  # "QX3Z"; but "1,000.99m²" is a number with its unit
    if _ENUMERATION_BEFORE.search(text, max(0, last.start() - 12), last.start()):
        return None  # "1, 2, or 3 apples": an enumeration, not one answer
    whole = token.strip(",").split(".")[0]
    if "," in whole and any(len(g) != 3 for g in whole.split(",")[1:]):
        return None  # "2,74" (a decimal comma) or "1,2" (a list): never cut a piece out of it
    token = token.rstrip(",")
    for sign in ("\\%", "%"):
        if text.startswith(sign, last.end()):
            return token + sign  # "0.6\\%" is a percentage, not 0.6
    return token


def whole(text: str) -> str | None:
    """The whole completion, stripped (for short-answer tasks)."""
    t = text.strip()
    return t or None


EXTRACTORS: dict[str, Extractor] = {
    "boxed": last_boxed,
    "answer_tag": answer_tag,
    "final_answer": final_answer,
    "latex": last_latex,
    "expression": plain_expression,
    "last_number": last_number,
    "whole": whole,
}


def extract(text: str, order: tuple[str, ...]) -> tuple[str | None, str | None]:
    """Run extractors in ``order``; returns ``(answer, extractor name)`` of the first that finds one."""
    for name in order:
        got = EXTRACTORS[name](text)
        if got is not None and got != "":
            return got, name
    return None, None


def check_order(field: str, order: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate a configured extractor order, raising ConfigError naming the bad entry."""
    from rlvr.errors import ConfigError

    order = tuple(order)
    if not order:
        raise ConfigError(field, "needs at least one extractor", f"choose from {sorted(EXTRACTORS)}")
    for name in order:
        if name not in EXTRACTORS:
            raise ConfigError(field, f"unknown extractor {name!r}", f"choose from {sorted(EXTRACTORS)}")
    return order


__all__ = [
    "EXTRACTORS", "extract", "check_order", "last_boxed", "answer_tag", "final_answer", "last_latex",
    "plain_expression", "last_number", "whole", "braced", "all_boxed",
]
