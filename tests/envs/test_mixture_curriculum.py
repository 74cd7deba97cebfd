"""Weighted mixtures of task sources and a curriculum driven by recent success."""

from __future__ import annotations

from collections import Counter

import gymnasium
import numpy as np
import pytest

from rlvr.envs import Curriculum, ListSource, Mixture, ProceduralSource
from rlvr.errors import ConfigError


def sources():
    return {
        "easy": ListSource([{"prompt": f"e{i}", "answer": "1"} for i in range(5)], name="easy"),
        "hard": ListSource([{"prompt": f"h{i}", "answer": "2"} for i in range(5)], name="hard"),
    }


def test_mixture_draws_in_proportion_to_weights_and_tags_the_source():
    mix = Mixture(sources(), weights={"easy": 3, "hard": 1})
    rng = np.random.default_rng(0)
    counts = Counter(mix.sample(rng).metadata["source"] for _ in range(4000))
    assert 0.70 < counts["easy"] / 4000 < 0.80


def test_mixture_get_is_deterministic_and_reweighting_takes_effect():
    mix = Mixture(sources(), weights=[1, 1], seed=3)
    assert [mix.get(i).id for i in range(10)] == [mix.get(i).id for i in range(10)]
    assert len({mix.get(i).metadata["source"] for i in range(10)}) == 2
    mix.set_weight("hard", 0)
    rng = np.random.default_rng(1)
    assert {mix.sample(rng).metadata["source"] for _ in range(200)} == {"easy"}
    with pytest.raises(ConfigError, match="positive weight"):
        mix.set_weight("easy", 0)
    assert mix.weights == {"easy": 1.0, "hard": 0.0}


def test_mixture_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="weights"):
        Mixture(sources(), weights={"easy": 1})
    with pytest.raises(ConfigError, match="weights.hard"):
        Mixture(sources(), weights={"easy": 1, "hard": -1})
    with pytest.raises(ConfigError, match="not a source"):
        Mixture(sources()).set_weight("medium", 1)


def test_mixture_forwards_episode_results_to_the_source_that_served_the_task():
    cur = Curriculum(ProceduralSource("arithmetic"), window=4, raise_at=0.75)
    mix = Mixture({"arith": cur, "easy": sources()["easy"]}, weights={"arith": 1, "easy": 0})
    for _ in range(4):
        mix.record(mix.sample(np.random.default_rng(0)), True)
    assert cur.level == 2


def test_curriculum_raises_the_level_after_a_window_of_successes_and_can_lower_it():
    cur = Curriculum(ProceduralSource("countdown"), window=10, raise_at=0.8, lower_at=0.2)
    rng = np.random.default_rng(0)
    for i in range(10):
        cur.record(cur.sample(rng), success=i < 7)  # 70%: stay
    assert cur.level == 1
    for _ in range(10):
        cur.record(cur.sample(rng), success=True)
    assert cur.level == 2
    assert cur.sample(rng).metadata["difficulty"] == 2
    for _ in range(10):
        cur.record(cur.sample(rng), success=False)
    assert cur.level == 1
    assert [h[1] for h in cur.history] == [2, 1]


def test_curriculum_ignores_results_of_tasks_served_before_a_level_change():
    cur = Curriculum(ProceduralSource("arithmetic"), window=2, raise_at=1.0)
    rng = np.random.default_rng(0)
    stale = [cur.sample(rng) for _ in range(5)]
    cur.record(stale[0], True)
    cur.record(stale[1], True)
    assert cur.level == 2
    for t in stale[2:]:
        cur.record(t, True)  # level-1 tasks finishing late must not push level 2 up
    assert cur.level == 2


def test_curriculum_over_a_list_of_sources_and_its_config_errors():
    cur = Curriculum([sources()["easy"], sources()["hard"]], window=1)
    rng = np.random.default_rng(0)
    cur.record(cur.sample(rng), True)
    assert cur.sample(rng).prompt.startswith("h")
    with pytest.raises(ConfigError, match="start"):
        Curriculum(ProceduralSource("arithmetic"), start=11)
    with pytest.raises(ConfigError, match="lower_at"):
        Curriculum(ProceduralSource("arithmetic"), raise_at=0.5, lower_at=0.6)


def test_env_with_curriculum_climbs_difficulty_as_the_model_succeeds():
    env = gymnasium.make("rlvr/Arithmetic-v0", curriculum={"window": 5, "raise_at": 0.8})
    difficulties = []
    for seed in range(30):
        _, info = env.reset(seed=seed)
        difficulties.append(info["task"]["metadata"]["difficulty"])
        env.step(env.reference_action())
    assert difficulties[0] == 1 and difficulties[-1] >= 5
    assert difficulties == sorted(difficulties)
