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


def _trl_style_call(func, prompts, completions, **columns):
    """Call a reward function exactly as TRL 1.16's GRPOTrainer._calculate_rewards does: keyword
    arguments only, completion ids, every dataset column, and the trainer's extra hooks."""
    return func(
        prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(completions),
        trainer_state=object(), log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None, **columns,
    )


def test_as_reward_funcs_gives_one_named_function_per_component_weight_zero_included():
    v = CompositeVerifier({"answer": (StringVerifier(), 1.0), "format": (FormatVerifier(), 0.0)})
    funcs = v.as_reward_funcs()
    assert [f.__name__ for f in funcs] == ["answer", "format"]  # TRL logs rewards/<__name__>/mean
    assert v.reward_weights == [1.0, 0.0]
    completions = ["<think>x</think><answer>Paris</answer>", "Lyon", [{"role": "assistant", "content": "answer: paris"}]]
    per = [_trl_style_call(f, ["p"] * 3, completions, answer=["paris"] * 3) for f in funcs]
    assert per == [[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    # TRL's weighted sum of the per-function rewards is the composite's own reward
    combined = [sum(w * r[i] for w, r in zip(v.reward_weights, per)) for i in range(3)]
    assert combined == [s.reward for s in v.score_many([{"completion": c, "answer": "paris"} for c in completions])]


def test_as_reward_funcs_returns_none_for_rows_the_verifier_could_not_judge():
    v = CompositeVerifier({"answer": StringVerifier()})
    (f,) = v.as_reward_funcs()
    assert _trl_style_call(f, ["p", "p"], [{"no": "content"}, "answer: a"], answer=["a", "a"]) == [None, 1.0]
