"""Rewards with named components: GDPO's normalise-each-then-sum against hand computation and the
authors' code path, and the sum-first rule every other preset keeps."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from rlvr.trainer.algorithms import compute_advantages, compute_token_advantages, preset

# two prompts x four samples x (correct, format) with weights (1.0, 0.5)
COMPONENTS = [
    [[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]],
    [[0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]],
]
WEIGHTS = [1.0, 0.5]


def _std(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) >= 2 else 0.0


def hand_gdpo(components, weights, eps=1e-4):
    """Per component (r - mean_g)/(std_g + eps), weighted sum, then whitened over the whole batch.

    A missing (NaN) value is left out of its component's statistics and contributes 0; a completion
    with every value missing is unscorable: left out of the whitening, advantage 0.
    """
    summed, scorable = [], []
    for group in components:
        k_count = len(group[0])
        per_k = []
        for k in range(k_count):
            present = [row[k] for row in group if not math.isnan(row[k])]
            mean, std = sum(present) / len(present), _std(present)
            per_k.append([0.0 if math.isnan(row[k]) else (row[k] - mean) / (std + eps) for row in group])
        summed.extend(sum(weights[k] * per_k[k][j] for k in range(k_count)) for j in range(len(group)))
        scorable.extend(not all(math.isnan(v) for v in row) for row in group)
    kept = [a for a, ok in zip(summed, scorable) if ok]
    mean, std = sum(kept) / len(kept), _std(kept)
    return [(a - mean) / (std + eps) if ok else 0.0 for a, ok in zip(summed, scorable)]


def authors_gdpo(components, weights):
    """The authors' TRL code path (NVlabs/GDPO, trl-0.18.0-gdpo grpo_trainer.py), restated in torch."""
    r = torch.nan_to_num(torch.tensor(components, dtype=torch.float64).reshape(-1, len(weights)))
    g = len(components[0])
    per_k = []
    for k in range(len(weights)):
        x = r[:, k].view(-1, g)
        per_k.append(((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-4)).reshape(-1))
    pre = (torch.stack(per_k, 1) * torch.tensor(weights, dtype=torch.float64)).nansum(1)
    return ((pre - pre.mean()) / (pre.std() + 1e-4)).tolist()


def test_gdpo_matches_hand_computation_and_the_authors_code():
    got = compute_advantages(torch.tensor(COMPONENTS, dtype=torch.float64), preset("gdpo"), weights=WEIGHTS)
    assert got.shape == (2, 4)
    assert got.reshape(-1).tolist() == pytest.approx(hand_gdpo(COMPONENTS, WEIGHTS), abs=1e-12)
    assert got.reshape(-1).tolist() == pytest.approx(authors_gdpo(COMPONENTS, WEIGHTS), abs=1e-12)


def test_grpo_sums_components_with_their_weights_first():
    got = compute_advantages(torch.tensor(COMPONENTS, dtype=torch.float64), preset("grpo"), weights=WEIGHTS)
    want = []
    for group in COMPONENTS:
        sums = [WEIGHTS[0] * c + WEIGHTS[1] * f for c, f in group]
        mean, std = sum(sums) / len(sums), _std(sums)
        want.extend((s - mean) / (std + 1e-4) for s in sums)
    assert got.reshape(-1).tolist() == pytest.approx(want, abs=1e-12)


def test_gdpo_keeps_apart_reward_combinations_that_grpo_collapses():
    """The paper's motivating case: two rollouts per prompt, two binary rewards. GRPO turns
    'both rewards vs none' and 'one reward vs none' into the same ±0.71; GDPO does not."""
    rewards = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    grpo = compute_advantages(rewards, preset("grpo"))
    gdpo = compute_advantages(rewards, preset("gdpo"))
    assert grpo[0].tolist() == pytest.approx(grpo[1].tolist(), abs=1e-3)  # equal up to the std's eps
    gap = gdpo[:, 0] - gdpo[:, 1]
    assert gap[0] > 1.5 * gap[1] > 0


def test_missing_component_values_are_left_out_not_counted_as_zero():
    components = [[[1.0, float("nan")], [0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [float("nan"), float("nan")], [1.0, 1.0]]]
    got = compute_advantages(torch.tensor(components, dtype=torch.float64), preset("gdpo"), weights=WEIGHTS)
    assert torch.isfinite(got).all()
    assert got[1, 1].item() == 0.0  # no component at all: unscorable, advantage 0
    assert got.reshape(-1).tolist() == pytest.approx(hand_gdpo(components, WEIGHTS), abs=1e-12)


def test_a_single_component_gdpo_is_grpo_whitened_over_the_batch():
    rewards = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]], dtype=torch.float64)
    one = compute_advantages(rewards, preset("gdpo"))
    as_component = compute_advantages(rewards.unsqueeze(-1), preset("gdpo"))
    grpo = compute_advantages(rewards, preset("grpo")).reshape(-1)
    whitened = (grpo - grpo.mean()) / (grpo.std() + 1e-4)
    torch.testing.assert_close(one.reshape(-1), whitened)
    torch.testing.assert_close(one, as_component)


def test_token_advantages_accept_components_for_every_rule():
    mask = torch.ones(8, 3, dtype=torch.bool)
    mask[1, 2] = False
    rewards = torch.tensor(COMPONENTS, dtype=torch.float64)
    for name in ("gdpo", "grpo", "dr_grpo"):
        cfg = preset(name)
        adv, returns = compute_token_advantages(rewards, mask, cfg, weights=WEIGHTS)
        per_completion = compute_advantages(rewards, cfg, weights=WEIGHTS).reshape(-1)
        assert returns is None
        torch.testing.assert_close(adv[:, 0], per_completion)
        assert adv[1, 2].item() == 0.0


def test_component_weights_must_match_the_components():
    rewards = torch.tensor(COMPONENTS, dtype=torch.float64)
    with pytest.raises(ValueError, match="2 components"):
        compute_advantages(rewards, preset("gdpo"), weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        compute_advantages(rewards, preset("gdpo"), weights=[1.0, float("inf")])
    with pytest.raises(ValueError, match=r"\[P, G, K\]"):
        compute_advantages(rewards.unsqueeze(-1), preset("gdpo"))


def test_hostile_component_values_never_give_nan():
    rewards = torch.tensor([[[1e308, -1e308], [float("inf"), 0.0], [0.0, float("-inf")]],
                            [[float("nan")] * 2, [0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    for name in ("gdpo", "grpo"):
        adv = compute_advantages(rewards, preset(name))
        assert torch.isfinite(adv).all(), name
