"""``BackendPolicy``: a token-level generation backend answering chat conversations.

The evaluation runner calls ``Policy.complete`` once per turn of each running episode,
concurrently; a :class:`~rlvr.envs.evaluation.policies.batcher.MicroBatcher` gathers those calls
into one ``backend.generate`` over the conversations rendered with the chat template, on one
dedicated thread. Completions keep the backend's token ids and log-probs. Imports no torch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from rlvr.envs.evaluation.policies.base import Policy, PolicyCallFailed
from rlvr.envs.evaluation.policies.batcher import MicroBatcher
from rlvr.envs.generation import Completion, Message, SamplingParams

logger = logging.getLogger(__name__)

_Request = tuple[list[dict[str, str]], SamplingParams]


class BackendPolicy(Policy):
    """Any ``GenerationBackend`` (``generate(prompt_ids, params) -> list[Completion]``) as a chat policy.

    Args:
        backend: the backend, or None when a subclass builds it in :meth:`load` (in ``astart``).
        formatter: a ``ChatFormatter`` (renders prompts, knows the end-of-turn tokens).
        max_batch: the largest batch one ``generate`` call gets.
        max_prompt_tokens: prompts this long or longer fail alone (``policy_error``) instead of
            failing the batch; None = no check.
    """

    def __init__(self, backend: Any = None, formatter: Any = None, *, max_batch: int = 8,
                 max_prompt_tokens: int | None = None, spec: str = "", max_wait_s: float = 0.05) -> None:
        self.backend_impl = backend
        self.formatter = formatter
        self.max_prompt_tokens = max_prompt_tokens
        self.spec = spec or f"backend:{getattr(backend, 'name', type(backend).__name__)}"
        # One batcher (and so one generation thread) for the policy's life: see MicroBatcher.
        self.batcher: MicroBatcher[_Request, Completion] = MicroBatcher(
            self._generate_batch, max_batch=max_batch, max_wait_s=max_wait_s)
        self._running = False

    @property
    def backend(self) -> str:
        """The backend's name (``engine``, ``hf``, ``vllm``, ...)."""
        return str(getattr(self.backend_impl, "name", type(self.backend_impl).__name__))

    @property
    def batch_sizes(self) -> list[int]:
        """Sizes of every batch generated so far, across runs."""
        return self.batcher.batch_sizes

    def load(self) -> None:
        """Build the backend and formatter (subclasses that load a model override this)."""

    async def astart(self) -> None:
        import asyncio

        if self.backend_impl is None or self.formatter is None:
            await asyncio.to_thread(self.load)
        await self.batcher.start()
        self._running = True

    async def aclose(self) -> None:
        if self._running:
            self._running = False
            await self.batcher.close()
            logger.debug("%s: batch sizes so far %s", self.spec, self.batcher.batch_sizes)

    async def complete(
        self, messages: Sequence[Message], sampling: SamplingParams, *, task: Mapping[str, Any] | None = None
    ) -> Completion:
        if not self._running:
            raise PolicyCallFailed(f"{self.spec}: complete() called outside a run (call astart() first)")
        conv = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        return await self.batcher.submit((conv, sampling))

    # ------------------------------------------------------------------ the generation thread

    def _generate_batch(self, requests: list[_Request]) -> list[Completion | Exception]:
        out: list[Completion | Exception] = [PolicyCallFailed("not generated")] * len(requests)
        # One generate() per distinct sampling setting; per-call seeds cannot apply inside one batch.
        stops = tuple(self.formatter.stop_ids)
        groups: dict[SamplingParams, list[tuple[int, list[int]]]] = defaultdict(list)
        for i, (conv, s) in enumerate(requests):
            try:
                ids = self.formatter.prompt_ids(conv)
            except Exception as e:  # a conversation the template cannot render fails alone
                out[i] = PolicyCallFailed(f"{self.spec}: cannot render the conversation: {type(e).__name__}: {e}")
                continue
            if not ids or (self.max_prompt_tokens is not None and len(ids) >= self.max_prompt_tokens):
                out[i] = PolicyCallFailed(f"{self.spec}: prompt of {len(ids)} tokens does not fit the "
                                          f"{self.max_prompt_tokens}-token context")
                continue
            params = replace(s, seed=None, stop_token_ids=tuple(sorted(set(s.stop_token_ids) | set(stops))))
            groups[params].append((i, ids))
        for params, members in groups.items():
            try:
                results: list[Completion | Exception] = list(self.backend_impl.generate([ids for _, ids in members], params))
            except Exception as e:  # e.g. a conversation longer than the model's context
                results = [PolicyCallFailed(f"{self.spec}: generation failed: {type(e).__name__}: {e}")] * len(members)
            for (i, _), c in zip(members, results):
                out[i] = c
        return out

    def release(self) -> None:
        """Free the backend's resources (KV cache, HTTP connections)."""
        release: Callable[[], None] | None = getattr(self.backend_impl, "release", None)
        if release is not None:
            release()


__all__ = ["BackendPolicy"]
