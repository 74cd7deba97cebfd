"""Policy registry: spec scheme (``hf``, ``openai``, ``python``) -> factory.

A new kind of policy is one file ending in one ``register_policy`` line; ``make_policy`` turns
``"scheme:rest"`` into a policy, or explains which schemes exist.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Protocol

from rlvr.errors import ConfigError
from rlvr.envs.evaluation.policies.base import Policy, PolicyOptions


class PolicyFactory(Protocol):
    def __call__(self, rest: str, options: PolicyOptions) -> Policy: ...


_REGISTRY: dict[str, tuple[PolicyFactory, str]] = {}


def register_policy(scheme: str, factory: PolicyFactory, usage: str) -> None:
    """Make ``scheme:rest`` specs build ``factory(rest, options)``; ``usage`` shows the spec's shape."""
    _REGISTRY[scheme] = (factory, usage)


def policy_schemes() -> dict[str, str]:
    """Every registered scheme with its usage line, sorted by scheme."""
    return {s: u for s, (_, u) in sorted(_REGISTRY.items())}


def make_policy(spec: str | Policy | Callable[..., Any], options: PolicyOptions | None = None) -> Policy:
    """Build the policy a spec names (``hf:PATH``, ``openai:BASE_URL#MODEL``, ``python:module:fn``).

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
    if scheme not in _REGISTRY:
        close = difflib.get_close_matches(scheme, _REGISTRY, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError("policy", f"unknown policy kind {scheme!r}", hint + _usage_hint())
    factory, _ = _REGISTRY[scheme]
    policy = factory(rest, options)
    policy.spec = spec
    return policy


def _usage_hint() -> str:
    return "write one of: " + ", ".join(policy_schemes().values())


__all__ = ["register_policy", "make_policy", "policy_schemes", "PolicyFactory"]
