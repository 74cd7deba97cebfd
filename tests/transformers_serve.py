"""A real `transformers serve` process over a local model folder, for tests that talk to a served model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def transformers_serve(model_dir: Path, log_path: Path, startup_s: float = 180) -> Iterator[str]:
    """Serve ``model_dir`` offline on the CPU; yields the OpenAI base URL ``http://127.0.0.1:PORT/v1``.

    The server logs to ``log_path`` (a file, not a pipe: an unread pipe fills up and stalls the
    server); a server that exits or is not healthy within ``startup_s`` fails the test with its log.
    """
    import httpx

    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    log = log_path.open("wb")
    proc = subprocess.Popen([str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"transformers serve was not healthy within {startup_s:.0f} s: "
                        f"{log_path.read_text(errors='replace')[-2000:]}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()
