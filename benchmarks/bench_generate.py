"""Rollout generation: raw ``model.generate`` (dynamic cache) vs rlvr's RolloutEngine, one process.

Same random-init model (built from config, no download), same prompts, same sampling (temperature
1, no top-k/top-p, every row generates exactly ``--new-tokens``). Prints one JSON line with
tokens/s of each and the ratio. Defaults run a tiny model on the CPU in seconds; the GPU
case is::

    python benchmarks/bench_generate.py --shape qwen2-0.5b --batch 64 --prompt-len 64 \
        --new-tokens 256 --device cuda --dtype bf16 --hf-static --check-greedy --check-logprobs

``--check-greedy`` adds a JSON line comparing the engine's greedy tokens with ``model.generate``'s
(in the benchmark dtype and again in fp32 with TF32 off), with the logit gap at any divergence:
a divergence at a near-tie (gap at rounding level) is a rounding difference, not a bug.
``--check-logprobs`` adds a JSON line comparing the engine's sampled-token log-probs and
``rlvr.trainer.trl.logprobs.completion_logprobs`` (values and gradients) with full-logits references.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SHAPES = {
    "tiny": dict(vocab_size=2048, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096),
    # Qwen2-0.5B and Qwen2-1.5B shapes (config.json of the released checkpoints).
    "qwen2-0.5b": dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_theta=1000000.0, tie_word_embeddings=True),
    "qwen2-1.5b": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                       num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_theta=1000000.0, tie_word_embeddings=True),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def import_engine():
    """Import rlvr's engine, from an install or straight from the source tree (GPU machines)."""
    try:
        from rlvr.trainer.engine import RolloutEngine, SamplingParams
    except ImportError:
        # Source tree without `pip install -e .`: map the room folders into the `rlvr` package.
        import importlib.util
        import types

        spec = importlib.util.spec_from_file_location("rlvr", ROOT / "rlvr" / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / "rlvr")])
        rlvr = importlib.util.module_from_spec(spec)
        sys.modules["rlvr"] = rlvr
        spec.loader.exec_module(rlvr)
        trainer = types.ModuleType("rlvr.trainer")
        trainer.__path__ = [str(ROOT / "trainer")]
        sys.modules["rlvr.trainer"] = trainer
        from rlvr.trainer.engine import RolloutEngine, SamplingParams
    return RolloutEngine, SamplingParams


def build_model(shape: str, device: str, dtype: torch.dtype, seed: int):
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(**SHAPES[shape])
    with torch.device(device):
        model = transformers.Qwen2ForCausalLM(config)
    model = model.to(dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> tuple[float, float | None]:
    """Median wall time of ``fn`` over ``repeats`` runs after one warm-up; peak GPU GiB."""
    fn()
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return statistics.median(times), peak


def hf_generate(model, ids, new_tokens: int, greedy: bool, eos_token_id: int | None = None, **extra):
    """``model.generate`` continuations of ``ids``; without an EOS every row gets ``new_tokens``."""
    kwargs = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
    if eos_token_id is None:
        kwargs["min_new_tokens"] = new_tokens
    mask = torch.ones_like(ids)
    return model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, pad_token_id=0,
                          eos_token_id=eos_token_id, **kwargs, **extra)[:, ids.size(1):]


def greedy_check(model, engine, SamplingParams, prompts, new_tokens: int, label: str) -> dict:
    """Compare greedy tokens row by row; at a divergence, report HF's top-2 logit gap there."""
    ids = torch.tensor(prompts, device=model.device)
    with torch.no_grad():
        ref = hf_generate(model, ids, new_tokens, greedy=True).tolist()
    got = [c.token_ids for c in engine.generate(prompts, SamplingParams(max_new_tokens=new_tokens, temperature=0,
                                                                         ignore_eos=True))]
    equal = sum(r == g for r, g in zip(ref, got))
    gaps = []
    for prompt, r, g in zip(prompts, ref, got):
        if r == g:
            continue
        at = next(i for i, (a, b) in enumerate(zip(r, g)) if a != b)
        with torch.no_grad():
            logits = model(torch.tensor([prompt + r[:at]], device=model.device)).logits[0, -1].float()
        gaps.append({"step": at, "gap_to_engine_token": round(float(logits[r[at]] - logits[g[at]]), 6)})
    return {"check": f"greedy_{label}", "rows_equal": equal, "rows": len(prompts),
            "divergences": gaps[:16], "max_gap_at_divergence": max((d["gap_to_engine_token"] for d in gaps), default=0.0)}


def logprob_check(model, completions, prompts, device: str) -> dict:
    """Engine log-probs and chunked log-probs (values, grads) vs full-logits references."""
    rows = min(8, len(prompts))
    seqs = [prompts[i] + completions[i].token_ids for i in range(rows)]
    ids = torch.tensor(seqs, device=device)
    plen = len(prompts[0])
    with torch.no_grad():
        logits = model(ids).logits[:, plen - 1 : -1].float()
    targets = ids[:, plen:]
    ref = logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]
    engine_lp = torch.tensor([completions[i].logprobs for i in range(rows)], device=device)
    out = {"check": "logprobs", "engine_vs_forward_max_abs": float((engine_lp - ref).abs().max()),
           "engine_vs_forward_mean_abs": float((engine_lp - ref).abs().mean())}
    try:
        import trl.kernels  # noqa: F401  (the chunked LM-head kernel completion_logprobs runs on)
    except ImportError as exc:
        out["chunked"] = f"skipped: trl is not installed ({exc})"
        return out
    from rlvr.trainer.trl.logprobs import completion_logprobs
    del logits
    prompt_ids = ids[:, :plen]
    comp = ids[:, plen:]
    ones_p, ones_c = torch.ones_like(prompt_ids), torch.ones_like(comp)
    weight = model.get_output_embeddings().weight
    for fp32_head in (False, True):
        model.zero_grad(set_to_none=True)
        lp, _ = completion_logprobs(model, prompt_ids, ones_p, comp, ones_c, fp32_head=fp32_head)
        lp.sum().backward()
        grad = weight.grad.float().clone()
        model.zero_grad(set_to_none=True)
        full = model(ids).logits[:, plen - 1 : -1]
        full = full.float() if fp32_head else full
        naive = full.float().log_softmax(-1).gather(-1, targets[..., None])[..., 0]
        naive.sum().backward()
        ref_grad = weight.grad.float()
        tag = "fp32_head" if fp32_head else "model_dtype_head"
        out[f"chunked_{tag}_max_abs"] = float((lp.detach() - naive.detach()).abs().max())
        out[f"chunked_{tag}_grad_rel"] = float((grad - ref_grad).norm() / ref_grad.norm())
        model.zero_grad(set_to_none=True)
    return out


def engine_check(device: str, RolloutEngine, SamplingParams) -> dict:
    """The engine's behaviours on ``device`` with a tiny fp32 model (CUDA graphs on when CUDA).

    Greedy equality with per-prompt ``model.generate`` through slot refill, after an in-place
    optimiser step (graphs must read the live weights), after weights are replaced by new tensors
    (graphs must be re-captured), with an EOS stop; and top-k/top-p sampled log-probs against a
    teacher-forced forward.
    """
    model = build_model("tiny", device, torch.float32, seed=5)
    gen = torch.Generator().manual_seed(6)
    prompts = [torch.randint(3, 2048, (n,), generator=gen).tolist() for n in (3, 17, 1, 40, 9, 25, 6, 12)]
    greedy = SamplingParams(max_new_tokens=24, temperature=0, ignore_eos=True)
    engine = RolloutEngine(model, max_batch=3, max_seq_len=96, device=device)

    def equal_rows(params=greedy, **kw):
        got = [c.token_ids for c in engine.generate(prompts, params)]
        with torch.no_grad():
            ref = [hf_generate(model, torch.tensor([p], device=device), 24, greedy=True, **kw)[0].tolist()
                   for p in prompts]
        if "eos_token_id" in kw:
            ref = [r[: r.index(kw["eos_token_id"]) + 1] if kw["eos_token_id"] in r else r for r in ref]
        return sum(g == r for g, r in zip(got, ref))

    out = {"check": f"engine_{device}", "rows": len(prompts), "refill_greedy_equal": equal_rows()}
    captures = engine.stats["graph_captures"]
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=1.0)
    seq = torch.tensor([prompts[0] * 4], device=device)
    model(seq, labels=seq).loss.backward()
    optimiser.step()
    model.eval()
    out["after_inplace_update_equal"] = equal_rows()
    out["recaptured_after_inplace"] = engine.stats["graph_captures"] > captures
    with torch.no_grad():
        fresh = {k: v.clone() * 1.1 for k, v in model.state_dict().items()}
    model.load_state_dict(fresh, assign=True)
    captures = engine.stats["graph_captures"]
    out["after_replaced_weights_equal"] = equal_rows()
    out["recaptured_after_replace"] = engine.stats["graph_captures"] > captures
    eos = engine.generate(prompts[:1], greedy)[0].token_ids[5]
    model.generation_config.eos_token_id = eos
    out["eos_stop_equal"] = equal_rows(SamplingParams(max_new_tokens=24, temperature=0), eos_token_id=eos)
    model.generation_config.eos_token_id = None
    sampled = engine.generate(prompts, SamplingParams(max_new_tokens=24, temperature=0.8, top_k=20, top_p=0.9,
                                                      ignore_eos=True))
    worst = 0.0
    for prompt, c in zip(prompts, sampled):
        with torch.no_grad():
            logits = model(torch.tensor([prompt + c.token_ids], device=device)).logits[0, len(prompt) - 1 : -1]
        ref = (logits.float() / 0.8).log_softmax(-1).gather(-1, torch.tensor(c.token_ids, device=device)[:, None])
        worst = max(worst, float((ref[:, 0].cpu() - torch.tensor(c.logprobs)).abs().max()))
    out["sampled_logprob_max_abs"] = worst
    out["graphs"] = engine.cuda_graphs
    out["stats"] = dict(engine.stats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sync-every", type=int, default=None, help="engine steps between host syncs")
    parser.add_argument("--no-graphs", action="store_true", help="engine without CUDA graphs (ablation)")
    parser.add_argument("--hf-static", action="store_true", help="also time generate(cache_implementation='static')")
    parser.add_argument("--skip-hf", action="store_true", help="time only the engine")
    parser.add_argument("--check-greedy", action="store_true")
    parser.add_argument("--check-logprobs", action="store_true")
    parser.add_argument("--check-engine", action="store_true",
                        help="also check refill, live weights, EOS and sampled log-probs on --device (tiny fp32)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda but torch.cuda.is_available() is False")

    RolloutEngine, SamplingParams = import_engine()
    dtype = DTYPES[args.dtype]
    model = build_model(args.shape, args.device, dtype, args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    vocab = SHAPES[args.shape]["vocab_size"]
    prompts = torch.randint(0, vocab, (args.batch, args.prompt_len), generator=gen).tolist()
    ids = torch.tensor(prompts, device=args.device)
    max_seq_len = args.prompt_len + args.new_tokens
    engine = RolloutEngine(model, max_batch=args.batch, max_seq_len=max_seq_len, device=args.device,
                           cuda_graphs=False if args.no_graphs else None, sync_every=args.sync_every)
    params = SamplingParams(max_new_tokens=args.new_tokens, temperature=1.0, ignore_eos=True)
    tokens = args.batch * args.new_tokens

    result = {"bench": "generate", "shape": args.shape, "device": args.device, "dtype": args.dtype,
              "batch": args.batch, "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
              "torch": torch.__version__, "transformers": transformers.__version__}
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    completions = []

    def run_engine():
        completions[:] = engine.generate(prompts, params)

    engine_s, engine_mem = timed(run_engine, args.device, args.repeats)
    assert all(len(c.token_ids) == args.new_tokens for c in completions)
    result.update(engine_s=round(engine_s, 4), engine_tok_s=round(tokens / engine_s, 1), engine_peak_gib=engine_mem,
                  engine_graphs=engine.cuda_graphs, engine_stats=dict(engine.stats))
    if not args.skip_hf:
        with torch.no_grad():
            hf_s, hf_mem = timed(lambda: hf_generate(model, ids, args.new_tokens, greedy=False), args.device,
                                 args.repeats)
        result.update(hf_dynamic_s=round(hf_s, 4), hf_dynamic_tok_s=round(tokens / hf_s, 1), hf_peak_gib=hf_mem,
                      ratio=round(hf_s / engine_s, 2))
        if args.hf_static:
            try:
                with torch.no_grad():
                    st_s, _ = timed(lambda: hf_generate(model, ids, args.new_tokens, greedy=False,
                                                        cache_implementation="static"), args.device, args.repeats)
                result.update(hf_static_s=round(st_s, 4), hf_static_tok_s=round(tokens / st_s, 1),
                              ratio_vs_static=round(st_s / engine_s, 2))
            except Exception as exc:  # the peer's failure must not hide our numbers
                result["hf_static_error"] = repr(exc)[:300]

    def emit(line: dict) -> None:
        print(json.dumps(line), flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(line) + "\n")

    emit(result)
    if args.check_logprobs:
        emit(logprob_check(model, completions, prompts, args.device))
    if args.check_greedy:
        check_prompts = prompts[: min(args.batch, 16)]
        check_new = min(args.new_tokens, 64)
        emit(greedy_check(model, engine, SamplingParams, check_prompts, check_new, args.dtype))
        if dtype != torch.float32:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            engine.release()
            model.float()
            emit(greedy_check(model, engine, SamplingParams, check_prompts, check_new, "fp32"))
    if args.check_engine:
        emit(engine_check(args.device, RolloutEngine, SamplingParams))


if __name__ == "__main__":
    main()
