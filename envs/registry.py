"""The rlvr environment registry: built-ins, entry-point plugins, listings and "did you mean".

Built-ins call :func:`register_env` (a thin layer over ``gymnasium.register``) at the bottom of
their own files. Third-party packages declare an entry point in the group ``rlvr.envs`` whose
*name* is the full environment id and whose *value* is ``module:attr``, a ``gymnasium.Env``
subclass or a factory returning one::

    [project.entry-points."rlvr.envs"]
    "acme/Riddle-v0" = "acme_riddle:RiddleEnv"

:func:`discover_plugins` (run on ``import rlvr.envs``) registers each with ``gymnasium.register``
behind a lazy loader, so ``gymnasium.make("acme/Riddle-v0")`` works without importing the
plugin by hand and a plugin is only imported when it is made or listed. A plugin whose entry
point is malformed, clashes with another id, or fails to import is recorded with the reason
(shown by ``rlvr envs list``) and never stops any other environment from working.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Callable, Mapping

import gymnasium as gym
from gymnasium.envs.registration import parse_env_id

from rlvr.errors import ConfigError, RlvrError
from rlvr.registry import did_you_mean

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "rlvr.envs"


class PluginError(RlvrError):
    """A plugin environment could not be loaded; the message names the package and the reason."""


@dataclass
class EnvRecord:
    """What rlvr knows about one environment id before it is built."""

    id: str
    origin: str  # "builtin" or "plugin"
    entry_point: str
    description: str = ""
    package: str = ""
    error: str = ""


@dataclass
class _Registry:
    records: dict[str, EnvRecord] = field(default_factory=dict)
    broken: dict[str, EnvRecord] = field(default_factory=dict)
    discovered: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)


_REG = _Registry()


@dataclass(frozen=True)
class _Scheme:
    env_id: str  # the registered id the scheme's ids are made as
    target: Callable[[str], Any]  # "scheme:REST" -> the value of the id's keyword (validates it)
    keyword: str
    origin: str
    package: str


#: ``scheme:TARGET`` ids (``openenv:URL``): scheme -> how such an id is made.
_SCHEMES: dict[str, _Scheme] = {}


def register_scheme(scheme: str, env_id: str, target: Callable[[str], Any], *, keyword: str = "url",
                    origin: str = "", package: str = "") -> None:
    """Let ``scheme:TARGET`` stand for ``make(env_id, **{keyword: target("scheme:TARGET")})`` wherever rlvr
    takes an environment id (Gymnasium's own ids cannot hold a URL: it splits them at ``:``)."""
    _SCHEMES[scheme] = _Scheme(env_id, target, keyword, origin or scheme, package)


def scheme_of(env_id: str) -> str | None:
    """The registered scheme ``env_id`` uses (``openenv`` for ``openenv:http://...``), or None."""
    head, sep, _ = env_id.partition(":") if isinstance(env_id, str) else ("", "", "")
    return head if sep and head in _SCHEMES else None


def expand_env_id(env_id: str, kwargs: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``(gymnasium id, kwargs)`` to make ``env_id`` with: a scheme id becomes its registered id plus
    the keyword it carries (ConfigError naming ``env_id`` when its target is malformed)."""
    kwargs = dict(kwargs or {})
    scheme = scheme_of(env_id)
    if scheme is None:
        return env_id, kwargs
    entry = _SCHEMES[scheme]
    if entry.keyword in kwargs:
        raise ConfigError(entry.keyword, f"{env_id!r} already says its {entry.keyword}", f"drop the {entry.keyword} argument")
    return entry.env_id, {**kwargs, entry.keyword: entry.target(env_id)}


def _entry_point_text(entry_point: Any) -> str:
    if isinstance(entry_point, str):
        return entry_point
    return f"{getattr(entry_point, '__module__', '?')}:{getattr(entry_point, '__qualname__', type(entry_point).__name__)}"


def register_env(
    id: str,
    entry_point: str | Callable[..., gym.Env],
    *,
    kwargs: dict[str, Any] | None = None,
    description: str = "",
    origin: str = "builtin",
    package: str = "",
    **spec: Any,
) -> None:
    """Register an environment with gymnasium and in rlvr's listing.

    ``origin`` says where it comes from in listings (``builtin``, or an adapter such as
    ``reasoning-gym``), ``package`` the distribution that provides it.

    The spec disables Gymnasium's passive checker and order-enforcing wrappers: ``TextEnv``
    enforces reset-before-step itself, and ``gymnasium.make`` then returns the environment
    object directly, so its async methods (``areset``/``astep``) are reachable.
    """
    parse_env_id(id)
    spec.setdefault("disable_env_checker", True)
    spec.setdefault("order_enforce", False)
    gym.register(id=id, entry_point=entry_point, kwargs=kwargs or {}, **spec)
    with _REG.lock:
        _REG.records[id] = EnvRecord(id=id, origin=origin, entry_point=_entry_point_text(entry_point), description=description, package=package)


class PluginLoader:
    """The gymnasium entry point of a plugin env: imports ``module:attr`` on first use.

    A class (not a closure) so that specs stay picklable for multiprocessing.
    """

    def __init__(self, env_id: str, value: str, package: str) -> None:
        self.env_id = env_id
        self.value = value
        self.package = package
        self.__name__ = self.__qualname__ = f"PluginLoader({value})"

    def load(self) -> Any:
        """The plugin's Env subclass or factory; ``PluginError`` with the reason when it fails."""
        ep = importlib_metadata.EntryPoint(name=self.env_id, value=self.value, group=ENTRY_POINT_GROUP)
        try:
            target = ep.load()
        except Exception as e:
            raise PluginError(f"plugin {self.env_id!r} ({self.value} from {self.package}) failed to import: {type(e).__name__}: {e}") from e
        if not callable(target):
            raise PluginError(f"plugin {self.env_id!r}: {self.value} is a {type(target).__name__}, not an Env class or factory")
        return target

    def __call__(self, **kwargs: Any) -> gym.Env:
        env = self.load()(**kwargs)
        if not isinstance(env, gym.Env):
            raise PluginError(f"plugin {self.env_id!r}: {self.value} returned {type(env).__name__}, not a gymnasium.Env")
        return env

    def __repr__(self) -> str:
        return f"PluginLoader({self.env_id!r}, {self.value!r})"


def discover_plugins(refresh: bool = False) -> None:
    """Register every ``rlvr.envs`` entry point with gymnasium (once per process unless ``refresh``)."""
    with _REG.lock:
        if _REG.discovered and not refresh:
            return
        _REG.discovered = True
        if refresh:
            for env_id in [i for i, r in _REG.records.items() if r.origin == "plugin"]:
                del _REG.records[env_id]
                gym.registry.pop(env_id, None)
            _REG.broken.clear()
        try:
            eps = importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as e:  # a corrupt installed distribution must not break built-ins
            log.warning("could not read entry points: %s", e)
            return
        for ep in eps:
            package = _package_of(ep)
            record = EnvRecord(id=ep.name, origin="plugin", entry_point=ep.value, package=package)
            problem = _plugin_problem(ep)
            if problem:
                record.error = problem
                # A clash must not shadow the working environment of the same id in listings.
                key = ep.name if ep.name not in _REG.records else f"{ep.name} [{package}]"
                record.id = key
                _REG.broken[key] = record
                log.warning("skipping plugin environment %s: %s", ep.name, problem)
                continue
            gym.register(
                id=ep.name,
                entry_point=PluginLoader(ep.name, ep.value, package),
                disable_env_checker=True,
                order_enforce=False,
            )
            _REG.records[ep.name] = record


def _package_of(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "an unknown package"
    try:
        return f"{dist.metadata['Name']} {dist.version}"
    except Exception:
        return "an unknown package"


def _plugin_problem(ep: Any) -> str:
    try:
        parse_env_id(ep.name)
    except Exception:
        return f"entry point name {ep.name!r} is not an environment id like 'acme/Riddle-v0'"
    if ":" not in ep.value:
        return f"entry point value {ep.value!r} is not 'module:attr'"
    if ep.name in _REG.records:
        other = _REG.records[ep.name]
        return f"id {ep.name!r} is already registered by {other.package or other.origin} ({other.entry_point})"
    if ep.name in gym.registry:
        return f"id {ep.name!r} is already registered with gymnasium"
    return ""


def env_ids(include_broken: bool = False) -> list[str]:
    """Every rlvr environment id (built-ins and plugins), sorted."""
    discover_plugins()
    with _REG.lock:
        ids = set(_REG.records)
        if include_broken:
            ids |= set(_REG.broken)
    return sorted(ids)


def env_record(env_id: str) -> EnvRecord:
    """The registry record of ``env_id`` (resolved with "did you mean")."""
    env_id = resolve_env_id(env_id)
    scheme = scheme_of(env_id)
    if scheme is not None:
        entry = _SCHEMES[scheme]
        return EnvRecord(id=env_id, origin=entry.origin, entry_point=entry.env_id, package=entry.package,
                         description=f"{scheme} environment at {entry.target(env_id)}")
    with _REG.lock:
        return _REG.records.get(env_id) or _REG.broken[env_id]


def broken_plugins() -> dict[str, str]:
    """Plugin entry points that could not be registered, ``{name: reason}``."""
    discover_plugins()
    with _REG.lock:
        return {k: v.error for k, v in _REG.broken.items()}


def resolve_env_id(env_id: str) -> str:
    """``env_id`` if rlvr knows it; otherwise ``ConfigError`` with a "did you mean" suggestion."""
    known = env_ids(include_broken=True)
    if env_id in known:
        return env_id
    if scheme_of(env_id) is not None:
        expand_env_id(env_id)  # a malformed target fails here, naming the fix
        return env_id
    near = suggest_env_id(env_id, known)
    hint = f"did you mean {near!r}?" if near else "run `rlvr envs list` to see every environment"
    raise ConfigError("env", f"unknown environment {env_id!r}", hint)


def suggest_env_id(env_id: str, known: list[str] | None = None) -> str | None:
    """The registered id closest to ``env_id``: same id up to case first, then same name at
    another version (``ux/Reverse-V0`` -> ``ux/Reverse-v0``, ``rlvr/Math-v1`` -> ``rlvr/Math-v0``),
    then the closest spelling. Over rlvr's registry, never a bare Gymnasium name."""
    known = env_ids(include_broken=True) if known is None else known
    folded = {k.lower(): k for k in known}
    if env_id.lower() in folded:
        return folded[env_id.lower()]
    base = _VERSION.sub("", env_id).lower()
    same_name = sorted((k for k in known if _VERSION.sub("", k).lower() == base), key=_version_of, reverse=True)
    if same_name:
        return same_name[0]
    return did_you_mean(env_id, known)


_VERSION = re.compile(r"-v\d+$", re.IGNORECASE)


def _version_of(env_id: str) -> int:
    m = _VERSION.search(env_id)
    return int(m.group(0)[2:]) if m else -1


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` after resolving ``env_id`` (a clear error with a suggestion if unknown)."""
    env_id = resolve_env_id(env_id)
    if scheme_of(env_id) is not None:
        gym_id, kwargs = expand_env_id(env_id, kwargs)
        return gym.make(gym_id, **kwargs)
    with _REG.lock:
        broken = None if env_id in _REG.records else _REG.broken.get(env_id)
    if broken is not None:
        raise PluginError(f"plugin {env_id!r} from {broken.package} is broken: {broken.error}")
    return gym.make(env_id, **kwargs)


__all__ = [
    "ENTRY_POINT_GROUP",
    "EnvRecord",
    "PluginError",
    "PluginLoader",
    "register_env",
    "register_scheme",
    "scheme_of",
    "expand_env_id",
    "discover_plugins",
    "env_ids",
    "env_record",
    "broken_plugins",
    "resolve_env_id",
    "suggest_env_id",
    "make",
]
