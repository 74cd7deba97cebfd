"""rlvr.trainer.trl: everything that touches TRL, in one place (pinned: ``trl==1.16.0``).

* ``config``: ``RLVRConfig`` (a ``GRPOConfig`` plus the algorithm fields and fast-path switches).
* ``trainer``: ``RLVRTrainer`` (a ``GRPOTrainer`` whose loss, advantages and batching come from
  ``rlvr.trainer.algorithms``), with ``batching`` (row slicing of TRL's batch dicts) and
  ``value_head`` (the PPO critic).
* ``fast_paths``: the rollout engine in place of ``model.generate`` (``engine``), padding-free
  log-prob forwards (``logprobs``), skipped old-log-prob forwards.
* ``rollout_func``: environment episodes as TRL's ``rollout_func`` and their reward function.
* ``sampling``: ``SamplingParams`` from a ``GRPOConfig``; ``vllm_sync``: weights pushed to a vLLM
  server through TRL's ``VLLMClient``.

What we rely on that TRL does not promise (``tests/trainer/test_trl_contract.py`` checks each
against the installed TRL with ``inspect``, so an upgrade fails there, not deep inside a run):

``GRPOTrainer`` methods we override (same signature as TRL's):
    ``_generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False)``,
    ``_get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, batch_size=None, ...)``,
    ``_generate_and_score_completions(inputs)``, ``_calculate_rewards(inputs, prompts, completions,
    completion_ids_list)``, ``_prepare_inputs(generation_batch)``, ``_compute_loss(model, inputs)``,
    ``_save_checkpoint(model, trial)``, ``_load_optimizer_and_scheduler(checkpoint)``.
Private methods we call: ``Trainer._remove_unused_columns(dataset, description)``,
    ``Trainer._get_output_dir(trial)``.
Private attributes we read or write: ``GRPOTrainer._step``, ``._buffered_inputs``, ``._metrics``,
    ``._logs``, ``._tokenizer``, ``._dist`` (the FSDP helper, when sharded).
Module internals: ``trl.trainer.grpo_trainer.create_model_from_path`` (swapped once while the
    reference model is built), ``trl.trainer.utils.shuffle_sequence_dict`` / ``split_tensor_dict`` /
    ``split_pixel_values_by_grid`` / ``unsplit_pixel_values_by_grid``, ``trl.kernels.ChunkedLogProbFunction``,
    ``trl.models.unwrap_model_for_generation``, ``trl.generation.vllm_client.VLLMClient``,
    ``trl.import_utils.is_vllm_available``.
The ``rollout_func`` contract (prompts arrive repeated ``num_generations`` times; extra keys reach
the reward functions; ``env_mask`` becomes ``tool_mask``) is described in ``rollout_func``.

Importing this package imports neither TRL nor torch; its modules do.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RLVRConfig": "rlvr.trainer.trl.config",
    "RLVRTrainer": "rlvr.trainer.trl.trainer",
    "ValueModel": "rlvr.trainer.trl.value_head",
    "EnvRollouts": "rlvr.trainer.trl.rollout_func",
    "make_env_reward": "rlvr.trainer.trl.rollout_func",
    "build_train_dataset": "rlvr.trainer.trl.rollout_func",
    "sampling_params_from_trl": "rlvr.trainer.trl.sampling",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlvr.trainer.trl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
