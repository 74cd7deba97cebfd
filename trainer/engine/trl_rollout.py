"""Plug the rollout engine into TRL's ``GRPOTrainer``: its ``rollout_func`` contract and config.

TRL 1.16 calls ``rollout_func(prompts, trainer)`` with the prompts already repeated
``num_generations`` times and expects one completion per prompt back, as a dict of lists:
``prompt_ids``, ``completion_ids`` and ``logprobs`` (per token). Every other key would be passed
to the reward functions; we add none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rlvr.errors import ConfigError

from .engine import RolloutEngine
from rlvr.envs.generation import SamplingParams


def sampling_params_from_trl(args: Any, **overrides: Any) -> SamplingParams:
    """Build ``SamplingParams`` from a ``GRPOConfig``'s generation fields (``overrides`` win).

    Knobs the engine does not implement (``min_p``, ``repetition_penalty`` != 1, extra
    ``generation_kwargs``) raise ``ConfigError`` rather than being silently ignored.
    """
    if getattr(args, "min_p", None):
        raise ConfigError("min_p", f"the rollout engine does not implement min_p (got {args.min_p})",
                          "leave min_p unset, or use top_p / top_k")
    if getattr(args, "repetition_penalty", 1.0) not in (None, 1.0):
        raise ConfigError("repetition_penalty", "the rollout engine does not implement a repetition penalty",
                          "leave repetition_penalty at 1.0")
    if getattr(args, "generation_kwargs", None):
        raise ConfigError("generation_kwargs", f"not supported by the rollout engine: {args.generation_kwargs!r}",
                          "express sampling with temperature / top_p / top_k / max_completion_length")
    fields = {
        "max_new_tokens": getattr(args, "max_completion_length", None) or 256,
        "temperature": getattr(args, "temperature", 1.0),
        "top_p": getattr(args, "top_p", 1.0) if getattr(args, "top_p", None) is not None else 1.0,
        "top_k": getattr(args, "top_k", 0) or 0,
    }
    fields.update(overrides)
    return SamplingParams(**fields)


def tokenize_prompts(tokenizer: Any, prompts: Sequence[Any], chat_template_kwargs: dict | None = None) -> list[list[int]]:
    """Token ids of each prompt, as TRL makes them: chat template for message lists, plain otherwise."""
    if not prompts:
        return []
    if isinstance(prompts[0], list):
        out = tokenizer.apply_chat_template(conversation=list(prompts), add_generation_prompt=True, tokenize=True,
                                            return_dict=True, **(chat_template_kwargs or {}))
        return [list(ids) for ids in out["input_ids"]]
    return [list(ids) for ids in tokenizer(text=list(prompts))["input_ids"]]


def generate_for_trl(
    engine: RolloutEngine, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
) -> dict[str, list[list[Any]]]:
    """Generate one completion per prompt and return TRL's rollout dict (plain Python lists)."""
    completions = engine.generate(prompt_ids, params)
    return {
        "prompt_ids": [list(p) for p in prompt_ids],
        "completion_ids": [c.token_ids for c in completions],
        "logprobs": [c.logprobs for c in completions],
    }


def make_rollout_func(
    engine: RolloutEngine,
    params: SamplingParams | None = None,
    *,
    tokenizer: Any = None,
    chat_template_kwargs: dict | None = None,
) -> Callable[[list[Any], Any], dict[str, list[list[Any]]]]:
    """A ``rollout_func`` for ``GRPOTrainer(rollout_func=...)`` backed by ``engine``.

    Without ``params`` the trainer's own config decides (``sampling_params_from_trl``), read at
    each call. The tokenizer defaults to the engine's.
    """
    tok = tokenizer if tokenizer is not None else engine.tokenizer
    if tok is None:
        raise ConfigError("tokenizer", "a rollout_func must tokenize prompts", "pass tokenizer= here or to the engine")

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, list[list[Any]]]:
        sampling = params if params is not None else sampling_params_from_trl(trainer.args)
        return generate_for_trl(engine, tokenize_prompts(tok, prompts, chat_template_kwargs), sampling)

    return rollout_func


__all__ = ["sampling_params_from_trl", "tokenize_prompts", "generate_for_trl", "make_rollout_func"]
