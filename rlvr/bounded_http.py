"""HTTP calls whose deadline bounds the whole request and whose response body is capped.

httpx's ``timeout`` is per operation (connect, each read): a server that sends one byte per
second never trips it, and one that streams without end is read into memory until the process
dies. Every client of ours that talks to a model server (the ``openai:`` eval policy, the vLLM
rollout backend, the OpenEnv adapter, the LLM judge) goes through :func:`bounded_request`: the whole exchange (connect, waiting for
the answer, reading the body) runs under one ``asyncio.wait_for`` deadline, and the body is read
in chunks and refused with :class:`BodyTooLarge` as soon as it passes the cap.

:class:`BlockingClient` gives synchronous code (threads of the rollout runner) the same
guarantees: it owns an ``httpx.AsyncClient`` on a private event-loop thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Mapping


class BodyTooLarge(Exception):
    """The server's response body went past the cap."""


class RequestTimeout(TimeoutError):
    """The whole request (connect, wait, body) did not finish within its deadline."""


class Reply:
    """A finished response: status, headers and the (capped) body bytes."""

    def __init__(self, status_code: int, headers: Any, content: bytes, url: str) -> None:
        self.status_code, self.headers, self.content, self.url = status_code, headers, content, url

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"Reply({self.status_code}, {len(self.content)} bytes from {self.url})"


async def read_capped(response: Any, cap: int) -> bytes:
    """The body of a streamed httpx response; BodyTooLarge as soon as it passes ``cap`` bytes."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge(f"the response body is over the {cap:,} byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


async def bounded_request(client: Any, method: str, url: str, *, timeout: float, max_body_bytes: int,
                          **kwargs: Any) -> Reply:
    """One request on an ``httpx.AsyncClient``, all of it within ``timeout`` seconds, body capped.

    Raises :class:`RequestTimeout` past the deadline, :class:`BodyTooLarge` past the cap, and
    httpx's own errors for refused or dropped connections.
    """

    async def exchange() -> Reply:
        async with client.stream(method, url, **kwargs) as r:
            content = await read_capped(r, max_body_bytes)
            return Reply(r.status_code, r.headers, content, str(r.request.url))

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        raise RequestTimeout(f"no complete answer within {timeout:g} s") from None


class BlockingClient:
    """A synchronous facade over ``httpx.AsyncClient`` with whole-request deadlines and capped bodies.

    Safe to call from many threads at once: their requests run concurrently on one private
    event loop, sharing the connection pool.
    """

    def __init__(self, *, timeout: float, max_body_bytes: int, max_connections: int = 64,
                 headers: Mapping[str, str] | None = None) -> None:
        import httpx

        self.timeout, self.max_body_bytes = float(timeout), int(max_body_bytes)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rlvr-http", daemon=True)
        self._thread.start()

        async def make() -> Any:
            return httpx.AsyncClient(headers=dict(headers or {}), timeout=httpx.Timeout(self.timeout),
                                     limits=httpx.Limits(max_connections=max_connections))

        self._client = self._run(make())
        self._closed = False

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def request(self, method: str, url: str, *, timeout: float | None = None, max_body_bytes: int | None = None,
                **kwargs: Any) -> Reply:
        """One request; see :func:`bounded_request` for what it raises."""
        if self._closed:
            raise RuntimeError("BlockingClient is closed")
        return self._run(bounded_request(self._client, method, url, timeout=timeout or self.timeout,
                                         max_body_bytes=max_body_bytes or self.max_body_bytes, **kwargs))

    def get(self, url: str, **kwargs: Any) -> Reply:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Reply:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        """Close the connections and stop the loop thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._client.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> "BlockingClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["BodyTooLarge", "RequestTimeout", "Reply", "read_capped", "bounded_request", "BlockingClient"]
