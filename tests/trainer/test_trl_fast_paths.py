"""RLVRTrainer's fast paths compute what the plain TRL paths compute, and switch on and off as documented.

* ``chunked_logprobs``: padding-free, length-bucketed log-prob forwards give TRL's loss and
  gradients (with and without gradient checkpointing), and each padded row's values equal a
  forward of that row alone.
* old log-probs get a forward only when the algorithm reads them.
* ``rollout_engine``: trains on CPU when asked, hands its log-probs to the loss as the rollout
  anchor, reads the live weights after optimiser steps, stays off on CPU by default, and refuses
  setups it cannot serve with a ConfigError naming the field.
* ``benchmarks/bench_grpo_step.py`` runs on CPU and prints parseable JSON lines.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.train

datasets = pytest.importorskip("datasets")
pytest.importorskip("trl")

from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer import RLVRConfig, RLVRTrainer, tiny_model, tiny_tokenizer  # noqa: E402
from rlvr.trainer.engine import SamplingParams  # noqa: E402
from rlvr.trainer.trl.trainer import LOSS_MASK  # noqa: E402

G = 4
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def dataset():
    pairs = [(a, b) for a in range(5) for b in range(5)]  # every prompt is 4 bytes: no prompt padding
    return datasets.Dataset.from_dict({"prompt": [f"{a}+{b}=" for a, b in pairs],
                                       "answer": [str(a + b) for a, b in pairs]})


def dense_reward(prompts, completions, **kwargs):
    return [len(set(c)) / 8 for c in completions]


def make_args(tok, tmp_path, algorithm="dapo", **kw):
    defaults = dict(
        output_dir=str(tmp_path), algorithm=algorithm, per_device_train_batch_size=2 * G, num_generations=G,
        max_completion_length=8, max_steps=2, learning_rate=1e-3, use_cpu=True, bf16=False, report_to="none",
        gradient_checkpointing=False, logging_steps=1, save_strategy="no", seed=0,
    )
    if algorithm == "dapo":
        defaults["algorithm_overrides"] = {"overlong_max_length": 8, "overlong_buffer": 4}
    defaults.update(kw)
    return RLVRConfig(**defaults)


def make_trainer(tok, dataset, tmp_path, algorithm="dapo", model=None, **kw):
    args = make_args(tok, tmp_path, algorithm, **kw)
    return RLVRTrainer(model if model is not None else tiny_model(tok), reward_funcs=dense_reward, args=args,
                       train_dataset=dataset, processing_class=tok)


def eos_biased(tok):
    """Sampling that ends completions at different lengths, so completions are right-padded."""
    return {"generation_kwargs": {"sequence_bias": [[[tok.eos_token_id], 3.0]]}}


def loss_and_grads(trainer, batch):
    model = trainer.model
    model.zero_grad(set_to_none=True)
    loss = trainer._compute_loss(model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


# ---------------------------------------------------------------- chunked_logprobs

@pytest.mark.parametrize("algorithm,checkpointing", [("grpo", False), ("dapo", True), ("cispo", False)])
def test_chunked_logprobs_give_the_plain_loss_and_gradients(algorithm, checkpointing, tok, dataset, tmp_path):
    trainer = make_trainer(tok, dataset, tmp_path, algorithm, gradient_checkpointing=checkpointing,
                           logprob_batch_tokens=40, **eos_biased(tok))  # 40 tokens: several length buckets
    trainer.model.train()
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert not batch["completion_mask"].all(), "the batch must contain right padding"

    fast_loss, fast_grads = loss_and_grads(trainer, batch)
    trainer.args.chunked_logprobs = False
    plain_loss, plain_grads = loss_and_grads(trainer, batch)

    assert fast_loss.item() == pytest.approx(plain_loss.item(), rel=1e-5, abs=1e-7)
    assert fast_grads.keys() == plain_grads.keys() and fast_grads
    for name, grad in fast_grads.items():
        torch.testing.assert_close(grad, plain_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    if trainer.ref_model is not None:  # reference log-probs go through the same path
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        width = batch["completion_ids"].size(1)
        with torch.no_grad():
            plain_ref = trainer._get_per_token_logps_and_entropies(trainer.ref_model, ids, mask, width)[0]
            trainer.args.chunked_logprobs = True
            fast_ref = trainer._get_per_token_logps_and_entropies(trainer.ref_model, ids, mask, width)[0]
        torch.testing.assert_close(fast_ref, plain_ref, rtol=1e-5, atol=1e-5)


def test_padded_rows_score_like_the_same_rows_alone(tok, dataset, tmp_path):
    trainer = make_trainer(tok, dataset, tmp_path, logprob_batch_tokens=24)
    pad = tok.pad_token_id
    prompts = [tok(p, add_special_tokens=False)["input_ids"] for p in ("12+7=", "3=", "100+200=")]
    completions = [tok(c, add_special_tokens=False)["input_ids"] for c in ("19", "3<|im_end|>", "300!")]
    width_p, width_c = max(map(len, prompts)), max(map(len, completions))
    prompt_ids = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompts])
    prompt_mask = torch.tensor([[0] * (width_p - len(p)) + [1] * len(p) for p in prompts])
    comp_ids = torch.tensor([c + [pad] * (width_c - len(c)) for c in completions])
    comp_mask = torch.tensor([[1] * len(c) + [0] * (width_c - len(c)) for c in completions])
    ids, mask = torch.cat([prompt_ids, comp_ids], 1), torch.cat([prompt_mask, comp_mask], 1)
    with torch.no_grad():
        logps, ents, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, width_c,
                                                                    compute_entropy=True)
        trainer.args.chunked_logprobs = False  # the plain path on a row without any padding is the reference
        for b, (p, c) in enumerate(zip(prompts, completions)):
            alone = torch.tensor([p + c])
            ref, ref_ent, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, alone, torch.ones_like(alone), len(c), compute_entropy=True)
            torch.testing.assert_close(logps[b, : len(c)], ref[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ents[b, : len(c)], ref_ent[0], rtol=1e-5, atol=1e-5)
            assert torch.all(logps[b, len(c):] == 0) and torch.all(ents[b, len(c):] == 0)


# ---------------------------------------------------------------- old log-probs

@pytest.mark.parametrize("algorithm,engine,expect_old", [
    ("grpo", False, True),        # PPO ratio against the old policy
    ("reinforce", False, False),  # no ratio: nobody reads old log-probs
    ("dppo", False, True),        # rollout anchor, and TRL's generate returns no log-probs: old stands in
    ("dppo", True, False),        # the engine's log-probs are the anchor
])
def test_old_logprob_forward_runs_only_when_something_reads_it(algorithm, engine, expect_old, tok, dataset,
                                                               tmp_path):
    # two PPO epochs per generation batch: samples outlive an optimiser step, so TRL would always compute them
    trainer = make_trainer(tok, dataset, tmp_path, algorithm, num_iterations=2, rollout_engine=engine)
    trainer.model.train()
    batch = trainer._generate_and_score_completions([{"prompt": "1+2="}] * G + [{"prompt": "2+2="}] * G)
    assert ("old_per_token_logps" in batch) == expect_old
    assert ("sampling_per_token_logps" in batch) == engine


# ---------------------------------------------------------------- rollout engine

def test_rollout_engine_trains_and_always_reads_the_live_weights(tok, dataset, tmp_path):
    model = tiny_model(tok)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = make_trainer(tok, dataset, tmp_path, "dppo", model=model, rollout_engine=True, max_steps=2)
    trainer.model.train()
    rows = [{"prompt": "1+2="}] * G + [{"prompt": "2+2="}] * G
    batch = trainer._generate_and_score_completions(rows)
    # the engine's log-probs (fp32 on CPU) are the trainer's own, up to rounding
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        mine = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, batch["completion_ids"].size(1))[0]
    valid = batch[LOSS_MASK].bool()
    torch.testing.assert_close(batch["sampling_per_token_logps"][valid], mine[valid], rtol=1e-4, atol=1e-4)

    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h and "train_loss" not in h]
    assert len(logs) == 2 and all(math.isfinite(h["loss"]) for h in logs)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters())), "no parameter moved"
    engine = trainer._engine.engine
    assert engine is not None and engine.model is model
    prompt = tok("3+4=", add_special_tokens=False)["input_ids"]
    greedy = engine.generate([prompt], SamplingParams(max_new_tokens=8, temperature=0, ignore_eos=True))[0]
    model.eval()
    with torch.no_grad():
        ref = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert greedy.token_ids == ref[0, len(prompt):].tolist()


def test_rollout_engine_stays_off_on_cpu_unless_asked(tok, dataset, tmp_path):
    assert make_trainer(tok, dataset, tmp_path)._engine is None
    assert make_trainer(tok, dataset, tmp_path, rollout_engine=True)._engine is not None


def test_rollout_engine_refuses_what_it_cannot_serve(tok, dataset, tmp_path):
    with pytest.raises(ConfigError) as err:
        make_args(tok, tmp_path, rollout_engine=True, **eos_biased(tok))
    assert err.value.field == "generation_kwargs"
    with pytest.raises(ConfigError) as err:
        make_args(tok, tmp_path, rollout_engine=True, repetition_penalty=1.1)
    assert err.value.field == "repetition_penalty"
    with pytest.raises(ConfigError) as err:
        make_args(tok, tmp_path, rollout_engine_slots=0)
    assert err.value.field == "rollout_engine_slots"

    def rollout(prompts, trainer):
        raise AssertionError("never called")

    args = make_args(tok, tmp_path, rollout_engine=True)
    with pytest.raises(ConfigError, match="rollout_func") as err:
        RLVRTrainer(tiny_model(tok), reward_funcs=dense_reward, args=args, train_dataset=dataset,
                    processing_class=tok, rollout_func=rollout)
    assert err.value.field == "rollout_engine"
    # left automatic, the same setups quietly keep TRL's generation
    auto = make_args(tok, tmp_path, **eos_biased(tok))
    assert auto.rollout_engine is None


# ---------------------------------------------------------------- benchmark

@pytest.mark.slow
def test_grpo_step_benchmark_runs_on_cpu_and_prints_json_lines(tmp_path):
    out = tmp_path / "lines.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_grpo_step.py"), "--steps", "2", "--warmup", "0",
         "--completion-len", "8", "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{\"bench\"")]
    assert [line.get("config") for line in lines[:-1]] == ["ours", "trl_best", "stock"]
    for line in lines[:-1]:
        assert "error" not in line, line.get("traceback")
        assert len(line["steps_s"]) == 2 and line["median_step_s"] > 0 and line["completion_tok_s"] > 0
        assert line["completion_len_min_max"] == [8, 8]  # every completion generated to full length
    assert lines[-1]["bench"] == "grpo_step_summary" and lines[-1]["ours_speedup_vs_stock"] > 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines
