"""`rlvr train CONFIG.yaml` and `rlvr demo`: train a policy against environments, print before/after.

Heavy imports (torch, transformers, trl) happen inside the commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from rlvr.errors import ConfigError

# Fields a resumed run may change (they do not affect what is trained or in which order).
RESUMABLE_CHANGES = ("logging.progress", "logging.report_to", "device", "eval.every_steps")
# ... and the one that extends it: the first steps and their tasks stay those already trained
# (rlvr.trainer.run.extend says what happens to the data order and the learning-rate schedule).
EXTENDING_CHANGES = ("optim.max_steps",)


def register(app: typer.Typer) -> None:
    app.command("train", help="Train a policy against environments (RL, optional SFT warm-up) from a YAML config.")(train)
    app.command("demo", help="The embedded demo: SFT then RL a tiny model on arithmetic on CPU, before/after table.")(demo)


def _offline_defaults() -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.disable_progress_bar()  # our own progress bars say what is happening


def _parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError("--set", f"{pair!r} is not key=value", "write e.g. --set optim.learning_rate=1e-5")
        key, raw = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw)
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("kwargs", "overrides"):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check_resume_matches(saved: Any, cfg: Any) -> None:
    """A resumed run must train the same thing in the same order: refuse config changes that alter it."""
    a, b = _flatten(saved.to_dict()), _flatten(cfg.to_dict())
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES
                     and k not in EXTENDING_CHANGES and k != "output_dir")
    if changed:
        raise ConfigError("--resume", f"the config differs from the run's saved config.yaml in {', '.join(changed)}",
                          "resume with the run's own config (omit CONFIG) or start a new --output-dir")


def _print_summary(console: Any, summary: dict[str, Any], output_dir: str) -> None:
    from rich.table import Table

    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    table = Table(title="held-out evaluation", show_lines=False)
    table.add_column("metric")
    table.add_column("before RL", justify="right")
    table.add_column("after RL", justify="right")
    table.add_column("change", justify="right")
    keys = [k for k in (before or after) if "pass@" in k] + ["reward", "response_tokens"]
    for key in keys:
        b, a = before.get(key), after.get(key)
        fmt = (lambda x: f"{x:.3f}") if key != "response_tokens" else (lambda x: f"{x:.1f}")
        delta = f"{a - b:+.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else ""
        table.add_row(key, fmt(b) if isinstance(b, (int, float)) else "-", fmt(a) if isinstance(a, (int, float)) else "-", delta)
    console.print(table)
    tasks = (after or before).get("tasks")
    if tasks:
        console.print(f"{tasks} held-out tasks x {(after or before).get('samples_per_task')} samples at temperature "
                      f"{(after or before).get('temperature')}")
    console.print(f"steps: {summary.get('steps')}   wall time: {summary.get('wall_s', 0):.0f} s   run directory: {output_dir}")


def _write_report(output_dir: str) -> None:
    """The run's README, model card and report.html; prints the report's path."""
    from rlvr.report import write_report
    from rlvr.trainer.run.model_card import write_run_docs

    write_run_docs(output_dir)
    typer.echo(f"report: {write_report(output_dir)}")


def train(
    config: Optional[Path] = typer.Argument(None, help="YAML train config (optional with --resume: the run's own)."),
    env: Optional[str] = typer.Option(None, "--env", help="Environment(s): ID[:WEIGHT][,ID[:WEIGHT]...] (replaces the config's)."),
    algorithm: Optional[str] = typer.Option(None, "--algorithm", help="Algorithm preset (grpo, dr_grpo, dapo, rloo, ppo, ...)."),
    model: Optional[str] = typer.Option(None, "--model", help="Policy: a local model directory, hub id, or 'tiny'."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", "-o", help="Run directory."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="RL optimiser steps (with --resume: extend or finish the run at this many)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Any config field: --set optim.learning_rate=1e-5 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output-dir from its last checkpoint."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Train a policy against environments; print the held-out before/after table."""
    _offline_defaults()
    from rich.console import Console

    from rlvr.trainer.run.config import load_config, parse_env_flag

    overrides: dict[str, Any] = {
        "algorithm.preset": algorithm, "model.name_or_path": model, "output_dir": output_dir,
        "optim.max_steps": max_steps, "seed": seed, "device": device,
        **_parse_sets(sets),
    }
    if env is not None:
        overrides["environments"] = parse_env_flag(env)
    if no_progress:
        overrides["logging.progress"] = False
    if config is None and not resume:
        raise ConfigError("CONFIG", "no config file given", "pass a YAML config (see examples/), or --resume --output-dir RUN")
    if resume:
        if output_dir is None and config is None:
            raise ConfigError("--resume", "needs the run to resume", "pass --output-dir RUN (and optionally its CONFIG)")
        run_dir = Path(output_dir) if output_dir else None
        base = config
        if run_dir is None:
            run_dir = Path(load_config(config, {k: v for k, v in overrides.items() if k != "environments"}).output_dir)
        saved_path = run_dir / "config.yaml"
        if not saved_path.exists():
            raise ConfigError("--resume", f"{run_dir} holds no run to resume (no config.yaml)",
                              "drop --resume to start a new run, or point --output-dir at the run")
        saved = load_config(saved_path)
        cfg = load_config(base if base is not None else saved_path, overrides)
        _check_resume_matches(saved, cfg)
    else:
        cfg = load_config(config, overrides)
    from rlvr.trainer.run.rundir import RunDir

    RunDir(cfg.output_dir).check(resume)  # a bad or foreign --output-dir fails now, before any model loads
    console = Console(stderr=True)
    if resume:
        from rlvr.trainer.run.extend import plan_resume

        plan = plan_resume(RunDir(cfg.output_dir), cfg.optim.max_steps)  # --max-steps below what was trained: exit 2
        if plan.nothing_to_do:  # no evaluation, no report, no file touched
            typer.echo(f"rlvr: {plan.describe(str(cfg.output_dir))}", err=True)  # one line, never wrapped
            return
    from rlvr.trainer.run.train import run_training

    try:
        summary = run_training(cfg, resume=resume, say=lambda m: console.print(f"[bold]rlvr[/bold] {m}"), console=console,
                               title=f"{cfg.algorithm.preset} on {', '.join(e.id for e in cfg.environments)}")
    except KeyboardInterrupt:
        import shlex
        import sys

        rundir = RunDir(cfg.output_dir)
        if rundir.config.exists():
            command = f"rlvr train --resume --output-dir {shlex.quote(str(cfg.output_dir))}"
            try:
                saved_steps = load_config(rundir.config).optim.max_steps
            except Exception:  # torn by the interrupt: say the steps asked for
                saved_steps = None
            if saved_steps != cfg.optim.max_steps:  # stopped before the run saved the new max_steps
                command += f" --max-steps {cfg.optim.max_steps}"
            typer.echo(f"Interrupted. Resume with: {command}", err=True)
        else:
            typer.echo("Interrupted before the run started; nothing to resume.", err=True)
        sys.exit(130)
    from accelerate import PartialState

    if PartialState().is_main_process:
        _print_summary(Console(), summary, cfg.output_dir)
        _write_report(cfg.output_dir)


def demo(
    output_dir: str = typer.Option("runs/demo", "--output-dir", "-o", help="Run directory (replaced if it holds an earlier run)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the model, the data and the sampling."),
    device: str = typer.Option("auto", "--device", help="auto (GPU when present), cpu, cuda or mps."),
) -> None:
    """SFT then RL a tiny model on arithmetic; print the held-out pass@1 before and after RL."""
    _offline_defaults()
    from rich.console import Console

    from rlvr.trainer.demo import run_demo

    console = Console(stderr=True)
    summary = run_demo(output_dir, seed, device, say=lambda m: console.print(f"[bold]rlvr[/bold] {m}"), console=console)
    _print_summary(Console(), summary, output_dir)
    _write_report(output_dir)


__all__ = ["register", "train", "demo"]
