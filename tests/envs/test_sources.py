"""Task sources: JSONL, Hugging Face datasets (in memory and on disk), lists, procedural, as_source."""

from __future__ import annotations

import json
import sys

import gymnasium
import numpy as np
import pytest

import rlvr.envs as E
from rlvr.envs import HFDatasetSource, JsonlSource, ListSource, ProceduralSource, Task, as_source
from rlvr.errors import ConfigError, DependencyError, InputError

ROWS = [
    {"id": "a", "prompt": "What is 1+1?", "answer": "2", "level": 1},
    {"id": "b", "prompt": [{"role": "user", "content": "What is 2+2?"}], "answer": "4", "metadata": {"topic": "sums"}},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_source_reads_prompts_references_ids_and_metadata(tmp_path):
    src = JsonlSource(write_jsonl(tmp_path / "t.jsonl", ROWS))
    assert len(src) == 2
    a, b = src.get(0), src.get(1)
    assert (a.id, a.prompt, a.reference, a.metadata) == ("a", "What is 1+1?", "2", {"level": 1})
    assert b.prompt[0]["content"] == "What is 2+2?" and b.metadata == {"topic": "sums"}


def test_jsonl_source_maps_custom_keys(tmp_path):
    path = write_jsonl(tmp_path / "gsm.jsonl", [{"question": "Q?", "final": "7"}])
    t = JsonlSource(path, prompt_key="question", reference_key="final").get(0)
    assert (t.prompt, t.reference, t.id) == ("Q?", "7", "gsm:1")


def test_jsonl_source_reports_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok", "answer": "1"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(InputError, match="bad.jsonl:2: not valid JSON"):
        JsonlSource(path)
    path.write_text('{"prompt": "ok"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="bad.jsonl:1: missing field 'answer'"):
        JsonlSource(path)
    with pytest.raises(InputError, match="no such task file"):
        JsonlSource(tmp_path / "missing.jsonl")


def test_hf_source_from_an_in_memory_dataset():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([{"problem": "1+1?", "solution": "2", "level": "easy"}, {"problem": "2+3?", "solution": "5", "level": "easy"}])
    src = HFDatasetSource(ds, prompt_key="problem", reference_key="solution")
    assert len(src) == 2
    assert src.get(1) == Task("2+3?", "5", {"level": "easy"}, src.get(1).id)
    with pytest.raises(ConfigError, match="prompt_key.*columns"):
        HFDatasetSource(ds)


def test_hf_source_from_a_local_save_to_disk_folder_and_a_data_file(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list([{"prompt": "p", "answer": "1"}]), "test": datasets.Dataset.from_list([{"prompt": "q", "answer": "2"}])})
    dd.save_to_disk(str(tmp_path / "saved"))
    assert HFDatasetSource(str(tmp_path / "saved"), split="test").get(0).prompt == "q"
    with pytest.raises(ConfigError, match="split"):
        HFDatasetSource(str(tmp_path / "saved"), split="validation")
    path = write_jsonl(tmp_path / "rows.json", [{"prompt": "r", "answer": "3"}])
    assert HFDatasetSource(str(path)).get(0).reference == "3"
    with pytest.raises(InputError, match="no such dataset path"):
        HFDatasetSource(str(tmp_path / "nowhere"))


def test_hf_source_without_datasets_installed_is_a_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DependencyError, match=r"rlvr\[train\]"):
        HFDatasetSource([{"prompt": "p", "answer": "1"}])


def test_list_source_and_as_source_accept_what_users_pass(tmp_path):
    assert isinstance(as_source(ROWS), ListSource)
    assert isinstance(as_source(str(write_jsonl(tmp_path / "x.jsonl", ROWS))), JsonlSource)
    assert isinstance(as_source("arithmetic", difficulty=2), ProceduralSource)
    with pytest.raises(ConfigError, match="neither a file nor a generator"):
        as_source("no-such-thing")
    with pytest.raises(ConfigError, match="empty"):
        ListSource([])


def test_sampling_with_a_seeded_rng_is_reproducible():
    src = ProceduralSource("arithmetic", seed=0)
    a = [src.sample(np.random.default_rng(5)).id for _ in range(3)]
    b = [src.sample(np.random.default_rng(5)).id for _ in range(3)]
    assert a == b


def test_out_of_range_index_is_a_config_error():
    with pytest.raises(ConfigError, match="out of range"):
        ListSource(ROWS).get(7)


def test_math_env_takes_any_math_task_source(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "What is $\\frac{1}{2}+\\frac{1}{4}$?", "solution": "\\frac{3}{4}"}])
    env = gymnasium.make("rlvr/Math-v0", tasks=str(path), prompt_key="problem", reference_key="solution")
    env.reset(seed=0)
    _, reward, _, _, info = env.step("<think>\nadd\n</think>\n<answer>\n0.75\n</answer>")
    assert info["success"] and reward == pytest.approx(1.1)
    env = gymnasium.make("rlvr/Math-v0", tasks="linear_equation")
    assert E.check(env, seeds=(0,)).ok
