"""Per-token log-probs (and entropies) of given tokens, without full ``[tokens, vocab]`` logits.

A naive training step computes ``model(ids).logits`` — ``[B, T, V]`` — and log-softmaxes it in
fp32: for 64 x 320 tokens and Qwen2's 151,936-token vocabulary that is 12 GB per copy, and
autograd keeps several. Here:

* only the positions that predict a scored token reach the LM head (no prompt positions, no
  padding), gathered into one packed ``[N, hidden]`` matrix;
* the head runs through TRL's ``ChunkedLogProbFunction`` (tiles of 4096 tokens x ``vocab_chunk``
  columns, online log-sum-exp, the backward recomputes each tile; Triton on GPUs), so at most one
  tile of logits exists at a time;
* sequences are length-bucketed and right-padded within a bucket, so the backbone wastes little
  on padding and needs no attention mask (pads come after every real token, causal attention
  never sees them), which keeps flash attention usable.

``fp32_head=True`` runs the head in float32 (hidden states up-cast, autocast off) even for a bf16
model, the "FP32 LM head" of ScaleRL/MiniMax-M1.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch

from rlvr.errors import ConfigError, DependencyError, InputError

# Vocabulary columns per head tile (TRL's default): a 4096 x 32768 tile is 512 MiB in fp32.
DEFAULT_VOCAB_CHUNK = 32768


def _chunked_function() -> Any:
    try:
        from trl.kernels import ChunkedLogProbFunction
    except ImportError as exc:  # pragma: no cover - trl is part of the [train] extra
        raise DependencyError("trl", "train") from exc
    return ChunkedLogProbFunction


def chunked_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    fp32_head: bool = False,
    vocab_chunk: int = DEFAULT_VOCAB_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log_softmax(hidden @ weight.T + bias) / T`` at ``targets``, tile by tile; differentiable.

    ``hidden`` [N, H], ``weight`` [V, H], ``targets`` [N]. Returns float32 ``(logprobs [N],
    entropy [N] or None)``; gradients flow to ``hidden``, ``weight`` and ``bias``.
    """
    if temperature <= 0:
        raise ConfigError("temperature", f"must be > 0, got {temperature}")
    if vocab_chunk < 1:
        raise ConfigError("vocab_chunk", f"must be >= 1, got {vocab_chunk}")
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise InputError(f"hidden must be [N, H] and targets [N], got {tuple(hidden.shape)} and "
                         f"{tuple(targets.shape)}")
    outputs = ("log_probs", "entropy") if compute_entropy else ("log_probs",)
    if fp32_head:
        hidden = hidden.float()
        context: Any = torch.autocast(hidden.device.type, enabled=False)
    else:
        context = nullcontext()
    with context:
        logprobs, entropy, *_ = _chunked_function().apply(
            hidden, weight, bias, targets, float(temperature), int(vocab_chunk), None, 1.0, outputs
        )
    return logprobs, (entropy if compute_entropy else None)


def length_buckets(lengths: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Group indices of ``lengths`` so each group's ``count x longest`` stays within the budget.

    Longest first; a sequence longer than the budget gets a group of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    buckets: list[list[int]] = []
    for i in order:
        if buckets and (len(buckets[-1]) + 1) * lengths[buckets[-1][0]] <= max_batch_tokens:
            buckets[-1].append(i)
        else:
            buckets.append([i])
    return buckets


def sequence_logprobs(
    model: Any,
    sequences: Sequence[Sequence[int]],
    starts: Sequence[int],
    *,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    fp32_head: bool = False,
    max_batch_tokens: int = 16384,
    vocab_chunk: int = DEFAULT_VOCAB_CHUNK,
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """``log p(seq[t] | seq[:t])`` for ``t`` in ``[start, len(seq))`` of every sequence.

    ``sequences`` are token-id lists (e.g. prompt + completion, no padding), ``starts`` the first
    scored position of each (e.g. the prompt length, >= 1). Returns one float32 tensor of length
    ``len(seq) - start`` per sequence (and entropies when asked), differentiable w.r.t. the model.
    ``max_batch_tokens`` caps the padded tokens of one backbone forward.
    """
    if len(starts) != len(sequences):
        raise InputError(f"got {len(starts)} starts for {len(sequences)} sequences")
    for i, (seq, start) in enumerate(zip(sequences, starts)):
        if not 1 <= start <= len(seq):
            raise InputError(f"sequence {i}: start {start} must be in [1, {len(seq)}] (a scored token needs a "
                             "token before it)")
    if max_batch_tokens < 1:
        raise ConfigError("max_batch_tokens", f"must be >= 1, got {max_batch_tokens}")
    backbone = getattr(model, model.base_model_prefix)
    head = model.get_output_embeddings()
    device = head.weight.device
    hidden_parts: list[torch.Tensor] = []
    target_parts: list[torch.Tensor] = []
    order: list[int] = []
    for bucket in length_buckets([len(s) for s in sequences], max_batch_tokens):
        width = len(sequences[bucket[0]])
        ids = torch.zeros(len(bucket), width, dtype=torch.long)
        rows: list[int] = []
        cols: list[int] = []
        targets: list[int] = []
        for row, i in enumerate(bucket):
            seq = list(sequences[i])
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            rows += [row] * (len(seq) - starts[i])
            cols += range(starts[i] - 1, len(seq) - 1)
            targets += seq[starts[i]:]
        hidden = backbone(input_ids=ids.to(device), use_cache=False).last_hidden_state
        hidden_parts.append(hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)])
        target_parts.append(torch.tensor(targets, dtype=torch.long, device=device))
        order += bucket
    logprobs, entropy = chunked_logprobs(
        torch.cat(hidden_parts), head.weight, torch.cat(target_parts), bias=head.bias, temperature=temperature,
        compute_entropy=compute_entropy, fp32_head=fp32_head, vocab_chunk=vocab_chunk,
    )
    sizes = [len(sequences[i]) - starts[i] for i in order]
    by_seq_lp: list[torch.Tensor | None] = [None] * len(sequences)
    by_seq_ent: list[torch.Tensor | None] = [None] * len(sequences)
    for i, lp in zip(order, logprobs.split(sizes)):
        by_seq_lp[i] = lp
    if entropy is not None:
        for i, ent in zip(order, entropy.split(sizes)):
            by_seq_ent[i] = ent
    return by_seq_lp, (by_seq_ent if entropy is not None else None)  # type: ignore[return-value]


def completion_logprobs(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    fp32_head: bool = False,
    max_batch_tokens: int = 16384,
    vocab_chunk: int = DEFAULT_VOCAB_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs ``[B, C]`` of completions in TRL's batch layout; 0 where not scored.

    ``prompt_ids``/``prompt_mask`` [B, P] are left-padded, ``completion_ids``/``completion_mask``
    [B, C] right-padded (TRL's ``_generate_and_score_completions`` output). Padding is stripped:
    each row is scored as its real prompt tokens followed by its completion up to the last masked-in
    token, positions counted from 0 (as the rollout engine generated it). Positions after that are 0.
    """
    if prompt_ids.shape != prompt_mask.shape or completion_ids.shape != completion_mask.shape:
        raise InputError("ids and masks must have the same shapes")
    batch, width = completion_ids.shape
    prompt_keep = prompt_mask.bool().cpu()
    comp_keep = completion_mask.bool().cpu()
    columns = torch.arange(width)
    comp_len = torch.where(comp_keep, columns + 1, 0).amax(dim=1) if width else torch.zeros(batch, dtype=torch.long)
    prompts = [prompt_ids[b].cpu()[prompt_keep[b]].tolist() for b in range(batch)]
    completions = [completion_ids[b, : comp_len[b]].cpu().tolist() for b in range(batch)]
    scored = [b for b in range(batch) if completions[b]]
    for b in scored:
        if not prompts[b]:
            raise InputError(f"row {b}: empty prompt; the first completion token needs a token before it")
    values, entropies = sequence_logprobs(
        model, [prompts[b] + completions[b] for b in scored], [len(prompts[b]) for b in scored],
        temperature=temperature, compute_entropy=compute_entropy, fp32_head=fp32_head,
        max_batch_tokens=max_batch_tokens, vocab_chunk=vocab_chunk,
    ) if scored else ([], None)
    device = completion_ids.device
    valid = (columns[None, :] < comp_len[:, None]).to(device)
    flat = torch.cat(values) if values else torch.zeros(0, device=device)
    out = torch.zeros(batch, width, dtype=torch.float32, device=device).masked_scatter(valid, flat)
    if not compute_entropy:
        return out, None
    flat_ent = torch.cat(entropies) if entropies else torch.zeros(0, device=device)
    return out, torch.zeros(batch, width, dtype=torch.float32, device=device).masked_scatter(valid, flat_ent)


__all__ = [
    "DEFAULT_VOCAB_CHUNK",
    "chunked_logprobs",
    "length_buckets",
    "sequence_logprobs",
    "completion_logprobs",
]
