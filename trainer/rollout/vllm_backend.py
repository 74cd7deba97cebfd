"""Rollouts from a vLLM server (``generation.backend: vllm``), weights synced from the trainer.

For users who have vLLM and a spare GPU: the trainer keeps its GPUs for the optimiser and a
separate ``vllm serve`` process generates. Kept thin on purpose (it cannot be tested against a
real vLLM here):

* **Generation** is one OpenAI-compatible ``POST /v1/completions`` per chunk of token-id prompts
  with vLLM's extra fields (``return_token_ids``, ``stop_token_ids``, ``top_k``, ...), parsed into
  the same ``Completion`` the engine returns, so the rollout runner never knows which one ran.
  We speak HTTP ourselves (httpx, a core dependency) rather than through TRL's ``VLLMClient``
  because that class refuses to exist without the ``vllm`` package, which generation does not need.
* **Deadlines are deadlines**: ``timeout`` bounds each request as a whole (connect, waiting for
  the answer, reading the body; ``rlvr.bounded_http``), so a server that drips one byte per
  second fails like one that says nothing, and the body is refused past ``max_body_bytes``
  (default: :func:`body_cap`, generous for the tokens asked for), so a server that streams
  without end costs bounded memory. Both are a ``VLLMServerError`` naming the server.
* **Weight sync** (``rlvr.trainer.trl.vllm_sync``) goes through TRL's ``VLLMClient`` (NCCL weight transfer; needs ``vllm`` in the
  trainer's environment and a CUDA device): before a generation, when ``weights_version()`` has
  moved since the last sync, the main process streams the (gathered) weights to the server and
  resets its prefix cache; the other processes wait at a barrier so nobody samples stale weights.
  Under asynchronous training (``generation.max_off_policy_steps >= 1``) the push happens after
  every optimiser step instead, while a generator thread's requests keep flowing
  (``rlvr.trainer.asynchronous.server``).

Start the server the way TRL documents it, with sampled-token log-probs after temperature::

    VLLM_SERVER_DEV_MODE=1 vllm serve MODEL --weight-transfer-config '{"backend": "nccl"}' \\
        --logprobs-mode processed_logprobs --max-logprobs 0
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rlvr.bounded_http import BlockingClient, BodyTooLarge, RequestTimeout
from rlvr.errors import ConfigError
from rlvr.envs.generation import Completion, SamplingParams

logger = logging.getLogger(__name__)

WeightSync = Callable[[Any], None]

# Bytes a /v1/completions answer may take per requested token (token id, its text JSON-escaped,
# its log-prob: well under 100 in practice) and per prompt (the envelope); never under the floor.
BODY_BYTES_PER_TOKEN = 1024
BODY_BYTES_PER_PROMPT = 64 << 10
MIN_BODY_BYTES = 16 << 20
MODELS_BODY_BYTES = 1 << 20  # GET /v1/models lists a few model cards


class VLLMServerError(RuntimeError):
    """The vLLM server failed a request: an HTTP error, no complete answer in time, or an oversized body."""


def body_cap(num_prompts: int, max_new_tokens: int) -> int:
    """The default body cap of one ``/v1/completions`` answer for ``num_prompts`` x ``max_new_tokens``."""
    return max(MIN_BODY_BYTES, num_prompts * (BODY_BYTES_PER_PROMPT + BODY_BYTES_PER_TOKEN * max(1, max_new_tokens)))


def served_model(http: BlockingClient, base_url: str) -> str:
    """The model id a vLLM server serves (``GET /v1/models``); a ``ConfigError`` when none answers."""
    try:
        models = http.get(f"{base_url}/v1/models", max_body_bytes=MODELS_BODY_BYTES)
        if models.status_code != 200:
            raise VLLMServerError(f"HTTP {models.status_code}: {models.text[:200]}")
        return str(models.json()["data"][0]["id"])
    except Exception as e:
        raise ConfigError("generation.vllm_url", f"no vLLM server answers at {base_url} ({e})",
                          "start one with `vllm serve MODEL` (see rlvr.trainer.rollout.vllm_backend) "
                          "and give its address, e.g. http://localhost:8000") from e


def preflight(base_url: str, sync_weights: bool) -> None:
    """Before a run loads its model: the server answers, and weight sync can work if asked for."""
    with BlockingClient(timeout=30.0, max_body_bytes=MODELS_BODY_BYTES) as http:
        served_model(http, root_url(base_url))
    if sync_weights:
        from rlvr.trainer.trl.vllm_sync import require_weight_transfer

        require_weight_transfer()


def root_url(base_url: str) -> str:
    """The server's root address (``/v1`` stripped): where ``/v1/...`` and the weight-sync routes live."""
    root = base_url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


class VLLMBackend:
    """Token-id prompts -> ``Completion``s from a vLLM server's ``/v1/completions``."""

    name = "vllm"

    def __init__(
        self,
        base_url: str,
        tokenizer: Any,
        *,
        model: Any = None,
        weight_sync: WeightSync | None = None,
        weights_version: Callable[[], Hashable] | None = None,
        context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
        is_main: bool = True,
        barrier: Callable[[], None] | None = None,
        max_batch: int = 256,
        timeout: float = 600.0,
        max_body_bytes: int | None = None,
    ) -> None:
        if max_body_bytes is not None and (isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int)
                                           or max_body_bytes < 1024):
            raise ConfigError("max_body_bytes", f"must be a whole number of bytes >= 1024, got {max_body_bytes!r}",
                              "leave it unset for a cap sized to the tokens asked for")
        if not timeout or timeout <= 0:
            raise ConfigError("timeout", f"must be a positive number of seconds, got {timeout!r}")
        self.base_url = root_url(base_url)
        self.tokenizer = tokenizer
        self.model = model
        self.weight_sync = weight_sync
        self.weights_version = weights_version or (lambda: 0)
        self.context = context
        self.is_main = is_main
        self.barrier = barrier or (lambda: None)
        self.max_batch = max(1, int(max_batch))
        self._synced: Hashable | None = None
        self._warned_logprobs = False
        self.timeout, self.max_body_bytes = float(timeout), max_body_bytes
        self._http = BlockingClient(timeout=self.timeout, max_body_bytes=max_body_bytes or MIN_BODY_BYTES,
                                    max_connections=8)
        try:
            self.served_model = served_model(self._http, self.base_url)
        except ConfigError:
            self._http.close()
            raise

    # ------------------------------------------------------------------ weights
    def _sync_weights(self) -> None:
        """Stream the trainer's weights to the server if they changed since the last sync."""
        if self.weight_sync is None:
            return
        version = self.weights_version()
        if self._synced is not None and version == self._synced:
            return
        with (self.context() if self.context is not None else contextlib.nullcontext(self.model)) as model:
            if self.is_main:  # the gather above is collective; only one process talks to the server
                self.weight_sync(model)
        self.barrier()
        self._synced = version

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """One completion per prompt, in order; chunks of ``max_batch`` prompts go out concurrently."""
        if not prompts:
            return []
        self._sync_weights()
        self._check_logprob_mode(params)
        chunks = [list(range(s, min(s + self.max_batch, len(prompts)))) for s in range(0, len(prompts), self.max_batch)]
        with ThreadPoolExecutor(max_workers=min(8, len(chunks))) as pool:
            parts = list(pool.map(lambda idx: self._request([prompts[i] for i in idx], idx, params), chunks))
        return [c for part in parts for c in part]

    def _payload(self, prompts: list[list[int]], params: SamplingParams) -> dict[str, Any]:
        return {
            "model": self.served_model,
            "prompt": prompts,
            "n": 1,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k if params.top_k > 0 else -1,
            "stop": list(params.stop) or None,
            "stop_token_ids": list(params.stop_token_ids),
            "ignore_eos": params.ignore_eos,
            "include_stop_str_in_output": True,  # our Completion keeps the text that completed a stop string
            "skip_special_tokens": params.skip_special_tokens,
            "logprobs": 0,  # the sampled token's log-prob only
            "return_token_ids": True,
            "return_tokens_as_token_ids": True,
        }

    def _request(self, prompts: list[Sequence[int]], indices: list[int], params: SamplingParams) -> list[Completion]:
        import httpx

        ids = [[int(t) for t in p] for p in prompts]
        cap = self.max_body_bytes or body_cap(len(ids), params.max_new_tokens)
        try:
            response = self._http.post(f"{self.base_url}/v1/completions", json=self._payload(ids, params),
                                       max_body_bytes=cap)
        except RequestTimeout as e:
            raise VLLMServerError(f"vLLM server {self.base_url}: {e} for {len(ids)} prompts "
                                  f"(timeout={self.timeout:g} s bounds connect, wait and body together)") from None
        except httpx.TransportError as e:
            raise VLLMServerError(f"vLLM server {self.base_url}: {type(e).__name__}: {e}") from None
        except BodyTooLarge as e:
            raise VLLMServerError(f"vLLM server {self.base_url}: {e} (max_body_bytes={cap}) for {len(ids)} prompts x "
                                  f"{params.max_new_tokens} tokens; that is more than any answer needs") from None
        if response.status_code != 200:
            raise VLLMServerError(f"vLLM server {self.base_url}: HTTP {response.status_code}: {response.text[:500]}")
        try:
            choices = sorted(response.json()["choices"], key=lambda c: int(c.get("index", 0)))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise VLLMServerError(f"vLLM server {self.base_url}: malformed /v1/completions body: {response.text[:300]!r}") from None
        if len(choices) != len(ids):
            raise VLLMServerError(f"vLLM server {self.base_url}: {len(choices)} choices for {len(ids)} prompts")
        return [self._completion(i, p, c, params) for i, p, c in zip(indices, ids, choices)]

    def _completion(self, index: int, prompt: list[int], choice: dict[str, Any], params: SamplingParams) -> Completion:
        tokens = [int(t) for t in choice.get("token_ids") or []]
        lp = choice.get("logprobs") or {}
        logprobs = [float(x) if x is not None else 0.0 for x in (lp.get("token_logprobs") or [])]
        if len(logprobs) != len(tokens):
            raise VLLMServerError(f"vLLM server {self.base_url}: {len(logprobs)} log-probs for {len(tokens)} tokens "
                               "(start it with --max-logprobs 0 or higher)")
        reason = "stop" if choice.get("finish_reason") == "stop" else "length"
        stop_reason = choice.get("stop_reason")
        if reason == "stop" and stop_reason is None and tokens:
            stop_reason = tokens[-1]  # EOS: vLLM reports no stop_reason, the token is the last one
        text = choice.get("text")
        if text is None:
            text = self.tokenizer.decode(tokens, skip_special_tokens=params.skip_special_tokens) if self.tokenizer else ""
        return Completion(index=index, prompt_ids=prompt, token_ids=tokens, text=text, logprobs=logprobs,
                          finish_reason=reason, stop_reason=stop_reason, params=params)

    def _check_logprob_mode(self, params: SamplingParams) -> None:
        # vLLM's log-probs follow the server's --logprobs-mode; with processed_logprobs they are
        # our "processed" mode, which equals "raw" unless top-k/top-p truncate the distribution.
        if params.filtered and params.logprob_mode == "raw" and not self._warned_logprobs:
            self._warned_logprobs = True
            logger.warning("vLLM returns log-probs after top-k/top-p (processed_logprobs); the trainer recomputes "
                           "them without truncation, so rollout-anchored ratios see the difference")

    def release(self) -> None:
        """Close the HTTP connections (the server and its weight-transfer group stay up)."""
        self._http.close()


__all__ = ["VLLMBackend", "VLLMServerError", "body_cap", "preflight", "served_model", "root_url", "WeightSync"]
