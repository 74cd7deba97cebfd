"""The policy interface of `rlvr eval`: chat messages in, one assistant message out.

A policy is anything that answers a conversation: a local transformers model, an
OpenAI-compatible server, or a plain Python function. The runner calls :meth:`Policy.complete`
concurrently (one call per turn of each running episode), so implementations must be safe to
await many times at once; :meth:`Policy.astart` and :meth:`Policy.aclose` bracket one run inside
its event loop (clients and background tasks belong to a loop, so they are made there).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rlvr.envs.generation import Completion, Message, SamplingParams, estimate_prompt_tokens, estimate_tokens
from rlvr.errors import ConfigError, RlvrError
from rlvr.validate import positive_int


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
class PolicyOptions:
    """Settings for building a policy from a spec string (the CLI's flags, validated here)."""

    concurrency: int = 8
    request_timeout: float = 300.0
    max_retries: int = 5
    backoff_s: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int("concurrency", self.concurrency)
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
