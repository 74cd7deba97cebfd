"""One name -> object registry for every extension point (verifiers, sandbox backends and
languages, algorithm presets, advantage baselines, aggregations, generators, policies).

A new component is one file ending in one registration::

    VERIFIERS = Registry[type]("verifier")

    @VERIFIERS.register("math")
    class MathVerifier(Verifier): ...

    POLICIES.register("hf", "rlvr.trainer.policies.hf:make_hf_policy")   # lazy: imported on first get

Every registry agrees on the same rules, so users meet the same behaviour everywhere:

- ``get(name)`` of an unknown name raises :class:`~rlvr.errors.ConfigError` naming the field,
  with "did you mean ...?" when a known name is close (case and ``-``/``_`` differences count
  as close) and the list of known names otherwise.
- Registering a *different* object under a taken name raises (two plugins silently shadowing
  each other is a bug nobody would find); registering the same object again is a no-op, and
  ``replace=True`` overrides on purpose.
- A ``"module:attr"`` string is a lazy entry: the module is imported on the first ``get``, so a
  registry in a light room can list a component whose code needs torch without importing torch.
- ``load_entry_points(group)`` registers third-party components from installed packages'
  entry points; broken ones are recorded in ``broken`` with the reason instead of raising.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar, overload

from rlvr.errors import ConfigError

T = TypeVar("T")


def _fold(name: str) -> str:
    return name.lower().replace("-", "_")


def close_names(name: str, choices: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` known choices close to ``name``, best first; an exact match up to case and
    ``-``/``_`` comes alone, and so does a transposition of letters (``gpro`` -> ``grpo``)."""
    folded = {_fold(c): c for c in choices}
    key = _fold(name)
    if key in folded:
        return [folded[key]]
    anagrams = [c for f, c in folded.items() if len(f) == len(key) and sorted(f) == sorted(key)]
    if len(anagrams) == 1:
        return anagrams
    return [folded[c] for c in difflib.get_close_matches(key, list(folded), n=n, cutoff=cutoff)]


def did_you_mean(name: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known choice closest to ``name`` (case- and ``-``/``_``-insensitive first), or None."""
    close = close_names(name, choices, n=1, cutoff=cutoff)
    return close[0] if close else None


def unknown_name_error(field: str, kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """The one error every registry and config raises for an unknown name."""
    choices = sorted(choices)
    near = close_names(name, choices)
    known = f"known {kind}s: {', '.join(choices)}" if choices else f"no {kind} is registered"
    fix = f"did you mean {' or '.join(repr(c) for c in near)}? {known}" if near else known
    return ConfigError(field, f"unknown {kind} {name!r}", fix)


def load_attr(target: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError("entry point", f"{target!r} is not of the form 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _same(a: Any, b: Any) -> bool:
    # A module imported twice (e.g. once as a plugin, once by path) makes a new object with the
    # same qualified name; that is the same registration, not a clash.
    if a is b or (isinstance(a, str) and a == b):
        return True
    ident = lambda o: (getattr(o, "__module__", None), getattr(o, "__qualname__", None))  # noqa: E731
    return ident(a) == ident(b) and ident(a) != (None, None)


class Registry(Generic[T]):
    """A named collection of components of one kind; see the module docstring for the rules."""

    def __init__(self, kind: str, *, field: str | None = None, package: str | None = None) -> None:
        self.kind = kind                      # "verifier", "sandbox backend", ...
        self.field = field or kind            # the config field named in errors
        self.package = package                # modules here self-register when first needed
        self._items: dict[str, T | str] = {}
        self._lock = threading.RLock()
        self._scanned = package is None
        self.broken: dict[str, str] = {}      # entry-point name -> why it could not be loaded

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} entries)"

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T | str, *, replace: bool = False) -> T | str: ...

    def register(self, name: str, obj: Any = None, *, replace: bool = False) -> Any:
        """Register ``obj`` (or a lazy ``"module:attr"``) as ``name``; a decorator without ``obj``."""
        if obj is None:
            return lambda o: self.register(name, o, replace=replace)
        if not isinstance(name, str) or not name:
            raise ConfigError(self.field, f"{self.kind} names must be non-empty strings, got {name!r}")
        with self._lock:
            old = self._items.get(name)
            if old is not None and not replace and not _same(old, obj):
                raise ConfigError(
                    self.field, f"{self.kind} {name!r} is already registered ({_describe(old)})",
                    "pick another name, or pass replace=True to override it on purpose")
            self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests and plugins that clean up after themselves)."""
        with self._lock:
            self._items.pop(name, None)

    def _scan(self) -> None:
        # "One file with one decorator": every module of ``package`` is imported once, the first
        # time the registry is listed or misses, so a new file needs no import line elsewhere.
        if self._scanned:
            return
        self._scanned = True
        import pkgutil

        pkg = importlib.import_module(self.package)  # type: ignore[arg-type]
        for mod in pkgutil.iter_modules(pkg.__path__, prefix=f"{self.package}."):
            if not mod.ispkg and not mod.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(mod.name)

    def get(self, name: str) -> T:
        """The component registered as ``name`` (importing a lazy entry); ConfigError otherwise."""
        with self._lock:
            if name not in self._items:
                self._scan()
            if name not in self._items:
                raise unknown_name_error(self.field, self.kind, str(name), self._items)
            obj = self._items[name]
            if isinstance(obj, str) and ":" in obj:
                try:
                    obj = load_attr(obj)
                except ImportError as e:
                    raise ConfigError(self.field, f"{self.kind} {name!r} cannot be loaded: {e}",
                                      "install the extra it needs") from None
                self._items[name] = obj
            return obj  # type: ignore[return-value]

    def suggest(self, name: str) -> str | None:
        """The registered name closest to ``name``, if any."""
        self._scan()
        return did_you_mean(name, self._items)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._scan()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """``(name, component)`` for every entry, sorted, lazy entries loaded."""
        return [(n, self.get(n)) for n in self.names()]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._scan()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._scan()
        return len(self._items)

    def load_entry_points(self, group: str) -> None:
        """Register every installed package's entry point in ``group`` (broken ones -> ``broken``)."""
        from importlib.metadata import entry_points

        for ep in entry_points(group=group):
            try:
                self.register(ep.name, ep.load())
            except Exception as e:  # a broken plugin must not break the host
                self.broken[ep.name] = f"{type(e).__name__}: {e}"


def _describe(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


__all__ = ["Registry", "close_names", "did_you_mean", "unknown_name_error", "load_attr"]
