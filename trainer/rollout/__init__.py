"""Training rollouts from environments: task keys, multi-turn episodes with loss masks, TRL glue.

* ``tasks``: the environment mixture and seeded task keys (the dataset TRL samples from).
* ``chat``: conversations -> token ids (prompt; environment turns between model turns).
* ``backends``: generation with the rlvr ``RolloutEngine`` or ``model.generate``.
* ``runner``: ``EnvRunner`` plays batches of episodes, stepping environments concurrently.
* ``rollout_func``: ``EnvRollouts`` (TRL ``rollout_func``) and ``make_env_reward``.
"""

from rlvr.trainer.rollout.episode import Episode, summarize
from rlvr.trainer.rollout.tasks import EnvEntry, TaskKey, heldout_keys, train_keys

__all__ = ["Episode", "summarize", "EnvEntry", "TaskKey", "heldout_keys", "train_keys",
           "EnvRunner", "EnvRollouts", "make_env_reward", "build_train_dataset", "ChatFormatter"]

_LAZY = {
    "EnvRunner": "rlvr.trainer.rollout.runner",
    "ChatFormatter": "rlvr.trainer.rollout.chat",
    "EnvRollouts": "rlvr.trainer.rollout.rollout_func",
    "make_env_reward": "rlvr.trainer.rollout.rollout_func",
    "build_train_dataset": "rlvr.trainer.rollout.rollout_func",
}


def __getattr__(name: str):  # torch-importing modules load on first use
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
