"""`rlvr eval ENV_ID --policy SPEC -n N -k K`: pass@k, rewards and rollouts of a policy on an environment.

`rlvr eval --run RUN_DIR [--checkpoint PATH]` evaluates a training run's final (or given)
checkpoint on the run's own environments, with its chat template and sampling settings.
"""

from __future__ import annotations

from typing import List, Optional

import typer

POLICY_HELP = (
    "What answers the environment: hf:PATH (a local transformers model directory), "
    "openai:BASE_URL#MODEL (any OpenAI-compatible server; key from OPENAI_API_KEY), "
    "python:module:fn (a function from messages to text; module may be a .py path), "
    "or vllm:BASE_URL#TOKENIZER_DIR (token ids to a vLLM server, as training rollouts send them)."
)


def register(app: typer.Typer) -> None:
    app.command(
        "eval",
        help="Evaluate a policy on an environment: N tasks x K samples, run concurrently. Prints mean reward, "
        "reward components, pass@1 and unbiased pass@k, statuses, tokens and wall time; writes rollouts.jsonl, "
        "summary.json and reward_distribution.png. Ctrl-C keeps what finished. With --run RUN_DIR: the run's "
        "final (or --checkpoint) model on the run's environments, chat template and sampling settings.",
    )(eval_command)


def eval_command(
    env_id: Optional[str] = typer.Argument(None, help="Environment id, e.g. rlvr/Arithmetic-v0 (see `rlvr envs list`); with --run: the run's environments."),
    policy: Optional[str] = typer.Option(None, "--policy", "-p", help=POLICY_HELP),
    run: Optional[str] = typer.Option(None, "--run", help="A training run directory: evaluate its model on its environments with its settings."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="With --run: a checkpoint directory (or checkpoint-N) instead of final/."),
    n: Optional[int] = typer.Option(None, "--tasks", "-n", min=1, help="Number of tasks: N distinct ones from a finite task list (all of them, with a warning, when it has fewer), else task i is reset(seed=SEED+i); default 10, with --run the run's eval.num_tasks."),
    k: Optional[int] = typer.Option(None, "--samples", "-k", min=1, help="Samples per task (pass@k is reported up to this k); default 1, with --run the run's eval.samples_per_task."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, help="Episodes (and policy calls) in flight at once; also the hf: batch size."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Rollouts JSONL path; summary.json and the PNG go beside it (default: runs/eval/<env>-<time>/rollouts.jsonl)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Base seed: selects the tasks and the sampling seeds (default 0; with --run the held-out seed range)."),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1, help="Largest completion per turn, in tokens (with --run: the run's generation.max_new_tokens)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0, help="Sampling temperature (0 = greedy); default 1, with --run the run's eval.temperature."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    env_arg: Optional[List[str]] = typer.Option(None, "--env-arg", "-E", help="Environment argument key=value (repeatable; values parsed as JSON when they can be)."),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", min=1, help="Cap on policy turns per episode (default: the environment's own max_turns or max_episode_steps, else 100)."),
    request_timeout: float = typer.Option(300.0, "--request-timeout", min=0.001, help="Seconds before one openai: request times out (it is then retried)."),
    retries: int = typer.Option(5, "--retries", min=0, help="Retries per openai: request on 429/5xx/timeouts, with exponential backoff."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table (files are still written)."),
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rlvr.cli.options import parse_options
    from rlvr.envs.evaluation import EvalInterrupted, default_output, evaluate
    from rlvr.errors import ConfigError

    err = Console(stderr=True)
    if run is not None:
        if policy is not None or env_id is not None:
            raise ConfigError("--run", "evaluates the run's own model on its own environments",
                              "drop ENV_ID and --policy, or drop --run")
        _eval_run(run, checkpoint, n=n, k=k, seed=seed, temperature=temperature, concurrency=concurrency,
                  output=output, quiet=quiet, err=err)
        return
    if checkpoint is not None:
        raise ConfigError("--checkpoint", "only applies with --run", "add --run RUN_DIR")
    if env_id is None or policy is None:
        raise ConfigError("policy" if env_id is not None else "env_id", "ENV_ID and --policy are required",
                          "write rlvr eval ENV_ID --policy SPEC, or rlvr eval --run RUN_DIR")
    n, k, seed, temperature = n or 10, k or 1, 0 if seed is None else seed, 1.0 if temperature is None else temperature
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


def _eval_run(run: str, checkpoint: Optional[str], *, n: Optional[int], k: Optional[int], seed: Optional[int],
              temperature: Optional[float], concurrency: int, output: Optional[str], quiet: bool, err) -> None:
    """`rlvr eval --run`: each of the run's environments, one after the other, with one loaded model."""
    import re
    from pathlib import Path

    from rlvr.envs.evaluation import EvalInterrupted, evaluate
    from rlvr.trainer.policies.hf import HFPolicy
    from rlvr.trainer.run.eval_run import checkpoint_dir, load_run_config, plan_run_eval, run_chat_template

    cfg = load_run_config(run)
    model_dir = checkpoint_dir(run, checkpoint)
    plans = plan_run_eval(cfg, n=n, k=k, seed=seed, temperature=temperature)
    policy = HFPolicy(model_dir, concurrency=concurrency, seed=cfg.seed, chat_template=run_chat_template(cfg),
                      device=None if cfg.device == "auto" else cfg.device)
    root = Path(output) if output else Path(run) / "eval" / model_dir.name
    for plan in plans:
        out = root / re.sub(r"[^A-Za-z0-9._-]+", "_", plan.env_id).strip("_") / "rollouts.jsonl"
        if not quiet:
            err.print(f"eval [bold]{plan.env_id}[/] with {model_dir} ({plan.n} tasks x {plan.k}, "
                      f"temperature {plan.temperature:g})")
        try:
            report = evaluate(plan.env_id, policy, plan.n, plan.k, concurrency=concurrency, seed=plan.seed,
                              max_tokens=plan.max_tokens, temperature=plan.temperature, top_p=plan.top_p,
                              env_kwargs=plan.env_kwargs, output=out, max_turns=plan.max_turns)
        except EvalInterrupted as e:
            err.print(f"[yellow]interrupted:[/] kept {e.report.episodes_done} finished episodes in {e.report.rollouts_path}")
            raise SystemExit(130) from None
        if not quiet:
            err.print(report.table())
            err.print(f"rollouts: {report.rollouts_path}\nsummary:  {report.summary_path}")
