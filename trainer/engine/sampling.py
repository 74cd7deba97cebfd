"""Batched next-token sampling on the device, per-row parameters, no host synchronisation.

Every row carries its own temperature, top-k, top-p and log-prob mode as tensors, so one
captured decode step serves any mix of requests. Sampling uses the exponential race
(``argmax(p / E)`` with ``E ~ Exp(1)``, equivalent to Gumbel-max): unlike ``torch.multinomial``
it needs no host sync and is safe inside a CUDA graph.
"""

from __future__ import annotations

import torch

# An Exp(1) draw so close to 0 that p / E overflows could let a zero-probability token win through
# 0 / 0 = NaN; clamping rules that out.
_MIN_EXPONENTIAL = 1e-20


def filter_logits(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Set logits outside each row's top-k, then outside its top-p nucleus, to -inf.

    ``scaled`` [B, V] are temperature-scaled logits; ``top_k`` [B] (0 = off), ``top_p`` [B]
    (1.0 = off). Order and tie rules follow transformers' TopK then TopP warpers: top-p is taken on
    the distribution renormalised after top-k, and the most likely token is always kept.
    """
    vocab = scaled.size(-1)
    sorted_logits, order = scaled.sort(dim=-1, descending=True)
    ranks = torch.arange(vocab, device=scaled.device)
    k = torch.where(top_k > 0, top_k, vocab).clamp(max=vocab)
    sorted_logits = sorted_logits.masked_fill(ranks[None, :] >= k[:, None], float("-inf"))
    probs = sorted_logits.softmax(dim=-1)
    # Probability mass strictly before each token: a token is kept while that mass is < top_p.
    mass_before = probs.cumsum(dim=-1) - probs
    drop = mass_before >= top_p[:, None]
    drop[:, 0] = False
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(scaled).scatter_(-1, order, sorted_logits)


def sample_next(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
    processed: torch.Tensor,
    *,
    filtered: bool,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row; return ``(token_ids [B], logprobs [B] float32)``.

    ``logits`` [B, V] float32. Rows with ``temperature <= 0`` take the argmax of the raw logits
    (ties go to the lowest id, as in ``model.generate``). ``filtered=False`` skips the top-k/top-p
    sort (callers pass it when no row uses them). The returned log-prob is
    ``log_softmax(logits / T)`` at the token (T = 1 for greedy rows) where ``processed`` is False,
    and the log-prob under the top-k/top-p renormalised distribution where it is True.
    """
    greedy = temperature <= 0
    temp = torch.where(greedy, torch.ones_like(temperature), temperature)
    scaled = logits / temp[:, None]
    raw_logp = scaled.log_softmax(dim=-1)
    if filtered:
        proc_logp = filter_logits(scaled, top_k, top_p).log_softmax(dim=-1)
    else:
        proc_logp = raw_logp
    # Exp(1) by inversion (-log U); on CPUs it is several times faster than Tensor.exponential_.
    race = torch.rand(proc_logp.shape, device=proc_logp.device, generator=generator).log_().neg_()
    race.clamp_(min=_MIN_EXPONENTIAL)
    sampled = (proc_logp.exp() / race).argmax(dim=-1)
    tokens = torch.where(greedy, logits.argmax(dim=-1), sampled)
    index = tokens[:, None]
    logp = torch.where(processed, proc_logp.gather(-1, index)[:, 0], raw_logp.gather(-1, index)[:, 0])
    return tokens, logp


__all__ = ["filter_logits", "sample_next"]
