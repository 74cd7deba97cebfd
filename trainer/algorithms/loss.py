"""``policy_loss``: the policy-gradient loss of any ``AlgorithmConfig``, composed from the axis modules.

Pipeline per call (docs/algorithms.md §3): anchor -> importance ratio -> trust
region (per-token loss) -> token selector -> rollout-correction weight -> KL in the loss ->
aggregation. Conventions:

* Shapes: ``logp``, ``mask`` and every optional log-prob tensor are ``[B, T]`` with the G
  completions of a prompt in consecutive rows; ``advantages`` is ``[B]`` or ``[B, T]``.
* ``old_logp=None`` means on-policy: the ratio is ``exp(logp - logp.detach())`` (1 in value, the
  gradient of ``log π``). Likewise a missing ``rollout_logp`` means no trainer/engine mismatch.
* ``ref_logp=None`` means no reference: the KL term is skipped (``cfg.needs_ref`` tells the
  trainer when to provide it).
* ``entropy`` is the policy's per-token entropy (detached inside); only a token selector that
  needs it reads it (``cfg.needs_entropy``), and then it is required.
* Masked positions may hold anything (padding, NaN, inf): they are selected away before any
  arithmetic, and rows with an empty mask contribute nothing, so the loss is never NaN.
* Computation is in at least float32 (bf16 inputs are upcast; float64 stays float64); the
  gradient flows back into ``logp`` in its own dtype.
* ``normalizer``: the number of aggregation units (tokens for ``token_mean``, sequences for the
  ``seq_mean_*`` rules, prompts for ``prompt_mean``) in the *whole optimiser step*, over all
  micro-batches and ranks; see ``count_loss_units``. Summing the losses of micro-batches that all
  got the same global normalizer gives the gradient of one big batch. None = this call's count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlvr.trainer.algorithms.aggregation import aggregate
from rlvr.trainer.algorithms.kl import kl_penalty
from rlvr.trainer.algorithms.ratios import log_ratio, select_anchor
from rlvr.trainer.algorithms.rollout_correction import rollout_correction_weights
from rlvr.trainer.algorithms.surrogates import TRUST_REGIONS, SurrogateInputs
from rlvr.trainer.algorithms.token_selectors import SelectorInputs, apply_token_selector
from rlvr.trainer.algorithms.tensor_ops import as_mask, check_like, compute_dtype, masked_mean, where_mask

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig


def _prepare_advantages(advantages: Tensor, mask: Tensor, dtype: torch.dtype) -> Tensor:
    adv = advantages.detach().to(dtype)
    if adv.dim() == 1:
        if adv.shape[0] != mask.shape[0]:
            raise ValueError(f"advantages has shape {tuple(adv.shape)}, expected [{mask.shape[0]}] or {tuple(mask.shape)}")
        adv = adv.unsqueeze(-1).expand(mask.shape)
    else:
        check_like(adv, mask.shape, "advantages")
    return torch.where(mask & torch.isfinite(adv), adv, torch.zeros_like(adv))


def policy_loss(
    logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    cfg: AlgorithmConfig,
    *,
    old_logp: Tensor | None = None,
    rollout_logp: Tensor | None = None,
    ref_logp: Tensor | None = None,
    group_size: int | None = None,
    max_completion_length: int | None = None,
    normalizer: float | Tensor | None = None,
    entropy: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Scalar policy loss and float metrics for log-probs ``logp [B, T]`` of the sampled tokens.

    Args:
        logp: current policy log-probs of the sampled tokens (with gradient).
        advantages: ``[B]`` per completion or ``[B, T]`` per token (detached inside).
        mask: ``[B, T]``, nonzero where a token counts in the loss.
        cfg: the algorithm.
        old_logp: trainer log-probs at the sampling weights; None = on-policy.
        rollout_logp: the inference engine's log-probs; None = no engine mismatch.
        ref_logp: reference-model log-probs; None = no KL term.
        group_size: completions per prompt (needed by ``prompt_mean``).
        max_completion_length: the constant of ``seq_mean_token_sum_norm`` unless
            ``cfg.norm_length`` is set.
        normalizer: units of the whole optimiser step (tokens / sequences / prompts by
            aggregation, see the module doc); None = this call's count.
        entropy: ``[B, T]`` per-token entropy of the current policy (needed when
            ``cfg.needs_entropy``, e.g. the high-entropy token selector).
        generator: random generator of the Clip-Cov token choice (None = torch's global one).

    Returns:
        ``(loss, metrics)``: a 0-dim tensor (float32, or float64 for float64 inputs) and a dict
        of floats for this call (``loss``, ``policy_loss``, ``ratio_mean``, ``clip_frac``, ``kl``...).
    """
    if logp.dim() != 2:
        raise ValueError(f"logp must have shape [B, T], got {tuple(logp.shape)}")
    mask = as_mask(mask, logp.shape)
    tensors = (("old_logp", old_logp), ("rollout_logp", rollout_logp), ("ref_logp", ref_logp), ("entropy", entropy))
    for name, t in tensors:
        check_like(t, logp.shape, name)
    dtype = compute_dtype(logp)

    def clean(t: Tensor | None) -> Tensor | None:
        return None if t is None else where_mask(t.detach().to(dtype), mask)

    lp = where_mask(logp.to(dtype), mask)
    old, rollout, ref, ent = clean(old_logp), clean(rollout_logp), clean(ref_logp), clean(entropy)
    adv = _prepare_advantages(advantages, mask, dtype)

    anchor = select_anchor(cfg, lp, old, rollout)
    lr = log_ratio(cfg, lp, anchor, mask)
    out = TRUST_REGIONS[cfg.trust_region](SurrogateInputs(lp, lr, adv, anchor, mask), cfg)
    unclipped = torch.zeros_like(mask)
    clipped = out.indicators.get("clip_frac_low", unclipped) | out.indicators.get("clip_frac_high", unclipped)
    selected = apply_token_selector(SelectorInputs(out.loss, lp, lr, adv, mask, clipped, ent, generator), cfg)
    weights, rc_indicators = rollout_correction_weights(cfg, old if old is not None else lp.detach(), rollout, mask)
    token_loss = selected.loss * weights

    kl = None
    if ref is not None:
        kl = kl_penalty(lp, ref, cfg.kl_estimator)
    agg = dict(group_size=group_size, max_completion_length=max_completion_length, normalizer=normalizer)
    pg_loss = aggregate(where_mask(token_loss, mask), mask, cfg, **agg)
    loss = pg_loss
    if kl is not None and cfg.kl_placement == "loss" and cfg.kl_coef > 0:
        loss = aggregate(where_mask(token_loss + cfg.kl_coef * kl, mask), mask, cfg, **agg)

    with torch.no_grad():
        metrics = _metrics(loss, pg_loss, lr, kl, adv, mask, {**out.indicators, **selected.indicators, **rc_indicators})
    return loss, metrics


def _metrics(
    loss: Tensor,
    pg_loss: Tensor,
    lr: Tensor | None,
    kl: Tensor | None,
    adv: Tensor,
    mask: Tensor,
    indicators: dict[str, Tensor],
) -> dict[str, float]:
    has_tokens = bool(mask.any())
    metrics = {
        "loss": float(loss),
        "policy_loss": float(pg_loss),
        "num_tokens": float(mask.sum()),
        "num_sequences": float(mask.any(-1).sum()),
        "advantage_mean": float(masked_mean(adv, mask)),
    }
    if lr is not None:
        ratio = lr.detach().exp()
        metrics["ratio_mean"] = float(masked_mean(ratio, mask))
        metrics["ratio_min"] = float(ratio[mask].min()) if has_tokens else 1.0
        metrics["ratio_max"] = float(ratio[mask].max()) if has_tokens else 1.0
        metrics["anchor_kl"] = float(masked_mean(-lr.detach(), mask))
    if kl is not None:
        metrics["kl"] = float(masked_mean(kl.detach(), mask))
    for name, value in indicators.items():
        metrics[name] = float(masked_mean(value.to(adv.dtype), mask))
    if "clip_frac_low" in metrics:
        metrics["clip_frac"] = metrics["clip_frac_low"] + metrics["clip_frac_high"]
    return metrics
