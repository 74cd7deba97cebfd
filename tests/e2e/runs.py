"""What the end-to-end training tests share: a tiny run's config, `rlvr train` in a subprocess, run files, a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RLVR = [sys.executable, "-m", "rlvr.cli.main"]

TINY_MODEL = "{tiny: {hidden_size: 32, intermediate_size: 64, max_position_embeddings: 256}}"
ARITHMETIC = '{id: rlvr/Arithmetic-v0, kwargs: {difficulty: 1, system_prompt: ""}}'


def run_config(*, seed: int, preset: str, generation: str, optim: str, eval: str = "{num_tasks: 0}",
               checkpoint: str = "{save_steps: 2, save_total_limit: 5}", model: str = TINY_MODEL,
               environment: str = ARITHMETIC, logging: str = "{progress: false}") -> str:
    """A train config (YAML) for a run of a tiny policy on the CPU; each section is given as YAML flow text."""
    return f"""
seed: {seed}
device: cpu
model: {model}
environments:
  - {environment}
algorithm: {{preset: {preset}}}
generation: {generation}
optim: {optim}
eval: {eval}
logging: {logging}
checkpoint: {checkpoint}
"""


def cli_env() -> dict[str, str]:
    """The environment of an `rlvr` subprocess: offline, quiet, one thread per process (2 shared cores)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1"}


def read_rows(path: Path, kind: str | None = None, *, torn_ok: bool = False) -> list[dict]:
    """The rows of a run's JSONL file (none if it is missing), optionally only one ``kind``.

    ``torn_ok`` skips a line a SIGKILL cut short; otherwise every line must parse.
    """
    rows = []
    for line in (path.read_text().splitlines() if path.exists() else []):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if not torn_ok:
                raise
    return [r for r in rows if kind is None or r.get("kind") == kind]


def train_cli(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`rlvr train CONFIG --output-dir OUT ...` in a subprocess, output captured."""
    return subprocess.run([*RLVR, "train", str(config), "--output-dir", str(out), *extra], env=cli_env(),
                          capture_output=True, text=True, timeout=600)


def kill_mid_step(config: Path, out: Path, *, after_checkpoint: int = 2, in_step: int = 3) -> subprocess.Popen:
    """Start `rlvr train` and SIGKILL it once checkpoint ``after_checkpoint`` is complete and step
    ``in_step``'s rollouts are out (the process is inside that step, or later); returns the reaped process."""
    proc = subprocess.Popen([*RLVR, "train", str(config), "--output-dir", str(out)], env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 500
    checkpoint = out / "checkpoints" / f"checkpoint-{after_checkpoint}" / "trainer_state.json"
    try:
        while time.time() < deadline:
            steps = [r["step"] for r in read_rows(out / "data_order.jsonl", torn_ok=True)]
            if checkpoint.exists() and steps and max(steps) >= in_step:
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.02)
        else:
            pytest.fail("the run never got past its first checkpoint")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return proc
