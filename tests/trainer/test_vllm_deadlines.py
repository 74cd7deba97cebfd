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
import time

import pytest

from rlvr.envs.generation import SamplingParams
from rlvr.errors import ConfigError
from rlvr.trainer.rollout.vllm_backend import VLLMBackend, VLLMServerError, body_cap

from ..hostile_http import drip_body, drip_headers, endless_body, raw_server, send_json

MODELS = json.dumps({"data": [{"id": "served"}]}).encode()


def _vllm(on_post):
    """A vLLM-like handler: ``GET /v1/models`` answers properly (keep-alive), POSTs go to ``on_post``."""
    def handle(conn, stop, request):
        if request.method == "GET":
            send_json(conn, MODELS)
            return True
        on_post(conn, stop, request)
        return None
    return handle


def _server(on_post):
    return raw_server(_vllm(on_post))


def _honest(conn, stop, request):
    choices = [{"index": i, "text": "ok", "token_ids": [7, 2], "finish_reason": "stop", "stop_reason": None,
                "logprobs": {"token_logprobs": [-0.1, -0.2]}} for i, _ in enumerate(request.json()["prompt"])]
    send_json(conn, json.dumps({"choices": choices}).encode())


def _generate(url, **kwargs):
    backend = VLLMBackend(url, None, **kwargs)
    try:
        return backend.generate([[1, 2, 3], [4, 5]], SamplingParams(max_new_tokens=4))
    finally:
        backend.release()


@pytest.mark.parametrize("hostile", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_server_dripping_one_byte_per_second_fails_at_the_timeout(hostile):
    with _server(hostile) as url:
        t0 = time.monotonic()
        with pytest.raises(VLLMServerError, match="no complete answer within 2 s"):
            _generate(url, timeout=2.0)
        # A per-read timeout would wait for all 1000 body bytes (~17 min) or 10,000 header bytes.
        assert time.monotonic() - t0 < 15


def test_an_endless_body_is_refused_at_the_cap_with_memory_bounded():
    cap = 4 << 20
    with _server(endless_body) as url:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(VLLMServerError, match="over the 4,194,304 byte cap"):
            _generate(url, timeout=120.0, max_body_bytes=cap)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, grown_mb


def test_the_default_cap_follows_the_tokens_asked_for_and_stops_an_endless_body():
    assert body_cap(1, 4) == 16 << 20  # the floor
    assert body_cap(256, 4096) > 256 * 4096 * 100  # far above what vLLM sends per token
    with _server(endless_body) as url:
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
