"""Asynchronous rollouts from a vLLM server: requests keep flowing while the trainer pushes weights.

``ServerGenerator`` has ``AsyncGenerator``'s trainer API (``submit`` / ``publish`` / ``take``), but
its generator is a thread of the trainer process that plays orders through the vLLM server
backend (``rlvr.trainer.rollout.vllm_backend``: whole-request deadlines, body caps) and needs no
torch model of its own. ``publish`` pushes the weights to the server (TRL's ``VLLMClient`` NCCL
transfer in real runs) on the trainer's thread while the generator thread's requests go on.

Versions: the server holds the version last pushed *completely*; a completion is tagged with the
version whole on the server when its request was sent and the newest one it may hold when the
answer returned (a push under way counts), and the older of the two counts for staleness (a push that lands mid-request leaves the answer's tokens somewhere
between the two, and the bound must hold for all of them). Its behaviour log-probs are the
server's, from whichever weights sampled each token.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Sequence

from rlvr.envs.generation import Completion, SamplingParams
from rlvr.trainer.asynchronous.generator import POLL_S, Failure, Order, Produced
from rlvr.trainer.asynchronous.pipeline import AsyncGenerator
from rlvr.trainer.asynchronous.versioned import VersionedCompletion, VersionedRunner

logger = logging.getLogger(__name__)

# Seconds close() waits for the generator thread to notice the stop flag, before and after closing its connections.
CLOSE_WAIT_S = 2.0


class ServerVersions:
    """The weights version a server holds whole (the last completed push), the newest it may hold in part
    (a push under way), and how many completions had a push land while their request was out."""

    def __init__(self) -> None:
        self.version = -1
        self.newest = -1
        self.cond = threading.Condition()
        self.spanned = 0

    def begin(self, version: int) -> None:
        """A push of ``version`` starts: from now on the server's weights may be partly ``version``."""
        with self.cond:
            self.newest = max(self.newest, int(version))

    def set(self, version: int) -> None:
        """The push of ``version`` is complete."""
        with self.cond:
            self.version = int(version)
            self.newest = max(self.newest, self.version)
            self.cond.notify_all()

    def wait_for(self, version: int, stop: threading.Event) -> bool:
        """Block until the server holds ``version`` or newer; False when ``stop`` is set first."""
        with self.cond:
            while self.version < version:
                if stop.is_set():
                    return False
                self.cond.wait(POLL_S)
        return True


class VersionedServerBackend:
    """A server backend whose completions carry the (older) version current at send and at return."""

    name = "vllm"

    def __init__(self, backend: Any, versions: ServerVersions) -> None:
        self.backend = backend
        self.versions = versions

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        sent = self.versions.version  # whole on the server when the request left
        out = self.backend.generate(prompts, params)
        back = self.versions.newest  # possibly (in part) on the server when the answer came
        version = min(sent, back)
        if back != sent:
            self.versions.spanned += len(out)
        fields = [f.name for f in dataclasses.fields(Completion)]
        return [VersionedCompletion(**({n: getattr(c, n) for n in fields} | {"policy_version": version}),
                                    token_versions=[version] * len(c.token_ids)) for c in out]

    def release(self) -> None:
        self.backend.release()


class ServerGenerator(AsyncGenerator):
    """Orders played against a vLLM server by a generator thread; weights pushed by ``publish``.

    Args:
        backend: the server backend that generates (its own weight sync unused: pushes go through
            ``weight_sync`` here, after each optimiser step, not before a generation).
        make_runner: builds the episode runner over a generation backend (environments, chat
            formatting, episode limits); called once, on the generator thread's behalf.
        params: sampling settings of every order.
        weight_sync: streams a model's weights to the server (None: the server keeps its own).
        model / version: the policy now and its version; pushed before the first order starts.
    """

    def __init__(self, backend: Any, make_runner: Callable[[Any], VersionedRunner], params: SamplingParams,
                 weight_sync: Callable[[Any], None] | None, model: Any, version: int = 0) -> None:
        self.versions = ServerVersions()
        self.server = VersionedServerBackend(backend, versions=self.versions)
        self.runner = make_runner(self.server)
        self.params = params
        self.weight_sync = weight_sync
        self._init_bookkeeping()
        self.pushes: list[tuple[int, float]] = []  # (version, seconds the push took)
        self.publish(model, version, force=True)
        self._spawn()

    # ------------------------------------------------------------------ the generator thread
    def _spawn(self) -> None:
        self.orders: Any = queue.Queue()
        self.results: Any = queue.Queue()
        self.stop: Any = threading.Event()
        self._last_busy = self._last_idle = 0.0
        self.proc = threading.Thread(target=self._serve, name="rlvr-server-generator", daemon=True)
        self.proc.start()
        for oid in sorted(self.pending):
            self.orders.put(self.pending[oid])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def _restart(self, stats: Any) -> None:
        from rlvr.errors import RlvrError

        raise RlvrError("the vLLM generator thread stopped without reporting why; see the log above")

    def _serve(self) -> None:
        busy = idle = 0.0
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    order: Order | None = self.orders.get(timeout=POLL_S)
                except queue.Empty:
                    idle += time.perf_counter() - t0
                    continue
                if order is None or not self.versions.wait_for(order.min_version, self.stop):
                    return
                idle += time.perf_counter() - t0
                t1 = time.perf_counter()
                from rlvr.trainer.rollout.tasks import TaskKey

                episodes, versions = self.runner.run_versioned([TaskKey.parse(k) for k in order.keys], self.params)
                busy += time.perf_counter() - t1
                self.results.put(Produced(order.oid, order.step, episodes, versions, time.perf_counter() - t1,
                                          busy, idle, len(self.pushes)))
        except Exception as e:  # a dead server, a broken environment: the trainer raises it
            self.results.put(Failure(f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))

    # ------------------------------------------------------------------ trainer API
    def publish(self, model: Any, version: int, force: bool = False) -> None:
        """Push ``model``'s weights to the server as ``version`` (requests keep flowing meanwhile)."""
        if version == self.versions.version and not force:
            return
        t0 = time.perf_counter()
        self.versions.begin(version)
        if self.weight_sync is not None:
            self.weight_sync(model)
        self.pushes.append((int(version), time.perf_counter() - t0))
        self.versions.set(version)

    def close(self) -> None:
        """Stop the generator thread and release the runner and the HTTP connections.

        A thread still playing an order when asked to stop has its connections closed under it (its
        requests fail, and nobody reads that failure): closing never waits on a server's answer.
        """
        if self.proc is None:
            return
        self.stop.set()
        self.orders.put(None)
        self.proc.join(timeout=CLOSE_WAIT_S)
        self.server.release()
        self.proc.join(timeout=CLOSE_WAIT_S)
        self.runner.close()
        self.proc = None


__all__ = ["ServerGenerator", "ServerVersions", "VersionedServerBackend"]
