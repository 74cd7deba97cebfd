"""``SamplingParams`` from a ``GRPOConfig``'s generation fields, refusing knobs rlvr's generators lack."""

from __future__ import annotations

from typing import Any

from rlvr.envs.generation import SamplingParams
from rlvr.errors import ConfigError


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


__all__ = ["sampling_params_from_trl"]
