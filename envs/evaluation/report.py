"""`EvalReport`: the numbers an evaluation produced, as data, as summary.json, and as a rich table."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rlvr.envs.evaluation.episode import EpisodeRecord
from rlvr.envs.evaluation.metrics import component_means, mean_and_std, pass_at_k_curve, status_counts


@dataclass(frozen=True)
class TaskResult:
    """One task's samples, summarised (one entry of ``EvalReport.per_task``)."""

    task_index: int
    task_id: str
    samples: int
    successes: int
    mean_reward: float | None


@dataclass(frozen=True)
class EvalReport:
    """What one `rlvr eval` run measured.

    Reward, component and pass@k figures cover *scored* episodes only (episodes that ended by a
    policy or environment failure, or that the verifier could not judge, status ``error``, are
    counted in ``status_counts`` but carry no verdict).
    ``pass_at`` maps k to the unbiased pass@k averaged over tasks with at least k scored samples.
    ``tokens_estimated`` is True when some counts came from a text-length estimate.
    """

    env_id: str
    policy: str
    n_tasks: int
    k: int
    episodes_planned: int
    episodes_done: int
    episodes_scored: int
    mean_reward: float | None
    reward_std: float | None
    component_means: dict[str, float]
    pass_at: dict[int, float]
    status_counts: dict[str, int]
    mean_turns: float | None
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool
    wall_s: float
    interrupted: bool = False
    stopped_by: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    #: problems seen during the run that explain odd numbers (echoed prompts, prompts over the context, ...).
    warnings: list[str] = field(default_factory=list)
    component_weights: dict[str, float] = field(default_factory=dict)
    per_task: list[TaskResult] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list, repr=False)
    rollouts_path: str | None = None
    summary_path: str | None = None
    plot_path: str | None = None

    @property
    def pass_at_1(self) -> float | None:
        """Mean per-task success rate."""
        return self.pass_at.get(1)

    @property
    def pass_at_k(self) -> float | None:
        """pass@k at the run's k (None when no task has k scored samples, e.g. after an early stop)."""
        return self.pass_at.get(self.k)

    def to_dict(self) -> dict[str, Any]:
        """The summary.json content (JSON-ready; ``pass_at`` keys become ``"pass@k"`` strings)."""
        d = asdict(self)
        d.pop("rewards")
        d["pass_at"] = {f"pass@{k}": v for k, v in self.pass_at.items()}
        d["pass_at_1"], d["pass_at_k"] = self.pass_at_1, self.pass_at_k
        return d

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")

    def table(self) -> Any:
        """A rich ``Table`` of the headline numbers (the CLI prints it)."""
        from rich.markup import escape
        from rich.table import Table

        title = f"rlvr eval {self.env_id} · {self.policy}"
        t = Table(title=title, show_header=True, title_justify="left")
        t.add_column("metric")
        t.add_column("value", justify="right")
        done = f"{self.episodes_done} / {self.episodes_planned}  ({self.n_tasks} tasks × {self.k})"
        if self.interrupted:
            done += "  [yellow]interrupted[/]"
        t.add_row("episodes", done)
        t.add_row("mean reward", "-" if self.mean_reward is None else f"{self.mean_reward:.3f} ± {self.reward_std:.3f}")
        for name, value in self.component_means.items():
            weight = self.component_weights.get(name)
            t.add_row(f"  {name}" + ("" if weight is None else f"  (weight {weight:g})"), f"{value:.3f}")
        for k, value in self.pass_at.items():
            t.add_row(f"pass@{k}", f"{value:.3f}")
        if self.mean_turns is not None:
            t.add_row("turns / episode", f"{self.mean_turns:.2f}")
        t.add_row("status", "  ".join(f"{s}={c}" for s, c in self.status_counts.items()) or "-")
        mark = "~" if self.tokens_estimated else ""
        t.add_row("tokens (prompt / completion)", f"{mark}{self.prompt_tokens:,} / {mark}{self.completion_tokens:,}"
                  + ("  (estimated)" if self.tokens_estimated else ""))
        if self.episodes_done:
            t.add_row("completion tokens / episode", f"{mark}{self.completion_tokens / self.episodes_done:,.1f}")
        rate = f"  ({self.episodes_done / self.wall_s:.1f} episodes/s)" if self.wall_s > 0 else ""
        t.add_row("wall time", f"{self.wall_s:.2f} s{rate}")
        for w in self.warnings:
            t.add_row("[yellow]warning[/]", f"[yellow]{escape(w)}[/]")
        return t

    def __repr__(self) -> str:
        p1 = "-" if self.pass_at_1 is None else f"{self.pass_at_1:.3f}"
        reward = "-" if self.mean_reward is None else f"{self.mean_reward:.3f}"
        return (f"EvalReport(env_id={self.env_id!r}, policy={self.policy!r}, episodes={self.episodes_done}/"
                f"{self.episodes_planned}, mean_reward={reward}, pass@1={p1}, interrupted={self.interrupted})")


def build_report(
    records: Sequence[EpisodeRecord],
    *,
    env_id: str,
    policy: str,
    n_tasks: int,
    k: int,
    wall_s: float,
    interrupted: bool = False,
    stopped_by: str | None = None,
    settings: dict[str, Any] | None = None,
    warnings: Sequence[str] = (),
) -> EvalReport:
    """Summarise finished episodes into an :class:`EvalReport` (pure: no files)."""
    scored = [r for r in records if r.scored]
    rewards = [r.reward for r in scored]
    mean, std = mean_and_std(rewards)
    by_task: dict[int, list[EpisodeRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.task_index, r.sample)):
        by_task[r.task_index].append(r)
    groups = [[r.success for r in rs if r.scored] for rs in by_task.values()]
    per_task = []
    for index, rs in sorted(by_task.items()):
        ok = [r for r in rs if r.scored]
        per_task.append(TaskResult(index, rs[0].task_id, len(ok), sum(r.success for r in ok),
                                   mean_and_std([r.reward for r in ok])[0]))
    return EvalReport(
        env_id=env_id,
        policy=policy,
        n_tasks=n_tasks,
        k=k,
        episodes_planned=n_tasks * k,
        episodes_done=len(records),
        episodes_scored=len(scored),
        mean_reward=mean,
        reward_std=std,
        component_means=component_means([r.components for r in scored]),
        pass_at=pass_at_k_curve(groups, k),
        status_counts=status_counts(r.status for r in records),
        mean_turns=mean_and_std([float(r.turns) for r in records])[0],
        prompt_tokens=sum(r.prompt_tokens for r in records),
        completion_tokens=sum(r.completion_tokens for r in records),
        tokens_estimated=any(r.tokens_estimated for r in records),
        wall_s=wall_s,
        interrupted=interrupted,
        stopped_by=stopped_by,
        settings=dict(settings or {}),
        warnings=list(warnings),
        component_weights={k: v for r in records for k, v in r.component_weights.items()},
        per_task=per_task,
        rewards=rewards,
    )


__all__ = ["EvalReport", "TaskResult", "build_report"]
