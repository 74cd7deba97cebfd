"""The scoring pool: hard per-item timeouts, crashed workers replaced, order kept."""

import asyncio
import os
import threading
import time

from rlvr.verifiers import Score, Verifier


class SlowOnDemand(Verifier):
    """Test verifier: 'hang' sleeps forever, 'crash' kills its worker, anything else echoes."""

    name = "slow"
    isolated = True

    def _score(self, completion, reference, **kw):
        if completion == "hang":
            time.sleep(3600)
        if completion == "crash":
            os._exit(3)
        if completion == "boom":
            raise ValueError("bad thing")
        return Score.right(completion) if completion == reference else Score.wrong(completion)


def test_hung_item_is_killed_and_the_batch_goes_on():
    v = SlowOnDemand()
    rows = [{"completion": str(i), "answer": str(i)} for i in range(6)]
    rows.insert(2, {"completion": "hang", "answer": "x"})
    t0 = time.monotonic()
    scores = v.score_many(rows, workers=2, timeout=1.0)
    assert time.monotonic() - t0 < 30
    assert [s.status for s in scores] == ["ok", "ok", "timeout", "ok", "ok", "ok", "ok"]
    assert scores[2].correct is None and scores[2].reward == 0.0
    assert [s.parsed for i, s in enumerate(scores) if i != 2] == [str(i) for i in range(6)]
    v.close()


def test_crashing_worker_is_replaced_and_other_items_survive():
    v = SlowOnDemand()
    rows = [{"completion": "crash", "answer": "x"}, {"completion": "a", "answer": "a"}, {"completion": "boom", "answer": "x"}]
    scores = v.score_many(rows, workers=1, timeout=5.0)
    assert scores[0].status == "error" and "crash" in scores[0].detail
    assert scores[1].status == "ok"
    assert scores[2].status == "error" and "ValueError" in scores[2].detail
    v.close()


def test_scoring_from_a_thread_and_an_event_loop():
    v = SlowOnDemand()
    out = {}

    def in_thread():
        out["thread"] = v.score("a", "a")

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(30)

    async def in_loop():
        direct = v.score("b", "b")
        via_thread = await asyncio.to_thread(v.score, "c", "d")
        return direct, via_thread

    direct, via_thread = asyncio.run(in_loop())
    assert out["thread"].status == "ok"
    assert direct.status == "ok" and via_thread.status == "wrong"
    v.close()


def test_malformed_rows_are_errors_not_exceptions():
    v = SlowOnDemand()
    scores = v.score_many([42, {"answer": "x"}, {"completion": {"bad": 1}, "answer": "x"}, {"completion": "q"}])
    assert [s.status for s in scores] == ["error"] * 4
    assert "completion" in scores[1].detail
    assert "answer" in scores[3].detail
