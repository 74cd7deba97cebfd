"""rlvr.trainer.engine: fast batched rollouts from a live Hugging Face causal LM.

``RolloutEngine(model, tokenizer, max_batch=64, max_seq_len=1024).generate(prompt_ids, params)``
returns one ``Completion`` (token ids, text, log-probs, finish reason) per prompt. A pre-allocated
per-slot KV cache, a decode step captured as a CUDA graph on GPUs, on-device sampling and
continuous refill of finished slots make it several times faster than ``model.generate``;
greedy decoding gives exactly ``model.generate``'s tokens. ``SamplingParams`` and ``Completion``
are rlvr's one pair of generation types (``rlvr.envs.generation``), re-exported here. The engine
reaches TRL through ``rlvr.trainer.trl`` (``RLVRConfig.rollout_engine`` and the environment
rollouts' ``generation.backend``).
"""

from rlvr.envs.generation import Completion, SamplingParams

from .engine import RolloutEngine

__all__ = ["RolloutEngine", "SamplingParams", "Completion"]
