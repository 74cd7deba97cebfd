"""PrimeIntellect ``verifiers`` environments as Gymnasium environments: ``verifiers/<env-id>-v0`` (``pip install 'rlvr[verifiers]'``).

An installed verifiers environment is a distribution that requires ``verifiers`` and ships a
module named after it (``-`` -> ``_``) with ``load_environment(**kwargs)`` (the classic API of
``verifiers`` 0.3: ``SingleTurnEnv``, ``MultiTurnEnv``, ``ToolEnv``). Each is registered as
``verifiers/<env-id>-v0`` without importing it; ``gymnasium.make`` passes its keyword arguments to
``load_environment`` (``env_args``) and rlvr's own ``split``/``system_prompt``/``render_mode``.

An episode replays verifiers' own rollout loop one model message at a time: ``reset`` builds the
rollout state from a dataset row (``init_state`` + ``setup_state``), each ``step`` adds the action
as the model's response, runs the environment's stop conditions and ``env_response`` (tool calls
are read from the text: ``<tool_call>{"name", "arguments"}</tool_call>``), and the final step
scores the rollout with the environment's rubric (``score_rollout``). The rubric's functions are
the reward components, with the rubric's weights, so the episode's return equals the ``reward``
verifiers computes for the same rollout.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import sys
import threading
import time
import uuid
from importlib import metadata as importlib_metadata
from typing import Any, Mapping

from rlvr.envs.core import DEFAULT_PROMPT, TextEnv, Turn
from rlvr.envs.registry import register_env
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.sources.base import TaskSource
from rlvr.envs.task import Task
from rlvr.envs.tools import parse_tool_calls
from rlvr.errors import ConfigError, DependencyError

log = logging.getLogger(__name__)

NAMESPACE = "verifiers"


def installed_environments() -> dict[str, str]:
    """``{env-id: "dist version"}`` of installed distributions that require ``verifiers`` and ship its module."""
    found: dict[str, str] = {}
    try:
        dists = list(importlib_metadata.distributions())
    except Exception:  # a corrupt installed distribution must not break rlvr
        return found
    for dist in dists:
        try:
            name = dist.metadata["Name"]
            requires = dist.requires or []
        except Exception:
            continue
        if not name or name.lower() in ("verifiers", "rlvr"):
            continue
        if not any(_base(r) == "verifiers" and "extra ==" not in r for r in requires):
            continue
        module = name.replace("-", "_").split("/")[-1]
        if not module.isidentifier() or importlib.util.find_spec(module) is None:
            continue
        found[name] = f"{name} {dist.version}"
    return dict(sorted(found.items()))


def _base(requirement: str) -> str:
    import re

    m = re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement)
    return m.group(1).lower() if m else ""


def _vf() -> Any:
    """``verifiers.legacy`` of the installed PyPI package, also when run from rlvr's source tree.

    rlvr's repository has a ``verifiers/`` folder (the ``rlvr.verifiers`` room); with the source
    tree on ``sys.path`` (``python -m pytest`` from its root) a bare ``import verifiers`` would find
    that folder instead, so the installed distribution's directory is put first for this import.
    """
    try:
        dist_root = str(importlib_metadata.distribution("verifiers").locate_file(""))
    except importlib_metadata.PackageNotFoundError as e:
        raise DependencyError("verifiers", "verifiers") from e
    loaded = sys.modules.get("verifiers")
    if loaded is not None and not str(getattr(loaded, "__file__", "") or "").startswith(dist_root):
        for name in [m for m in sys.modules if m == "verifiers" or m.startswith("verifiers.")]:
            del sys.modules[name]
    sys.path.insert(0, dist_root)
    try:
        import verifiers.legacy as vf
    except ImportError as e:
        raise DependencyError("verifiers", "verifiers") from e
    finally:
        sys.path.remove(dist_root)
    return vf


def load(env_id: str, env_args: Mapping[str, Any]) -> Any:
    """The verifiers environment ``env_id`` loaded with ``env_args`` (clear errors when it cannot be)."""
    vf = _vf()
    from verifiers.legacy.utils.env_utils import load_environment

    try:
        env = load_environment(env_id, **dict(env_args))
    except TypeError as e:
        raise ConfigError("env_args", f"verifiers environment {env_id!r} rejected its arguments: {e}") from None
    except (ValueError, RuntimeError) as e:
        raise ConfigError("env", f"verifiers environment {env_id!r} could not be loaded: {e}") from None
    if not isinstance(env, vf.MultiTurnEnv):
        raise ConfigError("env", f"{env_id!r} is a {type(env).__name__}", "rlvr plays verifiers' MultiTurnEnv family (SingleTurnEnv, MultiTurnEnv, ToolEnv)")
    return env


def rubric_weights(rubric: Any) -> dict[str, float]:
    """``{function name: weight}`` over a rubric and any rubric group inside it, in order."""
    out: dict[str, float] = {}
    inner = getattr(rubric, "rubrics", None)
    if inner is not None:
        for r in inner:
            for name, w in rubric_weights(r).items():
                out[name] = out.get(name, 0.0) + w if name in out else w
        return out
    for fn, w in zip(rubric.funcs, rubric.weights):
        out[getattr(fn, "__name__", repr(fn))] = float(w)
    return out


class _Rows(TaskSource):
    """The rows of a verifiers environment's (formatted) dataset as tasks."""

    def __init__(self, env_id: str, dataset: Any) -> None:
        self.name = f"verifiers/{env_id}"
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def get(self, index: int) -> Task:
        index = self._check_index(index)
        row = dict(self.dataset[index])
        prompt = row.get("prompt")
        if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt)):
            prompt = str(row.get("question", ""))
        else:
            prompt = _plain(prompt) if isinstance(prompt, list) else prompt
        meta = {"row": index, "info": row.get("info"), "task": row.get("task")}
        return Task(prompt=prompt, reference=row.get("answer", ""), metadata=meta, id=f"{self.name}/{index}")


def _plain(messages: Any) -> list[dict[str, str]]:
    """verifiers messages (dicts or pydantic models) as rlvr ``{"role", "content"}`` dicts."""
    out = []
    for m in messages:
        d = m.model_dump() if hasattr(m, "model_dump") else dict(m)
        content = d.get("content")
        if not isinstance(content, str):
            content = "" if content is None else json.dumps(content, default=str)
        role = d.get("role") if d.get("role") in ("system", "user", "assistant", "tool") else "user"
        out.append({"role": role, "content": content})
    return out


class VerifiersEnv(TextEnv):
    """One verifiers environment played as a Gymnasium text environment (see the module docstring)."""

    def __init__(self, env_id: str, *, env_args: Mapping[str, Any] | None = None, split: str = "train",
                 system_prompt: str | None = DEFAULT_PROMPT, render_mode: str | None = None, **kwargs: Any) -> None:
        if split not in ("train", "eval"):
            raise ConfigError("split", f"must be 'train' or 'eval', got {split!r}")
        self.vf_env_id = env_id
        self.vf_env = load(env_id, {**dict(env_args or {}), **kwargs})
        dataset = self.vf_env.get_dataset() if split == "train" else self.vf_env.get_eval_dataset()
        weights = rubric_weights(self.vf_env.rubric)
        if not weights:
            raise ConfigError("env", f"verifiers environment {env_id!r} has no reward functions")
        primary = next((n for n, w in weights.items() if w > 0), None)
        rubric = Rubric([Component(n, w, help=f"verifiers reward function {n}") for n, w in weights.items()], primary=primary)
        max_turns = self.vf_env.max_turns if self.vf_env.max_turns > 0 else 100
        self.description = f"verifiers environment {env_id} ({type(self.vf_env).__name__})"
        super().__init__(_Rows(env_id, dataset), rubric, system_prompt=None if system_prompt is DEFAULT_PROMPT else system_prompt,
                         max_turns=max_turns, render_mode=render_mode)
        self._loop = asyncio.new_event_loop()
        self._loop_lock = threading.Lock()
        self._state: Any = None
        self._prompt_messages: Any = None

    # ------------------------------------------------------------------ episode
    def _run(self, coro: Any) -> Any:
        with self._loop_lock:
            return self._loop.run_until_complete(coro)

    def initial_messages(self, task: Task) -> list[dict[str, str]]:
        return [*([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []), *_plain(self._prompt_messages)]

    def on_reset(self, task: Task) -> None:
        index = int(task.metadata.get("row", 0)) if isinstance(task.metadata, Mapping) else 0
        row = dict(self.tasks.dataset[index]) if isinstance(self.tasks, _Rows) else {"prompt": task.prompt, "answer": task.reference}
        row.setdefault("example_id", index)
        self._state = self._run(self._start(row))
        self._prompt_messages = self._state["prompt"]

    async def _start(self, row: dict) -> Any:
        state = await self.vf_env.init_state(row, client=scripted_client(_no_model), model="rlvr-policy", sampling_args={})
        setup = await self.vf_env.setup_state(state)
        return state if setup is None else setup

    def respond(self, action: str) -> Turn:
        return self._run(self._respond(action))

    async def _respond(self, action: str) -> Turn:
        vf = _vf()
        env, state = self.vf_env, self._state
        response = response_for(action, bool(state.get("tool_defs")))
        await env.add_model_response(state, self._prompt_messages, response)
        before = len(self._prompt_messages) + 1  # the prompt so far and the model's message
        if not await env.is_completed(state):
            try:
                self._prompt_messages = await env.get_prompt_messages(state)
            except vf.Error as e:
                state["error"] = e
            if state.get("final_env_response") is None and not await env.is_completed(state):
                reply = _plain(self._prompt_messages)[before:]
                return Turn(reply=reply)
        return await self._finish(before)

    async def _finish(self, before: int) -> Turn:
        env, state = self.vf_env, self._state
        await env.cleanup(state)
        await env.rubric.score_rollout(state)
        await env.rubric.cleanup(state)
        metrics = {k: float(v) for k, v in (state.get("metrics") or {}).items() if k in self.rubric.components}
        final = state.get("final_env_response")
        reply = _plain(final) if final else []
        primary = metrics.get(self.rubric.primary, 0.0)
        error = state.get("error")
        status = "error" if error is not None else ("ok" if primary >= 1.0 else "wrong")
        self.last_vf_reward = float(state.get("reward") or 0.0)
        return Turn(reply=reply, done=True, rewards=metrics, success=primary >= 1.0 and error is None, status=status)

    def reference_action(self) -> str:
        return "" if self.task is None else str(self.task.reference)

    def close(self) -> None:
        try:
            self._loop.close()
        except Exception:
            pass


def scripted_client(respond: Any) -> Any:
    """A verifiers ``Client`` whose responses come from ``respond(prompt_messages, tools) -> Response``.

    rlvr's episodes never call it (the model's messages arrive through ``step``); it is also how a
    rollout is replayed through verifiers' own loop to compare rewards.
    """
    _vf()
    from verifiers.legacy.clients.client import Client

    class _Scripted(Client):
        def setup_client(self, config: Any) -> Any:
            return None

        async def to_native_tool(self, tool: Any) -> Any:
            return tool

        async def to_native_prompt(self, messages: Any) -> Any:
            return messages, {}

        async def get_native_response(self, prompt: Any, model: str, sampling_args: Any, tools: Any = None, **kw: Any) -> Any:
            return respond(prompt, tools)

        async def raise_from_native_response(self, response: Any) -> None:
            return None

        async def from_native_response(self, response: Any) -> Any:
            return response

        async def close(self) -> None:
            return None

    return _Scripted(None)


def response_for(action: str, with_tools: bool) -> Any:
    """The verifiers ``Response`` a model writing ``action`` gives (tool calls read from the text)."""
    from verifiers.legacy.types import Response, ResponseMessage, ToolCall

    calls = parse_tool_calls(action) if with_tools else []
    tool_calls = [ToolCall(id=f"call_{i}_{uuid.uuid4().hex[:8]}", name=c.name, arguments=json.dumps(c.arguments)) for i, c in enumerate(calls)] or None
    message = ResponseMessage(content=action, tool_calls=tool_calls, finish_reason="tool_calls" if tool_calls else "stop", is_truncated=False)
    return Response(id=uuid.uuid4().hex, created=int(time.time()), model="rlvr-policy", message=message)


def _no_model(prompt: Any, tools: Any) -> Any:
    raise RuntimeError("rlvr drives verifiers environments through step(); the model is not called here")


def make_env(env_id: str, **kwargs: Any) -> VerifiersEnv:
    """Gymnasium entry point of ``verifiers/<env-id>-v0``."""
    return VerifiersEnv(env_id, **kwargs)


_REGISTERED: set[str] = set()


def register_all() -> int:
    """Register ``verifiers/<env-id>-v0`` for every installed verifiers environment; returns how many."""
    import gymnasium

    from rlvr.envs import registry

    if importlib.util.find_spec("verifiers") is None:
        return 0
    envs = installed_environments()
    for stale in _REGISTERED - {f"{NAMESPACE}/{e}-v0" for e in envs}:
        gymnasium.registry.pop(stale, None)
        registry._REG.records.pop(stale, None)
    for env_id, package in envs.items():
        gym_id = f"{NAMESPACE}/{env_id}-v0"
        register_env(gym_id, "rlvr.envs.adapters.verifiers_env:make_env", kwargs={"env_id": env_id},
                     description=f"verifiers environment {env_id}", origin="verifiers", package=package)
        _REGISTERED.add(gym_id)
    return len(envs)


__all__ = ["VerifiersEnv", "installed_environments", "load", "rubric_weights", "register_all", "make_env", "scripted_client", "response_for"]
