"""The `rlvr` command line: one typer app; each command group lives in its own module.

A module in ``COMMAND_MODULES`` exposes ``register(app)``; heavy imports (torch, docker, trl)
happen inside the command functions so that ``rlvr score`` and ``rlvr --help`` start fast.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Optional

import typer

from rlvr import __version__
from rlvr.errors import ConfigError, DependencyError, InputError, RlvrError

COMMAND_MODULES = [
    "rlvr.cli.doctor",
    "rlvr.cli.score",
    "rlvr.cli.eval",
    "rlvr.cli.sandbox",
    "rlvr.cli.envs",
    "rlvr.cli.train",
    "rlvr.cli.report",
    "rlvr.cli.compare",
]

app = typer.Typer(
    name="rlvr",
    help="Reinforcement learning from verifiable rewards: score, sandbox, evaluate and train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rlvr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages to stderr."),
) -> None:
    """rlvr: verifiers, sandboxes, environments and a trainer for RL from verifiable rewards."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


# Usage errors (bad flags, bad config, unusable input) exit with 2, like click's own usage errors.
USAGE_ERRORS = (ConfigError, InputError, DependencyError)


def run() -> None:
    """Console-script entry point: run the app and turn rlvr errors into one clear line."""
    try:
        # With standalone_mode=False click returns a command's exit code instead of exiting.
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc != 0:
            sys.exit(rc)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as e:  # click usage errors carry their own exit code and formatting
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, USAGE_ERRORS):
            typer.echo(f"error: {e}", err=True)
            sys.exit(2)
        if isinstance(e, RlvrError):
            typer.echo(f"error: {e}", err=True)
            sys.exit(1)
        raise


if __name__ == "__main__":
    run()
