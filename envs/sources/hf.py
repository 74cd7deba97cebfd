"""`HFDatasetSource`: tasks from a Hugging Face ``datasets`` dataset (in memory or on local disk).

``datasets`` ships with the ``train`` extra only, so it is imported when a source is built, and
a missing install is a ``DependencyError`` naming the extra. Nothing is downloaded: a path must
exist locally (a ``save_to_disk`` folder, a data file, or a folder of data files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlvr.envs.sources.base import TaskSource
from rlvr.envs.task import Task
from rlvr.errors import ConfigError, DependencyError, InputError

_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow", ".txt": "text"}


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DependencyError("datasets", "train") from None
    return datasets


def load_local_dataset(path: str | Path, split: str = "train") -> Any:
    """A ``datasets.Dataset`` from a local path: a ``save_to_disk`` folder, a data file or a folder of them."""
    datasets = _import_datasets()
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such dataset path (rlvr reads local datasets only; save one with Dataset.save_to_disk)")
    if p.is_dir() and ((p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists() or (p / "state.json").exists()):
        ds = datasets.load_from_disk(str(p))
    elif p.is_file():
        builder = _FILE_BUILDERS.get(p.suffix.lower())
        if builder is None:
            raise InputError(f"{p}: unknown data file type {p.suffix!r} (use one of {', '.join(sorted(_FILE_BUILDERS))})")
        ds = datasets.load_dataset(builder, data_files=str(p), split="train")  # a single file is one split
    else:
        ds = datasets.load_dataset(str(p))
    return ds


class HFDatasetSource(TaskSource):
    """Tasks from a ``datasets.Dataset``/``DatasetDict`` object or a local dataset path.

    ``prompt_key``/``reference_key`` name the columns; other columns become metadata (or only
    ``metadata_keys``). Rows are read lazily by index, so a large dataset costs nothing up front.
    """

    def __init__(
        self,
        dataset: Any,
        split: str = "train",
        prompt_key: str = "prompt",
        reference_key: str = "answer",
        id_key: str | None = None,
        metadata_keys: tuple[str, ...] | None = None,
        name: str | None = None,
    ) -> None:
        datasets = _import_datasets()
        if isinstance(dataset, (str, Path)):
            name = name or Path(dataset).name
            dataset = load_local_dataset(dataset, split)
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise ConfigError("split", f"{split!r} is not a split of this dataset", f"choose from {sorted(dataset)}")
            dataset = dataset[split]
        if not isinstance(dataset, datasets.Dataset):
            raise ConfigError("dataset", f"expected a datasets.Dataset, DatasetDict or local path, got {type(dataset).__name__}")
        columns = list(dataset.column_names)
        for field, key in (("prompt_key", prompt_key), ("reference_key", reference_key)):
            if key not in columns:
                raise ConfigError(field, f"column {key!r} is not in the dataset", f"columns: {columns}")
        if len(dataset) == 0:
            raise ConfigError("dataset", "has no rows")
        self.dataset = dataset
        self.name = name or (dataset.info.dataset_name or "dataset")
        self._keys = dict(prompt_key=prompt_key, reference_key=reference_key, id_key=id_key, metadata_keys=metadata_keys)

    def __len__(self) -> int:
        return len(self.dataset)

    def get(self, index: int) -> Task:
        i = self._check_index(index)
        return Task.from_row(self.dataset[i], default_id=f"{self.name}:{i}", where=f"{self.name}[{i}]", **self._keys)


__all__ = ["HFDatasetSource", "load_local_dataset"]
