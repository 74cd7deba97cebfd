"""Program: the source, extra files, stdin and argv of one sandboxed run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence, Union

from rlvr.errors import ConfigError
from rlvr.sandbox.languages import get_language

Data = Union[str, bytes]


def _as_bytes(value: Data, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise ConfigError(name, f"must be str or bytes, got {type(value).__name__}")


@dataclass(frozen=True)
class Program:
    """One program to run: ``Program("python", "print(input())", stdin="hi")``.

    language: a registered language name or alias (``python``, ``c``, ``cpp``, ``javascript``, ``bash``).
    source:   the program text (model output: anything goes, it only ever runs in the sandbox).
    files:    extra files for the work directory, ``{relative path: text or bytes}``.
    stdin:    bytes fed on standard input (then end-of-file); text is encoded as UTF-8.
    argv:     extra command-line arguments.
    Bad configuration (unknown language, a file path escaping the work directory) raises
    ConfigError at construction.
    """

    language: str
    source: str
    files: Mapping[str, Data] = field(default_factory=dict)
    stdin: Data = b""
    argv: Sequence[str] = ()

    def __post_init__(self) -> None:
        lang = get_language(self.language)
        object.__setattr__(self, "language", lang.name)
        if not isinstance(self.source, str):
            if isinstance(self.source, bytes):
                object.__setattr__(self, "source", self.source.decode("utf-8", "surrogateescape"))
            else:
                raise ConfigError("program.source", f"must be str, got {type(self.source).__name__}")
        object.__setattr__(self, "stdin", _as_bytes(self.stdin, "program.stdin"))
        if isinstance(self.argv, (str, bytes)) or not all(isinstance(a, str) and "\0" not in a for a in self.argv):
            raise ConfigError("program.argv", "must be a list of strings without NUL bytes")
        object.__setattr__(self, "argv", tuple(self.argv))
        reserved = {lang.source_file} | ({lang.artifact} if lang.artifact else set())
        files: dict[str, bytes] = {}
        for path, data in dict(self.files).items():
            _check_path(path, reserved)
            files[path] = _as_bytes(data, f"program.files[{path!r}]")
        object.__setattr__(self, "files", dict(sorted(files.items())))

    def with_stdin(self, stdin: Data) -> "Program":
        """The same program fed a different stdin (cheap: nothing is re-validated but stdin)."""
        return replace(self, stdin=stdin)

    def __repr__(self) -> str:
        src = self.source if len(self.source) <= 40 else self.source[:37] + "..."
        return f"Program(language={self.language!r}, source={src!r}, files={list(self.files)}, stdin={len(self.stdin)} bytes)"


def _check_path(path: object, reserved: set[str]) -> None:
    if not isinstance(path, str) or not path or "\0" in path:
        raise ConfigError("program.files", f"file name {path!r} must be a non-empty string")
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConfigError("program.files", f"file name {path!r} must be a relative path inside the work directory", "use names like 'data/input.txt'")
    if path in reserved:
        raise ConfigError("program.files", f"file name {path!r} is where the program itself goes", "pick another name")


__all__ = ["Program"]
