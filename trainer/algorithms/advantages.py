"""Outcome-reward advantage estimators: baseline, then scale, then post-normalisation.

``compute_advantages(rewards [P, G], cfg) -> [P, G]`` covers every sequence-level estimator of
docs/algorithms.md §4 as the product of three registries (a new estimator is one function and
one registration line):

* ``BASELINES``   what is subtracted: ``none`` (plain REINFORCE), ``batch_mean``, ``group_mean``
  (GRPO / Dr. GRPO / DAPO ...), ``loo`` (RLOO's leave-one-out mean).
* ``SCALES``      what the centred reward is divided by: ``none``, ``group_std`` (GRPO; unbiased
  ``torch.std`` of the group + eps), ``batch_std`` (Lite-PPO / ScaleRL; unbiased std of *all*
  rewards in the batch + eps), ``group_mean`` (MaxRL; 0 where the group mean is not positive).
* ``POST_NORMS``  applied last over the whole batch: ``none``, ``batch_whiten`` (REINFORCE++, GDPO).

Rewards with named components (``[P, G, K]``) are combined per ``MULTI_REWARDS`` (sum first, or
GDPO's normalise-each-then-sum; ``rlvr.trainer.algorithms.multi_reward``).

Non-finite rewards (NaN / ±inf: an unscorable completion) are excluded from every statistic and
get advantage exactly 0; a group with fewer than two valid rewards has std 0 and, for the
leave-one-out baseline, no baseline at all, so its advantages are 0 (never NaN). All-equal
rewards give zero advantages for every centred estimator. The result is computed in at least
float32 (float64 stays float64) and carries no gradient.

GAE (``baseline="gae"``) needs a value model and token rewards: see ``compute_gae`` and
``compute_token_advantages``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlvr.registry import Registry
from rlvr.trainer.algorithms.multi_reward import MULTI_REWARDS, component_weights
from rlvr.trainer.algorithms.tensor_ops import compute_dtype, masked_mean, masked_std, whiten

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig

# (rewards with invalid entries zeroed [P, G], valid [P, G]) -> baseline [P, G]
Baseline = Callable[[Tensor, Tensor], Tensor]
# (centred advantages [P, G], rewards zeroed [P, G], valid [P, G], eps) -> scaled [P, G]
Scale = Callable[[Tensor, Tensor, Tensor, float], Tensor]
# (advantages [P, G] or [B, T], valid mask, eps) -> normalised
PostNorm = Callable[[Tensor, Tensor, float], Tensor]

BASELINES: Registry[Baseline] = Registry("advantage baseline", field="baseline")
SCALES: Registry[Scale] = Registry("advantage scale", field="scale")
POST_NORMS: Registry[PostNorm] = Registry("advantage post-normalisation", field="post_norm")


def register_baseline(name: str) -> Callable[[Baseline], Baseline]:
    """Decorator: make ``fn(rewards [P, G], valid [P, G]) -> baseline`` selectable as ``baseline=name``."""
    return BASELINES.register(name)


def register_scale(name: str) -> Callable[[Scale], Scale]:
    """Decorator: make ``fn(centred, rewards, valid, eps) -> scaled`` selectable as ``scale=name``."""
    return SCALES.register(name)


def register_post_norm(name: str) -> Callable[[PostNorm], PostNorm]:
    """Decorator: make ``fn(advantages, valid, eps) -> normalised`` selectable as ``post_norm=name``."""
    return POST_NORMS.register(name)


def _group_mean(r: Tensor, valid: Tensor) -> Tensor:
    return masked_mean(r, valid, dim=-1).unsqueeze(-1)


@register_baseline("none")
def _no_baseline(r: Tensor, valid: Tensor) -> Tensor:
    return torch.zeros_like(r)


@register_baseline("batch_mean")
def _batch_mean_baseline(r: Tensor, valid: Tensor) -> Tensor:
    return masked_mean(r, valid).expand_as(r)


@register_baseline("group_mean")
def _group_mean_baseline(r: Tensor, valid: Tensor) -> Tensor:
    return _group_mean(r, valid).expand_as(r)


@register_baseline("loo")
def _leave_one_out_baseline(r: Tensor, valid: Tensor) -> Tensor:
    # mean of the *other* valid rewards of the group; with no other valid reward the baseline is
    # the reward itself, i.e. advantage 0 (the same as r - mean_g for a one-sample group).
    n = valid.sum(-1, keepdim=True).to(r.dtype)
    total = torch.where(valid, r, torch.zeros_like(r)).sum(-1, keepdim=True)
    loo = (total - r) / (n - 1).clamp(min=1)
    return torch.where(n >= 2, loo, r)


@register_scale("none")
def _no_scale(a: Tensor, r: Tensor, valid: Tensor, eps: float) -> Tensor:
    return a


@register_scale("group_std")
def _group_std_scale(a: Tensor, r: Tensor, valid: Tensor, eps: float) -> Tensor:
    return a / (masked_std(r, valid, dim=-1).unsqueeze(-1) + eps)


@register_scale("batch_std")
def _batch_std_scale(a: Tensor, r: Tensor, valid: Tensor, eps: float) -> Tensor:
    return a / (masked_std(r, valid) + eps)


@register_scale("group_mean")
def _group_mean_scale(a: Tensor, r: Tensor, valid: Tensor, eps: float) -> Tensor:
    # MaxRL: (r - p̂) / p̂, and 0 when p̂ = 0 (no success: no signal). Rewards are assumed
    # non-negative; a group whose mean is negative would flip the gradient, so it also gets 0.
    mean = _group_mean(r, valid)
    safe = torch.where(mean > 0, mean, torch.ones_like(mean))
    return torch.where(mean > 0, a / safe, torch.zeros_like(a))


@register_post_norm("none")
def _no_post(a: Tensor, valid: Tensor, eps: float) -> Tensor:
    return a


@register_post_norm("batch_whiten")
def _batch_whiten(a: Tensor, valid: Tensor, eps: float) -> Tensor:
    return whiten(a, valid, eps)


def compute_advantages(
    rewards: Tensor,
    cfg: AlgorithmConfig,
    *,
    weights: Tensor | Sequence[float] | None = None,
) -> Tensor:
    """Per-completion advantages ``[P, G]`` from outcome rewards (P prompts, G samples each).

    ``rewards`` is ``[P, G]``, or ``[P, G, K]`` for K named reward components with ``weights``
    ``[K]`` (ones when None); ``cfg.multi_reward`` says whether components are summed before the
    baseline and scale or normalised one by one (GDPO), see ``rlvr.trainer.algorithms.multi_reward``.
    """
    if rewards.dim() not in (2, 3):
        raise ValueError(
            f"rewards must have shape [P, G] (prompts x group size) or [P, G, K] (K reward components), "
            f"got {tuple(rewards.shape)}; reshape a flat [B] tensor with rewards.view(-1, group_size)"
        )
    if cfg.baseline not in BASELINES:
        raise ValueError(
            f"baseline={cfg.baseline!r} is not an outcome-reward baseline; "
            "use compute_token_advantages (GAE needs values and token rewards)"
        )
    r = rewards.detach().to(compute_dtype(rewards))
    if r.dim() == 2:
        r = r.unsqueeze(-1)
    w = component_weights(weights, r.shape[-1], r)
    present = torch.isfinite(r)
    r = torch.where(present, r, torch.zeros_like(r))

    def normalize(x: Tensor, valid: Tensor) -> Tensor:
        a = x - BASELINES[cfg.baseline](x, valid)
        a = SCALES[cfg.scale](a, x, valid, cfg.std_eps)
        return torch.where(valid, a, torch.zeros_like(a))

    a, valid = MULTI_REWARDS[cfg.multi_reward](r, present, w, normalize)
    a = torch.where(valid, a, torch.zeros_like(a))
    a = POST_NORMS[cfg.post_norm](a, valid, cfg.std_eps)
    return torch.where(valid, a, torch.zeros_like(a))
