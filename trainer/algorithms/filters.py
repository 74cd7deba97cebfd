"""Rollout filters and reward shaping that act on whole completions (DAPO, ScaleRL).

* ``zero_variance_mask``: groups whose rewards are all equal carry no signal for any centred
  advantage; ``zero_variance="drop"`` (ScaleRL) removes them, ``"refill"`` (DAPO dynamic
  sampling) removes them and samples more prompts.
* ``mask_truncated_completions``: DAPO overlong filtering — truncated completions leave the loss.
* ``overlong_penalty``: DAPO soft overlong punishment, a length reward added to the task reward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.errors import ConfigError
from rlvr.validate import positive_int
from rlvr.trainer.algorithms.tensor_ops import as_mask


def zero_variance_mask(rewards: Tensor) -> Tensor:
    """Bool ``[P]``: True for each group ``[P, G]`` whose valid rewards are all equal (or fewer than 2).

    Non-finite rewards are ignored, as in ``compute_advantages``; keep the groups with
    ``~zero_variance_mask(rewards)``.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must have shape [P, G], got {tuple(rewards.shape)}")
    r = rewards.detach().double()
    valid = torch.isfinite(r)
    hi = torch.where(valid, r, torch.full_like(r, -torch.inf)).amax(-1)
    lo = torch.where(valid, r, torch.full_like(r, torch.inf)).amin(-1)
    return (valid.sum(-1) < 2) | (hi == lo)


def mask_truncated_completions(mask: Tensor, truncated: Tensor) -> Tensor:
    """``mask [B, T]`` with every row whose ``truncated [B]`` flag is set zeroed (DAPO overlong filtering)."""
    if truncated.shape != mask.shape[:1]:
        raise ValueError(f"truncated has shape {tuple(truncated.shape)}, expected {tuple(mask.shape[:1])}")
    keep = ~truncated.bool()
    return as_mask(mask, mask.shape) & keep.unsqueeze(-1)


def overlong_penalty(lengths: Tensor, max_length: int, buffer_length: int, factor: float = 1.0) -> Tensor:
    """DAPO soft overlong punishment per completion (DAPO, arXiv:2503.14476).

    ``0`` for ``L <= max_length - buffer_length``, ``factor·((max_length - buffer_length) - L) /
    buffer_length`` inside the buffer (falling linearly to ``-factor``), ``-factor`` beyond
    ``max_length``. Add it to the task reward.
    """
    positive_int("overlong_max_length", max_length)
    if isinstance(buffer_length, bool) or not isinstance(buffer_length, int) or not 0 < buffer_length <= max_length:
        raise ConfigError(
            "overlong_buffer",
            f"must be an integer in (0, max_length={max_length}], got {buffer_length!r}",
            "make the buffer shorter than the longest completion allowed",
        )
    length = lengths.detach().to(torch.float64)
    start = max_length - buffer_length
    inside = (start - length) / buffer_length * factor
    penalty = torch.where(length <= start, torch.zeros_like(length), inside)
    penalty = torch.where(length > max_length, torch.full_like(length, -factor), penalty)
    return penalty.to(lengths.dtype if lengths.is_floating_point() else torch.float32)
