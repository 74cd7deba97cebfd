"""Generalised advantage estimation (Schulman et al. 2015, arXiv:1506.02438) on token sequences.

``δ_t = r_t + γ·V_{t+1} - V_t``, ``A_t = Σ_l (γλ)^l δ_{t+l}``, ``returns = A + V``. Only the
positions the mask keeps are time steps: a masked position (padding, or a tool-output span in a
multi-turn episode) is skipped, so the successor of a kept token is the next *kept* token and the
value after the last kept token is 0 (the episode ends there). Rewards and values at masked
positions are ignored; advantages and returns there are 0. The result is unwhitened (whitening
is the ``post_norm`` axis) and carries no gradient.

Hand-written rather than taken from TRL: TRL 1.16 has GAE only inside its experimental
PPOTrainer, where it assumes right padding; this form also handles masks with holes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.errors import ConfigError
from rlvr.trainer.algorithms.tensor_ops import as_mask, compute_dtype, where_mask


def _check_unit_interval(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0):
        raise ConfigError(name, f"must be a number in [0, 1], got {value!r}")


def compute_gae(
    token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """GAE advantages and returns, both ``[B, T]``, from token rewards and values ``[B, T]``."""
    _check_unit_interval(gamma, "gamma")
    _check_unit_interval(lam, "lam")
    if token_rewards.dim() != 2:
        raise ValueError(f"token_rewards must have shape [B, T], got {tuple(token_rewards.shape)}")
    if values.shape != token_rewards.shape:
        raise ValueError(f"values has shape {tuple(values.shape)}, expected {tuple(token_rewards.shape)}")
    mask = as_mask(mask, token_rewards.shape)
    dtype = compute_dtype(token_rewards, values)
    r = where_mask(token_rewards.detach().to(dtype), mask)
    v = where_mask(values.detach().to(dtype), mask)
    adv = torch.zeros_like(r)
    running = torch.zeros_like(r[:, 0])
    next_value = torch.zeros_like(r[:, 0])
    for t in reversed(range(r.shape[1])):
        keep = mask[:, t]
        candidate = r[:, t] + gamma * next_value - v[:, t] + gamma * lam * running
        running = torch.where(keep, candidate, running)
        next_value = torch.where(keep, v[:, t], next_value)
        adv[:, t] = torch.where(keep, candidate, torch.zeros_like(candidate))
    return adv, where_mask(adv + v, mask)


def discounted_returns(token_rewards: Tensor, mask: Tensor, gamma: float = 1.0) -> Tensor:
    """Reward-to-go ``Σ_{s>=t} γ^(s-t) r_s`` over kept positions (GAE with V = 0, λ = 1)."""
    return compute_gae(token_rewards, torch.zeros_like(token_rewards), mask, gamma, 1.0)[0]
