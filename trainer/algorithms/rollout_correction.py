"""Trainer/inference mismatch correction: a detached weight ``w = π_old / μ`` multiplied into ℓ.

``π_old`` is the trainer's policy at the sampling weights (``old_logp``; ``logp.detach()`` when
on-policy) and ``μ`` the inference engine that sampled (``rollout_logp``). Both are the same
weights, so ``w`` only measures numerics (docs/algorithms.md §11):

* ``tis``  truncated IS (Yao et al. 2025): ``w <- clip(w, min, max)`` (``min`` None = no floor);
* ``mis``  masked IS / IcePop (arXiv:2510.18855): ``w <- w·1[min <= w <= max]`` (``min`` None = 0).

Level ``token`` uses per-token ratios, ``sequence`` one ratio per completion (the product of its
token ratios, as TRL's ``sequence_*`` modes) applied to all its tokens. Not to be stacked on a
ratio already anchored to the engine (config validation refuses that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlvr.trainer.algorithms.tensor_ops import MAX_LOG_RATIO, masked_sum, where_mask

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig

# (weights, lower bound or None, upper bound) -> (corrected weights, indicator of touched tokens)
CorrectionMode = Callable[[Tensor, "float | None", float], "tuple[Tensor, Tensor]"]


def _truncate(w: Tensor, low: float | None, high: float) -> tuple[Tensor, Tensor]:
    touched = (w > high) | ((w < low) if low is not None else torch.zeros_like(w, dtype=torch.bool))
    return w.clamp(min=low, max=high), touched


def _mask(w: Tensor, low: float | None, high: float) -> tuple[Tensor, Tensor]:
    keep = (w >= (0.0 if low is None else low)) & (w <= high)
    return torch.where(keep, w, torch.zeros_like(w)), ~keep


ROLLOUT_CORRECTIONS: dict[str, CorrectionMode] = {"tis": _truncate, "mis": _mask}
ROLLOUT_CORRECTION_LEVELS = ("token", "sequence")


def rollout_correction_weights(
    cfg: AlgorithmConfig, old_logp: Tensor, rollout_logp: Tensor | None, mask: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Detached weights ``[B, T]`` (all 1 when off or without ``rollout_logp``) and per-token indicators."""
    if cfg.rollout_correction == "none" or rollout_logp is None:
        return torch.ones_like(old_logp), {}
    diff = where_mask(old_logp.detach() - rollout_logp.detach().to(old_logp.dtype), mask)
    if cfg.rollout_correction_level == "sequence":
        diff = masked_sum(diff, mask, dim=-1).unsqueeze(-1).expand_as(diff)
    w = diff.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO).exp()
    corrected, touched = ROLLOUT_CORRECTIONS[cfg.rollout_correction](
        w, cfg.rollout_correction_min, cfg.rollout_correction_max
    )
    return where_mask(corrected, mask, 1.0), {"rollout_is_weight": w, "rollout_is_corrected_frac": touched}
