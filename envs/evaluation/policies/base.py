"""The policy interface of `rlvr eval`: chat messages in, one assistant message out.

A policy is anything that answers a conversation: a local transformers model, an
OpenAI-compatible server, or a plain Python function. The runner calls :meth:`Policy.complete`
concurrently (one call per turn of each running episode), so implementations must be safe to
await many times at once; :meth:`Policy.astart` and :meth:`Policy.aclose` bracket one run inside
its event loop (clients and background tasks belong to a loop, so they are made there).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rlvr.errors import ConfigError, RlvrError

Message = Mapping[str, str]


class PolicyError(RlvrError, RuntimeError):
    """The policy cannot work at all (unreachable server, unknown model, bad key, broken function).

    Raised out of the run: every episode would fail the same way, so the run stops (keeping what
    finished) instead of recording hundreds of identical failures.
    """


class PolicyCallFailed(RlvrError, RuntimeError):
    """One call failed after its retries (server overloaded, context too long, ...).

    The runner records that episode with status ``policy_error`` and carries on with the others.
    """


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one assistant message; the same for every call of a run."""

    max_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError("max_tokens", f"must be >= 1, got {self.max_tokens}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ConfigError("temperature", f"must be a finite number >= 0, got {self.temperature}", "use 0 for greedy decoding")
        if not 0 < self.top_p <= 1:
            raise ConfigError("top_p", f"must be in (0, 1], got {self.top_p}")

    def with_seed(self, seed: int | None) -> "SamplingParams":
        """The same parameters with another sampling seed (one per episode turn)."""
        return SamplingParams(self.max_tokens, self.temperature, self.top_p, seed)


@dataclass(frozen=True)
class Completion:
    """One assistant message and what it cost.

    ``estimated`` is True when the token counts are a text-length estimate rather than counts
    from a tokenizer or the server's ``usage`` field.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    finish_reason: str | None = None


@dataclass(frozen=True)
class PolicyOptions:
    """Settings for building a policy from a spec string (the CLI's flags, validated here)."""

    concurrency: int = 8
    request_timeout: float = 300.0
    max_retries: int = 5
    backoff_s: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("concurrency", f"must be >= 1, got {self.concurrency}")
        if not self.request_timeout > 0:
            raise ConfigError("request_timeout", f"must be > 0 seconds, got {self.request_timeout}")
        if self.max_retries < 0:
            raise ConfigError("max_retries", f"must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0:
            raise ConfigError("backoff_s", f"must be >= 0, got {self.backoff_s}")


class Policy(ABC):
    """Answers a conversation with one assistant message; see the module docstring."""

    #: the spec this policy was built from (``openai:http://...#model``), for reports.
    spec: str = ""

    async def astart(self) -> None:
        """Prepare for a run inside the running event loop (open clients, load weights)."""

    async def aclose(self) -> None:
        """Release what :meth:`astart` made; the policy may be started again for another run."""

    @abstractmethod
    async def complete(
        self, messages: Sequence[Message], sampling: SamplingParams, *, task: Mapping[str, Any] | None = None
    ) -> Completion:
        """Answer ``messages`` (the full conversation so far) with one assistant message.

        ``task`` is the environment's task (prompt, reference, metadata); only oracle-style
        Python policies look at it. Raises :class:`PolicyCallFailed` for a failure of this call
        alone and :class:`PolicyError` when the policy cannot work at all.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token count: the larger of the word count and characters / 4.

    Used only when neither a tokenizer nor the server reports usage; reports mark such counts
    as estimated. Four characters per token is the usual rule of thumb for English BPE vocabularies;
    the word count keeps short, space-separated answers from being undercounted.
    """
    return max(len(text.split()), math.ceil(len(text) / 4))


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """:func:`estimate_tokens` over every message's content."""
    return sum(estimate_tokens(str(m.get("content") or "")) for m in messages)


__all__ = [
    "Message",
    "Policy",
    "PolicyError",
    "PolicyCallFailed",
    "PolicyOptions",
    "SamplingParams",
    "Completion",
    "estimate_tokens",
    "estimate_prompt_tokens",
]
