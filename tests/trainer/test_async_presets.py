"""Every preset trains asynchronously (k = 2) through one generator process; on-policy ones with a correction."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

from rlvr.trainer.algorithms import PRESETS  # noqa: E402
from rlvr.trainer.rollout.tasks import train_keys  # noqa: E402
from rlvr.trainer.run.config import EnvConfig  # noqa: E402
from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer  # noqa: E402

K = 2
ENTRIES = [EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 1, "system_prompt": ""})]
OFF_POLICY = sorted(n for n in PRESETS if PRESETS[n]().uses_ratio)
ON_POLICY = sorted(n for n in PRESETS if not PRESETS[n]().uses_ratio)


@pytest.fixture(scope="module")
def shared():
    """One generator process for the whole module (each trainer re-points it at its own policy)."""
    from rlvr.trainer.trl.async_rollouts import AsyncEnvRollouts

    tok = tiny_tokenizer()
    first = AsyncEnvRollouts(ENTRIES, max_new_tokens=4, max_completion_length=4, max_off_policy_steps=K)
    box = {"tok": tok, "first": first}
    yield box
    first.close()


def _train(shared, name, tmp_path, overrides=None):
    from rlvr.trainer.trl.async_rollouts import AsyncEnvRollouts, PushWeights
    from rlvr.trainer.trl.config import RLVRConfig
    from rlvr.trainer.trl.rollout_func import build_train_dataset, make_env_reward
    from rlvr.trainer.trl.trainer import RLVRTrainer

    tok = shared["tok"]
    first = shared["first"]
    rollouts = first if first.pipeline is None else AsyncEnvRollouts(
        ENTRIES, max_new_tokens=4, max_completion_length=4, max_off_policy_steps=K, pipeline=first.pipeline)
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=256))
    overrides = dict(overrides or {})
    if PRESETS[name]().overlong_penalty:
        overrides.update(overlong_max_length=4, overlong_buffer=1)
    args = RLVRConfig(output_dir=str(tmp_path), algorithm=name, algorithm_overrides=overrides or None,
                      per_device_train_batch_size=8, num_generations=4, max_completion_length=4, max_steps=3,
                      learning_rate=1e-2, weight_decay=0.5, use_cpu=True, bf16=False, report_to="none", logging_steps=1,
                      save_strategy="no", disable_tqdm=True)
    trainer = RLVRTrainer(model, reward_funcs=[make_env_reward(rollouts)], args=args,
                          train_dataset=build_train_dataset(train_keys(ENTRIES, 8, seed=0)), processing_class=tok,
                          rollout_func=rollouts, callbacks=[PushWeights(rollouts)])
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logs] == [1, 2, 3]
    for h in logs:
        assert math.isfinite(h["loss"])
        assert h["async/staleness_max"] <= K and h["async/max_off_policy_steps"] == K
        assert 0.0 <= h["async/trainer_idle_frac"] <= 1.0 and h["async/samples_per_s"] > 0
    return logs


@pytest.mark.parametrize("name", OFF_POLICY)
def test_every_ratio_preset_trains_three_asynchronous_steps(shared, name, tmp_path):
    logs = _train(shared, name, tmp_path)
    if name == "grpo":
        # samples from older weights (weight decay moves them even when every reward is 0): the ratio
        # is taken against the behaviour log-probs recorded at sampling time, so it moves off 1
        stale = [h for h in logs if h["async/staleness_max"] > 0]
        assert stale and any(abs(h["algo/ratio_max"] - 1.0) > 1e-6 for h in stale)


@pytest.mark.parametrize("name", ON_POLICY)
def test_on_policy_presets_train_asynchronously_with_a_rollout_correction(shared, name, tmp_path):
    _train(shared, name, tmp_path, {"rollout_correction": "tis"})
