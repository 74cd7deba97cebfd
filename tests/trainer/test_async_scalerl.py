"""The ScaleRL recipe's run settings: FP32 LM head, retirement threshold, k; the progress bar under k >= 1."""

from __future__ import annotations

import io

import pytest
import torch

pytest.importorskip("trl")

from rlvr.trainer import RLVRTrainer, tiny_model, tiny_tokenizer  # noqa: E402
from rlvr.trainer.asynchronous.checks import resolve_off_policy_steps  # noqa: E402
from rlvr.trainer.rollout.retirement import resolve_retire_pass_rate  # noqa: E402
from rlvr.trainer.run.callbacks import ProgressCallback  # noqa: E402
from rlvr.trainer.run.config import config_from_dict  # noqa: E402
from rlvr.trainer.run.rundir import RunDir  # noqa: E402
from rlvr.trainer.run.train import _rl_args  # noqa: E402


def _cfg(tmp_path, preset: str, **model):
    return config_from_dict({
        "output_dir": str(tmp_path / "run"), "device": "cpu", "environments": [{"id": "rlvr/Arithmetic-v0"}],
        "algorithm": {"preset": preset}, "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64}, **model},
        "generation": {"num_generations": 2, "prompts_per_step": 2, "max_new_tokens": 4, "max_completion_length": 4},
        "optim": {"max_steps": 1},
    })


def test_scalerl_run_settings_default_to_the_paper_and_other_presets_keep_them_off(tmp_path):
    assert resolve_off_policy_steps(None, "scalerl") == 8 and resolve_off_policy_steps(None, "cispo") == 0
    assert resolve_retire_pass_rate(None, "scalerl") == 0.9 and resolve_retire_pass_rate(None, "cispo") is None
    rundir = RunDir(tmp_path / "run")
    assert _rl_args(_cfg(tmp_path, "scalerl"), rundir, "cpu", 1, torch.bfloat16).cast_lm_head_to_fp32
    # float32 weights have nothing to cast; other presets, or the field set to false, keep the head as is
    assert not _rl_args(_cfg(tmp_path, "scalerl"), rundir, "cpu", 1, torch.float32).cast_lm_head_to_fp32
    assert not _rl_args(_cfg(tmp_path, "cispo"), rundir, "cpu", 1, torch.bfloat16).cast_lm_head_to_fp32
    assert not _rl_args(_cfg(tmp_path, "scalerl", fp32_lm_head=False), rundir, "cpu", 1,
                        torch.bfloat16).cast_lm_head_to_fp32
    assert _rl_args(_cfg(tmp_path, "cispo", fp32_lm_head=True), rundir, "cpu", 1, torch.bfloat16).cast_lm_head_to_fp32


def test_scalerl_computes_a_bf16_models_head_logits_in_float32(tmp_path):
    from datasets import Dataset

    tok = tiny_tokenizer()
    data = Dataset.from_list([{"prompt": "1+2="}, {"prompt": "2+2="}])

    def reward(prompts, completions, **kwargs):
        return [float(len(c)) for c in completions]

    heads = {}
    for preset in ("cispo", "scalerl"):
        args = _rl_args(_cfg(tmp_path, preset), RunDir(tmp_path / preset), "cpu", 1, torch.bfloat16)
        model = tiny_model(tok).to(torch.bfloat16)
        trainer = RLVRTrainer(model, reward_funcs=reward, args=args, train_dataset=data, processing_class=tok)
        hidden = torch.randn(3, model.config.hidden_size, dtype=torch.bfloat16)
        heads[preset] = trainer.model.lm_head(hidden)
        assert trainer.model.model.embed_tokens(torch.tensor([1, 2])).dtype == torch.bfloat16  # the body stays bf16
    assert heads["cispo"].dtype == torch.bfloat16
    assert heads["scalerl"].dtype == torch.float32


class _State:
    is_world_process_zero = True
    global_step = 0


def test_progress_bar_shows_samples_per_second_and_staleness_when_asynchronous():
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    bar = ProgressCallback(10, console)
    bar.on_train_begin(None, _State(), None)
    bar.on_log(None, _State(), None, logs={"reward": 0.5})
    assert bar._describe() == "RL | reward 0.500"  # synchronous: no async metrics, nothing extra
    bar.on_log(None, _State(), None, logs={"reward": 0.25, "async/samples_per_s": 41.26, "async/staleness_mean": 1.5})
    assert bar._describe() == "RL | reward 0.250 | 41.3 samples/s | staleness 1.50"
    bar.on_train_end(None, _State(), None)
    assert "41.3 samples/s | staleness 1.50" in console.file.getvalue()


@pytest.mark.slow
def test_asynchronous_orders_replace_retired_tasks_k_plus_one_steps_after_their_retirement(tmp_path):
    """k = 2: step t's orders go out when step t-3 is done, so a task retired at step s is replaced from s + 3 on."""
    from rlvr.trainer.rollout.runner import make_env
    from rlvr.trainer.rollout.retirement import Retirement
    from rlvr.trainer.rollout.tasks import TaskKey, task_fingerprint, train_keys
    from rlvr.trainer.run.config import EnvConfig
    from rlvr.trainer.tiny import TinyModelConfig
    from rlvr.trainer.trl.async_rollouts import AsyncEnvRollouts, PushWeights
    from rlvr.trainer.trl.config import RLVRConfig
    from rlvr.trainer.trl.rollout_func import build_train_dataset, make_env_reward

    entries = [EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 2, "system_prompt": ""})]
    env = make_env(entries[0])

    def fingerprint(key: TaskKey) -> str:
        return task_fingerprint(*env.reset(seed=key.seed))

    keys = train_keys(entries, 10, seed=0)  # 5 steps x 2 prompts, in this order (no shuffle)
    seen: dict[int, list[str]] = {}
    rollouts = AsyncEnvRollouts(entries, max_new_tokens=4, max_completion_length=4, max_off_policy_steps=2,
                                generator_threads=1, sink=lambda step, eps, all_keys: seen.setdefault(step, all_keys))
    rollouts.retirement = Retirement(1.0, fingerprint, path=tmp_path / "retired.jsonl")
    for k in (keys[0], keys[6]):  # trained at steps 1 and 4; both retired "at step 0"
        rollouts.retirement.retired[fingerprint(k)] = 0
    tok = tiny_tokenizer()
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=256))
    args = RLVRConfig(output_dir=str(tmp_path), algorithm="scalerl", per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=4, max_steps=5, learning_rate=1e-3, use_cpu=True, report_to="none",
                      logging_steps=1, save_strategy="no", disable_tqdm=True, shuffle_dataset=False)
    trainer = RLVRTrainer(model, reward_funcs=[make_env_reward(rollouts)], args=args,
                          train_dataset=build_train_dataset(keys), processing_class=tok, rollout_func=rollouts,
                          callbacks=[PushWeights(rollouts)])
    try:
        trainer.train()
    finally:
        rollouts.close()
        env.close()
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert str(keys[0]) in seen[1]  # step 1's orders went out before anything could be retired
    assert str(keys[6]) not in seen[4] and str(keys[7]) in seen[4]
    [spare] = set(seen[4]) - {str(keys[7])}
    assert TaskKey.parse(spare).seed >= 1 << 39 and fingerprint(TaskKey.parse(spare)) != fingerprint(keys[6])
