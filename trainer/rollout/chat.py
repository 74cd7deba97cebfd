"""Conversations as token ids: the opening prompt, and the environment's turns between model turns.

A multi-turn episode is kept as ONE token sequence: prompt, then model tokens exactly as sampled
(never re-tokenised, so their log-probs stay valid), then the tokens the chat template puts
around the environment's reply (end of the model's turn, the ``user``/``tool`` messages, the
header of the next assistant turn), then model tokens again. The environment's tokens are found
the way TRL finds tool-result tokens (``GRPOTrainer._get_tool_suffix_ids``): render a dummy
conversation with and without the new messages and take the difference after the model's
end-of-turn token. A dummy history (rather than the real one) keeps this correct for templates
that rewrite earlier turns (e.g. Qwen3 dropping old reasoning).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

logger = logging.getLogger(__name__)

Message = dict


class ChatFormatter:
    """Token ids of prompts and environment turns under a tokenizer's chat template."""

    def __init__(self, tokenizer: Any, chat_template: str | None = None) -> None:
        if getattr(tokenizer, "chat_template", None) is None and chat_template is None:
            from rlvr.errors import ConfigError

            raise ConfigError("model.chat_template", "the tokenizer has no chat template",
                              "set model.chat_template to a jinja template (or a TRL bundled name such as 'qwen2_5')")
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.eos_ids = self._eos_ids(tokenizer)
        self._dummy = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
        dummy_ids = self._render(self._dummy, add_generation_prompt=False)
        ends = [i for i, t in enumerate(dummy_ids) if t in self.eos_ids]
        # The token the template closes an assistant turn with (e.g. <|im_end|>), which generation
        # stops on; everything after it up to the next assistant header is environment-written.
        self._turn_end = dummy_ids[ends[-1]] if ends else tokenizer.eos_token_id
        self._dummy_prefix = dummy_ids[: ends[-1] + 1] if ends else dummy_ids

    @staticmethod
    def _eos_ids(tokenizer: Any) -> set[int]:
        ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        for name in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            tid = tokenizer.convert_tokens_to_ids(name) if name in tokenizer.get_vocab() else None
            if isinstance(tid, int) and tid != tokenizer.unk_token_id:
                ids.add(tid)
        return ids

    def _render(self, messages: Sequence[Message], add_generation_prompt: bool) -> list[int]:
        out = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=False,
            chat_template=self.chat_template,
        )
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        return list(out)

    def _render_text(self, messages: Sequence[Message], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=add_generation_prompt, tokenize=False, chat_template=self.chat_template
        )

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """Tokens of the opening messages followed by the assistant header (what the model continues)."""
        return self._render(messages, add_generation_prompt=True)

    def env_turn_ids(self, new_messages: Sequence[Message]) -> list[int]:
        """Tokens after a model turn that ended with its end-of-turn token, up to the next assistant header.

        ``new_messages`` are the environment's messages (``user``/``tool``/``system``) that follow
        the model's turn.
        """
        dummy, prefix = self._dummy, self._dummy_prefix
        full = self._render(dummy + [dict(m) for m in new_messages], add_generation_prompt=True)
        if full[: len(prefix)] == prefix:
            return full[len(prefix):]
        # Tokenisation merged across the boundary: cut the rendered text instead and tokenise the rest.
        prefix_text = self._render_text(dummy, add_generation_prompt=False)
        full_text = self._render_text(dummy + [dict(m) for m in new_messages], add_generation_prompt=True)
        eos_text = self.tokenizer.eos_token or ""
        cut = prefix_text.rfind(eos_text) + len(eos_text) if eos_text and eos_text in prefix_text else len(prefix_text)
        if not full_text.startswith(prefix_text[:cut]):
            from rlvr.errors import ConfigError

            raise ConfigError("model.chat_template", "the chat template is not prefix-preserving (an earlier turn "
                              "renders differently once a later message is added)",
                              "use a template that renders each turn independently of the ones after it")
        return list(self.tokenizer(full_text[cut:], add_special_tokens=False)["input_ids"])

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Token ids that end a model turn (generation stops on them)."""
        return tuple(sorted(self.eos_ids | ({self._turn_end} if self._turn_end is not None else set())))

    @property
    def turn_end_id(self) -> int:
        """The token that closes a model turn (appended, masked, when a turn was cut by length)."""
        return int(self._turn_end)


__all__ = ["ChatFormatter"]
