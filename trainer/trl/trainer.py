"""``RLVRTrainer``: TRL's ``GRPOTrainer`` driven by ``rlvr.trainer.algorithms`` for every preset.

TRL does the plumbing (sampling, generation or a ``rollout_func``, reward functions, reference
log-probs, distributed training, logging); everything that defines an algorithm comes from one
``AlgorithmConfig`` through the pure functions. Override points (TRL 1.16; every TRL private
method and attribute we rely on is listed in ``rlvr.trainer.trl``'s package docstring):

* ``_calculate_rewards``: keep the raw gathered per-function rewards (TRL does not return them).
* ``_generate_and_score_completions``: our rewards (+ DAPO overlong penalty), zero-variance
  drop (ScaleRL) or refill (DAPO dynamic sampling: generate more groups until the batch is full),
  overlong masking, KL in the reward, PPO critic values and GAE, all through
  ``compute_token_advantages`` on the whole (gathered) batch. Rollout-engine log-probs returned
  by a ``rollout_func`` (TRL's ``sampling_per_token_logps``) stay in the batch as the DPPO /
  ScaleRL ratio anchor.
* ``_prepare_inputs``: shuffle by whole prompt groups (prompt-mean aggregation needs them) and
  attach the loss-unit counts of each optimiser step, so micro-batches are normalised globally.
* ``_compute_loss``: ``policy_loss`` (+ the critic's ``value_loss``), already scaled for
  gradient accumulation and data parallelism as TRL expects (``loss_is_scaled_for_ga = True``).
* ``_generate_single_turn`` / ``_get_per_token_logps_and_entropies`` (``FastPathsMixin``,
  ``rlvr.trainer.trl.fast_paths``): the rlvr ``RolloutEngine`` instead of ``model.generate``, and
  padding-free log-prob forwards through TRL's fused LM head.

What TRL 1.16 lacks and this adds: PPO (critic + GAE + KL in the reward), DPPO, MaxRL, RLOO /
REINFORCE in the GRPO pipeline, dynamic sampling, zero-variance drop, prompt-mean aggregation,
rollout-engine anchors, a reference model for policies built in memory, and the fast paths.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from trl import GRPOTrainer
from trl.trainer.utils import (
    shuffle_sequence_dict,
    split_pixel_values_by_grid,
    split_tensor_dict,
    unsplit_pixel_values_by_grid,
)

from rlvr.errors import ConfigError
from rlvr.trainer.algorithms import (
    compute_token_advantages,
    count_loss_units,
    mask_truncated_completions,
    overlong_penalty,
    policy_loss,
    value_loss,
    zero_variance_mask,
)
from rlvr.trainer.trl.batching import concat_rows, select_rows, shuffle_groups
from rlvr.trainer.trl.config import RLVRConfig
from rlvr.trainer.trl.fast_paths import FastPathsMixin
from rlvr.trainer.trl.value_head import ValueModel

logger = logging.getLogger(__name__)

# Keys this trainer adds to TRL's rollout batch.
REWARDS = "rlvr_rewards"  # [B] summed weighted rewards, NaN where every reward function returned None
REWARD_COMPONENTS = "rlvr_reward_components"  # [B, K] per-function rewards (GDPO normalises each)
LOSS_MASK = "rlvr_loss_mask"  # [B, T] tokens that enter the loss (completion x env/tool mask x filters)
OLD_VALUES = "rlvr_old_values"  # [B, T] critic values at sampling time (PPO)
RETURNS = "rlvr_returns"  # [B, T] GAE returns, the critic's targets (PPO)
STEP_UNITS = "rlvr_step_units"  # 0-dim: aggregation units in this optimiser step, all ranks
STEP_TOKENS = "rlvr_step_tokens"  # 0-dim: loss tokens in this optimiser step, all ranks
# metrics that are a micro-batch's share of the step's loss rather than a mean
PARTIAL_METRICS = ("loss", "policy_loss", "value/value_loss")


@contextlib.contextmanager
def _reference_from_copy(policy: PreTrainedModel) -> Iterator[None]:
    """Make GRPOTrainer's reference model a frozen copy of ``policy`` instead of a re-load.

    TRL 1.16 builds the reference with ``create_model_from_path(<policy's name_or_path>)``
    (grpo_trainer.py ~line 1003), which fails for a model built in memory (no path; offline) and
    silently differs from it when the weights were changed after loading. The hook is a module
    global called once, for the reference, inside ``__init__``; swapping it for that call keeps
    everything TRL does to the reference afterwards (dropout, FP32 head, fused LM head,
    DeepSpeed/FSDP preparation, ``sync_ref_model``). Not thread-safe: constructing two trainers
    concurrently in one process is not supported.
    """
    import trl.trainer.grpo_trainer as grpo_module

    reference = copy.deepcopy(policy).eval()
    reference.requires_grad_(False)
    original = grpo_module.create_model_from_path

    def create_reference(model_id: str, **kwargs: Any) -> PreTrainedModel:
        return reference

    grpo_module.create_model_from_path = create_reference
    try:
        yield
    finally:
        grpo_module.create_model_from_path = original


class RLVRTrainer(FastPathsMixin, GRPOTrainer):
    """GRPOTrainer whose advantages and loss come from an ``AlgorithmConfig`` (any rlvr preset).

    Arguments are GRPOTrainer's (``model``, ``reward_funcs``, ``args``, ``train_dataset``,
    ``rollout_func``, ...) with ``args`` an ``RLVRConfig``, plus ``value_model``: the PPO critic
    for algorithms with ``baseline='gae'`` (default: a copy of the policy's backbone with a
    zero-initialised value head). A ``rollout_func`` may return ``logprobs`` (kept as the
    rollout-engine anchor), ``env_mask`` (0 = environment tokens, excluded from the loss) and any
    extra per-completion fields (passed to the reward functions).
    """

    _tag_names = ["trl", "rlvr"]
    _name = "RLVR"

    def __init__(
        self,
        model: str | PreTrainedModel,
        reward_funcs: Any = None,
        args: RLVRConfig | None = None,
        *pos: Any,
        value_model: ValueModel | None = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            name = model if isinstance(model, str) else (model.config._name_or_path or "model")
            args = RLVRConfig(output_dir=f"{os.path.basename(str(name))}-RLVR")
        if not isinstance(args, RLVRConfig):
            raise ConfigError("args", f"must be an RLVRConfig, got {type(args).__name__}",
                              "build it with rlvr.trainer.RLVRConfig(..., algorithm=...)")
        self.algo = args.algorithm_config
        if value_model is not None and not self.algo.needs_value_model:
            raise ConfigError("value_model", f"algorithm {args.algorithm!r} has no critic",
                              "drop value_model, or use baseline='gae' (the 'ppo' preset)")
        in_memory = isinstance(model, PreTrainedModel) and not hasattr(model, "peft_config")
        if self.algo.needs_value_model and value_model is None:
            if not in_memory:
                raise ConfigError("value_model", "PPO needs a critic and the policy is given by name",
                                  "pass value_model=ValueModel.from_policy(policy) or a loaded policy model")
            value_model = ValueModel.from_policy(model)
        use_copy = in_memory and self.algo.needs_ref
        with _reference_from_copy(model) if use_copy else contextlib.nullcontext():
            super().__init__(model, reward_funcs, args, *pos, **kwargs)
        self._check_setup()
        self._engine = self._setup_engine()
        self._raw_rewards: torch.Tensor | None = None
        self._refill_generator = torch.Generator().manual_seed(args.seed + 1)
        self._refill_order: list[int] = []
        self._refill_dataset = None
        # Called on the main process after each training batch's advantages with (step, per-row
        # advantages in gathered row order, or None where rows do not line up); see _report_row_advantages.
        self.advantage_hook: Callable[[int, list[float | None] | None], None] | None = None
        self.value_model: nn.Module | None = None
        self.value_optimizer: torch.optim.Optimizer | None = None
        if value_model is not None:
            self._setup_value_model(value_model)

    # ------------------------------------------------------------------ setup
    def _check_setup(self) -> None:
        cfg, args = self.algo, self.args
        if cfg.zero_variance == "refill":
            from datasets import IterableDataset

            if isinstance(self.train_dataset, IterableDataset):
                raise ConfigError("train_dataset", "dynamic sampling (zero_variance='refill') draws extra prompts "
                                  "by index, which an IterableDataset cannot do",
                                  "use a map-style datasets.Dataset or zero_variance='drop'")
        if cfg.needs_value_model and (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            raise ConfigError("algorithm", "the PPO critic is trained with its own optimiser, which is not "
                              "wired into DeepSpeed/FSDP", "use DDP (plain accelerate launch) for PPO")
        if args.use_vllm and args.vllm_importance_sampling_correction:
            logger.info("TRL's vLLM importance-sampling ratio is not used; set algorithm_overrides "
                        "rollout_correction='tis'|'mis' for trainer/engine mismatch correction")

    def _setup_value_model(self, value_model: ValueModel) -> None:
        value_model.to(self.accelerator.device)
        value_model.train()
        lr = self.args.value_learning_rate or self.args.learning_rate
        self.value_optimizer = torch.optim.AdamW(value_model.parameters(), lr=lr, weight_decay=0.0)
        # DDP-wrapped under multi-process launches, so critic gradients are averaged like the policy's.
        self.value_model = self.accelerator.prepare_model(value_model)

    # ------------------------------------------------------------------ rewards
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # noqa: ANN001
        """Run TRL's reward functions and keep the gathered ``[N, n_funcs]`` result for our advantages."""
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._raw_rewards = rewards_per_func
        return rewards_per_func

    def _summed_rewards(self, rewards_per_func: torch.Tensor) -> torch.Tensor:
        """Weighted sum over reward functions (TRL's nansum); NaN where every function returned None."""
        weights = self.reward_weights.to(rewards_per_func.device)
        total = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        return torch.where(torch.isnan(rewards_per_func).all(dim=1), torch.nan, total)

    # ------------------------------------------------------------------ generation + scoring
    def _score_round(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """One TRL generation round; adds this process's rows of the summed rewards as ``REWARDS``."""
        self._raw_rewards = None
        batch = self._trl_generate_and_score(inputs)
        if self._raw_rewards is None:
            raise RuntimeError("GRPOTrainer did not call _calculate_rewards; TRL version mismatch?")
        behaviour = batch.get("sampling_per_token_logps")
        if (getattr(self.rollout_func, "max_off_policy_steps", 0) and behaviour is not None
                and self.algo.needs_old_logp and self.algo.rollout_correction == "none"):
            # Asynchronous rollouts come from weights up to k optimiser steps old: the ratio's "old"
            # policy is the behaviour policy, whose log-probs were recorded when each token was
            # sampled. With a rollout correction configured, old stays the trainer's own and the
            # correction weight pi/mu covers the lag instead.
            batch["old_per_token_logps"] = behaviour
        rewards = self._summed_rewards(self._raw_rewards)
        n = batch["completion_ids"].size(0)
        start = self.accelerator.process_index * n
        rewards = rewards[start : start + n].clone()
        cfg = self.algo
        components = self._raw_rewards[start : start + n].clone() if cfg.uses_reward_components else None
        if cfg.overlong_penalty:  # DAPO soft overlong punishment is part of the reward
            penalty = overlong_penalty(
                batch["completion_mask"].sum(-1), cfg.overlong_max_length or self.max_completion_length,
                cfg.overlong_buffer, cfg.overlong_penalty_factor,
            ).to(rewards)
            rewards = rewards + penalty
            if components is not None:  # one more component, weight 1
                components = torch.cat([components, penalty.to(components).unsqueeze(1)], dim=1)
            mode = "train" if self.model.training else "eval"
            self._log_gathered({"algo/overlong_penalty_mean": float(penalty.mean())}, mode)
        batch[REWARDS] = rewards
        if components is not None:
            batch[REWARD_COMPONENTS] = components
        return batch

    def _component_weights(self, k: int) -> torch.Tensor:
        """The ``[K]`` weights of the reward components: TRL's ``reward_weights`` (+1 for the overlong penalty)."""
        weights = self.reward_weights.float().cpu()
        if k == weights.numel() + 1:
            weights = torch.cat([weights, torch.ones(1)])
        return weights

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """Generate, score, filter and compute rlvr advantages for one generation batch."""
        batch = self._score_round(inputs)
        mode = "train" if self.model.training else "eval"
        if mode == "train" and self.algo.zero_variance == "refill":
            batch = self._dynamic_sampling(batch)
        return self._finalize(batch, mode)

    def _local_group_has_variance(self, rewards: torch.Tensor) -> torch.Tensor:
        """Bool per local group: True when the group's rewards are not all equal."""
        return ~zero_variance_mask(rewards.view(-1, self.num_generations))

    def _draw_refill_inputs(self, num_groups: int) -> list[dict[str, Any]]:
        """``num_groups`` fresh prompts for this process, each repeated G times (TRL's row layout)."""
        if self._refill_dataset is None:
            # the same column filtering TRL's dataloader applies
            self._refill_dataset = self._remove_unused_columns(self.train_dataset, description="training")
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        needed = num_groups * world
        while len(self._refill_order) < needed:  # one shared stream on every rank (same seed)
            perm = torch.randperm(len(self._refill_dataset), generator=self._refill_generator).tolist()
            self._refill_order.extend(perm)
        take, self._refill_order = self._refill_order[:needed], self._refill_order[needed:]
        mine = take[rank * num_groups : (rank + 1) * num_groups]
        rows = []
        for index in mine:
            row = dict(self._refill_dataset[int(index)])
            rows.extend(dict(row) for _ in range(self.num_generations))
        return rows

    def _dynamic_sampling(self, batch: dict[str, Any]) -> dict[str, Any]:
        """DAPO dynamic sampling: replace zero-variance groups by newly generated ones until full.

        Not possible inside TRL (huggingface/trl#3708 is open): the sampler hands out a fixed
        batch. We draw extra prompts ourselves and run more generation rounds, keeping groups with
        reward variance, at most ``dynamic_sampling_max_rounds`` rounds. The batch keeps its size
        (TRL's buffering splits it into fixed slices): short slots take zero-variance groups,
        which ``_finalize`` masks out of the loss. Every rank runs the same number of rounds (the
        stop decision is all-reduced) because each round has collective ops.
        """
        g = self.num_generations
        n_groups = batch["completion_ids"].size(0) // g
        rounds = [batch]
        keep = [self._local_group_has_variance(batch[REWARDS])]
        first_zero_frac = 1.0 - keep[0].float().mean().item()
        for _ in range(self.args.dynamic_sampling_max_rounds - 1):
            kept = sum(int(k.sum()) for k in keep)
            short = torch.tensor(float(kept < n_groups), device=self.accelerator.device)
            if self.accelerator.gather(short).max().item() == 0:
                break
            extra = self._score_round(self._draw_refill_inputs(n_groups))
            rounds.append(extra)
            keep.append(self._local_group_has_variance(extra[REWARDS]))
        chosen: list[list[int]] = [[] for _ in rounds]
        count = 0
        for r, flags in enumerate(keep):
            for grp in torch.nonzero(flags).flatten().tolist():
                if count < n_groups:
                    chosen[r].append(grp)
                    count += 1
        short_groups = n_groups - count
        for grp in torch.nonzero(~keep[0]).flatten().tolist()[:short_groups]:
            chosen[0].append(grp)
        parts = []
        for r, groups in enumerate(chosen):
            if groups:
                rows = torch.tensor([grp * g + i for grp in sorted(groups) for i in range(g)], dtype=torch.long)
                parts.append(select_rows(rounds[r], rows))
        merged = concat_rows(parts, self._tokenizer.pad_token_id) if len(rounds) > 1 else parts[0]
        self._refill_rounds = len(rounds)  # one round keeps the rows in order (see _report_row_advantages)
        self._log_gathered({
            "algo/refill_rounds": float(len(rounds)),
            "algo/refill_first_round_zero_variance_frac": first_zero_frac,
            "algo/refill_short_groups": float(short_groups),
        }, "train")
        return merged

    def _truncated_rows(self, completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
        """Rows whose completion does not end with EOS or pad (TRL's definition of truncated)."""
        lengths = completion_mask.sum(-1)
        last = completion_ids.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        ends = torch.tensor([*self.eos_token_ids, self._tokenizer.pad_token_id], device=completion_ids.device)
        return (lengths > 0) & ~torch.isin(last, ends)

    @torch.no_grad()
    def _policy_logps(self, batch: dict[str, Any]) -> torch.Tensor:
        """Sampling-policy log-probs of the completion tokens (one no-grad forward)."""
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        logps, _, _ = self._get_per_token_logps_and_entropies(
            self.model, input_ids, attention, batch["completion_ids"].size(1),
            batch_size=self.args.per_device_train_batch_size,
        )
        return logps

    def _critic_values(self, batch: dict[str, Any], grad: bool) -> torch.Tensor:
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        with torch.set_grad_enabled(grad), self.accelerator.autocast():
            return self.value_model(input_ids, attention, batch["completion_ids"].size(1))

    def _gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """All ranks' rows of a [B, T] tensor (padded on T), in rank order."""
        return self.accelerator.gather(self.accelerator.pad_across_processes(t, dim=1, pad_index=0))

    def _finalize(self, batch: dict[str, Any], mode: str) -> dict[str, Any]:
        """Filters, KL-in-reward, critic values and advantages for the final batch (all ranks)."""
        cfg, g, acc = self.algo, self.num_generations, self.accelerator
        rewards = batch.pop(REWARDS).float()
        components = batch.pop(REWARD_COMPONENTS, None)
        completion_ids, completion_mask = batch["completion_ids"], batch["completion_mask"]
        mask = completion_mask.bool()
        if batch.get("tool_mask") is not None:
            mask = mask & batch["tool_mask"].bool()
        truncated = self._truncated_rows(completion_ids, completion_mask)
        metrics: dict[str, float] = {}
        if cfg.overlong_mask:
            mask = mask_truncated_completions(mask, truncated)
            metrics["algo/overlong_masked_frac"] = float(truncated.float().mean())
        mask = mask & torch.isfinite(rewards).unsqueeze(1)  # unscorable completions teach nothing

        all_rewards = acc.gather(rewards)
        all_components = acc.gather(components.float()) if components is not None else None
        zero_var = zero_variance_mask(all_rewards.view(-1, g))
        metrics["algo/zero_variance_frac"] = float(zero_var.float().mean())  # already global
        n = rewards.size(0)
        rows = slice(acc.process_index * n, (acc.process_index + 1) * n)
        if cfg.zero_variance in ("drop", "refill"):
            dropped = zero_var.repeat_interleave(g)
            all_rewards = torch.where(dropped, torch.nan, all_rewards)
            if all_components is not None:
                all_components = torch.where(dropped.unsqueeze(1), torch.nan, all_components)
            mask = mask & ~dropped[rows].unsqueeze(1)
            metrics["algo/dropped_groups_frac"] = float(zero_var.float().mean())

        kl_in_reward = cfg.kl_placement == "reward" and cfg.needs_ref
        logp = ref = values = None
        if kl_in_reward:
            logp = batch.get("old_per_token_logps")
            logp = self._policy_logps(batch) if logp is None else logp
            ref = batch["ref_per_token_logps"]
        if cfg.needs_value_model:
            values = self._critic_values(batch, grad=False).float()
        width = mask.size(1)
        gathered = {k: self._gather_rows(v.float()) for k, v in (("logp", logp), ("ref", ref), ("values", values))
                    if v is not None}
        all_mask = self._gather_rows(mask.long()).bool()
        if all_components is not None:  # GDPO: each component is normalised within its group first
            k = all_components.size(1)
            reward_input = all_components.view(-1, g, k)
            weights = self._component_weights(k).to(reward_input)
        else:
            reward_input, weights = all_rewards.view(-1, g), None
        advantages, returns = compute_token_advantages(
            reward_input, all_mask, cfg,
            logp=gathered.get("logp"), ref_logp=gathered.get("ref"), values=gathered.get("values"),
            weights=weights,
        )
        batch["advantages"] = advantages[rows, :width].contiguous()
        batch[LOSS_MASK] = mask.long()
        if cfg.needs_value_model:
            batch[OLD_VALUES] = values
            batch[RETURNS] = returns[rows, :width].contiguous()
        if kl_in_reward:
            kl_tok = logp - ref
            metrics["algo/kl_in_reward_k1"] = float((kl_tok * mask).sum() / mask.sum().clamp(min=1))
        self._replace_logged_advantages(advantages, all_mask)
        if mode == "train":
            self._report_row_advantages(advantages, all_mask)
        self._log_gathered(metrics, mode, already_global={"algo/zero_variance_frac", "algo/dropped_groups_frac"})
        return batch

    def _replace_logged_advantages(self, advantages: torch.Tensor, mask: torch.Tensor) -> None:
        """Show our advantages (mean over each completion's loss tokens) in TRL's completions table."""
        logged, num_rows = self._logs["advantages"], mask.size(0)
        # With dynamic sampling the table holds the last generation round, not the merged batch,
        # so the rows would not line up: leave TRL's entries alone then.
        if not self.log_completions or self.algo.zero_variance == "refill" or len(logged) < num_rows:
            return
        per_row = (advantages * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        for _ in range(num_rows):
            logged.pop()
        logged.extend(per_row.tolist())

    def _report_row_advantages(self, advantages: torch.Tensor, mask: torch.Tensor) -> None:
        """Hand ``advantage_hook`` each gathered row's advantage (the completions table's value).

        Row i of the gathered batch is the i-th episode the rollout function played on rank 0 this
        step, so the run's sample rollouts can carry it. Rows without a loss token (masked, dropped
        zero-variance groups) get None. When dynamic sampling needed a second generation round the
        batch is merged from several rounds and no longer lines up with the first round's
        episodes: None is passed then.
        """
        if self.advantage_hook is None or not self.accelerator.is_main_process:
            return
        step = int(self.state.global_step) + 1
        if self.algo.zero_variance == "refill" and getattr(self, "_refill_rounds", 1) > 1:
            self.advantage_hook(step, None)
            return
        counts = mask.sum(-1)
        per_row = (advantages * mask).sum(-1) / counts.clamp(min=1)
        self.advantage_hook(step, [float(a) if c > 0 and math.isfinite(a) else None
                                   for a, c in zip(per_row.tolist(), counts.tolist())])

    # ------------------------------------------------------------------ batching
    def _prepare_inputs(self, generation_batch: Any) -> dict[str, Any]:
        """TRL's buffering, with group-preserving shuffles and global per-step loss-unit counts."""
        mode = "train" if self.model.training else "eval"
        if mode == "eval":
            batch = self._generate_and_score_completions(generation_batch)
            units, tokens = self._local_counts(batch)
            totals = self.accelerator.reduce(torch.stack([units, tokens]), reduction="sum")
            batch[STEP_UNITS], batch[STEP_TOKENS] = totals[0], totals[1]
            return batch
        spg = self.args.steps_per_generation
        generate_every = spg * self.num_iterations
        if self._step % generate_every == 0 or self._buffered_inputs is None:
            batch = self._generate_and_score_completions(generation_batch)
            batch = split_pixel_values_by_grid(batch)
            if self.args.per_device_train_batch_size % self.num_generations == 0:
                batch = shuffle_groups(batch, self.num_generations)
            else:  # groups cannot stay whole inside a micro-batch anyway
                batch = shuffle_sequence_dict(batch)
            slices = [unsplit_pixel_values_by_grid(b) for b in split_tensor_dict(batch, spg)]
            self._attach_step_counts(slices)
            self._buffered_inputs = slices
        return self._buffered_inputs[self._step % spg]

    def _local_counts(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = batch[LOSS_MASK]
        units = count_loss_units(mask, self.algo, group_size=self.num_generations
                                 if self.algo.aggregation == "prompt_mean" else None)
        device = self.accelerator.device
        return torch.tensor(float(units), device=device), mask.sum().float().to(device)

    def _attach_step_counts(self, slices: list[dict[str, Any]]) -> None:
        """Give every micro-batch the global unit/token counts of the optimiser step it belongs to.

        When ``steps_per_generation`` is a multiple of gradient accumulation, a step is exactly
        ``GA`` consecutive slices and the counts are exact. Otherwise a step spans generation
        batches not yet sampled, and we scale this batch's count by ``GA / steps_per_generation``
        (the approximation TRL's own ``dapo`` loss makes).
        """
        local = torch.stack([torch.stack(self._local_counts(s)) for s in slices])  # [spg, 2]
        totals = self.accelerator.reduce(local, reduction="sum")
        ga, spg = self.args.gradient_accumulation_steps, len(slices)
        if spg % ga == 0:
            per_step = totals.view(spg // ga, ga, 2).sum(1)
            for j, s in enumerate(slices):
                s[STEP_UNITS], s[STEP_TOKENS] = per_step[j // ga, 0], per_step[j // ga, 1]
        else:
            approx = totals.sum(0) * ga / spg
            for s in slices:
                s[STEP_UNITS], s[STEP_TOKENS] = approx[0], approx[1]

    # ------------------------------------------------------------------ loss
    def _compute_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        """rlvr policy loss (+ critic loss), scaled so summing micro-batches and averaging ranks is exact."""
        cfg = self.algo
        mode = "train" if self.model.training else "eval"
        prompt_ids, completion_ids = inputs["prompt_ids"], inputs["completion_ids"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
            pixel_values=inputs.get("pixel_values"), image_grid_thw=inputs.get("image_grid_thw"),
            num_images=inputs.get("num_images"), pixel_attention_mask=inputs.get("pixel_attention_mask"),
            spatial_shapes=inputs.get("spatial_shapes"), num_tiles=inputs.get("num_tiles"),
            image_sizes=inputs.get("image_sizes"), token_type_ids=inputs.get("token_type_ids"),
            mm_token_type_ids=inputs.get("mm_token_type_ids"), image_position_ids=inputs.get("image_position_ids"),
        )
        mask = inputs[LOSS_MASK].bool()
        old = inputs.get("old_per_token_logps")
        rollout = None
        if cfg.needs_rollout_logp:
            # The engine's log-probs when a rollout_func returned them; with TRL's own generate the
            # sampler *is* the trainer's model at the old weights, so old_logp (or, on-policy, the
            # current log-probs, i.e. None) is the exact rollout anchor.
            rollout = inputs.get("sampling_per_token_logps")
            rollout = old if rollout is None else rollout
        ref = inputs.get("ref_per_token_logps") if cfg.kl_placement == "loss" else None
        world = self.accelerator.num_processes
        loss, metrics = policy_loss(
            logps, inputs["advantages"], mask, cfg, old_logp=old, rollout_logp=rollout, ref_logp=ref,
            group_size=self.num_generations, max_completion_length=self.max_completion_length,
            normalizer=inputs[STEP_UNITS], entropy=entropies if cfg.needs_entropy else None,
        )
        # DDP averages gradients over ranks; the normalizer is global, so scale back to a sum.
        loss = loss * world
        if cfg.needs_value_model:
            values = self._critic_values(inputs, grad=mode == "train")
            v_loss, v_metrics = value_loss(
                values, inputs[RETURNS], mask, old_values=inputs[OLD_VALUES], clip_range=cfg.value_clip,
                normalizer=inputs[STEP_TOKENS],
            )
            loss = loss + cfg.vf_coef * v_loss * world
            metrics.update({f"value/{k}": v for k, v in v_metrics.items()})
        if self.aux_loss_enabled:
            ga = self._accumulation_steps() if mode == "train" else 1
            loss = loss + self.router_aux_loss_coef * aux_loss / ga
        with torch.no_grad():
            entropy = float((entropies * mask).sum() / mask.sum().clamp(min=1))
        # Loss metrics of one micro-batch are its share of the step's loss (global normalizer):
        # scale them so the mean TRL logs over micro-batches and ranks is the whole step's value.
        share = world * (self._accumulation_steps() if mode == "train" else 1)
        for key in PARTIAL_METRICS:
            if key in metrics:
                metrics[key] *= share
        logged = {k if "/" in k else f"algo/{k}": v for k, v in metrics.items()
                  if k not in ("loss", "num_tokens", "num_sequences")}
        self._log_gathered({**logged, "entropy": entropy}, mode)
        return loss

    def _accumulation_steps(self) -> int:
        # Trainer sets current_gradient_accumulation_steps inside train(); outside it, the config's
        return getattr(self, "current_gradient_accumulation_steps", None) or self.args.gradient_accumulation_steps

    # ------------------------------------------------------------------ critic optimiser
    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        """TRL's step; at optimiser-step boundaries also clip and step the PPO critic."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.value_optimizer is not None and self.accelerator.sync_gradients:
            params = [p for p in self.value_model.parameters() if p.grad is not None]
            if params and self.args.max_grad_norm and self.args.max_grad_norm > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, self.args.max_grad_norm)
                self._metrics["train"]["value/grad_norm"].append(float(norm))
            self.value_optimizer.step()
            self.value_optimizer.zero_grad(set_to_none=True)
        return loss

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.value_model is not None and self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            critic = self.accelerator.unwrap_model(self.value_model)
            torch.save({"model": critic.state_dict(), "optimizer": self.value_optimizer.state_dict()},
                       os.path.join(folder, "value_model.pt"))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if self.value_model is not None and checkpoint is not None:
            path = os.path.join(checkpoint, "value_model.pt")
            if os.path.exists(path):
                state = torch.load(path, map_location=self.accelerator.device, weights_only=True)
                self.accelerator.unwrap_model(self.value_model).load_state_dict(state["model"])
                self.value_optimizer.load_state_dict(state["optimizer"])

    # ------------------------------------------------------------------ metrics
    def _log_gathered(self, metrics: dict[str, float], mode: str, already_global: set[str] = frozenset()) -> None:
        """Average per-rank floats over ranks (one collective) into TRL's metric buffers."""
        if not metrics:
            return
        keys = sorted(metrics)
        local = torch.tensor([metrics[k] for k in keys], dtype=torch.float32, device=self.accelerator.device)
        mean = self.accelerator.gather(local.unsqueeze(0)).mean(0)
        for i, k in enumerate(keys):
            self._metrics[mode][k].append(metrics[k] if k in already_global else float(mean[i]))


__all__ = ["RLVRTrainer"]
