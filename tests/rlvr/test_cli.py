"""The `rlvr` front door: version, usage errors with exit code 2, and `rlvr score` end to end."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from rlvr import __version__
from rlvr.cli.main import app

runner = CliRunner()


def rlvr(*args, input=None):
    """Run the real console entry point in a subprocess (exit codes as users see them)."""
    return subprocess.run([sys.executable, "-m", "rlvr.cli.main", *args], capture_output=True, text=True, input=input, timeout=120)


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_score_string_file_keeps_fields_and_adds_results(tmp_path):
    inp = tmp_path / "in.jsonl"
    rows = [
        {"id": 1, "completion": "answer: Paris", "answer": "paris"},
        {"id": 2, "completion": "answer: Lyon", "answer": "paris"},
        {"id": 3, "answer": "x"},
    ]
    inp.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    out = tmp_path / "out.jsonl"
    r = rlvr("score", "string", "--input", str(inp), "--output", str(out))
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == [1, 2, 3]
    assert [g["status"] for g in got] == ["ok", "wrong", "error"]
    assert got[0]["reward"] == 1.0 and got[0]["correct"] is True and got[0]["parsed"] == "Paris"
    assert all("ms" in g for g in got)
    assert "accuracy" in r.stderr and "0.333" in r.stderr


def test_score_options_reach_the_verifier(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"completion": "answer: paris", "answer": "Paris"}) + "\n")
    r = rlvr("score", "string", "-i", str(inp), "-O", "mode=exact", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["correct"] is False


def test_bad_json_line_is_an_error_row_naming_the_line(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"completion": "a", "answer": "a"}\n{not json}\n')
    r = rlvr("score", "string", "--input", str(inp), "-q")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    bad = json.loads(r.stdout.splitlines()[1])
    assert bad["status"] == "error" and "line 2" in bad["detail"]


def test_missing_file_and_unknown_verifier_exit_2(tmp_path):
    r = rlvr("score", "string", "--input", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = rlvr("score", "strng", "--input", "-", input="")
    assert r.returncode == 2 and "did you mean 'string'" in r.stderr
    r = rlvr("score", "string", "--input", "-", "-O", "nonsense")
    assert r.returncode == 2 and "key=value" in r.stderr


def test_doctor_reports_backends_and_versions():
    r = rlvr("doctor", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["rlvr"] == __version__
    assert {row["backend"] for row in report["sandbox"]} >= {"local"}
    assert "string" in report["verifiers"]
    assert report["packages"]["sympy"]
