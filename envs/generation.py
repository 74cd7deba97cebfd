"""What every text generator in rlvr speaks: ``SamplingParams`` in, ``Completion`` out.

One pair of types for everything that writes a model's text: the evaluation policies
(``python:``, ``openai:``, ``hf:``) and the trainer's generation backends (rollout engine,
``model.generate``, a vLLM server). A field a generator cannot honour is left at its default
(a chat server has no token ids; a Python function has no log-probs), so a ``Completion`` says
what is known rather than making numbers up. Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, Mapping

from rlvr.errors import ConfigError

Message = Mapping[str, str]
FinishReason = Literal["stop", "length"]
LogprobMode = Literal["raw", "processed"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion; validated at construction so bad values fail before any work.

    Fields:
        max_new_tokens: most tokens to generate (a backend's context may cut it shorter, with
            ``finish_reason="length"``). Sent to OpenAI-compatible servers as ``max_tokens``.
        temperature: 0 means greedy (argmax); otherwise logits are divided by it before sampling.
        top_p: nucleus sampling; keep the smallest set of tokens whose probability (after top-k)
            reaches ``top_p``. 1.0 turns it off.
        top_k: keep the ``top_k`` most likely tokens; 0 turns it off.
        stop: strings that end the completion; the completion keeps the token that completes the
            string (the text contains it), everything after is dropped.
        stop_token_ids: token ids that end the completion (kept as its last token).
        ignore_eos: do not add the model's EOS token(s) to ``stop_token_ids``.
        logprob_mode: which distribution ``Completion.logprobs`` are taken under. ``"raw"``
            (default): ``log_softmax(logits / temperature)`` before top-k/top-p, i.e. what a trainer
            recomputes from the same weights at the same temperature (temperature 1 for greedy).
            ``"processed"``: the renormalised distribution actually sampled from, after top-k/top-p.
        skip_special_tokens: drop special tokens from ``Completion.text`` (token ids keep them).
        seed: a per-call sampling seed for generators that accept one (OpenAI-compatible servers);
            batched local generators sample from their own seeded generator instead.
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    logprob_mode: LogprobMode = "raw"
    skip_special_tokens: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        # Accept lists (YAML, JSON) and store tuples so params stay hashable and immutable.
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        if isinstance(self.max_new_tokens, bool) or int(self.max_new_tokens) != self.max_new_tokens or self.max_new_tokens < 1:
            raise ConfigError("max_new_tokens", f"must be an integer >= 1, got {self.max_new_tokens!r}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ConfigError("temperature", f"must be a finite number >= 0, got {self.temperature!r}", "use 0 for greedy decoding")
        if not 0 < self.top_p <= 1:
            raise ConfigError("top_p", f"must be in (0, 1], got {self.top_p!r}", "use 1.0 to turn nucleus sampling off")
        if int(self.top_k) != self.top_k or self.top_k < 0:
            raise ConfigError("top_k", f"must be an integer >= 0, got {self.top_k!r}", "use 0 to turn top-k off")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ConfigError("stop", f"every stop string must be a non-empty string, got {self.stop!r}")
        if any(t < 0 for t in self.stop_token_ids):
            raise ConfigError("stop_token_ids", f"token ids must be >= 0, got {self.stop_token_ids!r}")
        if self.logprob_mode not in ("raw", "processed"):
            raise ConfigError("logprob_mode", f"must be 'raw' or 'processed', got {self.logprob_mode!r}")

    @property
    def greedy(self) -> bool:
        """True when decoding is argmax (temperature 0)."""
        return self.temperature == 0

    @property
    def filtered(self) -> bool:
        """True when top-k or top-p truncates the distribution (needs the sorting sampler)."""
        return not self.greedy and (self.top_k > 0 or self.top_p < 1.0)

    def with_seed(self, seed: int | None) -> "SamplingParams":
        """The same parameters with another sampling seed (one per episode turn)."""
        return replace(self, seed=seed)


@dataclass(frozen=True)
class Completion:
    """One generated assistant turn: its text, what is known of its tokens, and why it stopped.

    Fields:
        text: the generated text (for token-level generators, ``token_ids`` decoded).
        token_ids: the generated token ids, a stop token id (or the token completing a stop
            string) included as the last one; empty when the generator does not expose tokens.
        logprobs: the sampler's log-probability of each token of ``token_ids`` under
            ``SamplingParams.logprob_mode``; None when the generator does not report them.
        finish_reason: ``"stop"`` (a stop token or string) or ``"length"`` (the token budget or the
            context ran out); None when unknown.
        policy_version: the version of the weights that sampled it (the trainer's optimiser step),
            when the generator knows it.
        prompt_ids: the prompt's token ids, when the generator worked on token ids.
        prompt_tokens / completion_tokens: what the call cost; default to the lengths of
            ``prompt_ids`` / ``token_ids``.
        estimated: True when the token counts are a text-length estimate rather than counts from
            a tokenizer or a server's ``usage`` field.
        index: the request's position in a batch (or its id from ``RolloutEngine.submit``).
        stop_reason: the stop token id or stop string that ended it, else None.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    finish_reason: str | None = None
    policy_version: int | None = None
    prompt_ids: list[int] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    estimated: bool = False
    index: int = 0
    stop_reason: int | str | None = None
    params: SamplingParams | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.prompt_tokens is None:
            object.__setattr__(self, "prompt_tokens", len(self.prompt_ids))
        if self.completion_tokens is None:
            object.__setattr__(self, "completion_tokens", len(self.token_ids))

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return (f"Completion(index={self.index}, prompt={self.prompt_tokens} tokens, "
                f"tokens={self.completion_tokens}, finish_reason={self.finish_reason!r}, text={text!r})")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token count: the larger of the word count and characters / 4.

    Used only when neither a tokenizer nor the server reports usage; reports mark such counts
    as estimated. Four characters per token is the usual rule of thumb for English BPE vocabularies;
    the word count keeps short, space-separated answers from being undercounted.
    """
    return max(len(text.split()), math.ceil(len(text) / 4))


def estimate_prompt_tokens(messages: "list[Message] | tuple[Message, ...]") -> int:
    """:func:`estimate_tokens` over every message's content."""
    return sum(estimate_tokens(str(m.get("content") or "")) for m in messages)


__all__ = ["SamplingParams", "Completion", "Message", "FinishReason", "LogprobMode", "estimate_tokens",
           "estimate_prompt_tokens"]
