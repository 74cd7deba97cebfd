"""`rlvr report DIR`: write report.html (and the PNG figures) for a run or a comparison directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("report", help="Write report.html for a run directory (rlvr train/demo) or a comparison "
                               "(rlvr compare): curves, final table, pass@k, lengths, rollout browser. No network.")(report)


def report(
    directory: Path = typer.Argument(..., help="A run directory or a comparison directory."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the page (default: DIR/report.html)."),
    png: bool = typer.Option(True, "--png/--no-png", help="Also draw the curves as a PNG next to the page."),
) -> None:
    """Write the report and print its path."""
    from rlvr.report import write_report
    from rlvr.report.figures import write_figures
    from rlvr.report.load import load_source

    path = write_report(directory, output)
    typer.echo(str(path))
    if png:
        source = load_source(directory)
        name = "compare.png" if source.compare is not None else "reward_curve.png"
        figure = write_figures(source, path.with_name(name))
        if figure is not None:
            typer.echo(str(figure))


__all__ = ["register", "report"]
