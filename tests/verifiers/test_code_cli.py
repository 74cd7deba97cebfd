"""`rlvr score code --input IN.jsonl --output OUT.jsonl` with rows of {completion, tests}."""

import json
import subprocess
import sys

import pytest


def _sandbox_ready() -> bool:
    try:
        from rlvr.sandbox import default_backend

        default_backend()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _sandbox_ready(), reason="no sandbox backend works here")

ADD = {"kind": "assert", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n", "entry_point": "add"}
ECHO = {"kind": "io", "cases": [{"stdin": "hi\n", "stdout": "hi\n"}, {"stdin": "yo\n", "stdout": "yo\n"}], "compare": "exact"}


def test_score_code_writes_a_scored_row_per_input_row(tmp_path):
    rows = [
        {"id": "a", "completion": "```python\ndef add(a, b):\n    return a + b\n```", "tests": ADD},
        {"id": "b", "completion": "```python\ndef add(a, b):\n    return b + 1\n```", "tests": ADD},
        {"id": "c", "completion": "```python\nprint(input())\n```", "tests": json.dumps(ECHO)},  # a spec as JSON text
        {"id": "d", "completion": "no code at all", "tests": {"kind": "io", "cases": "oops"}},
    ]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = subprocess.run(
        [sys.executable, "-m", "rlvr.cli.main", "score", "code", "--input", str(inp), "--output", str(out), "-O", "reward_mode=fraction", "-O", "time_limit_s=5"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    got = {g["id"]: g for g in map(json.loads, out.read_text().splitlines())}
    assert list(got) == ["a", "b", "c", "d"]
    assert (got["a"]["status"], got["a"]["reward"], got["a"]["correct"]) == ("ok", 1.0, True)
    assert got["b"]["status"] == "wrong" and got["b"]["reward"] == 0.5 and "add(0, 0) returned 1" in got["b"]["detail"]
    assert got["c"]["status"] == "ok" and got["c"]["parsed"] == "print(input())\n"
    assert got["d"]["status"] == "error" and "bad test spec" in got["d"]["detail"]
    assert got["a"]["tests"] == ADD  # input fields are kept
    assert "accuracy" in r.stderr  # the summary table
