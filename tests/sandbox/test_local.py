"""local is honest: it says what it lacks, auto never picks it over an isolating backend, and it cleans what runs leave."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from rlvr.sandbox import Limits, Program, Sandbox, default_backend
from rlvr.sandbox.backends import backend_class
from rlvr.sandbox.backends import local as L

from .conftest import require


def test_the_first_local_sandbox_warns_once_naming_what_it_lacks(monkeypatch, caplog):
    monkeypatch.setattr(L, "WARNED", False)
    with caplog.at_level(logging.WARNING, logger="rlvr.sandbox.backends.local"):
        Sandbox("local", concurrency=1).close()
        Sandbox("local", concurrency=1).close()
    warnings = [m for m in caplog.messages if "weakest" in m]
    assert len(warnings) == 1 and "host files readable" in warnings[0] and "bwrap or docker" in warnings[0]


def test_doctor_reports_what_local_lacks():
    from rlvr.cli.doctor import collect

    report = collect()
    assert report["sandbox_local_lacks"] and any("host files" in x for x in report["sandbox_local_lacks"])
    local = next(r for r in report["sandbox"] if r["backend"] == "local")
    assert "lacks" in local["detail"]


@pytest.mark.parametrize("working", [("bwrap",), ("docker",), ("bwrap", "docker")])
def test_auto_never_picks_local_while_an_isolating_backend_works(monkeypatch, working):
    for name in ("bwrap", "docker"):
        ok = name in working
        monkeypatch.setattr(backend_class(name), "probe", classmethod(lambda cls, ok=ok: (ok, "pretend")))
    assert default_backend() == working[0]


def test_auto_picks_local_only_when_nothing_else_works(monkeypatch):
    for name in ("bwrap", "docker"):
        monkeypatch.setattr(backend_class(name), "probe", classmethod(lambda cls: (False, "pretend")))
    assert default_backend() == "local"


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: local gives each run its own uid")
@pytest.mark.parametrize("namespaces", [True, False], ids=["per-run-namespaces", "shared-host-tmp"])
def test_local_as_root_leaves_no_nested_file_for_a_later_run(monkeypatch, namespaces):
    require("local")
    if namespaces and not L._per_run_namespaces():
        pytest.skip("the kernel refuses namespaces here")
    monkeypatch.setattr(L, "_per_run_namespaces", lambda: namespaces)
    tok = os.urandom(6).hex()
    shared = Path(f"/tmp/rlvr-ww-{tok}")  # like /tmp/.X11-unix: world-writable and not the run's
    shared.mkdir()
    shared.chmod(0o1777)
    write = (f"import os\nfor d in ('/tmp/{shared.name}', '/tmp', '/var/tmp', '/dev/shm'):\n"
             f"    try:\n        os.makedirs(d + '/n-{tok}/a/b', exist_ok=True); open(d + '/n-{tok}/a/b/f', 'w').write('x')\n"
             f"    except OSError: pass\nprint('wrote')")
    read = f"import os\nprint([d for d in ('/tmp/{shared.name}', '/tmp', '/var/tmp', '/dev/shm') if os.path.exists(d + '/n-{tok}')])"
    try:
        with Sandbox("local", Limits(time_limit_s=10), concurrency=1) as sb:
            w = sb.run(Program("python", write))
            r = sb.run(Program("python", read))
        assert (w.status, w.stdout) == ("ok", "wrote\n"), w.stderr
        assert (r.status, r.stdout) == ("ok", "[]\n"), r.stderr
        assert list(shared.iterdir()) == []  # nothing reached the host's shared dir either
    finally:
        import shutil

        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only")
def test_local_as_root_keeps_the_host_read_only_for_runs():
    require("local")
    if not L._per_run_namespaces():
        pytest.skip("the kernel refuses namespaces here")
    shared = Path(f"/var/lib/rlvr-ww-{os.urandom(6).hex()}")  # world-writable, outside every temp dir
    shared.mkdir()
    shared.chmod(0o1777)
    try:
        with Sandbox("local", Limits(time_limit_s=10), concurrency=1) as sb:
            r = sb.run(Program("python", f"try:\n    open('{shared}/f', 'w').write('x'); print('wrote')\nexcept OSError as e: print(e.errno)"))
        assert (r.status, r.stdout) == ("ok", "30\n") and list(shared.iterdir()) == []  # EROFS
    finally:
        import shutil

        shutil.rmtree(shared, ignore_errors=True)


def test_local_programs_cannot_use_keyrings_which_outlive_every_run():
    """Keyrings belong to the uid, not the process: on local they would outlive a `rlvr sandbox run` process."""
    src = "import ctypes\nl = ctypes.CDLL(None, use_errno=True)\nprint(l.syscall(248, b'user', b'k', b'v', 1, -4), ctypes.get_errno())"
    with Sandbox("local", Limits(time_limit_s=10), concurrency=1) as sb:
        r = sb.run(Program("python", src))
    assert (r.status, r.stdout) == ("ok", "-1 1\n")  # EPERM
