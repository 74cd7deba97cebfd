"""``hf:PATH`` — a local transformers causal LM, generating for many episodes in one batch.

The model directory needs a tokenizer with a chat template (every instruct/chat model has one).
Concurrent episodes' requests are gathered by a :class:`MicroBatcher` (``--concurrency`` is the
largest batch), rendered with the chat template and generated together. Two backends:

* ``engine``: rlvr's own ``RolloutEngine`` (per-slot KV cache, CUDA graphs; several times faster
  than ``model.generate``) when ``rlvr.trainer.engine`` is importable and supports the model;
* ``generate``: ``model.generate`` on the left-padded batch, for every other model.

``backend="auto"`` (what ``hf:PATH`` uses) picks the first that works. Token counts are exact.
torch and transformers are imported only when the model is loaded (the ``rlvr[train]`` extra).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from rlvr.errors import ConfigError, DependencyError, RlvrError
from rlvr.envs.evaluation.policies.base import (
    Completion,
    Message,
    Policy,
    PolicyCallFailed,
    PolicyOptions,
    SamplingParams,
)
from rlvr.envs.evaluation.policies.batcher import MicroBatcher
from rlvr.envs.evaluation.policies.registry import register_policy

logger = logging.getLogger(__name__)

_Request = tuple[list[dict[str, str]], SamplingParams]
BACKENDS = ("auto", "engine", "generate")
#: KV-cache length for the engine backend when the model allows more (prompt + completion).
ENGINE_MAX_SEQ_LEN = 4096


class HFPolicy(Policy):
    """A local transformers model directory; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        concurrency: int = 8,
        seed: int = 0,
        device: str | None = None,
        backend: str = "auto",
        max_wait_s: float = 0.05,
    ) -> None:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise ConfigError("policy", f"hf:{path} is not a directory", "point hf: at a saved transformers model directory")
        if not (p / "config.json").is_file():
            raise ConfigError("policy", f"hf:{path} has no config.json", "save the model with model.save_pretrained(PATH)")
        if backend not in BACKENDS:
            raise ConfigError("backend", f"unknown hf backend {backend!r}", f"choose from {', '.join(BACKENDS)}")
        self.path = p
        self.concurrency = concurrency
        self.seed = seed
        self.device = device
        self.backend = backend
        self.max_wait_s = max_wait_s
        self.spec = f"hf:{path}"
        self.model: Any = None
        self.tokenizer: Any = None
        self.engine: Any = None
        # One batcher (and so one generation thread) for the policy's life: see MicroBatcher.
        self.batcher: MicroBatcher[_Request, Completion] = MicroBatcher(
            self._generate_batch, max_batch=concurrency, max_wait_s=max_wait_s)
        self._running = False

    async def astart(self) -> None:
        if self.model is None:
            await asyncio.to_thread(self._load)
        await self.batcher.start()
        self._running = True

    async def aclose(self) -> None:
        if self._running:
            self._running = False
            await self.batcher.close()
            logger.debug("%s: batch sizes so far %s", self.spec, self.batcher.batch_sizes)

    @property
    def batch_sizes(self) -> list[int]:
        """Sizes of every batch generated so far, across runs."""
        return self.batcher.batch_sizes

    async def complete(
        self, messages: Sequence[Message], sampling: SamplingParams, *, task: Mapping[str, Any] | None = None
    ) -> Completion:
        if not self._running:
            raise PolicyCallFailed(f"{self.spec}: complete() called outside a run (call astart() first)")
        conv = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        return await self.batcher.submit((conv, sampling))

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise DependencyError("torch and transformers (needed by hf: policies)", "train") from e
        tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("policy", f"the tokenizer in {self.path} has no chat template",
                              "use an instruct/chat model or set tokenizer.chat_template and save it")
        tokenizer.padding_side = "left"  # generate() continues from the right end of every row
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForCausalLM.from_pretrained(str(self.path), dtype="auto")
        model.to(device).eval()
        torch.manual_seed(self.seed)
        self.tokenizer, self.model, self.device = tokenizer, model, device
        if self.backend in ("auto", "engine"):
            self.engine = self._make_engine()
        self.backend = "engine" if self.engine is not None else "generate"
        logger.info("loaded %s on %s with the %s backend", self.path, device, self.backend)

    def _make_engine(self) -> Any:
        # The engine lives in the trainer room; importing it here is the one deliberate exception to
        # "envs never imports trainer": it is optional, lazy, and only runs when torch is present.
        try:
            from rlvr.trainer.engine import RolloutEngine
        except ImportError as e:
            if self.backend == "engine":
                raise DependencyError(f"rlvr.trainer.engine ({e})", "train") from e
            logger.info("RolloutEngine unavailable (%s); using model.generate", e)
            return None
        limit = getattr(self.model.config, "max_position_embeddings", None) or ENGINE_MAX_SEQ_LEN
        try:
            return RolloutEngine(self.model, self.tokenizer, max_batch=self.concurrency,
                                 max_seq_len=min(int(limit), ENGINE_MAX_SEQ_LEN))
        except RlvrError as e:  # e.g. a model family the engine does not support
            if self.backend == "engine":
                raise
            logger.info("RolloutEngine cannot run %s (%s); using model.generate", self.path, e)
            return None

    # ------------------------------------------------------------------ generation (worker thread)

    def _render(self, conv: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)

    def _generate_batch(self, requests: list[_Request]) -> list[Completion | Exception]:
        if self.engine is not None:
            return self._engine_batch(requests)
        # Per-request seeds cannot apply inside one batched sample, so the group key leaves them out.
        groups: dict[tuple[int, float, float], list[int]] = defaultdict(list)
        for i, (_, s) in enumerate(requests):
            groups[(s.max_tokens, s.temperature, s.top_p)].append(i)
        out: list[Completion | Exception] = [PolicyCallFailed("not generated")] * len(requests)
        for idx in groups.values():
            try:
                results: list[Completion | Exception] = list(self._generate([requests[i][0] for i in idx], requests[idx[0]][1]))
            except Exception as e:  # e.g. a conversation longer than the model's context
                results = [PolicyCallFailed(f"{self.spec}: generation failed: {type(e).__name__}: {e}")] * len(idx)
            for i, c in zip(idx, results):
                out[i] = c
        return out

    def _engine_batch(self, requests: list[_Request]) -> list[Completion | Exception]:
        from rlvr.trainer.engine import SamplingParams as EngineParams

        out: list[Completion | Exception] = []
        prompts, params, slots = [], [], []
        for i, (conv, s) in enumerate(requests):
            ids = self.tokenizer(self._render(conv), add_special_tokens=False)["input_ids"]
            if not ids or len(ids) >= self.engine.max_seq_len:
                out.append(PolicyCallFailed(f"{self.spec}: prompt of {len(ids)} tokens does not fit the "
                                            f"{self.engine.max_seq_len}-token context"))
                continue
            out.append(PolicyCallFailed("not generated"))
            slots.append(i)
            prompts.append(ids)
            params.append(EngineParams(max_new_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p))
        if not prompts:
            return out
        try:
            results = self.engine.generate(prompts, params)
        except Exception as e:
            failed = PolicyCallFailed(f"{self.spec}: generation failed: {type(e).__name__}: {e}")
            return [failed if i in slots else o for i, o in enumerate(out)]
        for i, prompt, c in zip(slots, prompts, results):
            out[i] = Completion(text=c.text, prompt_tokens=len(prompt), completion_tokens=len(c.token_ids),
                                estimated=False, finish_reason=c.finish_reason)
        return out

    def _generate(self, convs: list[list[dict[str, str]]], sampling: SamplingParams) -> list[Completion]:
        import torch

        tok, model = self.tokenizer, self.model
        enc = tok([self._render(c) for c in convs], return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "pad_token_id": tok.pad_token_id}
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False)
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs)
        new_tokens = out[:, enc["input_ids"].shape[1]:].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        stop_ids = _stop_ids(model, tok)
        results = []
        for ids, n_prompt in zip(new_tokens, prompt_lens):
            end = next((j for j, t in enumerate(ids) if t in stop_ids), None)
            kept = ids if end is None else ids[:end]
            results.append(Completion(
                text=tok.decode(kept, skip_special_tokens=True),
                prompt_tokens=int(n_prompt),
                completion_tokens=len(ids) if end is None else end + 1,
                estimated=False,
                finish_reason="length" if end is None else "stop",
            ))
        return results


def _stop_ids(model: Any, tok: Any) -> set[int]:
    """Token ids that end a completion: the generation config's EOS ids, the tokenizer's EOS and pad."""
    ids: set[int] = set()
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (eos, tok.eos_token_id, tok.pad_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    return ids


def _from_spec(rest: str, options: PolicyOptions) -> Policy:
    return HFPolicy(rest, concurrency=options.concurrency, seed=options.seed)


register_policy("hf", _from_spec, "hf:PATH")

__all__ = ["HFPolicy"]
