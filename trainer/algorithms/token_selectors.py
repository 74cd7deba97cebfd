"""Token selectors: which tokens of the trust region's per-token loss keep their gradient.

A selector runs after the trust region and before the rollout-correction weight and the KL term.
It sees the per-token loss ``ℓ [B, T]`` and changes it on a chosen subset of tokens; the loss
denominator (aggregation) is unchanged, as in the papers. Statistics are taken over the loss
tokens of the call (verl and TRL compute them per micro-batch too).

============  ==========================================================================  ==========
name          effect on ``ℓ_{i,t}``                                                       source
============  ==========================================================================  ==========
none          unchanged
clip_cov      ``cov_t = (A_t - mean A)(log π_t - mean log π)``; among tokens with         2505.22617
              ``clip_cov_low < cov_t < clip_cov_high`` that the trust region did not
              clip, ``max(1, ⌊clip_cov_frac·N⌋)`` chosen at random get ``ℓ = 0``
kl_cov        the ``max(1, ⌊kl_cov_frac·N⌋)`` tokens with the largest ``cov_t`` get       2505.22617
              ``ℓ + kl_cov_coef·|log ρ_t|`` (a pull back towards the anchor policy)
high_entropy  only tokens whose entropy ``H_t`` is at least the ``1 - entropy_top_frac``  2506.01939
              quantile of the call's entropies keep ``ℓ``; the others get ``ℓ = 0``
============  ==========================================================================  ==========

``N`` is the number of loss tokens. Every selector also reports the fraction of tokens it acted
on (``clip_cov_frac``, ``kl_cov_frac``, ``high_entropy_frac``) as a metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlvr.registry import Registry
from rlvr.trainer.algorithms.surrogates import SurrogateOutput
from rlvr.trainer.algorithms.tensor_ops import masked_mean

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig


@dataclass(frozen=True)
class SelectorInputs:
    """What a selector sees; every tensor is ``[B, T]`` and 0 at masked positions."""

    loss: Tensor  # the trust region's per-token loss, with gradient
    logp: Tensor  # log π_θ of the sampled tokens, with gradient
    log_ratio: Tensor | None  # log ρ with its gradient path (None: no importance ratio)
    advantages: Tensor  # detached
    mask: Tensor  # bool, True = token counts
    clipped: Tensor  # bool, tokens the trust region already clipped (their gradient is 0)
    entropy: Tensor | None  # detached per-token entropy of the policy (None: not given)
    generator: torch.Generator | None  # randomness of clip_cov (None: torch's global generator)


@dataclass(frozen=True)
class TokenSelector:
    """One registered selector: the function and whether it needs per-token entropies."""

    select: Callable[[SelectorInputs, AlgorithmConfig], SurrogateOutput]
    needs_entropy: bool = False


TOKEN_SELECTORS: Registry[TokenSelector] = Registry("token selector", field="token_selector")


def register_token_selector(name: str, selector: TokenSelector) -> TokenSelector:
    """Make ``selector`` selectable as ``token_selector=name``."""
    return TOKEN_SELECTORS.register(name, selector)


def covariance(logp: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """Per-token ``(A_t - mean A)(log π_t - mean log π)`` over the loss tokens (detached; 0 elsewhere)."""
    lp = logp.detach()
    cov = (advantages - masked_mean(advantages, mask)) * (lp - masked_mean(lp, mask))
    return torch.where(mask, cov, torch.zeros_like(cov))


def _count(fraction: float, mask: Tensor) -> int:
    return max(1, int(fraction * int(mask.sum())))


def _none(inp: SelectorInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    return SurrogateOutput(inp.loss)


def _clip_cov(inp: SelectorInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    cov = covariance(inp.logp, inp.advantages, inp.mask)
    candidates = inp.mask & ~inp.clipped & (cov > cfg.clip_cov_low) & (cov < cfg.clip_cov_high)
    chosen = torch.zeros(inp.mask.shape, dtype=torch.bool, device=inp.mask.device)
    flat = candidates.reshape(-1).nonzero().squeeze(-1)
    if flat.numel() > 0:
        order = torch.randperm(flat.numel(), generator=inp.generator)
        pick = flat[order[: _count(cfg.clip_cov_frac, inp.mask)].to(flat.device)]
        chosen.view(-1)[pick] = True
    loss = torch.where(chosen, torch.zeros_like(inp.loss), inp.loss)
    return SurrogateOutput(loss, {"clip_cov_frac": chosen})


def _kl_cov(inp: SelectorInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    if inp.log_ratio is None:
        raise ValueError("token_selector='kl_cov' needs an importance ratio (ratio_level must not be 'none')")
    chosen = torch.zeros(inp.mask.shape, dtype=torch.bool, device=inp.mask.device)
    n_tokens = int(inp.mask.sum())
    if n_tokens > 0:
        cov = covariance(inp.logp, inp.advantages, inp.mask)
        cov = torch.where(inp.mask, cov, torch.full_like(cov, -torch.inf))
        top = torch.topk(cov.reshape(-1), min(_count(cfg.kl_cov_frac, inp.mask), n_tokens)).indices
        chosen.view(-1)[top] = True
    penalty = cfg.kl_cov_coef * inp.log_ratio.abs()
    loss = torch.where(chosen, inp.loss + penalty, inp.loss)
    return SurrogateOutput(loss, {"kl_cov_frac": chosen})


def quantile(values: Tensor, q: float) -> Tensor:
    """``torch.quantile(values, q)`` (linear interpolation) of a 1-D tensor, without its size limit."""
    s = values.sort().values
    pos = q * (s.numel() - 1)
    lo = int(pos)
    hi = min(lo + 1, s.numel() - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def _high_entropy(inp: SelectorInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    if inp.entropy is None:
        raise ValueError(
            "token_selector='high_entropy' needs the policy's per-token entropy: pass entropy= to policy_loss"
        )
    # an entropy that is not finite (a broken forward) never makes a token a forking token
    h = torch.where(inp.mask & torch.isfinite(inp.entropy), inp.entropy, torch.zeros_like(inp.entropy))
    keep = torch.zeros_like(inp.mask)
    if bool(inp.mask.any()):
        threshold = quantile(h[inp.mask], 1.0 - cfg.entropy_top_frac)
        keep = inp.mask & (h >= threshold)
    loss = torch.where(keep, inp.loss, torch.zeros_like(inp.loss))
    return SurrogateOutput(loss, {"high_entropy_frac": keep})


register_token_selector("none", TokenSelector(_none))
register_token_selector("clip_cov", TokenSelector(_clip_cov))
register_token_selector("kl_cov", TokenSelector(_kl_cov))
register_token_selector("high_entropy", TokenSelector(_high_entropy, needs_entropy=True))


def apply_token_selector(inp: SelectorInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    """The per-token loss after ``cfg.token_selector`` (and the selector's 0/1 indicators)."""
    return TOKEN_SELECTORS[cfg.token_selector].select(inp, cfg)
