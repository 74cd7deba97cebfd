"""Asynchronous training, in one process: staleness rules, shared weights, in-flight version tags, refusals."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.asynchronous.checks import check_async, default_off_policy_steps, resolve_off_policy_steps  # noqa: E402
from rlvr.trainer.asynchronous.staleness import NOT_SAMPLED, group_staleness, histogram, stale_groups  # noqa: E402
from rlvr.trainer.asynchronous.versioned import expand_marks  # noqa: E402
from rlvr.trainer.asynchronous.weights import SharedWeights, WeightFollower  # noqa: E402


def test_group_staleness_is_counted_from_the_oldest_model_token():
    # two groups of two episodes; env tokens (NOT_SAMPLED) never count
    versions = [[3, 3, NOT_SAMPLED, 4], [4, 4], [5, 5], [NOT_SAMPLED, 5, 6]]
    assert group_staleness(versions, 2, version=6) == [3, 1]
    assert stale_groups([3, 1], k=2) == [0]
    assert stale_groups([3, 1], k=3) == []


def test_a_group_without_model_tokens_is_fresh_and_bad_group_sizes_are_refused():
    assert group_staleness([[NOT_SAMPLED], []], 2, version=9) == [0]
    with pytest.raises(ValueError):
        group_staleness([[1], [1], [1]], 2, version=1)


def test_histogram_fractions_sum_to_one_and_bucket_beyond_k():
    h = histogram([0, 1, 1, 5], k=2)
    assert h["async/staleness_hist/1"] == 0.5 and h["async/staleness_hist/>2"] == 0.25
    assert sum(h.values()) == pytest.approx(1.0)


def test_expand_marks_gives_one_version_per_token():
    assert expand_marks([(0, 2), (3, 3), (5, 4)], 7) == [2, 2, 2, 3, 3, 4, 4]
    assert expand_marks([(0, 2), (9, 3)], 4) == [2, 2, 2, 2]
    assert expand_marks([(0, 1)], 0) == []


def _linear():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))


def test_shared_weights_reach_a_follower_only_when_newer_and_in_place():
    ctx = torch.multiprocessing.get_context("spawn")
    trainer, generator = _linear(), _linear()
    with torch.no_grad():
        generator[0].weight.zero_()
    shared = SharedWeights.from_model(trainer, ctx)
    follower = WeightFollower(shared, generator)
    assert follower.version == -1  # nothing published yet
    address = generator[0].weight.data_ptr()
    shared.publish(trainer, 0)
    assert follower.refresh() == 0 and torch.equal(generator[0].weight, trainer[0].weight)
    assert follower.refresh() is None  # same version: no copy
    with torch.no_grad():
        trainer[0].weight.add_(1.0)
    shared.publish(trainer, 1)
    assert follower.refresh() == 1 and torch.equal(generator[0].weight, trainer[0].weight)
    assert generator[0].weight.data_ptr() == address  # the engine's view of the weights stays valid


def test_an_episode_spanning_a_weight_update_tags_each_token_with_its_version():
    from rlvr.envs.generation import SamplingParams
    from rlvr.trainer.asynchronous.versioned import VersionedEngine
    from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=128)
    trainer, generator = tiny_model(tok, cfg), tiny_model(tok, cfg)
    shared = SharedWeights.from_model(trainer, torch.multiprocessing.get_context("spawn"), version=0)
    calls = {"n": 0}

    def guard():  # the trainer finishes an optimiser step while the episode is mid-way
        calls["n"] += 1
        if calls["n"] == 6:
            with torch.no_grad():
                for p in trainer.parameters():
                    p.mul_(0.5)
            shared.publish(trainer, 1)

    before = copy.deepcopy(trainer)
    follower = WeightFollower(shared, generator, guard)
    engine = VersionedEngine(generator, tok, follower=follower, max_batch=2, max_seq_len=128)
    out = engine.generate([[1, 2, 3], [4, 5]], SamplingParams(max_new_tokens=20, ignore_eos=True))
    for c in out:
        assert len(c.token_versions) == len(c.token_ids) == len(c.logprobs) == 20
        assert c.token_versions == sorted(c.token_versions) and set(c.token_versions) == {0, 1}
        assert c.policy_version == 0  # the oldest token decides staleness
    # tokens before the switch carry the old weights' log-probs (the behaviour policy's)
    with torch.no_grad():
        ids = torch.tensor([out[0].prompt_ids + out[0].token_ids])
        logp = torch.log_softmax(before(ids).logits[0, 2:-1].float(), -1)
        behaviour = logp.gather(-1, ids[0, 3:, None]).squeeze(-1)
    switch = out[0].token_versions.index(1)
    assert switch > 0
    assert torch.allclose(torch.tensor(out[0].logprobs[:switch]), behaviour[:switch], atol=1e-4)


class _Algo:
    def __init__(self, ratio="token", correction="none"):
        self.ratio_level, self.rollout_correction = ratio, correction

    @property
    def uses_ratio(self):
        return self.ratio_level != "none"


def test_on_policy_presets_refuse_staleness_unless_a_correction_is_configured():
    with pytest.raises(ConfigError) as e:
        check_async(2, "reinforce", _Algo(ratio="none"), "auto")
    msg = str(e.value)
    assert "generation.max_off_policy_steps" in msg and "rollout_correction" in msg and "\n" not in msg
    check_async(2, "reinforce", _Algo(ratio="none", correction="tis"), "auto")  # accepted
    check_async(0, "reinforce", _Algo(ratio="none"), "hf")  # synchronous: anything goes


def test_model_generate_and_multi_process_runs_refuse_asynchronous_rollouts():
    with pytest.raises(ConfigError, match="generation.backend 'hf'"):
        check_async(1, "grpo", _Algo(), "hf")
    check_async(1, "grpo", _Algo(), "vllm")  # a vLLM server generates asynchronously (weights pushed each step)
    with pytest.raises(ConfigError, match="generation.vllm_sync_weights"):  # a server that never gets new weights
        check_async(1, "grpo", _Algo(), "vllm", vllm_sync_weights=False)
    with pytest.raises(ConfigError, match="one trainer process"):
        check_async(1, "grpo", _Algo(), "engine", world=2)
    with pytest.raises(ConfigError, match=">= 0"):
        check_async(-1, "grpo", _Algo(), "engine")


def test_scalerl_defaults_to_the_papers_off_policyness_and_others_to_synchronous():
    assert default_off_policy_steps("scalerl") == 8
    assert default_off_policy_steps("grpo") == 0
    assert resolve_off_policy_steps(None, "scalerl", "vllm") == 8  # the recipe runs on a vLLM server too
    assert resolve_off_policy_steps(None, "scalerl", "hf") == 0
