"""How several named reward components become one advantage (the ``multi_reward`` axis).

An environment's reward is a weighted sum of named components (``correct``, ``format``, ...);
TRL's reward functions are the same thing. ``compute_advantages`` accepts the components as
``rewards [P, G, K]`` with weights ``[K]`` and asks the registered rule how to combine them:

* ``sum_then_normalize`` (every preset but GDPO): ``r = Σ_k w_k·r_k`` first, then the configured
  baseline and scale on ``r``. Distinct combinations with the same sum (correct but badly
  formatted vs formatted but wrong) get the same advantage.
* ``normalize_then_sum`` (GDPO, arXiv:2601.05242): each component goes through the baseline and
  scale *within its own group* first, then ``A = Σ_k w_k·A_k``; ``post_norm`` (GDPO: batch
  whitening) then keeps the range independent of the number of components.

A component value that is not finite (a reward function that returned None, NaN or ±inf) is
missing: it is left out of its component's statistics and of the sum, and a completion with no
finite component at all is unscorable (advantage 0). ``[P, G]`` rewards are one component.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rlvr.registry import Registry

# (one reward per completion [P, G], zeroed where missing; present [P, G]) -> centred and scaled [P, G]
Normalize = Callable[[Tensor, Tensor], Tensor]
# (rewards zeroed [P, G, K], present [P, G, K], weights [K], normalize) -> (advantages [P, G], valid [P, G])
Combine = Callable[[Tensor, Tensor, Tensor, Normalize], "tuple[Tensor, Tensor]"]

MULTI_REWARDS: Registry[Combine] = Registry("multi-reward rule", field="multi_reward")


def register_multi_reward(name: str) -> Callable[[Combine], Combine]:
    """Decorator: make ``fn(rewards, present, weights, normalize)`` selectable as ``multi_reward=name``."""
    return MULTI_REWARDS.register(name)


@register_multi_reward("sum_then_normalize")
def _sum_then_normalize(r: Tensor, present: Tensor, weights: Tensor, normalize: Normalize) -> tuple[Tensor, Tensor]:
    valid = present.any(-1)
    total = (r * weights).sum(-1)  # missing entries are already 0
    return normalize(total, valid), valid


@register_multi_reward("normalize_then_sum")
def _normalize_then_sum(r: Tensor, present: Tensor, weights: Tensor, normalize: Normalize) -> tuple[Tensor, Tensor]:
    valid = present.any(-1)
    adv = torch.zeros(r.shape[:-1], dtype=r.dtype, device=r.device)
    for k in range(r.shape[-1]):
        a_k = normalize(r[..., k], present[..., k])
        adv = adv + weights[k] * torch.where(present[..., k], a_k, torch.zeros_like(a_k))
    return adv, valid


def component_weights(weights: Tensor | list[float] | tuple[float, ...] | None, k: int, like: Tensor) -> Tensor:
    """The ``[K]`` weight vector (ones when None), checked to be finite and of length ``k``."""
    if weights is None:
        return torch.ones(k, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(weights, dtype=like.dtype, device=like.device).detach().reshape(-1)
    if w.numel() != k:
        raise ValueError(f"weights has {w.numel()} entries but rewards have {k} components (last dimension)")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"weights must be finite, got {w.tolist()}")
    return w
