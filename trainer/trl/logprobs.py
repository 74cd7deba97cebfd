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

For batches in TRL's layout (left-padded prompts, right-padded completions), ``unpad_batch``
re-lays the rows out without padding (vectorised, on the device) and ``bucketed_logprobs`` runs
them through any ``LogprobForward``: ``backbone_forward(model)`` here, or TRL's fused-LM-head
forward, which is what ``RLVRTrainer`` uses so that DDP/FSDP wrappers and TRL's FP32-head and
temperature settings apply (``completion_logprobs`` is the first combination).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from rlvr.errors import ConfigError, DependencyError, InputError
from rlvr.validate import positive_int

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
    positive_int("vocab_chunk", vocab_chunk)
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
    positive_int("max_batch_tokens", max_batch_tokens)
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


@dataclass(frozen=True)
class UnpaddedBatch:
    """TRL's padded prompt/completion batch, re-laid out without padding for a log-prob forward.

    Row ``b`` of ``ids`` holds its real prompt tokens followed by its completion up to the last
    masked-in token, then zeros: ``lengths[b] = prompt_lengths[b] + completion_lengths[b]``.
    ``completion_width`` is the column count of the completion tensors it came from.
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    prompt_lengths: torch.Tensor
    completion_lengths: torch.Tensor
    completion_width: int


def unpad_batch(
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
) -> UnpaddedBatch:
    """Strip TRL's padding: left-padded prompts ``[B, P]`` + right-padded completions ``[B, C]``.

    Vectorised on the tensors' device (one host sync, for the widest row). A row whose completion
    has masked-in tokens needs at least one prompt token (the first scored token needs a token
    before it); ``InputError`` otherwise.
    """
    if prompt_ids.shape != prompt_mask.shape or completion_ids.shape != completion_mask.shape:
        raise InputError("ids and masks must have the same shapes")
    if prompt_ids.size(0) != completion_ids.size(0):
        raise InputError(f"{prompt_ids.size(0)} prompt rows but {completion_ids.size(0)} completion rows")
    batch, width = completion_ids.shape
    device = completion_ids.device
    prompt_ids, prompt_keep = prompt_ids.to(device), prompt_mask.to(device).bool()
    columns = torch.arange(width, device=device)
    comp_len = (torch.where(completion_mask.bool(), columns + 1, 0).amax(dim=1) if width
                else torch.zeros(batch, dtype=torch.long, device=device))
    prompt_len = prompt_keep.sum(dim=1)
    if bool(((prompt_len == 0) & (comp_len > 0)).any()):
        row = int(torch.nonzero((prompt_len == 0) & (comp_len > 0))[0, 0])
        raise InputError(f"row {row}: empty prompt; the first completion token needs a token before it")
    keep = torch.cat([prompt_keep, columns[None, :] < comp_len[:, None]], dim=1)
    lengths = prompt_len + comp_len
    widest = int(lengths.max()) if batch else 0
    # Each kept token moves to its rank among the row's kept tokens; dropped ones to a spare column.
    target = torch.where(keep, keep.long().cumsum(dim=1) - 1, widest)
    full = torch.cat([prompt_ids, completion_ids], dim=1)
    ids = full.new_zeros(batch, widest + 1).scatter_(1, target, full)[:, :widest]
    return UnpaddedBatch(ids, lengths, prompt_len, comp_len, width)


# forward(ids [b, w], labels [b, w]) -> (log-probs [b, w-1], entropies [b, w-1] or None): column j scores
# token j+1 where labels[:, j+1] != -100 (0 elsewhere). TRL's fused-LM-head forward
# (``model(input_ids=..., labels=..., fused_lm_head=True)``) has exactly this contract.
LogprobForward = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, "torch.Tensor | None"]]


def backbone_forward(
    model: Any,
    *,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    fp32_head: bool = False,
    vocab_chunk: int = DEFAULT_VOCAB_CHUNK,
) -> LogprobForward:
    """A ``LogprobForward`` for a plain Hugging Face causal LM: its backbone, then ``chunked_logprobs``."""
    backbone = getattr(model, model.base_model_prefix)
    head = model.get_output_embeddings()

    def forward(ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = head.weight.device
        hidden = backbone(input_ids=ids.to(device), use_cache=False).last_hidden_state[:, :-1]
        targets = labels[:, 1:].to(device)
        scored = targets != -100
        logprobs, entropy = chunked_logprobs(
            hidden[scored], head.weight, targets[scored], bias=head.bias, temperature=temperature,
            compute_entropy=compute_entropy, fp32_head=fp32_head, vocab_chunk=vocab_chunk,
        )
        zeros = torch.zeros(scored.shape, dtype=torch.float32, device=device)
        return (zeros.masked_scatter(scored, logprobs),
                zeros.masked_scatter(scored, entropy) if entropy is not None else None)

    return forward


def bucketed_logprobs(
    forward: LogprobForward,
    batch: UnpaddedBatch,
    *,
    max_batch_tokens: int = 16384,
    compute_entropy: bool = False,
    single_forward: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs ``[B, C]`` of ``batch``'s completions (0 where not scored), differentiable.

    Rows are grouped by length (``length_buckets``) so each ``forward`` call is right-padded only
    to its own longest row, within ``max_batch_tokens`` padded tokens; rows without completion
    tokens are not run at all. Right padding needs no attention mask (causal attention never
    looks ahead), so the backbone keeps its fastest attention kernel. ``single_forward`` puts all
    rows in one call (data-parallel wrappers expect one forward per backward).
    """
    positive_int("max_batch_tokens", max_batch_tokens)
    rows_total, width = batch.ids.size(0), batch.completion_width
    device = batch.ids.device
    lengths, prompt_lengths = batch.lengths.tolist(), batch.prompt_lengths.tolist()
    scored = [b for b in range(rows_total) if lengths[b] > prompt_lengths[b]]
    if single_forward:
        groups = [scored] if scored else []
    else:
        groups = [[scored[i] for i in g] for g in length_buckets([lengths[b] for b in scored], max_batch_tokens)]
    columns = torch.arange(width, device=device)
    parts: list[torch.Tensor] = []
    ent_parts: list[torch.Tensor] = []
    for rows in groups:
        index = torch.tensor(rows, device=device)
        span = max(lengths[b] for b in rows)
        ids = batch.ids[index, :span]
        start, count = batch.prompt_lengths[index], batch.completion_lengths[index]
        positions = torch.arange(span, device=device)
        in_completion = (positions[None, :] >= start[:, None]) & (positions[None, :] < (start + count)[:, None])
        logprobs, entropy = forward(ids, ids.masked_fill(~in_completion, -100))
        # completion column k of a row is the token at position start + k, scored at column start + k - 1
        pick = (start[:, None] - 1 + columns[None, :]).clamp(max=span - 2)
        valid = columns[None, :] < count[:, None]
        parts.append(logprobs.gather(1, pick).masked_fill(~valid, 0.0))
        if compute_entropy:
            if entropy is None:
                raise InputError("compute_entropy=True but the forward returned no entropies")
            ent_parts.append(entropy.gather(1, pick).masked_fill(~valid, 0.0))
    order = torch.tensor([b for rows in groups for b in rows], dtype=torch.long, device=device)

    def assemble(chunks: list[torch.Tensor]) -> torch.Tensor:
        out = torch.zeros(rows_total, width, dtype=torch.float32, device=device)
        return out.index_copy(0, order, torch.cat(chunks).float()) if chunks else out

    return assemble(parts), (assemble(ent_parts) if compute_entropy else None)


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
    forward = backbone_forward(model, temperature=temperature, compute_entropy=compute_entropy,
                               fp32_head=fp32_head, vocab_chunk=vocab_chunk)
    return bucketed_logprobs(forward, unpad_batch(prompt_ids, prompt_mask, completion_ids, completion_mask),
                             max_batch_tokens=max_batch_tokens, compute_entropy=compute_entropy)


__all__ = [
    "DEFAULT_VOCAB_CHUNK",
    "LogprobForward",
    "UnpaddedBatch",
    "backbone_forward",
    "bucketed_logprobs",
    "chunked_logprobs",
    "completion_logprobs",
    "length_buckets",
    "sequence_logprobs",
    "unpad_batch",
]
