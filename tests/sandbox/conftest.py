"""Sandboxes for the tests: one per backend, parametrised, skipped with a printed reason when unavailable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlvr.sandbox import Limits, Sandbox
from rlvr.sandbox.backends import backend_class

BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("bwrap", id="bwrap", marks=pytest.mark.bwrap),
    pytest.param("docker", id="docker", marks=pytest.mark.docker),
]

# Tight limits so hostile programs hit them quickly; generous enough for real programs.
HOSTILE_LIMITS = Limits(time_limit_s=2.0, memory_mb=256, stack_mb=32, max_processes=32, max_output_bytes=64_000,
                        max_file_mb=8, disk_mb=32, compile_time_limit_s=30, compile_memory_mb=512)

# Set before any worker starts: no sandboxed program may ever see it.
ENV_SECRET = "rlvr-env-secret-" + os.urandom(8).hex()
os.environ["RLVR_TEST_SECRET"] = ENV_SECRET

_cache: dict[str, Sandbox] = {}


def require(backend: str) -> None:
    """Skip (with the probe's reason, shown in the summary) when ``backend`` cannot run here."""
    ok, detail = backend_class(backend).probe()
    if not ok:
        pytest.skip(f"{backend} backend unavailable here: {detail}")


def shared_sandbox(backend: str) -> Sandbox:
    """One warm sandbox per backend for the whole session (hostile limits, 2 workers)."""
    require(backend)
    if backend not in _cache:
        _cache[backend] = Sandbox(backend, HOSTILE_LIMITS, concurrency=2)
    return _cache[backend]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each available backend in turn."""
    require(request.param)
    return request.param


@pytest.fixture
def sandbox(backend) -> Sandbox:
    """The session's warm sandbox of ``backend``."""
    return shared_sandbox(backend)


@pytest.fixture(scope="session", autouse=True)
def _close_shared_sandboxes():
    yield
    for sb in _cache.values():
        sb.close()
    _cache.clear()


def alive_with(token: str) -> list[str]:
    """Pids of live (not zombie) processes whose command line contains ``token`` (leak checks)."""
    out = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and token in Path(f"/proc/{name}/cmdline").read_bytes().decode("utf-8", "replace"):
                if Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(name)
        except OSError:
            pass
    return out
