"""pass@k and the report's aggregates, against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlvr.errors import ConfigError
from rlvr.envs.evaluation import EpisodeRecord, build_report, k_values, mean_pass_at_k, pass_at_k
from rlvr.envs.evaluation.metrics import component_means, mean_and_std


def codex_reference(n: int, c: int, k: int) -> float:
    """The numerically stable estimator as printed in Chen et al. 2021, Figure 3."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2)
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (10, 7, 4, 1.0),  # only 3 wrong samples: every draw of 4 has a right one
        (8, 3, 1, 3 / 8),  # pass@1 is the success rate
    ],
)
def test_pass_at_k_matches_hand_computation(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_the_papers_product_form():
    for n in range(1, 30):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(codex_reference(n, c, k), abs=1e-12)


def test_pass_at_k_is_exact_for_large_n():
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)
    assert pass_at_k(500, 250, 100) == pytest.approx(codex_reference(500, 250, 100))
    assert 0.0 <= pass_at_k(2000, 3, 1000) <= 1.0 and not math.isnan(pass_at_k(2000, 3, 1000))


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (3, 4, 1), (3, 1, 0), (0, 0, 1)])
def test_pass_at_k_rejects_impossible_inputs(n, c, k):
    with pytest.raises(ConfigError):
        pass_at_k(n, c, k)


def test_mean_pass_at_k_averages_per_task_and_skips_short_tasks():
    groups = [[True, False, False, False], [True, True, False, False], [False]]
    assert mean_pass_at_k(groups, 2) == pytest.approx((0.5 + (1 - 1 / 6)) / 2)
    assert mean_pass_at_k(groups, 1) == pytest.approx((0.25 + 0.5 + 0.0) / 3)
    assert mean_pass_at_k(groups, 5) is None


def test_k_values_are_powers_of_two_and_k():
    assert k_values(1) == [1]
    assert k_values(8) == [1, 2, 4, 8]
    assert k_values(10) == [1, 2, 4, 8, 10]


def test_components_missing_from_an_episode_count_as_zero():
    assert component_means([{"a": 1.0}, {"a": 0.5, "b": 1.0}]) == {"a": 0.75, "b": 0.5}
    assert mean_and_std([1.0, 0.0]) == (0.5, 0.5) and mean_and_std([]) == (None, None)


def record(task, sample, success, status=None, reward=None):
    status = status or ("ok" if success else "wrong")
    return EpisodeRecord(task_index=task, sample=sample, task_id=f"t{task}", env_id="e", seed=task, messages=[],
                         reward=float(success) if reward is None else reward, components={"correct": float(success)},
                         success=success, status=status, turns=1, completion_tokens=3)


def test_report_leaves_unscored_episodes_out_of_rewards_and_pass_at_k():
    records = [record(0, 0, True), record(0, 1, False), record(0, 2, False, "policy_error"),
               record(1, 0, False), record(1, 1, False), record(1, 2, True)]
    report = build_report(records, env_id="e", policy="p", n_tasks=2, k=3, wall_s=1.0)
    assert report.episodes_done == 6 and report.episodes_scored == 5
    assert report.status_counts == {"wrong": 3, "ok": 2, "policy_error": 1}
    assert report.mean_reward == pytest.approx(2 / 5)
    # task 0 has 2 scored samples (1 right), task 1 has 3 (1 right)
    assert report.pass_at[1] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert report.pass_at[2] == pytest.approx((1.0 + pass_at_k(3, 1, 2)) / 2)
    assert report.pass_at[3] == pytest.approx(1.0)  # only task 1 has 3 samples
    assert report.completion_tokens == 18
    assert report.to_dict()["pass_at"]["pass@3"] == pytest.approx(1.0)
