"""Every hostile program, on every available backend: the right status and no effect on the host."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

import rlvr
from rlvr.sandbox import Program, Sandbox

from .conftest import HOSTILE_LIMITS, require
from .hostile_corpus import CASES, gzip_bomb

CHECKOUT = str(Path(rlvr.__file__).resolve().parents[1])


class Host:
    """What a hostile program might touch on the host, and the checks that it did not."""

    def __init__(self) -> None:
        self.token = os.urandom(6).hex()
        self.comm = "rz" + self.token
        self.env_secret = os.environ["RLVR_TEST_SECRET"]
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.host_dir = Path(f"/tmp/rlvr-hostile-{self.token}")
        self.host_dir.mkdir()
        self.host_dir.chmod(0o777)  # world-writable: only isolation, not permissions, keeps it empty
        self.secret = Path(f"/tmp/rlvr-secret-{self.token}")
        self.secret_value = "rlvr-file-secret-" + os.urandom(8).hex()
        self.secret.write_text(self.secret_value)
        self.secret.chmod(stat.S_IRUSR)

    def fill(self, text: str) -> str:
        for marker, value in (("@TOKEN@", self.token), ("@COMM@", self.comm), ("@PORT@", str(self.port)),
                              ("@HOST_DIR@", str(self.host_dir)), ("@SECRET@", str(self.secret)), ("@CHECKOUT@", CHECKOUT)):
            text = text.replace(marker, value)
        return text

    def program(self, case) -> Program:
        files = {name: gzip_bomb() if data == "@BOMB@" else self.fill(data) for name, data in case.files.items()}
        return Program(case.language, self.fill(case.source), files=files, stdin=case.stdin)

    def survivors(self) -> list[str]:
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                comm = Path(f"/proc/{name}/comm").read_text().strip()
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes().decode("utf-8", "replace")
                state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and (comm == self.comm or self.token in cmdline):
                found.append(f"{name} {comm} {cmdline!r}")
        return found

    def assert_untouched(self) -> None:
        assert self.survivors() == [], "processes outlived the run"
        assert list(self.host_dir.iterdir()) == [], "the program wrote into a host directory"
        try:
            conn, _ = self.listener.accept()
            conn.close()
            raise AssertionError("the loopback listener got a connection")
        except BlockingIOError:
            pass
        for parent in ("/usr", "/etc", "/", CHECKOUT, "/dev"):
            assert not Path(parent, f"rlvr-{self.token}").exists(), f"a file appeared in {parent}"
        assert self.secret.read_text() == self.secret_value

    def close(self) -> None:
        self.listener.close()
        for p in self.host_dir.iterdir():
            p.unlink()
        self.host_dir.rmdir()
        self.secret.unlink()


@pytest.fixture
def host():
    h = Host()
    yield h
    h.close()


def _skip_reason(case, backend: str, sandbox: Sandbox) -> str | None:
    if backend not in case.backends:
        return f"{case.name} does not apply to {backend}"
    if case.needs and not getattr(sandbox.isolation, case.needs):
        return f"the {backend} backend does not provide {case.needs} isolation here (documented weakness)"
    if case.name == "read_secret_file" and not (sandbox.isolation.host_files_hidden or os.geteuid() == 0):
        return f"the {backend} backend runs as your uid when not root: your files are its files"
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_program_is_contained(backend, sandbox, case, host):
    reason = _skip_reason(case, backend, sandbox)
    if reason:
        pytest.skip(reason)
    result = sandbox.run(host.program(case), limits=sandbox.limits.replace(**case.limits) if case.limits else None)
    assert result.status in case.expect, f"{result!r}\nstderr: {result.stderr[-1500:]}"
    assert result.backend == backend
    if case.check:
        case.check(result, host)
    host.assert_untouched()
    after = sandbox.run(Program("python", "print('alive')"))
    assert (after.status, after.stdout) == ("ok", "alive\n"), "the sandbox did not survive the program"


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30


SYSV = (
    "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "KEY = 0x52_4C_56\n"  # one System V key: a segment made by one run must not be there for the next
)
LEAVE = (
    SYSV + "print('made shm' if libc.shmget(KEY, 4096, 0o1666) >= 0 else 'no shm', flush=True)\n"
    "import os\n"
    "for p in ['/tmp/left-@TOKEN@', '/dev/shm/left-@TOKEN@', '/var/tmp/left-@TOKEN@', os.path.expanduser('~/.left-@TOKEN@'), 'left-@TOKEN@']:\n"
    "    try:\n        open(p, 'w').write('x')\n    except OSError:\n        pass\n"
    "print(os.getcwd())\n"
)
FIND = (
    SYSV + "print('shm left' if libc.shmget(KEY, 0, 0) >= 0 else 'no shm')\n"
    "import os\n"
    "found = [p for p in ['/tmp/left-@TOKEN@', '/dev/shm/left-@TOKEN@', '/var/tmp/left-@TOKEN@', os.path.expanduser('~/.left-@TOKEN@'), 'left-@TOKEN@'] if os.path.exists(p)]\n"
    "print(found)\n"
)


def test_files_left_in_tmp_and_shm_are_gone_for_the_next_run(backend, host):
    require(backend)
    with Sandbox(backend, HOSTILE_LIMITS, concurrency=1) as sb:  # one worker: the next run is on the same one
        first = sb.run(Program("python", host.fill(LEAVE)))
        assert first.status == "ok" and first.stdout.startswith("made shm"), first.stderr
        second = sb.run(Program("python", host.fill(FIND)))
        assert (second.status, second.stdout) == ("ok", "no shm\n[]\n")
        assert not list(Path("/tmp").glob(f"left-{host.token}")) and not list(Path("/dev/shm").glob(f"left-{host.token}"))
        workdir = first.stdout.splitlines()[-1]
        assert not Path(workdir, f"left-{host.token}").exists() or workdir == "/work"


def test_a_run_cannot_signal_or_read_a_concurrent_run(backend, host):
    require(backend)
    with Sandbox(backend, HOSTILE_LIMITS.replace(time_limit_s=3), concurrency=2) as sb:
        if not sb.isolation.signals:
            pytest.skip(f"the {backend} backend runs programs as your uid when not root (documented weakness)")
        sb.warmup()
        victim = Program("python", "import os, time\nopen('secret-@TOKEN@', 'w').write('@TOKEN@')\nprint(os.getcwd(), flush=True)\ntime.sleep(1.5)\nprint('survived')\n".replace("@TOKEN@", host.token))
        attacker = Program("python", (
            "import glob, os, signal, time\ntime.sleep(0.5)\n"
            "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
            "print(glob.glob('/work/secret-*') + glob.glob('/tmp/rlvr-sbx-*/*/secret-*'))\n"
        ))
        v, a = sb.run_many([victim, attacker], concurrency=2)
        assert v.status == "ok" and v.stdout.endswith("survived\n"), v
        assert a.status in ("ok", "killed") and host.token not in a.stdout


def _patch_zygote(monkeypatch, variant: str) -> None:
    """Start workers on another of the zygote's code paths (each taken on some machines)."""
    import json

    import rlvr.sandbox.zygote as Z

    if variant == "prepare_ahead":  # taken when a CPU is idle
        launch = Z.launch_argv
        monkeypatch.setattr(Z, "launch_argv", lambda python, cfg: launch(python, dict(cfg, prepare_ahead="always")))
        for mod in ("rlvr.sandbox.backends.local", "rlvr.sandbox.backends.bwrap", "rlvr.sandbox.backends.docker"):
            monkeypatch.setattr(f"{mod}.launch_argv", Z.launch_argv)
    else:  # "unshare": no clone(2) number for this CPU, so fork + unshare + fork
        sources = json.loads(Z._sources())
        for pair in sources:
            if pair[0] == "linux":
                pair[1] = pair[1].replace("CLONE_SYSCALL = {", "CLONE_SYSCALL = None and {")
        monkeypatch.setattr(Z, "_sources", lambda: json.dumps(sources))


@pytest.mark.parametrize("variant", ["prepare_ahead", "unshare"])
def test_other_zygote_paths_are_as_isolated(backend, host, monkeypatch, variant):
    require(backend)
    _patch_zygote(monkeypatch, variant)
    with Sandbox(backend, HOSTILE_LIMITS, concurrency=1) as sb:
        daemon = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(100)', '@TOKEN@'], start_new_session=True)\n"
        for _ in range(3):
            assert sb.run(Program("python", host.fill(LEAVE + daemon))).ok
            assert sb.run(Program("python", host.fill(FIND))).stdout == "no shm\n[]\n"
            host.assert_untouched()
        r = sb.run(Program("python", "import os\nprint(os.getpid(), os.getppid())"))
        assert r.ok and (backend != "bwrap" or r.stdout == "2 1\n")  # bwrap: the supervisor is pid 1 of the run
