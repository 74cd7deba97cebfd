"""Load (or build) the policy and tokenizer a run trains."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError
from rlvr.trainer.run.config import ModelConfig

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; an unavailable device is a ConfigError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda was asked for but no GPU is visible", "use --device cpu (or auto)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", "mps was asked for but is not available", "use --device cpu (or auto)")
    return device


def resolve_dtype(cfg: ModelConfig, device: str) -> Any:
    """The torch dtype of the weights."""
    import torch

    if cfg.dtype == "auto":
        if str(device).startswith("cuda") and cfg.name_or_path != "tiny" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, cfg.dtype)


def load_policy(cfg: ModelConfig, seed: int, device: str, path_override: str | Path | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)``: built in code for ``tiny``, else loaded from a local directory / hub id.

    ``path_override`` loads weights saved by an earlier phase of the run (the SFT'd start policy).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = resolve_dtype(cfg, device)
    source = str(path_override) if path_override is not None else cfg.name_or_path
    if source == "tiny":
        from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer

        tokenizer = tiny_tokenizer(cfg.chat_template)
        spec = cfg.tiny
        model = tiny_model(tokenizer, TinyModelConfig(
            hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
            num_key_value_heads=spec.num_key_value_heads, max_position_embeddings=spec.max_position_embeddings,
            seed=seed,
        ))
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        except OSError as e:
            raise ConfigError("model.name_or_path", f"cannot load {source!r}: {e}",
                              "give a local model directory (this machine may be offline), or 'tiny'") from None
        if cfg.chat_template is not None and path_override is None:
            if "{%" in cfg.chat_template or "{{" in cfg.chat_template:
                tokenizer.chat_template = cfg.chat_template
            else:
                from rlvr.trainer.tiny import _bundled_trl_template

                tokenizer.chat_template = _bundled_trl_template(cfg.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # TRL's GRPO trainer requires left padding
    model.to(device=device, dtype=dtype)
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


__all__ = ["load_policy", "resolve_device", "resolve_dtype"]
