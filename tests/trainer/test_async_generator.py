"""A real generator process: versions across processes, stale groups regenerated, a killed generator restarted."""

from __future__ import annotations

import signal

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.slow, pytest.mark.train]

from rlvr.envs.generation import SamplingParams  # noqa: E402
from rlvr.trainer.asynchronous.generator import GeneratorSpec  # noqa: E402
from rlvr.trainer.asynchronous.pipeline import AsyncGenerator, TakeStats, step_metrics  # noqa: E402
from rlvr.trainer.rollout.tasks import draw_keys  # noqa: E402
from rlvr.trainer.run.config import EnvConfig  # noqa: E402
from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer  # noqa: E402

G = 2


def _delivered(gen: AsyncGenerator, oid: int) -> None:
    while oid not in gen.ready:
        gen._receive(TakeStats(), block=True)


def test_generator_process_tags_versions_regenerates_stale_groups_and_survives_a_kill():
    tok = tiny_tokenizer()
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=128))
    entries = [EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 1, "system_prompt": ""})]
    spec = GeneratorSpec(model.config, model.generation_config, tok, None, entries, SamplingParams(max_new_tokens=8),
                         max_new_tokens=8, max_completion_length=8, max_turns=1, env_workers=4, max_batch=8,
                         max_seq_len=128)
    keys = [str(k) for k in draw_keys(entries, 3, 0, 0) for _ in range(G)]
    gen = AsyncGenerator(spec, model, version=0)
    try:
        # version 0 everywhere; behaviour log-probs and versions line up with the tokens
        produced, stats = gen.take(gen.submit(0, keys, 0), version=0, k=1, group_size=G)
        assert [str(e.key) for e in produced.episodes] == keys  # the order's key order
        for ep, versions in zip(produced.episodes, produced.token_versions):
            assert len(versions) == len(ep.completion_ids) == len(ep.logprobs) > 0
            assert set(versions) == {0}
        assert stats.staleness == [0, 0, 0] and stats.dropped_stale == 0

        # sampled at version 0, trained at version 3 with k = 1: every group is dropped and regenerated
        oid = gen.submit(1, keys, 0)
        _delivered(gen, oid)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.9)
        gen.publish(model, 3)
        produced, stats = gen.take(oid, version=3, k=1, group_size=G)
        assert stats.dropped_stale == 3 and stats.staleness == [0, 0, 0]
        assert {v for tv in produced.token_versions for v in tv} == {3}
        assert [str(e.key) for e in produced.episodes] == keys  # regenerated in place: nothing lost
        metrics = step_metrics(stats, 1, wall_s=1.0, samples=6, tokens=10, generator_busy_s=1, generator_idle_s=1,
                               restarts_total=0)
        assert metrics["async/dropped_stale"] == 3 and metrics["async/generator_idle_frac"] == 0.5

        # the generator is killed: the next take notices, restarts it and regenerates the order
        gen.proc.kill()
        gen.proc.join()
        assert gen.proc.exitcode == -signal.SIGKILL
        produced, stats = gen.take(gen.submit(2, keys, 3), version=3, k=1, group_size=G)
        assert stats.restarts == 1 and stats.regenerated_orders and gen.restarts == 1
        assert gen.alive() and len(produced.episodes) == len(keys)
        assert step_metrics(stats, 1, wall_s=1.0, samples=6, tokens=1, generator_busy_s=0, generator_idle_s=0,
                            restarts_total=gen.restarts)["async/generator_restarts"] == 1
    finally:
        gen.close()
    assert gen.proc is None
