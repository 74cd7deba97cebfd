"""Advantage estimators, GAE, KL shaping, filters and the value loss against hand computations."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from rlvr.errors import ConfigError
from rlvr.trainer.algorithms import (
    PRESETS,
    AlgorithmConfig,
    compute_advantages,
    compute_gae,
    compute_token_advantages,
    discounted_returns,
    kl_penalty,
    kl_shaped_rewards,
    mask_truncated_completions,
    overlong_penalty,
    preset,
    value_loss,
    zero_variance_mask,
)

REWARDS = [[1.0, 0.0, 0.5, 0.0], [0.2, 0.9, 0.4, 0.4], [1.0, 1.0, 1.0, 0.0]]


def _t(x, dtype=torch.float64):
    return torch.tensor(x, dtype=dtype)


def _hand(rewards, baseline, scale):
    flat = [r for g in rewards for r in g]
    out = []
    for group in rewards:
        mean_g = sum(group) / len(group)
        for k, r in enumerate(group):
            if baseline == "none":
                a = r
            elif baseline == "batch_mean":
                a = r - sum(flat) / len(flat)
            elif baseline == "group_mean":
                a = r - mean_g
            else:  # loo
                others = group[:k] + group[k + 1:]
                a = r - sum(others) / len(others)
            if scale == "group_std":
                a /= statistics.stdev(group) + 1e-4
            elif scale == "batch_std":
                a /= statistics.stdev(flat) + 1e-4
            elif scale == "group_mean":
                a = a / mean_g if mean_g > 0 else 0.0
            out.append(a)
    return [out[i:i + len(rewards[0])] for i in range(0, len(out), len(rewards[0]))]


@pytest.mark.parametrize(
    ("baseline", "scale"),
    [("none", "none"), ("batch_mean", "none"), ("group_mean", "none"), ("loo", "none"),
     ("group_mean", "group_std"), ("group_mean", "batch_std"), ("group_mean", "group_mean"),
     ("loo", "group_std"), ("batch_mean", "batch_std")],
)
def test_advantages_match_hand_formulas(baseline, scale):
    cfg = AlgorithmConfig(baseline=baseline, scale=scale)
    got = compute_advantages(_t(REWARDS), cfg)
    torch.testing.assert_close(got, _t(_hand(REWARDS, baseline, scale)))


def test_group_std_is_torch_std_plus_1e_4():
    r = _t(REWARDS)
    want = (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + 1e-4)
    torch.testing.assert_close(compute_advantages(r, preset("grpo")), want)
    batch = (r - r.mean(-1, keepdim=True)) / (r.std() + 1e-4)
    torch.testing.assert_close(compute_advantages(r, preset("scalerl")), batch)


def test_batch_whitening_is_applied_after_centring():
    r = _t(REWARDS)
    centred = r - r.mean(-1, keepdim=True)
    want = (centred - centred.mean()) / (centred.std() + 1e-4)
    torch.testing.assert_close(compute_advantages(r, preset("reinforce_pp_baseline")), want)


def test_maxrl_advantage_is_zero_for_a_group_without_success():
    r = _t([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    adv = compute_advantages(r, preset("maxrl"))
    assert adv[0].tolist() == [0.0, 0.0, 0.0]
    assert adv[1].tolist() == pytest.approx([2.0, -1.0, -1.0])  # r/p̂ - 1 with p̂ = 1/3


@pytest.mark.parametrize("name", sorted(n for n in PRESETS if not preset(n).token_level_advantages))
def test_nan_rewards_are_excluded_and_get_zero_advantage(name):
    cfg = preset(name)
    with_nan = _t([[1.0, float("nan"), 0.0, 1.0], [0.0, 1.0, float("inf"), 0.5]])
    adv = compute_advantages(with_nan, cfg)
    assert torch.isfinite(adv).all()
    assert adv[0, 1].item() == 0.0 and adv[1, 2].item() == 0.0
    if cfg.baseline in ("group_mean", "loo") and cfg.scale != "batch_std" and cfg.post_norm == "none":
        # group statistics see only the valid rewards: same as computing on the shorter groups
        for row, kept in ((0, [0, 2, 3]), (1, [0, 1, 3])):
            alone = compute_advantages(with_nan[row, kept].unsqueeze(0), cfg)[0]
            torch.testing.assert_close(adv[row, kept], alone)


def test_nan_rewards_are_excluded_from_batch_statistics():
    cfg = preset("scalerl")
    r = _t([[1.0, float("nan"), 0.0], [0.0, 1.0, 1.0]])
    valid = [1.0, 0.0, 0.0, 1.0, 1.0]
    std = statistics.stdev(valid) + 1e-4
    want = [[(1 - 0.5) / std, 0.0, (0 - 0.5) / std], [(0 - 2 / 3) / std, (1 - 2 / 3) / std, (1 - 2 / 3) / std]]
    torch.testing.assert_close(compute_advantages(r, cfg), _t(want))


@pytest.mark.parametrize("name", sorted(n for n in PRESETS if not preset(n).token_level_advantages))
def test_group_size_one_gives_finite_advantages(name):
    cfg = preset(name)
    adv = compute_advantages(_t([[1.0], [0.0], [0.5]]), cfg)
    assert adv.shape == (3, 1) and torch.isfinite(adv).all()
    if cfg.baseline in ("group_mean", "loo"):
        assert torch.equal(adv, torch.zeros_like(adv))  # nothing to compare a lone sample with


def test_reinforce_uses_the_batch_mean_and_works_with_group_size_one():
    adv = compute_advantages(_t([[1.0], [0.0], [0.5]]), preset("reinforce"))
    assert adv.flatten().tolist() == pytest.approx([0.5, -0.5, 0.0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64, torch.int64])
def test_advantages_accept_any_reward_dtype_and_compute_in_at_least_float32(dtype):
    r = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0]]).to(dtype)
    adv = compute_advantages(r, preset("grpo"))
    assert adv.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    torch.testing.assert_close(adv.double(), compute_advantages(r.double(), preset("grpo")), rtol=1e-5, atol=1e-5)


def test_advantages_reject_flat_rewards_with_a_reshape_hint():
    with pytest.raises(ValueError, match="view"):
        compute_advantages(torch.ones(6), preset("grpo"))
    with pytest.raises(ValueError, match="compute_token_advantages"):
        compute_advantages(torch.ones(2, 3), preset("ppo"))


# ------------------------------------------------------------ GAE
def _hand_gae(rewards, values, length, gamma, lam):
    adv = [0.0] * len(rewards)
    last = 0.0
    for t in reversed(range(length)):
        next_v = values[t + 1] if t + 1 < length else 0.0
        delta = rewards[t] + gamma * next_v - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 0.95), (0.9, 0.8), (1.0, 1.0), (0.99, 0.0)])
def test_gae_matches_a_hand_loop(gamma, lam):
    gen = torch.Generator().manual_seed(3)
    rewards = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    values = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    lengths = [6, 3, 1]
    mask = torch.arange(6).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    values_padded = values.masked_fill(~mask, float("nan"))  # padding never leaks
    adv, ret = compute_gae(rewards, values_padded, mask, gamma, lam)
    for i, n in enumerate(lengths):
        want = _hand_gae(rewards[i].tolist(), values[i].tolist(), n, gamma, lam)
        assert adv[i, :n].tolist() == pytest.approx(want[:n])
        assert adv[i, n:].abs().sum().item() == 0.0
        assert ret[i, :n].tolist() == pytest.approx([a + v for a, v in zip(want[:n], values[i, :n].tolist())])
    assert not adv.requires_grad


def test_gae_skips_masked_holes_as_if_they_were_not_there():
    rewards = _t([[0.1, 9.0, 0.2, 0.0, 1.0]])
    values = _t([[0.5, 9.0, 0.3, 0.2, 0.1]])
    mask = torch.tensor([[True, False, True, True, True]])  # position 1 is a tool-output span
    adv, _ = compute_gae(rewards, values, mask, 1.0, 0.9)
    compact = _hand_gae([0.1, 0.2, 0.0, 1.0], [0.5, 0.3, 0.2, 0.1], 4, 1.0, 0.9)
    assert adv[0, [0, 2, 3, 4]].tolist() == pytest.approx(compact)
    assert adv[0, 1].item() == 0.0


def test_discounted_returns_are_reward_to_go():
    r = _t([[0.0, -0.1, 0.0, 1.0]])
    mask = torch.tensor([[True, True, True, True]])
    assert discounted_returns(r, mask, 1.0)[0].tolist() == pytest.approx([0.9, 0.9, 1.0, 1.0])
    assert discounted_returns(r, mask, 0.5)[0].tolist() == pytest.approx([-0.05 + 0.125, -0.1 + 0.25, 0.5, 1.0])


def test_gae_rejects_out_of_range_gamma_and_lambda():
    x = torch.zeros(1, 2)
    with pytest.raises(ConfigError, match="gamma"):
        compute_gae(x, x, x.bool(), 1.5, 0.9)
    with pytest.raises(ConfigError, match="lam"):
        compute_gae(x, x, x.bool(), 1.0, -0.1)


# ------------------------------------------------------------ KL
def test_kl_estimators_match_their_formulas_and_gradients():
    logp = _t([[-1.0, -0.5, -2.0]]).requires_grad_()
    ref = _t([[-1.2, -0.5, -1.0]])
    u = (logp - ref).detach()
    k1, k2, k3 = (kl_penalty(logp, ref, e) for e in ("k1", "k2", "k3"))
    torch.testing.assert_close(k1, u)
    torch.testing.assert_close(k2, 0.5 * u * u)
    torch.testing.assert_close(k3, torch.exp(-u) - 1 + u)
    assert (k3 >= 0).all() and (k2 >= 0).all()
    (g,) = torch.autograd.grad(k3.sum(), logp)
    torch.testing.assert_close(g, 1 - torch.exp(-u))
    with pytest.raises(ConfigError, match="kl_estimator"):
        kl_penalty(logp, ref, "k4")


def test_kl_shaped_rewards_put_the_score_on_the_last_token():
    mask = torch.tensor([[True, True, True, False], [True, False, False, False], [False] * 4])
    logp = _t([[-1.0, -1.0, -1.0, 0.0], [-2.0, 0.0, 0.0, 0.0], [0.0] * 4])
    ref = logp - 0.5
    shaped = kl_shaped_rewards(_t([1.0, 2.0, 3.0]), mask, logp=logp, ref_logp=ref, coef=0.1, estimator="k1")
    torch.testing.assert_close(shaped, _t([[-0.05, -0.05, 0.95, 0.0], [1.95, 0.0, 0.0, 0.0], [0.0] * 4]))


def _hand_token_adv(rewards, logp, ref, values, lengths, beta, gamma, lam, whiten=True):
    """KL-shaped token rewards -> GAE (values) or reward-to-go (values None) -> whiten over valid tokens."""
    advs, rets = [], []
    for i, n in enumerate(lengths):
        tr = [-beta * (logp[i][t] - ref[i][t]) for t in range(n)]
        tr[-1] += rewards[i]
        v = values[i][:n] if values is not None else [0.0] * n
        a = _hand_gae(tr, v, n, gamma, lam if values is not None else 1.0)
        advs.append(a)
        rets.append([x + y for x, y in zip(a, v)])
    flat = [x for a in advs for x in a]
    mean, std = sum(flat) / len(flat), statistics.stdev(flat)
    if whiten:
        advs = [[(x - mean) / (std + 1e-4) for x in a] for a in advs]
    return advs, rets


def _seq_data():
    gen = torch.Generator().manual_seed(11)
    lengths = [4, 2, 3, 1]
    mask = torch.arange(4).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    logp = torch.log(torch.rand(4, 4, generator=gen, dtype=torch.float64) * 0.9 + 0.05)
    ref = logp + 0.3 * torch.randn(4, 4, generator=gen, dtype=torch.float64)
    values = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    return lengths, mask, logp, ref, values


def test_ppo_advantages_are_whitened_gae_of_k1_shaped_rewards():
    lengths, mask, logp, ref, values = _seq_data()
    rewards = [1.0, 0.0, 1.0, 0.5]
    adv, ret = compute_token_advantages(_t([rewards]), mask, preset("ppo"), logp=logp, ref_logp=ref, values=values)
    want_adv, want_ret = _hand_token_adv(rewards, logp.tolist(), ref.tolist(), values.tolist(), lengths,
                                         0.05, 1.0, 0.95)
    for i, n in enumerate(lengths):
        assert adv[i, :n].tolist() == pytest.approx(want_adv[i])
        assert ret[i, :n].tolist() == pytest.approx(want_ret[i])
        assert adv[i, n:].abs().sum().item() == 0.0


def test_reinforce_pp_advantages_are_whitened_kl_shaped_returns():
    lengths, mask, logp, ref, _ = _seq_data()
    rewards = [1.0, 0.0, 1.0, 0.5]
    adv, ret = compute_token_advantages(_t([[r] for r in rewards]), mask, preset("reinforce_pp"), logp=logp, ref_logp=ref)
    want_adv, _ = _hand_token_adv(rewards, logp.tolist(), ref.tolist(), None, lengths, 0.01, 1.0, 1.0)
    assert ret is None
    for i, n in enumerate(lengths):
        assert adv[i, :n].tolist() == pytest.approx(want_adv[i])


def test_rloo_subtracts_summed_k1_from_the_reward_before_leave_one_out():
    lengths, mask, logp, ref, _ = _seq_data()
    rewards = [1.0, 0.0, 1.0, 0.5]
    adv, _ = compute_token_advantages(_t([rewards]), mask, preset("rloo"), logp=logp, ref_logp=ref)
    shaped = [rewards[i] - 0.05 * sum(logp[i, t].item() - ref[i, t].item() for t in range(n))
              for i, n in enumerate(lengths)]
    want = [shaped[k] - (sum(shaped) - shaped[k]) / 3 for k in range(4)]
    for i, n in enumerate(lengths):
        assert adv[i, :n].tolist() == pytest.approx([want[i]] * n)


def test_token_advantages_zero_out_unscorable_completions():
    lengths, mask, logp, ref, values = _seq_data()
    rewards = _t([[1.0, float("nan"), 0.0, 1.0]])
    for name in ("ppo", "reinforce_pp", "grpo"):
        adv, ret = compute_token_advantages(rewards, mask, preset(name), logp=logp, ref_logp=ref, values=values)
        assert torch.isfinite(adv).all() and adv[1].abs().sum().item() == 0.0
        if ret is not None:
            torch.testing.assert_close(ret[1, :2], values[1, :2])  # no value-learning signal either


def test_ppo_needs_values():
    _, mask, logp, ref, _ = _seq_data()
    with pytest.raises(ValueError, match="values"):
        compute_token_advantages(_t([[1.0, 0.0, 1.0, 0.0]]), mask, preset("ppo"), logp=logp, ref_logp=ref)


# ------------------------------------------------------------ value loss
def test_value_loss_is_half_the_clipped_squared_error_token_mean():
    values = _t([[1.0, 0.0, 2.0]]).requires_grad_()
    old = _t([[0.5, 0.0, 1.0]])
    returns = _t([[0.0, 1.0, 3.0]])
    mask = torch.tensor([[True, True, False]])
    loss, metrics = value_loss(values, returns, mask, old_values=old, clip_range=0.2)
    # token 0: unclipped (1-0)^2 = 1, clipped V = 0.7 -> 0.49, max 1; token 1: 1 both ways
    assert loss.item() == pytest.approx(0.5 * (1.0 + 1.0) / 2)
    (g,) = torch.autograd.grad(loss, values)
    torch.testing.assert_close(g, _t([[0.5, -0.5, 0.0]]))
    assert metrics["value_loss"] == pytest.approx(0.5)


# ------------------------------------------------------------ filters
def test_zero_variance_mask_flags_groups_without_signal():
    r = _t([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, float("nan")], [float("nan"), 1.0, float("nan")]])
    assert zero_variance_mask(r).tolist() == [True, False, True, True]


def test_overlong_penalty_is_dapo_soft_punishment():
    lengths = torch.tensor([10, 16, 17, 18, 20, 21, 40])
    got = overlong_penalty(lengths, max_length=20, buffer_length=4)
    assert got.tolist() == pytest.approx([0.0, 0.0, -0.25, -0.5, -1.0, -1.0, -1.0])
    assert overlong_penalty(lengths, 20, 4, factor=0.5).tolist() == pytest.approx([x * 0.5 for x in got.tolist()])
    with pytest.raises(ConfigError, match="overlong_buffer"):
        overlong_penalty(lengths, max_length=20, buffer_length=30)


def test_mask_truncated_completions_drops_whole_rows():
    mask = torch.ones(3, 4, dtype=torch.bool)
    out = mask_truncated_completions(mask, torch.tensor([False, True, False]))
    assert out.sum(-1).tolist() == [4, 0, 4]


def test_advantages_never_need_a_gradient():
    r = _t(REWARDS).requires_grad_()
    assert not compute_advantages(r, preset("grpo")).requires_grad
    assert math.isfinite(compute_advantages(r, preset("grpo")).sum().item())
