"""Read what a training run or a comparison left on disk, without torch.

A *run directory* is what ``rlvr train`` / ``rlvr demo`` write (``config.yaml``,
``metrics.jsonl``, ``samples.jsonl``, ``eval_before.json``, ``eval_after.json``,
``summary.json``, ``data_order.jsonl``). A *comparison directory* is what ``rlvr compare``
writes: ``compare.json`` listing one run directory per algorithm and seed. Every file is read
defensively: a torn last line, a missing file or a run that is still going yields fewer rows,
never an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.errors import InputError

COMPARE_FILE = "compare.json"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; unreadable lines (a run killed mid-write) are skipped."""
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from a file ({} when missing or unreadable)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class RunData:
    """Everything one run directory holds that a report shows."""

    path: Path
    algorithm: str
    seed: int
    config: dict[str, Any] = field(default_factory=dict)
    train: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    eval_before: dict[str, Any] | None = None
    eval_after: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    generated: int = 0  # rollouts generated (every round of every step, from data_order.jsonl)

    @property
    def label(self) -> str:
        """``algorithm / seed N``: how the report names this run."""
        return f"{self.algorithm} / seed {self.seed}"

    @property
    def finished(self) -> bool:
        """True once the run wrote its summary (training and final evaluation are done)."""
        return self.summary is not None


def is_run_dir(path: Path) -> bool:
    """A folder ``rlvr train`` wrote (it has a config.yaml or a metrics.jsonl)."""
    return (path / "config.yaml").is_file() or (path / "metrics.jsonl").is_file()


def load_run(path: str | Path, algorithm: str | None = None, seed: int | None = None) -> RunData:
    """Read one run directory; ``algorithm``/``seed`` default to the run's own config."""
    path = Path(path)
    config = read_yaml(path / "config.yaml")
    rows = read_jsonl(path / "metrics.jsonl")
    algo = algorithm or str((config.get("algorithm") or {}).get("preset") or "run")
    run_seed = seed if seed is not None else int(config.get("seed") or 0)
    generated = sum(len(r.get("keys") or []) for r in read_jsonl(path / "data_order.jsonl"))
    return RunData(
        path=path, algorithm=algo, seed=run_seed, config=config,
        train=[r for r in rows if r.get("kind") == "train" and isinstance(r.get("step"), (int, float))],
        evals=[r for r in rows if r.get("kind") == "eval" and isinstance(r.get("step"), (int, float))],
        samples=read_jsonl(path / "samples.jsonl"),
        eval_before=read_json(path / "eval_before.json"),
        eval_after=read_json(path / "eval_after.json"),
        summary=read_json(path / "summary.json"),
        generated=generated,
    )


@dataclass
class Source:
    """What a report is about: one run, or a comparison of algorithms over seeds."""

    path: Path
    runs: list[RunData]
    compare: dict[str, Any] | None = None

    @property
    def algorithms(self) -> list[str]:
        """Algorithms in first-seen order (the comparison's order when there is one)."""
        order = list((self.compare or {}).get("algorithms") or [])
        for run in self.runs:
            if run.algorithm not in order:
                order.append(run.algorithm)
        return [a for a in order if any(r.algorithm == a for r in self.runs)]

    def runs_of(self, algorithm: str) -> list[RunData]:
        """The runs (one per seed) of one algorithm."""
        return [r for r in self.runs if r.algorithm == algorithm]


def load_source(path: str | Path) -> Source:
    """A run directory or a comparison directory; anything else is an ``InputError`` saying what to pass."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path} is not a directory (pass a run directory from `rlvr train` or a comparison from `rlvr compare`)")
    compare = read_json(path / COMPARE_FILE)
    if compare is not None:
        runs = []
        for entry in compare.get("runs") or []:
            if not isinstance(entry, dict) or not entry.get("dir"):
                continue
            run_path = Path(entry["dir"])
            run_path = run_path if run_path.is_absolute() else path / run_path
            if is_run_dir(run_path):
                runs.append(load_run(run_path, str(entry.get("algorithm") or "run"), int(entry.get("seed") or 0)))
        return Source(path, runs, compare)
    if is_run_dir(path):
        return Source(path, [load_run(path)])
    raise InputError(f"{path} holds neither a run (config.yaml, metrics.jsonl) nor a comparison ({COMPARE_FILE}); "
                     "pass the --output-dir of `rlvr train`, `rlvr demo` or `rlvr compare`")


__all__ = ["RunData", "Source", "load_run", "load_source", "is_run_dir", "read_jsonl", "read_json", "read_yaml",
           "COMPARE_FILE"]
