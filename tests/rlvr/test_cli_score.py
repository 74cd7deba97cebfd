"""`rlvr score` loses nothing: bad lines become error rows, options are checked, the output is
replaced atomically, interrupts keep what was scored and stop every worker, --resume continues."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RLVR = [sys.executable, "-m", "rlvr.cli.main"]


def rlvr(*args, input=None, timeout=180):
    return subprocess.run([*RLVR, *args], capture_output=True, text=True, input=input, timeout=timeout)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


GOOD = json.dumps({"completion": "answer: Paris", "answer": "paris"})


def test_non_json_and_non_object_lines_become_error_rows_and_the_run_goes_on(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [GOOD, "{not json", "", "42", '["a list"]', GOOD])
    r = rlvr("score", "string", "-i", str(inp), "-o", str(out))
    assert r.returncode == 0, r.stderr
    got = _rows(out)
    assert [g["status"] for g in got] == ["ok", "error", "error", "error", "ok"]
    assert "line 2" in got[1]["detail"] and "not valid JSON" in got[1]["detail"] and got[1]["line"] == 2
    assert "line 4" in got[2]["detail"] and "line 5" in got[3]["detail"]  # the blank line 3 is skipped
    assert "bad lines" in r.stderr and "error=3" in r.stderr


def test_option_typo_gets_did_you_mean_and_exit_2(tmp_path):
    inp = tmp_path / "in.jsonl"
    _write(inp, [GOOD])
    r = rlvr("score", "math", "-i", str(inp), "-O", "extractor=[\"boxed\"]")
    assert r.returncode == 2
    assert "did you mean 'extractors'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_output_equal_to_input_is_refused_and_the_input_survives(tmp_path):
    inp = tmp_path / "in.jsonl"
    _write(inp, [GOOD, GOOD])
    before = inp.read_text()
    r = rlvr("score", "string", "-i", str(inp), "-o", str(tmp_path / "." / "in.jsonl"))
    assert r.returncode == 2 and "is the input file" in r.stderr
    assert inp.read_text() == before


def test_non_empty_output_needs_resume_or_overwrite(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [GOOD])
    out.write_text("precious\n")
    r = rlvr("score", "string", "-i", str(inp), "-o", str(out))
    assert r.returncode == 2 and "--resume" in r.stderr and "--overwrite" in r.stderr
    assert out.read_text() == "precious\n"
    r = rlvr("score", "string", "-i", str(inp), "-o", str(out), "--overwrite", "-q")
    assert r.returncode == 0, r.stderr
    assert [g["status"] for g in _rows(out)] == ["ok"]


def test_bad_output_paths_get_one_line_and_exit_2(tmp_path):
    inp = tmp_path / "in.jsonl"
    _write(inp, [GOOD])
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    for target in (tmp_path, a_file / "out.jsonl"):
        r = rlvr("score", "string", "-i", str(inp), "-o", str(target))
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def _descendants(root: int) -> set[int]:
    """Every live process below ``root``, from /proc (psutil is not required)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped; it only waits to be reaped


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_keeps_scored_rows_stops_every_worker_and_resume_finishes(tmp_path, sig):
    # 512 quick rows (the first batch, written as soon as it is scored), then rows that keep
    # sympy busy for about a second each (a 3000-term sum), so the signal lands mid-item.
    quick = [json.dumps({"id": i, "completion": f"\\boxed{{{i}}}", "answer": str(i)}) for i in range(512)]
    slow = [json.dumps({"id": 512 + k, "completion": f"\\boxed{{\\sum_{{k=1}}^{{{3000 + k}}} \\frac{{1}}{{k^{{3}}+1}}}}", "answer": "1"}) for k in range(48)]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, quick + slow)
    before = inp.read_text()
    proc = subprocess.Popen([*RLVR, "score", "math", "-i", str(inp), "-o", str(out), "-w", "2", "-t", "120", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    partial = tmp_path / ".out.jsonl.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if partial.exists() and partial.read_text().count("\n") >= 512 and len(_descendants(proc.pid)) >= 3:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the run never reached the slow rows")
    time.sleep(1.0)  # the workers are inside sympy now
    ours = _descendants(proc.pid)  # the forkserver and its workers
    assert len(ours) >= 2
    proc.send_signal(sig)
    ours |= _descendants(proc.pid)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "--resume" in err
    stop = time.monotonic() + 2.0
    while any(_alive(p) for p in ours) and time.monotonic() < stop:
        time.sleep(0.05)
    assert not [p for p in ours if _alive(p)], "worker processes outlived rlvr score by more than 2 s"
    assert inp.read_text() == before
    kept = _rows(out)  # valid JSONL, every scored row kept
    assert [g["id"] for g in kept] == list(range(512)) and all(g["status"] == "ok" for g in kept)
    assert not partial.exists()

    r = rlvr("score", "math", "-i", str(inp), "-o", str(out), "--resume", "-t", "0.3", "-w", "2")
    assert r.returncode == 0, r.stderr
    done = _rows(out)
    assert [g["id"] for g in done] == list(range(512 + len(slow)))
    assert done[:512] == kept  # kept rows are not scored again
    assert {g["status"] for g in done[512:]} <= {"timeout", "wrong", "ok"}
    assert "resumed: 512 rows kept" in r.stderr


def test_resume_refuses_an_output_of_another_input(tmp_path):
    inp, other, out = tmp_path / "in.jsonl", tmp_path / "other.jsonl", tmp_path / "out.jsonl"
    _write(inp, [GOOD, GOOD])
    _write(other, [json.dumps({"completion": "answer: Rome", "answer": "rome"})])
    assert rlvr("score", "string", "-i", str(other), "-o", str(out), "-q").returncode == 0
    before = out.read_text()
    r = rlvr("score", "string", "-i", str(inp), "-o", str(out), "--resume")
    assert r.returncode == 2 and "does not continue this input" in r.stderr
    assert out.read_text() == before
