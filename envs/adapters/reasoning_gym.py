"""reasoning-gym datasets as rlvr environments: ``reasoning_gym/<dataset>-v0`` (``pip install 'rlvr[reasoning-gym]'``).

    env = gymnasium.make("reasoning_gym/chain_sum-v0", seed=0, size=500, difficulty=2,
                         config={"min_terms": 3})

Each dataset is a single-turn environment: the dataset's question is the prompt, its answer the
reference. ``config`` goes to the dataset's own config class (``seed`` and ``size`` too);
``difficulty`` (1 = easiest), for the datasets that ship a curriculum, sets every curriculum
attribute to that level (the highest level where the attribute has fewer).

The ``correct`` component is the dataset's own ``score_answer`` on the text inside the
completion's last ``<answer>...</answer>`` — but run in rlvr's scoring pool, in worker processes
with a hard per-answer timeout (``score_timeout``) and a memory cap, because several of those
scorers ``eval`` or ``sympy``-parse the model's text. It is strict by default (1 only when the
scorer gives full marks); ``partial_credit=True`` passes reasoning-gym's fractional scores through.

Importing reasoning-gym takes about a second, so the dataset names are read once per installed
version and cached (``$XDG_CACHE_HOME/rlvr``); ``import rlvr.envs`` then registers every id
without importing reasoning-gym.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import threading
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Mapping

from rlvr.envs.core import DEFAULT_PROMPT
from rlvr.envs.registry import register_env
from rlvr.envs.rewards import Component
from rlvr.envs.single_turn import SingleTurnEnv, format_component
from rlvr.envs.sources.base import TaskSource
from rlvr.envs.task import Task
from rlvr.errors import ConfigError, DependencyError
from rlvr.validate import positive_int
from rlvr.verifiers.base import Verifier
from rlvr.verifiers.extract import answer_tag
from rlvr.verifiers.score import Score

log = logging.getLogger(__name__)

NAMESPACE = "reasoning_gym"
DIST = "reasoning-gym"
#: Registered by reasoning-gym but no dataset by themselves: ``composite`` mixes other datasets.
NOT_DATASETS = frozenset({"composite"})


def installed_version() -> str | None:
    """The installed reasoning-gym version, or None when it is not installed."""
    if importlib.util.find_spec("reasoning_gym") is None:
        return None
    try:
        return importlib_metadata.version(DIST)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _cache_file(version: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "rlvr" / f"reasoning_gym-{version}-datasets.json"


def dataset_names() -> dict[str, str]:
    """``{dataset name: one-line description}`` of every installed reasoning-gym dataset ({} without it)."""
    version = installed_version()
    if version is None:
        return {}
    cache = _cache_file(version)
    try:
        names = json.loads(cache.read_text())
        if isinstance(names, dict) and names:
            return {k: v for k, v in names.items() if k not in NOT_DATASETS}
    except (OSError, ValueError):
        pass
    factory = _factory()
    names = {name: _doc_line(cls) for name, (cls, _) in sorted(factory.DATASETS.items()) if name not in NOT_DATASETS}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(names))
        tmp.replace(cache)
    except OSError:  # a read-only home: list them again next time
        log.debug("could not cache reasoning-gym dataset names in %s", cache, exc_info=True)
    return names


def _doc_line(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else cls.__name__


def _factory() -> Any:
    try:
        import reasoning_gym  # noqa: F401  (registers every dataset)
        from reasoning_gym import factory
    except ImportError as e:
        raise DependencyError("reasoning-gym", "reasoning-gym") from e
    return factory


def build_config(name: str, config: Mapping[str, Any] | None, seed: int, size: int, difficulty: int | None) -> Any:
    """The dataset's validated config: ``config`` + seed/size, curriculum levels for ``difficulty``."""
    factory = _factory()
    if name not in factory.DATASETS:
        raise ConfigError("dataset", f"reasoning-gym has no dataset {name!r}", "see `rlvr envs list`")
    _, config_cls = factory.DATASETS[name]
    args = {**dict(config or {}), "seed": seed, "size": size}
    try:
        if difficulty is None:
            cfg = config_cls(**args)
        else:
            if name not in factory.CURRICULA:
                raise ConfigError("difficulty", f"reasoning-gym dataset {name!r} has no curriculum", "leave difficulty out and set its config")
            positive_int("difficulty", difficulty)
            curriculum = factory.create_curriculum(name)
            curriculum.set_global_level(difficulty - 1)
            cfg = curriculum.generate_configuration(args)
        if hasattr(cfg, "validate"):
            cfg.validate()
    except ConfigError:
        raise
    except (TypeError, ValueError, AssertionError) as e:
        raise ConfigError("config", f"reasoning-gym rejected the config of {name!r}: {type(e).__name__}: {e}", "see the dataset's config class") from None
    return cfg


def _quiet() -> Any:
    """Some generators print progress dots to stdout; an environment must not write into a CLI's JSON output."""
    return contextlib.redirect_stdout(io.StringIO())


class Entries:
    """One dataset instance and the entries it generated, kept per index.

    Several reasoning-gym generators are not a pure function of (seed, index) across calls or
    processes (they draw from global ``random`` state or iterate over sets of strings, whose order
    changes with each process's hash seed), so the entry a prompt came from is generated once here
    and that same entry is what the scorer sees.
    """

    MAX_KEPT = 20_000

    def __init__(self, name: str, config: Any) -> None:
        dataset_cls, _ = _factory().DATASETS[name]
        try:
            with _quiet():
                self.dataset = dataset_cls(config=config)
        except Exception as e:
            raise ConfigError("dataset", f"reasoning-gym could not build {name!r}: {type(e).__name__}: {e}") from None
        self._kept: dict[int, dict] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        with self._lock:
            entry = self._kept.get(index)
            if entry is None:
                with _quiet():
                    entry = self.dataset[index]
                if len(self._kept) >= self.MAX_KEPT:
                    self._kept.pop(next(iter(self._kept)))
                self._kept[index] = entry
            return entry


class ReasoningGymSource(TaskSource):
    """The entries of one reasoning-gym dataset as tasks (``get(i)`` is the dataset's ``[i]``)."""

    def __init__(self, name: str, entries: Entries) -> None:
        self.name = f"reasoning_gym/{name}"
        self.dataset_name = name
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, index: int) -> Task:
        index = self._check_index(index)
        entry = self.entries[index]
        meta: dict[str, Any] = {"dataset": self.dataset_name, "rg_index": index}
        rg_meta = entry.get("metadata")
        if isinstance(rg_meta, Mapping) and isinstance(rg_meta.get("difficulty"), Mapping):
            meta["difficulty"] = dict(rg_meta["difficulty"])
        return Task(prompt=str(entry["question"]), reference=entry.get("answer"), metadata=meta, id=f"{self.dataset_name}/{index}")

    def __repr__(self) -> str:
        return f"ReasoningGymSource({self.dataset_name!r}, size={len(self)})"


class ReasoningGymVerifier(Verifier):
    """A reasoning-gym dataset's ``score_answer``, run in the isolated scoring pool.

    The row's ``rg_index`` is looked up here, in the parent (see :class:`Entries`); the entry
    travels with the answer to a worker, which calls ``score_answer`` under the pool's hard timeout.
    """

    name = "reasoning_gym"
    isolated = True
    item_kwargs = ("rg_index",)
    preload_modules = ("reasoning_gym",)

    def __init__(self, dataset: str, config: Any, partial_credit: bool = False, timeout: float = 10.0) -> None:
        self.dataset = dataset
        self.config = config
        self.partial_credit = partial_credit
        self.timeout = float(timeout)

    def _fast_score(self, completion: str, reference: Any, **kw: Any) -> Score | None:
        if answer_tag(completion) is None:
            return Score.failed("no_answer", "no <answer>...</answer> block")
        return None

    @property
    def entries(self) -> Entries:
        """The parent-side dataset whose entries the environment poses."""
        entries = self.__dict__.get("_entries")
        if entries is None:
            entries = self.__dict__["_entries"] = Entries(self.dataset, self.config)
        return entries

    def _unpack(self, row: Any) -> Score | tuple[str, Any, dict]:
        unpacked = super()._unpack(row)
        if isinstance(unpacked, Score):
            return unpacked
        text, reference, kw = unpacked
        index = kw.pop("rg_index", None)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.entries):
            return Score.failed("error", f"the task has no valid reasoning-gym entry index (metadata 'rg_index' = {index!r})")
        kw["rg_entry"] = self.entries[index]
        return text, reference, kw

    def _score(self, completion: str, reference: Any, rg_entry: Any = None, **kw: Any) -> Score:
        answer = answer_tag(completion)
        if answer is None:
            return Score.failed("no_answer", "no <answer>...</answer> block")
        if not isinstance(rg_entry, Mapping):
            return Score.failed("error", "no reasoning-gym entry to score against")
        value = float(self._dataset().score_answer(answer=answer, entry=dict(rg_entry)))
        if not 0.0 <= value <= 1.0 or value != value:
            return Score.failed("error", f"reasoning-gym scored {value}, outside [0, 1]", parsed=answer[:200])
        if value >= 1.0:
            return Score.right(answer[:200], "score_answer = 1")
        reward = value if self.partial_credit else 0.0
        return Score(reward=reward, correct=False, status="wrong", parsed=answer[:200], detail=f"score_answer = {value:g}")

    def _dataset(self) -> Any:
        ds = self.__dict__.get("_rg_dataset")
        if ds is None:
            dataset_cls, _ = _factory().DATASETS[self.dataset]
            ds = self.__dict__["_rg_dataset"] = dataset_cls(config=self.config)
        return ds

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_rg_dataset", None)
        state.pop("_entries", None)
        return state


_VERIFIERS: dict[str, ReasoningGymVerifier] = {}
_VERIFIERS_LOCK = threading.Lock()


def shared_verifier(name: str, config: Any, partial_credit: bool, timeout: float) -> ReasoningGymVerifier:
    """One verifier (hence one worker pool) per dataset, config and options in a process."""
    key = json.dumps([name, repr(config), partial_credit, timeout])
    with _VERIFIERS_LOCK:
        v = _VERIFIERS.get(key)
        if v is None:
            v = _VERIFIERS[key] = ReasoningGymVerifier(name, config, partial_credit, timeout)
        return v


def close_verifiers() -> None:
    """Stop every reasoning-gym scoring pool of this process (they also stop at exit)."""
    with _VERIFIERS_LOCK:
        for v in _VERIFIERS.values():
            v.close()


class ReasoningGymEnv(SingleTurnEnv):
    """One reasoning-gym dataset as a single-turn environment (see the module docstring)."""

    def __init__(
        self,
        dataset: str,
        *,
        seed: int = 0,
        size: int = 1000,
        difficulty: int | None = None,
        config: Mapping[str, Any] | None = None,
        partial_credit: bool = False,
        score_timeout: float = 10.0,
        format_weight: float = 0.0,
        rewards: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        system_prompt: str | None = DEFAULT_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError("config", f"must be a mapping of the dataset's config fields, got {type(config).__name__}")
        if not isinstance(score_timeout, (int, float)) or isinstance(score_timeout, bool) or score_timeout <= 0:
            raise ConfigError("score_timeout", f"must be a positive number of seconds, got {score_timeout!r}")
        cfg = build_config(dataset, config, seed, size, difficulty)
        self.verifier = shared_verifier(dataset, cfg, bool(partial_credit), float(score_timeout))
        components = [
            Component("correct", 1.0, self.verifier, help=f"reasoning-gym {dataset} score_answer on the <answer> text (isolated, timed)"),
            format_component(format_weight),
        ]
        self.description = f"reasoning-gym {dataset}: {dataset_names().get(dataset, '')}".rstrip(": ")
        super().__init__(ReasoningGymSource(dataset, self.verifier.entries), components, rewards=rewards, reward_weights=reward_weights,
                         system_prompt=system_prompt, render_mode=render_mode)

    def solution(self, task: Task) -> str:
        return "" if task.reference is None else str(task.reference)


def make_env(dataset: str, **kwargs: Any) -> ReasoningGymEnv:
    """Gymnasium entry point of ``reasoning_gym/<dataset>-v0``."""
    return ReasoningGymEnv(dataset, **kwargs)


def register_all() -> int:
    """Register ``reasoning_gym/<name>-v0`` for every installed dataset; returns how many."""
    try:
        names = dataset_names()
    except Exception as e:  # a broken reasoning-gym install must not break rlvr's own environments
        log.warning("reasoning-gym is installed but its datasets could not be listed: %s", e)
        return 0
    version = installed_version() or ""
    for name, doc in names.items():
        register_env(f"{NAMESPACE}/{name}-v0", "rlvr.envs.adapters.reasoning_gym:make_env", kwargs={"dataset": name},
                     description=f"reasoning-gym {name}: {doc}".rstrip(": "), origin="reasoning-gym", package=f"{DIST} {version}")
    return len(names)


__all__ = ["ReasoningGymEnv", "ReasoningGymSource", "ReasoningGymVerifier", "dataset_names", "register_all", "close_verifiers", "make_env"]
