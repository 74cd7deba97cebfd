"""Named algorithms as exact ``AlgorithmConfig`` values (docs/algorithms.md §13).

A preset is a function returning a config, registered with ``@register_preset(name)``; its
docstring names the paper. ``preset(name, **overrides)`` builds one and applies overrides
through the same validation, so ``preset("dapo", clip_eps_high=0.3)`` is a checked config.
A new algorithm is one more registered function here (or in its own module), never an edit to
an if-chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlvr.registry import Registry
from rlvr.trainer.algorithms.config import AlgorithmConfig

PresetFactory = Callable[[], AlgorithmConfig]
PRESETS: Registry[PresetFactory] = Registry("preset", field="algorithm")


def register_preset(name: str) -> Callable[[PresetFactory], PresetFactory]:
    """Register a preset factory under ``name`` (names are unique)."""
    return PRESETS.register(name)


def preset(name: str, **overrides: Any) -> AlgorithmConfig:
    """The config of the named algorithm, with ``overrides`` applied and validated."""
    cfg = PRESETS.get(name)()
    return cfg.replace(**overrides) if overrides else cfg


@register_preset("reinforce")
def reinforce() -> AlgorithmConfig:
    """REINFORCE with a batch-mean baseline: Williams 1992, "Simple statistical gradient-following
    algorithms for connectionist reinforcement learning" (Machine Learning 8, doi:10.1007/BF00992696).

    On-policy, no ratio: loss ``-A·Σ_t log π`` per completion, mean over completions.
    """
    return AlgorithmConfig(
        baseline="batch_mean", scale="none", ratio_level="none", trust_region="none",
        aggregation="seq_mean_token_sum",
    )


@register_preset("rloo")
def rloo() -> AlgorithmConfig:
    """RLOO: Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
    Learning from Human Feedback in LLMs" (arXiv:2402.14740).

    The paper's on-policy form: leave-one-out baseline, no ratio, sequence log-prob summed, mean
    over completions; k1 KL summed over the completion and subtracted from the reward
    (beta 0.05, TRL RLOOConfig's default).
    """
    return AlgorithmConfig(
        baseline="loo", scale="none", ratio_level="none", trust_region="none",
        kl_coef=0.05, kl_estimator="k1", kl_placement="reward", aggregation="seq_mean_token_sum",
    )


@register_preset("ppo")
def ppo() -> AlgorithmConfig:
    """PPO: Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (arXiv:1707.06347), with
    GAE (arXiv:1506.02438) in its LLM form (InstructGPT, arXiv:2203.02155).

    Critic + GAE (gamma 1, lambda 0.95) whitened over tokens, token ratio vs the old policy,
    clip 0.2, k1 KL in the reward (beta 0.05), token-mean; value loss clipped at 0.2, vf_coef 0.1
    (TRL's PPOConfig defaults).
    """
    return AlgorithmConfig(
        baseline="gae", scale="none", post_norm="batch_whiten", gamma=1.0, lam=0.95,
        ratio_level="token", ratio_anchor="old", trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2,
        kl_coef=0.05, kl_estimator="k1", kl_placement="reward", aggregation="token_mean",
        vf_coef=0.1, value_clip=0.2,
    )


@register_preset("grpo")
def grpo() -> AlgorithmConfig:
    """GRPO: Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
    Language Models" (arXiv:2402.03300).

    (r - mean_g)/(std_g + 1e-4), token ratio vs the old policy, symmetric clip 0.2, k3 KL in the
    loss with beta 0.04 (applied when a reference is given), seq-mean-token-mean.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", ratio_level="token", trust_region="clip",
        clip_eps_low=0.2, clip_eps_high=0.2, kl_coef=0.04, kl_estimator="k3", kl_placement="loss",
        aggregation="seq_mean_token_mean",
    )


@register_preset("dr_grpo")
def dr_grpo() -> AlgorithmConfig:
    """Dr. GRPO: Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective"
    (arXiv:2503.20783).

    r - mean_g (no std), clip 0.2, no KL, token sum divided by B * max_completion_length.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="none", ratio_level="token", trust_region="clip",
        clip_eps_low=0.2, clip_eps_high=0.2, aggregation="seq_mean_token_sum_norm",
    )


@register_preset("dapo")
def dapo() -> AlgorithmConfig:
    """DAPO: Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale"
    (arXiv:2503.14476).

    GRPO advantages, clip-higher (0.2, 0.28), no KL, token-mean over the whole step, dynamic
    sampling (refill zero-variance groups), overlong filtering and soft overlong punishment
    (L_max 20480, L_cache 4096 as in the paper; set overlong_max_length for shorter runs).
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", ratio_level="token", trust_region="clip",
        clip_eps_low=0.2, clip_eps_high=0.28, aggregation="token_mean", zero_variance="refill",
        overlong_mask=True, overlong_penalty=True, overlong_max_length=20480, overlong_buffer=4096,
    )


@register_preset("cispo")
def cispo() -> AlgorithmConfig:
    """CISPO: MiniMax 2025, "MiniMax-M1: Scaling Test-Time Compute Efficiently with Lightning
    Attention" (arXiv:2506.13585).

    GRPO advantages, detached IS weight min(ratio, 5.0) on A·log π (absolute cap, no floor),
    no KL, token-mean.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", ratio_level="token", ratio_anchor="old",
        trust_region="cispo", cispo_cap_max=5.0, cispo_cap_min=None, aggregation="token_mean",
    )


@register_preset("gspo")
def gspo() -> AlgorithmConfig:
    """GSPO: Zheng et al. 2025, "Group Sequence Policy Optimization" (arXiv:2507.18071).

    GRPO advantages, sequence geometric-mean ratio vs the old policy, clip (3e-4, 4e-4), no KL,
    mean over completions.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", ratio_level="sequence", trust_region="clip",
        clip_eps_low=3e-4, clip_eps_high=4e-4, aggregation="seq_mean_token_mean",
    )


@register_preset("sapo")
def sapo() -> AlgorithmConfig:
    """SAPO: Gao et al. (Qwen) 2025, "Soft Adaptive Policy Optimization" (arXiv:2511.20347).

    GRPO advantages, token ratio, soft sigmoid gate (tau_pos 1.0, tau_neg 1.05), no KL,
    seq-mean-token-mean.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", ratio_level="token", trust_region="sapo",
        sapo_tau_pos=1.0, sapo_tau_neg=1.05, aggregation="seq_mean_token_mean",
    )


@register_preset("dppo")
def dppo() -> AlgorithmConfig:
    """DPPO (Binary-TV): "Rethinking the Trust Region in LLM Reinforcement Learning"
    (arXiv:2602.04879; code sail-sg/Stable-RL).

    r - mean_g (no std), token ratio anchored to the rollout engine, binary-TV mask with
    delta 0.15 on probabilities, detached weight min(ratio, 10), no KL, token-mean.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="none", ratio_level="token", ratio_anchor="rollout",
        trust_region="dppo", dppo_divergence="tv", dppo_delta_low=0.15, dppo_delta_high=0.15,
        dppo_is_cap=10.0, aggregation="token_mean",
    )


@register_preset("maxrl")
def maxrl() -> AlgorithmConfig:
    """MaxRL: Tajwar, Zanette et al. 2026, maximum-likelihood RL (arXiv:2602.02710).

    A = (r - mean_g)/mean_g, 0 when the group mean is 0; strictly on-policy (no ratio, no trust
    region), no KL, token-mean.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_mean", ratio_level="none", trust_region="none",
        aggregation="token_mean",
    )


@register_preset("scalerl")
def scalerl() -> AlgorithmConfig:
    """ScaleRL: Khatri et al. 2025, "The Art of Scaling Reinforcement Learning Compute for LLMs"
    (arXiv:2510.13786).

    Group-mean baseline over the batch std (+1e-4), CISPO weight (cap 5.0) against the rollout
    engine's log-probs, prompt-mean aggregation, zero-variance groups dropped, no KL. The rest of
    the recipe is run settings that a run of this preset gets by default: asynchronous with k = 8
    (``generation.max_off_policy_steps``), an FP32 LM head (``model.fp32_lm_head``, see
    ``fp32_lm_head``) and no-positive-resampling at pass rate 0.9 (``generation.retire_pass_rate``).
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="batch_std", ratio_level="token", ratio_anchor="rollout",
        trust_region="cispo", cispo_cap_max=5.0, aggregation="prompt_mean", zero_variance="drop",
    )


@register_preset("reinforce_pp")
def reinforce_pp() -> AlgorithmConfig:
    """REINFORCE++: Hu 2025, "REINFORCE++: A Simple and Efficient Approach for Aligning Large
    Language Models" (arXiv:2501.03262).

    Token returns of k1-KL-shaped rewards (beta 0.01, OpenRLHF's default) whitened over all tokens
    of the batch, token ratio, clip 0.2, token-mean; no critic, G = 1 allowed.
    """
    return AlgorithmConfig(
        baseline="none", scale="none", token_returns=True, post_norm="batch_whiten", gamma=1.0,
        ratio_level="token", trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2,
        kl_coef=0.01, kl_estimator="k1", kl_placement="reward", aggregation="token_mean",
    )


@register_preset("reinforce_pp_baseline")
def reinforce_pp_baseline() -> AlgorithmConfig:
    """REINFORCE++-baseline: Hu 2025, REINFORCE++ (arXiv:2501.03262), the variant OpenRLHF recommends for RLVR.

    Group-mean centring then whitening over the batch, clip 0.2, k2 KL in the loss (beta 1e-5,
    OpenRLHF's example), token-mean.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="none", post_norm="batch_whiten", ratio_level="token",
        trust_region="clip", kl_coef=1e-5, kl_estimator="k2", kl_placement="loss", aggregation="token_mean",
    )


@register_preset("lite_ppo")
def lite_ppo() -> AlgorithmConfig:
    """Lite PPO: Liu et al. 2025, "Part I: Tricks or Traps? A Deep Dive into RL for LLM Reasoning"
    (arXiv:2508.08221).

    Group-mean baseline over the batch std, vanilla PPO clip 0.2, token-mean.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="batch_std", ratio_level="token", trust_region="clip",
        aggregation="token_mean",
    )


@register_preset("gdpo")
def gdpo() -> AlgorithmConfig:
    """GDPO: Liu et al. (NVIDIA) 2026, "GDPO: Group reward-Decoupled Normalization Policy Optimization
    for Multi-reward RL Optimization" (arXiv:2601.05242; code NVlabs/GDPO).

    Each reward component normalised within its group, (r_k - mean_g)/(std_g + 1e-4), weighted sum
    over components, then whitened over the batch; token ratio, clip 0.2, no KL, token-mean (the
    loss side of the authors' verl runs). Needs rewards as [P, G, K] components to differ from
    GRPO: with one component it is GRPO's advantage whitened over the batch.
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", multi_reward="normalize_then_sum", post_norm="batch_whiten",
        ratio_level="token", trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2, aggregation="token_mean",
    )


@register_preset("clip_cov")
def clip_cov() -> AlgorithmConfig:
    """Clip-Cov: Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning
    Language Models" (arXiv:2505.22617; code PRIME-RL/Entropy-Mechanism-of-RL, verl ``clip_cov``).

    GRPO advantages, PPO clip 0.2; among unclipped tokens whose covariance
    (A - mean A)(log π - mean log π) lies in (1, 5), a random 2e-4 of the tokens (at least one)
    lose their gradient; no KL, token-mean (the paper's Qwen2.5-7B recipe).
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", ratio_level="token", trust_region="clip",
        clip_eps_low=0.2, clip_eps_high=0.2, token_selector="clip_cov", clip_cov_frac=2e-4,
        clip_cov_low=1.0, clip_cov_high=5.0, aggregation="token_mean",
    )


@register_preset("kl_cov")
def kl_cov() -> AlgorithmConfig:
    """KL-Cov: Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning
    Language Models" (arXiv:2505.22617; code PRIME-RL/Entropy-Mechanism-of-RL, verl ``kl_cov``).

    GRPO advantages, unclipped token ratio (loss -ρA); the 2e-3 of the tokens with the largest
    covariance (at least one) get + 1.0·|log ρ|; no KL to a reference, token-mean (the paper's
    Qwen2.5-7B recipe: kl_cov_ratio 0.002, ppo_kl_coef 1).
    """
    return AlgorithmConfig(
        baseline="group_mean", scale="group_std", ratio_level="token", trust_region="none",
        token_selector="kl_cov", kl_cov_frac=2e-3, kl_cov_coef=1.0, aggregation="token_mean",
    )


@register_preset("forking_tokens")
def forking_tokens() -> AlgorithmConfig:
    """High-entropy forking tokens: Wang et al. 2025, "Beyond the 80/20 Rule: High-Entropy Minority
    Tokens Drive Effective Reinforcement Learning for LLM Reasoning" (arXiv:2506.01939).

    DAPO (the paper's base: clip-higher 0.2/0.28, token-mean over all tokens, dynamic sampling,
    overlong filtering and punishment, no KL) with the policy gradient kept only on tokens whose
    entropy is in the top 20% of the batch's; needs per-token entropies (``entropy=``).
    """
    return dapo().replace(token_selector="high_entropy", entropy_top_frac=0.2)


# Presets whose paper computes the LM head in FP32 when the model is in bf16 (a model setting, so
# not an AlgorithmConfig field). ScaleRL (arXiv:2510.13786, after MiniMax-M1, arXiv:2506.13585):
# a bf16 head makes the trainer's and the sampler's token probabilities disagree, which the
# importance ratio then reads as off-policyness.
RECIPE_FP32_LM_HEAD = frozenset({"scalerl"})


def fp32_lm_head(value: bool | None, preset: str) -> bool:
    """Whether a run computes its LM head in FP32: ``model.fp32_lm_head`` if set, else the preset's recipe."""
    return bool(value) if value is not None else preset in RECIPE_FP32_LM_HEAD
