"""Gymnasium spaces for chat: any unicode text as an action, a list of messages as an observation.

Why not ``gymnasium.spaces.Text``: it only contains strings whose every character is in a fixed,
enumerated charset (default: ASCII letters and digits, at least one character), so "What is
85+63?", "√2" or an empty answer are *outside* the space and ``check_env`` fails on ordinary
prompts. Enumerating all of Unicode as a charset would cost a 1.1-million-entry set per space.
``UnicodeText`` instead contains every well-formed Unicode string (no lone surrogates) up to a
length, and samples from a small mixed alphabet (ASCII, math symbols, accented letters, CJK,
emoji, whitespace) so that random actions exercise the same code paths real model text does.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

#: Roles an environment may put in an observation. ``assistant`` = written by the model.
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

# What random samples are drawn from: enough variety to catch encoding and parsing bugs.
SAMPLE_ALPHABET: str = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " \n\t.,;:!?+-*/=()[]{}<>'\"\\_^%$#&|~`@"
    "√π×÷≤≥≠∞∑∫²³½αβγλμσΩéüñçßøå中文字日本語한국😀🚀"
)


def _is_wellformed(text: str) -> bool:
    # A lone surrogate cannot be encoded as UTF-8 (and no tokenizer or JSON writer accepts it).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class UnicodeText(spaces.Space[str]):
    """Every well-formed Unicode string with ``min_length <= len <= max_length`` characters.

    ``sample()`` draws a length up to ``sample_max_length`` (not ``max_length``: a uniform draw up
    to a million characters would make every random action a megabyte) and characters from
    ``SAMPLE_ALPHABET``.
    """

    def __init__(
        self,
        max_length: int = 1_000_000,
        *,
        min_length: int = 0,
        sample_max_length: int = 64,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if not 0 <= min_length <= max_length:
            raise ValueError(f"need 0 <= min_length <= max_length, got {min_length} and {max_length}")
        self.min_length = int(min_length)
        self.max_length = int(max_length)
        self.sample_max_length = max(self.min_length, min(int(sample_max_length), self.max_length))
        self._alphabet = np.array(list(SAMPLE_ALPHABET), dtype=object)
        super().__init__(dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """Free text has no fixed-size array form."""
        return False

    def sample(self, mask: Any | None = None, probability: Any | None = None) -> str:
        """A random string (masks are not supported: text has no finite index set)."""
        if mask is not None or probability is not None:
            raise ValueError("UnicodeText.sample does not take a mask or probability")
        n = int(self.np_random.integers(self.min_length, self.sample_max_length + 1))
        return "".join(self.np_random.choice(self._alphabet, size=n))

    def contains(self, x: Any) -> bool:
        """True for a well-formed str within the length bounds."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length and _is_wellformed(x)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnicodeText) and (self.min_length, self.max_length) == (other.min_length, other.max_length)

    def __repr__(self) -> str:
        return f"UnicodeText(min_length={self.min_length}, max_length={self.max_length})"


class ChatMessages(spaces.Space[list]):
    """Conversations: lists of ``{"role": ..., "content": ...}`` dicts (extra string keys allowed).

    ``role`` must be one of ``roles``; ``content`` must be in the ``UnicodeText`` space given by
    ``max_content_length``; the list holds between 1 and ``max_messages`` messages.
    """

    def __init__(
        self,
        roles: Sequence[str] = ROLES,
        *,
        max_messages: int = 4096,
        max_content_length: int = 1_000_000,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if not roles:
            raise ValueError("ChatMessages needs at least one role")
        self.roles = tuple(roles)
        self.max_messages = int(max_messages)
        self.content = UnicodeText(max_content_length)
        super().__init__(dtype=None, seed=seed)

    def seed(self, seed: int | None = None) -> int | Any:
        """Seed this space and its content space (so a seeded sample is reproducible)."""
        used = super().seed(seed)
        self.content.seed(int(self.np_random.integers(2**31)))
        return used

    @property
    def is_np_flattenable(self) -> bool:
        """Conversations have no fixed-size array form."""
        return False

    def sample(self, mask: Any | None = None, probability: Any | None = None) -> list:
        """A random conversation of 1-4 messages."""
        if mask is not None or probability is not None:
            raise ValueError("ChatMessages.sample does not take a mask or probability")
        if self.content._np_random is None:
            self.content.seed(int(self.np_random.integers(2**31)))
        n = int(self.np_random.integers(1, min(4, self.max_messages) + 1))
        return [
            {"role": self.roles[int(self.np_random.integers(len(self.roles)))], "content": self.content.sample()}
            for _ in range(n)
        ]

    def contains(self, x: Any) -> bool:
        """True for a non-empty list of well-formed messages."""
        if not isinstance(x, list) or not 1 <= len(x) <= self.max_messages:
            return False
        for m in x:
            if not isinstance(m, dict) or m.get("role") not in self.roles or m.get("content") not in self.content:
                return False
            if any(not isinstance(k, str) for k in m):
                return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatMessages) and (self.roles, self.max_messages, self.content) == (
            other.roles,
            other.max_messages,
            other.content,
        )

    def __repr__(self) -> str:
        return f"ChatMessages(roles={self.roles}, max_messages={self.max_messages})"


__all__ = ["UnicodeText", "ChatMessages", "ROLES", "SAMPLE_ALPHABET"]
