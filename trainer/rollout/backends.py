"""Generation backends for rollouts: the rlvr ``RolloutEngine``, or ``model.generate`` as fallback.

Both take token-id prompts and one ``SamplingParams`` and return one ``Completion`` per prompt
(token ids including the stop token, per-token log-probs of ``log_softmax(logits / T)``, finish
reason), the engine's types, so the rollout runner never knows which one ran.

* ``EngineBackend``: static KV cache, continuous refill, CUDA graphs on GPUs; it reads the live
  weights in place, so it needs an unsharded model (single process or DDP).
* ``HFBackend``: ``model.generate`` inside a context that gathers sharded weights (DeepSpeed
  ZeRO-3, FSDP) the way TRL does; used for model families the engine does not support, and
  under sharding.
* ``VLLMBackend`` (``vllm_backend.py``): a separate ``vllm serve`` process, weights synced from
  the trainer when they change.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from rlvr.errors import ConfigError
from rlvr.trainer.engine import Completion, RolloutEngine, SamplingParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VLLMOptions:
    """Where the vLLM server is (``generation.vllm_url``) and whether the trainer pushes its weights to it."""

    url: str
    sync_weights: bool = True
    timeout: float = 600.0


class GenerationBackend(Protocol):
    """Anything that completes a batch of token-id prompts."""

    name: str

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """One completion per prompt, in order."""
        ...


class EngineBackend:
    """``RolloutEngine`` over a live, unsharded model; rebuilt when a longer sequence is needed."""

    name = "engine"

    def __init__(self, model: Any, tokenizer: Any, max_batch: int, max_seq_len: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.max_seq_len = max_seq_len
        self._engine: RolloutEngine | None = None
        self._engine = self._build(max_seq_len)

    def _build(self, max_seq_len: int) -> RolloutEngine:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None:
            max_seq_len = min(max_seq_len, int(limit))
        self.max_seq_len = max_seq_len
        return RolloutEngine(self.model, self.tokenizer, max_batch=self.max_batch, max_seq_len=max_seq_len)

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """Generate with the engine (rebuilt with a larger cache if a prompt plus budget does not fit)."""
        need = max(len(p) for p in prompts) + params.max_new_tokens
        if need > self.max_seq_len:
            limit = getattr(self.model.config, "max_position_embeddings", None)
            if limit is None or self.max_seq_len < int(limit):
                logger.info("rollout engine: growing the KV cache from %d to %d positions", self.max_seq_len, need)
                assert self._engine is not None
                self._engine.release()
                self._engine = self._build(need)
        room = self.max_seq_len - max(len(p) for p in prompts)
        if room < 1:
            raise ConfigError("generation.max_completion_length", f"a prompt of {max(len(p) for p in prompts)} tokens "
                              f"leaves no room in the model's {self.max_seq_len} positions",
                              "use a model with more positions or shorter prompts")
        if params.max_new_tokens > room:
            from dataclasses import replace

            params = replace(params, max_new_tokens=room)
        assert self._engine is not None
        was_training = self.model.training
        self.model.eval()
        try:
            return self._engine.generate([list(p) for p in prompts], params)
        finally:
            if was_training:
                self.model.train()

    @contextlib.contextmanager
    def session(self, max_len: int) -> Iterator[RolloutEngine]:
        """The engine itself, sized for sequences of ``max_len`` tokens, with the model in eval mode.

        For callers that interleave ``submit`` and ``run`` (multi-turn continuous refill).
        """
        if max_len > self.max_seq_len:
            limit = getattr(self.model.config, "max_position_embeddings", None)
            if limit is None or self.max_seq_len < int(limit):
                assert self._engine is not None
                self._engine.release()
                self._engine = self._build(max_len)
        assert self._engine is not None
        was_training = self.model.training
        self.model.eval()
        try:
            yield self._engine
        finally:
            if was_training:
                self.model.train()

    def release(self) -> None:
        """Free the KV cache."""
        if self._engine is not None:
            self._engine.release()


class HFBackend:
    """``model.generate`` with raw-logit log-probs; ``context()`` yields the model to generate with."""

    name = "hf"

    def __init__(self, context: Callable[[], contextlib.AbstractContextManager[Any]], tokenizer: Any,
                 max_batch: int = 256) -> None:
        self.context = context
        self.tokenizer = tokenizer
        self.max_batch = max_batch

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """Left-pad, generate, cut each row after its first stop token, take log-probs of the sampled tokens."""
        import torch

        out: list[Completion] = []
        with self.context() as model:
            for start in range(0, len(prompts), self.max_batch):
                chunk = prompts[start : start + self.max_batch]
                out.extend(self._generate_chunk(model, chunk, params, start, torch))
        return out

    def _generate_chunk(self, model: Any, prompts: Sequence[Sequence[int]], params: SamplingParams, offset: int,
                        torch: Any) -> list[Completion]:
        from transformers import GenerationConfig

        device = next(model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        att = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            att[i, width - len(p):] = 1
        stop = list(params.stop_token_ids)
        if not params.ignore_eos and self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in stop:
            stop.append(self.tokenizer.eos_token_id)
        sample = not params.greedy
        gen_cfg = GenerationConfig(
            max_new_tokens=params.max_new_tokens, do_sample=sample,
            temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
            top_k=params.top_k if sample else None, eos_token_id=stop or None, pad_token_id=pad,
            bos_token_id=self.tokenizer.bos_token_id,
            output_logits=True, return_dict_in_generate=True,
        )
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                result = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), generation_config=gen_cfg)
        finally:
            if was_training:
                model.train()
        new = result.sequences[:, width:].cpu()
        temp = params.temperature if sample else 1.0
        logits = torch.stack(result.logits, dim=1).float().cpu() if result.logits else torch.zeros(len(prompts), 0, 1)
        logps = torch.log_softmax(logits / temp, dim=-1)
        stop_set = set(stop)
        completions = []
        for i, p in enumerate(prompts):
            tokens: list[int] = []
            lps: list[float] = []
            reason = "length"
            for t in range(new.size(1)):
                tok = int(new[i, t])
                tokens.append(tok)
                lps.append(float(logps[i, t, tok]))
                if tok in stop_set:
                    reason = "stop"
                    break
            completions.append(Completion(
                index=offset + i, prompt_ids=list(p), token_ids=tokens,
                text=self.tokenizer.decode(tokens, skip_special_tokens=params.skip_special_tokens),
                logprobs=lps, finish_reason=reason, stop_reason=tokens[-1] if reason == "stop" else None, params=params,
            ))
        return completions


@contextlib.contextmanager
def _plain(model: Any) -> Iterator[Any]:
    yield model


def make_backend(
    kind: str,
    model: Any,
    tokenizer: Any,
    *,
    max_batch: int,
    max_seq_len: int,
    context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    sharded: bool = False,
    vllm: VLLMOptions | None = None,
    weights_version: Callable[[], Hashable] | None = None,
) -> GenerationBackend:
    """Pick a backend: ``engine``, ``hf``, ``vllm``, or ``auto`` (the engine when the model and setup allow it).

    ``model`` is the unwrapped policy; ``context`` (for ``hf`` and vLLM weight sync) yields the
    model with sharded weights gathered; ``sharded`` says the weights are split across ranks.
    For ``vllm``, ``weights_version()`` changes whenever the weights do (e.g. the trainer's
    global step): the weights are pushed to the server before the next generation after a change.
    """
    if kind not in ("auto", "engine", "hf", "vllm"):
        raise ConfigError("generation.backend", f"{kind!r} is not a backend", "use auto, engine, hf or vllm")
    ctx = context if context is not None else (lambda: _plain(model))
    if kind == "vllm":
        return _vllm_backend(model, tokenizer, ctx, max_batch, vllm, weights_version)
    if kind == "hf":
        return HFBackend(ctx, tokenizer, max_batch=max_batch)
    if sharded:
        if kind == "engine":
            raise ConfigError("generation.backend", "the rollout engine needs whole weights on each rank, and this "
                              "run shards them (DeepSpeed ZeRO-3 / FSDP)", "use generation.backend: hf (or auto)")
        return HFBackend(ctx, tokenizer, max_batch=max_batch)
    try:
        return EngineBackend(model, tokenizer, max_batch=max_batch, max_seq_len=max_seq_len)
    except ConfigError as e:
        if kind == "engine":
            raise
        logger.info("rollout engine unavailable (%s); using model.generate", e)
        return HFBackend(ctx, tokenizer, max_batch=max_batch)


def _vllm_backend(model: Any, tokenizer: Any, ctx: Callable[[], contextlib.AbstractContextManager[Any]],
                  max_batch: int, options: VLLMOptions | None,
                  weights_version: Callable[[], Hashable] | None) -> GenerationBackend:
    from accelerate import PartialState

    from rlvr.trainer.rollout.vllm_backend import VLLMBackend
    from rlvr.trainer.trl.vllm_sync import trl_weight_sync

    if options is None or not options.url:
        raise ConfigError("generation.vllm_url", "generation.backend is vllm but no server address is given",
                          "set generation.vllm_url, e.g. http://localhost:8000")
    state = PartialState()
    sync = None
    if options.sync_weights:
        device = next(model.parameters()).device
        sync = trl_weight_sync(options.url, device)
    return VLLMBackend(options.url, tokenizer, model=model, weight_sync=sync, weights_version=weights_version,
                       context=ctx, is_main=state.is_main_process, barrier=state.wait_for_everyone,
                       max_batch=max_batch, timeout=options.timeout)


__all__ = ["GenerationBackend", "VLLMOptions", "EngineBackend", "HFBackend", "make_backend", "SamplingParams", "Completion"]
