"""`rlvr sandbox run` prints one JSON object and exits 0 whenever the sandbox worked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import require

FIELDS = {"status", "exit_code", "stdout", "stderr", "wall_s", "cpu_s", "max_rss_mb", "backend"}


def rlvr(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlvr.cli.main", *args], capture_output=True, text=True, input=input, timeout=120)


def test_run_prints_one_json_object_with_every_field(backend, tmp_path):
    prog = tmp_path / "rev.py"
    prog.write_text("print(input()[::-1])\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("sandbox\n")
    r = rlvr("sandbox", "run", str(prog), "--backend", backend, "--stdin", str(stdin), "--time-limit", "5", "--memory-mb", "256")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert FIELDS <= set(out) and (out["status"], out["stdout"], out["backend"]) == ("ok", "xobdnas\n", backend)


def test_a_failing_program_still_exits_zero(tmp_path):
    prog = tmp_path / "crash.c"
    prog.write_text("int main(){return *(volatile int*)0;}\n")
    r = rlvr("sandbox", "run", str(prog), "--backend", "local")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "runtime_error" and out["signal"] == "SIGSEGV"


def test_a_timeout_is_reported_not_raised(tmp_path):
    prog = tmp_path / "spin.sh"
    prog.write_text("while :; do :; done\n")
    r = rlvr("sandbox", "run", str(prog), "--backend", "local", "--time-limit", "0.5")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "timeout"


def test_source_from_stdin_needs_a_language():
    r = rlvr("sandbox", "run", "-", "--backend", "local", input="print(6*7)")
    assert r.returncode == 2 and "--language" in r.stderr
    r = rlvr("sandbox", "run", "-", "--backend", "local", "--language", "python", input="print(6*7)")
    assert r.returncode == 0 and json.loads(r.stdout)["stdout"] == "42\n"


def test_missing_file_and_bad_limits_are_usage_errors(tmp_path):
    assert rlvr("sandbox", "run", str(tmp_path / "nope.py")).returncode == 2
    prog = tmp_path / "x.py"
    prog.write_text("print(1)")
    r = rlvr("sandbox", "run", str(prog), "--time-limit", "-1")
    assert r.returncode == 2 and "time_limit_s" in r.stderr


@pytest.mark.docker
def test_build_image_is_idempotent():
    require("docker")
    first = rlvr("sandbox", "build-image")
    assert first.returncode == 0, first.stderr
    again = json.loads(rlvr("sandbox", "build-image").stdout)
    assert again == {"image": json.loads(first.stdout)["image"], "built": False}
