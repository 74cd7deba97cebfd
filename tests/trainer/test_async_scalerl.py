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
