"""`EnvRunner`: play a batch of episodes against registered environments, turn by turn.

Each round, every episode still running gets its next model turn from ONE batched generation
call; then all their environment steps run concurrently on a private asyncio loop (the
environments' ``astep`` twins await the sandbox and verifier pools; plain Gymnasium environments
step in worker threads), at most ``env_workers`` at a time. Episodes end when the environment
says so, at ``max_turns``, or when the token budget ``max_completion_length`` is spent.

An environment that raises on a model's message does not stop the batch: that episode ends with
reward 0 and status ``error`` (and a warning), since model output must never crash training.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any, Sequence

from rlvr.errors import ConfigError
from rlvr.trainer.engine import SamplingParams
from rlvr.trainer.rollout.backends import GenerationBackend
from rlvr.trainer.rollout.chat import ChatFormatter
from rlvr.trainer.rollout.episode import Episode
from rlvr.trainer.rollout.tasks import EnvEntry, TaskKey

logger = logging.getLogger(__name__)


class _Loop:
    """A private event loop on a daemon thread (the caller may itself be inside a running loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rlvr-env-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def make_env(entry: EnvEntry) -> Any:
    """``gymnasium.make`` an environment of the mixture (``import rlvr.envs`` registers every id)."""
    import gymnasium

    import rlvr.envs  # noqa: F401
    import rlvr.trainer.demo_task  # noqa: F401  (registers demo/Arithmetic-v0)

    try:
        return gymnasium.make(entry.id, **entry.kwargs)
    except gymnasium.error.Error as e:
        raise ConfigError(f"environments[{entry.id}]", str(e), "check the id with `rlvr envs list`") from None
    except TypeError as e:
        raise ConfigError(f"environments[{entry.id}].kwargs", str(e), "check the environment's arguments with `rlvr envs show`") from None


class EnvRunner:
    """Runs episodes of a mixture of environments with a generation backend.

    Args:
        entries: the environments (index = ``TaskKey.env``).
        formatter: chat template -> token ids.
        backend: generation backend (engine or ``model.generate``).
        max_new_tokens: longest model turn.
        max_completion_length: token budget after the prompt, model and environment tokens together.
        max_turns: most model turns per episode.
        env_workers: environment steps in flight at once.
    """

    def __init__(
        self,
        entries: Sequence[EnvEntry],
        formatter: ChatFormatter,
        backend: GenerationBackend,
        *,
        max_new_tokens: int,
        max_completion_length: int,
        max_turns: int = 8,
        env_workers: int = 16,
    ) -> None:
        self.entries = list(entries)
        self.formatter = formatter
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.max_completion_length = max_completion_length
        self.max_turns = max_turns
        self.env_workers = env_workers
        self._pools: dict[int, list[Any]] = defaultdict(list)
        self._loop: _Loop | None = None

    # ------------------------------------------------------------------ environments
    def _envs_for(self, keys: Sequence[TaskKey]) -> list[Any]:
        """One environment instance per key, reusing pooled instances (grown on demand)."""
        used: dict[int, int] = defaultdict(int)
        out = []
        for key in keys:
            if not 0 <= key.env < len(self.entries) or self.entries[key.env].id != key.env_id:
                raise ConfigError("prompt", f"task key {key} does not match this run's environments",
                                  "resume runs with the config they were started with")
            pool = self._pools[key.env]
            if used[key.env] == len(pool):
                pool.append(make_env(self.entries[key.env]))
            out.append(pool[used[key.env]])
            used[key.env] += 1
        return out

    @property
    def loop(self) -> _Loop:
        if self._loop is None:
            self._loop = _Loop()
        return self._loop

    @staticmethod
    async def _reset(env: Any, seed: int) -> tuple[Any, dict]:
        core = env.unwrapped
        if env is core and hasattr(core, "areset"):
            return await core.areset(seed=seed)
        return await asyncio.to_thread(env.reset, seed=seed)

    @staticmethod
    async def _step(env: Any, action: str) -> tuple[Any, float, bool, bool, dict]:
        core = env.unwrapped
        if env is core and hasattr(core, "astep"):
            return await core.astep(action)
        return await asyncio.to_thread(env.step, action)

    async def _gather(self, coros: list[Any]) -> list[Any]:
        sem = asyncio.Semaphore(self.env_workers)

        async def bounded(c: Any) -> Any:
            async with sem:
                try:
                    return await c
                except Exception as e:  # an environment failing on model output must not stop the batch
                    return e

        return await asyncio.gather(*(bounded(c) for c in coros))

    # ------------------------------------------------------------------ episodes
    def run(self, keys: Sequence[TaskKey], params: SamplingParams) -> list[Episode]:
        """Play one episode per key with sampling ``params``; returns them in order."""
        envs = self._envs_for(keys)
        resets = self.loop.run(self._gather([self._reset(env, k.seed) for env, k in zip(envs, keys)]))
        episodes: list[Episode] = []
        for key, res in zip(keys, resets):
            if isinstance(res, Exception):
                raise ConfigError(f"environments[{key.env_id}]", f"reset(seed={key.seed}) failed: {res!r}",
                                  "check the environment's arguments") from res
            obs, info = res
            ep = Episode(key=key, task_id=str(info.get("task_id", "")), messages=list(obs))
            ep.prompt_ids = self.formatter.prompt_ids(obs)
            episodes.append(ep)
        stop_ids = self.formatter.stop_ids
        active = list(range(len(episodes)))
        while active:
            budgets = {i: self.max_completion_length - len(episodes[i].completion_ids) for i in active}
            for i in [i for i in active if budgets[i] <= 0]:
                self._cut(episodes[i], overlong=True)
            active = [i for i in active if budgets[i] > 0]
            if not active:
                break
            turn_params = replace(params, max_new_tokens=min(self.max_new_tokens, max(budgets[i] for i in active)),
                                  stop_token_ids=tuple(sorted(set(params.stop_token_ids) | set(stop_ids))))
            completions = self.backend.generate(
                [episodes[i].prompt_ids + episodes[i].completion_ids for i in active], turn_params)
            actions: dict[int, tuple[str, bool]] = {}
            for i, comp in zip(active, completions):
                ep = episodes[i]
                tokens, lps = comp.token_ids[: budgets[i]], comp.logprobs[: budgets[i]]
                ep.add(tokens, 1, lps)
                ep.turns += 1
                ended = bool(tokens) and tokens[-1] in stop_ids
                text = self.formatter.tokenizer.decode(tokens, skip_special_tokens=True)
                actions[i] = (text, ended)
            t0 = time.perf_counter()
            results = self.loop.run(self._gather([self._step(envs[i], actions[i][0]) for i in active]))
            per_step = (time.perf_counter() - t0) / max(1, len(active))
            still = []
            for i, res in zip(active, results):
                ep = episodes[i]
                ep.env_seconds += per_step
                if isinstance(res, Exception):
                    logger.warning("environment %s raised on a model message (episode scored 0): %r", ep.env_id, res)
                    ep.error = repr(res)
                    ep.status, ep.success, ep.done = "error", False, True
                    continue
                obs, reward, terminated, truncated, info = res
                ep.reward += float(reward)
                for name, value in (info.get("reward_components") or {"reward": float(reward)}).items():
                    ep.components[name] = ep.components.get(name, 0.0) + float(value)
                if terminated or truncated:
                    self._finish(ep, obs, info, truncated=bool(truncated and not terminated))
                    continue
                if ep.turns >= self.max_turns:
                    ep.messages = list(obs)
                    self._cut(ep, overlong=False)
                    continue
                if not self._append_env_turn(ep, obs, ended=actions[i][1]):
                    continue
                still.append(i)
            active = still
        return episodes

    def _append_env_turn(self, ep: Episode, obs: list[dict], ended: bool) -> bool:
        """Add the environment's reply tokens (masked); False when the budget ran out doing so."""
        new_messages = list(obs[len(ep.messages) + 1:])  # after the model's message
        ep.messages = list(obs)
        ids = ([] if ended else [self.formatter.turn_end_id]) + self.formatter.env_turn_ids(new_messages)
        room = self.max_completion_length - len(ep.completion_ids)
        if len(ids) >= room:
            # The reply does not fit with room for a model token: keep what fits (the sequence
            # then ends without the stop token, which is how the trainer recognises overlong ones).
            ep.add(ids[:room], 0)
            self._cut(ep, overlong=True)
            return False
        ep.add(ids, 0)
        return True

    @staticmethod
    def _finish(ep: Episode, obs: list[dict], info: dict, truncated: bool) -> None:
        ep.done = True
        ep.truncated = truncated
        ep.messages = list(obs)
        episode = info.get("episode") or {}
        if isinstance(episode.get("reward_components"), dict):
            ep.components = {k: float(v) for k, v in episode["reward_components"].items()}
        ep.success = bool(info.get("success", ep.reward > 0))
        ep.status = str(info.get("status", "ok" if ep.success else "wrong"))

    @staticmethod
    def _cut(ep: Episode, overlong: bool) -> None:
        """End an episode the environment did not end: no success, reward so far."""
        ep.done = True
        ep.truncated = True
        ep.overlong = overlong
        ep.success = False
        ep.status = "no_answer"

    def close(self) -> None:
        """Close pooled environments and the event loop."""
        for pool in self._pools.values():
            for env in pool:
                try:
                    env.close()
                except Exception:  # closing is best effort
                    logger.debug("closing %r failed", env, exc_info=True)
        self._pools.clear()
        if self._loop is not None:
            self._loop.close()
            self._loop = None


__all__ = ["EnvRunner", "make_env"]
