"""``AsyncGenerator``: the trainer's side of asynchronous rollouts (PipelineRL-style, bounded staleness).

The trainer ``submit``s orders (a step's task keys and the oldest weights version allowed to
start them), ``publish``es its weights after every optimiser step, and ``take``s an order's
groups when it trains on them. Between those calls a generator process (``generator.py``) keeps
sampling, so generation of step ``t + 1 .. t + k`` overlaps the optimiser's work on step ``t``.

Guarantees:

* **Bounded staleness.** ``take(oid, version, k)`` returns only groups whose oldest model token
  is at most ``k`` versions behind ``version``; staler groups are dropped, counted
  (``async/dropped_stale``) and regenerated with the current weights, so no prompt is lost.
* **Faults.** A generator that dies (killed, out of memory) is noticed while waiting, respawned,
  and every order it had not delivered is sent again (``async/generator_restarts``); one that
  reports an error (a broken environment) raises it in the trainer instead of looping.
* **Order.** Results are matched to orders by id, so the data order is the trainer's.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from rlvr.errors import RlvrError
from rlvr.trainer.asynchronous.generator import Failure, GeneratorSpec, Order, Produced, generator_main
from rlvr.trainer.asynchronous.staleness import group_staleness, histogram, stale_groups
from rlvr.trainer.asynchronous.weights import SharedWeights

logger = logging.getLogger(__name__)

# Respawns allowed without a single order delivered in between (a generator that cannot stay up).
MAX_RESTARTS_WITHOUT_PROGRESS = 3
POLL_S = 0.25


@dataclass
class TakeStats:
    """What one ``take`` cost and found (the step's ``async/*`` metrics are built from these)."""

    staleness: list[int] = field(default_factory=list)
    dropped_stale: int = 0
    wait_s: float = 0.0
    restarts: int = 0
    regenerated_orders: list[int] = field(default_factory=list)


class AsyncGenerator:
    """A generator process fed with orders, following the trainer's weights (see the module docstring).

    Args:
        spec: how the generator rebuilds the policy and plays episodes.
        model: the trainer's policy (its parameters are shared, then published each step).
        version: the version of ``model``'s weights now (the trainer's global step).
    """

    def __init__(self, spec: GeneratorSpec, model: torch.nn.Module, version: int = 0) -> None:
        self.ctx = torch.multiprocessing.get_context("spawn")
        spec.parent_pid = os.getpid()
        self.spec = spec
        self.weights = SharedWeights.from_model(model, self.ctx)
        self.weights.publish(model, version)
        self._init_bookkeeping()
        self._spawn()
        atexit.register(self.close)

    def _init_bookkeeping(self) -> None:
        """Order, delivery and throughput counters (shared by every generator kind)."""
        self.pending: dict[int, Order] = {}  # sent, not delivered
        self.ready: dict[int, Produced] = {}
        self.restarts = 0
        self._no_progress = 0
        self._next_oid = 0
        self._last_busy = self._last_idle = 0.0
        self.tokens = 0
        self.samples = 0
        self.proc: Any = None

    # ------------------------------------------------------------------ process
    def _spawn(self) -> None:
        self.orders = self.ctx.Queue()
        self.results = self.ctx.Queue()
        self.stop = self.ctx.Event()
        # Not a daemon: environments may start their own worker processes (verifier pools). It
        # exits with close(), at interpreter exit (atexit), or by itself when this process dies.
        self.proc = self.ctx.Process(target=generator_main, name="rlvr-generator", daemon=False,
                                     args=(self.spec, self.weights, self.orders, self.results, self.stop, self.restarts))
        self.proc.start()
        self._last_busy = self._last_idle = 0.0  # the new process counts from zero
        for oid in sorted(self.pending):
            self.orders.put(self.pending[oid])

    def alive(self) -> bool:
        """True while the generator process runs."""
        return self.proc is not None and self.proc.is_alive()

    def _restart(self, stats: TakeStats) -> None:
        code = self.proc.exitcode
        self.restarts += 1
        self._no_progress += 1
        if self._no_progress > MAX_RESTARTS_WITHOUT_PROGRESS:
            raise RlvrError(f"the generator process died {self._no_progress} times in a row (last exit code {code}) "
                            "without delivering a rollout; see the log above for its error")
        logger.warning("generator process died (exit code %s); restarting it and regenerating %d in-flight orders",
                       code, len(self.pending))
        stats.restarts += 1
        stats.regenerated_orders.extend(sorted(self.pending))
        for q in (self.orders, self.results):
            q.cancel_join_thread()
        self._spawn()

    # ------------------------------------------------------------------ trainer API
    def publish(self, model: torch.nn.Module, version: int, force: bool = False) -> None:
        """New weights for the generator (it takes them between decode steps); ``force``: even at the same version
        (another policy now)."""
        if force or version != self.weights.version:
            self.weights.publish(model, version)

    def submit(self, step: int, keys: list[str], min_version: int) -> int:
        """Queue an order; returns its id."""
        oid = self._next_oid
        self._next_oid += 1
        order = Order(oid, step, list(keys), int(min_version))
        self.pending[oid] = order
        self.orders.put(order)
        return oid

    def _receive(self, stats: TakeStats, block: bool) -> None:
        try:
            item = self.results.get(timeout=POLL_S) if block else self.results.get_nowait()
        except queue.Empty:
            if not self.alive():
                self._restart(stats)
            return
        if isinstance(item, Failure):
            raise RlvrError(f"the generator process failed: {item.message}")
        if item.oid in self.pending:  # a late duplicate from a replaced process is ignored
            self.pending.pop(item.oid)
            self.ready[item.oid] = item
            self._no_progress = 0

    def take(self, oid: int, version: int, k: int, group_size: int) -> tuple[Produced, TakeStats]:
        """The episodes of order ``oid``, every group at most ``k`` versions behind ``version``."""
        stats = TakeStats()
        t0 = time.perf_counter()
        produced = self._wait(oid, stats)
        staleness = group_staleness(produced.token_versions, group_size, version)
        while True:
            stale = stale_groups(staleness, k)
            if not stale:
                break
            stats.dropped_stale += len(stale)
            keys = [produced.episodes[g * group_size + i].key for g in stale for i in range(group_size)]
            redo = self._wait(self.submit(produced.step, [str(key) for key in keys], version), stats)
            for j, g in enumerate(stale):
                rows = slice(g * group_size, (g + 1) * group_size)
                produced.episodes[rows] = redo.episodes[j * group_size : (j + 1) * group_size]
                produced.token_versions[rows] = redo.token_versions[j * group_size : (j + 1) * group_size]
            staleness = group_staleness(produced.token_versions, group_size, version)
        stats.staleness = staleness
        stats.wait_s = time.perf_counter() - t0
        self.samples += len(produced.episodes)
        self.tokens += sum(sum(e.env_mask) for e in produced.episodes)
        return produced, stats

    def _wait(self, oid: int, stats: TakeStats) -> Produced:
        while oid not in self.ready:
            if oid not in self.pending:
                raise RlvrError(f"order {oid} was never submitted")
            self._receive(stats, block=True)
        return self.ready.pop(oid)

    def generator_times(self, produced: Produced) -> tuple[float, float]:
        """(busy, idle) generator seconds since the previous call, from a delivered order's totals."""
        busy = max(0.0, produced.busy_s - self._last_busy)
        idle = max(0.0, produced.idle_s - self._last_idle)
        self._last_busy, self._last_idle = max(self._last_busy, produced.busy_s), max(self._last_idle, produced.idle_s)
        return busy, idle

    def close(self) -> None:
        """Stop the generator (politely, then by force) and free the queues."""
        if self.proc is None:
            return
        self.stop.set()
        try:
            self.orders.put_nowait(None)
        except Exception:  # a broken queue must not stop shutdown
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        for q in (self.orders, self.results):
            q.cancel_join_thread()
            q.close()
        self.proc = None
        atexit.unregister(self.close)


def step_metrics(stats: TakeStats, k: int, *, wall_s: float, samples: int, tokens: int,
                 generator_busy_s: float, generator_idle_s: float, restarts_total: int) -> dict[str, float]:
    """The ``async/*`` metrics of one training step."""
    s = stats.staleness or [0]
    total_gen = generator_busy_s + generator_idle_s
    wall = max(wall_s, 1e-9)
    return {
        "async/staleness_mean": sum(s) / len(s),
        "async/staleness_max": float(max(s)),
        "async/dropped_stale": float(stats.dropped_stale),
        "async/generator_idle_frac": generator_idle_s / total_gen if total_gen > 0 else 0.0,
        "async/trainer_idle_frac": min(1.0, stats.wait_s / wall),
        "async/samples_per_s": samples / wall,
        "async/tokens_per_s": tokens / wall,
        "async/generator_restarts": float(stats.restarts),
        "async/generator_restarts_total": float(restarts_total),
        "async/max_off_policy_steps": float(k),
        **histogram(stats.staleness, k),
    }


__all__ = ["AsyncGenerator", "TakeStats", "step_metrics"]
