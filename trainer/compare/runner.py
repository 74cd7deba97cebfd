"""Run a comparison plan: warm-ups, then every algorithm x seed, ``parallel`` at a time; resumable.

Each run is a separate ``rlvr train`` process (its own torch state and thread pool, its own log
file under ``logs/``), so one failing run does not take the others down and ``--parallel``
needs no shared memory. ``compare.json`` is rewritten after every finished run; running the
same command again skips finished runs, resumes started ones from their last checkpoint
(``rlvr train --resume``) and reuses finished warm-ups.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from rlvr.report.load import COMPARE_FILE, load_run
from rlvr.report.series import run_curves, run_numbers
from rlvr.trainer.compare.plan import ComparePlan, RunSpec

logger = logging.getLogger(__name__)

Say = Callable[[str], None]


def _done(spec: RunSpec) -> bool:
    out = Path(spec.config["output_dir"])
    if spec.phase == "warmup":
        return (out / "start_policy" / "config.json").is_file() and (out / "summary.json").is_file()
    return (out / "summary.json").is_file()


class CompareRunner:
    """Executes a :class:`ComparePlan` and keeps ``compare.json`` current."""

    def __init__(self, plan: ComparePlan, *, parallel: int = 1, command: str = "", say: Say | None = None) -> None:
        self.plan = plan
        self.parallel = max(1, parallel)
        self.command = command
        self.say = say or (lambda m: logger.info("%s", m))
        self.status: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.started = time.time()

    # ------------------------------------------------------------------ one run
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        threads = max(1, (os.cpu_count() or 1) // self.parallel)
        env.setdefault("OMP_NUM_THREADS", str(threads))  # P processes share the cores instead of oversubscribing
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    def _launch(self, spec: RunSpec) -> dict[str, Any]:
        out = Path(spec.config["output_dir"])
        if _done(spec):
            return {"status": "done", "seconds": 0.0, "reused": True}
        cfg_dir = self.plan.output_dir / "configs"
        logs = self.plan.output_dir / "logs"
        cfg_dir.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        cfg_path = cfg_dir / f"{spec.phase}-{spec.name}.yaml"
        cfg_path.write_text(yaml.safe_dump(spec.config, sort_keys=False))
        cmd = [sys.executable, "-m", "rlvr.cli.main", "train", str(cfg_path), "--no-progress"]
        resumed = (out / "config.yaml").is_file()
        if resumed:
            cmd += ["--resume", "--output-dir", str(out)]
        t0 = time.perf_counter()
        with (logs / f"{spec.phase}-{spec.name}.log").open("a") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env()).returncode
        seconds = round(time.perf_counter() - t0, 1)
        if rc != 0 or not _done(spec):
            tail = (logs / f"{spec.phase}-{spec.name}.log").read_text(errors="replace").strip().splitlines()[-3:]
            return {"status": "failed", "seconds": seconds, "returncode": rc, "log_tail": tail}
        return {"status": "done", "seconds": seconds, "resumed": resumed}

    def _run_all(self, specs: list[RunSpec], what: str) -> None:
        def one(spec: RunSpec) -> None:
            self.say(f"{what} {spec.name}: starting")
            result = self._launch(spec)
            with self.lock:
                self.status[f"{spec.phase}/{spec.name}"] = result
                self.write_json()
            note = "already done" if result.get("reused") else f"{result['status']} in {result['seconds']:.0f} s"
            self.say(f"{what} {spec.name}: {note}")

        if self.parallel == 1:
            for spec in specs:
                one(spec)
            return
        with ThreadPoolExecutor(self.parallel) as pool:
            list(pool.map(one, specs))

    # ------------------------------------------------------------------ compare.json
    def write_json(self) -> Path:
        """Write compare.json: the plan, and per algorithm and seed the curves and final numbers so far."""
        plan = self.plan
        runs = []
        for spec in plan.runs:
            out = Path(spec.config["output_dir"])
            entry: dict[str, Any] = {"algorithm": spec.algorithm, "seed": spec.seed,
                                     "dir": os.path.relpath(out, plan.output_dir),
                                     **self.status.get(f"run/{spec.name}", {"status": "pending"})}
            if (out / "metrics.jsonl").is_file():
                data = load_run(out, spec.algorithm, spec.seed)
                entry["numbers"] = run_numbers(data)
                entry["curves"] = run_curves(data)
            runs.append(entry)
        doc = {
            "command": self.command,
            "algorithms": [a.label for a in plan.algorithms],
            "presets": {a.label: {"preset": a.preset, "overrides": a.overrides} for a in plan.algorithms},
            "seeds": plan.seeds,
            "steps": plan.steps,
            "budget_samples": plan.budget_samples,
            "warmups": {str(s.seed): {"dir": os.path.relpath(s.config["output_dir"], plan.output_dir),
                                      **self.status.get(f"warmup/{s.name}", {"status": "pending"})}
                        for s in plan.warmups},
            "wall_s": round(time.time() - self.started, 1),
            "runs": runs,
        }
        path = plan.output_dir / COMPARE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False, default=str) + "\n")
        tmp.replace(path)
        return path

    # ------------------------------------------------------------------ all of it
    def run(self) -> dict[str, Any]:
        """Warm-ups, runs, compare.json, report.html and compare.png; returns the status of every run."""
        from rlvr.report import write_report
        from rlvr.report.figures import write_figures
        from rlvr.report.load import load_source

        self.plan.output_dir.mkdir(parents=True, exist_ok=True)
        self.write_json()
        if self.plan.warmups:
            self._run_all(self.plan.warmups, "warm-up")
            failed = [k for k, v in self.status.items() if k.startswith("warmup/") and v["status"] != "done"]
            if failed:
                self.say(f"warm-up failed for {', '.join(failed)}: see {self.plan.output_dir / 'logs'}")
                return self.status
        self._run_all(self.plan.runs, "run")
        self.write_json()
        write_report(self.plan.output_dir)
        try:
            write_figures(load_source(self.plan.output_dir), self.plan.output_dir / "compare.png")
        except Exception:  # the PNG is a convenience; the page and compare.json are the result
            logger.warning("could not draw compare.png", exc_info=True)
        return self.status


__all__ = ["CompareRunner"]
