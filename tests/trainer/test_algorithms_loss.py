"""policy_loss: on-policy equivalences, global normalisation under micro-batching, robustness."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.trainer.algorithms import (
    AGGREGATIONS,
    PRESETS,
    AlgorithmConfig,
    compute_advantages,
    compute_token_advantages,
    count_loss_units,
    policy_loss,
    preset,
)


def _batch(b=8, t=5, seed=0, dtype=torch.float64, lengths=None):
    gen = torch.Generator().manual_seed(seed)
    lengths = lengths or [5, 2, 4, 1, 3, 5, 2, 4][:b]
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    logp = torch.log(torch.rand(b, t, generator=gen, dtype=torch.float64) * 0.9 + 0.05).to(dtype)
    adv = (torch.randn(b, generator=gen, dtype=torch.float64)).to(dtype)
    old = (logp.double() + 0.3 * torch.randn(b, t, generator=gen, dtype=torch.float64)).to(dtype)
    return logp, adv, mask, old


def _grad(cfg, logp, adv, mask, **kw):
    if cfg.needs_entropy and "entropy" not in kw:  # any per-token spread will do: -log p of the sampled token
        kw["entropy"] = -logp.detach()
    x = logp.clone().requires_grad_()
    loss, _ = policy_loss(x, adv, mask, cfg, **kw)
    (g,) = torch.autograd.grad(loss, x)
    return loss, g


# ------------------------------------------------------------ on-policy equivalences (docs/algorithms.md §6)
@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"])
@pytest.mark.parametrize(
    "trust_region",
    [dict(trust_region="clip"), dict(trust_region="clip", clip_eps_low=0.1, clip_eps_high=0.28, dual_clip=3.0),
     dict(trust_region="cispo"), dict(trust_region="dppo", ratio_anchor="rollout"),
     dict(trust_region="dppo", dppo_divergence="kl"), dict(trust_region="sapo")],
)
def test_on_policy_every_trust_region_gives_the_vanilla_gradient(trust_region, aggregation):
    """With ρ ≡ 1, PPO-clip, CISPO, DPPO (no mismatch) and SAPO all give -A ∇log π."""
    logp, adv, mask, _ = _batch()
    vanilla = AlgorithmConfig(ratio_level="none", trust_region="none", aggregation=aggregation)
    cfg = AlgorithmConfig(ratio_level="token", aggregation=aggregation, **trust_region)
    _, want = _grad(vanilla, logp, adv, mask)
    _, got = _grad(cfg, logp, adv, mask)  # old_logp=None: on-policy
    torch.testing.assert_close(got, want)
    _, got_explicit = _grad(cfg, logp, adv, mask, old_logp=logp.detach(), rollout_logp=logp.detach())
    torch.testing.assert_close(got_explicit, want)


def test_on_policy_gspo_gives_the_length_normalised_gradient_of_grpo():
    """GSPO on-policy: -A (1/|y|) Σ_t ∇log π per sequence — the same as GRPO's on-policy gradient."""
    logp, adv, mask, _ = _batch()
    _, gspo = _grad(preset("gspo"), logp, adv, mask)
    _, grpo = _grad(preset("grpo"), logp, adv, mask)
    _, vanilla = _grad(AlgorithmConfig(ratio_level="none", trust_region="none", aggregation="seq_mean_token_mean"),
                       logp, adv, mask)
    torch.testing.assert_close(gspo, grpo)
    torch.testing.assert_close(gspo, vanilla)
    n_seq = int(mask.any(-1).sum())
    expected = torch.where(mask, -adv.unsqueeze(-1) / (mask.sum(-1, keepdim=True) * n_seq), torch.zeros_like(logp))
    torch.testing.assert_close(gspo, expected)


def test_rloo_advantages_are_dr_grpo_advantages_times_g_over_g_minus_1():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.2, 0.9, 0.4, 0.4], [1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    g = rewards.shape[1]
    rloo = compute_advantages(rewards, preset("rloo"))
    dr = compute_advantages(rewards, preset("dr_grpo"))
    torch.testing.assert_close(rloo, dr * g / (g - 1))


def test_rloo_and_dr_grpo_on_policy_gradients_differ_only_by_the_constant():
    """Same direction: RLOO's seq-sum loss vs a seq-sum REINFORCE loss on Dr. GRPO advantages."""
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.2, 0.9, 0.4, 0.4]], dtype=torch.float64)
    logp, _, mask, _ = _batch()
    seq_sum = AlgorithmConfig(ratio_level="none", trust_region="none", aggregation="seq_mean_token_sum", scale="none")
    _, g_rloo = _grad(preset("rloo"), logp, compute_advantages(rewards, preset("rloo")).reshape(-1), mask)
    _, g_dr = _grad(seq_sum, logp, compute_advantages(rewards, preset("dr_grpo")).reshape(-1), mask)
    torch.testing.assert_close(g_rloo, g_dr * 4 / 3)


# ------------------------------------------------------------ global normalisation
def _cfg_for(aggregation):
    ratio = dict(ratio_level="sequence") if aggregation == "seq_mean_token_mean" else {}
    return AlgorithmConfig(aggregation=aggregation, trust_region="clip", kl_coef=0.1, **ratio)


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
def test_micro_batches_with_the_global_normalizer_sum_to_the_big_batch_gradient(aggregation):
    cfg = _cfg_for(aggregation)
    logp, adv, mask, old = _batch()
    mask[5] = False  # an empty completion inside the second micro-batch
    ref = logp.detach() - 0.2
    kw = dict(group_size=2, max_completion_length=7)
    x = logp.clone().requires_grad_()
    full, _ = policy_loss(x, adv, mask, cfg, old_logp=old, ref_logp=ref, **kw)
    (g_full,) = torch.autograd.grad(full, x)

    n = count_loss_units(mask, cfg, group_size=2)
    parts = [slice(0, 4), slice(4, 8)]
    assert n == sum(count_loss_units(mask[s], cfg, group_size=2) for s in parts)
    y = logp.clone().requires_grad_()
    total = sum(policy_loss(y[s], adv[s], mask[s], cfg, old_logp=old[s], ref_logp=ref[s], normalizer=n, **kw)[0]
                for s in parts)
    (g_micro,) = torch.autograd.grad(total, y)
    torch.testing.assert_close(total, full)
    torch.testing.assert_close(g_micro, g_full)


def test_local_normalisation_would_not_match_so_the_invariance_test_has_teeth():
    cfg = AlgorithmConfig(aggregation="token_mean")
    logp, adv, mask, old = _batch()
    full, g_full = _grad(cfg, logp, adv, mask, old_logp=old)
    y = logp.clone().requires_grad_()
    total = sum(policy_loss(y[s], adv[s], mask[s], cfg, old_logp=old[s])[0] for s in (slice(0, 4), slice(4, 8))) / 2
    (g_local,) = torch.autograd.grad(total, y)
    assert not torch.allclose(g_local, g_full)


def test_normalizer_means_units_of_the_aggregation():
    logp, adv, mask, _ = _batch()
    mask[3] = False
    assert count_loss_units(mask, AlgorithmConfig(aggregation="token_mean")) == int(mask.sum())
    for agg in ("seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"):
        cfg = AlgorithmConfig(aggregation=agg, ratio_level="token")
        assert count_loss_units(mask, cfg) == 7  # 8 rows, one empty
    assert count_loss_units(mask, AlgorithmConfig(aggregation="prompt_mean"), group_size=4) == 2
    # a tensor normalizer (e.g. an all-reduced count) works like a number
    cfg = AlgorithmConfig(aggregation="token_mean")
    a, _ = policy_loss(logp, adv, mask, cfg, normalizer=40)
    b, _ = policy_loss(logp, adv, mask, cfg, normalizer=torch.tensor(40.0))
    assert a.item() == b.item()


def test_dr_grpo_divides_by_batch_times_max_completion_length():
    logp, adv, mask, _ = _batch()
    cfg = preset("dr_grpo")
    loss, _ = policy_loss(logp, adv, mask, cfg, max_completion_length=16)
    expected = (-adv.unsqueeze(-1).expand_as(logp))[mask].sum() / (8 * 16)
    assert loss.item() == pytest.approx(expected.item())
    with pytest.raises(Exception, match="norm_length"):
        policy_loss(logp, adv, mask, cfg)  # no constant length anywhere
    fixed, _ = policy_loss(logp, adv, mask, preset("dr_grpo", norm_length=16))
    assert fixed.item() == pytest.approx(loss.item())


# ------------------------------------------------------------ trust-region details
def test_dual_clip_caps_negative_advantage_loss_and_zeroes_its_gradient():
    cfg = AlgorithmConfig(trust_region="clip", dual_clip=3.0, aggregation="token_mean")
    logp = torch.tensor([[-1.0, -1.0, -1.0]], dtype=torch.float64)
    old = logp - torch.tensor([[math.log(5.0), math.log(2.0), math.log(0.5)]], dtype=torch.float64)  # ratios 5, 2, .5
    adv = torch.tensor([-1.0], dtype=torch.float64)
    loss, g = _grad(cfg, logp, adv, torch.ones(1, 3, dtype=torch.bool), old_logp=old)
    # ratio 5 > c: loss capped at -c*A = 3, no gradient; ratio 2: -min(2*-1, 1.2*-1) = 2, grad -A*ratio = 2;
    # ratio .5 < 0.8 with A < 0: clipped, loss 0.8, grad 0
    assert loss.item() == pytest.approx((3.0 + 2.0 + 0.8) / 3)
    torch.testing.assert_close(g, torch.tensor([[0.0, 2.0 / 3, 0.0]], dtype=torch.float64))


def test_dppo_binary_kl_mask_drops_only_far_moves_in_the_advantage_direction():
    cfg = AlgorithmConfig(trust_region="dppo", dppo_divergence="kl", dppo_delta_low=0.05, dppo_delta_high=0.05,
                          ratio_anchor="rollout", aggregation="token_mean")
    mu = torch.tensor([[0.5, 0.5, 0.5, 0.5]], dtype=torch.float64)
    pi = torch.tensor([[0.9, 0.52, 0.1, 0.9]], dtype=torch.float64)
    adv = torch.tensor([1.0], dtype=torch.float64)

    def bkl(q, p):
        return q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))

    keep = [bkl(0.5, p) <= 0.05 or p <= 0.5 for p in pi[0].tolist()]
    assert keep == [False, True, True, False]
    _, g = _grad(cfg, pi.log(), adv, torch.ones(1, 4, dtype=torch.bool), rollout_logp=mu.log())
    ratio = (pi / mu)[0].tolist()
    expected = [(-min(r, 10.0) / 4 if k else 0.0) for r, k in zip(ratio, keep)]
    torch.testing.assert_close(g[0], torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("mode", ["tis", "mis"])
def test_rollout_correction_multiplies_the_loss_by_the_corrected_engine_ratio(mode, level):
    cfg = AlgorithmConfig(ratio_level="none", trust_region="none", aggregation="token_mean",
                          rollout_correction=mode, rollout_correction_level=level,
                          rollout_correction_min=0.5, rollout_correction_max=1.5)
    logp, adv, mask, old = _batch()
    rollout = old - torch.linspace(-0.6, 0.6, logp.numel(), dtype=torch.float64).view_as(logp)
    loss, g = _grad(cfg, logp, adv, mask, old_logp=old, rollout_logp=rollout)
    n = mask.sum().item()
    want_loss, want_grad = 0.0, torch.zeros_like(logp)
    for i in range(logp.shape[0]):
        seq_w = math.exp(sum((old[i, t] - rollout[i, t]).item() for t in range(logp.shape[1]) if mask[i, t]))
        for t in range(logp.shape[1]):
            if not mask[i, t]:
                continue
            w = seq_w if level == "sequence" else math.exp((old[i, t] - rollout[i, t]).item())
            w = min(max(w, 0.5), 1.5) if mode == "tis" else (w if 0.5 <= w <= 1.5 else 0.0)
            want_loss += -w * adv[i].item() * logp[i, t].item() / n
            want_grad[i, t] = -w * adv[i].item() / n
    assert loss.item() == pytest.approx(want_loss)
    torch.testing.assert_close(g, want_grad)


# ------------------------------------------------------------ robustness
# a critic's advantages depend on its values, not only on the rewards: PPO is not reward-only
REWARD_ONLY_PRESETS = sorted(n for n in PRESETS if not preset(n).needs_value_model)


# KL-Cov's |log ρ| penalty pulls towards the anchor whatever the advantages (tested on its own below)
@pytest.mark.parametrize("name", [n for n in REWARD_ONLY_PRESETS if n != "kl_cov"])
def test_all_equal_rewards_give_zero_advantages_and_zero_gradient(name):
    cfg = preset(name)
    logp, _, mask, old = _batch()
    for value in (0.0, 1.0, 0.3):
        rewards = torch.full((2, 4), value, dtype=torch.float64)
        adv, _ = compute_token_advantages(rewards, mask, cfg)
        assert torch.equal(adv, torch.zeros_like(adv))
        if not cfg.token_level_advantages:
            assert torch.equal(compute_advantages(rewards, cfg), torch.zeros(2, 4, dtype=torch.float64))
        _, g = _grad(cfg, logp, adv, mask, old_logp=old, rollout_logp=old, group_size=4, max_completion_length=5)
        assert torch.equal(g, torch.zeros_like(g))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_empty_completions_never_give_nan_and_do_not_count(name):
    cfg = preset(name)
    logp, adv, mask, old = _batch()
    kw = dict(old_logp=old, rollout_logp=old - 0.1, ref_logp=old - 0.2, group_size=2, max_completion_length=5)
    # rows 6-7 (a whole prompt group) are empty and full of garbage
    mask[6:] = False
    garbage = logp.clone()
    garbage[6:] = float("nan")
    dirty_adv = adv.clone()
    dirty_adv[6:] = float("inf")
    loss, g = _grad(cfg, garbage, dirty_adv, mask, **kw)
    assert torch.isfinite(loss) and torch.isfinite(g).all()
    assert torch.equal(g[6:], torch.zeros_like(g[6:]))
    sub = {k: (v[:6] if torch.is_tensor(v) else v) for k, v in kw.items()}
    ref_loss, ref_g = _grad(cfg, logp[:6], adv[:6], mask[:6], **sub)
    if cfg.aggregation != "seq_mean_token_sum_norm":  # Dr. GRPO's constant is B·L by definition
        torch.testing.assert_close(loss, ref_loss)
        torch.testing.assert_close(g[:6], ref_g)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_batch_with_no_tokens_at_all_gives_zero_loss_and_gradient(name):
    cfg = preset(name)
    logp, adv, _, old = _batch()
    mask = torch.zeros_like(logp, dtype=torch.bool)
    loss, g = _grad(cfg, logp, adv, mask, old_logp=old, rollout_logp=old, ref_logp=old, group_size=2,
                    max_completion_length=5)
    assert loss.item() == 0.0 and torch.equal(g, torch.zeros_like(g))


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_inputs_match_float64(name, dtype):
    cfg = preset(name)
    logp, adv, mask, old = _batch()
    kw = dict(group_size=2, max_completion_length=5)
    want, g_want = _grad(cfg, logp, adv, mask, old_logp=old, rollout_logp=old - 0.05, ref_logp=old - 0.1, **kw)
    lo = logp.to(dtype)
    got, g_got = _grad(cfg, lo, adv.to(dtype), mask, old_logp=old.to(dtype), rollout_logp=(old - 0.05).to(dtype),
                       ref_logp=(old - 0.1).to(dtype), **kw)
    assert got.dtype == torch.float32 and g_got.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 0.05
    assert got.item() == pytest.approx(want.item(), abs=tol * (1 + abs(want.item())))
    assert torch.isfinite(g_got).all()
    if dtype == torch.float32:
        torch.testing.assert_close(g_got.double(), g_want, rtol=1e-4, atol=1e-6)


def test_int_and_float_masks_are_accepted():
    cfg = preset("dapo")
    logp, adv, mask, old = _batch()
    a, _ = policy_loss(logp, adv, mask, cfg, old_logp=old)
    b, _ = policy_loss(logp, adv, mask.long(), cfg, old_logp=old)
    c, _ = policy_loss(logp, adv, mask.double(), cfg, old_logp=old)
    assert a.item() == b.item() == c.item()


def test_shape_mismatches_raise_clear_errors():
    cfg = preset("grpo")
    logp, adv, mask, old = _batch()
    with pytest.raises(ValueError, match="old_logp"):
        policy_loss(logp, adv, mask, cfg, old_logp=old[:, :3])
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(logp, adv[:3], mask, cfg)
    with pytest.raises(ValueError, match="group_size"):
        policy_loss(logp, adv, mask, preset("scalerl"))
    with pytest.raises(ValueError, match="whole groups"):
        policy_loss(logp, adv, mask, preset("scalerl"), group_size=3)


def test_metrics_are_plain_floats_with_clip_fractions():
    cfg = preset("dapo")
    logp, adv, mask, old = _batch()
    _, metrics = policy_loss(logp, adv, mask, cfg, old_logp=old, ref_logp=old)
    assert all(isinstance(v, float) for v in metrics.values())
    for key in ("loss", "clip_frac", "clip_frac_low", "clip_frac_high", "ratio_mean", "kl", "num_tokens"):
        assert key in metrics
    ratio = torch.exp(logp - old)[mask]
    assert metrics["ratio_mean"] == pytest.approx(ratio.mean().item())
    assert metrics["num_tokens"] == mask.sum().item()
