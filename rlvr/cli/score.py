"""`rlvr score VERIFIER --input IN.jsonl --output OUT.jsonl`: score a file of completions."""

from __future__ import annotations

import time
from collections import Counter
from typing import List, Optional

import typer

CHUNK = 512


def register(app: typer.Typer) -> None:
    app.command(
        "score",
        help="Score completions in a JSONL file. Rows carry 'completion' and the verifier's reference "
        "('answer'; 'tests' for code); other fields are kept. Output rows add reward, correct, status, parsed, ms.",
    )(score)


def score(
    verifier: str = typer.Argument(..., help="Verifier name: math, format, string, code, ... (registered verifiers; see `rlvr doctor`)."),
    input: str = typer.Option(..., "--input", "-i", help="Input JSONL file ('-' for stdin)."),
    output: str = typer.Option("-", "--output", "-o", help="Output JSONL file ('-' for stdout)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: one per core, max 8)."),
    timeout: float = typer.Option(10.0, "--timeout", "-t", min=0.001, help="Hard per-item time limit in seconds."),
    option: Optional[List[str]] = typer.Option(None, "--option", "-O", help="Verifier option key=value (repeatable), e.g. -O mode=exact."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    import rlvr.verifiers as V
    from rlvr.cli.io import JsonlWriter, iter_chunks, read_jsonl
    from rlvr.cli.options import parse_options

    v = V.get_verifier(verifier, **parse_options(option, "--option"))
    rows = read_jsonl(input)
    err = Console(stderr=True)
    statuses: Counter[str] = Counter()
    n_correct = 0
    t0 = time.perf_counter()
    progress = Progress(
        TextColumn(f"scoring [bold]{verifier}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, disable=quiet, transient=False,
    )
    try:
        with progress, JsonlWriter(output) as out:
            task = progress.add_task("score", total=len(rows))
            for _, chunk in iter_chunks(rows, CHUNK):
                scores = v.score_many(chunk, workers=workers, timeout=timeout, on_result=lambda i, s: progress.advance(task))
                out_rows = []
                for row, s in zip(chunk, scores):
                    base = dict(row) if isinstance(row, dict) else {"row": row}
                    base.update(reward=s.reward, correct=s.correct, status=s.status, parsed=s.parsed, ms=round(s.ms, 3), detail=s.detail)
                    if s.components:
                        base["components"] = dict(s.components)
                    out_rows.append(base)
                    statuses[s.status] += 1
                    n_correct += s.correct is True
                out.write_many(out_rows)
    finally:
        v.close()
    wall = time.perf_counter() - t0
    if not quiet:
        table = Table(title=f"rlvr score {verifier}", show_header=True)
        table.add_column("items", justify="right")
        table.add_column("accuracy", justify="right")
        table.add_column("statuses")
        table.add_column("items/s", justify="right")
        n = len(rows)
        table.add_row(
            str(n),
            f"{n_correct / n:.3f}" if n else "-",
            ", ".join(f"{k}={c}" for k, c in statuses.most_common()),
            f"{n / wall:.1f}" if wall > 0 else "-",
        )
        err.print(table)
