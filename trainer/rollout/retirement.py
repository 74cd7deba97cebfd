"""No-positive-resampling: a task the policy already solves leaves the training pool for good.

ScaleRL (Khatri et al. 2025, arXiv:2510.13786, section 3.2, after Polaris) retires a prompt once
its group pass rate reaches 0.9: such groups carry almost no advantage signal, and sampling them
again wastes generation. rlvr's prompts are task keys (environment + seed), and in a small task
space or a finite dataset two seeds can pose the same problem, so a retirement is recorded by
task *fingerprint* (the opening messages and the reference), and every later key posing that
task is replaced.

The rule is a pure function of the run's history, so the data order stays reproducible and
``--resume`` exact: a key trained at optimiser step ``T`` is replaced when a retirement recorded
at a step ``S <= T - lag`` names its task (``lag`` = 1 for synchronous training; ``(k + 1)`` for
``k`` steps of off-policyness, when step ``T``'s rollouts are ordered before steps
``T - k .. T - 1`` have finished). The replacement is the first of a per-key stream of spare
seeds (same environment, a seed range of its own) whose task is neither retired nor held out.
Retirements go to the run directory's ``retired.jsonl`` (one row per task: step, key,
fingerprint, pass rate); a resumed run reads back the rows up to its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rlvr.errors import ConfigError
from rlvr.trainer.rollout.tasks import TaskKey

logger = logging.getLogger(__name__)

FIELD = "generation.retire_pass_rate"
# Presets whose published recipe retires solved prompts, with the paper's pass-rate threshold.
RECIPE_RETIRE_PASS_RATE: dict[str, float] = {"scalerl": 0.9}
# Spare seeds: [2**39, 2**39 + 2**36), disjoint from training (< 2**37), SFT (2**38 + ...) and
# held-out (>= 2**40) seeds.
SPARE_SEED_BASE = 1 << 39
SPARE_SEED_SPAN = 1 << 36
# Spare candidates tried per retired key before giving up (the key is then kept, with a warning).
MAX_SPARE_TRIES = 64
# Fingerprints cached per key (one environment reset each); the cache is cleared beyond this.
MAX_CACHED = 100_000


def resolve_retire_pass_rate(value: float | None, preset: str) -> float | None:
    """The threshold a run uses: the config's (0 = off), else the preset's recipe value, else off."""
    if value is None:
        return RECIPE_RETIRE_PASS_RATE.get(preset)
    value = float(value)
    if value == 0.0:
        return None
    if not 0.0 < value <= 1.0:
        raise ConfigError(FIELD, f"must be in (0, 1] (or 0 = never retire), got {value}",
                          "use e.g. 0.9, ScaleRL's value")
    return value


class Retirement:
    """Which tasks are retired, and the key each retired key is replaced by.

    Args:
        threshold: a group whose success rate is ``>= threshold`` retires its task.
        fingerprint: ``fingerprint(TaskKey) -> str`` (an environment reset), the task's identity.
        path: the run directory's ``retired.jsonl`` (read back by ``load``); None = memory only.
        write: append new retirements to ``path`` (the main process; the others only read it).
        exclude: fingerprints a replacement must not have (the held-out tasks).
        seed: the run's seed (spare streams depend on it).
        lag: steps between a retirement and the first step it applies to (set by the rollout
            function from the trainer's schedule; see the module docstring).
    """

    def __init__(self, threshold: float, fingerprint: Callable[[TaskKey], str], *, path: str | Path | None = None,
                 write: bool = True, exclude: Iterable[str] = (), seed: int = 0, lag: int = 1) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(FIELD, f"must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.fingerprint = fingerprint
        self.path = Path(path) if path is not None else None
        self.write = bool(write)
        self.exclude = set(exclude)
        self.seed = int(seed)
        self.lag = max(1, int(lag))
        self.retired: dict[str, int] = {}  # fingerprint -> step of its retirement
        self._fp: dict[str, str] = {}
        self._warned = False

    # ------------------------------------------------------------------ persistence
    def load(self, up_to_step: int) -> None:
        """Read back retirements recorded at steps ``<= up_to_step`` and drop later rows from the file
        (a resumed run replays those steps, and may retire differently)."""
        if self.path is None or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                step, fp = int(row["step"]), str(row["fingerprint"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill
            if step <= up_to_step:
                kept.append(row)
                self.retired.setdefault(fp, step)
        if not self.write:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        tmp.replace(self.path)

    # ------------------------------------------------------------------ the rule
    def _fingerprint(self, key: str) -> str:
        fp = self._fp.get(key)
        if fp is None:
            if len(self._fp) >= MAX_CACHED:
                self._fp.clear()
            fp = self._fp[key] = self.fingerprint(TaskKey.parse(key))
        return fp

    def is_retired(self, key: str, step: int) -> bool:
        """Whether ``key``'s task is retired for rollouts trained at ``step``."""
        retired_at = self.retired.get(self._fingerprint(key))
        return retired_at is not None and retired_at <= step - self.lag

    def spare(self, key: str, attempt: int) -> str:
        """The ``attempt``-th spare key for ``key``: same environment, a seed from the spare range."""
        k = TaskKey.parse(key)
        digest = hashlib.sha256(f"{self.seed}|{k}|{attempt}".encode()).digest()
        return str(TaskKey(k.env, k.env_id, SPARE_SEED_BASE + int.from_bytes(digest[:8], "big") % SPARE_SEED_SPAN))

    def substitute(self, prompts: Sequence[str], step: int) -> list[str]:
        """``prompts`` (task keys, repeats kept) with every retired key replaced, for rollouts trained at ``step``."""
        if not self.retired:
            return list(prompts)
        chosen: dict[str, str] = {}
        for p in dict.fromkeys(prompts):
            chosen[p] = p
            if not self.is_retired(p, step):
                continue
            for attempt in range(MAX_SPARE_TRIES):
                candidate = self.spare(p, attempt)
                if not self.is_retired(candidate, step) and self._fingerprint(candidate) not in self.exclude:
                    chosen[p] = candidate
                    break
            else:
                if not self._warned:
                    logger.warning("no unretired task found in %d spare draws for %s: training on it again "
                                   "(nearly every task of the environment is solved)", MAX_SPARE_TRIES, p)
                    self._warned = True
        return [chosen[p] for p in prompts]

    def observe(self, keys: Sequence[str], successes: Sequence[bool], step: int) -> list[str]:
        """Record the tasks whose group success rate at ``step`` reaches the threshold; returns their keys."""
        groups: dict[str, list[bool]] = {}
        for key, ok in zip(keys, successes):
            groups.setdefault(str(key), []).append(bool(ok))
        new: list[str] = []
        rows = []
        for key, oks in groups.items():
            rate = sum(oks) / len(oks)
            if rate < self.threshold:
                continue
            fp = self._fingerprint(key)
            if fp in self.retired:
                continue
            self.retired[fp] = int(step)
            new.append(key)
            rows.append({"step": int(step), "key": key, "fingerprint": fp, "pass_rate": round(rate, 4)})
        if rows and self.path is not None and self.write:
            with self.path.open("a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
        return new

    def metrics(self) -> dict[str, float]:
        """``data/retired_tasks``: how many tasks have left the pool so far."""
        return {"data/retired_tasks": float(len(self.retired))}


__all__ = ["Retirement", "resolve_retire_pass_rate", "RECIPE_RETIRE_PASS_RATE", "SPARE_SEED_BASE"]
