"""Importance ratios ρ = π_θ / π_anchor: the level axis (none / token / sequence) and the anchor axis.

Every level returns the *log*-ratio ``[B, T]`` with its gradient path through ``logp`` (or None
for ``"none"``, fully on-policy REINFORCE where no ratio exists and the surrogate is ``-A·log π``):

* ``token``:    ``log π_θ(y_t) - log π_anchor(y_t)`` (PPO, GRPO, DAPO, CISPO, DPPO, SAPO).
* ``sequence``: GSPO's length-normalised sequence ratio ``s_i = exp(mean_t(log π_θ - log π_anchor))``
  written in its per-token form ``log s_{i,t} = sg(log s_i) + log π_θ(y_t) - sg(log π_θ(y_t))``
  (GSPO-token, arXiv:2507.18071): every token carries the value ``s_i`` and, under
  seq-mean-token-mean aggregation, the gradient of ``s_i`` itself — which is why a sequence
  ratio must be aggregated with ``seq_mean_token_mean``.

Anchor (``ratio_anchor``): ``"old"`` = the trainer's own log-probs at the sampling weights
(``old_logp``), ``"rollout"`` = the inference engine's log-probs (``rollout_logp``, "bypass mode").
A missing anchor tensor means the step is exactly on-policy: the anchor is ``logp.detach()``, so
the ratio is 1 in value and carries the gradient of ``log π_θ``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import Tensor

from rlvr.registry import Registry
from rlvr.trainer.algorithms.tensor_ops import MAX_LOG_RATIO, masked_sum

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig

# (logp [B,T] with grad, zero at masked positions; anchor [B,T] detached; mask bool) -> log-ratio or None
RatioLevel = Callable[[Tensor, Tensor, Tensor], "Tensor | None"]

RATIO_LEVELS: Registry[RatioLevel] = Registry("ratio level", field="ratio_level")
RATIO_ANCHORS = ("old", "rollout")


def register_ratio_level(name: str) -> Callable[[RatioLevel], RatioLevel]:
    """Decorator: make ``fn(logp, anchor, mask) -> log-ratio`` selectable as ``ratio_level=name``."""
    return RATIO_LEVELS.register(name)


@register_ratio_level("none")
def _no_ratio(logp: Tensor, anchor: Tensor, mask: Tensor) -> Tensor | None:
    return None


@register_ratio_level("token")
def _token_ratio(logp: Tensor, anchor: Tensor, mask: Tensor) -> Tensor:
    return (logp - anchor).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)


@register_ratio_level("sequence")
def _sequence_geomean_ratio(logp: Tensor, anchor: Tensor, mask: Tensor) -> Tensor:
    lengths = mask.sum(-1).clamp(min=1).to(logp.dtype)
    seq = (masked_sum(logp.detach() - anchor, mask, dim=-1) / lengths).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return seq.unsqueeze(-1) + logp - logp.detach()


def select_anchor(
    cfg: AlgorithmConfig, logp: Tensor, old_logp: Tensor | None, rollout_logp: Tensor | None
) -> Tensor:
    """The detached anchor log-probs the ratio is taken against (``logp.detach()`` when not given)."""
    anchor = old_logp if cfg.ratio_anchor == "old" else rollout_logp
    return logp.detach() if anchor is None else anchor.detach().to(logp.dtype)


def log_ratio(cfg: AlgorithmConfig, logp: Tensor, anchor: Tensor, mask: Tensor) -> Tensor | None:
    """The log importance ratio ``[B, T]`` for ``cfg.ratio_level`` (None when the level is ``"none"``)."""
    return RATIO_LEVELS[cfg.ratio_level](logp, anchor, mask)

