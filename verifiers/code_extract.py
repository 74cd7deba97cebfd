"""Find the program in a completion: the last fenced block in the wanted language, else raw text.

Rules, in order (reasoning before a final ``</think>`` is dropped first):

1. the last fenced block (```` ``` ```` or ``~~~``, any length >= 3) whose info string names the
   language (``python``/``py``/``python3``; ``cpp``/``c++``/``cc``/``cxx``; ``c``;
   ``javascript``/``js``/``node``; ``bash``/``sh``/``shell``; and any alias the sandbox's language
   registry adds);
2. else the last fenced block with no info string;
3. else, when the completion has no fence at all and ``raw`` is allowed, the whole text — if it
   reads as a program in the language (``PLAUSIBLE``: Python must parse and do more than name
   a value; C/C++ must define ``main``; JavaScript must reach ``console`` or ``process``), so
   prose without code is ``no_answer`` rather than a program that fails;
4. else nothing (blocks in other languages only, or nothing but whitespace).

An opening fence left unclosed (a generation cut off mid-block) runs to the end of the text.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable

from rlvr.sandbox import get_language

# Fence tags models actually write, beyond the sandbox's own names and aliases.
EXTRA_TAGS: dict[str, tuple[str, ...]] = {
    "python": ("py3", "python2", "ipython", "pycon"),
    "cpp": ("cc", "hpp", "h++"),
    "c": ("h",),
    "javascript": ("jsx", "mjs", "ecmascript"),
    "bash": ("zsh", "console", "shell-script", "sh-session"),
}

_FENCE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)\n(?P<body>.*?)(?:^[ \t]{0,3}(?P=fence)[`~]*[ \t]*$|\Z)", re.M | re.S)


@dataclass(frozen=True)
class Extracted:
    """The program found (or None) and how: ``fence:<tag>``, ``fence``, ``raw`` or why nothing."""

    program: str | None
    how: str


def fence_tags(language: str) -> frozenset[str]:
    """Info-string words that mark a block as ``language`` (lower case)."""
    lang = get_language(language)
    tags = {lang.name, *lang.aliases, *(e.lstrip(".") for e in lang.extensions), *EXTRA_TAGS.get(lang.name, ())}
    return frozenset(t.lower() for t in tags)


def _tag(info: str) -> str:
    # "python title=x.py", "{.python}", "Python3" -> "python" / "python3"
    word = info.strip().split(None, 1)[0] if info.strip() else ""
    return word.strip("{}.").lower()


def extract_program(text: str, language: str = "python", raw: bool = True) -> Extracted:
    """The program a completion contains (see the module docstring for the rules)."""
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    tags = fence_tags(language)
    tagged = untagged = None
    others: list[str] = []
    for m in _FENCE.finditer(text):
        tag = _tag(m.group("info"))
        body = m.group("body")
        if tag in tags:
            tagged = (tag, body)
        elif not tag:
            untagged = body
        else:
            others.append(tag)
    if tagged is not None and tagged[1].strip():
        return Extracted(_dedent_block(tagged[1]), f"fence:{tagged[0]}")
    if untagged is not None and untagged.strip():
        return Extracted(_dedent_block(untagged), "fence")
    if tagged is not None or untagged is not None:
        return Extracted(None, "the code block is empty")
    if others:
        wanted = get_language(language).name
        return Extracted(None, f"no ```{wanted} block (found ```{', ```'.join(dict.fromkeys(others))})")
    if raw and text.strip():
        name = get_language(language).name
        check = PLAUSIBLE.get(name)
        if check is not None and not check(text):
            return Extracted(None, f"no code block, and the text is not a {name} program")
        return Extracted(text.strip("\n"), "raw")
    return Extracted(None, "no code block" if not raw else "empty completion")


def _python_program(text: str) -> bool:
    """Parses, and has a statement that does something (not only a bare name or constant: prose like 'Hello')."""
    try:
        tree = ast.parse(text, "<completion>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, (ast.Constant, ast.Name))) for s in tree.body)


_C_MAIN = re.compile(r"\bmain\s*\(")
_JS_IO = re.compile(r"\b(?:console|process)\s*\.")

#: Language -> "does this fence-less text read as a program?" Languages without an entry take any text.
PLAUSIBLE: dict[str, Callable[[str], bool]] = {
    "python": _python_program,
    "c": lambda text: _C_MAIN.search(text) is not None,
    "cpp": lambda text: _C_MAIN.search(text) is not None,
    "javascript": lambda text: _JS_IO.search(text) is not None,
}


def _dedent_block(body: str) -> str:
    # A fence indented inside a list item indents its whole body: remove the common indent.
    import textwrap

    return textwrap.dedent(body).strip("\n") + "\n"


__all__ = ["Extracted", "PLAUSIBLE", "extract_program", "fence_tags"]
