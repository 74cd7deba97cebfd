"""``rlvr eval --run RUN_DIR``: evaluate a training run's policy the way the run itself evaluated it.

A run directory records everything an evaluation needs: the policy (``final/``, or any
``checkpoints/checkpoint-N``), the environments (``eval.environments``, else the training
mixture), the chat template and the sampling settings (``eval.temperature``,
``generation.max_new_tokens``/``top_p``/``max_turns``). :func:`plan_run_eval` reads them into one
:class:`RunEval` per environment; the caller runs each with ``rlvr.envs.evaluation.evaluate``.
Tasks come from the held-out seed range, so no evaluated task was a training task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError
from rlvr.trainer.rollout.tasks import HELDOUT_SEED_BASE
from rlvr.trainer.run.config import TrainConfig, load_config


@dataclass(frozen=True)
class RunEval:
    """One environment of a run to evaluate, with the run's settings (``evaluate``'s arguments)."""

    env_id: str
    env_kwargs: dict[str, Any]
    n: int
    k: int
    seed: int
    max_tokens: int
    temperature: float
    top_p: float
    max_turns: int
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_dir(run_dir: str | Path, checkpoint: str | Path | None = None) -> Path:
    """The model directory to evaluate: ``checkpoint`` (a path, or a name under ``checkpoints/``),
    else ``final/``, else the newest ``checkpoints/checkpoint-N``."""
    run = Path(run_dir)
    if checkpoint is not None:
        for candidate in (Path(checkpoint), run / "checkpoints" / str(checkpoint), run / str(checkpoint)):
            if (candidate / "config.json").is_file():
                return candidate
        raise ConfigError("--checkpoint", f"{checkpoint} is not a saved model (no config.json there)",
                          f"give a path, or a name listed in {run / 'checkpoints'}")
    if (run / "final" / "config.json").is_file():
        return run / "final"
    saved = sorted((p for p in (run / "checkpoints").glob("checkpoint-*") if (p / "config.json").is_file()),
                   key=lambda p: int(p.name.rsplit("-", 1)[-1]) if p.name.rsplit("-", 1)[-1].isdigit() else -1)
    if not saved:
        raise ConfigError("--run", f"{run} holds no final/ model and no checkpoint",
                          "train with checkpoint.save_final_model (the default), or pass --checkpoint PATH")
    return saved[-1]


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The run's ``config.yaml`` (a ConfigError when ``run_dir`` is not a run directory)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError("--run", f"{run_dir} is not an rlvr run directory (no config.yaml)",
                          "pass the output_dir of `rlvr train` or `rlvr demo`")
    return load_config(path)


def run_chat_template(cfg: TrainConfig) -> str | None:
    """The chat template the run trained with: its config's template text, or None for the tokenizer's."""
    template = cfg.model.chat_template
    if template is None or "{%" in template or "{{" in template:
        return template
    from rlvr.trainer.tiny import trl_chat_template

    return trl_chat_template(template)


def plan_run_eval(cfg: TrainConfig, *, n: int | None = None, k: int | None = None, seed: int | None = None,
                  temperature: float | None = None) -> list[RunEval]:
    """One :class:`RunEval` per evaluation environment of ``cfg``; given arguments override the run's."""
    g, e = cfg.generation, cfg.eval
    envs = e.environments or cfg.environments
    return [RunEval(env_id=env.id, env_kwargs=dict(env.kwargs), n=n or e.num_tasks or 100, k=k or e.samples_per_task,
                    seed=HELDOUT_SEED_BASE if seed is None else seed, max_tokens=g.max_new_tokens,
                    temperature=e.temperature if temperature is None else temperature, top_p=g.top_p,
                    max_turns=g.max_turns)
            for env in envs]


__all__ = ["RunEval", "checkpoint_dir", "load_run_config", "run_chat_template", "plan_run_eval"]
