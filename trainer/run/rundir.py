"""The run directory: one folder per training run, the same layout for ``rlvr train`` and ``rlvr demo``.

::

    OUTPUT_DIR/
      config.yaml          the resolved config (every default filled in)
      metrics.jsonl        one JSON object per logged step ({"step", "kind": "train"|"eval", ...})
      samples.jsonl        sample rollouts (full conversations, rewards) every logged step
      data_order.jsonl     the task keys of every optimiser step (what --resume must reproduce)
      eval_before.json     held-out evaluation of the starting policy
      eval_after.json      held-out evaluation of the final policy
      reward_curve.png     the report's curves (reward, held-out pass@k, entropy, lengths, ...) as one image
      report.html          the run report (rlvr report), written at the end of the run
      README.md            what each file here holds (data_order.jsonl included)
      summary.json         {"eval_before", "eval_after", "steps", "wall_s", ...}
      checkpoints/         checkpoint-N/ (model, optimiser, scheduler, RNG, trainer state)
      final/               the final policy and tokenizer (loadable with from_pretrained; servable with
                           `transformers serve`, a response template added where the chat template needs one)
      run_state.json       wall time of earlier segments and every segment's start step and max_steps
                           (a resumed or extended run adds one; see rlvr.trainer.run.extend)
      async.jsonl          asynchronous runs: generator orders, consumptions, restarts, resumes
      retired.jsonl        tasks retired from training once solved (generation.retire_pass_rate):
                           step, key, fingerprint, pass rate; later keys posing them are replaced
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from rlvr.errors import ConfigError


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, tensors/numpy scalars -> float."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunDir:
    """Paths and writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.samples = self.path / "samples.jsonl"
        self.data_order = self.path / "data_order.jsonl"
        self.eval_before = self.path / "eval_before.json"
        self.eval_after = self.path / "eval_after.json"
        self.plot = self.path / "reward_curve.png"
        self.summary = self.path / "summary.json"
        self.checkpoints = self.path / "checkpoints"
        self.final = self.path / "final"
        self.state = self.path / "run_state.json"
        self.retired = self.path / "retired.jsonl"

    def check(self, resume: bool) -> None:
        """Refuse, before any work, an output folder the run cannot use or must not touch.

        ConfigError (naming ``--output-dir``) for: a file; a folder that holds files no run
        wrote (the run would overwrite ``summary.json`` and ``final/`` in it and append to its
        ``metrics.jsonl``); a place that cannot be created or written; an existing run without
        ``--resume``; ``--resume`` where there is no run.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError("--output-dir", f"{self.path} is a file, not a folder", "choose a folder for the run (it is created if missing)")
        if self.path.is_dir() and any(self.path.iterdir()) and not self.only_run_files():
            raise ConfigError("--output-dir", f"{self.path} holds files that are not from an rlvr run", "choose an empty or new --output-dir")
        if not resume and self.config.exists():
            raise ConfigError("--output-dir", f"{self.path} already holds a run",
                              "pass --resume to continue it, or choose another --output-dir")
        if resume and not self.config.exists():
            raise ConfigError("--resume", f"{self.path} holds no run to resume (no config.yaml)",
                              "drop --resume to start a new run, or point --output-dir at the run")
        existing = self.path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError("--output-dir", f"{self.path} cannot be created: {existing} is a file", "choose a folder for the run")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError("--output-dir", f"{self.path} cannot be written (no write permission on {existing})", "choose a folder you can write to")

    def prepare(self, resume: bool) -> None:
        """Create the folder after :meth:`check`; refuse to overwrite an existing run unless resuming."""
        self.check(resume)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError("--output-dir", f"{self.path} cannot be created ({e.strerror or e})", "choose a folder you can write to") from None

    def last_checkpoint(self) -> str | None:
        """The newest complete ``checkpoints/checkpoint-N`` (None if there is none)."""
        if not self.checkpoints.is_dir():
            return None
        done = []
        for child in self.checkpoints.iterdir():
            name = child.name
            if child.is_dir() and name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
                # A checkpoint is complete once the trainer state is written (HF writes it last).
                if (child / "trainer_state.json").exists():
                    done.append((int(name[len("checkpoint-"):]), child))
        return str(max(done)[1]) if done else None

    @staticmethod
    def checkpoint_step(checkpoint: str | None) -> int:
        """The optimiser step a checkpoint was saved at (0 for None)."""
        return int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0

    # ------------------------------------------------------------------ writers
    @staticmethod
    def append_jsonl(path: Path, row: dict[str, Any]) -> None:
        """Append one JSON line and flush it to disk (a SIGKILL loses at most this line)."""
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(_clean(row), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def read_jsonl(path: Path) -> list[dict[str, Any]]:
        """Rows of a JSONL file; a torn last line (killed mid-write) is skipped."""
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` from every per-step file (resuming from checkpoint ``step``)."""
        for path in (self.metrics, self.samples, self.data_order):
            rows = [r for r in self.read_jsonl(path) if int(r.get("step", 0)) <= step]
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            tmp.replace(path)

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        """Write a JSON file atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)

    def read_json(self, path: Path) -> dict[str, Any] | None:
        """A JSON file's content, or None if it does not exist."""
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def metrics_rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """metrics.jsonl rows, optionally only one ``kind``."""
        rows = self.read_jsonl(self.metrics)
        return [r for r in rows if kind is None or r.get("kind") == kind]

    def only_run_files(self) -> bool:
        """True when the folder holds nothing but what a run writes (safe to replace)."""
        known = {p.name for p in (self.config, self.metrics, self.samples, self.data_order, self.eval_before,
                                  self.eval_after, self.plot, self.summary, self.checkpoints, self.final, self.state,
                                  self.retired)}
        known |= {"start_policy", "README.md", "report.html", "async.jsonl"} | {n.name.replace(n.suffix, ".tmp") for n in (self.metrics, self.summary)}
        return all(child.name in known or child.suffix == ".tmp" for child in self.path.iterdir())

    def files(self) -> Iterable[Path]:
        """Everything in the run directory (for listings)."""
        return sorted(self.path.iterdir())


__all__ = ["RunDir"]
