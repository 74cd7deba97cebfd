"""rlvr.trainer.engine: fast batched rollouts from a live Hugging Face causal LM.

``RolloutEngine(model, tokenizer, max_batch=64, max_seq_len=1024).generate(prompt_ids, params)``
returns one ``Completion`` (token ids, text, log-probs, finish reason) per prompt. A pre-allocated
per-slot KV cache, a decode step captured as a CUDA graph on GPUs, on-device sampling and
continuous refill of finished slots make it several times faster than ``model.generate``;
greedy decoding gives exactly ``model.generate``'s tokens. ``generate_for_trl`` and
``make_rollout_func`` plug it into TRL's ``GRPOTrainer``.
"""

from .engine import RolloutEngine
from rlvr.envs.generation import Completion, SamplingParams
from .trl_rollout import generate_for_trl, make_rollout_func, sampling_params_from_trl

__all__ = [
    "RolloutEngine",
    "SamplingParams",
    "Completion",
    "generate_for_trl",
    "make_rollout_func",
    "sampling_params_from_trl",
]
