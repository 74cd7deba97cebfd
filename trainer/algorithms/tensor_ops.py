"""Masked tensor helpers shared by the algorithm modules (dtype promotion, safe masking, stats).

Every statistic here ignores masked-out entries *by selection* (``torch.where``), never by
multiplying with the mask, so a NaN or inf sitting in a padded position can never leak into a
loss or a gradient (``nan * 0`` is ``nan``).
"""

from __future__ import annotations

import torch
from torch import Tensor

# Log-ratios are clamped to this range before ``exp`` (the same bound verl uses): beyond it the
# ratio is meaningless and ``exp`` would overflow in float32/bfloat16.
MAX_LOG_RATIO = 20.0


def compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    """The floating dtype to compute in: the widest input dtype, but never below float32."""
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def as_mask(mask: Tensor, shape: torch.Size | tuple[int, ...], name: str = "mask") -> Tensor:
    """A boolean copy of ``mask`` (nonzero = counts), checked to have ``shape``."""
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected {tuple(shape)}")
    return mask if mask.dtype == torch.bool else mask != 0


def check_like(t: Tensor | None, shape: torch.Size | tuple[int, ...], name: str) -> None:
    """Raise a ValueError naming ``name`` if ``t`` is given and its shape is not ``shape``."""
    if t is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")


def where_mask(x: Tensor, mask: Tensor, fill: float = 0.0) -> Tensor:
    """``x`` where ``mask`` is true, ``fill`` elsewhere (gradient flows only to kept entries)."""
    return torch.where(mask, x, torch.full_like(x, fill))


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of the kept entries (over ``dim``, or all of them)."""
    kept = where_mask(x, mask)
    return kept.sum() if dim is None else kept.sum(dim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of the kept entries; 0 where nothing is kept."""
    count = mask.sum() if dim is None else mask.sum(dim)
    return masked_sum(x, mask, dim) / count.clamp(min=1).to(x.dtype)


def masked_std(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Unbiased standard deviation (``torch.std``'s n-1 form) of the kept entries; 0 if fewer than 2."""
    count = (mask.sum() if dim is None else mask.sum(dim)).to(x.dtype)
    mean = masked_mean(x, mask, dim)
    centred = x - (mean if dim is None else mean.unsqueeze(dim))
    sq = masked_sum(centred * centred, mask, dim)
    var = sq / (count - 1).clamp(min=1)
    return torch.where(count >= 2, var.sqrt(), torch.zeros_like(var))


def whiten(x: Tensor, mask: Tensor, eps: float) -> Tensor:
    """``(x - mean) / (std + eps)`` over the kept entries of the whole tensor; 0 elsewhere."""
    mean = masked_mean(x, mask)
    std = masked_std(x, mask)
    return where_mask((x - mean) / (std + eps), mask)


def last_token_index(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per row: the index of the last kept position, and whether the row keeps anything."""
    positions = torch.arange(1, mask.shape[-1] + 1, device=mask.device)
    score = torch.where(mask, positions, torch.zeros_like(positions))
    return score.argmax(dim=-1), mask.any(dim=-1)


def denominator(normalizer: float | Tensor | None, local_count: Tensor, dtype: torch.dtype) -> Tensor:
    """The loss denominator: the caller's global ``normalizer`` or this call's count, at least 1.

    A global count of 0 (nothing to learn anywhere in the step) is treated as 1: every summand is
    0 then, so the loss is 0 rather than NaN.
    """
    if normalizer is None:
        return local_count.to(dtype).clamp(min=1)
    value = torch.as_tensor(normalizer, dtype=dtype, device=local_count.device).detach()
    if value.numel() != 1 or not bool(torch.isfinite(value)) or float(value) < 0:
        raise ValueError(f"normalizer must be a finite non-negative count, got {normalizer!r}")
    return value.reshape(()).clamp(min=1)
