"""Task sources: JSONL files, Hugging Face datasets, in-memory lists, procedural generators,
weighted mixtures and curricula — all behind the small :class:`TaskSource` interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlvr.envs.sources.base import ListSource, TaskSource
from rlvr.envs.sources.curriculum import Curriculum
from rlvr.envs.sources.hf import HFDatasetSource
from rlvr.envs.sources.jsonl import JsonlSource
from rlvr.envs.sources.mixture import Mixture
from rlvr.envs.sources.procedural import ProceduralSource
from rlvr.errors import ConfigError


def as_source(spec: Any, prompt_key: str = "prompt", reference_key: str = "answer", **options: Any) -> TaskSource:
    """Turn what a user passes as ``tasks=`` into a TaskSource.

    Accepts a TaskSource; a ``.jsonl`` path; another local dataset path (``datasets``); a
    registered generator name (``"arithmetic"``, with ``options`` as its config fields); a list
    of rows or Tasks; or an in-memory ``datasets.Dataset``/``DatasetDict``.
    """
    from rlvr.envs.generators.base import generator_names

    if isinstance(spec, TaskSource):
        return spec
    keys = {"prompt_key": prompt_key, "reference_key": reference_key}
    if isinstance(spec, (str, Path)):
        s = str(spec)
        if isinstance(spec, str) and s in generator_names():
            return ProceduralSource(s, **options)
        if s.lower().endswith(".jsonl"):
            return JsonlSource(s, **keys, **options)
        if Path(s).exists():
            return HFDatasetSource(s, **keys, **options)
        raise ConfigError("tasks", f"{s!r} is neither a file nor a generator name", f"give a .jsonl path, a dataset folder, or one of {generator_names()}")
    if isinstance(spec, (list, tuple)):
        return ListSource(list(spec), **keys, **options)
    if type(spec).__module__.split(".")[0] == "datasets":
        return HFDatasetSource(spec, **keys, **options)
    raise ConfigError("tasks", f"cannot make a task source from {type(spec).__name__}", "pass a TaskSource, a path, a generator name or a list of rows")


__all__ = [
    "TaskSource",
    "ListSource",
    "JsonlSource",
    "HFDatasetSource",
    "ProceduralSource",
    "Mixture",
    "Curriculum",
    "as_source",
]
