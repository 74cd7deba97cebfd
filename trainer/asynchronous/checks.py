"""Which runs may train asynchronously, and the staleness each preset defaults to.

Asynchronous rollouts are sampled by weights up to ``k`` optimiser steps old. A loss with an
importance ratio (PPO/GRPO clip, CISPO, DPPO, ...) corrects for that against the behaviour
log-probs recorded at sampling time; a strictly on-policy loss (REINFORCE, RLOO, MaxRL: no ratio)
would treat stale samples as fresh, so it may run asynchronously only with a rollout correction
(truncated or masked importance weights, ``rollout_correction: tis | mis``).
"""

from __future__ import annotations

import logging
from typing import Any

from rlvr.errors import ConfigError

logger = logging.getLogger(__name__)

# Presets whose published recipe is asynchronous, with the paper's bound on off-policyness.
# ScaleRL (Khatri et al. 2025, arXiv:2510.13786) trains with PipelineRL and max off-policyness 8.
RECIPE_OFF_POLICY_STEPS: dict[str, int] = {"scalerl": 8}

FIELD = "generation.max_off_policy_steps"


def default_off_policy_steps(preset: str) -> int:
    """``k`` when the config leaves it unset: the preset's recipe value, else 0 (synchronous)."""
    return RECIPE_OFF_POLICY_STEPS.get(preset, 0)


def resolve_off_policy_steps(k: int | None, preset: str, backend: str = "auto", world: int = 1) -> int:
    """The ``k`` a run uses: the config's, else the preset's recipe where this setup can run it, else 0."""
    if k is not None:
        return int(k)
    k = default_off_policy_steps(preset)
    if k and (backend == "hf" or world > 1):
        logger.info("%s's recipe is asynchronous (k=%d), but generation.backend %s / %d processes run synchronously",
                    preset, k, backend, world)
        return 0
    return k


def check_async(k: int, preset: str, algo: Any, backend: str, world: int = 1, vllm_sync_weights: bool = True) -> None:
    """Refuse an asynchronous setup that would train wrongly or cannot run (one-line ``ConfigError``)."""
    if k < 0:
        raise ConfigError(FIELD, f"must be >= 0, got {k}", "use 0 for synchronous training")
    if k == 0:
        return
    if not algo.uses_ratio and algo.rollout_correction == "none":
        raise ConfigError(FIELD, f"preset {preset!r} is on-policy only (no importance ratio), so samples up to {k} "
                          "versions old would be trained on as if fresh",
                          "set algorithm.overrides.rollout_correction: tis (or mis), or max_off_policy_steps: 0")
    if backend == "hf":
        raise ConfigError(FIELD, "asynchronous rollouts need the rlvr rollout engine in a generator process or a "
                          "vLLM server; generation.backend 'hf' (model.generate) is synchronous only",
                          "set generation.backend: engine, auto or vllm, or max_off_policy_steps: 0")
    if backend == "vllm" and not vllm_sync_weights:
        raise ConfigError("generation.vllm_sync_weights", f"is false, so the vLLM server would sample from the weights "
                          f"it loaded at every step while max_off_policy_steps {k} claims they are at most {k} steps old",
                          "set generation.vllm_sync_weights: true, or max_off_policy_steps: 0")
    if world > 1:
        raise ConfigError(FIELD, f"asynchronous rollouts run one generator for one trainer process, and this run "
                          f"has {world}", "launch one process, or set max_off_policy_steps: 0")


__all__ = ["RECIPE_OFF_POLICY_STEPS", "default_off_policy_steps", "resolve_off_policy_steps",
           "check_async"]
