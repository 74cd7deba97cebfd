"""Held-out evaluation during a run: pass@1 (and pass@k) from the environments' success flags.

The same ``EnvRunner`` that produces training rollouts plays ``samples_per_task`` episodes of each
held-out task at the evaluation temperature (0 = greedy). pass@k is the unbiased estimator from
``rlvr.envs.evaluation`` (the same numbers ``rlvr eval`` reports). Under several processes every
rank plays its share of the tasks and the results are gathered.

Sampling is seeded from (run seed, optimiser step, rank) inside a forked torch RNG, so two runs of
one seed that start from the same weights (the algorithms of a comparison) get identical
``eval_before`` numbers, and an evaluation never moves the training sampler's random stream.
In-process generation (the rollout engine, ``model.generate``) is covered; a vLLM server samples
with its own generator and is not.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from rlvr.envs.evaluation.metrics import pass_at_k_curve
from rlvr.trainer.engine import SamplingParams
from rlvr.trainer.rollout.runner import EnvRunner
from rlvr.trainer.rollout.tasks import TaskKey

logger = logging.getLogger(__name__)


def eval_seed(run_seed: int, step: int, rank: int = 0) -> int:
    """The sampling seed of the held-out evaluation at ``step`` (0 = before training) on ``rank``."""
    digest = hashlib.sha256(f"eval|{int(run_seed)}|{int(step)}|{int(rank)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch.manual_seed takes a non-negative 63-bit int


@contextmanager
def seeded_sampling(seed: int | None) -> Iterator[None]:
    """Run the block with torch's RNG (CPU and the current CUDA device) seeded, then restore it."""
    if seed is None:
        yield
        return
    import torch

    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def evaluate_heldout(
    runner: EnvRunner,
    keys: Sequence[TaskKey],
    *,
    samples_per_task: int,
    temperature: float,
    max_new_tokens: int,
    rank: int = 0,
    world: int = 1,
    batch_size: int = 512,
    seed: int | None = None,
) -> dict[str, Any]:
    """Play every held-out task ``samples_per_task`` times; return pass@k, reward and per-env pass@1.

    Greedy decoding (``temperature == 0``) is deterministic, so one sample per task is played.
    ``seed`` (from ``eval_seed``) makes the sampling repeatable; None samples from the global stream.
    """
    t0 = time.perf_counter()
    n = 1 if temperature == 0 else samples_per_task
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=float(temperature))
    mine = [(i, k) for i, k in enumerate(keys) if i % world == rank]
    jobs = [(i, k) for i, k in mine for _ in range(n)]
    rows = []
    with seeded_sampling(seed):
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            episodes = runner.run([k for _, k in chunk], params)
            rows.extend({"task": i, "env_id": ep.env_id, "entry": k.env, "success": bool(ep.success),
                         "reward": float(ep.reward), "tokens": ep.model_tokens} for (i, k), ep in zip(chunk, episodes))
    if world > 1:
        from accelerate.utils import gather_object

        rows = gather_object(rows)
    return summarize_eval(rows, n, temperature, time.perf_counter() - t0)


def summarize_eval(rows: list[dict[str, Any]], n: int, temperature: float, seconds: float) -> dict[str, Any]:
    """pass@1, pass@k curve, mean reward and per-environment pass@1 from per-episode rows."""
    groups: dict[int, list[bool]] = defaultdict(list)
    env_of: dict[int, str] = {}
    # Two mixture entries of one environment id (say, easy and hard settings) are told apart by index.
    ids_of_entry = {r.get("entry", r["env_id"]): r["env_id"] for r in rows}
    shared = {i for i in ids_of_entry.values() if list(ids_of_entry.values()).count(i) > 1}
    for r in rows:
        groups[r["task"]].append(r["success"])
        env_of[r["task"]] = f"{r['env_id']}[{r['entry']}]" if r["env_id"] in shared else r["env_id"]
    right = [r["tokens"] for r in rows if r["success"]]
    wrong = [r["tokens"] for r in rows if not r["success"]]
    curve = pass_at_k_curve(list(groups.values()), n) if groups else {}
    out: dict[str, Any] = {
        "pass@1": curve.get(1, 0.0),
        **{f"pass@{k}": v for k, v in curve.items() if k != 1},
        "reward": sum(r["reward"] for r in rows) / max(1, len(rows)),
        "response_tokens": sum(r["tokens"] for r in rows) / max(1, len(rows)),
        # the length of right and of wrong answers move differently under some aggregations (Dr. GRPO's point)
        "response_tokens_correct": sum(right) / len(right) if right else None,
        "response_tokens_wrong": sum(wrong) / len(wrong) if wrong else None,
        "tasks": len(groups),
        "samples_per_task": n,
        "temperature": temperature,
        "seconds": round(seconds, 2),
    }
    envs = sorted(set(env_of.values()))
    if len(envs) > 1:
        out["per_env"] = {}
        for env_id in envs:
            sub = [g for t, g in groups.items() if env_of[t] == env_id]
            out["per_env"][env_id] = {"pass@1": pass_at_k_curve(sub, n).get(1, 0.0), "tasks": len(sub)}
    return out


__all__ = ["eval_seed", "evaluate_heldout", "seeded_sampling", "summarize_eval"]
