"""`rlvr envs list|show|check`: the environments installed here (built-ins and plugins)."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

ENV_ARG_HELP = "Environment argument key=value (repeatable; values parsed as JSON when they can be)."


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="List, inspect and check environments (built-ins and installed plugins).", no_args_is_help=True)
    group.command("list", help="Every environment: id, kind, reward components, description; broken plugins with the reason.")(list_command)
    group.command("show", help="One environment in detail, with a sample task.")(show_command)
    group.command("check", help="Run rlvr.envs.check: Gymnasium's check_env plus reference/no-op/spam/seed checks.")(check_command)
    app.add_typer(group, name="envs")


def _components(components: list[dict]) -> str:
    return ", ".join(f"{c['name']}={c['weight']:g}" for c in components)


def list_command(as_json: bool = typer.Option(False, "--json", help="Print a JSON list of environments.")) -> None:
    from rich.console import Console
    from rich.table import Table

    from rlvr.envs import describe, env_ids

    infos = [describe(i) for i in env_ids(include_broken=True)]
    if as_json:
        typer.echo(json.dumps([i.to_dict() for i in infos], indent=None))
        return
    table = Table(title=f"{len(infos)} environments", show_lines=False)
    for col in ("id", "kind", "reward components", "description"):
        table.add_column(col, overflow="fold")
    for i in infos:
        if i.error:
            table.add_row(i.id, "[red]broken[/]", "", f"[red]{i.error}[/]" + (f" ({i.package})" if i.package else ""))
        else:
            table.add_row(i.id, i.kind, _components(i.components), i.description)
    Console().print(table)


def show_command(
    env_id: str = typer.Argument(..., help="Environment id, e.g. rlvr/Math-v0."),
    env_arg: Optional[List[str]] = typer.Option(None, "--env-arg", "-E", help=ENV_ARG_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample task shown."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    from rich.console import Console

    from rlvr.cli.options import parse_options
    from rlvr.envs import describe, make, resolve_env_id

    env_id = resolve_env_id(env_id)
    kwargs = parse_options(env_arg, "--env-arg")
    info = describe(env_id, **kwargs).to_dict()
    if not info["error"]:
        env = make(env_id, **kwargs)
        obs, reset_info = env.reset(seed=seed)
        info["sample"] = {"seed": seed, "task_id": reset_info.get("task_id"), "messages": obs, "reference": reset_info.get("task", {}).get("reference")}
        env.close()
    if as_json:
        typer.echo(json.dumps(info, default=str))
        return
    con = Console()
    con.print(f"[bold]{info['id']}[/]  ({info['kind']}, {info['origin']}{', ' + info['package'] if info['package'] else ''})")
    con.print(info["description"] or "")
    if info["error"]:
        con.print(f"[red]broken:[/] {info['error']}")
        raise typer.Exit(1)
    con.print(f"entry point: {info['entry_point']}")
    con.print(f"tasks: {info['tasks']}")
    con.print(f"max turns: {info['max_turns']}   max reward: {info['max_reward']:g}")
    con.print("reward components:")
    for c in info["components"]:
        con.print(f"  {c['name']:<14} weight {c['weight']:<5g} {c['kind']:<6} {c['scorer']:<22} {c['help']}")
    con.print(f"sample task (seed {seed}, {info['sample']['task_id']}):", markup=False)
    for m in info["sample"]["messages"]:
        con.print(f"  [{m['role']}] {m['content']}", markup=False)
    con.print(f"  reference: {info['sample']['reference']}", markup=False)


def check_command(
    env_id: str = typer.Argument(..., help="Environment id, e.g. rlvr/Countdown-v0."),
    env_arg: Optional[List[str]] = typer.Option(None, "--env-arg", "-E", help=ENV_ARG_HELP),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds the checks run on."),
) -> None:
    from rlvr.cli.options import parse_options
    from rlvr.envs import check, make, resolve_env_id
    from rlvr.errors import ConfigError

    env_id = resolve_env_id(env_id)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError("--seeds", f"{seeds!r} is not a comma-separated list of integers", "e.g. --seeds 0,1,2") from None
    env = make(env_id, **parse_options(env_arg, "--env-arg"))
    report = check(env, seeds=seed_list or [0], raise_on_failure=False)
    for name in report.passed:
        typer.echo(f"ok    {name}")
    for problem in report.problems:
        typer.echo(f"FAIL  {problem}")
    env.close()
    if not report.ok:
        raise typer.Exit(1)


__all__ = ["register"]
