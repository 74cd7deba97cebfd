"""ExecResult: what happened when a sandboxed program ran (a frozen record, never an exception)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Every value ``ExecResult.status`` can take, in the order a reader checks them.
STATUSES = ("ok", "runtime_error", "timeout", "memory_limit", "output_limit", "killed", "sandbox_error")


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one program run.

    status:      ``ok`` (exited 0), ``runtime_error`` (non-zero exit, crash signal, or a failed
                 compile step: see ``stage``), ``timeout`` (wall clock or CPU time), ``memory_limit``,
                 ``output_limit`` (stdout/stderr or a written file over its cap), ``killed`` (ended
                 by SIGKILL the sandbox did not send for a limit, e.g. the kernel OOM killer or
                 the program itself), ``sandbox_error`` (the sandbox could not run it: see ``detail``).
    exit_code:   the exit status, or minus the signal number when a signal ended it (like
                 ``subprocess``); None when the program never started.
    stdout/err:  captured output, decoded as UTF-8 with invalid bytes replaced, each capped at
                 ``Limits.max_output_bytes`` (``truncated`` says whether it was cut).
    wall_s:      wall-clock seconds from start to exit of the step that decided the status.
    cpu_s:       user+system CPU seconds of that step's whole process tree.
    max_rss_mb:  peak resident memory of its largest process, in MiB.
    backend:     which backend ran it (``local``, ``bwrap``, ``docker``).
    signal:      the name of the signal that ended it (``SIGSEGV``), if one did.
    stage:       ``run``, or ``compile`` when the compile step failed and nothing ran.
    detail:      one human line on why this status (empty for a plain ``ok``).
    """

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    backend: str
    signal: str | None = None
    stage: str = "run"
    detail: str = ""
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"ExecResult.status must be one of {STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """True when the program exited 0 within every limit."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (what ``rlvr sandbox run`` prints)."""
        return asdict(self)

    @classmethod
    def sandbox_error(cls, backend: str, detail: str, stage: str = "run") -> "ExecResult":
        """A result for a run the sandbox itself could not carry out."""
        return cls("sandbox_error", None, "", "", 0.0, 0.0, 0.0, backend, stage=stage, detail=detail)

    def __repr__(self) -> str:
        out = self.stdout if len(self.stdout) <= 40 else self.stdout[:37] + "..."
        extra = f", detail={self.detail!r}" if self.detail else ""
        return (
            f"ExecResult(status={self.status!r}, exit_code={self.exit_code}, stdout={out!r}, "
            f"wall_s={self.wall_s:.3f}, backend={self.backend!r}{extra})"
        )


__all__ = ["ExecResult", "STATUSES"]
