"""The engine's on-device sampler: HF-equivalent top-k/top-p, correct frequencies, stop strings."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlvr.trainer.engine.sampling import filter_logits, sample_next  # noqa: E402
from rlvr.trainer.engine.stops import StopStringMatcher, safe_decode  # noqa: E402

pytestmark = pytest.mark.train


@pytest.mark.parametrize("top_k,top_p", [(0, 0.8), (5, 1.0), (7, 0.6), (1, 0.3), (0, 1.0)])
def test_filter_keeps_exactly_what_transformers_warpers_keep(top_k, top_p):
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(top_k))
    expected = logits.clone()
    if top_k:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1:
        expected = TopPLogitsWarper(top_p)(None, expected)
    got = filter_logits(logits, torch.full((6,), top_k), torch.full((6,), top_p))
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    assert torch.equal(got[~torch.isinf(got)], logits[~torch.isinf(got)])


def test_rows_with_different_parameters_are_filtered_independently():
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
    got = filter_logits(logits, torch.tensor([2, 0, 0]), torch.tensor([1.0, 1.0, 0.5]))
    kept = (~torch.isinf(got)).sum(-1).tolist()
    assert kept[0] == 2 and kept[1] == 20 and 1 <= kept[2] < 20


def test_sample_frequencies_follow_the_temperature_scaled_distribution():
    torch.manual_seed(0)
    base = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    rows = 20_000
    logits = base.repeat(rows, 1)
    temp = torch.full((rows,), 0.8)
    tokens, logps = sample_next(logits, temp, torch.zeros(rows, dtype=torch.long), torch.ones(rows),
                                torch.zeros(rows, dtype=torch.bool), filtered=False)
    freq = torch.bincount(tokens, minlength=6).float() / rows
    expected = (base / 0.8).softmax(-1)
    assert (freq - expected).abs().sum() / 2 < 0.02  # total variation distance
    torch.testing.assert_close(logps, (base / 0.8).log_softmax(-1)[tokens])


def test_top_k_sampling_never_leaves_the_top_k_and_greedy_rows_take_the_argmax():
    torch.manual_seed(1)
    logits = torch.randn(4000, 30)
    temp = torch.ones(4000)
    temp[:10] = 0  # greedy rows
    tokens, _ = sample_next(logits, temp, torch.full((4000,), 3), torch.ones(4000),
                            torch.zeros(4000, dtype=torch.bool), filtered=True)
    rank = (logits > logits.gather(-1, tokens[:, None])).sum(-1)
    assert int(rank.max()) < 3
    assert torch.equal(tokens[:10], logits[:10].argmax(-1))
    assert set(rank[10:].tolist()) == {0, 1, 2}


class _Chars:
    """A stand-in tokenizer: token i decodes to chr(97 + i); ids past 25 fail to decode."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(97 + i) if i < 26 else _raise() for i in ids)


def _raise():
    raise ValueError("unknown id")


def test_stop_string_matcher_finds_the_first_completing_token_across_checks():
    matcher = StopStringMatcher(_Chars(), ["cde", "zz"])
    tokens = [0, 1, 2, 3, 4, 5]  # "abcdef"
    assert matcher.find(tokens[:3], 0) == (None, None)
    assert matcher.find(tokens, 3) == (5, "cde")  # "abcde": straddles the earlier check
    assert matcher.find([25, 25, 1], 0) == (2, "zz")


def test_undecodable_model_output_reads_as_empty_text():
    assert safe_decode(_Chars(), [1, 99], True) == ""
    assert StopStringMatcher(_Chars(), ["a"]).find([99, 99], 0) == (None, None)
