"""The rollout engine: greedy tokens equal model.generate, stops, refill, live weights, TRL glue."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlvr.errors import ConfigError, InputError  # noqa: E402
from rlvr.trainer.engine import RolloutEngine, SamplingParams  # noqa: E402
from rlvr.trainer.trl.sampling import sampling_params_from_trl  # noqa: E402

pytestmark = pytest.mark.train

VOCAB = 64
FAMILIES = {
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matmuls on a shared 2-core box are far faster single-threaded (no OpenMP spinning).
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def tiny(family: str = "qwen2", seed: int = 0, **overrides):
    config_cls, model_cls = (getattr(transformers, name) for name in FAMILIES[family])
    fields = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    fields.update(overrides)
    torch.manual_seed(seed)
    model = model_cls(config_cls(**fields)).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def char_tokenizer():
    """64 tokens: <pad>, <eos>, then 0-9 a-z A-Z, one token per character."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = [chr(c) for c in (*range(48, 58), *range(97, 123), *range(65, 91))]
    vocab = {"<pad>": 0, "<eos>": 1, **{ch: i + 2 for i, ch in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def prompts_of(lengths, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(2, VOCAB, (n,), generator=gen).tolist() for n in lengths]


def hf_greedy(model, prompt, new_tokens, **kw):
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=new_tokens, do_sample=False, **kw)
    return out[0, len(prompt):].tolist()


GREEDY = SamplingParams(max_new_tokens=12, temperature=0, ignore_eos=True)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_greedy_tokens_equal_model_generate_for_mixed_prompt_lengths(family):
    model = tiny(family)
    prompts = prompts_of([3, 9, 1, 14, 6])
    # 2 slots for 5 prompts: later prompts enter slots freed by earlier ones (refill path).
    engine = RolloutEngine(model, max_batch=2, max_seq_len=64)
    completions = engine.generate(prompts, GREEDY)
    assert [c.token_ids for c in completions] == [hf_greedy(model, p, 12) for p in prompts]
    # The same tokens as one left-padded model.generate batch (HF's own padding handling).
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = (ids != 0) | (torch.arange(width)[None, :] >= torch.tensor([width - len(p) for p in prompts])[:, None])
    batched = model.generate(ids, attention_mask=mask.long(), max_new_tokens=12, do_sample=False)[:, width:]
    assert [c.token_ids for c in completions] == batched.tolist()
    assert all(c.finish_reason == "length" and len(c.logprobs) == 12 for c in completions)


def test_greedy_stops_at_eos_exactly_where_model_generate_does():
    model = tiny()
    prompts = prompts_of([5, 8, 2, 11])
    free = [hf_greedy(model, p, 12) for p in prompts]
    engine = RolloutEngine(model, max_batch=4, max_seq_len=64)
    eos = free[0][4]  # a token greedy decoding reaches in the fifth step of the first prompt
    model.generation_config.eos_token_id = eos  # read at each request, like model.generate does
    completions = engine.generate(prompts, SamplingParams(max_new_tokens=12, temperature=0))
    for prompt, completion in zip(prompts, completions):
        reference = hf_greedy(model, prompt, 12, eos_token_id=eos, pad_token_id=0)
        if eos in reference:
            reference = reference[: reference.index(eos) + 1]
            assert completion.finish_reason == "stop" and completion.stop_reason == eos
        assert completion.token_ids == reference
    assert completions[0].token_ids[-1] == eos and len(completions[0].token_ids) <= 5


def test_stop_string_ends_completion_at_the_token_that_completes_it():
    tokenizer = char_tokenizer()
    model = tiny()
    engine = RolloutEngine(model, tokenizer, max_batch=2, max_seq_len=64)
    prompt = prompts_of([6])[0]
    free = engine.generate([prompt], GREEDY)[0]
    stop = free.text[5:7]
    first = free.text.index(stop)
    stopped = engine.generate([prompt], SamplingParams(max_new_tokens=12, temperature=0, ignore_eos=True,
                                                       stop=[stop]))[0]
    assert stopped.finish_reason == "stop" and stopped.stop_reason == stop
    assert stopped.text == free.text[: first + len(stop)]
    assert stopped.token_ids == free.token_ids[: len(stopped.token_ids)]
    assert len(stopped.logprobs) == len(stopped.token_ids)


def test_stop_token_ids_and_lengths_end_completions_with_the_right_reason():
    model = tiny()
    prompt = prompts_of([4])[0]
    free = hf_greedy(model, prompt, 12)
    engine = RolloutEngine(model, max_batch=2, max_seq_len=10)
    by_id, capped, one = engine.generate(
        [prompt, prompt, prompt],
        [SamplingParams(max_new_tokens=12, temperature=0, stop_token_ids=[free[2]]), GREEDY,
         SamplingParams(max_new_tokens=1, temperature=0)],
    )
    assert by_id.token_ids == free[: free.index(free[2]) + 1] and by_id.finish_reason == "stop"
    # max_seq_len 10 leaves room for 6 new tokens after a 4-token prompt.
    assert capped.token_ids == free[:6] and capped.finish_reason == "length"
    assert one.token_ids == free[:1] and one.finish_reason == "length"


def test_sampled_logprobs_are_the_models_temperature_scaled_logprobs():
    model = tiny()
    prompts = prompts_of([3, 7, 5])
    params = SamplingParams(max_new_tokens=10, temperature=0.7, top_k=8, top_p=0.9, ignore_eos=True)
    torch.manual_seed(3)
    completions = RolloutEngine(model, max_batch=2, max_seq_len=64).generate(prompts, params)
    for prompt, c in zip(prompts, completions):
        seq = torch.tensor([prompt + c.token_ids])
        with torch.no_grad():
            logits = model(seq).logits[0, len(prompt) - 1 : -1].float() / 0.7
        expected = logits.log_softmax(-1).gather(-1, torch.tensor(c.token_ids)[:, None])[:, 0]
        torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-5, rtol=1e-5)
        ranks = (logits > logits.gather(-1, torch.tensor(c.token_ids)[:, None])).sum(-1)
        assert int(ranks.max()) < 8  # every sampled token is inside the top-k


def test_processed_logprobs_are_under_the_truncated_distribution():
    model = tiny()
    prompt = prompts_of([5])[0]
    params = SamplingParams(max_new_tokens=8, temperature=1.0, top_k=3, ignore_eos=True, logprob_mode="processed")
    torch.manual_seed(0)
    c = RolloutEngine(model, max_batch=1, max_seq_len=64).generate([prompt], params)[0]
    with torch.no_grad():
        logits = model(torch.tensor([prompt + c.token_ids])).logits[0, len(prompt) - 1 : -1].float()
    top = logits.topk(3, dim=-1)
    truncated = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)
    expected = truncated.log_softmax(-1).gather(-1, torch.tensor(c.token_ids)[:, None])[:, 0]
    torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-5, rtol=1e-5)


def test_same_seed_gives_the_same_samples():
    model = tiny()
    engine = RolloutEngine(model, max_batch=4, max_seq_len=64)
    params = SamplingParams(max_new_tokens=10, temperature=1.0, ignore_eos=True)
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        runs.append([c.token_ids for c in engine.generate(prompts_of([4, 6, 2]), params)])
    assert runs[0] == runs[1]


def test_engine_follows_weights_the_optimiser_changes():
    model = tiny()
    engine = RolloutEngine(model, max_batch=2, max_seq_len=64)
    prompts = prompts_of([4, 7])
    before = [c.token_ids for c in engine.generate(prompts, GREEDY)]
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=5.0)
    loss = model(torch.tensor([prompts[0] + before[0]]), labels=torch.tensor([prompts[0] + before[0]])).loss
    (-loss).backward()  # push away from the current greedy continuation
    optimiser.step()
    after = [c.token_ids for c in engine.generate(prompts, GREEDY)]
    assert model.training  # generate restores the caller's mode
    model.eval()
    assert after == [hf_greedy(model, p, 12) for p in prompts]
    assert after != before
    # Weights replaced by new tensors are noticed too.
    with torch.no_grad():
        fresh = {k: v.clone() * 1.5 for k, v in model.state_dict().items()}
    model.load_state_dict(fresh, assign=True)
    assert [c.token_ids for c in engine.generate(prompts, GREEDY)] == [hf_greedy(model, p, 12) for p in prompts]


def test_follow_up_turns_join_while_other_requests_are_decoding():
    model = tiny()
    engine = RolloutEngine(model, max_batch=2, max_seq_len=128)
    first_turns = prompts_of([3, 10, 6])
    params = [SamplingParams(max_new_tokens=n, temperature=0, ignore_eos=True) for n in (4, 12, 8)]
    turn_of = {engine.submit(p, sp): (p, 1) for p, sp in zip(first_turns, params)}
    finished = {}
    for c in engine.run():
        prompt, turn = turn_of[c.index]
        finished[c.index] = (prompt, c)
        if turn == 1:  # the "environment" answers with two tokens; the episode continues
            follow_up = prompt + c.token_ids + [5, 6]
            turn_of[engine.submit(follow_up, SamplingParams(max_new_tokens=5, temperature=0, ignore_eos=True))] = (
                follow_up, 2)
    assert len(finished) == 6
    for prompt, c in finished.values():
        assert c.token_ids == hf_greedy(model, prompt, len(c.token_ids))


def test_bad_configuration_fails_before_any_work():
    with pytest.raises(ConfigError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(ConfigError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        SamplingParams(max_new_tokens=0)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=1, n_head=2))
    with pytest.raises(ConfigError, match="model_type"):
        RolloutEngine(gpt2)
    model = tiny()
    with pytest.raises(ConfigError, match="max_seq_len"):
        RolloutEngine(model, max_seq_len=10_000)
    engine = RolloutEngine(model, max_batch=2, max_seq_len=16)
    with pytest.raises(InputError, match="max_seq_len"):
        engine.generate([list(range(2, 20))], GREEDY)
    with pytest.raises(InputError, match="empty"):
        engine.generate([[]], GREEDY)
    with pytest.raises(InputError, match=r"\[0, 64\)"):
        engine.generate([[3, 99]], GREEDY)
    with pytest.raises(ConfigError, match="tokenizer"):
        engine.generate([[3, 4]], SamplingParams(stop=["x"]))
    assert model.config._attn_implementation == "sdpa"  # nothing left switched


def test_trl_generation_fields_become_sampling_params_and_unsupported_knobs_fail():
    args = SimpleNamespace(max_completion_length=6, temperature=0.9, top_p=1.0, top_k=0, min_p=None,
                           repetition_penalty=1.0, generation_kwargs=None)
    assert sampling_params_from_trl(args) == SamplingParams(max_new_tokens=6, temperature=0.9)
    with pytest.raises(ConfigError, match="min_p"):
        sampling_params_from_trl(SimpleNamespace(**{**vars(args), "min_p": 0.1}))
