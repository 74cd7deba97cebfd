"""RLVRTrainer on TRL's GRPOTrainer: every preset trains, and the pieces TRL lacks behave.

All runs use the tiny Qwen2 built in code (random weights, byte tokenizer) on CPU: G=4, two
prompts per step, completions of at most 8 tokens. A small EOS bias at sampling time makes
completions end at different lengths, so masks, padding and the aggregation rules are exercised.
"""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.train

datasets = pytest.importorskip("datasets")
pytest.importorskip("trl")

from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer import PRESETS, RLVRConfig, RLVRTrainer, preset, tiny_model, tiny_tokenizer  # noqa: E402
from rlvr.trainer.algorithms import policy_loss  # noqa: E402
from rlvr.trainer.trl.batching import concat_rows  # noqa: E402
from rlvr.trainer.trl.trainer import LOSS_MASK  # noqa: E402

G = 4


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def dataset():
    pairs = [(a, b) for a in range(5) for b in range(5)]
    return datasets.Dataset.from_dict(
        {"prompt": [f"{a}+{b}=" for a, b in pairs], "answer": [str(a + b) for a, b in pairs]}
    )


def dense_reward(prompts, completions, answer, **kwargs):
    """Right answer first (rarely, for a random model) plus a dense term so groups have variance."""
    return [len(set(c)) / 8 + (1.0 if c.startswith(a) else 0.0) for c, a in zip(completions, answer)]


def make_args(tok, tmp_path, algorithm="grpo", **kw):
    defaults = dict(
        output_dir=str(tmp_path), algorithm=algorithm, per_device_train_batch_size=2 * G, num_generations=G,
        max_completion_length=8, max_steps=3, learning_rate=1e-3, use_cpu=True, bf16=False,
        report_to="none", gradient_checkpointing=False, logging_steps=1, save_strategy="no",
        generation_kwargs={"sequence_bias": [[[tok.eos_token_id], 3.0]]}, seed=0,
    )
    defaults.update(kw)
    return RLVRConfig(**defaults)


def train_logs(trainer):
    trainer.train()
    return [h for h in trainer.state.log_history if "loss" in h and "train_loss" not in h]


def expected_metrics(cfg) -> set[str]:
    """The metric names a preset must log, read from its axes."""
    keys = {"algo/policy_loss", "algo/advantage_mean", "algo/zero_variance_frac", "entropy", "reward"}
    by_region = {"clip": "algo/clip_frac", "cispo": "algo/cispo_cap_frac", "dppo": "algo/dppo_mask_frac"}
    if cfg.trust_region in by_region:
        keys.add(by_region[cfg.trust_region])
    if cfg.uses_ratio:
        keys.add("algo/ratio_mean")
    if cfg.needs_ref and cfg.kl_placement == "loss":
        keys.add("algo/kl")
    if cfg.needs_ref and cfg.kl_placement == "reward":
        keys.add("algo/kl_in_reward_k1")
    if cfg.needs_value_model:
        keys |= {"value/value_loss", "value/value_mean", "value/grad_norm"}
    if cfg.zero_variance in ("drop", "refill"):
        keys.add("algo/dropped_groups_frac")
    if cfg.zero_variance == "refill":
        keys |= {"algo/refill_rounds", "algo/refill_short_groups"}
    if cfg.overlong_mask:
        keys.add("algo/overlong_masked_frac")
    if cfg.overlong_penalty:
        keys.add("algo/overlong_penalty_mean")
    return keys


# DAPO's paper-scale overlong limits (20480/4096) never bite at 8 tokens: shrink them.
PRESET_OVERRIDES = {"dapo": {"overlong_max_length": 8, "overlong_buffer": 4}}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_three_steps_with_its_metrics(name, tok, dataset, tmp_path):
    args = make_args(tok, tmp_path, name, algorithm_overrides=PRESET_OVERRIDES.get(name))
    model = tiny_model(tok)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = RLVRTrainer(model, reward_funcs=dense_reward, args=args, train_dataset=dataset, processing_class=tok)
    logs = train_logs(trainer)

    assert len(logs) == 3
    assert all(math.isfinite(h["loss"]) and math.isfinite(h["grad_norm"]) for h in logs)
    missing = expected_metrics(args.algorithm_config) - set(logs[-1])
    assert not missing, f"{name} did not log {sorted(missing)}"
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters())), "no parameter moved"


def test_reference_model_for_in_memory_policy_is_a_frozen_copy(tok, dataset, tmp_path):
    model = tiny_model(tok)
    trainer = RLVRTrainer(model, reward_funcs=dense_reward, args=make_args(tok, tmp_path, "grpo"),
                          train_dataset=dataset, processing_class=tok)
    ref = trainer.ref_model
    assert ref is not None and ref is not trainer.model
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), model.state_dict().values()))
    assert not any(p.requires_grad for p in ref.parameters())


def test_ppo_critic_trains_and_logs_a_finite_value_loss(tok, dataset, tmp_path):
    # two PPO epochs per batch: the second pass is off-policy, so the old-policy ratio moves
    args = make_args(tok, tmp_path, "ppo", num_iterations=2, log_completions=True)
    trainer = RLVRTrainer(tiny_model(tok), reward_funcs=dense_reward, args=args,
                          train_dataset=dataset, processing_class=tok)
    head = trainer.accelerator.unwrap_model(trainer.value_model).head
    assert torch.count_nonzero(head.weight) == 0  # zero-initialised: first values are exactly 0
    logs = train_logs(trainer)
    assert all(math.isfinite(h["value/value_loss"]) and h["value/value_loss"] >= 0 for h in logs)
    assert torch.count_nonzero(head.weight) > 0, "the critic never received an update"
    assert logs[0]["value/value_mean"] == 0.0
    assert any(h["algo/ratio_max"] != 1.0 for h in logs[1:]), "the second PPO epoch never left the old policy"


def hard_or_easy_reward(prompts, completions, **kwargs):
    """Constant 0 on 'hard' prompts (zero variance in every group), varied on the others."""
    return [0.0 if p.startswith("hard") else len(set(c)) / 8 for p, c in zip(prompts, completions)]


def group_rows(trainer, prompt):
    return [{"prompt": prompt} for _ in range(trainer.num_generations)]


def test_dynamic_sampling_refills_zero_variance_groups(tok, tmp_path):
    data = datasets.Dataset.from_dict({"prompt": ["hard 0"] + [f"easy {i}" for i in range(15)]})
    args = make_args(tok, tmp_path, "dapo", dynamic_sampling_max_rounds=8,
                     algorithm_overrides={"overlong_mask": False, "overlong_penalty": False})
    trainer = RLVRTrainer(tiny_model(tok), reward_funcs=hard_or_easy_reward, args=args, train_dataset=data,
                          processing_class=tok)
    trainer.model.train()
    batch = trainer._generate_and_score_completions(group_rows(trainer, "hard 0") * 2)  # both groups useless

    mask = batch[LOSS_MASK].view(2, -1)
    adv = batch["advantages"].view(2, -1)
    assert batch["completion_ids"].size(0) == 2 * G  # the batch keeps its size
    assert mask.any(dim=1).all(), "a group was left masked out although refills were available"
    assert (adv.abs().sum(dim=1) > 0).all(), "a zero-variance group survived the refill"
    assert trainer._metrics["train"]["algo/refill_rounds"][-1] > 1


def test_zero_variance_drop_masks_only_the_flat_groups(tok, tmp_path):
    data = datasets.Dataset.from_dict({"prompt": ["hard 0", "easy 0"]})
    trainer = RLVRTrainer(tiny_model(tok), reward_funcs=hard_or_easy_reward, args=make_args(tok, tmp_path, "scalerl"),
                          train_dataset=data, processing_class=tok)
    trainer.model.train()
    batch = trainer._generate_and_score_completions(group_rows(trainer, "hard 0") + group_rows(trainer, "easy 0"))
    mask = batch[LOSS_MASK]
    assert not mask[:G].any(), "the zero-variance group still reaches the loss"
    assert mask[G:].any(dim=1).all()
    assert trainer._metrics["train"]["algo/dropped_groups_frac"][-1] == 0.5


@pytest.mark.parametrize("name", ["maxrl", "grpo", "scalerl", "dr_grpo"])
def test_gradient_accumulation_sums_to_the_one_big_batch_loss(name, tok, dataset, tmp_path):
    """Two micro-batches of one optimiser step give exactly the loss and gradient of their union."""
    args = make_args(tok, tmp_path, name, per_device_train_batch_size=G, gradient_accumulation_steps=2)
    trainer = RLVRTrainer(tiny_model(tok), reward_funcs=dense_reward, args=args, train_dataset=dataset,
                          processing_class=tok)
    model = trainer.model
    model.train()
    generation_batch = next(iter(trainer.get_train_dataloader()))
    micro = []
    for step in range(2):
        trainer._step = step
        micro.append(trainer._prepare_inputs(generation_batch))

    model.zero_grad()
    accumulated = sum(trainer._compute_loss(model, mb) for mb in micro)
    accumulated.backward()
    grads_accumulated = [p.grad.clone() for p in model.parameters()]

    full = concat_rows(micro, tok.pad_token_id)
    ids = torch.cat([full["prompt_ids"], full["completion_ids"]], dim=1)
    attention = torch.cat([full["prompt_mask"], full["completion_mask"]], dim=1)
    model.zero_grad()
    logps, _, _ = trainer._get_per_token_logps_and_entropies(model, ids, attention, full["completion_ids"].size(1))
    cfg = args.algorithm_config
    reference, _ = policy_loss(
        logps, full["advantages"], full[LOSS_MASK], cfg, old_logp=full.get("old_per_token_logps"),
        ref_logp=full.get("ref_per_token_logps"), group_size=G, max_completion_length=args.max_completion_length,
    )
    reference.backward()
    assert accumulated.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-7)
    if not cfg.needs_ref:  # the logged policy loss (mean over micro-batches) is the step's loss too
        logged = trainer._metrics["train"]["algo/policy_loss"][-2:]
        assert sum(logged) / 2 == pytest.approx(reference.item(), rel=1e-5, abs=1e-7)
    for a, b in zip(grads_accumulated, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_reward_funcs_receive_dataset_columns_and_eval_runs(tok, dataset, tmp_path):
    seen = []

    def checking_reward(prompts, completions, answer, trainer_state, **kwargs):
        seen.append((list(prompts), list(answer)))
        return dense_reward(prompts, completions, answer)

    args = make_args(tok, tmp_path, "rloo", max_steps=1, per_device_eval_batch_size=2 * G)
    trainer = RLVRTrainer(tiny_model(tok), reward_funcs=checking_reward, args=args, train_dataset=dataset,
                          eval_dataset=dataset.select(range(2)), processing_class=tok)
    trainer.train()
    assert seen
    for prompts, answers in seen:
        assert len(prompts) == len(answers) == 2 * G
        for p, a in zip(prompts, answers):
            x, y = p.rstrip("=").split("+")
            assert a == str(int(x) + int(y))
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_loss"])


def test_rollout_func_logprobs_env_mask_and_extra_fields(tok, dataset, tmp_path):
    """A multi-turn style rollout_func: engine log-probs anchor DPPO, env tokens leave the loss."""
    ENGINE_SHIFT = 0.3
    env_ids = tok("<env>", add_special_tokens=False)["input_ids"]
    seen_turns = []

    def rollout(prompts, trainer):
        model = trainer.accelerator.unwrap_model(trainer.model)
        out = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": [], "turns": []}
        for prompt in prompts:
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            gen = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=3, do_sample=True, top_k=0, top_p=1.0, output_scores=True,
                                 return_dict_in_generate=True,
                                 eos_token_id=None, pad_token_id=tok.pad_token_id)
            new = gen.sequences[0, len(ids):].tolist()
            # an "engine" whose log-probs sit 0.3 below the trainer's: the ratio must show it
            logps = [torch.log_softmax(s[0].float(), -1)[t].item() - ENGINE_SHIFT for s, t in zip(gen.scores, new)]
            out["prompt_ids"].append(ids)
            out["completion_ids"].append(new + env_ids + [tok.eos_token_id])
            out["logprobs"].append(logps + [0.0] * (len(env_ids) + 1))
            out["env_mask"].append([1] * len(new) + [0] * (len(env_ids) + 1))
            out["turns"].append(2)
        return out

    def turn_reward(prompts, completions, turns, **kwargs):
        seen_turns.extend(turns)
        return dense_reward(prompts, completions, kwargs["answer"])

    args = make_args(tok, tmp_path, "dppo", max_steps=2)
    trainer = RLVRTrainer(tiny_model(tok), reward_funcs=turn_reward, args=args, train_dataset=dataset,
                          processing_class=tok, rollout_func=rollout)
    trainer.model.train()
    rows = [{"prompt": "1+2=", "answer": "3"} for _ in range(G)] + [{"prompt": "2+2=", "answer": "4"}] * G
    batch = trainer._generate_and_score_completions([dict(r) for r in rows])
    assert "sampling_per_token_logps" in batch  # kept as the rollout anchor
    env_cols = slice(3, 3 + len(env_ids))
    assert not batch[LOSS_MASK][:, env_cols].any(), "environment tokens reached the loss"
    assert batch[LOSS_MASK][:, :3].all()
    logs = train_logs(trainer)
    assert seen_turns and set(seen_turns) == {2}
    assert all(math.isfinite(h["loss"]) for h in logs) and "algo/dppo_mask_frac" in logs[-1]
    # on-policy, the ratio against the trainer's own log-probs would be 1: this is the engine anchor
    assert logs[0]["algo/ratio_mean"] == pytest.approx(math.exp(ENGINE_SHIFT), rel=0.02)


def test_fp32_lm_head_option_trains_a_bf16_model(tok, dataset, tmp_path):
    model = tiny_model(tok).to(torch.bfloat16)
    args = make_args(tok, tmp_path, "cispo", max_steps=1, cast_lm_head_to_fp32=True, bf16=True)
    trainer = RLVRTrainer(model, reward_funcs=dense_reward, args=args, train_dataset=dataset, processing_class=tok)
    assert trainer.model.lm_head.weight.dtype == torch.float32
    assert trainer.model.model.embed_tokens.weight.dtype == torch.bfloat16
    logs = train_logs(trainer)
    assert math.isfinite(logs[0]["loss"])


# ---------------------------------------------------------------- configuration errors

def test_unknown_preset_is_a_config_error_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'dapo'"):
        RLVRConfig(output_dir=str(tmp_path), algorithm="dapoo", use_cpu=True)


def test_trl_loss_knobs_are_refused_with_the_override_to_use(tmp_path):
    with pytest.raises(ConfigError) as err:
        RLVRConfig(output_dir=str(tmp_path), algorithm="grpo", epsilon_high=0.28, use_cpu=True)
    assert err.value.field == "epsilon_high" and "clip_eps_high" in str(err.value)
    with pytest.raises(ConfigError, match="loss_type"):
        RLVRConfig(output_dir=str(tmp_path), loss_type="grpo", use_cpu=True)


def test_algorithm_overrides_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="clip_eps_high"):
        RLVRConfig(output_dir=str(tmp_path), algorithm="dapo", algorithm_overrides={"clip_eps_hi": 0.3}, use_cpu=True)
    cfg = RLVRConfig(output_dir=str(tmp_path), algorithm="dapo", algorithm_overrides='{"clip_eps_high": 0.3}',
                     use_cpu=True)
    assert cfg.algorithm_config == preset("dapo", clip_eps_high=0.3)
    assert cfg.beta == 0.0


def test_prompt_mean_needs_whole_groups_per_micro_batch(tmp_path):
    with pytest.raises(ConfigError) as err:
        RLVRConfig(output_dir=str(tmp_path), algorithm="scalerl", per_device_train_batch_size=6,
                   num_generations=4, generation_batch_size=24, use_cpu=True)
    assert err.value.field == "per_device_train_batch_size"


def test_kl_presets_switch_on_trl_reference_logprobs(tmp_path):
    assert RLVRConfig(output_dir=str(tmp_path), algorithm="grpo", use_cpu=True).beta == pytest.approx(0.04)
    assert RLVRConfig(output_dir=str(tmp_path), algorithm="maxrl", use_cpu=True).beta == 0.0


# ---------------------------------------------------------------- tiny model and tokenizer

def test_tiny_tokenizer_round_trips_any_text_and_renders_chat(tok):
    text = "héllo ∑ 1+2=3 \n\t🙂"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    rendered = tok.apply_chat_template([{"role": "user", "content": "2+2?"}], tokenize=False,
                                       add_generation_prompt=True)
    assert rendered == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert len({tok.pad_token_id, tok.eos_token_id, tok.bos_token_id}) == 3
    assert tok.padding_side == "left"


def test_tiny_model_is_deterministic_and_matches_the_tokenizer(tok):
    a, b = tiny_model(tok), tiny_model(tok)
    assert a.config.vocab_size == len(tok)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
