"""KL regularisation to a reference policy: the k1/k2/k3 estimators and KL-in-reward shaping.

With ``u = log π_θ(y_t) - log π_ref(y_t)`` on the sampled token (Schulman 2020,
docs/algorithms.md §8):

* ``k1 = u``                 unbiased for the KL value, can be negative;
* ``k2 = u² / 2``            biased, >= 0; its gradient is the reverse-KL gradient on-policy;
* ``k3 = e^{-u} - 1 + u``    unbiased, >= 0, low variance (GRPO's "k3 in the loss").

Placement is a config axis (``kl_placement``): ``"loss"`` adds ``β·k`` to every token's loss
inside ``policy_loss``; ``"reward"`` subtracts ``β·k`` (detached) from the rewards before the
advantage estimator runs, via ``kl_shaped_rewards`` (PPO/InstructGPT, REINFORCE++, RLOO).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rlvr.registry import Registry
from rlvr.trainer.algorithms.tensor_ops import MAX_LOG_RATIO, as_mask, compute_dtype, last_token_index

KL_ESTIMATORS: Registry[Callable[[Tensor], Tensor]] = Registry("KL estimator", field="kl_estimator")
KL_ESTIMATORS.register("k1", lambda u: u)
KL_ESTIMATORS.register("k2", lambda u: 0.5 * u * u)
KL_ESTIMATORS.register("k3", lambda u: torch.expm1(-u) + u)


def kl_penalty(logp: Tensor, ref_logp: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token KL estimate ``[B, T]`` of π_θ from π_ref (differentiable through ``logp``)."""
    if logp.shape != ref_logp.shape:
        raise ValueError(f"ref_logp has shape {tuple(ref_logp.shape)}, expected {tuple(logp.shape)}")
    # clamp like the importance ratio: k3 = e^{-u} overflows float32 long before u = -100
    u = (logp - ref_logp.detach()).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return KL_ESTIMATORS[estimator](u)


def kl_shaped_rewards(
    rewards: Tensor,
    mask: Tensor,
    *,
    logp: Tensor | None = None,
    ref_logp: Tensor | None = None,
    coef: float = 0.0,
    estimator: str = "k1",
) -> Tensor:
    """Token rewards ``[B, T]``: ``-coef·k_t`` on every completion token, plus the outcome reward on the last.

    This is KL-in-reward (PPO / InstructGPT / REINFORCE++): ``logp`` are the sampling policy's
    log-probs (detached), ``ref_logp`` the reference's. With ``coef == 0`` or no reference only
    the outcome reward is placed. Non-finite rewards are placed as 0 (the caller gives such rows
    zero advantage); rows with an empty mask get no reward at all.
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must have shape [B], got {tuple(rewards.shape)}")
    if mask.dim() != 2 or mask.shape[0] != rewards.shape[0]:
        raise ValueError(f"mask must have shape [B, T] with B={rewards.shape[0]}, got {tuple(mask.shape)}")
    mask = as_mask(mask, mask.shape)
    dtype = compute_dtype(rewards, logp, ref_logp)
    r = rewards.detach().to(dtype)
    r = torch.where(torch.isfinite(r), r, torch.zeros_like(r))
    out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    if coef > 0 and ref_logp is not None:
        if logp is None:
            raise ValueError("kl_shaped_rewards needs logp (the sampling policy's log-probs) with ref_logp")
        kl = kl_penalty(logp.detach().to(dtype), ref_logp.to(dtype), estimator)
        out = torch.where(mask, -coef * kl, out)
    last, has_any = last_token_index(mask)
    bonus = torch.where(has_any, r, torch.zeros_like(r))
    return out.scatter_add(1, last.unsqueeze(1), bonus.unsqueeze(1))
