"""``RolloutEngine``: batched generation for a live Hugging Face causal LM, with continuous refill.

How a request flows:

1. ``submit`` queues it. When a slot is free, its prompt is *prefilled* alone or with the other
   requests admitted at the same moment (one right-padded forward through the model, the
   resulting keys/values copied into the slot), and its first token is sampled. Other slots are
   not touched, so a request can join while others are mid-way (multi-turn episodes end at
   different times).
2. Every slot then advances one token per *decode step*: one fixed-shape forward of all slots
   (``[slots, 1]`` tokens against the pre-allocated cache, each slot at its own position, masked
   to its own length), sampling on the device, and on-device bookkeeping of stop token ids and
   lengths. On CUDA the step is captured once as a CUDA graph and replayed.
3. Every ``sync_every`` steps the host reads the finish flags (the only synchronisation), checks
   stop strings, and hands finished completions back; their slots take the next queued requests.

The engine holds a reference to the model, never a copy: an optimiser updating the weights in
place is seen by the next step, and weights replaced by new tensors are detected (by address)
and the graphs re-captured (``update_weights``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch

from rlvr.envs.generation import Completion, SamplingParams
from rlvr.errors import ConfigError, InputError, RlvrError

from .arch import inspect_model
from .graphs import CapturedStep
from .kv_cache import attention_configs, engine_attention
from .sampling import sample_next
from .state import STOPPED, RowParams, SlotState
from .stops import StopStringMatcher, safe_decode

logger = logging.getLogger(__name__)

# Cache columns are rounded up to this, so attention kernels see aligned rows.
_COLUMN_ALIGN = 16


@dataclass
class _Request:
    """A queued or running request and its host-side bookkeeping."""

    rid: int
    prompt_ids: list[int]
    params: SamplingParams
    stop_ids: tuple[int, ...]
    max_new: int
    matcher: StopStringMatcher | None
    checked: int = 0


class RolloutEngine:
    """Generate completions for many prompts at once from a live causal LM.

    Args:
        model: a transformers causal LM of a supported family (see ``arch.SUPPORTED_MODEL_TYPES``),
            already on ``device``. The engine uses its weights in place.
        tokenizer: used for completion text, stop strings and the EOS id; optional.
        max_batch: slots, i.e. sequences decoded together.
        max_seq_len: longest prompt + completion a slot holds (sets the cache size).
        device: defaults to the model's device.
        dtype: compute and cache dtype; defaults to the weights' dtype. A lower precision than the
            weights (bf16 compute on fp32 weights) runs under autocast, which re-casts the weights
            every step: prefer weights already in the compute dtype.
        cuda_graphs: capture the decode step as a CUDA graph; default on for CUDA devices.
        sync_every: decode steps between host checks of finish flags and stop strings; default 1
            on CPU (syncs are free there) and 8 on CUDA.
        prefill_tokens: most (padded) prompt tokens per prefill forward.
        max_stop_ids: most stop token ids per request (EOS ids included).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        max_batch: int = 64,
        max_seq_len: int = 2048,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cuda_graphs: bool | None = None,
        sync_every: int | None = None,
        prefill_tokens: int = 16384,
        max_stop_ids: int = 8,
    ) -> None:
        for name, value, low in (("max_batch", max_batch, 1), ("max_seq_len", max_seq_len, 2),
                                 ("prefill_tokens", prefill_tokens, 1), ("max_stop_ids", max_stop_ids, 1)):
            if int(value) != value or value < low:
                raise ConfigError(name, f"must be an integer >= {low}, got {value!r}")
        if sync_every is not None and (int(sync_every) != sync_every or sync_every < 1):
            raise ConfigError("sync_every", f"must be an integer >= 1, got {sync_every!r}")
        self.geometry = inspect_model(model, max_seq_len)
        param = next(model.parameters())
        self.device = torch.device(device) if device is not None else param.device
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        if param.device != self.device:
            raise ConfigError("device", f"the model is on {param.device}, not {self.device}",
                              "move the model first (the engine never copies weights)")
        if cuda_graphs is None:
            cuda_graphs = self.device.type == "cuda"
        if cuda_graphs and self.device.type != "cuda":
            raise ConfigError("cuda_graphs", f"needs a CUDA device, got {self.device}", "leave it unset on CPU")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = int(max_batch)
        self.max_seq_len = int(max_seq_len)
        self.cuda_graphs = bool(cuda_graphs)
        self.sync_every = int(sync_every) if sync_every is not None else (8 if self.device.type == "cuda" else 1)
        self.prefill_tokens = int(prefill_tokens)
        self.max_stop_ids = int(max_stop_ids)
        self._dtype_arg = dtype
        self._decoder = getattr(model, model.base_model_prefix)
        self._head = model.get_output_embeddings()
        self._attn_configs = attention_configs(model)
        self._capacity = -(-self.max_seq_len // _COLUMN_ALIGN) * _COLUMN_ALIGN
        self._state: SlotState | None = None
        self._compute_dtype: torch.dtype | None = None
        self._graphs: dict[bool, CapturedStep] = {}
        self._graph_pool: object | None = None
        self._weights_signature: tuple[int, ...] | None = None
        self._slots: list[_Request | None] = [None] * self.max_batch
        self._pending: deque[_Request] = deque()
        self._next_rid = 0
        self._running = False
        # Counters for benchmarks and logs: decode steps run, prefill forwards, graph captures.
        self.stats = {"decode_steps": 0, "prefills": 0, "graph_captures": 0}

    # ------------------------------------------------------------------ public API

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams | Sequence[SamplingParams] | None = None
    ) -> list[Completion]:
        """Complete every prompt (token ids); return one ``Completion`` per prompt, in order.

        ``params`` is one ``SamplingParams`` for all prompts or one per prompt (default:
        ``SamplingParams()``). Raises ``InputError`` for an empty or too-long prompt before any work.
        """
        if self._pending or any(s is not None for s in self._slots):
            raise RlvrError("generate() needs an idle engine; use submit()/run() to interleave requests")
        per_prompt = self._per_prompt_params(params, len(prompts))
        rids = [self.submit(p, sp) for p, sp in zip(prompts, per_prompt)]
        position = {rid: i for i, rid in enumerate(rids)}
        results: list[Completion | None] = [None] * len(rids)
        for completion in self.run():
            results[position[completion.index]] = replace(completion, index=position[completion.index])
        return [c for c in results if c is not None]

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams | None = None) -> int:
        """Queue one prompt; return its request id (``Completion.index`` of its result from ``run``).

        May be called while iterating ``run()``, e.g. to queue an episode's next turn as soon as
        its previous turn finishes.
        """
        params = params if params is not None else SamplingParams()
        if not isinstance(params, SamplingParams):
            raise ConfigError("params", f"expected SamplingParams, got {type(params).__name__}")
        ids = [int(t) for t in prompt_ids]
        if not ids:
            raise InputError("prompt_ids is empty: a prompt needs at least one token")
        if len(ids) >= self.max_seq_len:
            raise InputError(f"prompt has {len(ids)} tokens but max_seq_len is {self.max_seq_len}; "
                             "leave room for at least one new token (raise max_seq_len or shorten the prompt)")
        if min(ids) < 0 or max(ids) >= self.geometry.vocab_size:
            raise InputError(f"prompt token ids must be in [0, {self.geometry.vocab_size}), "
                             f"got {min(ids)}..{max(ids)}")
        eos_ids = () if params.ignore_eos else self._find_eos_ids(self.model, self.tokenizer)
        stop_ids = tuple(dict.fromkeys(params.stop_token_ids + eos_ids))
        if len(stop_ids) > self.max_stop_ids:
            raise ConfigError("stop_token_ids", f"{len(stop_ids)} stop ids (EOS included) exceed max_stop_ids "
                              f"{self.max_stop_ids}", "raise RolloutEngine(max_stop_ids=...)")
        if params.stop and self.tokenizer is None:
            raise ConfigError("stop", "stop strings need a tokenizer", "pass tokenizer= to RolloutEngine")
        matcher = StopStringMatcher(self.tokenizer, params.stop, params.skip_special_tokens) if params.stop else None
        rid = self._next_rid
        self._next_rid += 1
        max_new = min(params.max_new_tokens, self.max_seq_len - len(ids))
        self._pending.append(_Request(rid, ids, params, stop_ids, max_new, matcher))
        return rid

    def run(self) -> Iterator[Completion]:
        """Drive queued requests to completion, yielding each ``Completion`` as soon as it finishes."""
        if self._running:
            raise RlvrError("run() is already being iterated")
        self._running = True
        try:
            self.update_weights()
            while self._pending or any(s is not None for s in self._slots):
                with self._inference():
                    finished = self._advance()
                yield from finished
        finally:
            self._running = False

    def update_weights(self) -> bool:
        """Re-read the model's weights; return True when graphs had to be re-captured.

        In-place updates (any torch optimiser) need nothing: the engine reads the live tensors.
        Weights replaced by new tensors (``load_state_dict(assign=True)``, ``model.to(...)``) move,
        and the captured graphs would read the old ones; this notices and drops them. ``generate``
        and ``run`` call it themselves, so calling it by hand is never required.
        """
        signature = tuple(t.data_ptr() for t in (*self.model.parameters(), *self.model.buffers()))
        dtype = self._dtype_arg or next(self.model.parameters()).dtype
        changed = self._weights_signature is not None and signature != self._weights_signature
        if self._state is not None and dtype != self._compute_dtype:
            if any(s is not None for s in self._slots):
                raise RlvrError(f"the model's dtype changed to {dtype} while requests were running")
            self.release()
            changed = True
        elif changed:
            self._graphs.clear()
            self._graph_pool = None
        self._weights_signature = signature
        return changed

    def release(self) -> None:
        """Free the KV cache and captured graphs (e.g. to give the memory to training); re-made lazily."""
        if self._pending or any(s is not None for s in self._slots):
            raise RlvrError("release() needs an idle engine")
        self._graphs.clear()
        self._graph_pool = None
        self._state = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def __repr__(self) -> str:
        return (f"RolloutEngine(model={type(self.model).__name__}, max_batch={self.max_batch}, "
                f"max_seq_len={self.max_seq_len}, device={self.device}, cuda_graphs={self.cuda_graphs})")

    # ------------------------------------------------------------------ setup

    @staticmethod
    def _find_eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
        """EOS ids as ``model.generate`` would use them now: the generation config's, else the tokenizer's."""
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if eos is None and tokenizer is not None:
            eos = getattr(tokenizer, "eos_token_id", None)
        if eos is None:
            return ()
        return tuple(int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]))

    @staticmethod
    def _per_prompt_params(params: Any, n: int) -> list[SamplingParams]:
        if params is None or isinstance(params, SamplingParams):
            return [params or SamplingParams()] * n
        params = list(params)
        if len(params) != n:
            raise ConfigError("params", f"got {len(params)} SamplingParams for {n} prompts",
                              "pass one SamplingParams, or exactly one per prompt")
        return params

    def _ensure_state(self) -> SlotState:
        if self._state is None:
            self._compute_dtype = self._dtype_arg or next(self.model.parameters()).dtype
            g = self.geometry
            self._state = SlotState.allocate(
                slots=self.max_batch, capacity=self._capacity, max_stop_ids=self.max_stop_ids,
                num_layers=g.num_layers, kv_heads=g.kv_heads, head_dim=g.head_dim,
                dtype=self._compute_dtype, device=self.device,
            )
            logger.info("rollout engine: %d slots x %d positions, %.1f MiB on %s", self.max_batch,
                        self._capacity, self._state.nbytes() / 2**20, self.device)
        return self._state

    @contextmanager
    def _inference(self) -> Iterator[None]:
        """No autograd, eval mode (no dropout, no gradient-checkpointing cache drop), then restore."""
        was_training = self.model.training
        self._ensure_state()
        try:
            if was_training:
                self.model.eval()
            with torch.no_grad():
                yield
        finally:
            if was_training:
                self.model.train()

    def _autocast(self) -> Any:
        param_dtype = next(self.model.parameters()).dtype
        if self._compute_dtype == param_dtype:
            # Neutralise any autocast the caller runs under: the cache dtype is fixed.
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self._compute_dtype, cache_enabled=False)

    # ------------------------------------------------------------------ the loop

    def _advance(self) -> list[Completion]:
        """Admit queued requests into free slots, decode ``sync_every`` steps, collect finished ones."""
        self._admit()
        if any(req is not None for req in self._slots):
            self._decode(self.sync_every)
        return self._harvest()

    def _admit(self) -> None:
        free = [s for s, req in enumerate(self._slots) if req is None]
        take = min(len(free), len(self._pending))
        if not take:
            return
        # Shortest first, so each prefill chunk pads to its own longest prompt only.
        admitted = sorted(((free[i], self._pending.popleft()) for i in range(take)),
                          key=lambda pair: len(pair[1].prompt_ids))
        chunk: list[tuple[int, _Request]] = []
        for slot, req in admitted:
            if chunk and len(req.prompt_ids) * (len(chunk) + 1) > self.prefill_tokens:
                self._prefill(chunk)
                chunk = []
            chunk.append((slot, req))
        self._prefill(chunk)

    def _prefill(self, batch: list[tuple[int, _Request]]) -> None:
        """Run the prompts of ``batch`` through the model, load their keys/values, sample token 1."""
        st = self._state
        self.stats["prefills"] += 1
        lengths = [len(req.prompt_ids) for _, req in batch]
        width = max(lengths)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        for row, (_, req) in enumerate(batch):
            ids[row, : len(req.prompt_ids)] = torch.tensor(req.prompt_ids)
        dev = self.device
        slots = torch.tensor([slot for slot, _ in batch], device=dev)
        lens = torch.tensor(lengths, device=dev)
        # Right padding: pads come after every real token, so the causal mask alone keeps them out.
        with self._autocast():
            out = self._decoder(input_ids=ids.to(dev), use_cache=True)
            hidden = out.last_hidden_state[torch.arange(len(batch), device=dev), lens - 1]
            logits = self._head(hidden).float()
        for layer, cached in enumerate(out.past_key_values.layers):
            st.cache.load_prefill(layer, slots, cached.keys, cached.values)
        del out
        reqs = [req for _, req in batch]
        rows = RowParams.build([r.params for r in reqs], [r.stop_ids for r in reqs], [r.max_new for r in reqs],
                               max_stop_ids=self.max_stop_ids, device=dev)
        tokens, logps = sample_next(logits, rows.temperature, rows.top_k, rows.top_p, rows.processed,
                                    filtered=any(r.params.filtered for r in reqs))
        st.admit(slots, lens, rows, tokens, logps)
        for slot, req in batch:
            self._slots[slot] = req

    def _step(self, filtered: bool) -> None:
        """One decode step for every slot (fixed shapes, no host sync: safe to capture)."""
        st = self._state
        mask = (st.columns[None, :] <= st.lengths[:, None])[:, None, None, :]
        with self._autocast(), engine_attention(self._attn_configs):
            out = self._decoder(
                input_ids=st.tokens_in[:, None],
                position_ids=st.lengths[:, None],
                attention_mask=mask,
                past_key_values=st.cache,
                use_cache=True,
            )
            logits = self._head(out.last_hidden_state[:, -1]).float()
        tokens, logps = sample_next(logits, st.temperature, st.top_k, st.top_p, st.processed, filtered=filtered)
        st.record(tokens, logps)

    def _decode(self, steps: int) -> None:
        filtered = any(req is not None and req.params.filtered for req in self._slots)
        if not self.cuda_graphs:
            for _ in range(steps):
                self._step(filtered)
            self.stats["decode_steps"] += steps
            return
        graph = self._graphs.get(filtered)
        if graph is None:
            try:
                graph = CapturedStep(lambda: self._step(filtered), pool=self._graph_pool)
            except RuntimeError as exc:
                # Warm-up steps already ran for real and a failed capture executes nothing, so the
                # state is consistent: carry on eagerly rather than lose the rollout.
                logger.warning("CUDA graph capture failed, decoding without graphs: %s", exc)
                self.cuda_graphs = False
                self._decode(steps)
                return
            self._graph_pool = graph.pool
            self._graphs[filtered] = graph
            self.stats["graph_captures"] += 1
            steps -= graph.warmup_steps
            self.stats["decode_steps"] += graph.warmup_steps
            logger.debug("captured decode step (filtered=%s)", filtered)
        for _ in range(max(steps, 0)):
            graph.replay()
        self.stats["decode_steps"] += max(steps, 0)

    def _harvest(self) -> list[Completion]:
        """Read finish flags (one host sync); build completions for finished slots; free them."""
        st = self._state
        busy = [s for s, req in enumerate(self._slots) if req is not None]
        if not busy:
            return []
        flags = torch.stack([st.active.long(), st.n_gen, st.finish]).cpu()
        active, n_gen, finish = (flags[i].tolist() for i in range(3))
        wanted = [s for s in busy if not active[s] or self._slots[s].matcher is not None]
        if not wanted:
            return []
        rows = torch.tensor(wanted, device=self.device)
        width = max(n_gen[s] for s in wanted)
        tokens_rows = st.out_tokens[rows, :width].cpu().tolist()
        logps_rows = st.out_logps[rows, :width].cpu().tolist()
        done: list[Completion] = []
        freed: list[int] = []
        for slot, tokens, logps in zip(wanted, tokens_rows, logps_rows):
            req = self._slots[slot]
            n = n_gen[slot]
            tokens, logps = tokens[:n], logps[:n]
            cut, stop_text = (None, None)
            if req.matcher is not None:
                cut, stop_text = req.matcher.find(tokens, req.checked)
                req.checked = n
            if cut is not None:
                tokens, logps = tokens[:cut], logps[:cut]
                reason, stop_reason = "stop", stop_text
            elif not active[slot]:
                reason = "stop" if finish[slot] == STOPPED else "length"
                stop_reason = tokens[-1] if finish[slot] == STOPPED else None
            else:
                continue
            text = safe_decode(self.tokenizer, tokens, req.params.skip_special_tokens)
            done.append(Completion(index=req.rid, prompt_ids=req.prompt_ids, token_ids=tokens, text=text,
                                   logprobs=logps, finish_reason=reason, stop_reason=stop_reason,
                                   params=req.params))
            self._slots[slot] = None
            freed.append(slot)
        if freed:
            st.reset(torch.tensor(freed, device=self.device))
        return done


__all__ = ["RolloutEngine"]
