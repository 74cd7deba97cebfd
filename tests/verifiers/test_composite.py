import pytest

from rlvr.errors import ConfigError
from rlvr.verifiers import CompositeVerifier, FormatVerifier, StringVerifier


def test_weighted_sum_and_zero_weight_components_are_logged():
    v = CompositeVerifier({"answer": (StringVerifier(), 1.0), "format": (FormatVerifier(), 0.0)})
    s = v.score("<think>x</think><answer>Paris</answer>", "paris")
    assert s.reward == 1.0 and s.correct is True
    assert s.components == {"answer": 1.0, "format": 1.0}
    s = v.score("Paris", "paris")
    assert s.reward == 1.0 and s.components["format"] == 0.0


def test_weights_scale_rewards_and_primary_decides_correct():
    v = CompositeVerifier({"format": (FormatVerifier(), 0.2), "answer": (StringVerifier(), 1.0)}, primary="answer")
    s = v.score("<think>x</think><answer>Lyon</answer>", "paris")
    assert s.reward == pytest.approx(0.2)
    assert s.correct is False and s.status == "wrong"


def test_reward_func_accepts_strings_and_chat_messages():
    f = CompositeVerifier({"answer": StringVerifier()}).as_reward_func()
    got = f(prompts=["p", "p"], completions=["answer: a", [{"role": "assistant", "content": "answer: b"}]], answer=["a", "a"])
    assert got == [1.0, 0.0]
    assert f.__name__ == "composite"


def test_format_reward_func_needs_no_reference_column():
    f = FormatVerifier().as_reward_func(name="fmt")
    assert f(prompts=["p"], completions=["<think>x</think><answer>1</answer>"]) == [1.0]


def test_bad_composition_is_a_config_error():
    with pytest.raises(ConfigError):
        CompositeVerifier({})
    with pytest.raises(ConfigError, match="primary"):
        CompositeVerifier({"a": StringVerifier()}, primary="b")
    with pytest.raises(ConfigError, match="components.a"):
        CompositeVerifier({"a": ("not a verifier", 1.0)})
