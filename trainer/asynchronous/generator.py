"""The generator process: plays whole groups of episodes with the latest weights, forever.

Spawned by ``AsyncGenerator`` with ``torch.multiprocessing`` (spawn: no CUDA or thread state is
inherited). It builds its own copy of the policy from the model's config, follows the trainer's
``SharedWeights`` between decode steps, and serves ``Order``s in the order they arrive: wait until
the weights are at least the order's ``min_version`` (that is what bounds staleness by
construction), play the order's episodes with the rlvr episode runner, and put a ``Produced``
(episodes, per-token versions, timings) on the results queue. It exits when asked, and on its
own when the trainer process disappears (a SIGKILLed run leaves no orphan sampling).
"""

from __future__ import annotations

import logging
import os
import queue
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from rlvr.envs.generation import SamplingParams

logger = logging.getLogger(__name__)

# Seconds between checks of the stop flag and the parent while idle.
POLL_S = 0.05


@dataclass
class GeneratorSpec:
    """Everything the generator process needs to rebuild the policy and play episodes."""

    model_config: Any
    generation_config: Any
    tokenizer: Any
    chat_template: str | None
    entries: list[Any]
    params: SamplingParams
    max_new_tokens: int
    max_completion_length: int
    max_turns: int
    env_workers: int
    max_batch: int
    max_seq_len: int
    threads: int = 1
    seed: int = 0
    parent_pid: int = 0
    # The trainer computes head logits in float32 over half-precision weights (TRL's
    # cast_lm_head_to_fp32): the generator must too, or its behaviour log-probs differ from the trainer's.
    fp32_lm_head: bool = False


@dataclass
class Order:
    """Play ``keys`` (task keys, ``G`` consecutive copies per group) once the weights reach ``min_version``."""

    oid: int
    step: int
    keys: list[str]
    min_version: int


@dataclass
class Produced:
    """What one order produced: episodes in key order, per-token versions, and how the time went."""

    oid: int
    step: int
    episodes: list[Any]
    token_versions: list[list[int]]
    generate_s: float
    busy_s: float = 0.0  # generator totals since it started, for idle fractions
    idle_s: float = 0.0
    weight_updates: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failure:
    """The generator hit an error it cannot recover from (bad environment config, ...)."""

    message: str


def _parent_gone(spec: GeneratorSpec) -> bool:
    return bool(spec.parent_pid) and os.getppid() != spec.parent_pid


def generator_main(spec: GeneratorSpec, weights: Any, orders: Any, results: Any, stop: Any, restart: int = 0) -> None:
    """Process entry point (see the module docstring)."""
    try:
        _serve(spec, weights, orders, results, stop, restart)
    except Exception as e:  # report, so the trainer raises instead of restarting a doomed process
        try:
            results.put(Failure(f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        finally:
            time.sleep(0.2)  # let the queue's feeder thread flush


def body_dtype(tensors: dict[str, Any]) -> Any:
    """The dtype most of the shared weights have (an FP32 head, tied or not, does not decide it)."""
    from collections import Counter

    counts = Counter(t.dtype for t in tensors.values())
    return counts.most_common(1)[0][0]


def cast_lm_head_to_fp32(model: Any) -> None:
    """Keep ``model``'s LM head in float32 and compute its logits in float32, as TRL's
    ``cast_lm_head_to_fp32`` does to the trainer's policy; a tied input embedding keeps returning
    the body's dtype."""
    import torch

    head = model.get_output_embeddings()
    if head is None or head.weight.dtype == torch.float32:
        return
    original = head.weight.dtype
    head.float()

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        bias = None if head.bias is None else head.bias.float()
        return torch.nn.functional.linear(hidden.float(), head.weight.float(), bias)

    head.forward = forward
    if getattr(model.config, "tie_word_embeddings", False):
        model.get_input_embeddings().register_forward_hook(lambda module, args, out: out.to(original))


def _build_model(spec: GeneratorSpec, weights: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(spec.model_config, dtype=body_dtype(weights.tensors))
    if spec.fp32_lm_head:
        cast_lm_head_to_fp32(model)
    if spec.generation_config is not None:
        model.generation_config = spec.generation_config
    model.requires_grad_(False)
    model.eval()
    return model.to(torch.device("cpu"))


def _serve(spec: GeneratorSpec, weights: Any, orders: Any, results: Any, stop: Any, restart: int) -> None:
    import torch

    from rlvr.trainer.asynchronous.versioned import VersionedBackend, VersionedRunner
    from rlvr.trainer.asynchronous.weights import WeightFollower
    from rlvr.trainer.rollout.chat import ChatFormatter
    from rlvr.trainer.rollout.tasks import TaskKey

    torch.set_num_threads(max(1, spec.threads))
    torch.manual_seed(spec.seed + 7919 * restart)
    model = _build_model(spec, weights)
    while weights.version < 0:  # the trainer publishes before the first order
        if stop.is_set() or _parent_gone(spec):
            return
        time.sleep(POLL_S)

    def guard() -> None:
        if _parent_gone(spec):  # the run was killed mid-episode: nobody will read this rollout
            os._exit(0)

    follower = WeightFollower(weights, model, guard)
    backend = VersionedBackend(model, spec.tokenizer, spec.max_batch, spec.max_seq_len, follower)
    runner = VersionedRunner(spec.entries, ChatFormatter(spec.tokenizer, spec.chat_template), backend,
                             max_new_tokens=spec.max_new_tokens, max_completion_length=spec.max_completion_length,
                             max_turns=spec.max_turns, env_workers=spec.env_workers)
    busy = idle = 0.0
    try:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                order: Order = orders.get(timeout=POLL_S)
            except queue.Empty:
                idle += time.perf_counter() - t0
                if _parent_gone(spec):
                    return
                continue
            if order is None:
                return
            while weights.version < order.min_version:
                if stop.is_set() or _parent_gone(spec):
                    return
                time.sleep(POLL_S / 5)
            idle += time.perf_counter() - t0
            t1 = time.perf_counter()
            follower.refresh()
            episodes, versions = runner.run_versioned([TaskKey.parse(k) for k in order.keys], spec.params)
            spent = time.perf_counter() - t1
            busy += spent
            results.put(Produced(order.oid, order.step, episodes, versions, spent, busy, idle, follower.updates))
    finally:
        runner.close()
        backend.release()


__all__ = ["GeneratorSpec", "Order", "Produced", "Failure", "generator_main", "cast_lm_head_to_fp32", "body_dtype"]
