"""`EnvRunner`: play a batch of episodes against registered environments with a token-level backend.

Every episode is played by rlvr's one episode loop, :func:`rlvr.envs.evaluation.episode.run_episode`
(the loop ``rlvr eval`` uses), on a private asyncio loop. What this module adds is the trainer's
token view: each episode gets a token-level policy (``_TokenTurns``) that renders the opening
messages with the chat template, asks the backend for the next turn given the episode's token
sequence so far, records the model's tokens and log-probs (mask 1), and, through the loop's
``on_step`` hook, appends the environment's reply as template tokens (mask 0), ending the episode
at ``max_turns`` or when the token budget ``max_completion_length`` is spent.

The backend runs on the caller's thread (a ``_Rounds`` or ``_Refill`` scheduler), never on the
event loop. With the rollout engine and multi-turn environments, episodes advance independently:
a finished turn goes to its environment at once and the episode's next turn is queued as soon as
the step returns, while the engine keeps decoding the others (continuous refill). Otherwise
(single-turn environments, ``model.generate``) every running episode gets its next turn from ONE
batched generation call per round, in episode order. Environment steps run concurrently (the
environments' ``astep`` twins await the sandbox and verifier pools; plain Gymnasium environments
step in worker threads), at most ``env_workers`` at a time.

An environment that raises on a model's message does not stop the batch: that episode ends with
reward 0 and status ``error`` (and a warning), since model output must never crash training.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any, Mapping, Sequence

from rlvr.errors import ConfigError
from rlvr.envs.evaluation.episode import run_episode
from rlvr.envs.evaluation.policies.base import Policy, PolicyCallFailed
from rlvr.envs.generation import Completion, Message, SamplingParams
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

    # ------------------------------------------------------------------ episodes
    def run(self, keys: Sequence[TaskKey], params: SamplingParams) -> list[Episode]:
        """Play one episode per key with sampling ``params``; returns them in order."""
        envs = self._envs_for(keys)
        params = replace(params, stop_token_ids=tuple(sorted(set(params.stop_token_ids) | set(self.formatter.stop_ids))))
        episodes = [Episode(key=key) for key in keys]
        session = getattr(self.backend, "session", None)
        refill = session is not None and any(is_multi_turn(e) for e in envs)
        sched: _Scheduler = _Refill(self, params, len(keys)) if refill else _Rounds(self, params, len(keys))
        played = asyncio.run_coroutine_threadsafe(self._play_all(episodes, envs, sched), self.loop.loop)
        try:
            sched.drive()
        except BaseException:
            played.cancel()
            raise
        played.result()
        return episodes

    async def _play_all(self, episodes: list[Episode], envs: list[Any], sched: "_Scheduler") -> None:
        rendered: dict[str, list[int]] = {}  # the G episodes of a group share their prompt
        sem = asyncio.Semaphore(self.env_workers)
        tasks = [asyncio.ensure_future(self._play(i, ep, env, sched, rendered, sem))
                 for i, (ep, env) in enumerate(zip(episodes, envs))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        finally:
            sched.finished()

    async def _play(self, i: int, ep: Episode, env: Any, sched: "_Scheduler", rendered: dict[str, list[int]],
                    sem: asyncio.Semaphore) -> None:
        turns = _TokenTurns(self, ep, i, sched, rendered, sem)
        try:
            record = await run_episode(turns.bounded(env), turns, sched.params, env_id=ep.env_id, task_index=ep.key.env,
                                       sample=i, seed=ep.key.seed, max_turns=self.max_turns, on_step=turns.on_step)
        finally:
            sched.episode_done(i)
        if record.status == "env_error" and record.turns == 0:
            raise ConfigError(f"environments[{ep.env_id}]", f"reset(seed={ep.key.seed}) failed: {record.error}",
                              "check the environment's arguments")
        ep.task_id = record.task_id
        if record.status == "env_error":  # the step raised (logged by the episode loop)
            logger.warning("environment %s raised on a model message (episode scored 0): %s", ep.env_id, record.error)
            ep.error = record.error
            ep.status, ep.success, ep.done = "error", False, True
        elif not ep.done:  # defensive: the loop ended an episode the hooks did not
            self._cut(ep, overlong=False)

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


class _Cut(PolicyCallFailed):
    """The runner ended the episode before this turn (token budget or context full; already recorded)."""


class _BoundedEnv:
    """An environment as the episode loop sees it: reset/step, at most ``env_workers`` at once.

    rlvr environments used as is step through their ``areset``/``astep`` twins; anything else
    (a wrapped or plain Gymnasium environment) through its own ``reset``/``step`` in a thread.
    """

    def __init__(self, env: Any, sem: asyncio.Semaphore) -> None:
        self.env, self.sem = env, sem

    def get_wrapper_attr(self, name: str) -> Any:
        if name in ("areset", "astep"):
            return getattr(self, name)
        return self.env.get_wrapper_attr(name)

    async def areset(self, **kw: Any) -> tuple[Any, dict]:
        async with self.sem:
            core = self.env.unwrapped
            if self.env is core and hasattr(core, "areset"):
                return await core.areset(**kw)
            return await asyncio.to_thread(self.env.reset, **kw)

    async def astep(self, action: str) -> tuple[Any, float, bool, bool, dict]:
        async with self.sem:
            core = self.env.unwrapped
            if self.env is core and hasattr(core, "astep"):
                return await core.astep(action)
            return await asyncio.to_thread(self.env.step, action)


class _TokenTurns(Policy):
    """One episode's model turns for the episode loop, as the trainer's tokens.

    ``complete`` renders the opening messages once (chat template), asks the scheduler for the
    next turn given the token sequence so far and records it; ``on_step`` records the
    environment's step and appends its reply as masked tokens.
    """

    spec = "backend"

    def __init__(self, runner: EnvRunner, ep: Episode, index: int, sched: "_Scheduler",
                 rendered: dict[str, list[int]], sem: asyncio.Semaphore) -> None:
        self.runner, self.ep, self.index, self.sched, self.rendered, self.sem = runner, ep, index, sched, rendered, sem
        self.ended = False
        self.started = False
        self.t_step = 0.0

    def bounded(self, env: Any) -> _BoundedEnv:
        return _BoundedEnv(env, self.sem)

    async def complete(self, messages: Sequence[Message], sampling: SamplingParams, *,
                       task: Mapping[str, Any] | None = None) -> Completion:
        ep = self.ep
        if not self.started:
            self.started = True
            text = json.dumps(list(messages), sort_keys=True, default=str)
            if text not in self.rendered:
                self.rendered[text] = self.runner.formatter.prompt_ids(list(messages))
            ep.prompt_ids = list(self.rendered[text])
            ep.messages = list(messages)
        comp = await self.sched.generate(self.index, ep)
        start = len(ep.completion_ids)
        text, self.ended = self.runner._take_turn(ep, comp)
        self.t_step = time.perf_counter()
        tokens = ep.completion_ids[start:]
        return Completion(text=text, token_ids=tokens, prompt_ids=[], finish_reason="stop" if self.ended else "length",
                          policy_version=comp.policy_version)

    def on_step(self, completion: Completion, result: tuple[Any, float, bool, bool, Any]) -> bool:
        self.ep.env_seconds += time.perf_counter() - self.t_step
        return self.runner._after_step(self.ep, result, ended=self.ended)


class _Scheduler(abc.ABC):
    """Carries generation requests from the episodes (event-loop thread) to the caller's thread,
    which alone calls the backend, and the completions back."""

    def __init__(self, runner: EnvRunner, params: SamplingParams, n: int) -> None:
        self.runner, self.params = runner, params
        self.live = n
        self.pending: dict[int, tuple[Episode, asyncio.Future]] = {}
        self.requests: "queue.Queue[list[tuple[int, Episode, asyncio.Future]] | None]" = queue.Queue()
        self.loop = runner.loop.loop

    # -- event-loop thread
    async def generate(self, i: int, ep: Episode) -> Any:
        if not self.runner._has_budget(ep):
            raise _Cut("token budget spent")
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = (ep, fut)
        self._flush()
        return await fut

    def episode_done(self, i: int) -> None:
        self.live -= 1
        self.pending.pop(i, None)
        self._flush()

    def finished(self) -> None:
        self.requests.put(None)

    def _flush(self) -> None:
        """Round barrier: every running episode waits for its turn -> one batch, in episode order."""
        if self.pending and len(self.pending) >= self.live:
            self.requests.put([(i, ep, fut) for i, (ep, fut) in sorted(self.pending.items())])
            self.pending.clear()

    # -- caller thread
    def resolve(self, fut: asyncio.Future, value: Any = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if not fut.done():
                fut.set_exception(error) if error is not None else fut.set_result(value)

        self.loop.call_soon_threadsafe(settle)

    @abc.abstractmethod
    def drive(self) -> None:
        """Serve generation requests on the caller's thread until every episode has finished."""


class _Rounds(_Scheduler):
    """Each round: ONE batched ``generate`` for every running episode, then all their env steps."""

    def drive(self) -> None:
        runner = self.runner
        while (batch := self.requests.get()) is not None:
            budget = max(runner._budget(ep) for _, ep, _ in batch)
            turn = replace(self.params, max_new_tokens=min(runner.max_new_tokens, budget))
            try:
                completions = runner.backend.generate([ep.prompt_ids + ep.completion_ids for _, ep, _ in batch], turn)
            except BaseException as e:
                for _, _, fut in batch:
                    self.resolve(fut, error=e)
                raise
            for (_, _, fut), comp in zip(batch, completions):
                self.resolve(fut, comp)


class _Refill(_Scheduler):
    """Continuous refill on the engine: a turn is submitted the moment its episode asks for it.

    The first turns go in together, in episode order (the opening round); after that the engine
    keeps decoding the other episodes while an environment steps (``submit`` while iterating
    ``run``), so a slow step (a sandboxed program) never stalls the batch.
    """

    def __init__(self, runner: EnvRunner, params: SamplingParams, n: int) -> None:
        super().__init__(runner, params, n)
        self.opened = False

    def _flush(self) -> None:
        if self.opened:
            for i, (ep, fut) in sorted(self.pending.items()):
                self.requests.put([(i, ep, fut)])
            self.pending.clear()
        elif self.pending and len(self.pending) >= self.live:
            self.opened = True
            super()._flush()

    def drive(self) -> None:
        runner = self.runner
        owner: dict[int, asyncio.Future] = {}
        with contextlib.ExitStack() as stack:
            engine: Any = None

            def submit(batch: list[tuple[int, Episode, asyncio.Future]]) -> None:
                nonlocal engine
                if engine is None:  # sized from the rendered prompts of the opening round
                    longest = max(len(ep.prompt_ids) for _, ep, _ in batch) + runner.max_completion_length + 1
                    engine = stack.enter_context(runner.backend.session(longest))
                for _, ep, fut in batch:
                    if len(ep.prompt_ids) + len(ep.completion_ids) >= engine.max_seq_len:
                        runner._cut(ep, overlong=True)  # the model's context is full
                        self.resolve(fut, error=_Cut("context full"))
                        continue
                    turn = replace(self.params, max_new_tokens=min(runner.max_new_tokens, runner._budget(ep)))
                    owner[engine.submit(ep.prompt_ids + ep.completion_ids, turn)] = fut

            def drain() -> bool:
                """Submit what arrived; True once every episode has ended."""
                while True:
                    try:
                        batch = self.requests.get_nowait()
                    except queue.Empty:
                        return False
                    if batch is None:
                        return True
                    submit(batch)

            done = False
            try:
                while not done or owner:
                    if owner:
                        for comp in engine.run():
                            self.resolve(owner.pop(comp.index), comp)
                            done = drain() or done
                        if owner:
                            raise RuntimeError(f"the rollout engine finished without {len(owner)} submitted requests")
                        continue
                    batch = self.requests.get()
                    if batch is None:
                        done = True
                    else:
                        submit(batch)
            except BaseException as e:
                for fut in owner.values():
                    self.resolve(fut, error=e)
                raise


__all__ = ["EnvRunner", "make_env", "is_multi_turn"]
