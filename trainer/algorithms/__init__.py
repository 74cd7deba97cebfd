"""The policy-gradient family as pure tensor functions (torch only: no TRL, no model).

Public API (docs/algorithms.md has every formula):

* ``AlgorithmConfig`` — the axes (advantage and multi-reward rule, ratio, trust region, token
  selector, KL, aggregation, filters, rollout correction, critic), validated at construction.
* ``preset(name, **overrides)`` / ``PRESETS`` — named algorithms (grpo, dapo, cispo, ...).
* ``compute_advantages(rewards [P, G] or [P, G, K], cfg, weights=...) -> [P, G]`` — outcome-reward
  advantages (K named reward components: summed first, or normalised one by one for GDPO).
* ``compute_token_advantages(rewards, mask, cfg, ...)`` — the same plus KL-in-reward,
  REINFORCE++ token returns and PPO's GAE, as ``[B, T]``.
* ``policy_loss(logp, advantages, mask, cfg, ...) -> (loss, metrics)`` (``entropy=`` per token
  when ``cfg.needs_entropy``).
* ``compute_gae``, ``value_loss``, ``kl_penalty``, ``kl_shaped_rewards``, ``zero_variance_mask``,
  ``mask_truncated_completions``, ``overlong_penalty``, ``count_loss_units`` — helpers the
  trainer composes.

A new component is one function with one decorator: ``@register_preset``, ``@register_baseline``,
``@register_scale``, ``@register_post_norm``, ``@register_ratio_level``,
``@register_trust_region``, ``@register_token_selector``, ``@register_multi_reward``,
``register_aggregation`` (all on ``rlvr.registry.Registry``); ``AlgorithmConfig`` accepts the
new name at once.
"""

from rlvr.trainer.algorithms.advantages import (
    BASELINES,
    POST_NORMS,
    SCALES,
    compute_advantages,
    register_baseline,
    register_post_norm,
    register_scale,
)
from rlvr.trainer.algorithms.aggregation import AGGREGATIONS, aggregate, count_loss_units, register_aggregation
from rlvr.trainer.algorithms.config import AlgorithmConfig
from rlvr.trainer.algorithms.filters import mask_truncated_completions, overlong_penalty, zero_variance_mask
from rlvr.trainer.algorithms.gae import compute_gae, discounted_returns
from rlvr.trainer.algorithms.kl import KL_ESTIMATORS, kl_penalty, kl_shaped_rewards
from rlvr.trainer.algorithms.loss import policy_loss
from rlvr.trainer.algorithms.multi_reward import MULTI_REWARDS, register_multi_reward
from rlvr.trainer.algorithms.presets import PRESETS, preset, register_preset
from rlvr.trainer.algorithms.ratios import RATIO_LEVELS, register_ratio_level
from rlvr.trainer.algorithms.rollout_correction import rollout_correction_weights
from rlvr.trainer.algorithms.surrogates import TRUST_REGIONS, register_trust_region
from rlvr.trainer.algorithms.token_advantages import compute_token_advantages, summed_components
from rlvr.trainer.algorithms.token_selectors import TOKEN_SELECTORS, TokenSelector, register_token_selector
from rlvr.trainer.algorithms.value import value_loss

__all__ = [
    "AGGREGATIONS",
    "BASELINES",
    "KL_ESTIMATORS",
    "MULTI_REWARDS",
    "POST_NORMS",
    "PRESETS",
    "RATIO_LEVELS",
    "SCALES",
    "TOKEN_SELECTORS",
    "TRUST_REGIONS",
    "AlgorithmConfig",
    "TokenSelector",
    "aggregate",
    "compute_advantages",
    "compute_gae",
    "compute_token_advantages",
    "count_loss_units",
    "discounted_returns",
    "kl_penalty",
    "kl_shaped_rewards",
    "mask_truncated_completions",
    "overlong_penalty",
    "policy_loss",
    "preset",
    "register_aggregation",
    "register_baseline",
    "register_multi_reward",
    "register_post_norm",
    "register_preset",
    "register_ratio_level",
    "register_scale",
    "register_token_selector",
    "register_trust_region",
    "rollout_correction_weights",
    "summed_components",
    "value_loss",
    "zero_variance_mask",
]
