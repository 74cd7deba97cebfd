"""The openai: policy against hostile loopback servers: a request timeout bounds the whole request, bodies are capped.

Two real HTTP servers on 127.0.0.1: one answers 200 and then drips its body one byte per second
(a per-read timeout never fires on it), one streams a body that never ends. Both must fail the
call within the deadline / the cap, and memory must stay bounded while the endless one streams.
"""

from __future__ import annotations

import asyncio
import resource
import time

import pytest

from rlvr.envs.evaluation.policies.base import PolicyCallFailed
from rlvr.envs.evaluation.policies.openai_compat import OpenAIPolicy
from rlvr.envs.generation import SamplingParams

from ..hostile_http import drip_body, endless_body, raw_server


async def _one_call(policy: OpenAIPolicy):
    await policy.astart()
    try:
        return await policy.complete([{"role": "user", "content": "hi"}], SamplingParams(max_new_tokens=8))
    finally:
        await policy.aclose()


def test_a_server_dripping_one_byte_per_second_times_out_at_the_request_timeout():
    with raw_server(drip_body) as root:
        policy = OpenAIPolicy(f"{root}/v1", "m", request_timeout=2.0, max_retries=0)
        t0 = time.monotonic()
        with pytest.raises(PolicyCallFailed, match="timed out after 2 s"):
            asyncio.run(_one_call(policy))
        assert time.monotonic() - t0 < 10  # a per-read timeout would wait for all 1000 bytes (~17 min)


def test_an_endless_body_is_refused_at_the_cap_with_memory_bounded():
    cap = 4 << 20
    with raw_server(endless_body) as root:
        policy = OpenAIPolicy(f"{root}/v1", "m", request_timeout=60.0, max_retries=2, max_body_bytes=cap)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(PolicyCallFailed, match="over the 4,194,304 byte cap"):
            asyncio.run(_one_call(policy))
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, grown_mb  # the body stops at 4 MiB; before the cap it grew to gigabytes


def test_a_bad_body_cap_is_a_config_error():
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="max_body_bytes"):
        OpenAIPolicy("http://127.0.0.1:1/v1", "m", max_body_bytes=10)
