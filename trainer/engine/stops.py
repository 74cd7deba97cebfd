"""Stop strings: find the first token at which a completion's text contains one.

Stop strings are text, so they are checked on the host, every few decode steps, over only the
tokens added since the last check (plus a short look-back for strings that straddle the boundary).
Decoding untrusted token ids never raises: a failure reads as empty text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)


def safe_decode(tokenizer: Any, token_ids: Sequence[int], skip_special_tokens: bool) -> str:
    """Decode ``token_ids``; any tokenizer error (e.g. an id past its vocabulary) gives ""."""
    if tokenizer is None or not token_ids:
        return ""
    try:
        return tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens)
    except Exception as exc:  # model output must never crash the rollout
        logger.debug("decode failed for %d tokens: %s", len(token_ids), exc)
        return ""


class StopStringMatcher:
    """Find where any of ``stops`` first appears in a growing list of token ids."""

    # Extra tokens of look-back beyond one token per character, for tokens that decode to nothing.
    _SLACK = 4

    def __init__(self, tokenizer: Any, stops: Sequence[str], skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.skip_special_tokens = skip_special_tokens
        self.lookback = max((len(s) for s in self.stops), default=0) + self._SLACK

    def _contains(self, text: str) -> str | None:
        for stop in self.stops:
            if stop in text:
                return stop
        return None

    def find(self, token_ids: Sequence[int], checked: int) -> tuple[int | None, str | None]:
        """Return ``(k, stop)`` for the smallest ``k > checked`` whose text ``token_ids[:k]`` holds a stop.

        ``checked`` is how many leading tokens are already known to hold none. Returns
        ``(None, None)`` when no stop string appears in ``token_ids``.
        """
        n = len(token_ids)
        if not self.stops or n <= checked:
            return None, None
        start = max(0, checked - self.lookback)
        decode = lambda end: safe_decode(self.tokenizer, token_ids[start:end], self.skip_special_tokens)  # noqa: E731
        if self._contains(decode(n)) is None:
            return None, None
        for end in range(max(checked, start) + 1, n + 1):
            stop = self._contains(decode(end))
            if stop is not None:
                return end, stop
        return None, None


__all__ = ["StopStringMatcher", "safe_decode"]
