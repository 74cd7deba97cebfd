"""``AlgorithmConfig``: every policy-gradient algorithm as one validated set of axes.

The fields are the axes of docs/algorithms.md §3 — advantage (and the multi-reward rule),
importance ratio, trust region, token selector, KL, aggregation, filters, rollout correction (and
the critic for PPO). A named algorithm is a
preset (``rlvr.trainer.algorithms.presets``), i.e. nothing but values for these fields.
Construction validates every value and every combination, raising ``rlvr.errors.ConfigError``
naming the field to change, before any work starts. The config is frozen; derive variants with
``cfg.replace(...)`` or ``preset(name, **overrides)``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from rlvr.errors import ConfigError
from rlvr.registry import did_you_mean
from rlvr.trainer.algorithms.advantages import BASELINES, POST_NORMS, SCALES
from rlvr.trainer.algorithms.aggregation import AGGREGATIONS
from rlvr.trainer.algorithms.kl import KL_ESTIMATORS
from rlvr.trainer.algorithms.multi_reward import MULTI_REWARDS
from rlvr.trainer.algorithms.ratios import RATIO_ANCHORS, RATIO_LEVELS
from rlvr.trainer.algorithms.rollout_correction import ROLLOUT_CORRECTION_LEVELS, ROLLOUT_CORRECTIONS
from rlvr.trainer.algorithms.surrogates import DPPO_DIVERGENCES, TRUST_REGIONS
from rlvr.trainer.algorithms.token_selectors import TOKEN_SELECTORS

CRITIC_BASELINE = "gae"
KL_PLACEMENTS = ("loss", "reward")
ZERO_VARIANCE_MODES = ("keep", "drop", "refill")


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, repr=False)
class AlgorithmConfig:
    """The whole loss-side definition of a policy-gradient algorithm (see docs/algorithms.md §3)."""

    # ---- advantage --------------------------------------------------------------------------
    baseline: str = _f(
        "group_mean",
        "What is subtracted from the reward: 'none' (plain REINFORCE), 'batch_mean', 'group_mean' "
        "(mean of the prompt's G rewards; GRPO family), 'loo' (leave-one-out mean of the other "
        "G-1; RLOO), or 'gae' (a learned critic with GAE; PPO, needs a value model).",
    )
    scale: str = _f(
        "group_std",
        "What the centred reward is divided by: 'none' (Dr. GRPO), 'group_std' (unbiased std of the "
        "group + std_eps; GRPO), 'batch_std' (unbiased std of all rewards in the batch + std_eps; "
        "Lite-PPO/ScaleRL), 'group_mean' (MaxRL: (r - mean)/mean, 0 when the mean is 0).",
    )
    post_norm: str = _f(
        "none",
        "Normalisation applied last over the whole batch: 'none' or 'batch_whiten' "
        "((A - mean)/(std + std_eps) over all valid completions, or all valid tokens for token-level "
        "advantages; REINFORCE++, PPO, GDPO).",
    )
    multi_reward: str = _f(
        "sum_then_normalize",
        "Rewards with K named components ([P, G, K] with weights): 'sum_then_normalize' (weighted sum, "
        "then baseline and scale) or 'normalize_then_sum' (GDPO: baseline and scale per component "
        "within the group, then the weighted sum; pair it with post_norm='batch_whiten').",
    )
    std_eps: float = _f(1e-4, "Added to every std before dividing by it (GRPO/TRL convention: 1e-4).")
    token_returns: bool = _f(
        False,
        "REINFORCE++: each token's advantage is the reward-to-go of KL-shaped token rewards "
        "(outcome reward on the last token, -kl_coef*k per token) instead of one value per completion. "
        "Needs baseline='none'.",
    )
    gamma: float = _f(1.0, "Discount for GAE and token returns (1.0 for LLM episodes).")
    lam: float = _f(0.95, "GAE lambda (bias/variance trade-off of the critic's advantage).")

    # ---- importance ratio -------------------------------------------------------------------
    ratio_level: str = _f(
        "token",
        "Importance ratio: 'none' (strictly on-policy REINFORCE, loss -A*log pi), 'token' "
        "(pi/pi_anchor per token), 'sequence' (GSPO's length-normalised geometric-mean sequence ratio; "
        "needs aggregation='seq_mean_token_mean').",
    )
    ratio_anchor: str = _f(
        "old",
        "Policy the ratio is taken against: 'old' (trainer log-probs at the sampling weights, "
        "old_logp) or 'rollout' (the inference engine's log-probs, rollout_logp; DPPO, ScaleRL).",
    )

    # ---- trust region -----------------------------------------------------------------------
    trust_region: str = _f(
        "clip",
        "How the ratio is constrained: 'none', 'clip' (PPO clip with clip_eps_low/high and optional "
        "dual_clip), 'cispo' (detached weight clip(ratio, cispo_cap_min, cispo_cap_max) on A*log pi), "
        "'dppo' (divergence mask against the anchor + detached weight min(ratio, dppo_is_cap)), "
        "'sapo' (soft sigmoid gate with sapo_tau_pos/neg).",
    )
    clip_eps_low: float = _f(0.2, "PPO clip: lower bound 1 - clip_eps_low (applies where A < 0).")
    clip_eps_high: float = _f(0.2, "PPO clip: upper bound 1 + clip_eps_high (applies where A > 0; DAPO 0.28).")
    dual_clip: float | None = _f(
        None, "Dual clip constant c > 1: caps the loss of A < 0 tokens at -c*A (verl uses 3.0). None = off."
    )
    cispo_cap_max: float = _f(
        5.0, "CISPO: absolute upper cap of the detached IS weight (TRL convention; ScaleRL value 5.0)."
    )
    cispo_cap_min: float | None = _f(None, "CISPO: absolute lower cap of the IS weight. None = no floor (MiniMax).")
    dppo_divergence: str = _f(
        "tv", "DPPO mask: 'tv' (binary total variation |pi - mu|) or 'kl' (binary KL of sampled token vs rest)."
    )
    dppo_delta_low: float = _f(
        0.15, "DPPO: divergence bound for tokens with A < 0 (0.15 for tv, 0.05 usual for kl)."
    )
    dppo_delta_high: float = _f(0.15, "DPPO: divergence bound for tokens with A > 0.")
    dppo_is_cap: float = _f(10.0, "DPPO: cap C of the detached IS weight min(ratio, C) (Stable-RL code: 10).")
    sapo_tau_pos: float = _f(1.0, "SAPO gate temperature for A > 0 tokens.")
    sapo_tau_neg: float = _f(1.05, "SAPO gate temperature for A <= 0 tokens.")

    # ---- token selector ---------------------------------------------------------------------
    token_selector: str = _f(
        "none",
        "Which tokens keep their gradient after the trust region: 'none', 'clip_cov' (zero the loss of a "
        "random few tokens of high covariance between log-prob and advantage), 'kl_cov' (add "
        "kl_cov_coef*|log ratio| to the highest-covariance tokens), 'high_entropy' (only the "
        "entropy_top_frac highest-entropy 'forking' tokens; needs per-token entropies).",
    )
    clip_cov_frac: float = _f(
        2e-4, "Clip-Cov: fraction of the loss tokens whose gradient is removed (at least 1 token)."
    )
    clip_cov_low: float = _f(1.0, "Clip-Cov: lower bound of the covariance of a candidate token (exclusive).")
    clip_cov_high: float = _f(5.0, "Clip-Cov: upper bound of the covariance of a candidate token (exclusive).")
    kl_cov_frac: float = _f(
        2e-3, "KL-Cov: fraction of the loss tokens (largest covariance first) that get the penalty (at least 1)."
    )
    kl_cov_coef: float = _f(1.0, "KL-Cov: coefficient of |log ratio| on the selected tokens.")
    entropy_top_frac: float = _f(
        0.2, "High-entropy selector: fraction of the loss tokens (highest entropy first) that keep their gradient."
    )

    # ---- KL to a reference policy -----------------------------------------------------------
    kl_coef: float = _f(0.0, "KL coefficient beta; > 0 needs a reference model (ref_logp).")
    kl_estimator: str = _f("k3", "KL estimator: 'k1' (log ratio), 'k2' (squared/2), 'k3' (exp(-u) - 1 + u).")
    kl_placement: str = _f(
        "loss",
        "Where the KL goes: 'loss' (beta*k added to each token's loss; GRPO) or 'reward' (beta*k "
        "subtracted from token rewards before advantages; PPO, REINFORCE++, RLOO).",
    )

    # ---- aggregation ------------------------------------------------------------------------
    aggregation: str = _f(
        "token_mean",
        "Per-token losses -> scalar: 'token_mean', 'seq_mean_token_mean', 'seq_mean_token_sum', "
        "'seq_mean_token_sum_norm' (token sum / norm_length, Dr. GRPO), 'prompt_mean' (token mean per "
        "prompt group, mean over prompts). See rlvr.trainer.algorithms.aggregation.",
    )
    norm_length: int | None = _f(
        None, "Constant length L of 'seq_mean_token_sum_norm'. None = the max_completion_length passed to the loss."
    )

    # ---- filters and shaping ----------------------------------------------------------------
    zero_variance: str = _f(
        "keep",
        "Groups whose rewards are all equal: 'keep', 'drop' (ScaleRL), 'refill' (drop and sample more; "
        "DAPO dynamic sampling). Applied by the trainer's sampler with zero_variance_mask().",
    )
    overlong_mask: bool = _f(False, "DAPO overlong filtering: truncated completions are masked out of the loss.")
    overlong_penalty: bool = _f(False, "DAPO soft overlong punishment added to the reward (overlong_penalty()).")
    overlong_max_length: int | None = _f(
        None, "L_max of the overlong penalty. None = the trainer's max_completion_length."
    )
    overlong_buffer: int = _f(4096, "L_cache: length of the linear penalty ramp before L_max (DAPO: 4096).")
    overlong_penalty_factor: float = _f(1.0, "Penalty at and beyond L_max (the ramp goes from 0 to -factor).")

    # ---- rollout correction -----------------------------------------------------------------
    rollout_correction: str = _f(
        "none",
        "Trainer/engine mismatch weight w = pi_old/mu: 'none', 'tis' (truncate w to "
        "[rollout_correction_min, rollout_correction_max]), 'mis' (zero w outside that range; IcePop).",
    )
    rollout_correction_level: str = _f("token", "'token' (per-token w) or 'sequence' (product over the completion).")
    rollout_correction_min: float | None = _f(None, "Lower bound of w (None: no floor for tis, 0 for mis).")
    rollout_correction_max: float = _f(2.0, "Upper bound of w.")

    # ---- critic (baseline='gae') ------------------------------------------------------------
    vf_coef: float = _f(0.1, "Weight of the value loss in PPO's total loss (TRL PPO default 0.1).")
    value_clip: float | None = _f(0.2, "Clip range of the value prediction around the old value. None = unclipped.")

    def __post_init__(self) -> None:
        _check_types(self)
        _check_choices(self)
        _check_ranges(self)
        _check_combinations(self)

    # ---- what the trainer has to provide ----------------------------------------------------
    @property
    def uses_ratio(self) -> bool:
        """True when the loss uses an importance ratio (needs an anchor when off-policy)."""
        return self.ratio_level != "none"

    @property
    def needs_old_logp(self) -> bool:
        """True when old_logp matters: pass it whenever a step reuses samples (None = on-policy)."""
        return (self.uses_ratio and self.ratio_anchor == "old") or self.rollout_correction != "none"

    @property
    def needs_rollout_logp(self) -> bool:
        """True when the inference engine's log-probs of the sampled tokens are needed."""
        return (self.uses_ratio and self.ratio_anchor == "rollout") or self.rollout_correction != "none"

    @property
    def needs_ref(self) -> bool:
        """True when a reference model is needed (kl_coef > 0)."""
        return self.kl_coef > 0

    @property
    def needs_entropy(self) -> bool:
        """True when ``policy_loss`` needs the policy's per-token entropy (``entropy=``)."""
        return TOKEN_SELECTORS[self.token_selector].needs_entropy

    @property
    def uses_reward_components(self) -> bool:
        """True when advantages depend on the separate reward components, not only on their sum
        (pass ``[P, G, K]`` rewards and their weights to ``compute_advantages``)."""
        return self.multi_reward != "sum_then_normalize"

    @property
    def needs_value_model(self) -> bool:
        """True for critic-based advantages (PPO): a value model, GAE and the value loss."""
        return self.baseline == CRITIC_BASELINE

    @property
    def token_level_advantages(self) -> bool:
        """True when advantages are per token ([B, T]; GAE or token returns), not per completion."""
        return self.needs_value_model or self.token_returns

    @property
    def needs_whole_groups(self) -> bool:
        """True when a prompt's G completions must stay together (group statistics or prompt_mean)."""
        return (
            self.baseline in ("group_mean", "loo")
            or self.scale in ("group_std", "group_mean")
            or self.aggregation == "prompt_mean"
        )

    # ---- conveniences -----------------------------------------------------------------------
    def replace(self, **changes: Any) -> AlgorithmConfig:
        """A validated copy with ``changes`` applied (unknown names raise ConfigError)."""
        for name in changes:
            _check_known(name)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (YAML/JSON friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlgorithmConfig:
        """Build from a dict of field values, rejecting unknown keys with a did-you-mean."""
        for name in data:
            _check_known(name)
        return cls(**data)

    @classmethod
    def help(cls, name: str) -> str:
        """The documented meaning of field ``name``."""
        _check_known(name)
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}[name]

    def __repr__(self) -> str:
        """Only the fields that differ from the defaults, so presets read at a glance."""
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"AlgorithmConfig({', '.join(changed)})"


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(AlgorithmConfig))


def _check_known(name: str) -> None:
    if name not in FIELD_NAMES:
        near = did_you_mean(name, FIELD_NAMES)
        raise ConfigError(name, "is not an AlgorithmConfig field",
                          f"did you mean {near!r}?" if near else "see AlgorithmConfig's fields")


def _choices() -> dict[str, tuple[str, ...]]:
    # read from the registries at validation time, so a newly registered component is accepted
    return {
        "baseline": (*BASELINES.names(), CRITIC_BASELINE),
        "scale": tuple(SCALES.names()),
        "post_norm": tuple(POST_NORMS.names()),
        "multi_reward": tuple(MULTI_REWARDS.names()),
        "token_selector": tuple(TOKEN_SELECTORS.names()),
        "ratio_level": tuple(RATIO_LEVELS.names()),
        "ratio_anchor": RATIO_ANCHORS,
        "trust_region": tuple(TRUST_REGIONS.names()),
        "dppo_divergence": tuple(DPPO_DIVERGENCES),
        "kl_estimator": tuple(KL_ESTIMATORS.names()),
        "kl_placement": KL_PLACEMENTS,
        "aggregation": tuple(AGGREGATIONS.names()),
        "zero_variance": ZERO_VARIANCE_MODES,
        "rollout_correction": ("none", *ROLLOUT_CORRECTIONS),
        "rollout_correction_level": ROLLOUT_CORRECTION_LEVELS,
    }


@functools.cache
def _field_types() -> dict[str, Any]:
    return get_type_hints(AlgorithmConfig)


def _check_types(cfg: AlgorithmConfig) -> None:
    hints = _field_types()
    for name in FIELD_NAMES:
        value, hint = getattr(cfg, name), hints[name]
        optional = "None" in str(hint)
        if value is None:
            if not optional:
                raise ConfigError(name, "must not be None")
            continue
        base = hint if not optional else next(a for a in hint.__args__ if a is not type(None))
        if base is bool:
            ok = isinstance(value, bool)
        elif base is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif base is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, base)
        if not ok:
            raise ConfigError(name, f"must be {getattr(base, '__name__', base)}, got {value!r}")


def _check_choices(cfg: AlgorithmConfig) -> None:
    for name, allowed in _choices().items():
        value = getattr(cfg, name)
        if value not in allowed:
            near = did_you_mean(str(value), allowed)
            fix = (f"did you mean {near!r}? " if near else "") + f"choose one of {', '.join(allowed)}"
            raise ConfigError(name, f"unknown value {value!r}", fix)


def _require(ok: bool, name: str, problem: str, fix: str | None = None) -> None:
    if not ok:
        raise ConfigError(name, problem, fix)


def _check_ranges(c: AlgorithmConfig) -> None:
    _require(c.std_eps > 0, "std_eps", f"must be > 0, got {c.std_eps}")
    for name in ("gamma", "lam"):
        _require(0 <= getattr(c, name) <= 1, name, f"must be in [0, 1], got {getattr(c, name)}")
    _require(0 <= c.clip_eps_low < 1, "clip_eps_low", f"must be in [0, 1), got {c.clip_eps_low}")
    _require(c.clip_eps_high >= 0, "clip_eps_high", f"must be >= 0, got {c.clip_eps_high}")
    _require(c.dual_clip is None or c.dual_clip > 1, "dual_clip", f"must be > 1 (or None), got {c.dual_clip}")
    _require(c.cispo_cap_max > 0, "cispo_cap_max", f"must be > 0, got {c.cispo_cap_max}")
    _require(
        c.cispo_cap_min is None or 0 <= c.cispo_cap_min < c.cispo_cap_max,
        "cispo_cap_min",
        f"must be in [0, cispo_cap_max={c.cispo_cap_max}) or None, got {c.cispo_cap_min}",
    )
    for name in ("dppo_delta_low", "dppo_delta_high", "dppo_is_cap", "sapo_tau_pos", "sapo_tau_neg"):
        _require(getattr(c, name) > 0, name, f"must be > 0, got {getattr(c, name)}")
    _require(c.kl_coef >= 0, "kl_coef", f"must be >= 0, got {c.kl_coef}")
    for name in ("clip_cov_frac", "kl_cov_frac", "entropy_top_frac"):
        _require(0 < getattr(c, name) <= 1, name, f"must be in (0, 1], got {getattr(c, name)}")
    _require(
        c.clip_cov_low < c.clip_cov_high,
        "clip_cov_high",
        f"must be above clip_cov_low={c.clip_cov_low}, got {c.clip_cov_high}",
    )
    _require(c.kl_cov_coef >= 0, "kl_cov_coef", f"must be >= 0, got {c.kl_cov_coef}")
    _require(c.norm_length is None or c.norm_length > 0, "norm_length", f"must be > 0 (or None), got {c.norm_length}")
    _require(
        c.overlong_max_length is None or c.overlong_max_length > 0,
        "overlong_max_length",
        f"must be > 0 (or None), got {c.overlong_max_length}",
    )
    _require(c.overlong_buffer > 0, "overlong_buffer", f"must be > 0, got {c.overlong_buffer}")
    _require(
        c.overlong_max_length is None or c.overlong_buffer <= c.overlong_max_length,
        "overlong_buffer",
        f"{c.overlong_buffer} is longer than overlong_max_length={c.overlong_max_length}",
        "use a buffer shorter than the maximum length",
    )
    _require(c.overlong_penalty_factor >= 0, "overlong_penalty_factor", f"must be >= 0, got {c.overlong_penalty_factor}")
    _require(c.rollout_correction_max > 0, "rollout_correction_max", f"must be > 0, got {c.rollout_correction_max}")
    _require(
        c.rollout_correction_min is None or 0 <= c.rollout_correction_min < c.rollout_correction_max,
        "rollout_correction_min",
        f"must be in [0, rollout_correction_max={c.rollout_correction_max}) or None, got {c.rollout_correction_min}",
    )
    _require(c.vf_coef >= 0, "vf_coef", f"must be >= 0, got {c.vf_coef}")
    _require(c.value_clip is None or c.value_clip > 0, "value_clip", f"must be > 0 (or None), got {c.value_clip}")


def _check_combinations(c: AlgorithmConfig) -> None:
    _require(
        c.token_selector != "kl_cov" or c.uses_ratio,
        "token_selector",
        "KL-Cov penalises |log ratio|, but ratio_level='none' has no ratio",
        "set ratio_level='token'",
    )
    _require(
        not c.uses_reward_components or not c.token_level_advantages,
        "multi_reward",
        f"multi_reward={c.multi_reward!r} normalises outcome-reward components, but the advantages are "
        "token-level (GAE or token returns)",
        "use multi_reward='sum_then_normalize' with baseline='gae' or token_returns=True",
    )
    _require(
        not c.uses_reward_components or c.kl_placement == "loss" or c.kl_coef == 0,
        "kl_placement",
        f"multi_reward={c.multi_reward!r} has no single reward to subtract the KL from",
        "set kl_placement='loss' (or kl_coef=0)",
    )
    _require(
        c.uses_ratio or c.trust_region == "none",
        "trust_region",
        f"trust_region={c.trust_region!r} constrains an importance ratio, but ratio_level='none'",
        "set ratio_level='token' (or 'sequence'), or trust_region='none'",
    )
    _require(
        c.ratio_level != "sequence" or c.aggregation == "seq_mean_token_mean",
        "aggregation",
        f"a sequence-level ratio gives one loss per completion, which aggregation={c.aggregation!r} "
        "would weight by length",
        "use aggregation='seq_mean_token_mean' with ratio_level='sequence' (GSPO)",
    )
    _require(
        c.ratio_level != "sequence" or c.trust_region != "dppo",
        "trust_region",
        "DPPO's divergence mask is per token and cannot use a sequence-level ratio",
        "use ratio_level='token' with trust_region='dppo'",
    )
    _require(
        c.dual_clip is None or c.trust_region == "clip",
        "dual_clip",
        f"dual_clip only applies to trust_region='clip', not {c.trust_region!r}",
        "set dual_clip=None",
    )
    _require(
        c.scale == "none" or c.baseline not in ("none", CRITIC_BASELINE),
        "scale",
        f"scale={c.scale!r} rescales a centred reward, but baseline={c.baseline!r} does not centre one",
        "set scale='none' (use post_norm='batch_whiten' to normalise uncentred or GAE advantages)",
    )
    _require(
        c.scale != "group_mean" or c.baseline == "group_mean",
        "scale",
        "scale='group_mean' is MaxRL's (r - mean)/mean and needs baseline='group_mean'",
        "set baseline='group_mean'",
    )
    _require(
        not c.token_returns or c.baseline == "none",
        "token_returns",
        f"token returns (REINFORCE++) replace the baseline, but baseline={c.baseline!r}",
        "set baseline='none' (GAE is already token-level)",
    )
    _require(
        c.rollout_correction == "none" or not (c.uses_ratio and c.ratio_anchor == "rollout"),
        "rollout_correction",
        "the ratio is already anchored to the rollout engine; a correction weight would count the mismatch twice",
        "set rollout_correction='none' or ratio_anchor='old'",
    )
