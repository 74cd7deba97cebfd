"""Asynchronous environment rollouts for TRL: ``AsyncEnvRollouts`` is a ``rollout_func`` fed by a generator process.

With ``generation.max_off_policy_steps = k >= 1`` the trainer no longer generates: when TRL asks
for step ``t``'s rollouts, the groups are (usually) already sampled, and the orders for steps
``t + 1 .. t + k`` are in the generator's queue, each allowed to start once the weights are at
most ``k`` versions behind its step. The data order stays TRL's own: the sampler's order is read
ahead (``RepeatSampler`` is seeded), and any call that does not match it (a dynamic-sampling
refill round, a changed sampler) is generated on demand with the current weights.

With ``backend="vllm"`` the generator is a thread that sends requests to the vLLM server
(``rlvr.trainer.asynchronous.server``), and each optimiser step's weights are pushed to the server
while its requests keep flowing.

The returned ``logprobs`` are the behaviour log-probs recorded at sampling time, per token, by
whichever weights sampled that token; ``RLVRTrainer`` anchors ratio losses to them when it sees
``max_off_policy_steps`` on its ``rollout_func``. ``PushWeights`` publishes the weights after
every optimiser step. The run directory's ``async.jsonl`` journals orders, consumptions,
generator restarts and, after ``--resume``, which in-flight orders were regenerated.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, Sequence

from transformers import TrainerCallback

from rlvr.trainer.asynchronous.generator import GeneratorSpec
from rlvr.trainer.asynchronous.pipeline import AsyncGenerator, step_metrics
from rlvr.trainer.asynchronous.server import ServerGenerator
from rlvr.trainer.trl.rollout_func import EnvRollouts, rollout_fields

logger = logging.getLogger(__name__)

# How far past the expected position a call's prompts are looked for in the sampler's order.
SEARCH_AHEAD = 64


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


class AsyncEnvRollouts(EnvRollouts):
    """``EnvRollouts`` whose episodes come from a generator process, at most ``max_off_policy_steps`` stale.

    Args (besides ``EnvRollouts``'):
        max_off_policy_steps: ``k >= 1``, the most optimiser steps a sampled token may lag.
        generator_threads: torch threads of the generator process (the trainer keeps the rest of
            the cores); None = half the cores.
        journal: a JSONL file for orders, consumptions, restarts and resumes (the run directory's
            ``async.jsonl``); None = none.
        pipeline: an existing ``AsyncGenerator`` to reuse (its spec must fit); None = start one.
        weight_sync: with ``backend="vllm"``: how weights reach the server after each optimiser step
            (called with the policy); None = TRL's ``VLLMClient`` NCCL transfer when ``vllm.sync_weights``.
    """

    def __init__(self, entries: Sequence[Any], *, max_off_policy_steps: int, generator_threads: int | None = None,
                 journal: str | Path | None = None, pipeline: AsyncGenerator | None = None,
                 weight_sync: Callable[[Any], None] | None = None, **kwargs: Any) -> None:
        super().__init__(entries, **kwargs)
        if max_off_policy_steps < 1:
            raise ValueError("AsyncEnvRollouts needs max_off_policy_steps >= 1 (0 is EnvRollouts)")
        self.max_off_policy_steps = int(max_off_policy_steps)
        self.generator_threads = generator_threads
        self.journal = Path(journal) if journal is not None else None
        self.pipeline = pipeline
        self._own_pipeline = pipeline is None
        self.weight_sync = weight_sync
        self._schedule: list[list[str]] | None = None
        self._cursor: int | None = None
        self._orders: dict[int, int] = {}  # schedule position -> order id
        self._steps_per_call = 1
        self._max_steps = 1 << 62
        self._last_call: float | None = None
        self.__name__ = "rlvr_async_env_rollouts"

    # ------------------------------------------------------------------ setup
    def _start(self, trainer: Any, prompts: list[str]) -> None:
        import torch

        model = _unwrap(trainer.accelerator.unwrap_model(trainer.model))
        version = int(trainer.state.global_step)
        if self.pipeline is None and self.backend_kind == "vllm":
            self.pipeline = self._server_pipeline(trainer, model, version, len(prompts))
        elif self.pipeline is None:
            cores = os.cpu_count() or 2
            threads = self.generator_threads or max(1, cores // 2)
            spec = GeneratorSpec(
                model_config=model.config, generation_config=getattr(model, "generation_config", None),
                tokenizer=trainer.processing_class, chat_template=self.chat_template, entries=list(self.entries),
                params=self.sampling_params(trainer), max_new_tokens=self.max_new_tokens,
                max_completion_length=self.max_completion_length, max_turns=self.max_turns,
                env_workers=self.env_workers, max_batch=max(1, len(prompts)),
                max_seq_len=256 + self.max_completion_length + 64, threads=threads, seed=int(trainer.args.seed),
                fp32_lm_head=bool(getattr(trainer.args, "cast_lm_head_to_fp32", False)),
            )
            if str(next(model.parameters()).device) == "cpu":
                torch.set_num_threads(max(1, cores - threads))  # the generator has the other cores
            self.pipeline = AsyncGenerator(spec, model, version)
        else:
            self.pipeline.publish(model, version, force=True)  # a reused generator follows this policy now
        args = trainer.args
        self._max_steps = int(args.max_steps) if args.max_steps and args.max_steps > 0 else 1 << 62
        self._steps_per_call = self.steps_per_call(trainer)
        if self.retirement is not None:  # step t's orders go out before steps t-k .. t-1 have been trained
            self.retirement.lag = (self.max_off_policy_steps + 1) * self._steps_per_call
        self._schedule = self._read_schedule(trainer)
        if version > 0:
            self._record_resume(version)

    def _server_pipeline(self, trainer: Any, model: Any, version: int, batch: int) -> ServerGenerator:
        """Generation by a vLLM server (``generation.backend: vllm``): a generator thread sends the requests,
        the weights are pushed after every optimiser step (TRL's NCCL transfer unless ``weight_sync`` is given)."""
        from rlvr.errors import ConfigError
        from rlvr.trainer.asynchronous.versioned import VersionedRunner
        from rlvr.trainer.rollout.chat import ChatFormatter
        from rlvr.trainer.rollout.vllm_backend import VLLMBackend

        if self.vllm is None:
            raise ConfigError("generation.vllm_url", "generation.backend is vllm but no server address is given",
                              "set generation.vllm_url, e.g. http://localhost:8000")
        sync = self.weight_sync
        if sync is None and self.vllm.sync_weights:
            from rlvr.trainer.trl.vllm_sync import trl_weight_sync

            sync = trl_weight_sync(self.vllm.url, next(model.parameters()).device)
        backend = VLLMBackend(self.vllm.url, trainer.processing_class, max_batch=max(1, batch),
                              timeout=self.vllm.timeout)
        formatter = ChatFormatter(trainer.processing_class, self.chat_template)

        def make_runner(server: Any) -> VersionedRunner:
            return VersionedRunner(self.entries, formatter, server, max_new_tokens=self.max_new_tokens,
                                   max_completion_length=self.max_completion_length, max_turns=self.max_turns,
                                   env_workers=self.env_workers)

        try:
            return ServerGenerator(backend, make_runner, self.sampling_params(trainer), sync, model, version)
        except BaseException:
            backend.release()
            raise

    def _read_schedule(self, trainer: Any) -> list[list[str]]:
        """The prompts of every generation call of one epoch, in TRL's sampler order."""
        dataset = trainer.train_dataset
        try:
            sampler = trainer._get_train_sampler(dataset)
            column = list(dataset["prompt"])
            items = list(iter(sampler))
        except Exception as e:  # an iterable dataset or another sampler: every call is generated on demand
            logger.info("asynchronous rollouts cannot read the sampler's order ahead (%s); generating on demand", e)
            return []
        width = int(trainer.args.generation_batch_size) // trainer.accelerator.num_processes
        repeat = trainer.num_iterations * trainer.args.steps_per_generation
        return [[column[i] for i in items[c : c + width]] for c in range(0, len(items), width * repeat)]

    def _locate(self, prompts: list[str]) -> int | None:
        """The schedule position of this call's prompts, or None when they are off the schedule."""
        schedule = self._schedule or []
        start = self._cursor or 0
        candidates = range(start, min(len(schedule), start + SEARCH_AHEAD)) if self._cursor is not None \
            else range(len(schedule))
        for pos in candidates:
            if schedule[pos] == prompts:
                return pos
        return None

    # ------------------------------------------------------------------ weights
    def push(self, model: Any, version: int) -> None:
        """Publish the policy's weights as ``version`` (after an optimiser step)."""
        if self.pipeline is not None:
            self.pipeline.publish(_unwrap(model), int(version))

    # ------------------------------------------------------------------ orders
    def _fill(self, pos: int, version: int, last: int) -> None:
        """Make sure orders exist for schedule positions ``pos .. last``, position ``pos`` being step ``version``."""
        assert self.pipeline is not None and self._schedule is not None
        k = self.max_off_policy_steps
        for j in range(max(pos, self._cursor or 0), min(len(self._schedule), last + 1)):
            step = version + (j - pos) * self._steps_per_call
            if j in self._orders or step >= self._max_steps:
                continue
            self._orders[j] = self.pipeline.submit(step, self._keys(self._schedule[j], step), max(0, step - k))
            self._log({"event": "submitted", "position": j, "step": step, "oid": self._orders[j]})

    def _keys(self, prompts: list[str], version: int) -> list[str]:
        """The keys generated for a call consumed at ``version``: retired ones replaced (a pure function of
        the retirements recorded ``lag`` steps earlier, so resumed and regenerated orders match)."""
        return self.retirement.substitute(prompts, version + 1) if self.retirement is not None else prompts

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        """Step ``t``'s episodes from the generator (orders for ``t + 1 .. t + k`` queued meanwhile)."""
        t_call = time.perf_counter()
        prompts = [str(p) for p in prompts]
        if self.pipeline is None or self._schedule is None:
            self._start(trainer, prompts)
        assert self.pipeline is not None
        version = int(trainer.state.global_step)
        self.push(trainer.accelerator.unwrap_model(trainer.model), version)
        pos = self._locate(prompts)
        if pos is None:  # off the schedule: generate these now, with the current weights
            oid = self.pipeline.submit(version, self._keys(prompts, version), version)
        else:
            self._fill(pos, version, pos + self.max_off_policy_steps)
            oid = self._orders.pop(pos)
            self._cursor = pos + 1
        produced, stats = self.pipeline.take(oid, version, self.max_off_policy_steps, trainer.num_generations)
        episodes = produced.episodes
        self._report(trainer, episodes)  # first: retirements seen here shape the orders submitted next
        if pos is not None:
            self._fill(pos, version, pos + 1 + self.max_off_policy_steps)  # the generator starts on them as soon as the weights allow
        busy, idle = self.pipeline.generator_times(produced)
        wall = (t_call - self._last_call) if self._last_call is not None else time.perf_counter() - t_call
        self._last_call = t_call
        self.pending_metrics.update(step_metrics(
            stats, self.max_off_policy_steps, wall_s=max(wall, time.perf_counter() - t_call), samples=len(episodes),
            tokens=sum(e.model_tokens for e in episodes), generator_busy_s=busy, generator_idle_s=idle,
            restarts_total=self.pipeline.restarts))
        self._log({"event": "consumed", "position": pos, "step": version + 1, "oid": oid,
                   "staleness": stats.staleness, "dropped_stale": stats.dropped_stale,
                   **({"generator_restarts": stats.restarts, "regenerated_orders": stats.regenerated_orders}
                      if stats.restarts else {})})
        return rollout_fields(episodes)

    # ------------------------------------------------------------------ journal
    def _log(self, row: dict[str, Any]) -> None:
        if self.journal is not None:
            with self.journal.open("a") as f:
                f.write(json.dumps(row) + "\n")

    def _record_resume(self, version: int) -> None:
        """After --resume: journal which orders were in flight when the run stopped (they are regenerated)."""
        if self.journal is None or not self.journal.exists():
            return
        submitted: dict[int, int] = {}
        consumed: set[int] = set()
        for line in self.journal.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut by the kill
            if row.get("event") == "resumed":
                submitted.clear()
                consumed.clear()
            elif row.get("event") == "submitted":
                submitted[int(row["position"])] = int(row["step"])
            elif row.get("event") == "consumed" and row.get("position") is not None and int(row["step"]) <= version:
                consumed.add(int(row["position"]))
        lost = sorted(p for p in submitted if p not in consumed)
        self._log({"event": "resumed", "from_step": version, "regenerated_positions": lost,
                   "regenerated_steps": [submitted[p] for p in lost]})

    def close(self) -> None:
        """Stop the generator process (when this object started it) and release the rest."""
        if self.pipeline is not None and self._own_pipeline:
            self.pipeline.close()
        self.pipeline = None
        super().close()


class PushWeights(TrainerCallback):
    """Publish the policy to the generator after every optimiser step."""

    def __init__(self, rollouts: AsyncEnvRollouts) -> None:
        self.rollouts = rollouts

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None:
            self.rollouts.push(model, int(state.global_step))


__all__ = ["AsyncEnvRollouts", "PushWeights"]
