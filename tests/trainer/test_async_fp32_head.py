"""The generator process's copy of the policy computes head logits in float32 when the trainer's does.

The trainer's head is cast by TRL itself (``cast_lm_head_to_fp32``, through ``RLVRTrainer``); the
generator rebuilds the model from shared tensors, so it must apply the same cast or its behaviour
log-probs come from bf16 logits while the trainer's come from float32 ones.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytestmark = pytest.mark.train

from rlvr.envs.generation import SamplingParams  # noqa: E402
from rlvr.trainer import RLVRTrainer, tiny_model, tiny_tokenizer  # noqa: E402
from rlvr.trainer.asynchronous.generator import GeneratorSpec, _build_model  # noqa: E402
from rlvr.trainer.asynchronous.weights import SharedWeights, WeightFollower  # noqa: E402
from rlvr.trainer.tiny import TinyModelConfig  # noqa: E402
from rlvr.trainer.trl.config import RLVRConfig  # noqa: E402


def _trainer_policy(tmp_path, tie: bool):
    """A bf16 tiny policy after TRL has cast its head to float32 (the way a scalerl run's trainer holds it)."""
    from datasets import Dataset

    tok = tiny_tokenizer()
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, tie_word_embeddings=tie))
    model = model.to(torch.bfloat16)
    args = RLVRConfig(output_dir=str(tmp_path), algorithm="cispo", per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=4, max_steps=1, use_cpu=True, bf16=True, report_to="none",
                      cast_lm_head_to_fp32=True, save_strategy="no", disable_tqdm=True)
    trainer = RLVRTrainer(model, reward_funcs=lambda prompts, completions, **kw: [0.0] * len(prompts), args=args,
                          train_dataset=Dataset.from_list([{"prompt": "1+2="}, {"prompt": "2+2="}]),
                          processing_class=tok)
    return tok, trainer.model


def _generator_model(tok, policy, fp32_lm_head: bool):
    ctx = torch.multiprocessing.get_context("spawn")
    weights = SharedWeights.from_model(policy, ctx)
    weights.publish(policy, 0)
    spec = GeneratorSpec(policy.config, None, tok, None, [], SamplingParams(max_new_tokens=4), max_new_tokens=4,
                         max_completion_length=4, max_turns=1, env_workers=1, max_batch=2, max_seq_len=32,
                         fp32_lm_head=fp32_lm_head)
    model = _build_model(spec, weights)
    WeightFollower(weights, model)  # pulls version 0 in
    return model


@pytest.mark.parametrize("tie", [False, True])
def test_generator_head_logits_are_float32_and_match_the_trainers(tmp_path, tie):
    tok, policy = _trainer_policy(tmp_path, tie)
    assert policy.lm_head.weight.dtype == torch.float32  # TRL's cast
    gen = _generator_model(tok, policy, fp32_lm_head=True)
    assert gen.model.embed_tokens.weight.dtype == (torch.float32 if tie else torch.bfloat16)
    assert next(gen.model.layers.parameters()).dtype == torch.bfloat16  # the body stays half precision
    assert torch.equal(gen.lm_head.weight, policy.lm_head.weight)  # the float32 head arrives unrounded
    ids = torch.tensor([[1, 5, 9, 3]])
    hidden = policy.model(ids).last_hidden_state
    assert hidden.dtype == torch.bfloat16  # a tied embedding still feeds the body bf16
    want = policy.lm_head(hidden)
    got = gen.lm_head(gen.model(ids).last_hidden_state)
    assert want.dtype == got.dtype == torch.float32
    assert torch.equal(got, want)  # same logits, so the same behaviour log-probs


def test_without_the_flag_the_generator_head_stays_half_precision(tmp_path):
    tok, policy = _trainer_policy(tmp_path, tie=False)
    gen = _generator_model(tok, policy, fp32_lm_head=False)
    hidden = gen.model(torch.tensor([[1, 5, 9]])).last_hidden_state
    assert gen.lm_head(hidden).dtype == torch.bfloat16  # what asynchronous scalerl runs did before the flag
