"""Rollout-batch bookkeeping behind dynamic sampling and grouped shuffles (torch only), and the
promise that ``import rlvr.trainer`` stays light."""

from __future__ import annotations

import subprocess
import sys

import torch

from rlvr.trainer.trl.batching import concat_rows, group_permutation, select_rows, shuffle_groups

PAD = 9


def _batch(prompt_lens, completion_lens, offset=0):
    p_width, c_width = max(prompt_lens), max(completion_lens)
    rows = len(prompt_lens)
    prompt_ids = torch.full((rows, p_width), PAD)
    prompt_mask = torch.zeros(rows, p_width, dtype=torch.long)
    completion_ids = torch.full((rows, c_width), PAD)
    completion_mask = torch.zeros(rows, c_width, dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompt_lens, completion_lens)):
        prompt_ids[i, p_width - p :] = offset + i
        prompt_mask[i, p_width - p :] = 1
        completion_ids[i, :c] = offset + i
        completion_mask[i, :c] = 1
    return {
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
        "completion_ids": completion_ids, "completion_mask": completion_mask,
        "advantages": torch.arange(rows, dtype=torch.float32) + offset,
        "num_items_in_batch": completion_mask.sum(),
    }


def test_concat_rows_repads_prompts_left_and_completions_right():
    a = _batch([2, 1], [1, 3])
    b = _batch([4, 3], [2, 5], offset=10)
    out = concat_rows([a, b], PAD)
    assert out["prompt_ids"].shape == (4, 4) and out["completion_ids"].shape == (4, 5)
    # prompts stay flush right (left padding), completions flush left
    assert out["prompt_ids"][0].tolist() == [PAD, PAD, 0, 0]
    assert out["prompt_mask"][0].tolist() == [0, 0, 1, 1]
    assert out["completion_ids"][1].tolist() == [1, 1, 1, PAD, PAD]
    assert out["completion_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert out["advantages"].tolist() == [0, 1, 10, 11]
    assert "num_items_in_batch" not in out  # per-round scalars are recomputed by the caller


def test_select_rows_keeps_scalars_and_lists():
    batch = {**_batch([1, 2, 3], [1, 1, 1]), "names": ["a", "b", "c"]}
    out = select_rows(batch, torch.tensor([2, 0]))
    assert out["names"] == ["c", "a"]
    assert out["advantages"].tolist() == [2, 0]
    assert out["num_items_in_batch"] is batch["num_items_in_batch"]


def test_group_permutation_moves_whole_groups():
    torch.manual_seed(0)
    perm = group_permutation(12, 4).view(3, 4)
    for row in perm:
        assert row.tolist() == list(range(int(row[0]), int(row[0]) + 4)) and int(row[0]) % 4 == 0
    assert sorted(perm[:, 0].tolist()) == [0, 4, 8]


def test_shuffle_groups_keeps_each_group_consecutive():
    torch.manual_seed(1)
    batch = _batch([1] * 8, [2] * 8)
    out = shuffle_groups(batch, 2)
    adv = out["advantages"].view(4, 2)
    assert torch.all(adv[:, 1] - adv[:, 0] == 1) and torch.all(adv[:, 0] % 2 == 0)


def test_importing_the_trainer_package_does_not_import_trl_or_transformers():
    code = (
        "import sys, rlvr.trainer as t; "
        "assert 'RLVRTrainer' in dir(t); "
        "print(sorted(m for m in ('trl', 'transformers', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
