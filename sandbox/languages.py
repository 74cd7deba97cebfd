"""Language registry: how each language's program is written, compiled and run inside a sandbox.

One ``register_language(Language(...))`` entry per language; the sandbox core has no
per-language branches. Commands run in the program's fresh work directory with relative paths,
so the same entry works on every backend. ``{memory_mb}``, ``{heap_mb}`` and ``{stack_mb}`` in
an argument are filled from the run's ``Limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlvr.errors import ConfigError
from rlvr.registry import Registry

if TYPE_CHECKING:
    from rlvr.sandbox.limits import Limits

#: ``run`` value meaning "execute the source as ``__main__`` in a fork of the warm Python zygote".
PYTHON_IN_ZYGOTE = ("<python>",)


@dataclass(frozen=True)
class Language:
    """How to turn a source string into a running process.

    name:          canonical name (``Program.language`` accepts it or an alias).
    source_file:   file the source is written to in the work directory.
    run:           argv of the run step (``PYTHON_IN_ZYGOTE`` for in-zygote Python).
    compile:       argv of the compile step, or () for interpreted languages.
    artifact:      file the compile step produces; cached per source and reused by later runs.
    memory_rlimit: ``as`` (address space) or ``data`` (data segment, for runtimes such as V8
                   that reserve far more virtual memory than they use).
    oom_markers:   stderr substrings by which this runtime reports running out of memory.
    aliases/extensions: other names and file suffixes (the CLI guesses the language from them).
    """

    name: str
    source_file: str
    run: tuple[str, ...]
    compile: tuple[str, ...] = ()
    artifact: str | None = None
    memory_rlimit: str = "as"
    oom_markers: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()

    @property
    def compiled(self) -> bool:
        """True when the language has a compile step."""
        return bool(self.compile)

    @property
    def in_zygote(self) -> bool:
        """True when programs run as Python inside a fork of the zygote (no exec at all)."""
        return self.run == PYTHON_IN_ZYGOTE

    def argv(self, step: str, limits: "Limits") -> list[str]:
        """The argv of ``step`` (``compile`` or ``run``) with the limit fields substituted."""
        template = self.compile if step == "compile" else self.run
        values = {"memory_mb": limits.memory_mb, "heap_mb": max(16, limits.memory_mb * 3 // 4), "stack_mb": limits.stack}
        return [a.format(**values) for a in template]


_LANGUAGES: dict[str, Language] = {}
# Every name and alias -> its language, so lookups share the registry's did-you-mean.
LANGUAGES: Registry[Language] = Registry("language", field="program.language")


def register_language(lang: Language) -> Language:
    """Add a language (its name and aliases must be new)."""
    for key in (lang.name, *lang.aliases):
        if key in LANGUAGES:
            raise ConfigError("program.language", f"language name {key!r} is already registered")
    _LANGUAGES[lang.name] = lang
    for key in (lang.name, *lang.aliases):
        LANGUAGES.register(key, lang)
    return lang


def get_language(name: str) -> Language:
    """The language called ``name`` (or an alias); ConfigError with a suggestion otherwise."""
    return LANGUAGES.get(str(name).strip().lower())


def language_for_path(path: str) -> Language | None:
    """The language whose file extension ``path`` has, if any."""
    lower = path.lower()
    for lang in _LANGUAGES.values():
        if any(lower.endswith(ext) for ext in lang.extensions):
            return lang
    return None


def language_names() -> list[str]:
    """Canonical names of every registered language."""
    return sorted(_LANGUAGES)


register_language(Language(
    name="python", source_file="main.py", run=PYTHON_IN_ZYGOTE,
    oom_markers=("MemoryError",), aliases=("py", "python3"), extensions=(".py",),
))
register_language(Language(
    name="c", source_file="main.c", compile=("gcc", "-O2", "-std=gnu17", "-pipe", "-o", "main", "main.c", "-lm"),
    run=("./main",), artifact="main",
    oom_markers=("Cannot allocate memory", "out of memory"), extensions=(".c",),
))
register_language(Language(
    name="cpp", source_file="main.cpp", compile=("g++", "-O2", "-std=gnu++17", "-pipe", "-o", "main", "main.cpp"),
    run=("./main",), artifact="main",
    oom_markers=("std::bad_alloc", "Cannot allocate memory", "out of memory"),
    aliases=("c++", "cxx"), extensions=(".cpp", ".cc", ".cxx"),
))
register_language(Language(
    name="javascript", source_file="main.js", run=("node", "--max-old-space-size={heap_mb}", "main.js"),
    memory_rlimit="data",
    oom_markers=("JavaScript heap out of memory", "Fatal process OOM", "Cannot allocate memory"),
    aliases=("js", "node", "nodejs"), extensions=(".js", ".mjs"),
))
register_language(Language(
    name="bash", source_file="main.sh", run=("bash", "main.sh"),
    oom_markers=("Cannot allocate memory", "cannot allocate"), aliases=("sh", "shell"), extensions=(".sh", ".bash"),
))


#: Modules the Python zygote imports once, so programs that import them start at fork cost.
#: They are pristine (never used before the fork); ``random`` reseeds itself in every fork.
PYTHON_PRELOAD = (
    "array", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "fractions",
    "functools", "heapq", "itertools", "json", "math", "operator", "random", "re", "statistics",
    "string", "sys", "threading", "atexit", "traceback", "types", "typing", "io", "resource",
)

__all__ = ["Language", "PYTHON_IN_ZYGOTE", "PYTHON_PRELOAD", "get_language", "language_for_path", "language_names", "register_language"]
