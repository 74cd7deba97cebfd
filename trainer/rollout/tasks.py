"""Which task each rollout plays: a weighted mixture of environments and seeded task keys.

A training prompt is not text but a *task key*: which environment of the mixture, and the seed
whose ``reset(seed=...)`` poses the task (the environment contract makes seeded resets
reproducible). Keys are strings, because TRL's ``rollout_func`` receives nothing but the
dataset's ``prompt`` column; ``TaskKey.parse`` turns them back. The list of keys is drawn up
front from the run's seed, so the data order is a pure function of the config (what ``--resume``
relies on), and held-out evaluation keys use a disjoint seed range and are removed from
training by prompt text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rlvr.errors import ConfigError
from rlvr.trainer.run.config import EnvConfig

logger = logging.getLogger(__name__)

# Training seeds and held-out seeds come from disjoint ranges.
TRAIN_SEED_BASE = 0
HELDOUT_SEED_BASE = 1 << 40
# Above this many keys, the held-out overlap check (one reset per key) is skipped.
MAX_DEDUPE_KEYS = 200_000

_KEY = re.compile(r"^env=(\d+) (\S+) seed=(\d+)$")


@dataclass(frozen=True)
class TaskKey:
    """A task: environment ``env`` (index into the mixture, whose id is ``env_id``) reset with ``seed``."""

    env: int
    env_id: str
    seed: int

    def __str__(self) -> str:
        return f"env={self.env} {self.env_id} seed={self.seed}"

    @classmethod
    def parse(cls, text: str) -> "TaskKey":
        """Inverse of ``str(key)``; a malformed key raises ``ConfigError``."""
        m = _KEY.match(str(text))
        if not m:
            raise ConfigError("prompt", f"{text!r} is not an rlvr task key",
                              "train with datasets built by rlvr.trainer.rollout.build_train_dataset")
        return cls(int(m.group(1)), m.group(2), int(m.group(3)))


def normalized_weights(entries: Sequence[EnvConfig]) -> np.ndarray:
    """Mixture weights summing to 1."""
    w = np.array([float(e.weight) for e in entries], dtype=np.float64)
    if len(w) == 0 or (w <= 0).any():
        raise ConfigError("environments", "every environment needs a weight > 0")
    return w / w.sum()


def draw_keys(entries: Sequence[EnvConfig], n: int, seed: int, base: int) -> list[TaskKey]:
    """``n`` keys: environments drawn by weight, seeds distinct within the draw, all from ``seed``."""
    rng = np.random.default_rng([seed, base >> 20])
    # Seeds are consecutive from a per-run offset: distinct keys, and no overlap between the
    # training and held-out ranges (their bases differ by 2**40). Drawing the offset first keeps
    # the list prefix-stable: the first k of n keys are the k keys.
    offset = int(rng.integers(0, 1 << 30))
    probs = normalized_weights(entries)
    envs = rng.choice(len(entries), size=n, p=probs) if len(entries) > 1 else np.zeros(n, dtype=int)
    return [TaskKey(int(e), entries[int(e)].id, base + offset + i) for i, e in enumerate(envs)]


def prompt_fingerprint(obs: Any) -> str:
    """A stable hash of an observation (the opening messages), to spot the same task twice."""
    return hashlib.sha1(json.dumps(obs, sort_keys=True, default=str).encode()).hexdigest()


def task_fingerprint(obs: Any, info: Any) -> str:
    """The identity of a task from its reset: the opening messages and the reference.

    The prompt alone is not enough (GuessNumber asks the same question for every secret).
    """
    task = info.get("task") if isinstance(info, dict) else None
    return prompt_fingerprint({"obs": obs, "reference": task.get("reference") if isinstance(task, dict) else None})


def heldout_keys(entries: Sequence[EnvConfig], num_tasks: int, seed: int) -> list[TaskKey]:
    """The held-out evaluation tasks: ``num_tasks`` keys from the held-out seed range."""
    return draw_keys(entries, num_tasks, seed, HELDOUT_SEED_BASE)


def train_keys(
    entries: Sequence[EnvConfig],
    num_prompts: int,
    seed: int,
    exclude: set[str] | None = None,
    fingerprint: Any = None,
) -> list[TaskKey]:
    """``num_prompts`` training keys; those whose prompt fingerprint is in ``exclude`` are replaced.

    ``fingerprint(key) -> str`` computes a key's fingerprint (an environment reset); without it,
    or above ``MAX_DEDUPE_KEYS``, no check is made (seed ranges are disjoint anyway; the check
    matters for small task spaces where two seeds can pose the same problem).
    """
    keys = draw_keys(entries, num_prompts, seed, TRAIN_SEED_BASE)
    if not exclude or fingerprint is None or num_prompts > MAX_DEDUPE_KEYS:
        return keys
    out: list[TaskKey] = []
    spare = draw_keys(entries, num_prompts * 4 + 64, seed + 1, TRAIN_SEED_BASE + (1 << 36))
    spare_iter = iter(spare)
    dropped = 0
    for key in keys:
        candidate = key
        while fingerprint(candidate) in exclude:
            dropped += 1
            try:
                nxt = next(spare_iter)
            except StopIteration:
                raise ConfigError("eval.num_tasks", "the held-out set covers almost every task of the environment",
                                  "use fewer held-out tasks or a harder/larger task space") from None
            candidate = TaskKey(key.env, key.env_id, nxt.seed)
        out.append(candidate)
    if dropped:
        logger.info("replaced %d training tasks that also appear in the held-out set", dropped)
    return out


__all__ = ["EnvConfig", "TaskKey", "draw_keys", "heldout_keys", "train_keys", "prompt_fingerprint", "task_fingerprint",
           "normalized_weights"]
