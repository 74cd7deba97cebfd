"""A pre-allocated KV cache with one row ("slot") per running request, and its decode attention.

transformers' own ``StaticCache`` writes every row at one shared position, so rows that started
at different times (continuous refill) cannot share it; this cache writes each slot at its own
position. It implements only what a transformers decoder layer calls on a cache during a decode
step (``update``), which is the same in transformers 5.17 and 5.23.

The decode attention (registered with transformers' ``AttentionInterface`` and switched on only
for the engine's own forward calls) runs one query token per slot against the whole slot with a
per-slot length mask, grouping query heads by their KV head instead of repeating K/V
(``repeat_kv`` would copy the cache ``heads / kv_heads`` times per step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

ENGINE_ATTENTION = "rlvr_slot_decode"


class SlotKVCache:
    """Keys/values for ``slots`` rows of ``capacity`` positions each, written at ``write_pos``.

    ``keys[layer]``/``values[layer]`` are ``[slots, kv_heads, capacity, head_dim]``. During a decode
    step every slot's new key/value goes to column ``write_pos[slot]`` (a tensor the engine updates
    in place, so a captured CUDA graph keeps reading the live positions).
    """

    def __init__(
        self,
        num_layers: int,
        slots: int,
        kv_heads: int,
        capacity: int,
        head_dim: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
        write_pos: torch.Tensor,
    ) -> None:
        shape = (slots, kv_heads, capacity, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.rows = torch.arange(slots, device=device)
        self.write_pos = write_pos
        self.capacity = capacity

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one new token per slot (``[slots, kv_heads, 1, head_dim]``); return the full cache."""
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        keys[self.rows, :, self.write_pos] = key_states[:, :, 0].to(keys.dtype)
        values[self.rows, :, self.write_pos] = value_states[:, :, 0].to(values.dtype)
        return keys, values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Unused by the engine (it always passes position ids); present for API compatibility."""
        return 0

    def load_prefill(self, layer_idx: int, slots: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Copy a prefill's keys/values ``[len(slots), kv_heads, T, head_dim]`` into columns ``[0, T)``."""
        length = keys.size(2)
        self.keys[layer_idx][slots, :, :length] = keys.to(self.keys[layer_idx].dtype)
        self.values[layer_idx][slots, :, :length] = values.to(self.values[layer_idx].dtype)

    def nbytes(self) -> int:
        """Bytes held by the cache tensors."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


def slot_decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """One query token per slot against the slot's cache; ``attention_mask`` is ``[B, 1, 1, L]`` bool.

    Query heads are grouped by KV head (``[B, kv_heads, heads/kv_heads, d]``) so K/V are read once.
    Returns ``([B, 1, heads, d], None)`` like transformers' attention functions.
    """
    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    grouped = query.reshape(batch, kv_heads, (heads // kv_heads) * q_len, dim)
    out = F.scaled_dot_product_attention(grouped, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(batch, heads, q_len, dim).transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ENGINE_ATTENTION, slot_decode_attention)


_register()


def attention_configs(model: torch.nn.Module) -> list[Any]:
    """Every distinct config object the model's modules read ``_attn_implementation`` from."""
    configs: dict[int, Any] = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            configs[id(config)] = config
    return list(configs.values())


@contextmanager
def engine_attention(configs: list[Any]) -> Iterator[None]:
    """Route attention layers to ``slot_decode_attention`` for the duration of the block.

    Attention layers look their implementation up in ``config._attn_implementation`` at call time,
    so this switches the given configs (from ``attention_configs``) and restores them afterwards,
    also on error; training forwards outside the block are unaffected.
    """
    saved = [cfg._attn_implementation for cfg in configs]
    try:
        for cfg in configs:
            cfg._attn_implementation = ENGINE_ATTENTION
        yield
    finally:
        for cfg, value in zip(configs, saved):
            cfg._attn_implementation = value


__all__ = ["SlotKVCache", "slot_decode_attention", "attention_configs", "engine_attention", "ENGINE_ATTENTION"]
