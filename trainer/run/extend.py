"""Resuming a run, possibly with a new ``max_steps``: what it trains, how its schedule goes on, what it records.

``rlvr train --resume --output-dir RUN --max-steps N`` continues a finished or interrupted run
up to ``N`` optimiser steps. What such an extended run means:

* **Data order.** The training task keys are a prefix-stable draw from the run's seed (the
  first ``k`` of ``n`` keys are the ``k`` keys) and TRL's sampler does not reshuffle them
  (``shuffle_dataset=False``: the draw is random already, and a shuffle over the whole list would
  reorder the steps already trained as soon as the list grows). So a run extended from ``M`` to
  ``N`` steps trains, step for step, the tasks of a run started with ``N`` steps: steps ``1..M``
  are the ones it already trained, steps ``M+1..N`` fresh tasks.
* **Learning rate.** The schedule is rebuilt for the new horizon ``N`` and the resumed step's
  learning rate is taken from it, so from the resume step on the learning rate is what a run
  started with ``N`` steps has at that step. A constant schedule (with or without a finished
  warm-up) just continues; a decaying one (``linear``, ``cosine``) that had reached zero at step
  ``M`` rises at the extension to the ``N``-step schedule's value at ``M`` and decays to zero by
  ``N`` (it is not restarted from its peak, and it does not stay at zero).
* **Record.** Every start of the run appends ``{"from_step", "max_steps"}`` to ``segments`` in
  ``run_state.json`` (``summary.json`` carries the same list), and ``config.yaml`` is rewritten
  with the new ``max_steps``, so a later plain ``--resume`` continues the extended run.

Resuming a finished run with ``max_steps`` equal to the steps it trained has nothing to do: it
changes no file (no new evaluation, ``eval_after.json`` and ``summary.json`` untouched).
``max_steps`` below the steps a finished run trained, or below an interrupted run's last
checkpoint, is refused (a run cannot be shortened past what it saved).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rlvr.errors import ConfigError
from rlvr.trainer.run.rundir import RunDir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePlan:
    """Where a resumed run starts and what it is asked to do."""

    checkpoint: str | None  # the newest complete checkpoint (None: train from the start)
    start_step: int  # the checkpoint's optimiser step
    saved_max_steps: int | None  # max_steps in the run's config.yaml
    finished_steps: int | None  # steps of a finished run (summary.json present), else None
    max_steps: int  # what this resume asks for

    @property
    def nothing_to_do(self) -> bool:
        """A finished run asked for no more steps than it trained."""
        return self.finished_steps is not None and self.max_steps == self.finished_steps

    @property
    def extended(self) -> bool:
        """This resume changes the run's ``max_steps``."""
        return self.saved_max_steps is not None and self.max_steps != self.saved_max_steps

    def describe(self, output_dir: str) -> str:
        """One line for the user when there is nothing to do."""
        return (f"the run in {output_dir} already finished its {self.finished_steps} steps; nothing to do "
                f"(pass --max-steps N with N > {self.finished_steps} to train it further)")


def plan_resume(rundir: RunDir, max_steps: int) -> ResumePlan:
    """Read a run's state and check ``max_steps`` against it (``ConfigError`` naming ``--max-steps``)."""
    from rlvr.trainer.run.config import load_config

    checkpoint = rundir.last_checkpoint()
    start_step = RunDir.checkpoint_step(checkpoint)
    saved = load_config(rundir.config).optim.max_steps if rundir.config.exists() else None
    summary = rundir.read_json(rundir.summary) if rundir.summary.exists() else None
    finished = int(summary["steps"]) if isinstance(summary, dict) and isinstance(summary.get("steps"), int) else None
    plan = ResumePlan(checkpoint, start_step, saved, finished, int(max_steps))
    if finished is not None and max_steps < finished:
        raise ConfigError("--max-steps", f"{max_steps} is below the {finished} steps the run in {rundir.path} "
                          "already trained", f"pass --max-steps {finished} or more, or omit it")
    if max_steps < start_step:
        raise ConfigError("--max-steps", f"{max_steps} is below step {start_step}, where the run in {rundir.path} "
                          "saved its last checkpoint", f"pass --max-steps {start_step} or more, or omit it")
    return plan


def record_segment(rundir: RunDir, previous: dict[str, Any], start_step: int, max_steps: int,
                   write: bool = True) -> list[dict[str, Any]]:
    """This start appended to ``run_state.json``'s segments (written now, so an interrupted one is kept)."""
    segments = [s for s in previous.get("segments", []) if isinstance(s, dict)]
    segments.append({"from_step": int(start_step), "max_steps": int(max_steps)})
    if write:
        rundir.write_json(rundir.state, {**previous, "segments": segments})
    return segments


def align_learning_rate() -> Any:
    """A ``TrainerCallback`` that sets the resumed step's learning rate from the rebuilt schedule.

    The optimiser state of a checkpoint carries the learning rate of the *old* schedule; without
    this, the first step after an extension would still use it (zero at the end of a decayed run).
    Only for ``LambdaLR`` schedules (every ``lr_scheduler_type`` transformers builds from a
    formula); others are left as loaded.
    """
    from transformers import TrainerCallback

    class AlignLearningRate(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, lr_scheduler: Any = None,
                           **kw: Any) -> None:
            lambdas = getattr(lr_scheduler, "lr_lambdas", None)
            if optimizer is None or lambdas is None:
                return
            opt = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimiser
            lrs = [base * fn(lr_scheduler.last_epoch) for base, fn in zip(lr_scheduler.base_lrs, lambdas)]
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr
            lr_scheduler._last_lr = lrs
            logger.info("resumed at step %d with learning rate %s (schedule over %d steps)", state.global_step,
                        lrs, state.max_steps)

    return AlignLearningRate()


__all__ = ["ResumePlan", "plan_resume", "record_segment", "align_learning_rate"]
