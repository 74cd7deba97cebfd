"""What a rollout request asks for (``SamplingParams``) and what it gets back (``Completion``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rlvr.errors import ConfigError

FinishReason = Literal["stop", "length"]
LogprobMode = Literal["raw", "processed"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion; validated at construction so bad values fail before any work.

    Fields:
        max_new_tokens: most tokens to generate (the engine's ``max_seq_len`` may cut it shorter,
            with ``finish_reason="length"``).
        temperature: 0 means greedy (argmax, exactly the tokens of ``model.generate`` without
            sampling); otherwise logits are divided by it before sampling.
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

    def __post_init__(self) -> None:
        # Accept lists (YAML, JSON) and store tuples so params stay hashable and immutable.
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        if int(self.max_new_tokens) != self.max_new_tokens or self.max_new_tokens < 1:
            raise ConfigError("max_new_tokens", f"must be an integer >= 1, got {self.max_new_tokens!r}")
        if not self.temperature >= 0:
            raise ConfigError("temperature", f"must be >= 0, got {self.temperature!r}", "use 0 for greedy decoding")
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


@dataclass(frozen=True)
class Completion:
    """One finished request: the sampled tokens, their text and log-probs, and why it stopped.

    Fields:
        index: position of the request in the list given to ``generate`` (or the id returned by
            ``RolloutEngine.submit``).
        prompt_ids: the prompt's token ids, as given.
        token_ids: the generated token ids; a stop token id or the token completing a stop string
            is included as the last one.
        text: ``token_ids`` decoded with the engine's tokenizer ("" without a tokenizer).
        logprobs: log-probability of each generated token under the distribution named by
            ``SamplingParams.logprob_mode``; same length as ``token_ids``.
        finish_reason: ``"stop"`` (a stop token id or stop string) or ``"length"`` (max_new_tokens
            or the engine's max_seq_len reached).
        stop_reason: the stop token id or stop string that ended it, else None.
    """

    index: int
    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    logprobs: list[float]
    finish_reason: FinishReason
    stop_reason: int | str | None = None
    params: SamplingParams | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return (f"Completion(index={self.index}, prompt={len(self.prompt_ids)} tokens, "
                f"tokens={len(self.token_ids)}, finish_reason={self.finish_reason!r}, text={text!r})")


__all__ = ["SamplingParams", "Completion", "FinishReason", "LogprobMode"]
