"""Trust regions: how the importance ratio turns into a per-token loss ``ℓ_{i,t}``.

Each registered surrogate returns the canonical per-token loss (the value papers and other
libraries log) whose autograd gradient is ``-M·c·A·∇log π_θ`` with a detached coefficient ``c``
and token mask ``M`` (docs/algorithms.md §6):

=========  ===========================================================  ==========================
name       per-token loss                                               coefficient c, mask M
=========  ===========================================================  ==========================
none       ``-A·log π`` without a ratio, ``-ρ·A`` with one               c = ρ (1 without a ratio)
clip       ``-min(ρA, clip(ρ, 1-ε_low, 1+ε_high)A)``; dual clip caps      c = ρ; M = 0 on the clipped
           the A<0 loss at ``-c_dual·A`` (arXiv:1707.06347, 1912.09729)  side (and ρ > c_dual, A<0)
cispo      ``-sg(clip(ρ, cap_min, cap_max))·A·log π`` (absolute caps,    c = clip(ρ); M = 1
           TRL convention; arXiv:2506.13585)
dppo       ``-M·sg(min(ρ, C))·A·log π`` with the binary-TV or binary-KL  c = min(ρ, C); M = the
           divergence mask against the anchor (arXiv:2602.04879)         divergence mask
sapo       ``-(4/τ)·σ(τ(ρ-1))·A``, τ = τ_pos if A>0 else τ_neg             c = ρ·4σ(1-σ)
           (arXiv:2511.20347)
=========  ===========================================================  ==========================

All of them give ``-A·∇log π`` per token when ρ ≡ 1 (on-policy), the equivalence that
tests/trainer/test_algorithms_loss.py checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlvr.registry import Registry

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig


@dataclass(frozen=True)
class SurrogateInputs:
    """What a trust region sees; every tensor is ``[B, T]`` and 0 at masked positions."""

    logp: Tensor  # log π_θ of the sampled tokens, with gradient
    log_ratio: Tensor | None  # log ρ with its gradient path (None: no importance ratio)
    advantages: Tensor  # detached
    anchor_logp: Tensor  # detached log-probs of the ratio's anchor (old policy or rollout engine)
    mask: Tensor  # bool, True = token counts


@dataclass
class SurrogateOutput:
    """Per-token loss and per-token 0/1 indicators whose masked means become metrics."""

    loss: Tensor
    indicators: dict[str, Tensor] = field(default_factory=dict)


Surrogate = Callable[[SurrogateInputs, "AlgorithmConfig"], SurrogateOutput]
TRUST_REGIONS: Registry[Surrogate] = Registry("trust region", field="trust_region")


def register_trust_region(name: str) -> Callable[[Surrogate], Surrogate]:
    """Register a trust region under ``name`` (the value of ``AlgorithmConfig.trust_region``)."""

    return TRUST_REGIONS.register(name)


def _ratio(inp: SurrogateInputs) -> Tensor:
    if inp.log_ratio is None:
        raise ValueError("this trust region needs an importance ratio (ratio_level must not be 'none')")
    return inp.log_ratio.exp()


@register_trust_region("none")
def _vanilla(inp: SurrogateInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    if inp.log_ratio is None:
        return SurrogateOutput(-inp.advantages * inp.logp)
    return SurrogateOutput(-inp.advantages * _ratio(inp))


@register_trust_region("clip")
def _ppo_clip(inp: SurrogateInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    ratio, adv = _ratio(inp), inp.advantages
    low, high = 1.0 - cfg.clip_eps_low, 1.0 + cfg.clip_eps_high
    loss = torch.maximum(-adv * ratio, -adv * ratio.clamp(low, high))
    r = ratio.detach()
    indicators = {"clip_frac_low": (adv < 0) & (r < low), "clip_frac_high": (adv > 0) & (r > high)}
    if cfg.dual_clip is not None:
        cap = -adv * cfg.dual_clip
        dual = (adv < 0) & (loss.detach() > cap)
        loss = torch.where(adv < 0, torch.minimum(loss, cap), loss)
        indicators["dual_clip_frac"] = dual
    return SurrogateOutput(loss, indicators)


@register_trust_region("cispo")
def _cispo(inp: SurrogateInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    r = _ratio(inp).detach()
    weight = r.clamp(min=cfg.cispo_cap_min, max=cfg.cispo_cap_max)
    indicators = {"cispo_cap_frac": r > cfg.cispo_cap_max}
    if cfg.cispo_cap_min is not None:
        indicators["cispo_floor_frac"] = r < cfg.cispo_cap_min
    return SurrogateOutput(-weight * inp.advantages * inp.logp, indicators)


def _dppo_keep_tv(p: Tensor, q: Tensor, adv: Tensor, cfg: AlgorithmConfig) -> Tensor:
    diff = p - q
    return torch.where(adv > 0, diff <= cfg.dppo_delta_high, diff >= -cfg.dppo_delta_low)


def _dppo_keep_kl(p: Tensor, q: Tensor, adv: Tensor, cfg: AlgorithmConfig) -> Tensor:
    # Bernoulli KL between "the sampled token vs the rest" under the anchor q and the policy p;
    # a token is dropped only when it is too far AND moving in the advantage-increasing direction.
    tiny = 1e-8
    binary_kl = q * (q.clamp(min=tiny).log() - p.clamp(min=tiny).log()) + (1 - q) * (
        (1 - q + tiny).log() - (1 - p + tiny).log()
    )
    keep_pos = (binary_kl <= cfg.dppo_delta_high) | (p <= q)
    keep_neg = (binary_kl <= cfg.dppo_delta_low) | (p >= q)
    return torch.where(adv > 0, keep_pos, keep_neg)


DPPO_DIVERGENCES: dict[str, Callable[[Tensor, Tensor, Tensor, AlgorithmConfig], Tensor]] = {
    "tv": _dppo_keep_tv,
    "kl": _dppo_keep_kl,
}


@register_trust_region("dppo")
def _dppo(inp: SurrogateInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    r = _ratio(inp).detach()
    p, q = inp.logp.detach().exp(), inp.anchor_logp.exp()
    keep = DPPO_DIVERGENCES[cfg.dppo_divergence](p, q, inp.advantages, cfg)
    weight = r.clamp(max=cfg.dppo_is_cap)
    loss = torch.where(keep, -weight * inp.advantages * inp.logp, torch.zeros_like(inp.logp))
    return SurrogateOutput(loss, {"dppo_mask_frac": ~keep, "dppo_is_cap_frac": keep & (r > cfg.dppo_is_cap)})


@register_trust_region("sapo")
def _sapo(inp: SurrogateInputs, cfg: AlgorithmConfig) -> SurrogateOutput:
    ratio, adv = _ratio(inp), inp.advantages
    tau = torch.where(adv > 0, torch.full_like(adv, cfg.sapo_tau_pos), torch.full_like(adv, cfg.sapo_tau_neg))
    gate = torch.sigmoid(tau * (ratio - 1.0)) * (4.0 / tau)
    return SurrogateOutput(-gate * adv)
