"""Supervised warm-up on the environments' own reference solutions ("SFT then RL", DeepSeek-R1).

Each example is an episode played with the environment's ``reference_action()`` (the answer a
perfect model gives; multi-turn environments are stepped with it until they end), tokenised
exactly like a training rollout (``ChatFormatter``: prompt, model turns, environment turns), and
trained with cross-entropy on the model-written tokens only.

The loop is hand-written rather than TRL's ``SFTTrainer`` so the warm-up sees the very token
sequences RL will sample (same chat rendering and environment-turn masking, no re-tokenisation of
multi-turn transcripts), and because it is twenty lines. Under several processes it runs the same
seeded steps on every rank, which keeps the replicas identical without communication.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, Sequence

from rlvr.errors import ConfigError
from rlvr.trainer.rollout.chat import ChatFormatter
from rlvr.trainer.rollout.runner import make_env
from rlvr.trainer.rollout.tasks import TaskKey, task_fingerprint
from rlvr.trainer.run.config import EnvConfig

logger = logging.getLogger(__name__)

MAX_REFERENCE_TURNS = 32


class ReferenceExamples:
    """Token sequences of reference episodes, played on demand from task keys."""

    def __init__(self, entries: Sequence[EnvConfig], formatter: ChatFormatter, target: str = "action",
                 exclude: set[str] | None = None) -> None:
        if target not in ("action", "answer"):
            raise ConfigError("sft.target", f"{target!r} is not allowed", "allowed: action, answer")
        self.entries = list(entries)
        self.formatter = formatter
        self.target = target
        self.exclude = exclude or set()  # task fingerprints never trained on (the held-out set)
        self._envs: dict[int, Any] = {}

    def _env(self, index: int) -> Any:
        if index not in self._envs:
            self._envs[index] = make_env(self.entries[index])
        return self._envs[index]

    def _reference(self, core: Any) -> str:
        if self.target == "answer" and not getattr(core, "multi_turn", False):
            answer = core.reference_answer() if hasattr(core, "reference_answer") else None
            if answer is not None:
                return str(answer)
        if not hasattr(core, "reference_action"):
            raise ConfigError("sft.steps", f"{type(core).__name__} has no reference_action()",
                              "set sft.steps: 0 for environments without reference solutions")
        return str(core.reference_action())

    def example(self, key: TaskKey) -> tuple[list[int], list[int]] | None:
        """``(input_ids, loss_mask)`` of the reference episode of ``key``; None for an excluded task."""
        env = self._env(key.env)
        core = env.unwrapped
        obs, info = env.reset(seed=key.seed)
        if self.exclude and task_fingerprint(obs, info) in self.exclude:
            return None
        ids = self.formatter.prompt_ids(obs)
        mask = [0] * len(ids)
        tok = self.formatter.tokenizer
        for _ in range(MAX_REFERENCE_TURNS):
            action = self._reference(core)
            turn = list(tok(action, add_special_tokens=False)["input_ids"]) + [self.formatter.turn_end_id]
            ids += turn
            mask += [1] * len(turn)
            if not getattr(core, "multi_turn", False):
                break
            before = len(obs)
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
            env_ids = self.formatter.env_turn_ids(obs[before + 1:])
            ids += env_ids
            mask += [0] * len(env_ids)
        return ids, mask

    def close(self) -> None:
        """Close the environments."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def sft_warmup(
    model: Any,
    examples: ReferenceExamples,
    keys: Iterator[TaskKey],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int,
    device: Any,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
    should_stop: Callable[[int], bool] | None = None,
) -> list[float]:
    """Train ``model`` for up to ``steps`` AdamW steps of masked cross-entropy; returns the per-step losses.

    ``should_stop(step)`` is asked after every step; True ends the warm-up there.
    """
    import torch

    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate, weight_decay=0.0)
    pad = examples.formatter.tokenizer.pad_token_id or 0
    losses = []
    for step in range(steps):
        batch: list[tuple[list[int], list[int]]] = []
        while len(batch) < batch_size:
            example = examples.example(next(keys))
            if example is not None:
                batch.append(example)
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((batch_size, width), pad, dtype=torch.long)
        labels = torch.full((batch_size, width), -100, dtype=torch.long)
        attention = torch.zeros((batch_size, width), dtype=torch.long)
        for i, (ids, mask) in enumerate(batch):
            t = torch.tensor(ids, dtype=torch.long)
            input_ids[i, : len(ids)] = t
            attention[i, : len(ids)] = 1
            labels[i, : len(ids)] = torch.where(torch.tensor(mask, dtype=torch.bool), t, torch.tensor(-100))
        lr = learning_rate * min(1.0, (step + 1) / max(1, warmup_steps))
        for group in opt.param_groups:
            group["lr"] = lr
        out = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device))
        loss = out.loss
        value = float(loss.detach())
        if not math.isfinite(value):
            raise ConfigError("sft.learning_rate", f"the SFT loss became {value} at step {step}", "lower sft.learning_rate")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(value)
        if on_step is not None:
            on_step(step + 1, value)
        if should_stop is not None and should_stop(step + 1):
            break
    model.eval()
    return losses


__all__ = ["ReferenceExamples", "sft_warmup"]
