"""``python:module:fn`` — a Python function from chat messages to text (baselines, oracles, tests).

``fn(messages)`` returns the assistant's text; it may be ``async``. A function that also takes
a ``task`` argument gets the environment's task (prompt, reference, metadata), which is how an
oracle reads the reference. Sync functions run in worker threads so slow ones still overlap.
The module part may be a dotted module name or a path to a ``.py`` file.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rlvr.errors import ConfigError
from rlvr.envs.evaluation.policies.base import (
    Completion,
    Message,
    Policy,
    PolicyError,
    PolicyOptions,
    SamplingParams,
    estimate_prompt_tokens,
    estimate_tokens,
)
from rlvr.envs.evaluation.policies.registry import register_policy


class PythonPolicy(Policy):
    """Wraps a function ``fn(messages[, task=...]) -> str`` (sync or async) as a policy."""

    def __init__(self, fn: Callable[..., Any], spec: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError("policy", f"{fn!r} is not callable", "point python: at a function")
        self.fn = fn
        self.spec = spec or f"python:{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))
        self._takes_task = _accepts(fn, "task")

    async def complete(
        self, messages: Sequence[Message], sampling: SamplingParams, *, task: Mapping[str, Any] | None = None
    ) -> Completion:
        kwargs = {"task": task} if self._takes_task else {}
        msgs = [dict(m) for m in messages]  # a copy: the function may mutate what it gets
        try:
            if self._is_async:
                out = await self.fn(msgs, **kwargs)
            else:
                out = await asyncio.to_thread(self.fn, msgs, **kwargs)
        except Exception as e:  # the user's function is broken: every episode would fail alike
            raise PolicyError(f"policy {self.spec} raised {type(e).__name__}: {e}") from e
        if isinstance(out, Completion):
            return out
        if not isinstance(out, str):
            raise PolicyError(f"policy {self.spec} returned {type(out).__name__}, expected str (the assistant's text)")
        return Completion(
            text=out,
            prompt_tokens=estimate_prompt_tokens(messages),
            completion_tokens=estimate_tokens(out),
            estimated=True,
            finish_reason="stop",
        )


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def load_function(target: str) -> Callable[..., Any]:
    """``module:fn`` or ``path/to/file.py:fn`` -> the function (``fn`` may be dotted: ``Class.method``)."""
    if ":" not in target:
        raise ConfigError("policy", f"python:{target} names no function", "write python:module:fn or python:path/to/file.py:fn")
    module_part, attr = target.rsplit(":", 1)
    if not module_part or not attr:
        raise ConfigError("policy", f"python:{target} is incomplete", "write python:module:fn or python:path/to/file.py:fn")
    module = _load_module(module_part)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError("policy", f"{module_part} has no attribute {attr!r}", "check the function name after the last ':'") from None
    if not callable(obj):
        raise ConfigError("policy", f"{module_part}:{attr} is a {type(obj).__name__}, not a function")
    return obj


def _load_module(module_part: str) -> Any:
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).expanduser()
        if not path.is_file():
            raise ConfigError("policy", f"python file {path} does not exist", "check the path before ':fn'")
        name = f"rlvr_policy_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError("policy", f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[name]
            raise ConfigError("policy", f"importing {path} failed: {type(e).__name__}: {e}") from e
        return module
    try:
        return importlib.import_module(module_part)
    except ImportError as e:
        raise ConfigError("policy", f"cannot import module {module_part!r}: {e}", "is it on PYTHONPATH / installed?") from e


def _from_spec(rest: str, options: PolicyOptions) -> Policy:
    return PythonPolicy(load_function(rest), spec=f"python:{rest}")


register_policy("python", _from_spec, "python:module:fn")

__all__ = ["PythonPolicy", "load_function"]
