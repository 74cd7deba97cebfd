"""``openai:BASE_URL#MODEL`` — any OpenAI-compatible chat-completions server.

vLLM, SGLang, llama.cpp's server, TGI and hosted APIs all speak ``POST {BASE_URL}/chat/completions``.
``BASE_URL`` is what you would give the OpenAI SDK (usually ending in ``/v1``); the API key comes
from ``OPENAI_API_KEY`` when it is set. Calls are async (httpx) and retried with exponential
backoff and jitter on 408/409/429/5xx, timeouts and dropped connections, honouring ``Retry-After``.

Deadlines are deadlines: ``request_timeout`` bounds each attempt as a whole (connect, waiting for
the answer, and reading the body), so a server that sends one byte per second times out like
one that sends nothing. The body is read in chunks and refused past ``max_body_bytes`` (decoded
size), so a server that streams without end costs at most that much memory.

Failure classes: 401/403/404 (bad key, unknown model, wrong path) and a server that stays
unreachable stop the run with :class:`PolicyError`; anything else that still fails after the
retries (e.g. a 400 for a conversation longer than the context) fails only that episode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from rlvr.errors import ConfigError
from rlvr.bounded_http import BodyTooLarge, Reply, RequestTimeout, bounded_request, read_capped
from rlvr.envs.evaluation.policies.base import (
    Completion,
    Message,
    Policy,
    PolicyCallFailed,
    PolicyError,
    PolicyOptions,
    SamplingParams,
    estimate_prompt_tokens,
    estimate_tokens,
)
from rlvr.envs.evaluation.policies.registry import register_policy

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})
MAX_BACKOFF_S = 30.0
MAX_BODY_BYTES = 32 << 20  # a chat completion is text: 32 MiB is far beyond any real answer


class OpenAIPolicy(Policy):
    """Chat completions from an OpenAI-compatible server; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        request_timeout: float = 300.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        extra_body: Mapping[str, Any] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError("policy", f"{base_url!r} is not an http(s) URL", "write openai:http://HOST:PORT/v1#MODEL")
        if not model:
            raise ConfigError("policy", "no model name after '#'", "write openai:http://HOST:PORT/v1#MODEL")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or None
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.extra_body = dict(extra_body or {})
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1024:
            raise ConfigError("max_body_bytes", f"must be a whole number of bytes >= 1024, got {max_body_bytes!r}")
        self.max_body_bytes = max_body_bytes
        self.spec = f"openai:{self.base_url}#{model}"
        self._client: Any = None
        #: the served model's context in tokens when the server (or a local model directory) says it.
        self.context_length: int | None = None

    async def astart(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(self.request_timeout, connect=min(10.0, self.request_timeout)),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )
        self.context_length = await self._served_context_length()

    async def _served_context_length(self) -> int | None:
        """The model's context, best effort: ``/models`` fields (vLLM's ``max_model_len`` and kin), else
        ``max_position_embeddings`` of a local model directory (``transformers serve PATH``)."""
        try:
            reply = await bounded_request(self._client, "GET", "models", timeout=min(10.0, self.request_timeout),
                                          max_body_bytes=1 << 20)
            listed = reply.json().get("data", []) if reply.status_code == 200 else []
            for entry in listed if isinstance(listed, list) else []:
                if isinstance(entry, Mapping) and entry.get("id") == self.model:
                    for key in ("max_model_len", "context_length", "max_context_length", "context_window"):
                        if isinstance(entry.get(key), int) and entry[key] > 0:
                            return int(entry[key])
        except Exception:  # a hint only: servers without /models are fine
            pass
        try:
            config = json.loads((Path(self.model) / "config.json").read_text(encoding="utf-8"))
            value = config.get("max_position_embeddings")
            return int(value) if isinstance(value, int) and value > 0 else None
        except (OSError, ValueError, AttributeError):
            return None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def complete(
        self, messages: Sequence[Message], sampling: SamplingParams, *, task: Mapping[str, Any] | None = None
    ) -> Completion:
        import httpx

        if self._client is None:
            raise PolicyError(f"{self.spec}: complete() called outside a run (call astart() first)")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            **self.extra_body,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        problem = "no attempt made"
        unreachable = False
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                r = await self._post(body)
            except (httpx.TimeoutException, RequestTimeout) as e:
                problem, unreachable = f"timed out after {self.request_timeout:g} s ({type(e).__name__})", False
            except BodyTooLarge as e:  # a server that answers without end: retrying would only repeat it
                raise PolicyCallFailed(f"{e} (max_body_bytes={self.max_body_bytes}); the server at {self.base_url} sent more than any completion needs") from None
            except httpx.TransportError as e:  # refused, reset, DNS: maybe the server is (re)starting
                problem, unreachable = f"cannot reach {self.base_url} ({type(e).__name__}: {e})", True
            else:
                unreachable = False
                if r.status_code == 200:
                    parsed = _parse(r, messages)
                    if isinstance(parsed, Completion):
                        return parsed
                    problem = parsed
                elif r.status_code in FATAL_STATUS:
                    raise PolicyError(f"{self.spec}: HTTP {r.status_code} from {r.url}: {_snippet(r)}"
                                      + _fatal_hint(r.status_code))
                elif r.status_code in RETRY_STATUS or r.status_code >= 500:
                    problem = f"HTTP {r.status_code}: {_snippet(r)}"
                    retry_after = _retry_after(r)
                else:  # 400/413/422...: this conversation is the problem; retrying would not help
                    raise PolicyCallFailed(f"HTTP {r.status_code}: {_snippet(r)}")
            if attempt < self.max_retries:
                delay = min(MAX_BACKOFF_S, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, MAX_BACKOFF_S))
                logger.debug("%s: %s; retry %d/%d in %.2f s", self.spec, problem, attempt + 1, self.max_retries, delay)
                await asyncio.sleep(delay)
        if unreachable:
            raise PolicyError(f"{self.spec}: {problem} after {self.max_retries + 1} attempts (is the server running?)")
        raise PolicyCallFailed(f"{problem} (gave up after {self.max_retries + 1} attempts)")

    async def _post(self, body: Mapping[str, Any]) -> Reply:
        """One POST, all of it within ``request_timeout``, its body read under the cap."""
        return await bounded_request(self._client, "POST", "chat/completions", json=body,
                                     timeout=self.request_timeout, max_body_bytes=self.max_body_bytes)


def _parse(r: Any, messages: Sequence[Message]) -> Completion | str:
    """A Completion from a 200 response, or a string saying why the body is unusable (retried)."""
    try:
        data = r.json()
        choice = data["choices"][0]
        content = choice["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return f"malformed response body: {_snippet(r)}"
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    text = content if isinstance(content, str) else ""
    usage = data.get("usage") if isinstance(data, dict) else None
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    completion_tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if isinstance(prompt_tokens, int) and isinstance(completion_tokens, int):
        return Completion(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, estimated=False,
                          finish_reason=choice.get("finish_reason"))
    return Completion(text, prompt_tokens=estimate_prompt_tokens(messages), completion_tokens=estimate_tokens(text),
                      estimated=True, finish_reason=choice.get("finish_reason"))


def _snippet(r: Any, limit: int = 300) -> str:
    try:
        data = r.json()
        if isinstance(data, dict):
            err = data.get("error", data)
            msg = err.get("message") if isinstance(err, dict) else err
            if msg:
                return str(msg)[:limit]
    except ValueError:
        pass
    return (r.text or "<empty body>")[:limit]


def _retry_after(r: Any) -> float | None:
    value = r.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


def _fatal_hint(status: int) -> str:
    return {
        401: " (set OPENAI_API_KEY to a valid key)",
        403: " (the key may not be allowed to use this model)",
        404: " (check the model name after '#' and that BASE_URL ends where /chat/completions lives, usually /v1)",
    }[status]


def _from_spec(rest: str, options: PolicyOptions) -> Policy:
    if "#" not in rest:
        raise ConfigError("policy", f"openai:{rest} names no model", "append #MODEL, e.g. openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-1.5B-Instruct")
    base_url, model = rest.rsplit("#", 1)
    return OpenAIPolicy(
        base_url,
        model,
        concurrency=options.concurrency,
        request_timeout=options.request_timeout,
        max_retries=options.max_retries,
        backoff_s=options.backoff_s,
    )


register_policy("openai", _from_spec, "openai:BASE_URL#MODEL")

__all__ = ["OpenAIPolicy", "BodyTooLarge", "read_capped"]
