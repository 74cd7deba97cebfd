"""`rlvr score VERIFIER --input IN.jsonl --output OUT.jsonl`: score a file of completions.

Nothing is lost: a line that is not a JSON object becomes an ``error`` row naming the line; the
output is written next to its target and renamed into place, also on Ctrl-C or SIGTERM (which
stop every worker process at once); ``--resume`` continues an interrupted output.
"""

from __future__ import annotations

import inspect
import signal
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional

import typer

from rlvr.errors import ConfigError, InputError
from rlvr.registry import did_you_mean

CHUNK = 512


def register(app: typer.Typer) -> None:
    app.command(
        "score",
        help="Score completions in a JSONL file. Rows carry 'completion' and the verifier's reference "
        "('answer'; 'tests' for code); other fields are kept. Output rows add reward, correct, status, parsed, ms, detail.",
    )(score)


def check_options(name: str, cls: type, options: dict[str, Any]) -> None:
    """Refuse ``-O`` keys the verifier's constructor does not take, with a did-you-mean."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [p for p in params if p != "self" and params[p].kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in options:
        if key not in known:
            near = did_you_mean(key, known)
            hint = f"did you mean '{near}'? " if near else ""
            raise ConfigError(f"-O {key}", f"verifier {name!r} has no option {key!r}", f"{hint}its options: {', '.join(known) or 'none'}")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: stop the workers, keep the rows already scored."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (called from a test runner's thread): leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error_row(row: Any, line: int | None, detail: str) -> dict:
    base = dict(row) if isinstance(row, dict) else {"line": line}
    base.update(reward=0.0, correct=None, status="error", parsed=None, ms=0.0, detail=detail)
    return base


def score(
    verifier: str = typer.Argument(..., help="Verifier name: math, format, string, code, ... (registered verifiers; see `rlvr doctor`)."),
    input: str = typer.Option(..., "--input", "-i", help="Input JSONL file ('-' for stdin)."),
    output: str = typer.Option("-", "--output", "-o", help="Output JSONL file ('-' for stdout)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: one per core, max 8)."),
    timeout: float = typer.Option(10.0, "--timeout", "-t", min=0.001, help="Hard per-item time limit in seconds."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-O", help="Verifier option key=value (repeatable), e.g. -O strict=true."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted --output: keep its complete rows, score the rest."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --output instead of refusing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from rlvr.cli.io import BadLine, JsonlOutput, iter_chunks, line_numbers, read_jsonl
    from rlvr.cli.options import parse_options
    from rlvr.verifiers.registry import verifier_class

    if resume and overwrite:
        raise ConfigError("--resume/--overwrite", "pick one", "--resume continues the output, --overwrite replaces it")
    options = parse_options(option, "--option")
    cls = verifier_class(verifier)
    check_options(verifier, cls, options)
    try:
        v = cls(**options)
    except TypeError as e:
        raise ConfigError(f"verifier {verifier!r}", f"bad options: {e}") from None
    rows = read_jsonl(input)
    lines = line_numbers(input) or list(range(1, len(rows) + 1))
    out = JsonlOutput(output, input, resume=resume, overwrite=overwrite)
    err = Console(stderr=True)
    if out.done > len(rows) or (out.done and not _same_row(out.previous_row(), rows[out.done - 1])):
        out.abandon()
        raise InputError(f"output {output} does not continue this input (row {out.done} differs); use --overwrite to start again")
    statuses: Counter[str] = Counter()
    n_correct = bad_lines = 0
    written = out.done
    t0 = time.perf_counter()
    progress = Progress(
        TextColumn(f"scoring [bold]{verifier}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, disable=quiet, transient=False,
    )
    todo = rows[out.done :]
    interrupted = False
    try:
        with _sigterm_as_interrupt(), progress:
            task = progress.add_task("score", total=len(rows), completed=out.done)
            for offset, chunk in iter_chunks(todo, CHUNK):
                first = out.done + offset
                good = [(k, r) for k, r in enumerate(chunk) if isinstance(r, dict)]
                scores = v.score_many([r for _, r in good], workers=workers, timeout=timeout, on_result=lambda i, s: progress.advance(task))
                by_pos = {k: s for (k, _), s in zip(good, scores)}
                out_rows = []
                for k, row in enumerate(chunk):
                    line = lines[first + k] if first + k < len(lines) else None
                    s = by_pos.get(k)
                    if s is None:
                        detail = row.reason if isinstance(row, BadLine) else f"line {line}: a row must be a JSON object with 'completion', got {type(row).__name__}"
                        out_rows.append(_error_row(row if not isinstance(row, BadLine) else None, line, detail))
                        statuses["error"] += 1
                        bad_lines += 1
                        progress.advance(task)
                        continue
                    base = dict(row)
                    base.update(reward=s.reward, correct=s.correct, status=s.status, parsed=s.parsed, ms=round(s.ms, 3), detail=s.detail)
                    if s.components:
                        base["components"] = dict(s.components)
                    out_rows.append(base)
                    statuses[s.status] += 1
                    n_correct += s.correct is True
                out.write_many(out_rows)
                written += len(out_rows)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        v.close()
        out.close()
    if interrupted:
        where = f"{written} of {len(rows)} rows are in {output}" if output != "-" else f"{written} of {len(rows)} rows were written"
        hint = f"; rerun with --resume to score the rest" if output != "-" else ""
        err.print(f"interrupted: {where}{hint}")
        raise typer.Exit(130)
    wall = time.perf_counter() - t0
    if not quiet:
        table = Table(title=f"rlvr score {verifier}", show_header=True)
        for col in ("items", "accuracy", "statuses", "bad lines", "items/s"):
            table.add_column(col, justify="left" if col == "statuses" else "right")
        n = len(todo)
        table.add_row(
            str(n),
            f"{n_correct / n:.3f}" if n else "-",
            ", ".join(f"{k}={c}" for k, c in statuses.most_common()),
            str(bad_lines),
            f"{n / wall:.1f}" if wall > 0 else "-",
        )
        if out.done:
            table.caption = f"resumed: {out.done} rows kept from the earlier run"
        err.print(table)


def _same_row(previous: dict | None, row: Any) -> bool:
    """Does a kept output row come from this input row? (its input fields are unchanged)"""
    if previous is None:
        return True
    if not isinstance(row, dict):
        return previous.get("status") == "error"
    return all(previous.get(k) == v for k, v in row.items() if k not in ("reward", "correct", "status", "parsed", "ms", "detail", "components"))
