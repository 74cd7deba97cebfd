"""`rlvr train -o DIR`: the output folder is checked before any work, and Ctrl-C says how to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlvr.errors import ConfigError
from rlvr.trainer.run.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "train_arithmetic_cpu.yaml"


def test_a_folder_of_someone_elses_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "metrics.jsonl").write_text('{"mine": 1}\n')
    with pytest.raises(ConfigError, match="not from an rlvr run"):
        RunDir(tmp_path).prepare(resume=False)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"mine": 1}\n' and not (tmp_path / "summary.json").exists()


def test_a_file_or_a_path_through_a_file_is_refused_with_the_field(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder") as e:
        RunDir(f).check(resume=False)
    assert e.value.field == "--output-dir"
    with pytest.raises(ConfigError, match="cannot be created"):
        RunDir(f / "run").check(resume=False)


def test_an_empty_a_new_or_a_run_only_folder_is_accepted(tmp_path):
    RunDir(tmp_path / "new" / "run").prepare(resume=False)
    RunDir(tmp_path / "new" / "run").prepare(resume=False)  # still empty
    run = RunDir(tmp_path / "old")
    run.prepare(resume=False)
    run.config.write_text("seed: 0\n")
    run.metrics.write_text("")
    (run.path / "checkpoints").mkdir()
    run.check(resume=True)
    with pytest.raises(ConfigError, match="already holds a run"):
        run.check(resume=False)


def test_the_cli_refuses_a_foreign_folder_in_one_line_with_exit_2(tmp_path):
    (tmp_path / "thesis.tex").write_text("\\documentclass{article}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "rlvr.cli.main", "train", str(CONFIG), "-o", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--output-dir" in lines[0] and "not from an rlvr run" in lines[0], r.stderr
    assert os.listdir(tmp_path) == ["thesis.tex"]


def _ctrl_c_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job inherits SIGINT ignored


@pytest.mark.slow
def test_ctrl_c_prints_the_exact_resume_command(tmp_path):
    out = tmp_path / "my run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rlvr.cli.main", "train", str(CONFIG), "-o", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 240
        while not (out / "config.yaml").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (out / "config.yaml").exists(), "the run never started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert f"Resume with: rlvr train --resume --output-dir '{out}'" in err, err
