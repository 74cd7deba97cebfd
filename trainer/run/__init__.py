"""A training run: the train config (YAML), the run directory, and ``run_training``.

``rlvr train CONFIG.yaml`` and ``rlvr demo`` both end up in :func:`run_training`. The config
module imports no torch; the rest loads on first use.
"""

from rlvr.trainer.run.config import TrainConfig, config_from_dict, load_config

__all__ = ["TrainConfig", "load_config", "config_from_dict", "run_training"]


def __getattr__(name: str):
    if name == "run_training":
        from rlvr.trainer.run.train import run_training

        return run_training
    raise AttributeError(name)
