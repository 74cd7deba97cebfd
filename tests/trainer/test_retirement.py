"""No-positive-resampling: the retirement rule, its replacements, its file and its config field."""

from __future__ import annotations

import json

import pytest

from rlvr.errors import ConfigError
from rlvr.trainer.rollout.retirement import SPARE_SEED_BASE, Retirement, resolve_retire_pass_rate
from rlvr.trainer.rollout.tasks import TaskKey


def small_space(key: TaskKey) -> str:
    """A task space of 7 problems: seeds that agree mod 7 pose the same task (like a small generator)."""
    return f"task{key.seed % 7}"


def key(seed: int, env: int = 0) -> str:
    return str(TaskKey(env, f"rlvr/E{env}-v0", seed))


def test_a_group_at_the_threshold_retires_its_task_and_one_below_does_not(tmp_path):
    r = Retirement(0.9, small_space, path=tmp_path / "retired.jsonl")
    keys = [key(1)] * 10 + [key(2)] * 10
    ok = [True] * 9 + [False] + [True] * 8 + [False] * 2  # 0.9 and 0.8
    assert r.observe(keys, ok, step=3) == [key(1)]
    rows = [json.loads(line) for line in (tmp_path / "retired.jsonl").read_text().splitlines()]
    assert rows == [{"step": 3, "key": key(1), "fingerprint": "task1", "pass_rate": 0.9}]
    assert r.observe([key(8)] * 4, [True] * 4, step=4) == []  # seed 8 poses task1: already retired
    assert r.metrics() == {"data/retired_tasks": 1.0}


def test_a_retired_task_is_replaced_from_the_next_step_on_by_an_unretired_task_of_the_same_env():
    r = Retirement(0.9, small_space, seed=0)
    r.observe([key(1)] * 4, [True] * 4, step=3)
    batch = [key(1)] * 4 + [key(8, env=1)] * 4 + [key(2)] * 4
    assert r.substitute(batch, step=3) == batch  # the step that retired it is already under way
    out = r.substitute(batch, step=4)
    assert out[8:] == batch[8:]  # unretired keys stay, in place
    for slot, original in ((0, key(1)), (4, key(8, env=1))):
        new = TaskKey.parse(out[slot])
        assert out[slot : slot + 4] == [out[slot]] * 4  # a group stays one task
        assert new.env == TaskKey.parse(original).env  # the mixture's weights are kept
        assert new.seed >= SPARE_SEED_BASE and small_space(new) != "task1"
    assert r.substitute(batch, step=4) == out  # deterministic: the same history gives the same keys


def test_replacement_is_a_pure_function_of_the_history_so_a_resumed_run_matches(tmp_path):
    path = tmp_path / "retired.jsonl"
    live = Retirement(0.9, small_space, path=path, seed=4)
    live.observe([key(1)] * 2, [True, True], step=2)
    live.observe([key(3)] * 2, [True, True], step=5)  # after the checkpoint at step 4: replayed on resume
    batch = [key(15)] * 2 + [key(10)] * 2  # task1 and task3
    expected_at_5 = live.substitute(batch, step=5)
    resumed = Retirement(0.9, small_space, path=path, seed=4)
    resumed.load(up_to_step=4)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [2]
    assert resumed.substitute(batch, step=5) == expected_at_5
    assert resumed.substitute(batch, step=5)[2:] == batch[2:]  # task3 was retired after the checkpoint


def test_lag_of_k_plus_one_steps_for_asynchronous_orders():
    r = Retirement(0.9, small_space, lag=3)  # k = 2: step t's orders go out when step t-3 is done
    r.observe([key(1)] * 2, [True, True], step=5)
    assert r.substitute([key(1)], step=7) == [key(1)]
    assert r.substitute([key(1)], step=8) != [key(1)]


def test_replacements_avoid_held_out_tasks():
    r = Retirement(0.5, small_space, exclude={"task0", "task2", "task4", "task5"})
    r.observe([key(1)] * 2, [True] * 2, step=1)
    replaced = {small_space(TaskKey.parse(r.substitute([key(s)], step=2)[0])) for s in (1, 8, 15, 22, 29)}
    assert replaced <= {"task3", "task6"} and replaced  # neither retired nor held out


def test_replacements_give_up_with_the_key_when_everything_is_solved(caplog):
    r = Retirement(0.5, small_space, exclude={"task0", "task2", "task4", "task5", "task6"})
    r.observe([key(1)] * 2 + [key(3)] * 2, [True] * 4, step=1)
    out = r.substitute([key(1)], step=2)
    assert out == [key(1)]  # every other task is held out or retired: the key is kept, with one warning
    assert "no unretired task" in caplog.text


def test_a_torn_last_line_is_ignored_on_load(tmp_path):
    path = tmp_path / "retired.jsonl"
    path.write_text(json.dumps({"step": 1, "key": key(1), "fingerprint": "task1", "pass_rate": 1.0}) + '\n{"step": 2, "ke')
    r = Retirement(0.9, small_space, path=path)
    r.load(up_to_step=10)
    assert r.retired == {"task1": 1}


def test_non_main_processes_read_but_never_write(tmp_path):
    path = tmp_path / "retired.jsonl"
    Retirement(0.9, small_space, path=path).observe([key(1)], [True], step=1)
    reader = Retirement(0.9, small_space, path=path, write=False)
    reader.load(up_to_step=0)  # would drop the row if it wrote
    reader.observe([key(2)], [True], step=1)
    assert len(path.read_text().splitlines()) == 1 and reader.retired == {"task2": 1}


def test_config_field_resolution():
    assert resolve_retire_pass_rate(None, "scalerl") == 0.9
    assert resolve_retire_pass_rate(None, "grpo") is None
    assert resolve_retire_pass_rate(0, "scalerl") is None
    assert resolve_retire_pass_rate(0.75, "grpo") == 0.75
    with pytest.raises(ConfigError, match="generation.retire_pass_rate"):
        resolve_retire_pass_rate(1.5, "grpo")
