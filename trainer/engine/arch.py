"""Which causal LMs the rollout engine runs, and the cache geometry it reads off their config.

The engine drives a model's own decoder layers with its slot cache, so it supports the families
whose attention layers call ``past_key_values.update(k, v, layer_idx)``, take explicit position
ids and accept a ready 4-D attention mask, and whose logits are a plain linear head (no
soft-capping or scaling). A new family that meets this is one line in ``SUPPORTED_MODEL_TYPES``
plus a greedy-equality test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlvr.errors import ConfigError

# model_type -> a note on what was checked (greedy equality with model.generate on CPU).
SUPPORTED_MODEL_TYPES: dict[str, str] = {
    "qwen2": "Qwen2 / Qwen2.5",
    "qwen3": "Qwen3 (per-head q/k norms)",
    "llama": "Llama 2/3",
    "mistral": "Mistral (sliding window must cover max_seq_len)",
}


@dataclass(frozen=True)
class ModelGeometry:
    """Shapes the slot cache needs: layers, KV heads, head size, vocabulary, position limit."""

    num_layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_positions: int | None


def inspect_model(model: Any, max_seq_len: int) -> ModelGeometry:
    """Check that the engine can run ``model`` with ``max_seq_len`` positions; return its geometry."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            "model",
            f"model_type {model_type!r} is not supported by the rollout engine",
            f"use one of {sorted(SUPPORTED_MODEL_TYPES)}, or plain model.generate for other families",
        )
    for name in ("final_logit_softcapping", "logit_scale", "logits_scaling"):
        if getattr(config, name, None) not in (None, 1.0):
            raise ConfigError("model", f"{model_type} config sets {name}, which the engine does not apply",
                              "use plain model.generate for this model")
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions is not None and max_seq_len > max_positions:
        raise ConfigError("max_seq_len", f"{max_seq_len} exceeds the model's max_position_embeddings {max_positions}",
                          f"use max_seq_len <= {max_positions}")
    layer_types = getattr(config, "layer_types", None) or []
    window = getattr(config, "sliding_window", None)
    sliding = "sliding_attention" in layer_types or (model_type == "mistral" and window is not None)
    if sliding and window is not None and window < max_seq_len:
        raise ConfigError("max_seq_len", f"{max_seq_len} exceeds the model's sliding window {window}; the engine "
                          "attends to the whole sequence", f"use max_seq_len <= {window}")
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return ModelGeometry(
        num_layers=config.num_hidden_layers,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=config.vocab_size,
        max_positions=max_positions,
    )


__all__ = ["SUPPORTED_MODEL_TYPES", "ModelGeometry", "inspect_model"]
