"""Token selectors (Clip-Cov, KL-Cov, high-entropy forking tokens): which tokens keep their gradient."""

from __future__ import annotations

import pytest
import torch

from rlvr.trainer.algorithms import AlgorithmConfig, policy_loss, preset
from rlvr.trainer.algorithms.token_selectors import TOKEN_SELECTORS, SelectorInputs, covariance, quantile


def _grad(cfg, logp, adv, mask, **kw):
    x = logp.clone().requires_grad_()
    loss, metrics = policy_loss(x, adv, mask, cfg, **kw)
    (g,) = torch.autograd.grad(loss, x)
    return loss, g, metrics


def _batch(b=6, t=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logp = torch.log(torch.rand(b, t, generator=gen, dtype=torch.float64) * 0.9 + 0.05)
    adv = torch.randn(b, generator=gen, dtype=torch.float64) * 2
    old = logp + 0.2 * torch.randn(b, t, generator=gen, dtype=torch.float64)
    entropy = torch.rand(b, t, generator=gen, dtype=torch.float64) * 3
    mask = torch.arange(t).unsqueeze(0) < torch.tensor([8, 3, 6, 1, 8, 5][:b]).unsqueeze(1)
    return logp, adv, mask, old, entropy


# ------------------------------------------------------------ high-entropy forking tokens
def test_forking_tokens_train_only_the_top_fifth_by_entropy_over_all_tokens():
    logp, adv, mask, old, entropy = _batch()
    cfg = preset("forking_tokens")
    _, g, metrics = _grad(cfg, logp, adv, mask, old_logp=old, entropy=entropy)
    _, g_dapo, _ = _grad(preset("dapo"), logp, adv, mask, old_logp=old)
    threshold = torch.quantile(entropy[mask], 0.8)
    keep = mask & (entropy >= threshold)
    assert 0 < keep.sum() < mask.sum()
    assert metrics["high_entropy_frac"] == pytest.approx(keep.sum().item() / mask.sum().item())
    # kept tokens get exactly DAPO's gradient (same all-token denominator), the others none
    torch.testing.assert_close(g[keep], g_dapo[keep])
    assert torch.equal(g[~keep], torch.zeros_like(g[~keep]))


def test_forking_tokens_leave_the_reference_kl_on_every_token():
    logp, adv, mask, old, entropy = _batch()
    ref = logp - 0.3
    cfg = preset("forking_tokens", kl_coef=0.1, kl_estimator="k1")
    _, g, _ = _grad(cfg, logp, adv, mask, old_logp=old, ref_logp=ref, entropy=entropy)
    dropped = mask & (entropy < torch.quantile(entropy[mask], 0.8))
    # a dropped token keeps only the k1 term's gradient, 0.1 / number of tokens
    torch.testing.assert_close(g[dropped], torch.full_like(g[dropped], 0.1 / mask.sum().item()))


def test_high_entropy_selector_without_entropies_names_the_missing_argument():
    logp, adv, mask, old, _ = _batch()
    with pytest.raises(ValueError, match="entropy="):
        policy_loss(logp, adv, mask, preset("forking_tokens"), old_logp=old)
    with pytest.raises(ValueError, match="entropy"):
        policy_loss(logp, adv, mask, preset("forking_tokens"), old_logp=old, entropy=torch.zeros(2, 2))


def test_broken_entropies_never_crash_and_never_select_their_token():
    logp, adv, mask, old, entropy = _batch()
    entropy = entropy.clone()
    entropy[0, 0] = float("nan")
    entropy[0, 1] = float("inf")
    entropy[~mask] = float("nan")  # padding garbage
    loss, g, _ = _grad(preset("forking_tokens"), logp, adv, mask, old_logp=old, entropy=entropy)
    assert torch.isfinite(loss) and torch.isfinite(g).all()
    assert g[0, 0] == 0 and g[0, 1] == 0


def test_quantile_matches_torch_quantile():
    gen = torch.Generator().manual_seed(3)
    for n in (1, 2, 7, 100):
        x = torch.rand(n, generator=gen, dtype=torch.float64)
        for q in (0.0, 0.3, 0.8, 1.0):
            assert quantile(x, q).item() == pytest.approx(torch.quantile(x, q).item(), abs=1e-12)


def test_entropy_top_frac_one_is_dapo():
    logp, adv, mask, old, entropy = _batch()
    _, g, _ = _grad(preset("forking_tokens", entropy_top_frac=1.0), logp, adv, mask, old_logp=old, entropy=entropy)
    _, g_dapo, _ = _grad(preset("dapo"), logp, adv, mask, old_logp=old)
    torch.testing.assert_close(g, g_dapo)


# ------------------------------------------------------------ covariance selectors
def test_covariance_is_centred_over_loss_tokens_only():
    logp, adv, mask, _, _ = _batch()
    a = adv.unsqueeze(-1).expand_as(logp)
    cov = covariance(logp, a, mask)
    want = (a[mask] - a[mask].mean()) * (logp[mask] - logp[mask].mean())
    torch.testing.assert_close(cov[mask], want)
    assert torch.equal(cov[~mask], torch.zeros_like(cov[~mask]))


def test_kl_cov_penalises_exactly_the_top_covariance_tokens():
    logp, adv, mask, old, _ = _batch()
    cfg = preset("kl_cov", kl_cov_frac=0.1)  # floor(0.1 * 39) = 3 tokens
    n = int(mask.sum())
    _, g, metrics = _grad(cfg, logp, adv, mask, old_logp=old)
    cov = covariance(logp, adv.unsqueeze(-1).expand_as(logp), mask).masked_fill(~mask, -torch.inf)
    top = torch.zeros_like(mask)
    top.view(-1)[cov.reshape(-1).topk(3).indices] = True
    ratio = torch.exp(logp - old)
    want = torch.where(mask, -ratio * adv.unsqueeze(-1), torch.zeros_like(ratio))
    want = torch.where(top, want + torch.sign(logp - old), want) / n
    torch.testing.assert_close(g, want)
    assert metrics["kl_cov_frac"] == pytest.approx(3 / n)


def test_kl_cov_on_policy_first_step_is_plain_policy_gradient():
    """|log ρ| is 0 with zero gradient when ρ ≡ 1: the penalty acts only once the policy has moved."""
    logp, adv, mask, _, _ = _batch()
    _, g, _ = _grad(preset("kl_cov", kl_cov_frac=0.5), logp, adv, mask)
    _, g_plain, _ = _grad(AlgorithmConfig(ratio_level="none", trust_region="none"), logp, adv, mask)
    torch.testing.assert_close(g, g_plain)


def test_kl_cov_with_equal_rewards_only_pulls_towards_the_anchor():
    logp, _, mask, old, _ = _batch()
    adv = torch.zeros(logp.shape[0], dtype=torch.float64)
    _, g, _ = _grad(preset("kl_cov"), logp, adv, mask, old_logp=old)
    assert (g != 0).sum() == 1  # max(1, floor(2e-3 * 39)) = 1 token, gradient sign(log ρ) / N
    assert g[g != 0].abs().item() == pytest.approx(1 / mask.sum().item())


def test_clip_cov_drops_the_requested_number_of_band_tokens_and_never_a_clipped_one():
    logp, adv, mask, old, _ = _batch(seed=5)
    base = preset("clip_cov", clip_cov_low=-10.0, clip_cov_high=10.0, clip_cov_frac=0.2)
    plain = base.replace(token_selector="none")
    n = int(mask.sum())
    _, g_plain, m_plain = _grad(plain, logp, adv, mask, old_logp=old)
    ratio, a = torch.exp(logp - old), adv.unsqueeze(-1)
    clipped = mask & (((ratio > 1.2) & (a > 0)) | ((ratio < 0.8) & (a < 0)))
    assert clipped.any()
    for seed in range(5):
        _, g, metrics = _grad(base, logp, adv, mask, old_logp=old, generator=torch.Generator().manual_seed(seed))
        changed = ~torch.isclose(g, g_plain)
        assert changed.sum() == int(0.2 * n)
        assert torch.equal(g[changed], torch.zeros_like(g[changed]))
        assert metrics["clip_cov_frac"] == pytest.approx(int(0.2 * n) / n)
        assert not (changed & clipped).any()


def test_selectors_on_an_empty_batch_give_zero_loss():
    logp, adv, _, old, entropy = _batch()
    mask = torch.zeros_like(logp, dtype=torch.bool)
    for name in ("clip_cov", "kl_cov", "forking_tokens"):
        loss, g, _ = _grad(preset(name), logp, adv, mask, old_logp=old, entropy=entropy)
        assert loss.item() == 0.0 and torch.equal(g, torch.zeros_like(g))


class _OneProcess:
    """Just enough of accelerate's Accelerator for TRL's entropy mask on a single process."""

    def pad_across_processes(self, t, dim=0, pad_index=0):
        return t

    def gather(self, t):
        return t


def test_high_entropy_tokens_are_the_ones_trl_selects():
    """TRL 1.16's GRPOTrainer.get_high_entropy_mask (top_entropy_quantile) is the peer implementation."""
    grpo_trainer = pytest.importorskip("trl.trainer.grpo_trainer")
    trainer = type("Peer", (), {"accelerator": _OneProcess()})()
    for seed in range(20):
        logp, adv, mask, old, entropy = _batch(seed=seed)
        # float32, as the trainer's forward gives them (TRL takes its quantile in float32, so float64
        # entropies sitting exactly on the threshold would be rounded out there)
        entropy = entropy.float()
        for frac in (0.2, 0.5):
            peer = grpo_trainer.GRPOTrainer.get_high_entropy_mask(trainer, entropy, mask.long(), 1 - frac)
            cfg = preset("forking_tokens", entropy_top_frac=frac)
            ones = torch.ones_like(logp)
            inputs = SelectorInputs(ones, logp, None, torch.zeros_like(logp), mask, torch.zeros_like(mask),
                                    entropy.double(), None)
            ours = TOKEN_SELECTORS["high_entropy"].select(inputs, cfg).loss != 0
            assert torch.equal(ours, peer)
            _, g, metrics = _grad(cfg, logp, adv, mask, old_logp=old, entropy=entropy)
            assert metrics["high_entropy_frac"] == pytest.approx(peer.sum().item() / mask.sum().item())
            assert not (g != 0)[~peer].any()
