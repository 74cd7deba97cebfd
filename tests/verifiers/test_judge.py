"""The LLM-judge verifier against a loopback OpenAI-compatible server and a real `transformers serve`."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from rlvr.errors import ConfigError
from rlvr.verifiers import get_verifier
from rlvr.verifiers.judge import JudgeVerifier, parse_judge_score

from ..transformers_serve import free_port, transformers_serve


class FakeJudge(BaseHTTPRequestHandler):
    """Grades 1 when the response repeats the reference; the model name picks a misbehaviour."""

    def log_message(self, *a):  # keep test output clean
        pass

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        model = body["model"]
        with srv.lock:
            srv.bodies.append(body)
            srv.in_flight += 1
            srv.most = max(srv.most, srv.in_flight)
            srv.seen[user] = srv.seen.get(user, 0) + 1
            nth = srv.seen[user]
        try:
            if model == "slow":
                time.sleep(3)
            if model == "busy":
                time.sleep(0.3)
            if model == "flaky" and nth == 1:
                return self._send(503, b'{"error": "overloaded"}')
            if model == "garbage":
                return self._send(200, b"\x00\xffnot json at all")
            if model == "giant":
                return self._send(200, b'{"choices": [{"message": {"content": "' + b"A" * 3_000_000 + b'"}}]}')
            if model == "http400":
                return self._send(400, b'{"error": "bad model"}')
            if model == "noscore":
                return self._reply("I like it a lot!")
            if model == "tenscale":
                return self._reply("Pretty good.\nSCORE: 7/10")
            response = user.split("<<<RESPONSE\n", 1)[1].rsplit("\nRESPONSE>>>", 1)[0]
            reference = user.split("Reference answer:\n", 1)[1].split("\n\n", 1)[0] if "Reference answer:" in user else ""
            ok = bool(reference) and reference.lower() in response.lower()
            self._reply(f"Checked against the reference.\nSCORE: {1 if ok else 0}")
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _reply(self, content: str) -> None:
        self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode())

    def _send(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    srv.daemon_threads = True
    srv.lock, srv.bodies, srv.seen, srv.in_flight, srv.most = threading.Lock(), [], {}, 0, 0
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    yield srv
    srv.shutdown()
    srv.server_close()


def judge(url: str, model: str = "good", **kw) -> JudgeVerifier:
    return get_verifier("judge", base_url=url, model=model, rubric="Full marks when the answer names the right city.", **kw)


def test_constructing_contacts_nothing_and_bad_options_name_the_field():
    j = judge(f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there: construction must not care
    assert isinstance(j, JudgeVerifier) and j.requests_sent == 0
    with pytest.raises(ConfigError, match="base_url"):
        judge("ftp://example/v1")
    with pytest.raises(ConfigError, match="rubric"):
        get_verifier("judge", base_url="http://127.0.0.1:1/v1", model="m", rubric=" ")
    with pytest.raises(ConfigError, match="concurrency"):
        judge("http://127.0.0.1:1/v1", concurrency=0)


def test_grades_with_prompt_and_reference_in_the_request(server):
    j = judge(server.url)
    right, wrong = j.score_many([
        {"completion": "It is Paris.", "answer": "Paris", "prompt": "Capital of France?"},
        {"completion": "It is Lyon.", "answer": "Paris", "prompt": "Capital of France?"},
    ])
    assert (right.reward, right.correct, right.status) == (1.0, True, "ok")
    assert (wrong.reward, wrong.correct, wrong.status) == (0.0, False, "wrong")
    sent = server.bodies[0]
    assert sent["model"] == "good" and sent["messages"][0]["role"] == "system"
    assert "Capital of France?" in sent["messages"][1]["content"] and "Full marks when" in sent["messages"][1]["content"]


def test_the_cache_asks_once_per_rubric_prompt_and_completion(server):
    j = judge(server.url)
    rows = [{"completion": "Paris", "answer": "Paris", "prompt": "Q?"}] * 5
    assert [s.reward for s in j.score_many(rows)] == [1.0] * 5
    j.score_many(rows)
    assert len(server.bodies) == 1
    j.score_many([{"completion": "Paris", "answer": "Paris", "prompt": "Another question?"}])
    assert len(server.bodies) == 2


def test_many_requests_are_in_flight_at_once(server):
    j = judge(server.url, model="busy", concurrency=8)
    scores = j.score_many([{"completion": f"Paris {i}", "answer": "Paris"} for i in range(16)])
    assert all(s.status == "ok" for s in scores)
    assert server.most >= 4  # requests overlapped (a count of concurrent requests, not a timing)


def test_a_stuck_judge_hits_the_whole_request_deadline_and_is_retried(server):
    j = judge(server.url, model="slow", timeout=0.3, retries=1)
    (s,) = j.score_many([{"completion": "Paris", "answer": "Paris"}])
    assert s.status == "timeout" and "2 attempt" in s.detail
    assert len(server.bodies) == 2


def test_a_503_is_retried_then_graded(server):
    j = judge(server.url, model="flaky", retries=2)
    (s,) = j.score_many([{"completion": "Paris", "answer": "Paris"}])
    assert s.status == "ok" and len(server.bodies) == 2


@pytest.mark.parametrize(("model", "status", "words"), [
    ("garbage", "error", "not an OpenAI chat completion"),
    ("giant", "error", "max_reply_bytes"),
    ("http400", "error", "HTTP 400"),
    ("noscore", "parse_error", "no 'SCORE"),
])
def test_untrusted_judge_replies_become_a_score_status(server, model, status, words):
    (s,) = judge(server.url, model=model, max_reply_bytes=100_000).score_many([{"completion": "Paris", "answer": "Paris"}])
    assert s.status == status and words in s.detail and s.reward == 0.0
    assert len(server.bodies) == 1  # not worth a retry


def test_no_server_is_an_error_score_not_an_exception():
    j = judge(f"http://127.0.0.1:{free_port()}/v1", retries=1)
    (s,) = j.score_many([{"completion": "Paris", "answer": "Paris"}])
    assert s.status == "error" and "ConnectError" in s.detail


def test_empty_completions_and_malformed_rows_never_reach_the_judge(server):
    j = judge(server.url)
    scores = j.score_many([{"completion": "  "}, {"nothing": 1}, "just a string"])
    assert [s.status for s in scores] == ["no_answer", "error", "error"]
    assert server.bodies == []


def test_parse_judge_score_reads_the_last_score_on_either_scale():
    assert parse_judge_score("SCORE: 0.25") == 0.25
    assert parse_judge_score("score: 1 ... later SCORE: 0") == 0.0
    assert parse_judge_score("**Score:** 8/10") == 0.8
    assert parse_judge_score("SCORE: 7", max_score=10) == 0.7
    assert parse_judge_score("SCORE: 7") is None
    assert parse_judge_score("no verdict") is None
    assert parse_judge_score("SCORE: 5/0") is None


def test_a_ten_point_judge_is_scaled(server):
    (s,) = judge(server.url, model="tenscale").score_many([{"completion": "Paris", "answer": "Paris"}])
    assert s.reward == pytest.approx(0.7) and s.status == "ok"


def test_the_judge_is_an_environment_reward_component_and_sees_the_task_prompt(server):
    from rlvr.envs import Component, ListSource, SingleTurnEnv

    env = SingleTurnEnv(ListSource([{"prompt": "Capital of France?", "answer": "Paris"}]),
                        [Component("judged", 1.0, judge(server.url))], system_prompt=None)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("I am sure it is Paris.")
    assert terminated and reward == 1.0 and info["success"] is True
    assert "Capital of France?" in server.bodies[-1]["messages"][1]["content"]


def test_rlvr_score_judge_from_the_cli(server, tmp_path):
    from rlvr.cli.main import app

    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"completion": "Paris!", "answer": "Paris", "prompt": "Capital of France?"},
        {"completion": "Berlin", "answer": "Paris"},
    ]))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["score", "judge", "-i", str(src), "-o", str(out), "-q",
                                      "-O", f"base_url={server.url}", "-O", "model=good", "-O", "rubric=Name the right city."])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["status"], r["reward"]) for r in rows] == [("ok", 1.0), ("wrong", 0.0)]


@pytest.mark.slow
@pytest.mark.train
def test_against_a_real_transformers_serve_process(tmp_path):
    """A tiny random model behind `transformers serve` (offline, a local path): its replies are
    gibberish, so every row must come back with a Score status and the server must have been asked."""
    from rlvr.trainer.tiny import tiny_model, tiny_tokenizer

    model_dir = tmp_path / "tiny"
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    with transformers_serve(model_dir, tmp_path / "serve.log") as base_url:
        j = get_verifier("judge", base_url=base_url, model=str(model_dir), rubric="Right city.",
                         max_tokens=16, timeout=120, retries=0, concurrency=2)
        scores = j.score_many([{"completion": f"Paris {i}", "answer": "Paris", "prompt": "Capital?"} for i in range(3)])
        assert j.requests_sent == 3
        assert all(s.status in ("ok", "wrong", "parse_error") for s in scores), [s.detail for s in scores]
        assert all(0.0 <= s.reward <= 1.0 for s in scores)


@pytest.mark.parametrize("handler", ["drip_body", "drip_headers", "endless_body"])
def test_a_hostile_judge_server_is_cut_off_by_the_deadline_or_the_cap(handler):
    """A server that drips one byte per second never trips a per-read timeout, and one that streams
    without end fills memory: the judge's whole-request deadline and reply cap stop both."""
    from .. import hostile_http

    with hostile_http.raw_server(getattr(hostile_http, handler)) as url:
        j = get_verifier("judge", base_url=f"{url}/v1", model="m", rubric="r", timeout=2.0, retries=0,
                         max_reply_bytes=64_000)
        t0 = time.monotonic()
        (score,) = j.score_many([{"completion": "Paris", "answer": "Paris"}])
        took = time.monotonic() - t0
    assert score.status in ("timeout", "error") and score.reward == 0.0, score
    assert took < 10, took
