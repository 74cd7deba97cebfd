"""`rlvr eval ENV_ID --policy SPEC -n N -k K`: pass@k, rewards and rollouts of a policy on an environment."""

from __future__ import annotations

from typing import List, Optional

import typer

POLICY_HELP = (
    "What answers the environment: hf:PATH (a local transformers model directory), "
    "openai:BASE_URL#MODEL (any OpenAI-compatible server; key from OPENAI_API_KEY), "
    "or python:module:fn (a function from messages to text; module may be a .py path)."
)


def register(app: typer.Typer) -> None:
    app.command(
        "eval",
        help="Evaluate a policy on an environment: N tasks x K samples, run concurrently. Prints mean reward, "
        "reward components, pass@1 and unbiased pass@k, statuses, tokens and wall time; writes rollouts.jsonl, "
        "summary.json and reward_distribution.png. Ctrl-C keeps what finished.",
    )(eval_command)


def eval_command(
    env_id: str = typer.Argument(..., help="Environment id, e.g. rlvr/Arithmetic-v0 (see `rlvr envs list`)."),
    policy: str = typer.Option(..., "--policy", "-p", help=POLICY_HELP),
    n: int = typer.Option(10, "--tasks", "-n", min=1, help="Number of tasks (task i is reset(seed=SEED+i))."),
    k: int = typer.Option(1, "--samples", "-k", min=1, help="Samples per task (pass@k is reported up to this k)."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, help="Episodes (and policy calls) in flight at once; also the hf: batch size."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Rollouts JSONL path; summary.json and the PNG go beside it (default: runs/eval/<env>-<time>/rollouts.jsonl)."),
    seed: int = typer.Option(0, "--seed", help="Base seed: selects the tasks and the sampling seeds."),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1, help="Largest completion per turn, in tokens."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0, help="Sampling temperature (0 = greedy)."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    env_arg: Optional[List[str]] = typer.Option(None, "--env-arg", "-E", help="Environment argument key=value (repeatable; values parsed as JSON when they can be)."),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", min=1, help="Cap on policy turns per episode (default: the env's max_episode_steps, else 100)."),
    request_timeout: float = typer.Option(300.0, "--request-timeout", min=0.001, help="Seconds before one openai: request times out (it is then retried)."),
    retries: int = typer.Option(5, "--retries", min=0, help="Retries per openai: request on 429/5xx/timeouts, with exponential backoff."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table (files are still written)."),
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rlvr.cli.options import parse_options
    from rlvr.envs.evaluation import EvalInterrupted, default_output, evaluate

    err = Console(stderr=True)
    env_kwargs = parse_options(env_arg, "--env-arg")
    out = output or str(default_output(env_id))
    progress = Progress(
        TextColumn(f"eval [bold]{env_id}[/]"), BarColumn(), MofNCompleteColumn(),
        TextColumn("pass@1 {task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, disable=quiet, transient=False,
    )
    bar = progress.add_task("eval", total=n * k, rate="-")
    wins = [0, 0]

    def on_episode(record, done: int, total: int) -> None:
        if record.scored:
            wins[0] += record.success
            wins[1] += 1
        progress.update(bar, completed=done, rate=f"{wins[0] / wins[1]:.3f}" if wins[1] else "-")

    try:
        with progress:
            report = evaluate(
                env_id, policy, n, k, concurrency=concurrency, seed=seed, max_tokens=max_tokens, temperature=temperature,
                top_p=top_p, env_kwargs=env_kwargs, output=out, max_turns=max_turns, request_timeout=request_timeout,
                max_retries=retries, on_episode=on_episode,
            )
    except EvalInterrupted as e:
        if not quiet:
            err.print(e.report.table())
        err.print(f"[yellow]interrupted:[/] kept {e.report.episodes_done} finished episodes in {e.report.rollouts_path} "
                  f"(summary: {e.report.summary_path})")
        # SystemExit, not typer.Exit: run() calls the app with standalone_mode=False, where click
        # returns typer.Exit's code instead of exiting with it.
        raise SystemExit(130) from None
    if not quiet:
        err.print(report.table())
        err.print(f"rollouts: {report.rollouts_path}\nsummary:  {report.summary_path}\nplot:     {report.plot_path}")
