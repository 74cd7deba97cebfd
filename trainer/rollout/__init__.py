"""Training rollouts from environments: task keys, multi-turn episodes with loss masks.

* ``tasks``: seeded task keys over the run's environment mixture (the dataset TRL samples from).
* ``chat``: conversations -> token ids (prompt; environment turns between model turns).
* ``backends``: token-level generation: the rlvr ``RolloutEngine``, ``model.generate``, a vLLM
  server (``vllm_backend``); ``rlvr.trainer.policies.BackendPolicy`` serves any of them to
  ``rlvr eval`` as a chat policy.
* ``runner``: ``EnvRunner`` plays batches of episodes, stepping environments concurrently.
* ``episode``: ``Episode``, one rollout as the trainer needs it.

The TRL ``rollout_func`` built on these lives in ``rlvr.trainer.trl.rollout_func``.
"""

from rlvr.trainer.rollout.episode import Episode, summarize
from rlvr.trainer.rollout.tasks import TaskKey, heldout_keys, train_keys

__all__ = ["Episode", "summarize", "TaskKey", "heldout_keys", "train_keys", "EnvRunner", "ChatFormatter"]

_LAZY = {
    "EnvRunner": "rlvr.trainer.rollout.runner",
    "ChatFormatter": "rlvr.trainer.rollout.chat",
}


def __getattr__(name: str):  # torch-importing modules load on first use
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
