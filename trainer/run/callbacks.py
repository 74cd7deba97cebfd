"""Trainer callbacks of a run: metrics.jsonl, the progress bar, periodic held-out evaluation, the plot."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from rlvr.trainer.run.plots import plot_run
from rlvr.trainer.run.rundir import RunDir

logger = logging.getLogger(__name__)

# transformers' end-of-training summary, not a step's metrics
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}


class MetricsCallback(TrainerCallback):
    """Append every logged step to metrics.jsonl (main process), redraw the plot at each checkpoint."""

    def __init__(self, rundir: RunDir, title: str = "") -> None:
        self.rundir = rundir
        self.title = title
        self.last: dict[str, float] = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs or _SUMMARY_KEYS & set(logs):
            return
        row = {"step": int(state.global_step), "kind": "train", **logs}
        self.last = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        RunDir.append_jsonl(self.rundir.metrics, row)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.is_world_process_zero:
            self.redraw()

    def redraw(self) -> None:
        """Rewrite reward_curve.png from metrics.jsonl."""
        try:
            plot_run(self.rundir.metrics_rows(), self.rundir.plot, self.title)
        except Exception:  # a plotting problem must never stop training
            logger.warning("could not draw %s", self.rundir.plot, exc_info=True)


class EvalCallback(TrainerCallback):
    """Held-out evaluation every ``every`` optimiser steps (all ranks take part; main process logs)."""

    def __init__(self, every: int, evaluate: Callable[[], dict[str, Any]], rundir: RunDir,
                 on_result: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        self.every = every
        self.evaluate = evaluate
        self.rundir = rundir
        self.on_result = on_result

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        step = int(state.global_step)
        if self.every <= 0 or step % self.every or step >= state.max_steps:
            return  # the final policy is evaluated once, after training
        result = self.evaluate()
        if state.is_world_process_zero:
            RunDir.append_jsonl(self.rundir.metrics, {"step": step, "kind": "eval",
                                                      **{f"eval/{k}": v for k, v in result.items() if k != "per_env"}})
        if self.on_result is not None:
            self.on_result(step, result)


class ProgressCallback(TrainerCallback):
    """A rich progress bar: steps done, live reward, last held-out pass@1 (main process only).

    Asynchronous runs (``max_off_policy_steps >= 1``) also show samples/s and the mean staleness
    of the step's tokens (``async/samples_per_s``, ``async/staleness_mean`` in metrics.jsonl).
    """

    def __init__(self, total: int, console: Any = None) -> None:
        self.total = total
        self.console = console
        self.progress: Any = None
        self.task: Any = None
        self.reward: float | None = None
        self.pass1: float | None = None
        self.samples_per_s: float | None = None
        self.staleness: float | None = None

    def _describe(self) -> str:
        parts = ["RL"]
        if self.reward is not None:
            parts.append(f"reward {self.reward:.3f}")
        if self.pass1 is not None:
            parts.append(f"held-out pass@1 {self.pass1:.3f}")
        if self.samples_per_s is not None:
            parts.append(f"{self.samples_per_s:.1f} samples/s")
        if self.staleness is not None:
            parts.append(f"staleness {self.staleness:.2f}")
        return " | ".join(parts)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task(self._describe(), total=self.total, completed=int(state.global_step))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if self.progress is None or not logs:
            return
        value = logs.get("reward", logs.get("env/reward"))
        if isinstance(value, (int, float)):
            self.reward = float(value)
        for attr, key in (("samples_per_s", "async/samples_per_s"), ("staleness", "async/staleness_mean")):
            if isinstance(logs.get(key), (int, float)):
                setattr(self, attr, float(logs[key]))
        self.progress.update(self.task, description=self._describe())

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=int(state.global_step))

    def eval_result(self, step: int, result: dict[str, Any]) -> None:
        """Show a periodic evaluation's pass@1."""
        self.pass1 = float(result.get("pass@1", 0.0))
        if self.progress is not None:
            self.progress.update(self.task, description=self._describe())

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


__all__ = ["MetricsCallback", "EvalCallback", "ProgressCallback"]
