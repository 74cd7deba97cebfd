import time

from rlvr.verifiers import FormatVerifier


def test_lenient_format_accepts_any_whitespace_layout():
    v = FormatVerifier()
    assert v.score("<think>let me see</think> <answer>4</answer>").reward == 1.0
    assert v.score("\n<think>\nx\n</think>\n\n<answer> 4 </answer>\n").reward == 1.0


def test_lenient_format_rejects_missing_or_misordered_blocks():
    v = FormatVerifier()
    assert v.score("<answer>4</answer>").reward == 0.0
    assert v.score("<answer>4</answer><think>x</think>").reward == 0.0
    assert v.score("<think>x</think><answer>  </answer>").reward == 0.0
    assert v.score("<think>x</think><answer>4</answer> trailing text").reward == 0.0
    assert v.score("<think>x</think><answer>4</answer><answer>5</answer>").reward == 0.0
    assert v.score("plain text").status == "no_answer"


def test_strict_format_needs_the_exact_r1_layout():
    v = FormatVerifier(strict=True)
    assert v.score("<think>\nreason\n</think>\n<answer>\n4\n</answer>").reward == 1.0
    assert v.score("<think>reason</think>\n<answer>\n4\n</answer>").reward == 0.0
    assert v.score("<think>\nreason\n</think>\n<answer>\n4\n</answer>\n").reward == 0.0


def test_answer_only_when_think_not_required_and_custom_tags():
    assert FormatVerifier(require_think=False).score("<answer>4</answer>").reward == 1.0
    v = FormatVerifier(think_tag="reasoning", answer_tag="final")
    s = v.score("<reasoning>r</reasoning><final>7</final>")
    assert s.reward == 1.0 and s.parsed == "7"


def test_megabyte_input_without_closing_tag_is_fast():
    t0 = time.perf_counter()
    s = FormatVerifier().score("<think>" + "a" * 1_000_000 + "<answer>" + "b" * 1_000_000)
    assert s.reward == 0.0
    assert time.perf_counter() - t0 < 5
