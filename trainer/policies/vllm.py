"""``vllm:BASE_URL#TOKENIZER`` — a ``vllm serve`` server through the trainer's token-id backend.

Unlike ``openai:`` (chat messages over ``/v1/chat/completions``), this renders the conversation
with the tokenizer's chat template here and sends token ids to ``/v1/completions``, exactly as
training rollouts do (``generation.backend: vllm``), so completions carry token ids and log-probs.
``TOKENIZER`` is a local tokenizer directory (usually the served model's). No weights are synced.
"""

from __future__ import annotations

from typing import Any

from rlvr.envs.evaluation.policies.base import Policy, PolicyOptions
from rlvr.errors import ConfigError, DependencyError
from rlvr.trainer.policies.backend import BackendPolicy


class VLLMPolicy(BackendPolicy):
    """A vLLM server; the tokenizer renders prompts and decodes nothing the server did not."""

    def __init__(self, base_url: str, tokenizer_path: str, *, concurrency: int = 8, timeout: float = 600.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError("policy", f"{base_url!r} is not an http(s) URL", "write vllm:http://HOST:PORT#TOKENIZER_DIR")
        if not tokenizer_path:
            raise ConfigError("policy", "no tokenizer after '#'", "write vllm:http://HOST:PORT#TOKENIZER_DIR")
        super().__init__(None, None, max_batch=concurrency, spec=f"vllm:{base_url}#{tokenizer_path}")
        self.base_url, self.tokenizer_path, self.timeout = base_url, tokenizer_path, timeout
        self.concurrency = concurrency

    def load(self) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError as e:
            raise DependencyError("transformers (needed by vllm: policies)", "train") from e
        from rlvr.trainer.rollout.chat import ChatFormatter
        from rlvr.trainer.rollout.vllm_backend import VLLMBackend

        tokenizer: Any = AutoTokenizer.from_pretrained(self.tokenizer_path)
        self.formatter = ChatFormatter(tokenizer)
        self.backend_impl = VLLMBackend(self.base_url, tokenizer, max_batch=self.concurrency, timeout=self.timeout)


def from_spec(rest: str, options: PolicyOptions) -> Policy:
    """``vllm:BASE_URL#TOKENIZER_DIR``."""
    if "#" not in rest:
        raise ConfigError("policy", f"vllm:{rest} names no tokenizer", "append #TOKENIZER_DIR (a local tokenizer directory)")
    base_url, tokenizer = rest.rsplit("#", 1)
    return VLLMPolicy(base_url, tokenizer, concurrency=options.concurrency, timeout=options.request_timeout)


from_spec.usage = "vllm:BASE_URL#TOKENIZER_DIR"  # type: ignore[attr-defined]

__all__ = ["VLLMPolicy", "from_spec"]
