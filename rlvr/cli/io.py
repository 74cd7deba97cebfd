"""JSONL reading and writing for the CLI: clear errors for missing files and bad lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator, TextIO

from rlvr.errors import InputError


def read_jsonl(path: str | Path) -> list[Any]:
    """Every JSON value in a JSONL file ("-" = stdin); blank lines are skipped.

    Raises InputError naming the file and line for a missing file or a line that is not JSON,
    before any work starts, so a run never dies half-way through on a typo.
    """
    if str(path) == "-":
        return _parse_lines(sys.stdin, "<stdin>")
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file {p} does not exist (check the path passed to --input)")
    if p.is_dir():
        raise InputError(f"input {p} is a directory, not a JSONL file")
    with p.open("r", encoding="utf-8", errors="replace") as f:
        return _parse_lines(f, str(p))


def _parse_lines(f: TextIO, name: str) -> list[Any]:
    rows = []
    for n, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InputError(f"{name}, line {n}: not valid JSON ({e.msg} at column {e.colno}); each line must be one JSON object") from None
    return rows


class JsonlWriter:
    """Append JSON lines to a file ("-" = stdout), flushing each batch so nothing finished is lost."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path == "-":
            self._f = sys.stdout
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", encoding="utf-8")

    def write_many(self, rows: list[dict]) -> None:
        for row in rows:
            self._f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not sys.stdout:
            self._f.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_chunks(rows: list[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    """``(offset, chunk)`` pairs of at most ``size`` rows."""
    for i in range(0, len(rows), size):
        yield i, rows[i : i + size]


__all__ = ["read_jsonl", "JsonlWriter", "iter_chunks"]
