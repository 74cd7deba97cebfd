"""CompileCache: compile a C/C++ program once, then run its binary against many inputs.

A code verifier runs one candidate on many test inputs; compiling it for each would cost more
than every run together. The cache maps (language, source, files, compile limits) to the
compiled artifact, or to the failed compile's result, which is deterministic too. LRU-bounded
by entries and bytes; thread-safe.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Union

from rlvr.sandbox.languages import Language
from rlvr.sandbox.limits import Limits
from rlvr.sandbox.program import Program
from rlvr.sandbox.result import ExecResult

Entry = Union[bytes, ExecResult]


class CompileCache:
    """LRU of compiled artifacts (bytes) or failed compiles (ExecResult)."""

    def __init__(self, max_entries: int = 512, max_bytes: int = 512 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(program: Program, lang: Language, limits: Limits) -> str:
        """Everything the compile step's outcome depends on."""
        h = hashlib.sha256()
        for part in (lang.name, "\0".join(lang.argv("compile", limits)), str(limits.compile_time_limit_s), str(limits.compile_memory_mb)):
            h.update(part.encode() + b"\1")
        h.update(program.source.encode("utf-8", "surrogateescape") + b"\1")
        for path, data in program.files.items():
            h.update(path.encode() + b"\2" + hashlib.sha256(data).digest())
        return h.hexdigest()

    def get(self, key: str) -> Entry | None:
        """The cached artifact or failed compile for ``key``, if any."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: str, entry: Entry) -> None:
        """Remember ``entry`` (evicting the least recently used beyond the bounds)."""
        size = len(entry) if isinstance(entry, bytes) else 0
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if isinstance(old, bytes):
                self._bytes -= len(old)
            self._data[key] = entry
            self._bytes += size
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                _, dropped = self._data.popitem(last=False)
                if isinstance(dropped, bytes):
                    self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._data)


__all__ = ["CompileCache"]
