"""The engine's device-side state: one row per slot, pre-allocated, updated only in place.

Everything a decode step reads or writes lives here, at fixed addresses, so the step can be
captured once as a CUDA graph and replayed: the current token and write position of each slot,
its sampling parameters, stop token ids, finish flags, and the buffers that collect generated
tokens and their log-probs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .kv_cache import SlotKVCache
from rlvr.envs.generation import SamplingParams

# finish codes kept on the device
RUNNING, STOPPED, LENGTH = 0, 1, 2


@dataclass
class RowParams:
    """Sampling parameters of a group of requests as device tensors, one row per request."""

    temperature: torch.Tensor  # [n] float32
    top_k: torch.Tensor  # [n] long
    top_p: torch.Tensor  # [n] float32
    processed: torch.Tensor  # [n] bool
    stop_ids: torch.Tensor  # [n, K] long, -1 = unused
    max_new: torch.Tensor  # [n] long

    @classmethod
    def build(
        cls,
        params: Sequence[SamplingParams],
        stop_ids: Sequence[Sequence[int]],
        max_new: Sequence[int],
        *,
        max_stop_ids: int,
        device: torch.device,
    ) -> RowParams:
        """Pack per-request parameters; top-k/top-p are switched off for rows that do not filter."""
        stops = torch.full((len(params), max_stop_ids), -1, dtype=torch.long)
        for row, ids in enumerate(stop_ids):
            stops[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        return cls(
            temperature=torch.tensor([p.temperature for p in params], dtype=torch.float32, device=device),
            top_k=torch.tensor([p.top_k if p.filtered else 0 for p in params], dtype=torch.long, device=device),
            top_p=torch.tensor([p.top_p if p.filtered else 1.0 for p in params], dtype=torch.float32,
                               device=device),
            processed=torch.tensor([p.logprob_mode == "processed" for p in params], device=device),
            stop_ids=stops.to(device),
            max_new=torch.tensor(list(max_new), dtype=torch.long, device=device),
        )


@dataclass
class SlotState:
    """Per-slot tensors (``S`` slots, ``L`` cache columns); see the module docstring."""

    lengths: torch.Tensor  # [S] long: tokens in the cache = column the next token is written to
    tokens_in: torch.Tensor  # [S] long: last sampled token, fed at the next step
    active: torch.Tensor  # [S] bool: slot is generating
    n_gen: torch.Tensor  # [S] long: tokens generated so far
    max_new: torch.Tensor  # [S] long
    finish: torch.Tensor  # [S] long: RUNNING / STOPPED / LENGTH
    temperature: torch.Tensor  # [S] float32 (0 = greedy)
    top_k: torch.Tensor  # [S] long (0 = off)
    top_p: torch.Tensor  # [S] float32 (1 = off)
    processed: torch.Tensor  # [S] bool: log-probs under the filtered distribution
    stop_ids: torch.Tensor  # [S, K] long, -1 = unused
    out_tokens: torch.Tensor  # [S, L + 1] long; column n_gen is scratch for idle rows
    out_logps: torch.Tensor  # [S, L + 1] float32
    columns: torch.Tensor  # [L] long: 0..L-1, for the length mask
    cache: SlotKVCache

    @classmethod
    def allocate(
        cls,
        *,
        slots: int,
        capacity: int,
        max_stop_ids: int,
        num_layers: int,
        kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> SlotState:
        """Allocate every tensor for ``slots`` rows of ``capacity`` cache columns."""
        long = dict(dtype=torch.long, device=device)
        lengths = torch.zeros(slots, **long)
        return cls(
            lengths=lengths,
            tokens_in=torch.zeros(slots, **long),
            active=torch.zeros(slots, dtype=torch.bool, device=device),
            n_gen=torch.zeros(slots, **long),
            max_new=torch.ones(slots, **long),
            finish=torch.zeros(slots, **long),
            temperature=torch.ones(slots, dtype=torch.float32, device=device),
            top_k=torch.zeros(slots, **long),
            top_p=torch.ones(slots, dtype=torch.float32, device=device),
            processed=torch.zeros(slots, dtype=torch.bool, device=device),
            stop_ids=torch.full((slots, max_stop_ids), -1, **long),
            out_tokens=torch.zeros(slots, capacity + 1, **long),
            out_logps=torch.zeros(slots, capacity + 1, dtype=torch.float32, device=device),
            columns=torch.arange(capacity, **long),
            cache=SlotKVCache(num_layers, slots, kv_heads, capacity, head_dim,
                              dtype=dtype, device=device, write_pos=lengths),
        )

    def record(self, tokens: torch.Tensor, logps: torch.Tensor) -> None:
        """Book one decode step's sampled tokens for every active slot, and retire finished ones."""
        active = self.active
        column = self.n_gen[:, None]
        self.out_tokens.scatter_(1, column, tokens[:, None])
        self.out_logps.scatter_(1, column, logps[:, None])
        step = active.long()
        self.n_gen.add_(step)
        self.lengths.add_(step)
        self.tokens_in.copy_(torch.where(active, tokens, self.tokens_in))
        stop_hit = (tokens[:, None] == self.stop_ids).any(dim=1)
        done = active & (stop_hit | (self.n_gen >= self.max_new))
        code = torch.where(stop_hit, torch.full_like(self.finish, STOPPED), torch.full_like(self.finish, LENGTH))
        self.finish.copy_(torch.where(done, code, self.finish))
        self.active.copy_(active & ~done)

    def admit(self, slots: torch.Tensor, lengths: torch.Tensor, rows: RowParams, tokens: torch.Tensor,
              logps: torch.Tensor) -> None:
        """Start requests in ``slots`` after their prefill: prompt ``lengths``, first sampled token."""
        self.lengths[slots] = lengths
        self.tokens_in[slots] = tokens
        self.n_gen[slots] = 1
        self.out_tokens[slots, 0] = tokens
        self.out_logps[slots, 0] = logps
        self.max_new[slots] = rows.max_new
        self.temperature[slots] = rows.temperature
        self.top_k[slots] = rows.top_k
        self.top_p[slots] = rows.top_p
        self.processed[slots] = rows.processed
        self.stop_ids[slots] = rows.stop_ids
        stop_hit = (tokens[:, None] == rows.stop_ids).any(dim=1)
        done = stop_hit | (rows.max_new <= 1)
        self.finish[slots] = torch.where(stop_hit, STOPPED, torch.where(done, LENGTH, RUNNING))
        self.active[slots] = ~done

    def reset(self, slots: torch.Tensor) -> None:
        """Mark ``slots`` idle (their cache columns are overwritten by the next prefill)."""
        self.active[slots] = False
        self.lengths[slots] = 0
        self.n_gen[slots] = 0
        self.finish[slots] = RUNNING

    def nbytes(self) -> int:
        """Bytes held on the device (cache and buffers)."""
        tensors = [v for v in vars(self).values() if isinstance(v, torch.Tensor)]
        return self.cache.nbytes() + sum(t.numel() * t.element_size() for t in tensors)


__all__ = ["SlotState", "RowParams", "RUNNING", "STOPPED", "LENGTH"]
