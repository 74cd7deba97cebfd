"""Process-wide sandboxes for environments: one warm worker pool per (backend, limits), not per episode.

An environment instance per concurrent episode is cheap; a sandbox (warm worker processes) is
not. Environments therefore ask :func:`shared_sandbox` for theirs, and every environment with the
same backend and limits shares one. Sharing warm workers shares no state: every run starts
fresh (the sandbox's per-run isolation), so each episode — and each call within it — sees a
clean sandbox. The sandbox room is imported only when a sandbox is first needed, so listing or
checking text-only environments never touches it.
"""

from __future__ import annotations

import threading
from typing import Any

_SANDBOXES: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def shared_sandbox(backend: str = "auto", limits: Any = None) -> Any:
    """The process-wide ``rlvr.sandbox.Sandbox`` for ``backend`` and ``limits`` (built on first use)."""
    from rlvr.sandbox import Sandbox

    lim = as_limits(limits)
    key = (backend, repr(lim))
    with _LOCK:
        sb = _SANDBOXES.get(key)
        if sb is None:
            sb = _SANDBOXES[key] = Sandbox(backend, lim)
        return sb


def as_limits(limits: Any, **defaults: Any) -> Any:
    """``limits`` (a Limits, a dict of its fields, or None) with ``defaults`` for unset fields."""
    from rlvr.sandbox import Limits

    return Limits.coerce(limits, **defaults)


__all__ = ["shared_sandbox", "as_limits"]
