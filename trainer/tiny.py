"""A tiny Qwen2 policy and a byte-level tokenizer built entirely in code, for offline runs.

The demo, the tests and CPU smoke runs need a real causal LM and a real tokenizer without any
download. ``tiny_tokenizer()`` builds a byte-level BPE tokenizer with no merges (every UTF-8
byte is one token, so any text round-trips) plus ChatML special tokens and a ChatML chat
template; ``tiny_model()`` builds a randomly initialised ``Qwen2ForCausalLM`` sized for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from rlvr.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

PAD_TOKEN = "<|endoftext|>"
BOS_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)

# Minimal ChatML: prefix-preserving (each turn renders the same whatever follows it), no default
# system prompt (keeps prompts short on CPU). Pass chat_template="qwen2_5" for TRL's bundled
# Qwen2.5 template when tool calling is needed (TRL recognises it and sets a response parser).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    """Shape of the tiny Qwen2 policy; the defaults train a step in well under a second on a CPU."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "max_position_embeddings"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError("hidden_size", f"{self.hidden_size} is not divisible by num_attention_heads "
                              f"{self.num_attention_heads}", "pick a multiple of the head count")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("num_key_value_heads", f"{self.num_key_value_heads} does not divide "
                              f"num_attention_heads {self.num_attention_heads}")


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable-character table, the alphabet of the ByteLevel pre-tokenizer."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def trl_chat_template(name: str) -> str:
    """The text of one of TRL's bundled chat templates (``trl/chat_templates/<name>.jinja``)."""
    path = resources.files("trl").joinpath("chat_templates", f"{name}.jinja")
    if not path.is_file():
        raise ConfigError("chat_template", f"TRL ships no template named {name!r}",
                          "pass a jinja string, or a name from trl/chat_templates such as 'qwen2_5'")
    return path.read_text()


def tiny_tokenizer(chat_template: str | None = None) -> PreTrainedTokenizerFast:
    """Build a byte-level tokenizer (256 byte tokens + ChatML specials) with a chat template, offline.

    ``chat_template`` is a jinja string, the name of a TRL bundled template (e.g. ``"qwen2_5"``),
    or None for minimal ChatML. Padding is on the left, as TRL's GRPO trainer requires.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # A BPE model with the byte alphabet and no merges is exactly "one token per byte"; the
    # ByteLevel pre-tokenizer/decoder map bytes <-> printable stand-ins, so nothing is ever <unk>.
    byte_chars = _byte_to_unicode()
    assert set(byte_chars.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: b for b, ch in byte_chars.items()}  # token id == byte value, readable in dumps
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))

    if chat_template is None:
        template = CHATML_TEMPLATE
    elif "{%" in chat_template or "{{" in chat_template:
        template = chat_template
    else:
        template = trl_chat_template(chat_template)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        padding_side="left",
        truncation_side="left",
        model_max_length=1 << 30,
    )
    tokenizer.chat_template = template
    return tokenizer


_bundled_trl_template = trl_chat_template  # earlier private name, still imported by rlvr.trainer.run.policy


def tiny_model(
    tokenizer: PreTrainedTokenizerFast | None = None, config: TinyModelConfig | None = None
) -> PreTrainedModel:
    """Build a randomly initialised ``Qwen2ForCausalLM`` whose vocabulary matches ``tokenizer``.

    Deterministic for a given ``config.seed``. Embeddings are untied by default so TRL's FP32
    LM-head option (``cast_lm_head_to_fp32``) applies cleanly.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = tokenizer if tokenizer is not None else tiny_tokenizer()
    config = config if config is not None else TinyModelConfig()
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=config.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    saved_rng = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    try:
        model = Qwen2ForCausalLM(model_config)
    finally:
        torch.random.set_rng_state(saved_rng)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    logger.debug("built tiny Qwen2 with %d parameters", sum(p.numel() for p in model.parameters()))
    return model


__all__ = ["TinyModelConfig", "tiny_model", "tiny_tokenizer", "trl_chat_template", "CHATML_TEMPLATE"]
