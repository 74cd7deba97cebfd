"""One entry point from outcome rewards to the advantages ``policy_loss`` takes, for every config.

``compute_token_advantages(rewards [P, G], mask [B, T], cfg, ...) -> (advantages [B, T], returns)``
chooses by config (``rewards`` may also be ``[P, G, K]`` named components with ``weights [K]``:
GDPO normalises them one by one, every other config sums them first):

* per-completion estimators (everything but PPO and REINFORCE++): KL-in-reward, if configured,
  subtracts ``kl_coef·Σ_t k_t`` from each completion's reward (RLOO's summed k1); then
  ``compute_advantages``; the value is broadcast over the completion's tokens.
* ``token_returns`` (REINFORCE++): reward-to-go of the KL-shaped token rewards, then
  ``post_norm`` over all valid tokens.
* ``baseline="gae"`` (PPO): GAE on the KL-shaped token rewards with the critic's ``values``,
  then ``post_norm`` over all valid tokens; also returns the critic's targets.

Completions with a non-finite reward get zero advantage (and returns equal to their values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlvr.trainer.algorithms.advantages import POST_NORMS, compute_advantages
from rlvr.trainer.algorithms.gae import compute_gae, discounted_returns
from rlvr.trainer.algorithms.kl import kl_penalty, kl_shaped_rewards
from rlvr.trainer.algorithms.multi_reward import component_weights
from rlvr.trainer.algorithms.tensor_ops import as_mask, check_like, compute_dtype, masked_sum, where_mask

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig


def compute_token_advantages(
    rewards: Tensor,
    mask: Tensor,
    cfg: AlgorithmConfig,
    *,
    logp: Tensor | None = None,
    ref_logp: Tensor | None = None,
    values: Tensor | None = None,
    weights: Tensor | Sequence[float] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Advantages ``[B, T]`` (0 at masked positions) and, for GAE, returns ``[B, T]`` (else None).

    ``logp`` are the sampling policy's log-probs and ``ref_logp`` the reference's (both needed
    for KL in the reward; without ``ref_logp`` no KL is applied); ``values`` the critic's values,
    required when ``cfg.needs_value_model``; ``weights`` the ``[K]`` weights of ``[P, G, K]`` rewards.
    """
    if rewards.dim() not in (2, 3):
        raise ValueError(f"rewards must have shape [P, G] or [P, G, K], got {tuple(rewards.shape)}")
    if rewards.dim() == 3 and not cfg.uses_reward_components:
        rewards = summed_components(rewards, weights)
        weights = None
    n_rows = rewards.shape[0] * rewards.shape[1]
    if mask.dim() != 2 or mask.shape[0] != n_rows:
        raise ValueError(f"mask must have shape [B, T] with B = P*G = {n_rows}, got {tuple(mask.shape)}")
    mask = as_mask(mask, mask.shape)
    for name, t in (("logp", logp), ("ref_logp", ref_logp), ("values", values)):
        check_like(t, mask.shape, name)
    dtype = compute_dtype(rewards, logp, ref_logp, values)
    if cfg.uses_reward_components:  # per-component advantages; KL in the reward is ruled out by the config
        adv = compute_advantages(rewards, cfg, weights=weights).reshape(n_rows).to(dtype)
        return where_mask(adv.unsqueeze(-1).expand(mask.shape), mask), None
    flat = rewards.detach().to(dtype).reshape(n_rows)
    valid_rows = torch.isfinite(flat)
    kl_in_reward = cfg.kl_placement == "reward" and cfg.kl_coef > 0 and ref_logp is not None
    if kl_in_reward and logp is None:
        raise ValueError("KL in the reward needs logp (the sampling policy's log-probs) along with ref_logp")

    if not cfg.token_level_advantages:
        if kl_in_reward:
            kl = kl_penalty(logp.detach().to(dtype), ref_logp.to(dtype), cfg.kl_estimator)
            flat = flat - cfg.kl_coef * masked_sum(kl, mask, dim=-1)
        adv = compute_advantages(flat.view_as(rewards), cfg).reshape(n_rows)
        return where_mask(adv.unsqueeze(-1).expand(mask.shape), mask), None

    token_rewards = kl_shaped_rewards(
        flat, mask, logp=logp, ref_logp=ref_logp,
        coef=cfg.kl_coef if kl_in_reward else 0.0, estimator=cfg.kl_estimator,
    )
    keep = mask & valid_rows.unsqueeze(-1)
    returns = None
    if cfg.needs_value_model:
        if values is None:
            raise ValueError(f"baseline={cfg.baseline!r} needs the critic's values [B, T]")
        adv, returns = compute_gae(token_rewards, values, mask, cfg.gamma, cfg.lam)
        returns = torch.where(keep, returns, where_mask(values.detach().to(dtype), mask))
    else:
        adv = discounted_returns(token_rewards, mask, cfg.gamma)
    adv = POST_NORMS[cfg.post_norm](where_mask(adv, keep), keep, cfg.std_eps)
    return where_mask(adv, keep), returns


def summed_components(rewards: Tensor, weights: Tensor | Sequence[float] | None = None) -> Tensor:
    """``[P, G]`` weighted sums of ``[P, G, K]`` reward components; missing (non-finite) components are
    skipped, and a completion with none is NaN (TRL's convention for reward functions returning None)."""
    r = rewards.detach().to(compute_dtype(rewards))
    w = component_weights(weights, r.shape[-1], r)
    present = torch.isfinite(r)
    total = torch.where(present, r * w, torch.zeros_like(r)).sum(-1)
    return torch.where(present.any(-1), total, torch.full_like(total, float("nan")))
