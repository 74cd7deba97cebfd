"""Asynchronous (pipelined) RL vs synchronous RL on the demo's task and model, in one process run.

For each seed: one SFT warm-up (the demo's, a fixed ``--sft-steps`` long, 300 by default; 0 = the
demo's own stop at ~30% probe success, whose length varies) gives the start policy; then the same
RL run (the demo's Dr. GRPO, ``--steps`` steps x 16 prompts x 8 samples, same data order) is
trained synchronously (``max_off_policy_steps`` 0) and with each ``k`` of ``--ks``, and the final
policy is evaluated on the same held-out tasks (200 x 4 samples, sampled at temperature 1). Every
setting therefore trains on the same number of samples and is judged on the same number of
held-out samples (``eval_samples``, checked equal). Prints the expected runtime first (from
per-phase costs measured by ``--quick`` on 2 quiet cores, refined after the first seed), then one
JSON line per setting (means over
seeds): wall time per 100 steps (whole RL phase, generator start-up included), samples/s (whole
phase, and steady state: median over steps after the fifth), idle fractions, staleness, held-out
pass@1 and its difference from synchronous training (each single run also goes to stderr as it
finishes). Timings on a shared machine are noisy; the
ratio ``speedup_vs_sync`` is measured in the same run::

    python benchmarks/bench_async.py                      # 3 seeds, k = 1 2 4, 100 steps, CPU
                                                          # (about 11 minutes on 2 quiet cores)
    python benchmarks/bench_async.py --quick              # smoke run: seed 0, 10 steps, 300 SFT steps,
                                                          # 50 held-out tasks (1-2 minutes)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


# Costs on 2 quiet cores, from a --quick run (seed 0: 300 SFT steps in 62 s with model build and one RL
# step; 10 synchronous RL steps of 128 samples in 2.4 s, the held-out pass of 50 tasks x 4 in 0.4 s); a
# setting's start-up is dominated by the generator process importing torch and transformers (k >= 1).
# A loaded machine is several times slower: the estimate is a floor.
SFT_S_PER_STEP = 0.21
RL_S_PER_STEP = 0.25
SETTING_S = 10.0
EVAL_S_PER_TASK = 0.01
# The demo's SFT stops at ~30% probe success somewhere in this range when --sft-steps is 0.
DEMO_SFT_STEPS = (300, 1500)


def expected_s(seeds: int, settings: int, steps: int, eval_tasks: int, sft_steps: int) -> tuple[float, float]:
    """(low, high) expected seconds of the whole benchmark on 2 quiet cores."""
    rl = settings * (SETTING_S + steps * RL_S_PER_STEP + eval_tasks * EVAL_S_PER_TASK)
    sft = (sft_steps, sft_steps) if sft_steps else DEMO_SFT_STEPS
    return seeds * (sft[0] * SFT_S_PER_STEP + rl), seeds * (sft[1] * SFT_S_PER_STEP + rl)


def _rows(run: Path, kind: str = "train") -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("kind", "train") == kind]


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return sum(values) / len(values) if values else None


def run_setting(base: Path, start: Path, seed: int, k: int, steps: int, device: str,
                eval_tasks: int = 200) -> dict[str, Any]:
    from rlvr.trainer.demo import demo_config
    from rlvr.trainer.run.train import run_training

    out = base / f"seed{seed}_k{k}"
    cfg = demo_config(str(out), seed, device, **{
        "model.name_or_path": str(start), "sft.steps": 0, "optim.max_steps": steps, "eval.before": False,
        "eval.num_tasks": eval_tasks, "eval.greedy": False,
        "eval.every_steps": 0, "generation.max_off_policy_steps": k, "checkpoint.save_steps": 0,
        "checkpoint.save_final_model": False, "logging.progress": False, "logging.logging_steps": 1,
        "logging.sample_rollouts": 0,
    })
    summary = run_training(cfg)
    rows = _rows(out)
    samples = steps * cfg.generation.prompts_per_step * cfg.generation.num_generations
    rl_s = float(summary["phases_s"]["rl_s"]) - float(summary["phases_s"].get("eval_after_s", 0.0))
    per_step = cfg.generation.prompts_per_step * cfg.generation.num_generations
    steady = [per_step / float(r["step_time"]) for r in rows[5:] if isinstance(r.get("step_time"), (int, float)) and r["step_time"] > 0]
    held_out = summary["eval_after"]
    return {
        "rl_s": rl_s, "samples": samples, "pass@1": held_out["pass@1"],
        "eval_samples": int(held_out["tasks"]) * int(held_out["samples_per_task"]),
        "samples_per_s": samples / rl_s if rl_s > 0 else None,
        "steady_samples_per_s": statistics.median(steady) if steady else None,
        "generator_idle_frac": _mean(rows, "async/generator_idle_frac"),
        "trainer_idle_frac": _mean(rows, "async/trainer_idle_frac"),
        "staleness_mean": _mean(rows, "async/staleness_mean"),
        "staleness_max": max((float(r["async/staleness_max"]) for r in rows if "async/staleness_max" in r), default=None),
        "dropped_stale": sum(float(r.get("async/dropped_stale", 0.0)) for r in rows),
    }


def warm_start(base: Path, seed: int, device: str, sft_steps: int | None = None) -> Path:
    """The demo's SFT warm-up for ``seed``, run once and shared by every setting (one RL step rides
    along; only the start policy is kept). ``sft_steps`` fixes its length (no early stop)."""
    from rlvr.trainer.demo import demo_config
    from rlvr.trainer.run.train import run_training

    out = base / f"seed{seed}_sft"
    cfg = demo_config(str(out), seed, device, **{
        "optim.max_steps": 1, "eval.before": False, "eval.after": False, "eval.every_steps": 0,
        "checkpoint.save_steps": 0, "checkpoint.save_final_model": False, "logging.progress": False,
        **({"sft.steps": sft_steps, "sft.min_steps": sft_steps} if sft_steps else {}),  # no early stop before it
    })
    run_training(cfg)
    return out / "start_policy"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--eval-tasks", type=int, default=200, help="Held-out tasks (4 samples each) after RL.")
    p.add_argument("--sft-steps", type=int, default=300,
                   help="Length of the SFT warm-up (fixed, so the runtime is known); 0 = the demo's stop at ~30%% "
                        "probe success (300 to 1500 steps).")
    p.add_argument("--quick", action="store_true",
                   help="Smoke run: seed 0, 10 steps, a fixed 300-step SFT warm-up, 50 held-out tasks.")
    p.add_argument("--out", default=None, help="Keep the runs here (default: a temporary folder).")
    a = p.parse_args(argv)
    if a.quick:
        a.seeds, a.steps, a.eval_tasks, a.sft_steps = [0], 10, 50, 300
    if a.steps <= 5:
        p.error("--steps must be above 5: samples/s at steady state is read after the fifth step")
    logging.basicConfig(level=logging.WARNING)
    low, high = expected_s(len(a.seeds), 1 + len(a.ks), a.steps, a.eval_tasks, a.sft_steps)
    print(f"bench_async: {len(a.seeds)} seed(s) x {1 + len(a.ks)} settings x {a.steps} steps; expected "
          f"{low / 60:.0f}{'' if high == low else f'-{high / 60:.0f}'} min on 2 quiet cores (longer on a busy machine)",
          file=sys.stderr, flush=True)
    t_start = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="bench_async_") if a.out is None else None
    base = Path(a.out or tmp.name)
    base.mkdir(parents=True, exist_ok=True)
    results: dict[int, list[dict[str, Any]]] = {k: [] for k in [0, *a.ks]}
    for seed in a.seeds:
        t0 = time.perf_counter()
        start = warm_start(base, seed, a.device, a.sft_steps or None)
        print(json.dumps({"bench": "async", "warm_start": True, "seed": seed, "wall_s": round(time.perf_counter() - t0, 1)}),
              file=sys.stderr, flush=True)
        for k in results:
            t0 = time.perf_counter()
            results[k].append(run_setting(base, start, seed, k, a.steps, a.device, a.eval_tasks))
            results[k][-1]["setting_wall_s"] = time.perf_counter() - t0
            print(json.dumps({"bench": "async", "run": True, "seed": seed, "max_off_policy_steps": k,
                              **{key: (round(v, 4) if isinstance(v, float) else v) for key, v in results[k][-1].items()}}),
                  file=sys.stderr, flush=True)
        if seed == a.seeds[0] and len(a.seeds) > 1:
            spent = time.perf_counter() - t_start
            print(f"bench_async: seed {seed} took {spent / 60:.1f} min; about {spent * (len(a.seeds) - 1) / 60:.0f} "
                  "min to go", file=sys.stderr, flush=True)
    held_out = {r["eval_samples"] for runs in results.values() for r in runs}
    if len(held_out) != 1:
        raise SystemExit(f"settings were judged on different numbers of held-out samples: {sorted(held_out)}")
    sync = results[0]
    for k, runs in results.items():
        def avg(key: str, rs: list[dict[str, Any]] = runs) -> float | None:
            values = [r[key] for r in rs if r[key] is not None]
            return round(sum(values) / len(values), 4) if values else None

        line = {
            "bench": "async", "setting": "sync" if k == 0 else f"k={k}", "max_off_policy_steps": k,
            "seeds": a.seeds, "steps": a.steps, "samples": runs[0]["samples"], "device": a.device,
            "quick": a.quick, "eval_tasks": a.eval_tasks, "eval_samples": runs[0]["eval_samples"],
            "sft_steps": a.sft_steps or "demo", "setting_wall_s": avg("setting_wall_s"),
            "wall_s_per_100_steps": round(avg("rl_s") * 100 / a.steps, 2),
            "samples_per_s": avg("samples_per_s"), "steady_samples_per_s": avg("steady_samples_per_s"),
            "speedup_vs_sync": round(avg("samples_per_s") / avg("samples_per_s", sync), 3),
            "steady_speedup_vs_sync": (round(avg("steady_samples_per_s") / avg("steady_samples_per_s", sync), 3)
                                       if avg("steady_samples_per_s", sync) else None),
            "generator_idle_frac": avg("generator_idle_frac"), "trainer_idle_frac": avg("trainer_idle_frac"),
            "staleness_mean": avg("staleness_mean"), "staleness_max": max((r["staleness_max"] or 0) for r in runs),
            "dropped_stale": avg("dropped_stale"),
            "pass@1": avg("pass@1"), "pass@1_per_seed": [r["pass@1"] for r in runs],
            "pass@1_delta_vs_sync": round(avg("pass@1") - avg("pass@1", sync), 4),
            "cpu_count": os.cpu_count(),
        }
        print(json.dumps(line), flush=True)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
