"""Loss aggregation: how per-token losses ``ℓ [B, T]`` become one scalar, and what ``normalizer`` counts.

Every aggregation is ``loss = Σ_units contribution(unit) / N``, with ``N`` the number of *units*
of the whole optimiser step. Summing the losses of several micro-batches (or all-reducing over
ranks) that were each given the step's global ``N`` therefore gives exactly the gradient of one
big batch. By default ``N`` is this call's own count.

=======================  =========  ==========================================================
aggregation              unit (N)   contribution of a unit
=======================  =========  ==========================================================
token_mean               tokens     ``ℓ_{i,t}``                     (DAPO, CISPO, MaxRL, PPO)
seq_mean_token_mean      sequences  ``(1/|y_i|) Σ_t ℓ_{i,t}``       (GRPO, SAPO, GSPO)
seq_mean_token_sum       sequences  ``Σ_t ℓ_{i,t}``                 (REINFORCE, RLOO)
seq_mean_token_sum_norm  sequences  ``Σ_t ℓ_{i,t} / L``, L constant  (Dr. GRPO, L = max length)
prompt_mean              prompts    ``Σ_{i∈g,t} ℓ / Σ_{i∈g} |y_i|``  (MiniMax-M1, ScaleRL)
=======================  =========  ==========================================================

A sequence (or prompt) counts only if it keeps at least one token: a completion masked out
entirely (empty, or filtered as truncated) neither contributes nor dilutes the mean.
``prompt_mean`` needs the G completions of a prompt in consecutive rows and whole groups in
each call. ``count_loss_units`` gives a micro-batch's ``N`` for the trainer to sum.

Note for data parallelism: DDP/FSDP *average* gradients over ranks, so with a global ``N`` the
trainer multiplies the loss by the world size (as verl does) to keep the sum semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from rlvr.errors import ConfigError
from rlvr.registry import Registry
from rlvr.trainer.algorithms.tensor_ops import denominator, masked_sum

if TYPE_CHECKING:
    from rlvr.trainer.algorithms.config import AlgorithmConfig


@dataclass(frozen=True)
class Aggregation:
    """One aggregation rule: its unit, how many units a mask holds, and the units' summed losses."""

    unit: str
    count: Callable[[Tensor, int | None], Tensor]  # (mask bool [B,T], group_size) -> count
    total: Callable[[Tensor, Tensor, int | None, float | None], Tensor]  # (ℓ, mask, G, L) -> sum


def _groups(x: Tensor, group_size: int | None) -> Tensor:
    if group_size is None:
        raise ValueError("prompt_mean aggregation needs group_size (completions per prompt)")
    if group_size <= 0 or x.shape[0] % group_size:
        raise ValueError(f"batch of {x.shape[0]} rows does not hold whole groups of {group_size}")
    return x.reshape(x.shape[0] // group_size, group_size * x.shape[1])


def _tokens(mask: Tensor, g: int | None) -> Tensor:
    return mask.sum()


def _sequences(mask: Tensor, g: int | None) -> Tensor:
    return mask.any(-1).sum()


def _prompts(mask: Tensor, g: int | None) -> Tensor:
    return _groups(mask, g).any(-1).sum()


def _sum(loss: Tensor, mask: Tensor, g: int | None, length: float | None) -> Tensor:
    return masked_sum(loss, mask)


def _seq_token_mean(loss: Tensor, mask: Tensor, g: int | None, length: float | None) -> Tensor:
    per_seq = masked_sum(loss, mask, dim=-1) / mask.sum(-1).clamp(min=1).to(loss.dtype)
    return per_seq.sum()


def _seq_token_sum_norm(loss: Tensor, mask: Tensor, g: int | None, length: float | None) -> Tensor:
    return masked_sum(loss, mask) / length


def _prompt_token_mean(loss: Tensor, mask: Tensor, g: int | None, length: float | None) -> Tensor:
    gm = _groups(mask, g)
    per_prompt = masked_sum(_groups(loss, g), gm, dim=-1) / gm.sum(-1).clamp(min=1).to(loss.dtype)
    return per_prompt.sum()


AGGREGATIONS: Registry[Aggregation] = Registry("aggregation", field="aggregation")


def register_aggregation(name: str, rule: Aggregation) -> Aggregation:
    """Make ``rule`` selectable as ``aggregation=name``."""
    return AGGREGATIONS.register(name, rule)


register_aggregation("token_mean", Aggregation("tokens", _tokens, _sum))
register_aggregation("seq_mean_token_mean", Aggregation("sequences", _sequences, _seq_token_mean))
register_aggregation("seq_mean_token_sum", Aggregation("sequences", _sequences, _sum))
register_aggregation("seq_mean_token_sum_norm", Aggregation("sequences", _sequences, _seq_token_sum_norm))
register_aggregation("prompt_mean", Aggregation("prompts", _prompts, _prompt_token_mean))


def _norm_length(cfg: AlgorithmConfig, max_completion_length: int | None) -> float | None:
    if cfg.aggregation != "seq_mean_token_sum_norm":
        return None
    length = cfg.norm_length if cfg.norm_length is not None else max_completion_length
    if length is None or length <= 0:
        raise ConfigError(
            "norm_length",
            "seq_mean_token_sum_norm divides by a constant length, but none was given",
            "set norm_length or pass max_completion_length",
        )
    return float(length)


def count_loss_units(mask: Tensor, cfg: AlgorithmConfig, *, group_size: int | None = None) -> int:
    """How many units (tokens / sequences / prompts, per ``cfg.aggregation``) ``mask [B, T]`` holds."""
    return int(AGGREGATIONS[cfg.aggregation].count(mask != 0, group_size))


def aggregate(
    loss: Tensor,
    mask: Tensor,
    cfg: AlgorithmConfig,
    *,
    group_size: int | None = None,
    max_completion_length: int | None = None,
    normalizer: float | Tensor | None = None,
) -> Tensor:
    """Scalar loss from per-token ``loss [B, T]`` and bool ``mask`` per ``cfg.aggregation`` (see module doc)."""
    rule = AGGREGATIONS[cfg.aggregation]
    total = rule.total(loss, mask, group_size, _norm_length(cfg, max_completion_length))
    return total / denominator(normalizer, rule.count(mask, group_size), loss.dtype)
