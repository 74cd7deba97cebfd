"""The rollout engine behind ``RLVRTrainer``'s own generation (``RLVRConfig.rollout_engine``).

TRL 1.16 generates with ``model.generate`` (Python-bound: ~11 s of an 11.5 s GRPO step for 64 x 256
tokens of a 0.5B model, measured on an H100). ``TrainerEngine`` puts a ``RolloutEngine`` in its
place for ``GRPOTrainer._generate_single_turn``: same prompts in, same completions out (EOS
included, nothing after it), plus the engine's log-probs of the sampled tokens, which TRL keeps as
``sampling_per_token_logps`` (the rollout anchor of DPPO/ScaleRL and rollout correction).

The engine reads the live weights of the trainer's (unwrapped) model, so every optimiser step is
seen by the next rollout without a copy or a sync. It is built on first use and rebuilt with a
larger KV cache when a longer prompt arrives. ``engine_blockers`` lists what rules the engine out
for a trainer (vLLM, a ``rollout_func``, sharded weights, sampling knobs it lacks, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from rlvr.errors import ConfigError, InputError
from rlvr.validate import positive_int
from rlvr.trainer.engine import RolloutEngine, SamplingParams
from rlvr.trainer.engine.arch import inspect_model
from rlvr.trainer.trl.sampling import sampling_params_from_trl

logger = logging.getLogger(__name__)

# KV-cache positions are rounded up to this, so prompts a little longer than the last batch's do
# not rebuild the engine (and re-capture its CUDA graph) every step.
POSITION_STEP = 64
# Default slot count cap: each slot holds a whole sequence's keys/values.
MAX_DEFAULT_SLOTS = 256


def engine_sampling_params(args: Any, eos_token_ids: Sequence[int]) -> SamplingParams:
    """``SamplingParams`` equal to TRL's generation settings; stops on exactly TRL's EOS ids.

    Raises ``ConfigError`` for settings the engine does not implement (``min_p``,
    ``repetition_penalty``, ``generation_kwargs``).
    """
    return sampling_params_from_trl(args, stop_token_ids=tuple(int(e) for e in eos_token_ids), ignore_eos=True)


def engine_blockers(trainer: Any) -> list[str]:
    """Why the rollout engine cannot generate for ``trainer`` (a GRPOTrainer); empty when it can."""
    args, reasons = trainer.args, []
    if args.use_vllm:
        reasons.append("use_vllm=True generates with vLLM")
    if getattr(args, "use_transformers_continuous_batching", False):
        reasons.append("use_transformers_continuous_batching=True picks transformers' generate_batch")
    if trainer.rollout_func is not None:
        reasons.append("a rollout_func does its own generation (rlvr's environment rollouts pick their backend "
                       "with generation.backend)")
    if getattr(trainer, "_is_vlm", False):
        reasons.append("vision-language models are not supported by the engine")
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        reasons.append("DeepSpeed/FSDP shard the weights, and the engine needs them whole on each process")
    if hasattr(trainer.model, "peft_config"):
        reasons.append("PEFT adapters are not supported by the engine")
    try:
        engine_sampling_params(args, trainer.eos_token_ids)
    except ConfigError as exc:
        reasons.append(str(exc))
    if not reasons:
        try:
            inspect_model(trainer.model, 2)
        except ConfigError as exc:
            reasons.append(str(exc))
    return reasons


def engine_dtype(model: Any, args: Any) -> torch.dtype:
    """The dtype the policy computes in during training: the autocast dtype, else its weights' dtype.

    Weights are counted by size, so an FP32 LM head on a bf16 model still means bf16.
    """
    if getattr(args, "bf16", False):
        return torch.bfloat16
    if getattr(args, "fp16", False):
        return torch.float16
    sizes: dict[torch.dtype, int] = {}
    for p in model.parameters():
        if p.is_floating_point():
            sizes[p.dtype] = sizes.get(p.dtype, 0) + p.numel()
    return max(sizes, key=sizes.__getitem__)


class TrainerEngine:
    """A ``RolloutEngine`` over a trainer's live model, sized on first use and grown on demand.

    Args:
        model: the unwrapped policy (weights are read in place, never copied).
        tokenizer: the trainer's tokenizer (completion text is decoded by TRL, not here).
        slots: sequences decoded together; more prompts than slots queue and refill freed slots.
        dtype: compute and KV-cache dtype (``engine_dtype``).
    """

    def __init__(self, model: Any, tokenizer: Any, *, slots: int, dtype: torch.dtype) -> None:
        positive_int("rollout_engine_slots", slots)
        self.model = model
        self.tokenizer = tokenizer
        self.slots = int(slots)
        self.dtype = dtype
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.max_positions: int | None = getattr(config, "max_position_embeddings", None)
        self.engine: RolloutEngine | None = None

    def _ensure(self, need: int) -> RolloutEngine:
        if self.engine is not None and self.engine.max_seq_len >= need:
            return self.engine
        positions = -(-need // POSITION_STEP) * POSITION_STEP
        if self.max_positions is not None:
            positions = min(positions, self.max_positions)
        if self.engine is not None:
            logger.info("rollout engine: growing the KV cache from %d to %d positions", self.engine.max_seq_len,
                        positions)
            self.engine.release()
        self.engine = RolloutEngine(self.model, self.tokenizer, max_batch=self.slots, max_seq_len=positions,
                                    dtype=self.dtype)
        return self.engine

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Completion token ids and their log-probs for each prompt (TRL's ``_generate_single_turn`` result)."""
        if not prompt_ids:
            return [], []
        longest = max(len(p) for p in prompt_ids)
        if self.max_positions is not None and longest >= self.max_positions:
            raise InputError(f"a prompt of {longest} tokens leaves no room in the model's {self.max_positions} "
                             "positions; shorten the prompts")
        engine = self._ensure(longest + params.max_new_tokens)
        completions = engine.generate([list(p) for p in prompt_ids], params)
        return [c.token_ids for c in completions], [c.logprobs for c in completions]

    def release(self) -> None:
        """Free the KV cache and CUDA graphs (rebuilt on the next ``generate``)."""
        if self.engine is not None:
            self.engine.release()
            self.engine = None


__all__ = ["TrainerEngine", "engine_blockers", "engine_dtype", "engine_sampling_params"]
