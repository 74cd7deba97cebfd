"""Without root: the local backend falls back to its weakest mode and says so; bwrap is unchanged.

CI runs as root, so these tests start the sandbox from a child process running as ``nobody``
(the system interpreter and a copy of the package it can read).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import rlvr
from rlvr.sandbox.rootfs import system_python

from .conftest import require

ROOT = Path(rlvr.__file__).resolve().parents[1]
SCRIPT = """
import json, os, sys
from rlvr.sandbox import Sandbox, Program, Limits
token = sys.argv[2]
with Sandbox(sys.argv[1], Limits(time_limit_s=1), concurrency=1) as sb:
    daemon = "import subprocess, sys\\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(100)', %r], start_new_session=True)\\nprint('ok')" % token
    out = {"isolation": sb.isolation.__dict__, "uid": os.getuid(),
           "runs": [sb.run(Program("python", src)).status for src in ("print('hi')", daemon, "while True: pass")]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    """rlvr with its sandbox room, where ``nobody`` can import it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start a process as nobody")
    if not system_python().startswith("/usr/"):
        pytest.skip(f"the system interpreter {system_python()} may not be usable by nobody")
    if not ROOT.stat().st_mode & 0o005:
        pytest.skip(f"{ROOT} is not readable by other users")
    base = Path("/tmp") / f"rlvr-nobody-{os.getpid()}"
    shutil.copytree(ROOT / "rlvr", base / "rlvr", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "sandbox", base / "rlvr" / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
    (base / "run.py").write_text(SCRIPT)
    for p in [base, *base.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("backend", ["local", pytest.param("bwrap", marks=pytest.mark.bwrap)])
def test_runs_work_without_root_and_leave_no_daemon(backend, package_copy):
    require(backend)
    token = "rlvr-nobody-" + os.urandom(4).hex()
    r = subprocess.run([system_python(), str(package_copy / "run.py"), backend, token], user=65534, group=65534, extra_groups=[],
                       capture_output=True, text=True, timeout=120, cwd="/tmp",
                       env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(package_copy)})
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["uid"] == 65534 and out["runs"] == ["ok", "ok", "timeout"]
    if backend == "local":  # the weakest mode is reported, not hidden
        assert out["isolation"]["signals"] is False and out["isolation"]["network"] is False
    else:
        assert all(out["isolation"][k] for k in ("host_files_hidden", "network", "signals", "private_tmp", "disk_quota"))
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert token not in ps
