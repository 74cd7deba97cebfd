"""``hf:PATH`` — a local transformers causal LM, generating for many episodes in one batch.

The model directory needs a tokenizer with a chat template (every instruct/chat model has one).
Generation goes through the trainer's own backends (``rlvr.trainer.rollout.backends``):

* ``engine``: the ``RolloutEngine`` (per-slot KV cache, CUDA graphs; several times faster than
  ``model.generate``) for the model families it supports;
* ``hf`` (alias ``generate``): ``model.generate`` on the left-padded batch, for every other model.

``hf:PATH`` picks the first that works; ``hf:PATH?backend=hf`` forces one. Token counts are exact
and completions carry token ids and log-probs. torch and transformers are imported only when the
model is loaded (the ``rlvr[train]`` extra).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rlvr.envs.evaluation.policies.base import Policy, PolicyOptions
from rlvr.errors import ConfigError, DependencyError
from rlvr.trainer.policies.backend import BackendPolicy

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "engine", "hf", "generate")
#: KV-cache length for the engine backend when the model allows more (prompt + completion).
ENGINE_MAX_SEQ_LEN = 4096


class HFPolicy(BackendPolicy):
    """A local transformers model directory; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        concurrency: int = 8,
        seed: int = 0,
        device: str | None = None,
        backend: str = "auto",
        max_wait_s: float = 0.05,
        chat_template: str | None = None,
    ) -> None:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise ConfigError("policy", f"hf:{path} is not a directory", "point hf: at a saved transformers model directory")
        if not (p / "config.json").is_file():
            raise ConfigError("policy", f"hf:{path} has no config.json", "save the model with model.save_pretrained(PATH)")
        if backend not in BACKENDS:
            raise ConfigError("backend", f"unknown hf backend {backend!r}", f"choose from {', '.join(BACKENDS)}")
        super().__init__(None, None, max_batch=concurrency, spec=f"hf:{path}", max_wait_s=max_wait_s)
        self.path = p
        self.concurrency = concurrency
        self.seed = seed
        self.device = device
        self.kind = "hf" if backend == "generate" else backend
        self.chat_template = chat_template
        self.model: Any = None
        self.tokenizer: Any = None

    @property
    def backend(self) -> str:
        """``engine`` or ``hf`` once loaded; the requested kind before."""
        return self.kind if self.backend_impl is None else super().backend

    def load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise DependencyError("torch and transformers (needed by hf: policies)", "train") from e
        from rlvr.trainer.rollout.backends import make_backend
        from rlvr.trainer.rollout.chat import ChatFormatter

        tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        if self.chat_template is not None:
            tokenizer.chat_template = self.chat_template
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("policy", f"the tokenizer in {self.path} has no chat template",
                              "use an instruct/chat model or set tokenizer.chat_template and save it")
        tokenizer.padding_side = "left"  # generate() continues from the right end of every row
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForCausalLM.from_pretrained(str(self.path), dtype="auto")
        model.to(device).eval()
        torch.manual_seed(self.seed)
        limit = getattr(model.config, "max_position_embeddings", None) or ENGINE_MAX_SEQ_LEN
        self.tokenizer, self.model, self.device = tokenizer, model, device
        self.max_prompt_tokens = int(limit)
        self.formatter = ChatFormatter(tokenizer)
        self.backend_impl = make_backend(self.kind, model, tokenizer, max_batch=self.concurrency,
                                         max_seq_len=min(int(limit), ENGINE_MAX_SEQ_LEN))
        logger.info("loaded %s on %s with the %s backend", self.path, device, self.backend)


def from_spec(rest: str, options: PolicyOptions) -> Policy:
    """``hf:PATH`` or ``hf:PATH?backend=engine|hf``."""
    path, _, query = rest.partition("?")
    backend = "auto"
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key != "backend":
            raise ConfigError("policy", f"hf: takes no option {key!r}", "write hf:PATH or hf:PATH?backend=engine|hf")
        backend = value
    return HFPolicy(path, concurrency=options.concurrency, seed=options.seed, backend=backend)


from_spec.usage = "hf:PATH[?backend=engine|hf]"  # type: ignore[attr-defined]

__all__ = ["HFPolicy", "from_spec"]
