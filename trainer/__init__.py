"""rlvr.trainer: the policy-gradient family as configuration, and a TRL-based trainer.

Train with any preset::

    from rlvr.trainer import RLVRConfig, RLVRTrainer

    args = RLVRConfig(output_dir="out", algorithm="maxrl", num_generations=8)
    RLVRTrainer(model, reward_funcs=[my_reward], args=args, train_dataset=ds).train()

Importing this package is cheap: ``transformers``/``trl`` are imported only when a trainer
symbol is first used (module ``__getattr__``), and ``torch`` only with the algorithm layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "RLVRConfig": "rlvr.trainer.trl.config",
    "RLVRTrainer": "rlvr.trainer.trl.trainer",
    "ValueModel": "rlvr.trainer.trl.value_head",
    "TinyModelConfig": "rlvr.trainer.tiny",
    "tiny_model": "rlvr.trainer.tiny",
    "tiny_tokenizer": "rlvr.trainer.tiny",
    "AlgorithmConfig": "rlvr.trainer.algorithms",
    "PRESETS": "rlvr.trainer.algorithms",
    "preset": "rlvr.trainer.algorithms",
    "compute_advantages": "rlvr.trainer.algorithms",
    "policy_loss": "rlvr.trainer.algorithms",
    "compute_gae": "rlvr.trainer.algorithms",
}

if TYPE_CHECKING:
    from rlvr.trainer.algorithms import (
        PRESETS,
        AlgorithmConfig,
        compute_advantages,
        compute_gae,
        policy_loss,
        preset,
    )
    from rlvr.trainer.trl.config import RLVRConfig
    from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer
    from rlvr.trainer.trl.trainer import RLVRTrainer
    from rlvr.trainer.trl.value_head import ValueModel


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlvr.trainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
