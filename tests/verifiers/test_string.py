import pytest

from rlvr.errors import ConfigError
from rlvr.verifiers import StringVerifier, get_verifier


@pytest.mark.parametrize(
    "completion,reference,expected",
    [
        ("The answer is: Paris.", "paris", True),
        ("<answer> The Eiffel Tower </answer>", "eiffel tower", True),
        ("Final answer: Lyon", "Paris", False),
        ("\\boxed{New  York}", "new york", True),
        ("answer: Rome", ["Roma", "Rome"], True),
    ],
)
def test_normalized_mode_ignores_case_articles_and_punctuation(completion, reference, expected):
    assert StringVerifier().score(completion, reference).correct is expected


def test_exact_mode_is_case_sensitive():
    v = StringVerifier(mode="exact")
    assert v.score("<answer>Paris</answer>", "Paris").correct is True
    assert v.score("<answer>paris</answer>", "Paris").correct is False


@pytest.mark.parametrize(
    "completion,letter",
    [("I pick (B).", "B"), ("B", "B"), ("The answer is C", "C"), ("\\boxed{D}", "D"), ("answer: (a)", None)],
)
def test_choice_mode_finds_the_picked_letter(completion, letter):
    s = StringVerifier(mode="choice", choices="ABCD").score(completion, "B")
    if letter is None:
        assert s.status in ("parse_error", "wrong")
    else:
        assert s.parsed == letter
        assert s.correct is (letter == "B")


def test_choice_mode_refuses_hedged_answers():
    s = StringVerifier(mode="choice", choices="ABCD").score("Answer: A or B", "B")
    assert s.correct is False and s.reward == 0.0


def test_regex_mode_matches_the_whole_answer_and_survives_catastrophic_patterns():
    v = StringVerifier(mode="regex", regex_timeout=0.2)
    assert v.score("answer: 42", r"\d+").correct is True
    assert v.score("answer: 42abc", r"\d+").correct is False
    s = v.score("answer: " + "a" * 40 + "!", r"(a+)+$")
    assert s.status in ("timeout", "wrong")
    assert v.score("answer: x", "(").status == "error"


def test_no_answer_and_bad_config():
    assert StringVerifier(extractors=("answer_tag",)).score("no tags here", "x").status == "no_answer"
    with pytest.raises(ConfigError, match="mode"):
        StringVerifier(mode="fuzzy")
    with pytest.raises(ConfigError, match="extractors"):
        StringVerifier(extractors=("boxxed",))
    with pytest.raises(ConfigError, match="did you mean 'string'"):
        get_verifier("strng")
