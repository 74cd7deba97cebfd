"""`rlvr doctor`: what this machine can do — sandbox backends, torch/CUDA, package versions."""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import typer

PACKAGES = ("sympy", "math-verify", "gymnasium", "typer", "rich", "torch", "transformers", "trl", "accelerate", "datasets", "docker")


def register(app: typer.Typer) -> None:
    app.command("doctor", help="Show what is available here: sandbox backends, torch/CUDA, package versions.")(doctor)


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def collect() -> dict:
    """Everything `rlvr doctor` reports, as plain data (also printed by `--json`)."""
    from rlvr import __version__
    from rlvr.sandbox import default_backend, probe_backends

    report: dict = {
        "rlvr": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "sandbox": [{"backend": name, "available": ok, "detail": detail} for name, ok, detail in probe_backends()],
    }
    from rlvr.sandbox.backends.local import lacks

    report["sandbox_local_lacks"] = lacks()  # said plainly: local is never a sandbox for untrusted code
    try:
        report["sandbox_auto"] = default_backend()
    except Exception as e:  # no usable backend at all is itself something to report
        report["sandbox_auto"] = f"none ({e})"
    if report["packages"]["torch"]:
        import torch

        report["torch"] = {
            "cuda": torch.cuda.is_available(),
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [],
            "threads": torch.get_num_threads(),
        }
    import rlvr.verifiers as V

    report["verifiers"] = V.verifier_names()
    return report


def doctor(as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object.")) -> None:
    report = collect()
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rlvr {report['rlvr']} doctor", show_header=True)
    table.add_column("component")
    table.add_column("status")
    table.add_column("detail")
    table.add_row("python", "ok", f"{report['python']} ({sys.executable})")
    for name, ver in report["packages"].items():
        table.add_row(name, "[green]ok[/]" if ver else "[yellow]missing[/]", ver or "not installed")
    for row in report["sandbox"]:
        table.add_row(f"sandbox: {row['backend']}", "[green]available[/]" if row["available"] else "[yellow]unavailable[/]", row["detail"])
    table.add_row("sandbox: local lacks", "[yellow]weakest[/]", "; ".join(report["sandbox_local_lacks"]))
    table.add_row("sandbox: auto", "", str(report["sandbox_auto"]))
    if "torch" in report:
        t = report["torch"]
        table.add_row("torch CUDA", "[green]yes[/]" if t["cuda"] else "no", ", ".join(t["devices"]) or f"CPU, {t['threads']} threads")
    table.add_row("verifiers", "", ", ".join(report["verifiers"]))
    Console().print(table)
