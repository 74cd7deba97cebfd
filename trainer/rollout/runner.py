"""`EnvRunner`: play a batch of episodes against registered environments, turn by turn.

With the rollout engine and multi-turn environments, episodes advance independently: a finished
turn goes to its environment at once and the episode's next turn is queued as soon as the step
returns, while the engine keeps decoding the others (continuous refill). Otherwise (single-turn
environments, ``model.generate``) every running episode gets its next turn from ONE batched
generation call per round. Environment steps run concurrently on a private asyncio loop (the
environments' ``astep`` twins await the sandbox and verifier pools; plain Gymnasium environments
step in worker threads), at most ``env_workers`` at a time. Episodes end when the environment
says so, at ``max_turns``, or when the token budget ``max_completion_length`` is spent.

An environment that raises on a model's message does not stop the batch: that episode ends with
reward 0 and status ``error`` (and a warning), since model output must never crash training.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any, Sequence

from rlvr.errors import ConfigError
from rlvr.envs.generation import SamplingParams
from rlvr.trainer.rollout.backends import GenerationBackend
from rlvr.trainer.rollout.chat import ChatFormatter
from rlvr.trainer.rollout.episode import Episode
from rlvr.trainer.rollout.tasks import TaskKey
from rlvr.trainer.run.config import EnvConfig

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


def make_env(entry: EnvConfig) -> Any:
    """An environment of the mixture, made by rlvr's one ``make_env`` (the one `rlvr eval` uses)."""
    from rlvr.envs.evaluation.runner import make_env as make

    return make(entry.id, entry.kwargs, field=f"environments[{entry.id}]", kwargs_field=f"environments[{entry.id}].kwargs")


def is_multi_turn(env: Any) -> bool:
    """Whether an episode of ``env`` can take several model messages (decides the interleaved path).

    Read on the instance: rlvr environments derive ``multi_turn`` from their ``max_turns`` at
    construction, so the class alone cannot say. Environments that do not say are assumed multi-turn.
    """
    return bool(getattr(env.unwrapped, "multi_turn", True))


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
        entries: Sequence[EnvConfig],
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
        rendered: dict[str, list[int]] = {}  # the G episodes of a group share their prompt
        for key, res in zip(keys, resets):
            if isinstance(res, Exception):
                raise ConfigError(f"environments[{key.env_id}]", f"reset(seed={key.seed}) failed: {res!r}",
                                  "check the environment's arguments") from res
            obs, info = res
            ep = Episode(key=key, task_id=str(info.get("task_id", "")), messages=list(obs))
            text = json.dumps(obs, sort_keys=True, default=str)
            if text not in rendered:
                rendered[text] = self.formatter.prompt_ids(obs)
            ep.prompt_ids = list(rendered[text])
            episodes.append(ep)
        params = replace(params, stop_token_ids=tuple(sorted(set(params.stop_token_ids) | set(self.formatter.stop_ids))))
        session = getattr(self.backend, "session", None)
        if session is not None and any(is_multi_turn(e) for e in envs):
            longest = max(len(ep.prompt_ids) for ep in episodes) + self.max_completion_length + 1
            with session(longest) as engine:
                self._play_interleaved(engine, episodes, envs, params)
        else:
            self._play_in_rounds(episodes, envs, params)
        return episodes

    def _play_in_rounds(self, episodes: list[Episode], envs: list[Any], params: SamplingParams) -> None:
        """Each round: one batched generation for every running episode, then all their env steps."""
        active = list(range(len(episodes)))
        while active:
            active = [i for i in active if self._has_budget(episodes[i])]
            if not active:
                break
            budget = max(self._budget(episodes[i]) for i in active)
            completions = self.backend.generate([episodes[i].prompt_ids + episodes[i].completion_ids for i in active],
                                                replace(params, max_new_tokens=min(self.max_new_tokens, budget)))
            actions = {i: self._take_turn(episodes[i], comp) for i, comp in zip(active, completions)}
            t0 = time.perf_counter()
            results = self.loop.run(self._gather([self._step(envs[i], actions[i][0]) for i in active]))
            per_step = (time.perf_counter() - t0) / max(1, len(active))
            still = []
            for i, res in zip(active, results):
                episodes[i].env_seconds += per_step
                if self._after_step(episodes[i], res, ended=actions[i][1]):
                    still.append(i)
            active = still

    def _play_interleaved(self, engine: Any, episodes: list[Episode], envs: list[Any], params: SamplingParams) -> None:
        """Continuous refill: an episode's next turn is queued the moment its env step returns.

        The engine keeps decoding the other episodes meanwhile (``submit`` while iterating
        ``run``), so a slow environment step (a sandboxed program) never stalls the batch.
        """
        owner: dict[int, int] = {}  # engine request id -> episode index
        stepping: dict[Any, tuple[int, bool, float]] = {}  # env-step future -> (episode, ended, start)
        sem = asyncio.Semaphore(self.env_workers)

        async def guarded(coro: Any) -> Any:
            async with sem:
                try:
                    return await coro
                except Exception as e:  # an environment failing on model output must not stop the batch
                    return e

        def submit(i: int) -> None:
            ep = episodes[i]
            if len(ep.prompt_ids) + len(ep.completion_ids) >= engine.max_seq_len:
                self._cut(ep, overlong=True)  # the model's context is full
            elif self._has_budget(ep):
                turn = replace(params, max_new_tokens=min(self.max_new_tokens, self._budget(ep)))
                owner[engine.submit(ep.prompt_ids + ep.completion_ids, turn)] = i

        def settle(block: bool) -> None:
            ready = [f for f in stepping if f.done()]
            if not ready and block:
                done, _ = concurrent.futures.wait(list(stepping), return_when=concurrent.futures.FIRST_COMPLETED)
                ready = list(done)
            for fut in ready:
                i, ended, t0 = stepping.pop(fut)
                episodes[i].env_seconds += time.perf_counter() - t0
                if self._after_step(episodes[i], fut.result(), ended=ended):
                    submit(i)

        for i in range(len(episodes)):
            submit(i)
        while owner or stepping:
            if owner:
                for comp in engine.run():
                    i = owner.pop(comp.index)
                    text, ended = self._take_turn(episodes[i], comp)
                    fut = asyncio.run_coroutine_threadsafe(guarded(self._step(envs[i], text)), self.loop.loop)
                    stepping[fut] = (i, ended, time.perf_counter())
                    settle(block=False)
            if stepping:
                settle(block=not owner)

    # ------------------------------------------------------------------ one turn, one step
    def _budget(self, ep: Episode) -> int:
        return self.max_completion_length - len(ep.completion_ids)

    def _has_budget(self, ep: Episode) -> bool:
        if self._budget(ep) > 0:
            return True
        self._cut(ep, overlong=True)
        return False

    def _take_turn(self, ep: Episode, comp: Any) -> tuple[str, bool]:
        """Record a generated turn (model tokens); returns its text and whether it ended with a stop token."""
        budget = self._budget(ep)
        tokens, lps = comp.token_ids[:budget], comp.logprobs[:budget]
        ep.add(tokens, 1, lps)
        ep.turns += 1
        ended = bool(tokens) and tokens[-1] in self.formatter.stop_ids
        return self.formatter.tokenizer.decode(tokens, skip_special_tokens=True), ended

    def _after_step(self, ep: Episode, res: Any, ended: bool) -> bool:
        """Record an environment step; True when the episode goes on (env turn appended)."""
        if isinstance(res, Exception):
            logger.warning("environment %s raised on a model message (episode scored 0): %r", ep.env_id, res)
            ep.error = repr(res)
            ep.status, ep.success, ep.done = "error", False, True
            return False
        obs, reward, terminated, truncated, info = res
        ep.reward += float(reward)
        for name, value in (info.get("reward_components") or {"reward": float(reward)}).items():
            ep.components[name] = ep.components.get(name, 0.0) + float(value)
        if terminated or truncated:
            self._finish(ep, obs, info, truncated=bool(truncated and not terminated))
            return False
        if ep.turns >= self.max_turns:
            ep.messages = list(obs)
            self._cut(ep, overlong=False)
            return False
        return self._append_env_turn(ep, obs, ended=ended)

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


__all__ = ["EnvRunner", "make_env", "is_multi_turn"]
