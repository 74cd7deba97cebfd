"""AlgorithmConfig validation, presets as exact configurations, overrides and the registry."""

from __future__ import annotations

import dataclasses
import re

import pytest

from rlvr.errors import ConfigError
from rlvr.trainer.algorithms import PRESETS, AlgorithmConfig, preset, register_preset

REQUIRED = {"reinforce", "rloo", "ppo", "grpo", "dr_grpo", "dapo", "cispo", "gspo", "sapo", "dppo", "maxrl",
            "scalerl", "reinforce_pp", "gdpo", "clip_cov", "kl_cov", "forking_tokens"}


def test_all_required_presets_are_registered():
    assert REQUIRED <= set(PRESETS)


# The presets table of docs/algorithms.md: each named algorithm is exactly this configuration
# (fields not listed keep defaults).
TABLE = {
    "reinforce": dict(baseline="batch_mean", scale="none", ratio_level="none", trust_region="none", kl_coef=0.0,
                      aggregation="seq_mean_token_sum"),
    "rloo": dict(baseline="loo", scale="none", ratio_level="none", trust_region="none", kl_coef=0.05,
                 kl_estimator="k1", kl_placement="reward", aggregation="seq_mean_token_sum"),
    "ppo": dict(baseline="gae", gamma=1.0, lam=0.95, post_norm="batch_whiten", ratio_level="token",
                ratio_anchor="old", trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2, kl_coef=0.05,
                kl_estimator="k1", kl_placement="reward", aggregation="token_mean"),
    "grpo": dict(baseline="group_mean", scale="group_std", std_eps=1e-4, ratio_level="token", ratio_anchor="old",
                 trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2, kl_coef=0.04, kl_estimator="k3",
                 kl_placement="loss", aggregation="seq_mean_token_mean"),
    "dr_grpo": dict(baseline="group_mean", scale="none", trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2,
                    kl_coef=0.0, aggregation="seq_mean_token_sum_norm", norm_length=None),
    "dapo": dict(baseline="group_mean", scale="group_std", trust_region="clip", clip_eps_low=0.2,
                 clip_eps_high=0.28, kl_coef=0.0, aggregation="token_mean", zero_variance="refill",
                 overlong_mask=True, overlong_penalty=True, overlong_max_length=20480, overlong_buffer=4096),
    "cispo": dict(baseline="group_mean", scale="group_std", ratio_level="token", trust_region="cispo",
                  cispo_cap_max=5.0, cispo_cap_min=None, kl_coef=0.0, aggregation="token_mean"),
    "gspo": dict(baseline="group_mean", scale="group_std", ratio_level="sequence", ratio_anchor="old",
                 trust_region="clip", clip_eps_low=3e-4, clip_eps_high=4e-4, kl_coef=0.0,
                 aggregation="seq_mean_token_mean"),
    "sapo": dict(baseline="group_mean", scale="group_std", ratio_level="token", trust_region="sapo",
                 sapo_tau_pos=1.0, sapo_tau_neg=1.05, aggregation="seq_mean_token_mean"),
    "dppo": dict(baseline="group_mean", scale="none", ratio_level="token", ratio_anchor="rollout",
                 trust_region="dppo", dppo_divergence="tv", dppo_delta_low=0.15, dppo_delta_high=0.15,
                 dppo_is_cap=10.0, kl_coef=0.0, aggregation="token_mean"),
    "maxrl": dict(baseline="group_mean", scale="group_mean", ratio_level="none", trust_region="none", kl_coef=0.0,
                  aggregation="token_mean"),
    "scalerl": dict(baseline="group_mean", scale="batch_std", ratio_level="token", ratio_anchor="rollout",
                    trust_region="cispo", cispo_cap_max=5.0, kl_coef=0.0, aggregation="prompt_mean",
                    zero_variance="drop"),
    "reinforce_pp": dict(baseline="none", token_returns=True, post_norm="batch_whiten", ratio_level="token",
                         trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2, kl_estimator="k1",
                         kl_placement="reward", aggregation="token_mean"),
    "reinforce_pp_baseline": dict(baseline="group_mean", scale="none", post_norm="batch_whiten",
                                  trust_region="clip", kl_estimator="k2", kl_placement="loss",
                                  aggregation="token_mean"),
    "lite_ppo": dict(baseline="group_mean", scale="batch_std", trust_region="clip", aggregation="token_mean"),
    "gdpo": dict(baseline="group_mean", scale="group_std", multi_reward="normalize_then_sum", post_norm="batch_whiten",
                 ratio_level="token", trust_region="clip", clip_eps_low=0.2, clip_eps_high=0.2, kl_coef=0.0,
                 aggregation="token_mean"),
    "clip_cov": dict(baseline="group_mean", scale="group_std", ratio_level="token", trust_region="clip",
                     clip_eps_low=0.2, clip_eps_high=0.2, token_selector="clip_cov", clip_cov_frac=2e-4,
                     clip_cov_low=1.0, clip_cov_high=5.0, kl_coef=0.0, aggregation="token_mean"),
    "kl_cov": dict(baseline="group_mean", scale="group_std", ratio_level="token", trust_region="none",
                   token_selector="kl_cov", kl_cov_frac=2e-3, kl_cov_coef=1.0, kl_coef=0.0, aggregation="token_mean"),
    "forking_tokens": dict(baseline="group_mean", scale="group_std", trust_region="clip", clip_eps_low=0.2,
                           clip_eps_high=0.28, kl_coef=0.0, aggregation="token_mean", zero_variance="refill",
                           overlong_mask=True, overlong_penalty=True, token_selector="high_entropy",
                           entropy_top_frac=0.2),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_is_exactly_its_table_row(name):
    cfg = preset(name)
    for field, value in TABLE[name].items():
        assert getattr(cfg, field) == value, f"{name}.{field}"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_docstring_names_its_paper(name):
    doc = PRESETS[name].__doc__ or ""
    assert re.search(r"arXiv:\d{4}\.\d{4,5}|doi:10\.", doc), doc


def test_trainer_facing_properties():
    assert preset("forking_tokens").needs_entropy and not preset("dapo").needs_entropy
    assert not preset("clip_cov").needs_entropy and not preset("kl_cov").needs_entropy
    assert preset("gdpo").uses_reward_components and not preset("grpo").uses_reward_components
    assert preset("ppo").needs_value_model and preset("ppo").needs_ref and preset("ppo").token_level_advantages
    assert not preset("grpo").needs_value_model and preset("grpo").needs_ref
    assert not preset("dapo").needs_ref and preset("dapo").needs_old_logp and not preset("dapo").needs_rollout_logp
    assert preset("dppo").needs_rollout_logp and not preset("dppo").needs_old_logp
    assert preset("scalerl").needs_rollout_logp and preset("scalerl").needs_whole_groups
    assert not preset("maxrl").uses_ratio and not preset("maxrl").needs_old_logp
    assert not preset("reinforce").needs_whole_groups and preset("rloo").needs_whole_groups
    assert preset("maxrl", rollout_correction="tis").needs_rollout_logp
    assert preset("reinforce_pp").token_level_advantages


def test_overrides_apply_and_are_validated():
    cfg = preset("dapo", clip_eps_high=0.3, kl_coef=0.01)
    assert cfg.clip_eps_high == 0.3 and cfg.kl_coef == 0.01 and cfg.clip_eps_low == 0.2
    assert preset("dapo").clip_eps_high == 0.28  # the registry is not mutated
    with pytest.raises(ConfigError) as err:
        preset("grpo", clip_eps_low=1.5)
    assert err.value.field == "clip_eps_low"
    with pytest.raises(ConfigError, match="did you mean 'clip_eps_high'") as err:
        preset("grpo", clip_eps_hihg=0.3)
    assert err.value.field == "clip_eps_hihg"


def test_unknown_preset_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean") as err:
        preset("gpro")
    assert "'grpo'" in str(err.value).split("?")[0]  # among the suggestions, not only the full list
    assert err.value.field == "algorithm" and "known presets" in str(err.value)
    with pytest.raises(ConfigError, match="did you mean 'cispo'"):
        preset("cipso")
    with pytest.raises(ConfigError, match="did you mean 'dr_grpo'"):
        preset("drgrpo")


def test_a_new_preset_is_one_registered_function():
    @register_preset("test_only_tiny")
    def tiny() -> AlgorithmConfig:
        """Tiny test preset (arXiv:0000.00000)."""
        return AlgorithmConfig(clip_eps_high=0.25)

    try:
        assert preset("test_only_tiny").clip_eps_high == 0.25
        register_preset("test_only_tiny")(tiny)  # the same function again: harmless (a re-import)
        with pytest.raises(ValueError, match="already registered"):
            register_preset("test_only_tiny")(lambda: AlgorithmConfig())  # another one: a clash
    finally:
        PRESETS.unregister("test_only_tiny")


INVALID = [
    (dict(baseline="mean"), "baseline"),
    (dict(scale="std"), "scale"),
    (dict(post_norm="whiten"), "post_norm"),
    (dict(ratio_level="seq"), "ratio_level"),
    (dict(ratio_anchor="engine"), "ratio_anchor"),
    (dict(trust_region="ppo"), "trust_region"),
    (dict(kl_estimator="k4"), "kl_estimator"),
    (dict(kl_placement="both"), "kl_placement"),
    (dict(aggregation="mean"), "aggregation"),
    (dict(zero_variance="skip"), "zero_variance"),
    (dict(rollout_correction="icepop"), "rollout_correction"),
    (dict(dppo_divergence="js"), "dppo_divergence"),
    (dict(clip_eps_low=1.0), "clip_eps_low"),
    (dict(clip_eps_high=-0.1), "clip_eps_high"),
    (dict(clip_eps_low="0.2"), "clip_eps_low"),
    (dict(clip_eps_low=float("nan")), "clip_eps_low"),
    (dict(kl_coef=-0.1), "kl_coef"),
    (dict(kl_coef=True), "kl_coef"),
    (dict(gamma=1.1), "gamma"),
    (dict(lam=-0.5), "lam"),
    (dict(std_eps=0.0), "std_eps"),
    (dict(dual_clip=0.5), "dual_clip"),
    (dict(cispo_cap_max=0.0, trust_region="cispo"), "cispo_cap_max"),
    (dict(cispo_cap_min=6.0, trust_region="cispo"), "cispo_cap_min"),
    (dict(dppo_delta_low=0.0), "dppo_delta_low"),
    (dict(sapo_tau_neg=-1.0), "sapo_tau_neg"),
    (dict(norm_length=0), "norm_length"),
    (dict(norm_length=3.5), "norm_length"),
    (dict(overlong_buffer=0), "overlong_buffer"),
    (dict(overlong_max_length=100, overlong_buffer=200), "overlong_buffer"),
    (dict(overlong_mask="yes"), "overlong_mask"),
    (dict(rollout_correction_max=0.0), "rollout_correction_max"),
    (dict(rollout_correction_min=3.0, rollout_correction_max=2.0), "rollout_correction_min"),
    (dict(vf_coef=-1.0), "vf_coef"),
    (dict(value_clip=0.0), "value_clip"),
    (dict(token_returns=None), "token_returns"),
    (dict(multi_reward="gdpo"), "multi_reward"),
    (dict(token_selector="entropy"), "token_selector"),
    (dict(clip_cov_frac=0.0), "clip_cov_frac"),
    (dict(kl_cov_frac=1.5), "kl_cov_frac"),
    (dict(entropy_top_frac=0.0), "entropy_top_frac"),
    (dict(clip_cov_low=5.0, clip_cov_high=1.0), "clip_cov_high"),
    (dict(kl_cov_coef=-1.0), "kl_cov_coef"),
    # combinations
    (dict(ratio_level="sequence", aggregation="token_mean"), "aggregation"),
    (dict(ratio_level="sequence", aggregation="prompt_mean"), "aggregation"),
    (dict(ratio_level="sequence", aggregation="seq_mean_token_mean", trust_region="dppo"), "trust_region"),
    (dict(ratio_level="none", trust_region="clip"), "trust_region"),
    (dict(ratio_level="none", trust_region="cispo"), "trust_region"),
    (dict(dual_clip=3.0, trust_region="cispo"), "dual_clip"),
    (dict(baseline="none", scale="group_std"), "scale"),
    (dict(baseline="gae", scale="group_std"), "scale"),
    (dict(baseline="loo", scale="group_mean"), "scale"),
    (dict(token_returns=True, baseline="group_mean", scale="none"), "token_returns"),
    (dict(ratio_anchor="rollout", rollout_correction="tis"), "rollout_correction"),
    (dict(ratio_level="none", trust_region="none", token_selector="kl_cov"), "token_selector"),
    (dict(multi_reward="normalize_then_sum", baseline="gae", scale="none"), "multi_reward"),
    (dict(multi_reward="normalize_then_sum", baseline="none", scale="none", token_returns=True), "multi_reward"),
    (dict(multi_reward="normalize_then_sum", kl_coef=0.1, kl_placement="reward"), "kl_placement"),
]


@pytest.mark.parametrize(("kwargs", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_values_and_combinations_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        AlgorithmConfig(**kwargs)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_a_misspelled_choice_gets_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'seq_mean_token_mean'"):
        AlgorithmConfig(aggregation="seq_mean_tokn_mean")


def test_config_is_frozen_and_round_trips_through_a_dict():
    cfg = preset("gspo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.kl_coef = 1.0  # type: ignore[misc]
    assert AlgorithmConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="did you mean 'kl_coef'"):
        AlgorithmConfig.from_dict({"kl_coeff": 0.1})


def test_every_field_is_documented():
    for f in dataclasses.fields(AlgorithmConfig):
        assert len(f.metadata.get("help", "")) > 15, f.name
    assert "leave-one-out" in AlgorithmConfig.help("baseline")


def test_repr_shows_only_what_differs_from_the_defaults():
    assert repr(AlgorithmConfig()) == "AlgorithmConfig()"
    assert repr(preset("dapo", overlong_penalty=False)).startswith("AlgorithmConfig(clip_eps_high=0.28")


def test_a_new_advantage_baseline_is_one_decorated_function():
    import torch

    from rlvr.trainer.algorithms import BASELINES, compute_advantages, register_baseline

    @register_baseline("test_only_zero")
    def zero(rewards, valid):
        return torch.zeros_like(rewards)

    try:
        cfg = AlgorithmConfig(baseline="test_only_zero", scale="none")
        assert compute_advantages(torch.tensor([[1.0, 0.0]]), cfg).tolist() == [[1.0, 0.0]]
        with pytest.raises(ConfigError, match="did you mean 'test_only_zero'"):
            AlgorithmConfig(baseline="test_only_zer", scale="none")
    finally:
        BASELINES.unregister("test_only_zero")
