"""Async twins: hundreds of episodes run concurrently with asyncio.gather and score like sync ones."""

from __future__ import annotations

import asyncio

import gymnasium
import pytest

from rlvr.envs import scoring, shared_verifier


async def play_single_turn(env_id: str, seed: int, right: bool, **kw) -> tuple[float, bool]:
    env = gymnasium.make(env_id, **kw)
    await env.areset(seed=seed)
    answer = env.reference_action() if right else "<answer>-12345</answer>"
    _, reward, terminated, _, info = await env.astep(answer)
    assert terminated
    return reward, info["success"]


def test_three_hundred_concurrent_episodes_finish_with_the_right_scores():
    async def main():
        return await asyncio.gather(*(play_single_turn("rlvr/Arithmetic-v0", s, right=s % 2 == 0, difficulty=4) for s in range(300)))

    results = asyncio.run(main())
    assert len(results) == 300
    assert all(success == (i % 2 == 0) for i, (_, success) in enumerate(results))
    assert sum(r for r, _ in results) == pytest.approx(150.0)


def test_concurrent_math_scoring_goes_through_the_shared_verifier_in_batches(monkeypatch):
    # log(8) vs 3 log(2) is a symbolic comparison (math-verify/sympy in the verifier's worker pool).
    task = {"prompt": "Simplify log(8) in terms of log(2).", "reference": "3\\log(2)"}
    batch_sizes = []
    verifier = shared_verifier("math")
    original = type(verifier).score_many

    def spy(self, items, *a, **kw):
        items = list(items)
        batch_sizes.append(len(items))
        return original(self, items, *a, **kw)

    async def one(i: int):
        env = gymnasium.make("rlvr/Math-v0")
        await env.areset(options={"task": task})
        answer = "<answer>\\log(8)</answer>" if i % 3 else "<answer>\\log(9)</answer>"
        _, _, _, _, info = await env.astep(answer)
        return info["success"]

    async def main():
        return await asyncio.gather(*(one(i) for i in range(40)))

    monkeypatch.setattr(type(verifier), "score_many", spy)  # on the class: instances are pickled into workers
    results = asyncio.run(main())
    assert results == [bool(i % 3) for i in range(40)]
    assert max(batch_sizes) > 1  # requests arriving together were scored together


def test_concurrent_multi_turn_games_finish():
    async def play(seed: int) -> tuple[float, int]:
        env = gymnasium.make("rlvr/GuessNumber-v0", difficulty=5)
        obs, info = await env.areset(seed=seed)
        lo, hi = info["task"]["metadata"]["low"], info["task"]["metadata"]["high"]
        while True:
            guess = (lo + hi) // 2
            obs, reward, terminated, truncated, info = await env.astep(str(guess))
            if terminated or truncated:
                return info["episode"]["reward"], info["episode"]["turns"]
            if "higher" in obs[-1]["content"]:
                lo = guess + 1
            else:
                hi = guess - 1

    async def main():
        return await asyncio.gather(*(play(s) for s in range(200)))

    results = asyncio.run(main())
    assert all(ret == pytest.approx(1.0) for ret, _ in results)  # binary search is always efficient enough
    assert max(turns for _, turns in results) <= 8


def test_sync_and_async_scoring_agree_for_the_batching_front():
    verifier = shared_verifier("math")
    rows = [{"completion": f"<answer>{a}</answer>", "answer": "\\frac{1}{2}"} for a in ("0.5", "1/2", "\\frac{2}{4}", "0.4", "")]
    sync = [scoring.score(verifier, r).status for r in rows]

    async def main():
        return [s.status for s in await asyncio.gather(*(scoring.ascore(verifier, r) for r in rows))]

    assert asyncio.run(main()) == sync == ["ok", "ok", "ok", "wrong", "no_answer"]
