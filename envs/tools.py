"""Tool calls in model text: fenced code blocks, ``<tool_call>`` JSON and OpenAI-style ``tool_calls``.

Accepted ways to call a tool (all parsed without evaluating anything):

1. a fenced block tagged ``python`` (or ``py``)::

       ```python
       print(2 ** 100)
       ```

2. Hermes/Qwen style: ``<tool_call>{"name": "python", "arguments": {"code": "..."}}</tool_call>``;
3. a message that is only JSON in the OpenAI chat-completions shape:
   ``{"tool_calls": [{"type": "function", "function": {"name": "python", "arguments": "{\\"code\\": ...}"}}]}``,
   or one call ``{"name": ..., "arguments": ...}``, or a list of calls.

``arguments`` may be an object or a JSON string (as OpenAI sends it). A call that is present but
malformed comes back as a ``ToolCall`` with ``error`` set, so the environment can tell the model
what was wrong instead of ignoring it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_CALLS_PER_MESSAGE = 8
_FENCE_OPEN = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\n", re.IGNORECASE)


@dataclass(frozen=True)
class ToolCall:
    """One requested call: the tool's name and arguments, or why it could not be read."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def python_tool_schema(description: str) -> dict[str, Any]:
    """The OpenAI ``tools`` entry for the python tool (pass it to an OpenAI-compatible server)."""
    return {
        "type": "function",
        "function": {
            "name": "python",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python 3 source; print what you want to see."}},
                "required": ["code"],
            },
        },
    }


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Every tool call in ``text``, in order (at most ``MAX_CALLS_PER_MESSAGE``)."""
    calls: list[ToolCall] = []
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            calls.extend(_from_json(json.loads(stripped)))
        except (json.JSONDecodeError, RecursionError):
            pass
    for body in _between(text, "<tool_call>", "</tool_call>"):
        try:
            calls.extend(_from_json(json.loads(body.strip())))
        except (json.JSONDecodeError, RecursionError) as e:
            calls.append(ToolCall("", error=f"<tool_call> content is not valid JSON ({e})"))
    pos = 0
    while len(calls) < MAX_CALLS_PER_MESSAGE:
        m = _FENCE_OPEN.search(text, pos)
        end = text.find("```", m.end()) if m else -1
        if end < 0:
            break
        calls.append(ToolCall("python", {"code": text[m.end() : end]}))
        pos = end + 3
    return calls[:MAX_CALLS_PER_MESSAGE]


def _between(text: str, open_tag: str, close_tag: str) -> list[str]:
    # Linear scan (a lazy regex rescans to the end for every unclosed opener: quadratic on 1 MB).
    out, pos = [], 0
    while len(out) < MAX_CALLS_PER_MESSAGE:
        start = text.find(open_tag, pos)
        end = text.find(close_tag, start + len(open_tag)) if start >= 0 else -1
        if end < 0:
            break
        out.append(text[start + len(open_tag) : end])
        pos = end + len(close_tag)
    return out


def _from_json(data: Any) -> list[ToolCall]:
    if isinstance(data, list):
        return [c for item in data for c in _from_json(item)]
    if not isinstance(data, dict):
        return []
    if "tool_calls" in data:
        return _from_json(data["tool_calls"])
    if isinstance(data.get("function"), dict):  # {"type": "function", "function": {...}}
        return _from_json(data["function"])
    if "name" not in data:
        return []
    name = data.get("name")
    if not isinstance(name, str):
        return [ToolCall("", error="a tool call's 'name' must be a string")]
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            return [ToolCall(name, error=f"arguments of {name!r} are not valid JSON ({e})")]
    if not isinstance(args, dict):
        return [ToolCall(name, error=f"arguments of {name!r} must be an object")]
    return [ToolCall(name, args)]


__all__ = ["ToolCall", "parse_tool_calls", "python_tool_schema", "MAX_CALLS_PER_MESSAGE"]
