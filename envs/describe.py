"""`describe(env_id)`: what ``rlvr envs list/show`` print about an environment, without crashing."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any

from rlvr.envs.registry import env_record, make


@dataclass
class EnvInfo:
    """One environment as listed: id, description, kind, reward components, or why it is broken."""

    id: str
    description: str = ""
    kind: str = "unknown"  # single-turn, multi-turn, or unknown for non-rlvr gymnasium envs
    components: list[dict[str, Any]] = field(default_factory=list)
    origin: str = "builtin"
    entry_point: str = ""
    package: str = ""
    max_turns: int | None = None
    max_reward: float | None = None
    tasks: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def describe(env_id: str, **kwargs: Any) -> EnvInfo:
    """Build ``env_id`` (with ``kwargs``) and report what it is; failures go in ``error``."""
    rec = env_record(env_id)
    info = EnvInfo(id=rec.id, description=rec.description, origin=rec.origin, entry_point=rec.entry_point, package=rec.package, error=rec.error)
    if rec.error:
        return info
    try:
        env = make(rec.id, **kwargs)
    except Exception as e:  # a broken plugin is listed with its reason, never raised
        info.error = f"{type(e).__name__}: {e}"
        return info
    try:
        raw = env.unwrapped
        from rlvr.envs.core import TextEnv

        if isinstance(raw, TextEnv) or all(hasattr(raw, a) for a in ("rubric", "max_turns", "multi_turn")):
            # TextEnv, or an environment that speaks its vocabulary (the OpenEnv adapter)
            info.description = raw.description or info.description or _doc_line(type(raw))
            info.kind = "multi-turn" if raw.multi_turn else "single-turn"
            info.components = raw.rubric.describe()
            info.max_turns = raw.max_turns
            info.max_reward = raw.max_reward
            info.tasks = repr(getattr(raw, "tasks", "from the environment"))
        else:
            info.description = info.description or _doc_line(type(raw))
    finally:
        try:
            env.close()
        except Exception:
            pass
    return info


def _doc_line(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.strip().splitlines()[0] if doc.strip() else cls.__name__


__all__ = ["EnvInfo", "describe"]
