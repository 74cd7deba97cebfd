"""500 mixed runs, 8 in flight, per backend: right statuses, and nothing leaks afterwards."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from rlvr.sandbox import Limits, Program, Sandbox
from rlvr.sandbox.cgroups import _own_memory_cgroup

from .conftest import alive_with, require

LIMITS = Limits(time_limit_s=2.0, memory_mb=256, max_processes=32, max_output_bytes=20_000, disk_mb=32)
C_SUM = "#include <stdio.h>\nint main(){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a+b);}\n"


def mixed_runs(token: str, n: int = 500, seed: int = 0) -> list[tuple[Program, str, str | None]]:
    """(program, expected status, expected stdout or None) in a fixed random mix."""
    rng = random.Random(seed)
    kinds = ["ok"] * 10 + ["c"] * 3 + ["error"] * 3 + ["daemon"] * 2 + ["output", "memory", "timeout"]
    runs = []
    for i in range(n):
        kind = rng.choice(kinds)
        if kind == "ok":
            runs.append((Program("python", f"print({i} * 2)"), "ok", f"{i * 2}\n"))
        elif kind == "c":
            runs.append((Program("c", C_SUM, stdin=f"{i} {i}"), "ok", f"{2 * i}\n"))
        elif kind == "error":
            runs.append((Program("python", f"raise ValueError({i})"), "runtime_error", ""))
        elif kind == "daemon":
            src = f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{token}'], start_new_session=True)\nprint({i})"
            runs.append((Program("python", src), "ok", f"{i}\n"))
        elif kind == "output":
            runs.append((Program("python", "while True: print('x' * 100)"), "output_limit", None))
        elif kind == "memory":
            runs.append((Program("python", "a = []\nwhile True: a.append(bytes(10**8))  # calloc: hits the cap without touching pages"), "memory_limit", ""))
        else:
            runs.append((Program("python", "import time\ntime.sleep(30)"), "timeout", ""))
    return runs


def _containers_of_this_process() -> list[str]:
    import docker

    client = docker.from_env()
    return [c.id for c in client.containers.list(all=True, filters={"label": f"rlvr.sandbox.pid={os.getpid()}"})]


@pytest.mark.slow
def test_500_mixed_runs_with_8_in_flight_leave_nothing_behind(backend):
    require(backend)
    token = "rlvr-conc-" + os.urandom(5).hex()
    runs = mixed_runs(token)
    # Other tests in this process may keep their own sandboxes alive (shared pools): only what
    # this test's sandbox created must be gone.
    before_dirs = set(Path("/tmp").glob(f"rlvr-sbx-{os.getpid()}-*"))
    base, _ = _own_memory_cgroup()
    before_cgroups = set(base.glob(f"rlvr-sbx-{os.getpid()}-*")) if base is not None else set()
    before_containers = set(_containers_of_this_process()) if backend == "docker" else set()
    with Sandbox(backend, LIMITS, concurrency=8) as sb:
        results = sb.run_many([p for p, _, _ in runs], concurrency=8)
        assert alive_with(token) == [], "a daemon outlived its run"
    wrong = [(i, exp, r.status, r.detail) for i, ((_, exp, out), r) in enumerate(zip(runs, results))
             if r.status != exp or (out is not None and r.stdout != out)]
    assert not wrong, wrong[:10]
    assert alive_with(token) == []
    assert set(Path("/tmp").glob(f"rlvr-sbx-{os.getpid()}-*")) == before_dirs, "temp dirs leaked"
    assert not list(Path("/tmp").glob("left-*"))
    assert base is None or set(base.glob(f"rlvr-sbx-{os.getpid()}-*")) == before_cgroups, "memory cgroups leaked"
    if backend == "docker":
        assert set(_containers_of_this_process()) == before_containers, "containers leaked"
