"""Answer extraction: find the final answer inside a model's completion.

Every extractor is linear-time over capped input (no backtracking regexes on model text), returns
``None`` when it finds nothing, and is registered by name in ``EXTRACTORS`` so verifiers can be
configured with an ordered list such as ``("boxed", "answer_tag", "final_answer", "last_number")``.
"""

from __future__ import annotations

import re
from typing import Callable

Extractor = Callable[[str], "str | None"]

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_OPEN_RE = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE_RE = re.compile(r"</answer>", re.IGNORECASE)
_FINAL_RE = re.compile(r"(?:final answer|the answer is|answer\s*:)[^\S\n]*(?:is)?[^\S\n]*:?[^\S\n]*", re.IGNORECASE)
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


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
    return line or None


def last_number(text: str) -> str | None:
    """The last number-looking token (``-1,234.5``, ``3e8``) in the text."""
    last = None
    for m in _NUMBER_RE.finditer(text):
        last = m
    return last.group(0) if last else None


def whole(text: str) -> str | None:
    """The whole completion, stripped (for short-answer tasks)."""
    t = text.strip()
    return t or None


EXTRACTORS: dict[str, Extractor] = {
    "boxed": last_boxed,
    "answer_tag": answer_tag,
    "final_answer": final_answer,
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


__all__ = ["EXTRACTORS", "extract", "check_order", "last_boxed", "answer_tag", "final_answer", "last_number", "whole", "braced"]
