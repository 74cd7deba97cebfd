"""JSONL input and crash-safe JSONL output for `rlvr score`.

Input: every non-blank line becomes one row; a line that is not JSON becomes a :class:`BadLine`
(scored ``error`` by the caller, naming the line) instead of stopping the run.

Output: rows go to a temporary file next to the target (``.NAME.partial``), flushed after each
batch, and the temporary file is renamed over the target when the run ends *or is interrupted*:
the target is always either its old content or a valid JSONL prefix of the new output, and the
input is never opened for writing. ``resume=True`` keeps the complete rows an interrupted run
left and continues after them.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, TextIO

from rlvr.errors import InputError


@dataclass(frozen=True)
class BadLine:
    """An input line that is not JSON: kept in place so the output stays aligned with the input."""

    line: int
    reason: str


def read_jsonl(path: str | Path) -> list[Any]:
    """Every row of a JSONL file ("-" = stdin): the parsed value, or a BadLine; blank lines skipped.

    Raises InputError for a missing file or a directory, before any work starts.
    """
    if str(path) == "-":
        return _parse_lines(sys.stdin)
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file {p} does not exist (check the path passed to --input)")
    if p.is_dir():
        raise InputError(f"input {p} is a directory, not a JSONL file")
    with p.open("r", encoding="utf-8", errors="replace") as f:
        return _parse_lines(f)


def _parse_lines(f: TextIO) -> list[Any]:
    rows: list[Any] = []
    for n, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            rows.append(BadLine(n, f"line {n}: not valid JSON ({e.msg} at column {e.colno}); each line must be one JSON object"))
        except RecursionError:
            rows.append(BadLine(n, f"line {n}: JSON nested too deeply"))
    return rows


def line_numbers(path: str | Path) -> list[int]:
    """The 1-based line number of each row :func:`read_jsonl` returns (blank lines skipped)."""
    if str(path) == "-":
        return []
    with Path(path).open("r", encoding="utf-8", errors="replace") as f:
        return [n for n, line in enumerate(f, start=1) if line.strip()]


def _complete_rows(path: Path) -> list[str]:
    """The lines of an earlier output that are whole JSON objects, up to the first that is not."""
    kept = []
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # cut off mid-line by a kill
            try:
                if not isinstance(json.loads(line), dict):
                    break
            except json.JSONDecodeError:
                break
            kept.append(line)
    return kept


class JsonlOutput:
    """Where `rlvr score` writes: stdout, or a file replaced atomically (see the module docstring).

    Checks run at construction, before any scoring: the output must not be the input, must not
    be a directory, must be creatable, and must be empty unless ``resume`` or ``overwrite``.
    ``done`` is the number of rows already in the output that a resumed run skips.
    """

    def __init__(self, path: str | Path, input_path: str | Path, resume: bool = False, overwrite: bool = False) -> None:
        self.path = str(path)
        self.done = 0
        self._kept: list[str] = []
        self._tmp: Path | None = None
        if self.path == "-":
            if resume:
                raise InputError("--resume needs --output FILE (there is nothing to resume on stdout)")
            self._f: TextIO = sys.stdout
            return
        target = Path(self.path)
        if target.is_dir():
            raise InputError(f"output {target} is a directory; pass a file path such as {target / 'scored.jsonl'}")
        if str(input_path) != "-" and target.exists() and Path(input_path).exists() and os.path.samefile(target, input_path):
            raise InputError(f"output {target} is the input file; write the scores to another file")
        if target.exists() and target.stat().st_size > 0:
            if resume:
                self._kept = _complete_rows(target)
                self.done = len(self._kept)
            elif not overwrite:
                raise InputError(f"output {target} already holds rows; pass --resume to continue it or --overwrite to replace it")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = target.parent / f".{target.name}.partial"
            self._f = open(self._tmp, "w", encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write output {target}: {e.strerror or e}") from None
        self._f.writelines(self._kept)
        self._f.flush()

    def previous_row(self) -> dict | None:
        """The last row kept from an earlier run (to check that it belongs to this input)."""
        return json.loads(self._kept[-1]) if self._kept else None

    def write_many(self, rows: list[dict]) -> None:
        for row in rows:
            self._f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        """Put what was written in place: rename the temporary file over the target."""
        if self._f is sys.stdout:
            return
        if self._f.closed:
            return
        self._f.flush()
        try:
            os.fsync(self._f.fileno())
        except OSError:
            pass
        self._f.close()
        if self._tmp is not None:
            os.replace(self._tmp, self.path)

    def abandon(self) -> None:
        """Leave the target as it was: drop the temporary file (a check failed before any scoring)."""
        if self._f is sys.stdout or self._f.closed:
            return
        self._f.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "JsonlOutput":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_chunks(rows: list[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    """``(offset, chunk)`` pairs of at most ``size`` rows."""
    for i in range(0, len(rows), size):
        yield i, rows[i : i + size]


__all__ = ["read_jsonl", "line_numbers", "BadLine", "JsonlOutput", "iter_chunks"]
