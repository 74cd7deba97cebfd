"""A saved policy's response template: `transformers serve` must return the reply alone, whatever the chat template."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")
pytestmark = pytest.mark.train

# The CPU examples' compact template: a prompt renders as its bare text, no assistant header.
COMPACT = ("{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] + '<|im_end|>' }}"
           "{% else %}{{ m['content'] + '\n' }}{% endif %}{% endfor %}")
PROMPT = [{"role": "user", "content": "51 + 79 ="}]


def _tokenizer(template):
    from rlvr.trainer.rollout.chat import ChatFormatter
    from rlvr.trainer.tiny import tiny_tokenizer

    tok = tiny_tokenizer(template)
    return tok, ChatFormatter(tok).stop_ids


def _served_reply(tok, template, reply_ids):
    """What serve's parser makes of generated tokens after the rendered PROMPT."""
    prefix = tok.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    return tok.parse_response(reply_ids, template, prefix=prefix)["content"]


def test_a_qwen2_policy_with_a_headerless_template_gets_a_template_that_returns_the_reply_alone():
    from rlvr.trainer.run.serving import reply_template, serve_fallback

    tok, stops = _tokenizer(COMPACT)
    reply = list(tok("130", add_special_tokens=False)["input_ids"]) + [stops[0]]
    # serve's own Qwen2 template finds no "<|im_start|>assistant" and returns the prompt with the reply
    assert _served_reply(tok, serve_fallback(tok, "qwen2"), reply).startswith("51 + 79 =")
    template = reply_template(tok, "qwen2", stops)
    assert template is not None
    assert _served_reply(tok, template, reply) == "130"
    assert "tool_calls" in template["fields"]  # serve's tool-call and reasoning parsing are kept


def test_templates_serve_already_parses_get_nothing_added():
    from rlvr.trainer.run.serving import reply_template

    chatml, stops = _tokenizer(None)  # writes "<|im_start|>assistant\n": serve's Qwen2 anchor
    assert reply_template(chatml, "qwen2", stops) is None
    compact, stops = _tokenizer(COMPACT)
    assert reply_template(compact, "llama", stops) is None  # no serve template for the type: plain decode


def test_the_written_template_loads_with_the_tokenizer_and_leaves_the_prompt_rendering_byte_identical(tmp_path):
    from transformers import AutoTokenizer

    from rlvr.trainer.run.serving import write_reply_template

    tok, stops = _tokenizer(COMPACT)
    tok.save_pretrained(tmp_path)
    assert write_reply_template(tmp_path, tok, "qwen2", stops)
    assert "response_template" in json.loads((tmp_path / "tokenizer_config.json").read_text())
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for gen in (True, False):
        assert loaded.apply_chat_template(PROMPT, add_generation_prompt=gen, tokenize=False) == \
            tok.apply_chat_template(PROMPT, add_generation_prompt=gen, tokenize=False)
    reply = list(tok("130", add_special_tokens=False)["input_ids"]) + [stops[0]]
    assert _served_reply(loaded, loaded.response_template, reply) == "130"

    chatml, stops = _tokenizer(None)
    chatml.save_pretrained(tmp_path / "chatml")
    assert not write_reply_template(tmp_path / "chatml", chatml, "qwen2", stops)
    assert "response_template" not in json.loads((tmp_path / "chatml" / "tokenizer_config.json").read_text())
