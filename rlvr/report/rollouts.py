"""Sample rollouts as the report's rollout browser shows them: bounded in size, model text kept inert.

Model output is untrusted and may be huge: every message is cut to ``MAX_CHARS`` characters,
every episode to ``MAX_MESSAGES`` messages, every run to ``MAX_PER_RUN`` rollouts (spread over
the whole run), and the JSON is escaped so that no ``</script>`` or markup in a completion can
leave the data block. The page's script renders it with ``textContent`` only.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rlvr.report.load import Source

MAX_PER_RUN = 400
MAX_MESSAGES = 40
MAX_CHARS = 4000


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + f"\n… [{len(text) - MAX_CHARS} more characters not shown]"
    return text


def _messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        return []
    out = []
    for m in raw[:MAX_MESSAGES]:
        if isinstance(m, dict):
            out.append({"role": str(m.get("role", "?"))[:40], "content": _text(m.get("content", ""))})
    if len(raw) > MAX_MESSAGES:
        out.append({"role": "note", "content": f"{len(raw) - MAX_MESSAGES} more messages not shown"})
    return out


def _spread(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` rows, taken evenly over the run (early, middle and late steps all appear)."""
    if len(rows) <= limit:
        return rows
    stride = len(rows) / limit
    return [rows[int(i * stride)] for i in range(limit)]


def rollout_records(source: Source) -> list[dict[str, Any]]:
    """One compact record per shown rollout: run, step, environment, rewards, advantage, messages."""
    records = []
    for run in source.runs:
        for s in _spread(run.samples, MAX_PER_RUN):
            components = s.get("components") if isinstance(s.get("components"), dict) else {}
            records.append({
                "algo": run.algorithm,
                "seed": run.seed,
                "step": int(_num(s.get("step")) or 0),
                "env": str(s.get("env_id", ""))[:200],
                "reward": _num(s.get("reward")),
                "success": bool(s.get("success")),
                "status": str(s.get("status", ""))[:40],
                "components": {str(k)[:60]: _num(v) for k, v in list(components.items())[:20]},
                "advantage": _num(s.get("advantage")),
                "turns": int(_num(s.get("turns")) or 0),
                "tokens": int(_num(s.get("model_tokens")) or 0),
                "truncated": bool(s.get("truncated")),
                "messages": _messages(s.get("messages")),
            })
    return records


def script_json(data: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left raw."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


__all__ = ["rollout_records", "script_json", "MAX_PER_RUN", "MAX_CHARS", "MAX_MESSAGES"]
