"""Spaces that hold real prompts and answers: any Unicode text, chat message lists."""

from __future__ import annotations

from gymnasium import spaces

from rlvr.envs.spaces import ChatMessages, UnicodeText


def test_gymnasium_text_default_rejects_ordinary_prompts_which_is_why_we_need_our_own():
    assert "What is 85+63?" not in spaces.Text(1000)
    assert "√2" not in spaces.Text(1000)


def test_unicode_text_holds_prompts_math_symbols_emoji_and_the_empty_answer():
    space = UnicodeText()
    for text in ("What is 85+63?", "√2", "", "x² + π ≤ ∞", "中文 😀", "line\nbreak\ttab"):
        assert text in space


def test_unicode_text_rejects_non_strings_lone_surrogates_and_overlong_text():
    space = UnicodeText(max_length=5)
    assert 42 not in space
    assert None not in space
    assert "\ud800" not in space
    assert "123456" not in space
    assert "12345" in space


def test_unicode_text_samples_are_reproducible_short_and_inside_the_space():
    a, b = UnicodeText(seed=7), UnicodeText(seed=7)
    samples = [a.sample() for _ in range(50)]
    assert samples == [b.sample() for _ in range(50)]
    assert all(s in a and len(s) <= 64 for s in samples)
    assert any(any(ord(c) > 127 for c in s) for s in samples)  # samples exercise non-ASCII text


def test_chat_messages_accepts_conversations_and_rejects_malformed_ones():
    space = ChatMessages()
    assert [{"role": "system", "content": ""}, {"role": "user", "content": "√2?"}, {"role": "assistant", "content": "1.414"}] in space
    assert [{"role": "tool", "content": "out", "name": "python"}] in space
    assert [] not in space
    assert [{"role": "robot", "content": "x"}] not in space
    assert [{"role": "user", "content": 3}] not in space
    assert [{"role": "user"}] not in space
    assert ({"role": "user", "content": "x"},) not in space


def test_chat_messages_samples_are_reproducible_and_inside_the_space():
    a, b = ChatMessages(seed=3), ChatMessages(seed=3)
    samples = [a.sample() for _ in range(20)]
    assert samples == [b.sample() for _ in range(20)]
    assert all(s in a for s in samples)
