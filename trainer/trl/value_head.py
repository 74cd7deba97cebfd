"""PPO critic: a transformer backbone with a scalar value head (the loss is ``algorithms.value_loss``).

TRL 1.16 has no PPO, value head or GAE (PPOTrainer was removed), so the critic is ours. It is a
separate network (the LLM-PPO convention of InstructGPT, verl and OpenRLHF): by default a copy of
the policy's backbone plus a zero-initialised linear head, so value-loss gradients never touch the
policy and the first values are exactly 0.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ValueModel(nn.Module):
    """Critic ``V(s_t)``: backbone hidden states -> one scalar per token position."""

    def __init__(self, backbone: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_policy(cls, policy: nn.Module) -> ValueModel:
        """Build a critic from a copy of ``policy``'s backbone (its ``base_model``) and a fresh head."""
        backbone = getattr(policy, "base_model", None)
        if backbone is None or backbone is policy:
            raise TypeError(f"{type(policy).__name__} exposes no separate backbone (base_model) to copy")
        hidden = policy.config.get_text_config().hidden_size
        critic = cls(copy.deepcopy(backbone), hidden)
        critic.head.to(device=next(backbone.parameters()).device)
        return critic

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int | None = None
    ) -> torch.Tensor:
        """Values, float32: every position [B, L], or with ``logits_to_keep=T`` the completion's [B, T].

        The value of completion token ``t`` is V of the state before it: the prefix ending at
        position ``P + t - 1``, the same position whose logits predict token ``t``. (One
        ``forward`` for both, so a DDP-wrapped critic is called like the bare one.)
        """
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        values = self.head(hidden.to(self.head.weight.dtype)).squeeze(-1).float()
        if logits_to_keep is None:
            return values
        return values[:, -logits_to_keep - 1 : -1]


__all__ = ["ValueModel"]
