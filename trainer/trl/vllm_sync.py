"""Weight sync to a vLLM server through TRL's ``VLLMClient`` (NCCL weight transfer).

Needs ``vllm`` in the trainer's environment and a CUDA device. One client per server address:
NCCL groups are per (trainer, server) pair, so every backend built over the same URL in one
process shares it.
"""

from __future__ import annotations

import threading
from typing import Any

from rlvr.errors import ConfigError
from rlvr.trainer.rollout.vllm_backend import WeightSync, root_url

_SYNC_CLIENTS: dict[str, Any] = {}
_SYNC_LOCK = threading.Lock()


def require_weight_transfer() -> None:
    """Raise a ``ConfigError`` with the fix unless TRL's vLLM weight transfer can run here."""
    from trl.import_utils import is_vllm_available

    if not is_vllm_available():
        raise ConfigError("generation.backend", "vllm weight sync needs the vllm package in the trainer's environment "
                          "(TRL's NCCL weight transfer)", "pip install vllm, or set generation.vllm_sync_weights: "
                          "false to sample from the weights the server loaded (evaluation only)")


def trl_weight_sync(base_url: str, device: Any) -> WeightSync:
    """A ``WeightSync`` that streams a model's parameters to the vLLM server through TRL's ``VLLMClient``."""
    require_weight_transfer()
    from trl.generation.vllm_client import VLLMClient

    base_url = root_url(base_url)

    def sync(model: Any) -> None:
        with _SYNC_LOCK:
            client = _SYNC_CLIENTS.get(base_url)
            if client is None:
                client = VLLMClient(base_url=base_url, connection_timeout=60.0)
                client.init_communicator(device=device)
                _SYNC_CLIENTS[base_url] = client
            push_weights(client, model)

    return sync


def push_weights(client: Any, model: Any) -> None:
    """One push through a connected ``VLLMClient``: every parameter in one weight update, then the prefix
    cache reset (cached prompt states were computed by the old weights)."""
    with client.weight_update():
        client.update_model_params(model)
    client.reset_prefix_cache()


__all__ = ["require_weight_transfer", "trl_weight_sync", "push_weights"]
