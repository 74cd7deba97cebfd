"""One GRPO training step: stock TRL ``GRPOTrainer`` vs TRL's best non-vLLM setting vs ``RLVRTrainer``.

All configurations run in this one process on the same random-init Qwen2 shape (built from
config, no download), the same prompts and the same settings: ``--prompts`` prompts x
``--generations`` completions per step, prompts of exactly ``--prompt-len`` tokens, completions
of exactly ``--completion-len`` tokens (the tokenizer's EOS id lies outside the model's
vocabulary, so no side can stop early and neither pays for EOS suppression), temperature 1,
beta 0, DAPO loss (TRL ``loss_type="dapo"``; rlvr preset ``dapo`` with its overlong filters and
dynamic sampling off, which makes it TRL's loss), one optimiser step per generation batch, TRL's
defaults otherwise (gradient checkpointing on, AdamW, lr 1e-6), no vLLM.

Configurations (``--configs``, run in the order given):

* ``stock``: ``GRPOTrainer`` as shipped: model weights in float32 (what building from config
  gives), ``bf16=True`` autocast, ``model.generate`` with the dynamic cache.
* ``trl_best``: TRL's fastest non-vLLM setting we found on an H100: ``cache_implementation="static"``,
  which needs the weights loaded in bf16 (it crashes with float32 weights under bf16 autocast).
* ``ours``: ``RLVRTrainer`` with its defaults on a GPU (rollout engine, padding-free chunked
  log-probs), weights in bf16 like ``trl_best``.
* ``ours_fp32``: ``RLVRTrainer`` at stock's precision (float32 weights, bf16 autocast).

Each configuration prints one JSON line as soon as it is measured: median step time over
``--steps`` steps after ``--warmup`` untimed ones, completion tokens/s, the median time spent in
generation, peak GPU memory (``torch.cuda.max_memory_allocated`` over the run); then one
``summary`` line with our ratios against ``stock`` and ``trl_best``. The defaults run a tiny
model on the CPU in seconds (CI runs it); the GPU cases::

    python benchmarks/bench_grpo_step.py --shape qwen2-0.5b --device cuda   # 256-token completions
    python benchmarks/bench_grpo_step.py --shape qwen2-1.5b --device cuda   # 512-token completions
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SHAPES: dict[str, dict[str, Any]] = {
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
# shape -> (prompts per step, generations per prompt, prompt tokens, completion tokens)
WORKLOADS = {"tiny": (2, 4, 16, 16), "qwen2-0.5b": (8, 8, 64, 256), "qwen2-1.5b": (8, 8, 64, 512)}
CONFIGS = ("stock", "trl_best", "ours", "ours_fp32")
# The peers' step times measured on an H100 (stock TRL, TRL's best setting), for the summary line.
ISSUE_ANCHORS = {"qwen2-0.5b": {"stock_s": 11.0, "trl_best_s": 7.8}, "qwen2-1.5b": {"stock_s": 20.2}}
# The speed-ups "ours" is expected to reach there (completion tokens/s ratios; 0.5B also at lower peak memory).
ISSUE_TARGETS = {"qwen2-0.5b": {"speedup_vs_stock": 5.0, "speedup_vs_trl_best": 3.5, "max_step_s": 2.2},
                 "qwen2-1.5b": {"speedup_vs_stock": 3.0}}


def import_rlvr_trainer() -> tuple[Any, Any]:
    """``RLVRConfig`` and ``RLVRTrainer``, from an install or straight from the source tree (GPU machines).

    The room folders are mapped into the ``rlvr`` package by the install, so a plain
    ``sys.path`` entry for the repository cannot find ``rlvr.trainer``; map it by hand then.
    """
    try:
        from rlvr.trainer.trl.config import RLVRConfig
        from rlvr.trainer.trl.trainer import RLVRTrainer
    except ImportError:
        import importlib.util
        import types

        for name in [m for m in sys.modules if m == "rlvr" or m.startswith("rlvr.")]:
            del sys.modules[name]
        spec = importlib.util.spec_from_file_location("rlvr", ROOT / "rlvr" / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / "rlvr")])
        rlvr = importlib.util.module_from_spec(spec)
        sys.modules["rlvr"] = rlvr
        spec.loader.exec_module(rlvr)
        trainer = types.ModuleType("rlvr.trainer")
        trainer.__path__ = [str(ROOT / "trainer")]
        sys.modules["rlvr.trainer"] = trainer
        rlvr.trainer = trainer
        from rlvr.trainer.trl.config import RLVRConfig
        from rlvr.trainer.trl.trainer import RLVRTrainer
    return RLVRConfig, RLVRTrainer


def build_tokenizer(vocab_size: int) -> Any:
    """Word-level tokenizer: ``t<i>`` is token i; ``<eos>`` is token ``vocab_size``, one past the model's last."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size)}
    vocab["<eos>"] = vocab_size
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="t0", padding_side="left")


def build_model(shape: str, device: str, dtype: torch.dtype, seed: int) -> Any:
    """Random-init Qwen2 of ``shape`` on ``device`` (same weights for every config: same seed)."""
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(**SHAPES[shape])
    with torch.device(device):
        model = transformers.Qwen2ForCausalLM(config)
    model = model.to(dtype)
    # The tokenizer's EOS (build_tokenizer) is one past the last logit: no completion can end early.
    model.config.eos_token_id = model.generation_config.eos_token_id = config.vocab_size
    model.config.pad_token_id = model.generation_config.pad_token_id = 0
    return model


def build_dataset(prompts: list[str]) -> Any:
    """A ``datasets.Dataset`` of the prompts, built without datasets' content hashing.

    ``Dataset.from_dict`` fingerprints the table by pickling it with dill, which fails on some
    pyarrow builds older than datasets 5.2 asks for (seen with pyarrow 21: "Can't pickle
    MonthDayNano"); GPU images may carry one. A fixed fingerprint skips that; nothing here caches.
    """
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable.from_pydict({"prompt": prompts}), fingerprint="bench-grpo-step-prompts")


def reward(prompts: list, completions: list, completion_ids: list, **kwargs: Any) -> list[float]:
    """Cheap, deterministic and varied across a group (so advantages are not all zero)."""
    return [float(sum(ids) % 1009) / 1009 for ids in completion_ids]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class StepTimer(transformers.TrainerCallback):
    """Wall time of each optimiser step (generation, scoring, forward, backward, optimiser)."""

    def __init__(self, device: str) -> None:
        self.device, self.times, self._start = device, [], 0.0

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        sync(self.device)
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        sync(self.device)
        self.times.append(time.perf_counter() - self._start)


def time_generation(trainer: Any, device: str) -> tuple[list[float], list[int]]:
    """Wrap the trainer's ``_generate_single_turn`` (TRL's and ours): wall time per call, completion lengths."""
    spent: list[float] = []
    lengths: list[int] = []
    inner = trainer._generate_single_turn

    def timed(*args: Any, **kwargs: Any) -> Any:
        sync(device)
        start = time.perf_counter()
        out = inner(*args, **kwargs)
        sync(device)
        spent.append(time.perf_counter() - start)
        lengths.extend(len(ids) for ids in out[0])
        return out

    trainer._generate_single_turn = timed
    return spent, lengths


def run_config(name: str, opts: argparse.Namespace, prompts: list[str], RLVRConfig: Any, RLVRTrainer: Any) -> dict:
    from trl import GRPOConfig, GRPOTrainer

    cuda = opts.device.startswith("cuda")
    low = {"bf16": torch.bfloat16, "fp32": torch.float32}[opts.dtype]
    # stock / ours_fp32: float32 weights (TRL's default for a model built from config) under autocast
    weights = torch.float32 if name in ("stock", "ours_fp32") else low
    model = build_model(opts.shape, opts.device, weights, opts.seed)
    tokenizer = build_tokenizer(SHAPES[opts.shape]["vocab_size"])
    steps = opts.warmup + opts.steps
    dataset = build_dataset(prompts)
    out_dir = tempfile.mkdtemp(prefix=f"bench-grpo-{name}-")  # nothing is saved there (save_strategy="no")
    common = dict(
        output_dir=out_dir, per_device_train_batch_size=opts.prompts * opts.generations,
        num_generations=opts.generations, max_completion_length=opts.completion_len, max_steps=steps,
        learning_rate=1e-6, bf16=opts.dtype == "bf16", use_cpu=not cuda, report_to="none", save_strategy="no",
        logging_steps=10_000, disable_tqdm=True, seed=opts.seed, temperature=1.0,
    )
    if name in ("stock", "trl_best"):
        extra = {"cache_implementation": "static"} if name == "trl_best" else {}
        args = GRPOConfig(loss_type="dapo", beta=0.0, **common, **extra)
        trainer = GRPOTrainer(model, reward_funcs=reward, args=args, train_dataset=dataset, processing_class=tokenizer)
        label = "GRPOTrainer"
    else:  # rollout_engine=True is what the default (None) picks on CUDA; True also runs it on the CPU
        args = RLVRConfig(algorithm="dapo", rollout_engine=True, **common, algorithm_overrides={
            "overlong_mask": False, "overlong_penalty": False, "zero_variance": "keep"})
        trainer = RLVRTrainer(model, reward_funcs=reward, args=args, train_dataset=dataset, processing_class=tokenizer)
        label = "RLVRTrainer"
    timer = StepTimer(opts.device)
    trainer.add_callback(timer)
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # this script prints JSON only
    gen_times, lengths = time_generation(trainer, opts.device)
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    sync(opts.device)
    timed = timer.times[opts.warmup:]
    median = statistics.median(timed)
    tokens = opts.prompts * opts.generations * opts.completion_len
    result = {
        "bench": "grpo_step", "config": name, "trainer": label, "shape": opts.shape, "device": opts.device,
        "weights": str(weights).removeprefix("torch."), "autocast": "bf16" if opts.dtype == "bf16" else "none",
        "generation": {"stock": "model.generate, dynamic cache", "trl_best": "model.generate, static cache"}.get(
            name, "rlvr RolloutEngine"),
        "prompts": opts.prompts, "generations": opts.generations, "prompt_len": opts.prompt_len,
        "completion_len": opts.completion_len, "completion_len_min_max": [min(lengths), max(lengths)],
        "steps_s": [round(t, 4) for t in timer.times], "warmup": opts.warmup,
        "median_step_s": round(median, 4), "completion_tok_s": round(tokens / median, 1),
        "median_generate_s": round(statistics.median(gen_times[opts.warmup:]), 4) if len(gen_times) > opts.warmup
        else None,
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None,
    }
    del trainer, model
    shutil.rmtree(out_dir, ignore_errors=True)
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def ratios(results: dict[str, dict], ours: str) -> dict[str, float]:
    """Our speed-up (completion tokens/s ratio) and peak-memory ratio against each peer that ran."""
    out: dict[str, float] = {}
    mine = results.get(ours)
    if not mine or "median_step_s" not in mine:
        return out
    for peer in ("stock", "trl_best"):
        other = results.get(peer)
        if other and "median_step_s" in other:
            out[f"speedup_vs_{peer}"] = round(other["median_step_s"] / mine["median_step_s"], 2)
            if mine.get("peak_gib") and other.get("peak_gib"):
                out[f"peak_mem_vs_{peer}"] = round(mine["peak_gib"] / other["peak_gib"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default=None,
                        help="training precision (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--configs", default="ours,trl_best,stock",
                        help=f"comma-separated, run in this order; from {', '.join(CONFIGS)}")
    parser.add_argument("--prompts", type=int, default=None, help="prompts per step (default by shape)")
    parser.add_argument("--generations", type=int, default=None, help="completions per prompt (G)")
    parser.add_argument("--prompt-len", type=int, default=None)
    parser.add_argument("--completion-len", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a busy CPU)")
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    defaults = WORKLOADS[opts.shape]
    for attr, value in zip(("prompts", "generations", "prompt_len", "completion_len"), defaults):
        if getattr(opts, attr) is None:
            setattr(opts, attr, value)
    if opts.dtype is None:
        opts.dtype = "bf16" if opts.device.startswith("cuda") else "fp32"
    names = [c.strip() for c in opts.configs.split(",") if c.strip()]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown or opts.steps < 1 or opts.warmup < 0:
        parser.error(f"unknown configs {unknown}" if unknown else "--steps must be >= 1 and --warmup >= 0")
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda but torch.cuda.is_available() is False")

    RLVRConfig, RLVRTrainer = import_rlvr_trainer()
    gen = torch.Generator().manual_seed(opts.seed + 1)
    vocab = SHAPES[opts.shape]["vocab_size"]
    count = opts.prompts * (opts.warmup + opts.steps)
    prompts = [" ".join(f"t{t}" for t in row)
               for row in torch.randint(1, vocab, (count, opts.prompt_len), generator=gen).tolist()]

    def emit(line: dict) -> None:
        print(json.dumps(line), flush=True)
        if opts.out:
            with opts.out.open("a") as fh:
                fh.write(json.dumps(line) + "\n")

    results: dict[str, dict] = {}
    for name in names:
        try:
            result = run_config(name, opts, prompts, RLVRConfig, RLVRTrainer)
        except Exception as exc:  # a peer's failure must not hide the other numbers
            result = {"bench": "grpo_step", "config": name, "shape": opts.shape, "error": repr(exc)[:500],
                      "traceback": traceback.format_exc()[-1500:]}
        gc.collect()  # after the except block: the traceback no longer holds the failed run's tensors
        if opts.device.startswith("cuda"):
            torch.cuda.empty_cache()
        results[name] = result
        if name.startswith("ours"):
            result.update(ratios(results, name))
        emit(result)
    summary: dict[str, Any] = {"bench": "grpo_step_summary", "shape": opts.shape, "device": opts.device,
                               "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import trl

        summary["trl"] = trl.__version__
    except ImportError:
        pass
    if opts.device.startswith("cuda"):
        summary["gpu"] = torch.cuda.get_device_name()
    for name, result in results.items():
        summary[f"{name}_step_s"] = result.get("median_step_s")
        summary[f"{name}_tok_s"] = result.get("completion_tok_s")
        summary[f"{name}_peak_gib"] = result.get("peak_gib")
    for ours in ("ours", "ours_fp32"):
        summary.update({f"{ours}_{k}": v for k, v in ratios(results, ours).items()})
    if opts.shape in ISSUE_ANCHORS:
        summary["issue_anchor_h100"] = ISSUE_ANCHORS[opts.shape]
        summary["issue_targets"] = ISSUE_TARGETS[opts.shape]
    emit(summary)


if __name__ == "__main__":
    main()
