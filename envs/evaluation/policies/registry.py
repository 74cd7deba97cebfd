"""Policy registry: spec scheme (``openai``, ``python``, ``hf``, ...) -> factory ``(rest, options) -> Policy``.

A new kind of policy is one file ending in one ``register_policy`` line; ``make_policy`` turns
``"scheme:rest"`` into a policy, or explains which schemes exist. Installed packages add schemes
through the ``rlvr.policies`` entry-point group (``name = "module:factory"``); those entries stay
lazy strings until a spec uses them, which is how the trainer's torch-backed ``hf:`` and
``vllm:`` policies are listed here without this room importing torch or the trainer.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Protocol

from rlvr.envs.evaluation.policies.base import Policy, PolicyOptions
from rlvr.errors import ConfigError
from rlvr.registry import Registry, close_names

ENTRY_POINT_GROUP = "rlvr.policies"


class PolicyFactory(Protocol):
    def __call__(self, rest: str, options: PolicyOptions) -> Policy: ...


POLICIES: Registry[PolicyFactory] = Registry("policy kind", field="policy")
_USAGE: dict[str, str] = {}
_discovered = False
_lock = threading.Lock()


def register_policy(scheme: str, factory: PolicyFactory | str, usage: str | None = None) -> None:
    """Make ``scheme:rest`` specs build ``factory(rest, options)``; ``usage`` shows the spec's shape.

    ``factory`` may be a lazy ``"module:attr"`` string; without ``usage`` the factory's own
    ``usage`` attribute is shown (read when the schemes are listed).
    """
    POLICIES.register(scheme, factory)
    if usage is not None:
        _USAGE[scheme] = usage


def _discover() -> None:
    """Register the schemes installed packages declare (once, as lazy entries)."""
    global _discovered
    with _lock:
        if _discovered:
            return
        _discovered = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in POLICIES:
                POLICIES.register(ep.name, ep.value)


def policy_schemes() -> dict[str, str]:
    """Every registered scheme with its usage line, sorted by scheme."""
    _discover()
    out = {}
    for scheme in POLICIES.names():
        usage = _USAGE.get(scheme)
        if usage is None:
            try:
                usage = getattr(POLICIES.get(scheme), "usage", None)
            except ConfigError:  # its package is not installed: still listed, with the bare shape
                usage = None
        out[scheme] = usage or f"{scheme}:..."
    return out


def make_policy(spec: str | Policy | Callable[..., Any], options: PolicyOptions | None = None) -> Policy:
    """Build the policy a spec names (``openai:BASE_URL#MODEL``, ``python:module:fn``, ``hf:PATH``, ...).

    A :class:`Policy` is returned as is; a plain callable becomes a Python-function policy.
    """
    options = options or PolicyOptions()
    if isinstance(spec, Policy):
        return spec
    if callable(spec):
        from rlvr.envs.evaluation.policies.python_fn import PythonPolicy

        return PythonPolicy(spec)
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError("policy", f"{spec!r} is not a policy spec", _usage_hint())
    scheme, rest = spec.split(":", 1)
    _discover()
    if scheme not in POLICIES:
        near = close_names(scheme, POLICIES.names(), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError("policy", f"unknown policy kind {scheme!r}", hint + _usage_hint())
    factory = POLICIES.get(scheme)
    policy = factory(rest, options)
    policy.spec = spec
    return policy


def _usage_hint() -> str:
    return "write one of: " + ", ".join(policy_schemes().values())


__all__ = ["register_policy", "make_policy", "policy_schemes", "PolicyFactory", "POLICIES", "ENTRY_POINT_GROUP"]
