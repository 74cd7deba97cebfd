"""`rlvr train --resume --max-steps N` extends a finished run; resuming a finished run with nothing to do touches nothing.

One tiny model, one process (the transformers import is paid once): a run started with 8 steps
is the reference; a run of 4 steps extended to 8 must train the same tasks in the same order,
follow the 8-step learning-rate schedule from step 4 on (linear decay: the 4-step schedule had
reached zero), and record the extension. Then the extended run is resumed with nothing to do, with too
few steps, and interrupted before it saved a new max_steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .runs import read_rows, run_config

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

CONFIG = run_config(seed=5, preset="dr_grpo",
                    generation="{num_generations: 2, prompts_per_step: 2, max_new_tokens: 4, max_completion_length: 4}",
                    optim="{max_steps: 4, learning_rate: 1.0e-3, lr_scheduler: linear}",
                    eval="{num_tasks: 2, samples_per_task: 1, greedy: false}")

def _lr_by_step(run: Path) -> dict[int, float]:
    return {r["step"]: r["learning_rate"] for r in read_rows(run / "metrics.jsonl", "train") if "learning_rate" in r}


def _snapshot(run: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every file and folder in the run."""
    out = {".": (run.stat().st_mtime_ns, 0)}
    for p in sorted(run.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(run))] = (st.st_mtime_ns, st.st_size)
    return out


def _cli(*args: str):
    from typer.testing import CliRunner

    from rlvr.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_extending_a_finished_run_trains_what_a_longer_run_would_and_a_finished_run_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    from rlvr.trainer.run.config import load_config
    from rlvr.trainer.run.train import run_training

    straight, run = tmp_path / "straight", tmp_path / "run"
    run_training(load_config(config, {"output_dir": str(straight), "optim.max_steps": 8}))
    first = run_training(load_config(config, {"output_dir": str(run)}))
    assert first["steps"] == 4
    # The learning rate each step trained with: a 4-step linear schedule, down to zero after step 4.
    assert [_lr_by_step(run)[s] for s in range(1, 5)] == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])

    # Today's one-line refusal is gone: the run's own config, four more steps.
    extended = _cli("train", "--resume", "--output-dir", str(run), "--max-steps", "8")
    assert extended.exit_code == 0, extended.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["resumed_from_step"] == 4
    state = json.loads((run / "run_state.json").read_text())
    assert state["segments"] == [{"from_step": 0, "max_steps": 4}, {"from_step": 4, "max_steps": 8}]
    assert summary["segments"] == state["segments"]
    assert load_config(run / "config.yaml").optim.max_steps == 8  # a later plain --resume continues the extended run

    # Data order: every step's tasks are those of the run started with 8 steps, each step once.
    ref, got = read_rows(straight / "data_order.jsonl"), read_rows(run / "data_order.jsonl")
    assert [r["step"] for r in got] == list(range(1, 9))
    assert [r["keys"] for r in got] == [r["keys"] for r in ref]
    assert [r["step"] for r in read_rows(run / "metrics.jsonl", "train")] == list(range(1, 9))

    # Learning rate: from step 4 on, the 8-step schedule (not zero, not restarted at its peak).
    ref_lr, got_lr = _lr_by_step(straight), _lr_by_step(run)
    for step in range(5, 9):
        assert got_lr[step] == pytest.approx(ref_lr[step], rel=1e-6), (step, got_lr, ref_lr)
    assert got_lr[5] == pytest.approx(0.5e-3)  # the 8-step schedule at step 4, not the 4-step run's zero
    # ... and the first extended step trained with it: the extended policy ends where the 8-step run ends.
    from safetensors.torch import load_file

    a, b = load_file(str(straight / "final" / "model.safetensors")), load_file(str(run / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    import torch

    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    # Nothing to do: one line, exit 0, no evaluation, no file of the run touched.
    eval_after = (run / "eval_after.json").read_bytes()
    before = _snapshot(run)
    again = _cli("train", "--resume", "--output-dir", str(run))
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output and len(again.output.strip().splitlines()) == 1
    assert _snapshot(run) == before and (run / "eval_after.json").read_bytes() == eval_after
    same = _cli("train", "--resume", "--output-dir", str(run), "--max-steps", "8")
    assert same.exit_code == 0 and "nothing to do" in same.output and _snapshot(run) == before

    # Fewer steps than the run trained: one clear error naming the flag, nothing touched.
    shorter = _cli("train", "--resume", "--output-dir", str(run), "--max-steps", "6")
    from rlvr.errors import ConfigError

    assert isinstance(shorter.exception, ConfigError) and shorter.exception.field == "--max-steps"  # `rlvr` exits 2
    assert "already trained" in str(shorter.exception)
    assert _snapshot(run) == before

    # Ctrl-C before the extension saved its max_steps: the printed command carries --max-steps.
    import rlvr.trainer.run.train as train_module

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "run_training", interrupted)
    stopped = _cli("train", "--resume", "--output-dir", str(run), "--max-steps", "12")
    assert stopped.exit_code == 130
    assert f"Resume with: rlvr train --resume --output-dir {run} --max-steps 12" in stopped.output
    plain = _cli("train", "--resume", "--output-dir", str(run), "--max-steps", "8")
    assert plain.exit_code == 0 and "nothing to do" in plain.output  # finished: not even an interrupt to catch
    monkeypatch.setattr(train_module, "run_training", interrupted)
    (run / "summary.json").rename(tmp_path / "summary.json")  # an interrupted (unfinished) run at its saved max_steps
    try:
        stopped = _cli("train", "--resume", "--output-dir", str(run))
    finally:
        (tmp_path / "summary.json").rename(run / "summary.json")
    assert stopped.exit_code == 130
    assert stopped.output.strip().endswith(f"Resume with: rlvr train --resume --output-dir {run}")
