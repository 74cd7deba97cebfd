"""`rlvr sandbox run FILE` and `rlvr sandbox build-image`: the sandbox from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

sandbox_app = typer.Typer(help="Run untrusted programs in the sandbox; build its Docker image.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("run")
def run(
    file: str = typer.Argument(..., help="Program source file ('-' for stdin; then --language is required)."),
    language: Optional[str] = typer.Option(None, "--language", "-l", help="python, c, cpp, javascript, bash (default: from the file extension)."),
    backend: str = typer.Option("auto", "--backend", "-b", help="auto (strongest available), bwrap, docker or local."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", "-t", help="Wall-clock seconds (default 10)."),
    memory_mb: Optional[int] = typer.Option(None, "--memory-mb", "-m", help="Memory per process in MiB (default 512)."),
    stdin: Optional[str] = typer.Option(None, "--stdin", help="File whose bytes are the program's stdin (default: empty)."),
    arg: Optional[List[str]] = typer.Option(None, "--arg", help="Command-line argument for the program (repeatable)."),
    image: Optional[str] = typer.Option(None, "--image", help="Docker image (docker backend; default: the locally built one)."),
) -> None:
    """Run FILE once and print one JSON object: status, exit_code, stdout, stderr, wall_s, cpu_s, max_rss_mb, backend.

    Exits 0 whenever the sandbox worked, whatever the program did; 1 on a sandbox error.
    """
    from rlvr.errors import ConfigError, InputError
    from rlvr.sandbox import Limits, Program, Sandbox
    from rlvr.sandbox.languages import language_for_path

    source = _read(file, "FILE").decode("utf-8", "surrogateescape")
    if language is None:
        lang = language_for_path(file) if file != "-" else None
        if lang is None:
            raise ConfigError("--language", f"cannot tell the language of {file!r} from its name", "pass --language python|c|cpp|javascript|bash")
        language = lang.name
    changes = {}
    if time_limit is not None:
        changes["time_limit_s"] = time_limit
    if memory_mb is not None:
        changes["memory_mb"] = memory_mb
    limits = Limits().replace(**changes)
    program = Program(language, source, stdin=_read(stdin, "--stdin") if stdin else b"", argv=arg or ())
    options = {"image": image} if image else {}
    if image and backend not in ("docker", "auto"):
        raise InputError("--image only applies to the docker backend (pass --backend docker)")
    if image and backend == "auto":
        backend = "docker"
    with Sandbox(backend, limits, concurrency=1, **options) as sb:
        result = sb.run(program)
    typer.echo(json.dumps(result.to_dict()))
    if result.status == "sandbox_error":
        raise typer.Exit(1)


@sandbox_app.command("build-image")
def build_image(
    tag: Optional[str] = typer.Option(None, "--tag", help="Image tag (default: rlvr-sandbox:<digest of the recipe>)."),
    force: bool = typer.Option(False, "--force", help="Import again even if the tag exists."),
    docker_host: Optional[str] = typer.Option(None, "--docker-host", help="Engine URL (default: DOCKER_HOST or the local socket)."),
) -> None:
    """Build the docker backend's image locally (no registry needed); quick no-op when it exists."""
    from rlvr.errors import SandboxError
    from rlvr.sandbox.backends.docker import _client
    from rlvr.sandbox.image import build_image as build

    client = _client(docker_host)
    try:
        client.ping()
    except Exception as e:  # report the engine's own reason
        raise SandboxError(f"no Docker engine answers: {e}") from None
    name, built = build(client, tag, force=force)
    typer.echo(json.dumps({"image": name, "built": built}))


def _read(path: str, what: str) -> bytes:
    from rlvr.errors import InputError

    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {path} does not exist or is not a file")
    return p.read_bytes()
