"""rlvr environments for stock TRL: a ``datasets.Dataset`` of prompts and one reward function per component.

With TRL's ``GRPOTrainer`` and ``GRPOConfig`` (this module never imports TRL)::

    dataset = rlvr.envs.to_dataset("rlvr/Arithmetic-v0", n=512, seed=0, difficulty=2)
    trainer = GRPOTrainer(model, reward_funcs=rlvr.envs.reward_funcs("rlvr/Arithmetic-v0", difficulty=2),
                          args=GRPOConfig(...), train_dataset=dataset)

The dataset's ``prompt`` column is the episode's opening messages (TRL's conversational format,
the system prompt included), ``reference``, ``metadata`` and ``task_prompt`` are the task's (as JSON
text, so tasks with different shapes share one Arrow schema), plus ``task_id`` and ``env_id``. Each reward
function replays the completion through the environment itself (``reset`` on that task, one
``step``), so TRL's reward is exactly the environment's: function ``name`` returns
``weight · value`` of component ``name``, and with TRL's default equal ``reward_weights`` their sum is
the environment's reward. A completion the environment could not score (a verifier ``error``)
gets ``None``, which TRL leaves out of the reward instead of punishing the policy.

Only single-turn environments fit TRL's one-completion-per-prompt contract. ``datasets`` is imported
inside :func:`to_dataset`, so ``import rlvr.envs`` stays light.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rlvr.envs.core import TextEnv
from rlvr.envs.registry import make
from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.validate import positive_int
from rlvr.verifiers.base import completion_text

RewardFunc = Callable[..., list]
_CACHE_SIZE = 4096


def _single_turn_env(env_id: str, env_kwargs: Mapping[str, Any]) -> TextEnv:
    env = make(env_id, **dict(env_kwargs))
    raw = env.unwrapped
    if not isinstance(raw, TextEnv):
        raise ConfigError("env_id", f"{env_id} is not an rlvr text environment", "to_dataset/reward_funcs need a TextEnv")
    if raw.multi_turn:
        raise ConfigError("env_id", f"{env_id} is multi-turn (max_turns={raw.max_turns})",
                          "TRL's GRPOTrainer scores one completion per prompt: use a single-turn environment, or rlvr train")
    return raw


def _indices(size: int, n: int, seed: int) -> list[int]:
    """``n`` distinct task indices drawn with ``seed`` (without building a permutation of a huge source)."""
    rng = np.random.default_rng(seed)
    if n > size:
        raise ConfigError("n", f"asked for {n} distinct tasks but the source has only {size}", f"use n <= {size}")
    if size <= 4 * n:
        return [int(i) for i in rng.permutation(size)[:n]]
    chosen: dict[int, None] = {}
    while len(chosen) < n:
        chosen.setdefault(int(rng.integers(size)), None)
    return list(chosen)


def to_dataset(env_id: str, n: int, seed: int = 0, **env_kwargs: Any) -> Any:
    """``n`` distinct tasks of ``env_id`` as a ``datasets.Dataset`` for TRL (see the module docstring)."""
    try:
        import datasets
    except ImportError:
        from rlvr.errors import DependencyError

        raise DependencyError("datasets", "train") from None
    positive_int("n", n)
    env = _single_turn_env(env_id, env_kwargs)
    rows: dict[str, list] = {"prompt": [], "reference": [], "metadata": [], "task_prompt": [], "task_id": [], "env_id": []}
    try:
        for index in _indices(len(env.tasks), n, seed):
            obs, info = env.reset(seed=seed, options={"index": index})
            task = info["task"]
            rows["prompt"].append([{"role": m["role"], "content": m["content"]} for m in obs])
            rows["reference"].append(json.dumps(task["reference"], default=str))
            rows["metadata"].append(json.dumps(task["metadata"], default=str))
            rows["task_prompt"].append(json.dumps(task["prompt"], default=str))
            rows["task_id"].append(str(info.get("task_id", "")))
            rows["env_id"].append(env_id)
    finally:
        env.close()
    return datasets.Dataset.from_dict(rows)


class _EnvScorer:
    """Scores (prompt, completion, reference, metadata) rows through fresh episodes of one environment.

    Every component function of one :func:`reward_funcs` call shares this object, so TRL calling
    the functions one after another scores each completion once (an LRU cache of component values).
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any]) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        first = _single_turn_env(env_id, self.env_kwargs)
        self.weights = first.rubric.weights
        self._envs: list[TextEnv] = [first]
        self._cache: "OrderedDict[str, tuple[dict[str, float], dict[str, str]]]" = OrderedDict()
        self._lock = threading.Lock()

    def values(self, prompts: Sequence[Any], completions: Sequence[Any], references: Sequence[Any], metadata: Sequence[Any], task_prompts: Sequence[Any]) -> list[tuple[dict[str, float], dict[str, str]]]:
        keys = [json.dumps(row, sort_keys=True, default=str) for row in zip(prompts, completions, references, metadata, task_prompts)]
        with self._lock:
            todo = {k: i for i, k in enumerate(keys) if k not in self._cache}
            if todo:
                rows = [(task_prompts[i] if task_prompts[i] is not None else prompts[i], completions[i], references[i], metadata[i]) for i in todo.values()]
                while len(self._envs) < len(rows):
                    self._envs.append(_single_turn_env(self.env_id, self.env_kwargs))
                results = _run(self._score_all(rows))
                for k, res in zip(todo, results):
                    self._cache[k] = res
                    self._cache.move_to_end(k)
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
            return [self._cache[k] for k in keys]

    async def _score_all(self, rows: list[tuple[Any, Any, Any, Any]]) -> list[tuple[dict[str, float], dict[str, str]]]:
        return list(await asyncio.gather(*(self._score_one(env, *row) for env, row in zip(self._envs, rows))))

    async def _score_one(self, env: TextEnv, prompt: Any, completion: Any, reference: Any, metadata: Any) -> tuple[dict[str, float], dict[str, str]]:
        try:
            text = completion_text(completion)
        except TypeError as e:
            return {}, {name: "error" for name in self.weights}
        task = Task(prompt=_prompt_of(_decode(prompt)), reference=_decode(reference), metadata=_decode(metadata) or {}, id="trl")
        if not isinstance(task.metadata, Mapping):
            task = Task(prompt=task.prompt, reference=task.reference, metadata={}, id="trl")
        await env.areset(seed=0, options={"task": task})
        _, _, _, _, info = await env.astep(text)
        statuses = {n: str(s.get("status")) for n, s in (info.get("scores") or {}).items()}
        return dict(info.get("reward_components", {})), statuses


def _prompt_of(prompt: Any) -> Any:
    """The task's prompt: the ``task_prompt`` column, else the last user message of TRL's ``prompt``."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(m, Mapping) and m.get("role") != "system" for m in prompt) and len(prompt) > 1:
        return prompt
    users = [m.get("content") for m in prompt or [] if isinstance(m, Mapping) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else ""


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # a plain-text reference column written by hand
    return value


def _run(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from rlvr.envs.check import _run_coroutine  # called from inside a loop: a private loop in a thread

    return _run_coroutine(lambda: coro)


def reward_funcs(env_id: str, **env_kwargs: Any) -> list[RewardFunc]:
    """One TRL reward function per reward component of ``env_id`` (see the module docstring)."""
    scorer = _EnvScorer(env_id, env_kwargs)
    return [_component_func(scorer, name, weight) for name, weight in scorer.weights.items()]


def _component_func(scorer: _EnvScorer, name: str, weight: float) -> RewardFunc:
    def reward_func(prompts: Any = None, completions: Any = None, reference: Any = None, metadata: Any = None,
                    task_prompt: Any = None, **_: Any) -> list[float | None]:
        if completions is None:
            raise ConfigError("completions", "the reward function got no completions")
        n = len(completions)
        if reference is None:
            raise ConfigError("reference", "the dataset has no 'reference' column", "build it with rlvr.envs.to_dataset")
        prompts = list(prompts) if prompts is not None else [""] * n
        metadata = list(metadata) if metadata is not None else ["{}"] * n
        task_prompts = list(task_prompt) if task_prompt is not None else [None] * n
        out: list[float | None] = []
        for values, statuses in scorer.values(prompts, list(completions), list(reference), metadata, task_prompts):
            out.append(None if statuses.get(name) == "error" else weight * float(values.get(name, 0.0)))
        return out

    reward_func.__name__ = reward_func.__qualname__ = name
    reward_func.weight = weight  # type: ignore[attr-defined]
    return reward_func


__all__ = ["to_dataset", "reward_funcs"]
