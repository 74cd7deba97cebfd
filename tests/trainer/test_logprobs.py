"""Chunked LM-head log-probs equal the naive full-logits computation, in values and gradients."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlvr.trainer.trl.logprobs import (  # noqa: E402
    chunked_logprobs,
    completion_logprobs,
    length_buckets,
    sequence_logprobs,
)

pytestmark = pytest.mark.train

VOCAB = 64


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    return transformers.Qwen2ForCausalLM(config)


def naive(hidden, weight, bias, targets, temperature):
    logits = (hidden.float() @ weight.float().T + (0 if bias is None else bias.float())) / temperature
    logp = logits.log_softmax(-1)
    return logp.gather(-1, targets[:, None])[:, 0], -(logp.exp() * logp).sum(-1)


def test_chunked_values_and_gradients_equal_full_logits():
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 16, generator=gen, dtype=torch.float64).requires_grad_()
    weight = torch.randn(50, 16, generator=gen, dtype=torch.float64).requires_grad_()
    bias = torch.randn(50, generator=gen, dtype=torch.float64).requires_grad_()
    targets = torch.randint(0, 50, (37,), generator=gen)
    up = torch.randn(37, generator=gen, dtype=torch.float64)
    up_ent = torch.randn(37, generator=gen, dtype=torch.float64)

    lp, ent = chunked_logprobs(hidden, weight, targets, bias=bias, temperature=0.7, compute_entropy=True,
                               vocab_chunk=16)  # 4 vocabulary tiles
    ((lp * up).sum() + (ent * up_ent).sum()).backward()
    got = [t.grad.clone() for t in (hidden, weight, bias)]
    for t in (hidden, weight, bias):
        t.grad = None
    ref_lp, ref_ent = naive(hidden, weight, bias, targets, 0.7)
    ((ref_lp * up).sum() + (ref_ent * up_ent).sum()).backward()

    torch.testing.assert_close(lp.double(), ref_lp.double(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent.double(), ref_ent.double(), atol=1e-5, rtol=1e-5)
    for g, t in zip(got, (hidden, weight, bias)):
        torch.testing.assert_close(g, t.grad, atol=1e-5, rtol=1e-5)


def test_fp32_head_on_bf16_model_matches_fp32_reference_better_than_bf16_head():
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(64, 32, generator=gen).bfloat16()
    weight = (torch.randn(200, 32, generator=gen) * 2).bfloat16().requires_grad_()
    targets = torch.randint(0, 200, (64,), generator=gen)
    ref, _ = naive(hidden.double(), weight.double(), None, targets, 1.0)
    fp32, _ = chunked_logprobs(hidden, weight, targets, fp32_head=True, vocab_chunk=64)
    bf16, _ = chunked_logprobs(hidden, weight, targets, fp32_head=False, vocab_chunk=64)
    assert fp32.dtype == torch.float32
    err32 = (fp32.double() - ref).abs().max()
    assert err32 < 1e-4
    assert err32 < (bf16.double() - ref).abs().max()
    fp32.sum().backward()
    assert weight.grad is not None and weight.grad.dtype == torch.bfloat16


def test_length_buckets_respect_the_token_budget():
    lengths = [5, 30, 7, 12, 12, 3, 40]
    buckets = length_buckets(lengths, 36)
    assert sorted(i for b in buckets for i in b) == list(range(7))
    for bucket in buckets:
        assert len(bucket) == 1 or len(bucket) * max(lengths[i] for i in bucket) <= 36


def test_sequence_logprobs_equal_naive_forward_in_values_and_parameter_gradients():
    model = tiny_model()
    gen = torch.Generator().manual_seed(2)
    seqs = [torch.randint(0, VOCAB, (n,), generator=gen).tolist() for n in (9, 4, 15, 7, 12)]
    starts = [3, 1, 10, 2, 12]
    lps, ents = sequence_logprobs(model, seqs, starts, temperature=0.8, compute_entropy=True,
                                  max_batch_tokens=24, vocab_chunk=16)
    (sum(lp.sum() for lp in lps) + 0.1 * sum(e.sum() for e in ents)).backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    total = 0
    for seq, start, lp, ent in zip(seqs, starts, lps, ents):
        logits = model(torch.tensor([seq])).logits[0, start - 1 : len(seq) - 1].float() / 0.8
        logp = logits.log_softmax(-1)
        ref = logp.gather(-1, torch.tensor(seq[start:])[:, None])[:, 0]
        ref_ent = -(logp.exp() * logp).sum(-1)
        assert lp.shape == (len(seq) - start,)
        torch.testing.assert_close(lp, ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ent, ref_ent, atol=1e-5, rtol=1e-5)
        total = total + ref.sum() + 0.1 * ref_ent.sum()
    total.backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(got[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_completion_logprobs_accept_trl_padded_batches():
    model = tiny_model(seed=3)
    pad = 0
    prompt_ids = torch.tensor([[pad, pad, 5, 6, 7], [8, 9, 10, 11, 12], [pad, pad, pad, pad, 13]])
    prompt_mask = (torch.arange(5)[None, :] >= torch.tensor([2, 0, 4])[:, None]).long()
    completion_ids = torch.tensor([[20, 21, 22, 1, pad], [30, 31, pad, pad, pad], [40, 41, 42, 43, 44]])
    completion_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    logps, ents = completion_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                      compute_entropy=True, max_batch_tokens=8)
    assert logps.shape == ents.shape == (3, 5)
    for b in range(3):
        prompt = prompt_ids[b][prompt_mask[b].bool()].tolist()
        n = int(completion_mask[b].sum())
        comp = completion_ids[b, :n].tolist()
        with torch.no_grad():
            logits = model(torch.tensor([prompt + comp])).logits[0, len(prompt) - 1 : -1].float()
        ref = logits.log_softmax(-1).gather(-1, torch.tensor(comp)[:, None])[:, 0]
        torch.testing.assert_close(logps[b, :n].detach(), ref, atol=1e-5, rtol=1e-5)
        assert torch.all(logps[b, n:] == 0) and torch.all(ents[b, n:] == 0)
    logps.sum().backward()  # differentiable through the masked scatter
    assert model.lm_head.weight.grad is not None
