"""What a saved policy needs so that ``transformers serve`` returns only the model's reply.

``transformers serve`` cuts the assistant message out of the text with a *response template*:
the tokenizer's own, else one it keeps per model type (every Qwen2/Qwen3 checkpoint gets one
anchored at ``<|im_start|>assistant\\n``). A run's chat template need not write that header: the
compact templates of the CPU examples render a prompt as its bare text, and the tiny policy is a
Qwen2. Not finding the anchor, serve parses the whole prompt as the reply, so every answer comes
back starting with the prompt and scores 0. The chat template itself is not at fault (serve
renders the same prompt tokens the run trained on); the fix is a response template that starts
the reply where the prompt ends, written beside it only where serve's own would misparse.
"""

from __future__ import annotations

import json
import logging
import re
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

logger = logging.getLogger(__name__)

_PROBE = [{"role": "user", "content": "What is 2 + 2? Reply with the number only."}]
_REPLY = "The answer is 4."
# The reply starts where the rendered prompt ends, whatever the template wrote before it.
_END_OF_PROMPT = r"\Z"


def serve_parses(tokenizer: Any, template: dict[str, Any] | None, stop_ids: tuple[int, ...]) -> bool:
    """Whether serve, parsing with ``template`` (None: no parsing), returns exactly a reply to a probe prompt."""
    if template is None:
        return True  # serve then returns the plain decode of the generated tokens
    prefix = tokenizer.apply_chat_template(_PROBE, add_generation_prompt=True, tokenize=False)
    generated = list(tokenizer(_REPLY, add_special_tokens=False)["input_ids"]) + [stop_ids[0]]
    try:
        parsed = tokenizer.parse_response(generated, deepcopy(template), prefix=prefix)
    except Exception:  # a template transformers cannot load or apply is as bad as a wrong one
        return False
    return isinstance(parsed, dict) and str(parsed.get("content", "")).strip() == _REPLY


def serve_fallback(tokenizer: Any, model_type: str) -> dict[str, Any] | None:
    """The response template serve would use for this tokenizer and model type (None: it parses nothing)."""
    try:
        from transformers.cli.serving.utils import get_response_template
    except ImportError:  # a transformers without serve (or its extras): only the tokenizer's own counts
        return getattr(tokenizer, "response_template", None)
    return get_response_template(tokenizer, SimpleNamespace(config=SimpleNamespace(model_type=model_type)))


def reply_template(tokenizer: Any, model_type: str, stop_ids: tuple[int, ...]) -> dict[str, Any] | None:
    """A response template under which serve returns only the reply, or None when serve's own already does.

    Keeps the fields of the template serve would use (reasoning, tool calls) and moves only its
    anchor to the end of the prompt; where that still misparses, a plain one (the text up to the
    end-of-turn token) is used. None is also returned (with a warning) when neither works.
    """
    current = serve_fallback(tokenizer, model_type)
    if serve_parses(tokenizer, current, stop_ids):
        return None
    candidates = []
    if current is not None:
        moved = {k: deepcopy(v) for k, v in current.items() if k not in ("start_anchor", "start_anchor_pattern")}
        candidates.append({**moved, "start_anchor_pattern": _END_OF_PROMPT})
    stops = sorted({tokenizer.convert_ids_to_tokens(int(i)) for i in stop_ids}, key=len, reverse=True)
    candidates.append({
        "defaults": {"role": "assistant"},
        "start_anchor_pattern": _END_OF_PROMPT,
        "fields": {"content": {"close_pattern": r"\s*(?:" + "|".join(re.escape(s) for s in stops) + ")",
                               "content": "text"}},
    })
    for candidate in candidates:
        if serve_parses(tokenizer, candidate, stop_ids):
            return candidate
    logger.warning("no response template makes transformers serve return only the reply for this chat template; "
                   "served replies may start with the prompt")
    return None


def write_reply_template(model_dir: str | Path, tokenizer: Any, model_type: str, stop_ids: tuple[int, ...]) -> bool:
    """Add the response template serve needs to a saved tokenizer's ``tokenizer_config.json``; True if one was added."""
    template = reply_template(tokenizer, model_type, stop_ids)
    path = Path(model_dir) / "tokenizer_config.json"
    if template is None or not path.exists():
        return False
    config = json.loads(path.read_text(encoding="utf-8"))
    config["response_template"] = template
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    logger.info("wrote a response template to %s: the chat template writes no assistant header serve can find", path)
    return True


__all__ = ["reply_template", "serve_parses", "write_reply_template"]
