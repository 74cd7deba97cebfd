"""The vLLM rollout client against hostile loopback servers: the timeout bounds the whole request, bodies are capped.

Real HTTP servers on 127.0.0.1 answer ``GET /v1/models`` like vLLM and then misbehave on
``POST /v1/completions``: one drips its body one byte per second (a per-read timeout never fires),
one drips its *headers* that way, one streams a body that never ends. Each must fail the call
with a ``VLLMServerError`` within the deadline / at the cap, with memory bounded while the
endless one streams; a well-behaved answer still goes through the same client.
"""

from __future__ import annotations

import json
import resource
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from rlvr.envs.generation import SamplingParams
from rlvr.errors import ConfigError
from rlvr.trainer.rollout.vllm_backend import VLLMBackend, VLLMServerError, body_cap

MODELS = json.dumps({"data": [{"id": "served"}]}).encode()


@contextmanager
def _server(on_post):
    """A raw TCP server on loopback: ``GET /v1/models`` answers properly, ``on_post(conn, stop)`` answers POSTs."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=_handle, args=(conn, on_post, stop), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(2)
        srv.close()


def _handle(conn, on_post, stop):
    try:
        conn.settimeout(5)
        while not stop.is_set():  # keep-alive: one connection may carry several requests
            data = b""
            while b"\r\n\r\n" not in data:
                got = conn.recv(65536)
                if not got:
                    return
                data += got
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            if head.startswith(b"GET"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(MODELS), MODELS))
            else:
                on_post(conn, stop, json.loads(rest))
                return
    except OSError:
        pass
    finally:
        conn.close()


def _drip_body(conn, stop, body):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b" ")
        time.sleep(1.0)


def _drip_headers(conn, stop, body):
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
        if stop.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(1.0)


def _endless(conn, stop, body):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    while not stop.is_set():
        conn.sendall(frame)


def _honest(conn, stop, body):
    choices = [{"index": i, "text": "ok", "token_ids": [7, 2], "finish_reason": "stop", "stop_reason": None,
                "logprobs": {"token_logprobs": [-0.1, -0.2]}} for i, _ in enumerate(body["prompt"])]
    data = json.dumps({"choices": choices}).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))


def _generate(url, **kwargs):
    backend = VLLMBackend(url, None, **kwargs)
    try:
        return backend.generate([[1, 2, 3], [4, 5]], SamplingParams(max_new_tokens=4))
    finally:
        backend.release()


@pytest.mark.parametrize("hostile", [_drip_body, _drip_headers], ids=["body", "headers"])
def test_a_server_dripping_one_byte_per_second_fails_at_the_timeout(hostile):
    with _server(hostile) as url:
        t0 = time.monotonic()
        with pytest.raises(VLLMServerError, match="no complete answer within 2 s"):
            _generate(url, timeout=2.0)
        # A per-read timeout would wait for all 1000 body bytes (~17 min) or 10,000 header bytes.
        assert time.monotonic() - t0 < 15


def test_an_endless_body_is_refused_at_the_cap_with_memory_bounded():
    cap = 4 << 20
    with _server(_endless) as url:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(VLLMServerError, match="over the 4,194,304 byte cap"):
            _generate(url, timeout=120.0, max_body_bytes=cap)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, grown_mb


def test_the_default_cap_follows_the_tokens_asked_for_and_stops_an_endless_body():
    assert body_cap(1, 4) == 16 << 20  # the floor
    assert body_cap(256, 4096) > 256 * 4096 * 100  # far above what vLLM sends per token
    with _server(_endless) as url:
        with pytest.raises(VLLMServerError, match=f"over the {16 << 20:,} byte cap"):
            _generate(url, timeout=120.0)


def test_an_honest_server_still_answers_through_the_bounded_client():
    with _server(_honest) as url:
        out = _generate(url, timeout=10.0)
    assert [c.token_ids for c in out] == [[7, 2], [7, 2]] and out[1].logprobs == [-0.1, -0.2]


def test_a_server_that_accepts_and_never_answers_fails_within_the_deadline():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)  # accepts connections (the kernel does) but never says a word
    try:
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match="generation.vllm_url"):
            VLLMBackend(f"http://127.0.0.1:{srv.getsockname()[1]}", None, timeout=1.5)
        assert time.monotonic() - t0 < 10
    finally:
        srv.close()


def test_bad_limits_are_config_errors():
    with pytest.raises(ConfigError, match="max_body_bytes"):
        VLLMBackend("http://127.0.0.1:9", None, max_body_bytes=10)
    with pytest.raises(ConfigError, match="timeout"):
        VLLMBackend("http://127.0.0.1:9", None, timeout=0)
