"""`FormatVerifier`: does the completion follow the think/answer tag structure?"""

from __future__ import annotations

import re
from typing import Any

from rlvr.errors import ConfigError
from rlvr.verifiers.base import Verifier
from rlvr.verifiers.registry import register_verifier
from rlvr.verifiers.score import Score

_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class FormatVerifier(Verifier):
    """Reward 1.0 when the completion has a reasoning block followed by an answer block.

    ``strict``: the whole completion is exactly ``<think>\\n...\\n</think>\\n<answer>\\n...\\n</answer>``
    (DeepSeek-R1's format reward). Lenient (default): one ``<think>...</think>`` followed later by
    one non-empty ``<answer>...</answer>``, any whitespace, nothing after the answer but space.
    ``require_think=False`` accepts an answer block alone. The reference is ignored.
    """

    name = "format"
    needs_reference = False

    def __init__(self, strict: bool = False, think_tag: str = "think", answer_tag: str = "answer", require_think: bool = True) -> None:
        for field, tag in (("think_tag", think_tag), ("answer_tag", answer_tag)):
            if not _TAG.match(tag):
                raise ConfigError(field, f"{tag!r} is not a tag name", "use letters, digits, '_' or '-', e.g. 'think'")
        self.strict = strict
        self.think_tag = think_tag
        self.answer_tag = answer_tag
        self.require_think = require_think

    def _layout_ok(self, s: str) -> bool:
        # Procedural, not one big regex: a tag-layout regex with adjacent stars backtracks
        # quadratically on a 1 MB completion without a closing tag.
        to, tc = f"<{self.think_tag}>", f"</{self.think_tag}>"
        ao, ac = f"<{self.answer_tag}>", f"</{self.answer_tag}>"
        if s.count(ao) != 1 or s.count(ac) != 1:
            return False
        n_think = s.count(to)
        if n_think != s.count(tc) or n_think > 1 or (self.require_think and n_think == 0):
            return False
        a0, a1 = s.index(ao), s.index(ac)
        if a1 < a0 or not s[a0 + len(ao) : a1].strip():
            return False
        if n_think:
            t0, t1 = s.index(to), s.index(tc)
            if not (t0 < t1 < a0):
                return False
            head, between, tail = s[:t0], s[t1 + len(tc) : a0], s[a1 + len(ac) :]
        else:
            head, between, tail = "", s[:a0], s[a1 + len(ac) :]
        if not self.strict:
            return not head.strip() and not between.strip() and not tail.strip()
        body_ok = s[a0 + len(ao) : a0 + len(ao) + 1] == "\n" and s[a1 - 1 : a1] == "\n"
        if n_think:
            think_ok = s[t0 + len(to) : t0 + len(to) + 1] == "\n" and s[t1 - 1 : t1] == "\n"
            return head == "" and between == "\n" and tail == "" and think_ok and body_ok
        return head == "" and between == "" and tail == "" and body_ok

    def _score(self, completion: str, reference: Any = None, **kw: Any) -> Score:
        ao, ac = f"<{self.answer_tag}>", f"</{self.answer_tag}>"
        i = completion.rfind(ao)
        j = completion.find(ac, i + len(ao)) if i >= 0 else -1
        parsed = completion[i + len(ao) : j].strip()[:1000] if i >= 0 and j >= 0 else None
        if self._layout_ok(completion):
            return Score.right(parsed, "strict format" if self.strict else "format")
        if parsed is None:
            return Score.failed("no_answer", f"no <{self.answer_tag}>...</{self.answer_tag}> block")
        return Score.wrong(parsed, f"tags present but not in the {'strict ' if self.strict else ''}required layout")


register_verifier("format", FormatVerifier)

__all__ = ["FormatVerifier"]
