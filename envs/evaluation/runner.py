"""Run N tasks × K samples of an environment against a policy, concurrently, and report.

``evaluate`` (sync) and ``aevaluate`` (async, for code already inside an event loop) validate
everything before any work starts, then run episodes on ``concurrency`` workers, each owning
one environment instance. Finished episodes are appended to the rollouts file as they finish,
so Ctrl-C (or a policy that stops working) loses nothing finished: the summary and the reward
plot are written for what finished, and :class:`EvalInterrupted` carries that partial report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

from rlvr.errors import ConfigError
from rlvr.validate import positive_int
from rlvr.envs.evaluation.episode import EpisodeRecord, run_episode
from rlvr.envs.evaluation.plot import save_reward_histogram
from rlvr.envs.evaluation.policies import Policy, PolicyError, PolicyOptions, SamplingParams, make_policy
from rlvr.envs.evaluation.report import EvalReport, build_report

logger = logging.getLogger(__name__)

DEFAULT_MAX_TURNS = 100
#: task sources up to this size are enumerated (distinct tasks); larger ones are drawn by seed.
MAX_ENUMERATED_TASKS = 1_000_000
#: a run whose first this-many episodes all failed their policy call (none ever succeeded) stops:
#: the server rejects every request (e.g. a parameter it does not support), so going on wastes time.
FAIL_FAST_EPISODES = 8
SUMMARY_NAME = "summary.json"
PLOT_NAME = "reward_distribution.png"

OnEpisode = Callable[[EpisodeRecord, int, int], None]


class EvalInterrupted(KeyboardInterrupt):
    """Ctrl-C during an evaluation; ``report`` covers the episodes that finished (files written)."""

    def __init__(self, report: EvalReport) -> None:
        super().__init__(f"evaluation interrupted after {report.episodes_done}/{report.episodes_planned} episodes")
        self.report = report


def evaluate(
    env_id: str,
    policy: str | Policy | Callable[..., Any],
    n: int,
    k: int = 1,
    **settings: Any,
) -> EvalReport:
    """Evaluate ``policy`` on ``n`` tasks of ``env_id`` with ``k`` samples each; see the module docstring.

    ``settings`` are :class:`EvalRun`'s keyword arguments (concurrency, seed, sampling, output,
    timeouts, ...), documented there once. Raises :class:`EvalInterrupted` on Ctrl-C and
    ``PolicyError`` when the policy cannot work at all, both after writing what finished.
    """
    run = EvalRun(env_id, policy, n, k, **settings)
    try:
        asyncio.run(run.arun())
    except KeyboardInterrupt:
        raise EvalInterrupted(run.finish(interrupted=True)) from None
    except PolicyError as e:
        run.finish(stopped_by=str(e))
        raise PolicyError(f"{e}; the run stopped and kept {len(run.records)} finished episodes"
                          + (f" in {run.rollouts_path}" if run.rollouts_path else "")) from e
    except BaseException:
        if run.records:  # keep what finished; a run that never started leaves no files behind
            run.finish(stopped_by="error")
        else:
            run.abandon()
        raise
    return run.finish()


async def aevaluate(
    env_id: str,
    policy: str | Policy | Callable[..., Any],
    n: int,
    k: int = 1,
    **kwargs: Any,
) -> EvalReport:
    """:func:`evaluate` for callers already inside an event loop (same arguments).

    Cancellation writes what finished, then propagates.
    """
    run = EvalRun(env_id, policy, n, k, **kwargs)
    try:
        await run.arun()
    except (asyncio.CancelledError, KeyboardInterrupt):
        run.finish(interrupted=True)
        raise
    except BaseException as e:
        if run.records or isinstance(e, PolicyError):
            run.finish(stopped_by=str(e) if isinstance(e, PolicyError) else "error")
        else:
            run.abandon()
        raise
    return run.finish()


class EvalRun:
    """The state of one evaluation: validated settings, environments, finished records, files.

    ``policy`` is a spec (``hf:PATH``, ``openai:BASE_URL#MODEL``, ``python:module:fn``), a
    :class:`Policy`, or a function ``fn(messages[, task]) -> str``. On a finite task list the
    ``n`` tasks are distinct (all of them, with a warning, when the list is shorter; see
    :func:`distinct_task_indices`); otherwise task ``i`` is the one ``reset(seed=seed + i)``
    gives. ``concurrency`` episodes run at once; ``max_tokens``/``temperature``/``top_p`` are the
    sampling settings; ``max_turns`` caps episodes below the environment's own cap. With
    ``output`` (a rollouts .jsonl path), rollouts, ``summary.json`` and
    ``reward_distribution.png`` are written there. ``request_timeout`` bounds each policy request
    as a whole and ``max_retries`` retries transient failures. ``on_episode(record, done,
    total)`` is called as each episode finishes (progress bars).
    """

    def __init__(
        self,
        env_id: str,
        policy: str | Policy | Callable[..., Any],
        n: int,
        k: int = 1,
        *,
        concurrency: int = 8,
        seed: int = 0,
        max_tokens: int = 512,
        temperature: float = 1.0,
        top_p: float = 1.0,
        env_kwargs: Mapping[str, Any] | None = None,
        output: str | Path | None = None,
        max_turns: int | None = None,
        request_timeout: float = 300.0,
        max_retries: int = 5,
        on_episode: OnEpisode | None = None,
    ) -> None:
        for name, value in (("n", n), ("k", k), ("concurrency", concurrency)):
            positive_int(name, value)
        if max_turns is not None:
            positive_int("max_turns", max_turns)
        output_path = Path(output) if output is not None else None
        if output_path is not None and output_path.is_dir():
            raise ConfigError("output", f"{output} is a directory", "pass a file path such as DIR/rollouts.jsonl")
        self.env_id, self.n, self.k, self.seed = env_id, n, k, seed
        positive_int("max_tokens", max_tokens)
        self.sampling = SamplingParams(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p)
        self.env_kwargs = dict(env_kwargs or {})
        self.workers = min(concurrency, n * k)
        self.policy = make_policy(policy, PolicyOptions(concurrency=self.workers, request_timeout=request_timeout,
                                                        max_retries=max_retries, seed=seed))
        self.on_episode = on_episode
        self.envs = [make_env(env_id, self.env_kwargs)]  # the first one now: a bad id fails before any work
        self.max_turns = effective_max_turns(self.envs[0], max_turns)
        self.warnings: list[str] = []
        self.task_indices = distinct_task_indices(self.envs[0], n, seed)
        if self.task_indices is not None and len(self.task_indices) < n:
            self._warn(f"{env_id} has {len(self.task_indices)} distinct tasks, fewer than the {n} asked for: "
                       f"each is evaluated once (x {k} samples)")
            self.n = n = len(self.task_indices)
            self.workers = min(concurrency, n * k)
        self.records: list[EpisodeRecord] = []
        self._first_task_id: dict[int, str] = {}
        self._warned_ids = False
        self._policy_worked = False
        self._policy_failures = 0
        self._t0 = time.perf_counter()
        self._wall: float | None = None
        self._report: EvalReport | None = None
        self.rollouts_path = output_path
        self.summary_path = output_path.parent / SUMMARY_NAME if output_path else None
        self.plot_path = output_path.parent / PLOT_NAME if output_path else None
        self._out = None
        if output_path is not None:
            output_path.parent.mkdir(parents=True, exist_ok=True)
            self._out = output_path.open("w", encoding="utf-8")

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings as recorded in summary.json."""
        s = self.sampling
        return {"concurrency": self.workers, "seed": self.seed, "max_tokens": s.max_new_tokens, "temperature": s.temperature,
                "top_p": s.top_p, "max_turns": self.max_turns, "env_kwargs": self.env_kwargs,
                "task_selection": "distinct" if self.task_indices is not None else "seeded"}

    async def arun(self) -> None:
        """Run every episode; finished ones land in ``self.records`` (and the rollouts file) as they finish."""
        self._t0 = time.perf_counter()
        jobs = iter([(i, j) for i in range(self.n) for j in range(self.k)])  # task-major: a task's samples batch together
        await self.policy.astart()
        try:
            tasks = [asyncio.create_task(self._worker(w, jobs), name=f"eval-worker-{w}") for w in range(self.workers)]
            await _gather_or_cancel(tasks)
        finally:
            self._wall = time.perf_counter() - self._t0
            await self.policy.aclose()
            for env in self.envs:
                _close_env(env)

    async def _worker(self, w: int, jobs: Any) -> None:
        if w == 0:
            env = self.envs[0]
        else:  # the others are made concurrently, in threads; they finish in any order
            env = await asyncio.to_thread(make_env, self.env_id, self.env_kwargs)
            self.envs.append(env)
        for task_index, sample in jobs:  # one shared iterator: each job is taken by exactly one worker
            options = {"index": self.task_indices[task_index]} if self.task_indices is not None else None
            record = await run_episode(env, self.policy, self.sampling, env_id=self.env_id, task_index=task_index,
                                       sample=sample, seed=self.seed + task_index, max_turns=self.max_turns,
                                       options=options)
            self._finished(record)

    def _finished(self, record: EpisodeRecord) -> None:
        self.records.append(record)
        if self._out is not None:
            self._out.write(json.dumps(record.to_json(), ensure_ascii=False, default=str) + "\n")
            self._out.flush()
        first = self._first_task_id.setdefault(record.task_index, record.task_id)
        if first != record.task_id and record.scored and not self._warned_ids:
            self._warned_ids = True
            logger.warning("%s gave task %r then %r for seed %d: it does not reproduce tasks from seeds, so pass@k "
                           "groups samples by seed", self.env_id, first, record.task_id, record.seed)
        if self.on_episode is not None:
            self.on_episode(record, len(self.records), self.n * self.k)
        if record.status != "policy_error" or record.turns > 0:
            self._policy_worked = True
        else:
            self._policy_failures += 1
            if not self._policy_worked and self._policy_failures == min(FAIL_FAST_EPISODES, self.n * self.k):
                raise PolicyError(f"{self.policy.spec}: the first {self._policy_failures} episodes all failed their "
                                  f"first policy call, the last with: {record.error}")

    def _warn(self, message: str) -> None:
        """A problem the user should see beside the numbers: logged now, kept in summary.json and the table."""
        if message not in self.warnings:
            self.warnings.append(message)
            logger.warning("%s", message)

    def abandon(self) -> None:
        """Close and remove the (still empty) rollouts file of a run that failed before any episode finished."""
        if self._out is not None and not self._out.closed:
            self._out.close()
            if not self.records and self.rollouts_path is not None:
                self.rollouts_path.unlink(missing_ok=True)

    def _diagnose(self) -> None:
        """Warn about the two silent ways a served model scores 0: echoing, and prompts past its context."""
        done = [r for r in self.records if r.turns > 0]
        echoed = sum(1 for r in done if echoes_prompt(r.messages))
        if done and echoed * 4 >= len(done):
            self._warn(f"{echoed} of {len(done)} completions start by repeating the prompt: the served model's chat "
                       "template probably has no generation prompt (the model continues the user's text instead of "
                       "answering); serve it with a template that opens the assistant turn")
        context = getattr(self.policy, "context_length", None) or getattr(self.policy, "max_prompt_tokens", None)
        if isinstance(context, int) and context > 0:
            over = [r for r in done if not r.tokens_estimated and r.prompt_tokens / r.turns > context]
            if over:
                longest = max(r.prompt_tokens // r.turns for r in over)
                self._warn(f"{len(over)} of {len(done)} episodes sent prompts longer than the served model's context "
                           f"of {context} tokens (up to {longest}): it cannot see the whole task; use a model with a "
                           "longer context, or shorten the prompts (e.g. -E system_prompt=null)")

    def finish(self, *, interrupted: bool = False, stopped_by: str | None = None) -> EvalReport:
        """Build the report for what finished and write summary.json and the plot (once)."""
        if self._report is not None:
            return self._report
        self._diagnose()
        if self._out is not None and not self._out.closed:
            self._out.close()
        wall = self._wall if self._wall is not None else time.perf_counter() - self._t0
        report = build_report(self.records, env_id=self.env_id, policy=self.policy.spec, n_tasks=self.n, k=self.k,
                              wall_s=wall, interrupted=interrupted, stopped_by=stopped_by, settings=self.settings,
                              warnings=self.warnings)
        if self.rollouts_path is not None:
            report = replace(report, rollouts_path=str(self.rollouts_path), summary_path=str(self.summary_path),
                             plot_path=str(self.plot_path))
            report.write_json(self.summary_path)
            try:
                save_reward_histogram(report.rewards, self.plot_path, f"{self.env_id} · {self.policy.spec}")
            except Exception:  # a plotting problem must not lose the numbers already written
                logger.warning("could not write %s", self.plot_path, exc_info=True)
                report = replace(report, plot_path=None)
        self._report = report
        return report


def echoes_prompt(messages: list[dict[str, Any]], min_chars: int = 16) -> bool:
    """Whether the first model message starts by repeating the message before it (at least
    ``min_chars`` of it, whitespace aside): what a model served without a generation prompt does."""
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            if i == 0:
                return False
            before = " ".join(str(messages[i - 1].get("content", "")).split())
            said = " ".join(str(m.get("content", "")).split())
            head = before[:200]
            return len(head) >= min_chars and said.startswith(head)
    return False


def effective_max_turns(env: Any, asked: int | None) -> int:
    """The turn cap episodes really run under: the smallest of ``asked``, the environment's own
    ``max_turns`` and its spec's ``max_episode_steps`` (100 when none of them says)."""
    caps = [asked, getattr(getattr(env, "unwrapped", env), "max_turns", None),
            getattr(getattr(env, "spec", None), "max_episode_steps", None)]
    known = [c for c in caps if isinstance(c, int) and not isinstance(c, bool) and c >= 1]
    return min(known) if known else DEFAULT_MAX_TURNS


def distinct_task_indices(env: Any, n: int, seed: int) -> list[int] | None:
    """The task indices of an evaluation on a finite task list: ``n`` distinct ones (all, when fewer).

    Drawing tasks by seed picks with replacement (18 seeds on an 18-task list hit about 11 of
    them), so an rlvr environment whose tasks are a plain finite source (a list, JSONL, a
    dataset; sampled uniformly by index) gets a seeded permutation instead: prefix-stable, so the
    first ``n`` of a larger run are the same tasks. None (seeds as before) for procedural sources
    with an endless range, mixtures, curricula and environments that are not rlvr's.
    """
    from rlvr.envs.core import TextEnv
    from rlvr.envs.sources.base import TaskSource

    raw = getattr(env, "unwrapped", env)
    source = getattr(raw, "tasks", None)
    if not isinstance(raw, TextEnv) or not isinstance(source, TaskSource):
        return None
    if type(source).sample is not TaskSource.sample:  # mixtures, curricula: their own sampling
        return None
    try:
        size = len(source)
    except Exception:
        return None
    if size < 1 or size > MAX_ENUMERATED_TASKS:
        return None
    import numpy as np

    return [int(i) for i in np.random.default_rng([seed, size]).permutation(size)[:n]]


def make_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, *, field: str = "env_id",
             kwargs_field: str = "env_kwargs") -> Any:
    """``gymnasium.make`` with rlvr's environments registered; bad ids and arguments become ConfigError.

    Any gymnasium id works (rlvr built-ins, ``rlvr.envs`` plugins, or ids registered by hand).
    Evaluation and training both make their environments here; ``field``/``kwargs_field`` name
    the setting the error points at (``env_id`` for `rlvr eval`, ``environments[i]`` in a config).
    """
    import gymnasium

    import rlvr.envs  # noqa: F401  registers built-ins and plugins
    from rlvr.envs.registry import expand_env_id

    given = env_id
    try:
        env_id, env_kwargs = expand_env_id(env_id, env_kwargs)  # openenv:URL -> openenv/Server-v0, url=URL
    except ConfigError as e:
        raise ConfigError(field if e.field == "env_id" else kwargs_field, e.problem, e.fix) from None
    if env_id not in gymnasium.registry:  # Gymnasium's own hint for a wrong case is a bare name ("Reverse")
        raise ConfigError(field, f"unknown environment {env_id!r}", _suggest_env(env_id))
    try:
        return gymnasium.make(env_id, **dict(env_kwargs or {}))
    except gymnasium.error.Error as e:
        raise ConfigError(field, str(e), "run `rlvr envs list` to see the registered environments") from None
    except TypeError as e:
        raise ConfigError(kwargs_field, f"{given} rejected its arguments: {e}",
                          f"check the argument names with `rlvr envs show {given}`") from None


def _suggest_env(env_id: str) -> str:
    """rlvr's "did you mean" over rlvr's registry (same id up to case, then another version,
    then the closest spelling); Gymnasium's suggestion of a bare name is no help here."""
    from rlvr.envs.registry import suggest_env_id

    try:
        near = suggest_env_id(env_id)
    except Exception:  # the hint is a nicety; the error itself is already clear
        logger.debug("suggest_env_id(%r) failed", env_id, exc_info=True)
        near = None
    return f"did you mean {near!r}?" if near else "run `rlvr envs list` to see the registered environments"


def default_output(env_id: str, root: str | Path = "runs/eval") -> Path:
    """``runs/eval/<env>-<time>/rollouts.jsonl``: where the CLI writes when no --output is given."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", env_id).strip("_")
    return Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}" / "rollouts.jsonl"


async def _gather_or_cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Await all tasks; the first exception cancels the rest and is raised (like a 3.11 TaskGroup, on 3.10)."""
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    # Several workers may fail in the same loop iteration: read every exception (so asyncio does
    # not warn that one was never retrieved) and raise the first in worker order.
    errors = [t.exception() for t in tasks if t in done and not t.cancelled()]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first


def _close_env(env: Any) -> None:
    try:
        env.close()
    except Exception:  # closing is best effort; the results are already kept
        logger.warning("closing %r failed", env, exc_info=True)


__all__ = ["evaluate", "aevaluate", "EvalRun", "EvalInterrupted", "make_env", "default_output", "effective_max_turns",
           "distinct_task_indices", "echoes_prompt"]
