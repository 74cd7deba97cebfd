"""Rollouts whose every token knows the policy version that sampled it.

``VersionedEngine`` is the rollout engine with one addition: before each decode step it asks a
``WeightFollower`` for newer weights (copied in place, so nothing is re-captured) and notes, for
every running request, the token index from which the new version applies. A completion then
carries ``token_versions`` (one per token) next to its behaviour log-probs, which the engine
already records at sampling time. ``VersionedBackend`` and ``VersionedRunner`` thread that
through the generation backend and the episode runner, so multi-turn episodes get per-token
versions over all their turns (environment tokens get ``NOT_SAMPLED``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

from rlvr.envs.generation import Completion, SamplingParams
from rlvr.trainer.asynchronous.staleness import NOT_SAMPLED
from rlvr.trainer.asynchronous.weights import WeightFollower
from rlvr.trainer.engine import RolloutEngine
from rlvr.trainer.rollout.backends import EngineBackend
from rlvr.trainer.rollout.episode import Episode
from rlvr.trainer.rollout.runner import EnvRunner


@dataclass(frozen=True)
class VersionedCompletion(Completion):
    """A ``Completion`` plus the policy version of each of its tokens (``policy_version`` = the oldest)."""

    token_versions: list[int] = field(default_factory=list)


def expand_marks(marks: Sequence[tuple[int, int]], n: int) -> list[int]:
    """Per-token versions from change points ``[(first_token_index, version), ...]`` (sorted)."""
    out: list[int] = []
    for j, (start, version) in enumerate(marks):
        end = marks[j + 1][0] if j + 1 < len(marks) else n
        out.extend([version] * max(0, min(end, n) - len(out)))
    if len(out) < n:
        out.extend([marks[-1][1] if marks else NOT_SAMPLED] * (n - len(out)))
    return out[:n]


class VersionedEngine(RolloutEngine):
    """``RolloutEngine`` that takes new weights between decode steps and tags tokens with versions."""

    def __init__(self, model: Any, tokenizer: Any = None, *, follower: WeightFollower, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self.follower = follower
        self._marks: dict[int, list[tuple[int, int]]] = {}

    def refresh(self) -> None:
        """Pick up newer weights (if any) and mark where running requests switch versions."""
        new = self.follower.refresh()
        if new is None:
            return
        busy = [(s, req) for s, req in enumerate(self._slots) if req is not None]
        if busy and self._state is not None:
            n_gen = self._state.n_gen.tolist()
            for slot, req in busy:
                self._marks.setdefault(req.rid, []).append((int(n_gen[slot]), new))

    def _advance(self) -> list[Completion]:
        self.refresh()
        return super()._advance()

    def _prefill(self, batch: list[tuple[int, Any]]) -> None:
        for _, req in batch:
            self._marks[req.rid] = [(0, self.follower.version)]
        super()._prefill(batch)

    def _harvest(self) -> list[Completion]:
        return [self._tag(c) for c in super()._harvest()]

    def _tag(self, c: Completion) -> VersionedCompletion:
        versions = expand_marks(self._marks.pop(c.index, [(0, self.follower.version)]), len(c.token_ids))
        values = {f.name: getattr(c, f.name) for f in dataclasses.fields(Completion)}
        values["policy_version"] = min(versions) if versions else self.follower.version
        return VersionedCompletion(**values, token_versions=versions)


class VersionedBackend(EngineBackend):
    """The engine backend over a ``VersionedEngine`` (rebuilt, like its parent, when a longer cache is needed)."""

    name = "engine"

    def __init__(self, model: Any, tokenizer: Any, max_batch: int, max_seq_len: int, follower: WeightFollower) -> None:
        self.follower = follower
        super().__init__(model, tokenizer, max_batch=max_batch, max_seq_len=max_seq_len)

    def _build(self, max_seq_len: int) -> RolloutEngine:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None:
            max_seq_len = min(max_seq_len, int(limit))
        self.max_seq_len = max_seq_len
        return VersionedEngine(self.model, self.tokenizer, follower=self.follower, max_batch=self.max_batch,
                               max_seq_len=max_seq_len)


class VersionedRunner(EnvRunner):
    """``EnvRunner`` that also returns each episode's per-token versions (``NOT_SAMPLED`` on env tokens)."""

    def run_versioned(self, keys: Sequence[Any], params: SamplingParams) -> tuple[list[Episode], list[list[int]]]:
        """Play one episode per key; returns the episodes and their per-completion-token versions."""
        self._turns: dict[int, list[tuple[int, list[int]]]] = {}
        episodes = self.run(keys, params)
        versions = []
        for ep in episodes:
            full = [NOT_SAMPLED] * len(ep.completion_ids)
            for start, tv in self._turns.get(id(ep), []):
                full[start : start + len(tv)] = tv
            versions.append(full[: len(ep.completion_ids)])
        return episodes, versions

    def _take_turn(self, ep: Episode, comp: Any) -> tuple[str, bool]:
        start = len(ep.completion_ids)
        out = super()._take_turn(ep, comp)
        n = len(ep.completion_ids) - start
        tv = list(getattr(comp, "token_versions", None) or [])
        if len(tv) < n:
            tv.extend([comp.policy_version if comp.policy_version is not None else NOT_SAMPLED] * (n - len(tv)))
        getattr(self, "_turns", {}).setdefault(id(ep), []).append((start, tv[:n]))
        return out


__all__ = ["VersionedCompletion", "VersionedEngine", "VersionedBackend", "VersionedRunner", "expand_marks"]
