"""The PPO critic's clipped value loss (the only learned-critic piece of the algorithm layer)."""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.trainer.algorithms.tensor_ops import (
    as_mask,
    check_like,
    compute_dtype,
    denominator,
    masked_mean,
    masked_sum,
    where_mask,
)


def value_loss(
    values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    old_values: Tensor | None = None,
    clip_range: float | None = None,
    normalizer: float | Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Token-mean ``½·max((V - R)², (clip(V, V_old ± ε) - R)²)`` over ``[B, T]``; unclipped without old values.

    ``normalizer`` is the token count of the whole optimiser step (as for ``policy_loss`` with
    token-mean aggregation); by default this call's kept-token count.
    """
    mask = as_mask(mask, values.shape)
    check_like(returns, values.shape, "returns")
    check_like(old_values, values.shape, "old_values")
    dtype = compute_dtype(values, returns)
    v = where_mask(values.to(dtype), mask)
    ret = where_mask(returns.detach().to(dtype), mask)
    loss_tok = (v - ret) ** 2
    clipped_frac = torch.zeros((), dtype=dtype)
    if old_values is not None and clip_range is not None:
        old = where_mask(old_values.detach().to(dtype), mask)
        v_clip = old + (v - old).clamp(-clip_range, clip_range)
        loss_clip = (v_clip - ret) ** 2
        clipped_frac = masked_mean((loss_clip > loss_tok).to(dtype), mask)
        loss_tok = torch.maximum(loss_tok, loss_clip)
    loss = 0.5 * masked_sum(loss_tok, mask) / denominator(normalizer, mask.sum(), dtype)
    with torch.no_grad():
        metrics = {
            "value_loss": float(loss),
            "value_clip_frac": float(clipped_frac),
            "value_mean": float(masked_mean(v.detach(), mask)),
            "return_mean": float(masked_mean(ret, mask)),
        }
    return loss, metrics
