"""``RLVRConfig``: TRL's ``GRPOConfig`` plus the algorithm, as a preset name and overrides.

Everything about the loss and the advantages comes from one ``AlgorithmConfig``
(``rlvr.trainer.algorithms``), built here from ``algorithm`` + ``algorithm_overrides`` and
validated at construction. TRL's own loss switches (``loss_type``, ``scale_rewards``,
``epsilon``, ``beta``, ...) are *not* read by ``RLVRTrainer``; setting one of them raises a
``ConfigError`` that names the ``algorithm_overrides`` key to use instead, so no setting is ever
silently ignored. Generation, batching, optimiser and logging fields keep their TRL meaning.

The fast paths are fields too: ``rollout_engine`` (rlvr's RolloutEngine instead of
``model.generate``; on by default on CUDA), ``chunked_logprobs`` / ``logprob_batch_tokens``
(padding-free, length-bucketed log-prob forwards through a tiled LM head), and TRL's own
``gradient_checkpointing``, ``bf16`` and ``cast_lm_head_to_fp32`` (FP32 LM head), which both
paths honour. Old log-probs get their own forward only when samples are reused across optimiser
steps *and* the algorithm reads them (``AlgorithmConfig.needs_old_logp``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig

from rlvr.errors import ConfigError
from rlvr.validate import positive_int
from rlvr.trainer.algorithms import PRESETS, AlgorithmConfig, preset
from rlvr.trainer.trl.engine import MAX_DEFAULT_SLOTS, engine_sampling_params

logger = logging.getLogger(__name__)

# transformers >= 5.2x renamed gradient_checkpointing -> activation_checkpointing and warns on
# every read of the old name, which TRL 1.16's GRPOTrainer still reads on each step; the user
# cannot act on it (our config keeps TRL's documented name), so these two warnings are muted.
warnings.filterwarnings("ignore", message=r"`(is_)?gradient_checkpointing\w*` is deprecated", category=FutureWarning)

# TRL loss/advantage knobs RLVRTrainer replaces -> the AlgorithmConfig field(s) that do the job
# (a parenthesised entry means there is no rlvr equivalent to point to).
REPLACED_TRL_FIELDS: dict[str, str] = {
    "loss_type": "aggregation",
    "scale_rewards": "scale",
    "epsilon": "clip_eps_low",
    "epsilon_high": "clip_eps_high",
    "delta": "dual_clip",
    "importance_sampling_level": "ratio_level",
    "beta": "kl_coef",
    "use_bias_correction_kl": "kl_estimator",
    "sapo_temperature_pos": "sapo_tau_pos",
    "sapo_temperature_neg": "sapo_tau_neg",
    "vespo_k_pos": "(VESPO is not an rlvr trust region)",
    "vespo_k_neg": "(VESPO is not an rlvr trust region)",
    "vespo_lambda_pos": "(VESPO is not an rlvr trust region)",
    "vespo_lambda_neg": "(VESPO is not an rlvr trust region)",
    "off_policy_mask_threshold": "trust_region",
    "top_entropy_quantile": "(no entropy token selection in RLVRTrainer)",
    "entropy_coef": "(no entropy bonus in RLVRTrainer)",
    "use_adaptive_entropy": "(no entropy bonus in RLVRTrainer)",
    "mask_truncated_completions": "overlong_mask",
    "multi_objective_aggregation": "(RLVRTrainer sums the weighted reward functions, then normalises)",
}

_GRPO_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}


@dataclass
class RLVRConfig(GRPOConfig):
    """Training configuration: every ``GRPOConfig`` field plus the policy-gradient algorithm.

    Example::

        RLVRConfig(output_dir="out", algorithm="dapo",
                   algorithm_overrides={"clip_eps_high": 0.3, "overlong_max_length": 256,
                                        "overlong_buffer": 64})

    After construction ``config.algorithm_config`` holds the validated ``AlgorithmConfig``.
    """

    _VALID_DICT_FIELDS = GRPOConfig._VALID_DICT_FIELDS + ["algorithm_overrides"]

    algorithm: str = field(
        default="grpo",
        metadata={
            "help": "Policy-gradient algorithm preset: one of "
            + ", ".join(sorted(PRESETS))
            + ". Each is a set of AlgorithmConfig values (see rlvr.trainer.algorithms.presets)."
        },
    )
    algorithm_overrides: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "AlgorithmConfig fields that replace the preset's values, e.g. "
            '{"clip_eps_high": 0.28, "kl_coef": 0.0}. A JSON string is accepted (command line). '
            "Unknown names fail with a did-you-mean."
        },
    )
    dynamic_sampling_max_rounds: int = field(
        default=4,
        metadata={
            "help": "With zero_variance='refill' (DAPO dynamic sampling): at most this many generation rounds "
            "per batch. If the batch still lacks groups with reward variance, the remaining slots are filled "
            "with zero-variance groups that are masked out of the loss (logged as algo/refill_short_groups)."
        },
    )
    value_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the PPO critic (algorithms with baseline='gae'). None = learning_rate. "
            "The critic has its own AdamW optimiser, stepped with the policy's."
        },
    )

    # ---- fast paths (stock TRL spent ~11 of 11.5 s per step in model.generate on an H100) ----
    rollout_engine: bool | None = field(
        default=None,
        metadata={
            "help": "Generate with rlvr's RolloutEngine (pre-allocated KV cache, CUDA-graph decode steps, on-device "
            "sampling, continuous refill) instead of TRL's model.generate: ~7x faster generation on a GPU, same "
            "sampling settings, and the engine's log-probs kept as the rollout anchor. It reads the live weights, "
            "so each optimiser step is seen by the next rollout. None (default) = on when training on CUDA and "
            "the setup allows it (no vLLM, rollout_func, DeepSpeed/FSDP, PEFT, vision model, min_p, "
            "repetition_penalty or generation_kwargs; a supported model family), else TRL's generate; on CPU the "
            "engine is slower than generate, so None keeps generate there. True = always (a ConfigError says why "
            "when it cannot), False = never."
        },
    )
    rollout_engine_slots: int | None = field(
        default=None,
        metadata={
            "help": "Sequences the rollout engine decodes together (each slot holds one sequence's KV cache). "
            f"None = the rows of one generation call (per_device_train_batch_size x steps_per_generation), at most "
            f"{MAX_DEFAULT_SLOTS}; more prompts than slots queue and take over slots as sequences finish."
        },
    )
    chunked_logprobs: bool = field(
        default=True,
        metadata={
            "help": "Compute per-token log-probs (training loss, old and reference log-probs) with "
            "rlvr.trainer.trl.logprobs: padding stripped, rows length-bucketed and right-padded per bucket (no "
            "attention mask, so flash attention stays on), and the LM head run in tiles through TRL's fused head "
            "(never the full [tokens, vocab] logits). Positions count from 0 at each row's first real token, as "
            "in generation. False = TRL's _get_per_token_logps_and_entropies on the padded batch. The FP32 LM "
            "head is TRL's cast_lm_head_to_fp32; activation memory is traded for compute by gradient_checkpointing."
        },
    )
    logprob_batch_tokens: int = field(
        default=32768,
        metadata={
            "help": "With chunked_logprobs: most padded tokens per log-prob forward. Rows are grouped by length "
            "within this budget, so short rows are not padded to the longest one; it also bounds the activation "
            "memory of the no-grad forwards (old and reference log-probs)."
        },
    )

    def __post_init__(self) -> None:
        self.algorithm_config: AlgorithmConfig = preset(self.algorithm, **self._parse_overrides())
        # TRL's knobs are checked against the GRPOConfig defaults before super() normalises them.
        self._check_replaced_fields()
        super().__post_init__()
        self._check_algorithm_fits()
        self._check_fast_paths()
        cfg = self.algorithm_config
        # TRL computes reference log-probs exactly when beta != 0; RLVRTrainer owns the KL term,
        # so beta is only the switch that makes TRL provide ref_per_token_logps.
        self.beta = cfg.kl_coef if cfg.needs_ref else 0.0

    def _parse_overrides(self) -> dict[str, Any]:
        overrides = self.algorithm_overrides or {}
        if isinstance(overrides, str):  # from the command line
            try:
                overrides = json.loads(overrides)
            except json.JSONDecodeError as exc:
                raise ConfigError("algorithm_overrides", f"is not valid JSON ({exc})") from exc
        if not isinstance(overrides, dict):
            raise ConfigError("algorithm_overrides", f"must be a dict, got {type(overrides).__name__}")
        self.algorithm_overrides = dict(overrides)
        return self.algorithm_overrides

    def _check_replaced_fields(self) -> None:
        for name, replacement in REPLACED_TRL_FIELDS.items():
            value, default = getattr(self, name), _GRPO_DEFAULTS[name]
            if name == "scale_rewards" and value in (True, "group"):
                continue
            if name == "beta" and value == self.algorithm_config.kl_coef:
                continue  # the value __post_init__ derives itself (re-running it must not fail)
            if value != default:
                fix = (
                    f"leave it at its default {replacement}"
                    if replacement.startswith("(")
                    else f"leave it at its default and set algorithm_overrides[{replacement!r}] instead"
                )
                raise ConfigError(
                    name, f"is a GRPOTrainer loss setting that RLVRTrainer does not read (got {value!r})", fix
                )

    def _check_fast_paths(self) -> None:
        if self.rollout_engine_slots is not None:
            positive_int("rollout_engine_slots", self.rollout_engine_slots,
                         fix="leave it None to size the engine from the generation batch")
        positive_int("logprob_batch_tokens", self.logprob_batch_tokens)
        if self.rollout_engine is not True:
            return
        for name, what in (("use_vllm", "vLLM"), ("use_transformers_continuous_batching", "transformers' generate_batch")):
            if getattr(self, name, False):
                raise ConfigError("rollout_engine", f"is True but {name}=True asks for {what}",
                                  f"set {name}=False, or rollout_engine=False")
        engine_sampling_params(self, eos_token_ids=())  # ConfigError naming min_p / repetition_penalty / ...

    def _check_algorithm_fits(self) -> None:
        cfg, g = self.algorithm_config, self.num_generations
        positive_int("dynamic_sampling_max_rounds", self.dynamic_sampling_max_rounds)
        if self.value_learning_rate is not None and self.value_learning_rate <= 0:
            raise ConfigError("value_learning_rate", f"must be > 0, got {self.value_learning_rate}")
        local_rows = self.per_device_train_batch_size * self.steps_per_generation
        if cfg.aggregation == "prompt_mean" and self.per_device_train_batch_size % g:
            raise ConfigError(
                "per_device_train_batch_size",
                f"prompt_mean aggregation needs whole prompt groups in every micro-batch, but "
                f"{self.per_device_train_batch_size} is not a multiple of num_generations={g}",
                f"use a multiple of {g}",
            )
        if cfg.zero_variance == "refill" and local_rows % g:
            raise ConfigError(
                "per_device_train_batch_size",
                f"dynamic sampling swaps whole prompt groups, but a process's generation batch of "
                f"{local_rows} rows is not a multiple of num_generations={g}",
                f"use per_device_train_batch_size * steps_per_generation divisible by {g}",
            )
        if cfg.overlong_penalty:
            max_len = cfg.overlong_max_length or self.max_completion_length
            if cfg.overlong_buffer > max_len:
                raise ConfigError(
                    "algorithm_overrides",
                    f"overlong_buffer={cfg.overlong_buffer} is longer than the overlong limit {max_len}",
                    "set algorithm_overrides['overlong_buffer'] below overlong_max_length / max_completion_length",
                )
            if max_len - cfg.overlong_buffer >= self.max_completion_length:
                logger.warning(
                    "the overlong penalty starts at %d tokens but completions stop at max_completion_length=%d, "
                    "so it never applies; set algorithm_overrides['overlong_max_length'] to use it",
                    max_len - cfg.overlong_buffer, self.max_completion_length,
                )


__all__ = ["RLVRConfig", "REPLACED_TRL_FIELDS"]
