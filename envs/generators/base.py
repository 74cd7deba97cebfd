"""Procedural task generators: one file per generator, a typed config with ``validate()``, a registry.

A generator turns a NumPy random generator into a :class:`Problem` (question, answer, metadata)
under its config; the config has a ``difficulty`` level (1 = easiest) plus generator-specific
knobs that default to values derived from the difficulty. A new generator is one file that
defines ``XConfig(GeneratorConfig)`` and ``XGenerator(TaskGenerator)`` and ends with
``register_generator(XGenerator)`` (and, to expose it as an environment, one ``register_env`` line).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping

import numpy as np

from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.registry import Registry, did_you_mean
from rlvr.verifiers import Verifier


@dataclass(frozen=True)
class GeneratorConfig:
    """Base of every generator config: the difficulty level (1 = easiest, up to ``max_difficulty``)."""

    difficulty: int = field(default=1, metadata={"help": "Difficulty level, 1 (easiest) to max_difficulty."})
    max_difficulty: ClassVar[int] = 10

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first bad field (subclasses extend this)."""
        d = self.difficulty
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 1 <= d <= self.max_difficulty:
            raise ConfigError("difficulty", f"must be an integer from 1 to {self.max_difficulty}, got {d!r}")

    def replace(self, **changes: Any) -> "GeneratorConfig":
        """A validated copy with some fields changed; unknown names raise ``ConfigError``."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise ConfigError(f"config.{name}", f"is not a field of {type(self).__name__}", f"fields: {sorted(known)}")
        new = replace(self, **changes)
        new.validate()
        return new

    def to_dict(self) -> dict[str, Any]:
        """Plain fields, for metadata and listings."""
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    """One generated problem: the question text, the reference answer, and extra metadata."""

    question: str
    answer: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)


class TaskGenerator(ABC):
    """Makes problems from a seeded RNG under a validated config.

    Subclasses set ``name``, ``config_class`` and a docstring (its first line is the description
    shown by ``rlvr envs list``), implement ``generate``, and say how answers are judged by
    overriding ``make_verifier`` (default: the ``math`` verifier) and ``solution`` (what a
    perfect response answers, for the reference check).
    """

    name: ClassVar[str]
    config_class: ClassVar[type[GeneratorConfig]] = GeneratorConfig

    def __init__(self, config: GeneratorConfig | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class()
        elif isinstance(config, Mapping):
            config = _build_config(self.config_class, dict(config))
        elif not isinstance(config, self.config_class):
            raise ConfigError("config", f"{self.name} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config.replace(**overrides) if overrides else config
        self.config.validate()

    @abstractmethod
    def generate(self, rng: np.random.Generator) -> Problem:
        """One problem drawn with ``rng`` under ``self.config`` (deterministic given the RNG state)."""

    def make_verifier(self) -> Verifier:
        """The verifier that judges answers to this generator's problems."""
        from rlvr.envs.scoring import shared_verifier

        return shared_verifier("math")

    def solution(self, task: Task) -> str:
        """What a perfect response puts in its answer for ``task`` (default: the reference)."""
        return str(task.reference)

    def with_config(self, **changes: Any) -> "TaskGenerator":
        """The same generator with some config fields changed (e.g. ``difficulty``)."""
        return type(self)(self.config.replace(**changes))

    @classmethod
    def description(cls) -> str:
        """First line of the class docstring."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def _build_config(cls: type[GeneratorConfig], data: dict[str, Any]) -> GeneratorConfig:
    known = {f.name for f in fields(cls)}
    for name in data:
        if name not in known:
            near = did_you_mean(name, known)
            hint = f"did you mean {near!r}?" if near else f"fields: {sorted(known)}"
            raise ConfigError(f"config.{name}", f"is not a field of {cls.__name__}", hint)
    for f in fields(cls):  # lists from YAML/JSON become the tuples the frozen configs hold
        if isinstance(data.get(f.name), list):
            data[f.name] = tuple(data[f.name])
    cfg = cls(**data)
    cfg.validate()
    return cfg


GENERATORS: Registry[type[TaskGenerator]] = Registry("generator", package="rlvr.envs.generators")


def register_generator(cls: type[TaskGenerator]) -> type[TaskGenerator]:
    """Make ``cls`` available as ``get_generator(cls.name)`` (usable as a class decorator)."""
    GENERATORS.register(cls.name, cls)
    return cls


def generator_names() -> list[str]:
    """Names of every registered generator, sorted."""
    return GENERATORS.names()


def generator_class(name: str) -> type[TaskGenerator]:
    """The generator class registered as ``name``; ``ConfigError`` with "did you mean" otherwise."""
    return GENERATORS.get(name)


def get_generator(name: str, config: GeneratorConfig | Mapping[str, Any] | None = None, **overrides: Any) -> TaskGenerator:
    """Build the generator registered as ``name`` with a config (object, mapping or keyword fields)."""
    return generator_class(name)(config, **overrides)


__all__ = [
    "GENERATORS",
    "GeneratorConfig",
    "Problem",
    "TaskGenerator",
    "register_generator",
    "get_generator",
    "generator_class",
    "generator_names",
]
