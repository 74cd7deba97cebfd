"""`rlvr train` works with every built-in environment and every algorithm preset."""

from __future__ import annotations

import math

import gymnasium
import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

import rlvr.envs  # noqa: E402,F401
from rlvr.trainer.algorithms import PRESETS  # noqa: E402
from rlvr.trainer.engine import SamplingParams  # noqa: E402
from rlvr.trainer.rollout.backends import make_backend  # noqa: E402
from rlvr.trainer.rollout.chat import ChatFormatter  # noqa: E402
from rlvr.trainer.rollout.runner import EnvRunner  # noqa: E402
from rlvr.trainer.run.config import EnvConfig  # noqa: E402
from rlvr.trainer.rollout.tasks import TaskKey, train_keys  # noqa: E402
from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer  # noqa: E402

BUILTINS = sorted(k for k in gymnasium.registry if k.startswith("rlvr/"))


@pytest.fixture(scope="module")
def policy():
    tok = tiny_tokenizer()
    return tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=2048)), tok


@pytest.mark.parametrize("env_id", BUILTINS)
def test_every_builtin_environment_plays_episodes_with_a_live_policy(env_id, policy):
    model, tok = policy
    runner = EnvRunner([EnvConfig(env_id)], ChatFormatter(tok), make_backend("auto", model, tok, max_batch=4, max_seq_len=2048),
                       max_new_tokens=8, max_completion_length=64, max_turns=3)
    episodes = runner.run([TaskKey(0, env_id, 1), TaskKey(0, env_id, 1)], SamplingParams(max_new_tokens=8))
    runner.close()
    for ep in episodes:
        assert ep.done and ep.error is None
        assert len(ep.completion_ids) == len(ep.env_mask) == len(ep.logprobs) <= 64
        assert ep.env_mask[0] == 1 and all(math.isfinite(x) for x in ep.logprobs)
        assert ep.status in {"ok", "wrong", "no_answer", "parse_error", "timeout", "error"}
    assert episodes[0].task_id == episodes[1].task_id  # a group shares its task


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_on_environment_rollouts(name, policy, tmp_path):
    from rlvr.trainer.trl.rollout_func import EnvRollouts, build_train_dataset, make_env_reward
    from rlvr.trainer.trl.config import RLVRConfig
    from rlvr.trainer.trl.trainer import RLVRTrainer

    _, tok = policy
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=256))
    entries = [EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 1, "system_prompt": ""})]
    rollouts = EnvRollouts(entries, max_new_tokens=4, max_completion_length=4)
    overrides = {"overlong_max_length": 4, "overlong_buffer": 1} if PRESETS[name]().overlong_penalty else None
    args = RLVRConfig(output_dir=str(tmp_path), algorithm=name, algorithm_overrides=overrides,
                      per_device_train_batch_size=8, num_generations=4, max_completion_length=4, max_steps=1,
                      learning_rate=1e-4, use_cpu=True, bf16=False, report_to="none", logging_steps=1,
                      save_strategy="no", disable_tqdm=True)
    trainer = RLVRTrainer(model, reward_funcs=[make_env_reward(rollouts)], args=args,
                          train_dataset=build_train_dataset(train_keys(entries, 8, seed=0)), processing_class=tok,
                          rollout_func=rollouts)
    trainer.train()
    rollouts.close()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and math.isfinite(logs[0]["loss"])
    assert "env/reward" in logs[0] and "env/component/correct" in logs[0]


def test_gdpo_normalises_each_named_component_of_the_environment(policy, tmp_path, monkeypatch):
    """GDPO gets one reward column per environment component (weighted like the env), not the sum."""
    import rlvr.trainer.trl.trainer as trl_trainer
    from rlvr.trainer.run.train import component_weights
    from rlvr.trainer.trl.config import RLVRConfig
    from rlvr.trainer.trl.rollout_func import EnvRollouts, build_train_dataset, make_component_rewards

    _, tok = policy
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=256))
    entries = [EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 1, "system_prompt": "",
                                                        "reward_weights": {"format": 0.5}})]
    comps = component_weights(entries)
    assert len(comps) >= 2 and comps["format"] == 0.5
    seen = []
    real = trl_trainer.compute_token_advantages

    def spy(rewards, mask, cfg, **kw):
        seen.append((tuple(rewards.shape), kw.get("weights")))
        return real(rewards, mask, cfg, **kw)

    monkeypatch.setattr(trl_trainer, "compute_token_advantages", spy)
    rollouts = EnvRollouts(entries, max_new_tokens=4, max_completion_length=4)
    args = RLVRConfig(output_dir=str(tmp_path), algorithm="gdpo", per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=4, max_steps=1, learning_rate=1e-4, use_cpu=True, bf16=False,
                      report_to="none", logging_steps=1, save_strategy="no", disable_tqdm=True,
                      reward_weights=list(comps.values()))
    trainer = trl_trainer.RLVRTrainer(model, reward_funcs=make_component_rewards(rollouts, list(comps)), args=args,
                                      train_dataset=build_train_dataset(train_keys(entries, 8, seed=0)),
                                      processing_class=tok, rollout_func=rollouts)
    trainer.train()
    rollouts.close()
    (shape, weights), = seen
    assert shape == (2, 4, len(comps)) and weights.tolist() == list(comps.values())
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and math.isfinite(logs[0]["loss"]) and "env/component/correct" in logs[0]
