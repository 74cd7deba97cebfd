"""`rlvr compare CONFIG.yaml --algorithms a,b --seeds N`: several algorithms, same start, same data, one report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("compare", help="Train several algorithms from the same warm-up on the same prompts with the same "
                                "sample budget and held-out evaluation, over seeds; writes compare.json and "
                                "report.html. Run it again to resume.")(compare)


def compare(
    config: Path = typer.Argument(..., help="Train config (YAML), optionally with a compare: section."),
    algorithms: Optional[str] = typer.Option(None, "--algorithms", "-a",
                                             help="Comma-separated presets or labels of compare.algorithms."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Seeds per algorithm (config seed, +1, ...); default 3."),
    budget_samples: Optional[int] = typer.Option(None, "--budget-samples",
                                                 help="Rollouts trained on per run (sets optim.max_steps)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Comparison directory (default: the config's output_dir)."),
    parallel: int = typer.Option(1, "--parallel", "-p", min=1, help="Runs at a time (each gets cores / P threads)."),
) -> None:
    """Run the comparison and print where its report is."""
    from rich.console import Console

    from rlvr.trainer.compare import CompareRunner, make_plan

    names = [a.strip() for a in algorithms.split(",") if a.strip()] if algorithms else None
    plan = make_plan(config, algorithms=names, seeds=seeds, budget_samples=budget_samples, output_dir=output_dir)
    console = Console(stderr=True)
    console.print(f"[bold]rlvr[/bold] compare {', '.join(a.label for a in plan.algorithms)} x seeds {plan.seeds}: "
                  f"{plan.steps} steps = {plan.budget_samples} rollouts per run"
                  + (", one SFT warm-up per seed" if plan.warmups else "") + f" -> {plan.output_dir}")
    command = "rlvr " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["compare"] else ""
    status = CompareRunner(plan, parallel=parallel, command=command,
                           say=lambda m: console.print(f"[bold]rlvr[/bold] {m}")).run()
    failed = sorted(k for k, v in status.items() if v.get("status") != "done")
    typer.echo(str(plan.output_dir / "report.html"))
    if failed:
        typer.echo(f"error: {len(failed)} run(s) failed: {', '.join(failed)} (logs in {plan.output_dir / 'logs'}; "
                   "run the same command again to resume)", err=True)
        raise typer.Exit(1)


__all__ = ["register", "compare"]
