"""`rlvr eval` end to end: python/openai/hf policies on a contract-following env, files, Ctrl-C, CLI.

The environment here is a small test-only one written to the rlvr.envs contract (observations are
the full conversation, reward components, terminal success/status/episode info, async twins), so
these tests pin the runner's behaviour independently of the built-in environments.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gymnasium
import pytest
from gymnasium import spaces
from typer.testing import CliRunner

from rlvr.errors import ConfigError
from rlvr.envs.evaluation import (
    EvalInterrupted,
    OpenAIPolicy,
    PolicyError,
    aevaluate,
    evaluate,
    make_policy,
    pass_at_k,
)
from rlvr.envs.evaluation.policies.batcher import MicroBatcher

ENV_ID = "evaltest/Add-v0"
QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")


class AddEnv(gymnasium.Env):
    """Add two numbers; up to ``max_attempts`` tries with feedback; ``explode_on`` makes step() raise."""

    metadata = {"render_modes": []}
    built = 0

    def __init__(self, max_attempts: int = 1, explode_on: str | None = None, slow_second_build: float = 0.0) -> None:
        AddEnv.built += 1
        if AddEnv.built == 2:
            time.sleep(slow_second_build)
        text = spaces.Text(max_length=4096, charset="".join(chr(c) for c in range(32, 127)) + "\n")
        self.observation_space = spaces.Sequence(spaces.Dict({"role": text, "content": text}))
        self.action_space = text
        self.max_attempts = max_attempts
        self.explode_on = explode_on

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        a, b = (int(x) for x in self.np_random.integers(0, 100, size=2))
        self.reference = str(a + b)
        self.attempts = 0
        self.messages = [{"role": "system", "content": "Answer with a number."},
                         {"role": "user", "content": f"What is {a} + {b}?"}]
        task = {"prompt": self.messages[-1]["content"], "reference": self.reference, "metadata": {"a": a, "b": b}}
        return list(self.messages), {"task": task, "task_id": f"add-{a}-{b}", "env_id": ENV_ID}

    def step(self, action):
        if self.explode_on and self.explode_on in action:
            raise RuntimeError("env bug")
        self.attempts += 1
        self.messages.append({"role": "assistant", "content": action})
        numbers = re.findall(r"-?\d+", action)
        correct = bool(numbers) and numbers[-1] == self.reference
        components = {"correct": 1.0 if correct else 0.0, "format": 0.1 if numbers else 0.0}
        if not correct and self.attempts < self.max_attempts:
            self.messages.append({"role": "user", "content": "Wrong, try again."})
            return list(self.messages), 0.0, False, False, {"reward_components": {"correct": 0.0, "format": 0.0}}
        status = "ok" if correct else "wrong" if numbers else "no_answer"
        info = {"reward_components": components, "success": correct, "status": status,
                "episode": {"turns": self.attempts, "messages": list(self.messages)}}
        return list(self.messages), sum(components.values()), True, False, info

    async def areset(self, seed=None, options=None):
        return await asyncio.to_thread(self.reset, seed=seed, options=options)

    async def astep(self, action):
        return await asyncio.to_thread(self.step, action)


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point=AddEnv)


def solve(messages) -> str:
    a, b = QUESTION.search(next(m["content"] for m in messages if m["role"] == "user")).groups()
    return str(int(a) + int(b))


def oracle(messages, task):
    return f"The answer is {task['reference']}"


def clueless(messages):
    return "I do not know."


# ---------------------------------------------------------------- python policies, files, metrics


def test_oracle_gets_full_marks_and_every_file_is_written(tmp_path):
    out = tmp_path / "run" / "rollouts.jsonl"
    report = evaluate(ENV_ID, oracle, n=5, k=2, concurrency=3, output=out)
    assert report.episodes_done == report.episodes_planned == 10
    assert report.pass_at_1 == 1.0 and report.pass_at_k == 1.0 and set(report.pass_at) == {1, 2}
    assert report.mean_reward == pytest.approx(1.1)
    assert report.component_means == pytest.approx({"correct": 1.0, "format": 0.1})
    assert report.status_counts == {"ok": 10}
    assert report.tokens_estimated and report.completion_tokens > 0

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10
    assert sorted((r["task_index"], r["sample"]) for r in rows) == [(i, j) for i in range(5) for j in range(2)]
    for r in rows:
        assert {"task_id", "sample", "messages", "reward", "components", "success", "status", "turns"} <= set(r)
        assert r["messages"][-1] == {"role": "assistant", "content": f"The answer is {r['reference']}"}
        assert r["success"] and r["turns"] == 1 and r["tokens"]["estimated"]
    # the same seed gives the same task to every sample
    by_task = {}
    for r in rows:
        by_task.setdefault(r["task_index"], set()).add(r["task_id"])
    assert all(len(ids) == 1 for ids in by_task.values())

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pass_at"] == {"pass@1": 1.0, "pass@2": 1.0}
    assert summary["episodes_done"] == 10 and summary["interrupted"] is False
    assert summary["component_means"]["format"] == pytest.approx(0.1)
    assert (tmp_path / "run" / "reward_distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_clueless_policy_scores_zero_with_no_answer_status():
    report = evaluate(ENV_ID, clueless, n=4, k=1)
    assert report.mean_reward == 0.0 and report.pass_at_1 == 0.0
    assert report.status_counts == {"no_answer": 4}
    assert report.rollouts_path is None  # no output asked for: nothing written


def test_pass_at_k_groups_samples_by_task():
    # concurrency 1 runs task-major, so calls 0, 4, 8 are each task's first sample: 1 of 4 right per task
    calls = []

    def one_in_four(messages):
        calls.append(1)
        return solve(messages) if len(calls) % 4 == 1 else "-1"

    report = evaluate(ENV_ID, one_in_four, n=3, k=4, concurrency=1)
    assert report.pass_at[1] == pytest.approx(0.25)
    assert report.pass_at[2] == pytest.approx(pass_at_k(4, 1, 2)) == pytest.approx(0.5)
    assert report.pass_at[4] == 1.0
    assert [t.successes for t in report.per_task] == [1, 1, 1]


def test_multi_turn_episodes_continue_until_terminated_and_keep_every_turn(tmp_path):
    def second_try(messages):
        return solve(messages) if messages[-1]["content"].startswith("Wrong") else "-1"

    out = tmp_path / "r.jsonl"
    report = evaluate(ENV_ID, second_try, n=3, k=1, env_kwargs={"max_attempts": 3}, output=out)
    assert report.pass_at_1 == 1.0 and report.status_counts == {"ok": 3}
    for row in map(json.loads, out.read_text().splitlines()):
        assert row["turns"] == 2
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        assert row["messages"][3]["content"] == "Wrong, try again."


def test_turn_cap_truncates_an_endless_episode():
    report = evaluate(ENV_ID, lambda m: "-1", n=2, k=1, env_kwargs={"max_attempts": 1000}, max_turns=3)
    assert report.status_counts == {"truncated": 2} and report.pass_at_1 == 0.0


def test_workers_whose_environments_build_slowly_still_get_their_own():
    AddEnv.built = 0  # the first worker's env is built up front; the next one (worker 1's) is slow
    report = evaluate(ENV_ID, oracle, n=8, k=1, concurrency=4, env_kwargs={"slow_second_build": 0.3})
    assert report.episodes_done == 8 and report.pass_at_1 == 1.0
    assert AddEnv.built == 4


def test_env_exceptions_fail_only_their_episode():
    calls = []

    def sometimes_boom(messages):
        calls.append(1)
        return "BOOM" if len(calls) % 2 else solve(messages)

    report = evaluate(ENV_ID, sometimes_boom, n=4, k=1, concurrency=1, env_kwargs={"explode_on": "BOOM"})
    assert report.status_counts == {"env_error": 2, "ok": 2}
    assert report.episodes_done == 4 and report.episodes_scored == 2
    assert report.mean_reward == pytest.approx(1.1)  # errors carry no verdict


def test_python_spec_loads_sync_and_async_functions_by_module_and_by_path(tmp_path, monkeypatch):
    (tmp_path / "evalpolicies.py").write_text(
        "import asyncio\n"
        "def oracle(messages, task):\n    return task['reference']\n"
        "async def aoracle(messages, task):\n    await asyncio.sleep(0)\n    return task['reference']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("python:evalpolicies:oracle", "python:evalpolicies:aoracle", f"python:{tmp_path / 'evalpolicies.py'}:oracle"):
        report = evaluate(ENV_ID, spec, n=2, k=2, concurrency=2)
        assert report.pass_at_1 == 1.0, spec
        assert report.policy == spec


def test_bad_configuration_fails_before_any_work(tmp_path):
    out = tmp_path / "never.jsonl"
    with pytest.raises(ConfigError, match="did you mean 'python'"):
        evaluate(ENV_ID, "pyhton:x:y", n=1, output=out)
    with pytest.raises(ConfigError, match="#MODEL"):
        make_policy("openai:http://127.0.0.1:1/v1")
    with pytest.raises(ConfigError, match="cannot import module"):
        make_policy("python:no_such_module_here:fn")
    with pytest.raises(ConfigError, match="env_id"):
        evaluate("evaltest/Nope-v0", oracle, n=1, output=out)
    with pytest.raises(ConfigError, match="env_kwargs"):
        evaluate(ENV_ID, oracle, n=1, env_kwargs={"colour": "red"}, output=out)
    with pytest.raises(ConfigError, match="^k"):
        evaluate(ENV_ID, oracle, n=1, k=0)
    with pytest.raises(ConfigError, match="temperature"):
        evaluate(ENV_ID, oracle, n=1, temperature=-1)
    assert not out.exists()


def test_a_broken_python_policy_stops_the_run_with_a_clear_error(tmp_path):
    def broken(messages):
        raise ValueError("oops")

    with pytest.raises(PolicyError, match="raised ValueError: oops"):
        evaluate(ENV_ID, broken, n=3, output=tmp_path / "r.jsonl")
    assert json.loads((tmp_path / "summary.json").read_text())["stopped_by"]


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_keeps_finished_episodes_and_writes_the_summary(tmp_path):
    calls = []

    def interrupted_on_fifth_call(messages, task):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return task["reference"]

    out = tmp_path / "rollouts.jsonl"
    with pytest.raises(EvalInterrupted) as caught:
        evaluate(ENV_ID, interrupted_on_fifth_call, n=10, k=1, concurrency=1, output=out)
    report = caught.value.report
    assert report.interrupted and report.episodes_done == 4 and report.episodes_planned == 10
    assert len(out.read_text().splitlines()) == 4
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["episodes_done"] == 4 and summary["pass_at_1"] == 1.0
    assert (tmp_path / "reward_distribution.png").exists()


def test_cancelling_the_async_api_writes_what_finished(tmp_path):
    async def slow_after_three(messages, task):
        slow_after_three.n += 1
        if slow_after_three.n > 3:
            await asyncio.sleep(60)
        return task["reference"]

    slow_after_three.n = 0

    async def main():
        run = asyncio.create_task(aevaluate(ENV_ID, slow_after_three, 10, 1, concurrency=1, output=tmp_path / "r.jsonl"))
        while slow_after_three.n <= 3:
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(main())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["episodes_done"] == 3


# ---------------------------------------------------------------- OpenAI-compatible server on loopback


class ChatServer:
    """A scripted OpenAI chat-completions server on 127.0.0.1 (real HTTP, real sockets).

    Model ``toy``: answers the sum right when it is even and wrong (sum + 1) when odd, and right
    after "Wrong, try again."; the first ``fail_first`` requests get 503 with Retry-After: 0.
    Model ``toy-400`` answers 400 when the sum is odd, ``always-400`` always. Any other model: 404 like vLLM.
    """

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                    fail = len(owner.requests) <= owner.fail_first
                if self.path != "/v1/chat/completions" or body.get("model") not in ("toy", "toy-400", "always-400"):
                    return self.reply(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                if fail:
                    return self.reply(503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"})
                msgs = body["messages"]
                total = int(solve(msgs))
                if body["model"] == "always-400" or (body["model"] == "toy-400" and total % 2):
                    return self.reply(400, {"error": {"message": "maximum context length exceeded"}})
                retry = msgs[-1]["content"].startswith("Wrong")
                answer = total if (total % 2 == 0 or retry) else total + 1
                self.reply(200, {
                    "id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"The answer is {answer}."}}],
                    "usage": {"prompt_tokens": 7 * len(msgs), "completion_tokens": 5, "total_tokens": 7 * len(msgs) + 5},
                })

            def reply(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client cancelled mid-request (the run stopped): nothing to report

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def expected_pass_at_1(n: int, seed: int = 0) -> float:
    env = AddEnv()
    sums = [int(env.reset(seed=seed + i)[1]["task"]["reference"]) for i in range(n)]
    return sum(s % 2 == 0 for s in sums) / n


def test_openai_policy_against_a_real_loopback_server(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ChatServer(fail_first=2) as server:
        policy = OpenAIPolicy(server.url, "toy", concurrency=4, backoff_s=0.01)
        report = evaluate(ENV_ID, policy, n=6, k=2, concurrency=4, max_tokens=64, temperature=0.5,
                          output=tmp_path / "rollouts.jsonl")
    assert report.episodes_done == 12 and report.status_counts.get("policy_error") is None  # 503s were retried
    assert report.pass_at_1 == pytest.approx(expected_pass_at_1(6))
    assert not report.tokens_estimated and report.completion_tokens == 5 * 12 and report.prompt_tokens == 14 * 12
    assert len(server.requests) == 12 + 2
    first = server.requests[-1]
    assert first["auth"] == "Bearer sk-test" and first["path"] == "/v1/chat/completions"
    assert first["body"]["model"] == "toy" and first["body"]["max_tokens"] == 64 and first["body"]["temperature"] == 0.5
    assert first["body"]["messages"][0] == {"role": "system", "content": "Answer with a number."}
    # samples of one task get different sampling seeds
    seeds = {r["body"]["seed"] for r in server.requests[2:]}
    assert len(seeds) == 12


def test_openai_multi_turn_spec_string(tmp_path):
    with ChatServer() as server:
        report = evaluate(ENV_ID, f"openai:{server.url}#toy", n=6, k=1, env_kwargs={"max_attempts": 2})
    assert report.pass_at_1 == 1.0  # wrong answers are fixed on the second turn
    assert report.policy == f"openai:{server.url}#toy"


def test_openai_unknown_model_stops_the_run_with_the_servers_message():
    with ChatServer() as server:
        with pytest.raises(PolicyError, match=r"HTTP 404.*`nope` does not exist.*check the model name"):
            evaluate(ENV_ID, f"openai:{server.url}#nope", n=3)


def test_openai_client_errors_fail_only_their_episodes(tmp_path):
    with ChatServer() as server:
        report = evaluate(ENV_ID, f"openai:{server.url}#toy-400", n=8, concurrency=1, output=tmp_path / "r.jsonl")
    odd = round(8 * (1 - expected_pass_at_1(8)))
    assert report.status_counts == {"ok": 8 - odd, "policy_error": odd} and report.episodes_scored == 8 - odd
    assert report.pass_at_1 == 1.0 and report.mean_reward == pytest.approx(1.1)  # failures carry no verdict
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert all("maximum context length" in r["error"] for r in rows if r["status"] == "policy_error")


def test_a_server_that_rejects_every_request_stops_the_run_early(tmp_path):
    with ChatServer() as server:
        with pytest.raises(PolicyError, match="first 8 episodes all failed.*maximum context length"):
            evaluate(ENV_ID, f"openai:{server.url}#always-400", n=100, concurrency=2, output=tmp_path / "r.jsonl")
        assert len(server.requests) < 20
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status_counts"]["policy_error"] >= 8 and "first 8 episodes" in summary["stopped_by"]


def test_openai_unreachable_server_is_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = OpenAIPolicy(f"http://127.0.0.1:{port}/v1", "toy", max_retries=1, backoff_s=0.01)
    with pytest.raises(PolicyError, match="cannot reach.*is the server running"):
        evaluate(ENV_ID, policy, n=2)


# ---------------------------------------------------------------- batching, CLI


def test_micro_batcher_serves_concurrent_requests_in_one_batch():
    async def main():
        batcher = MicroBatcher(lambda xs: [x * 10 if x != 2 else ValueError("two") for x in xs], max_batch=3)
        await batcher.start()
        try:
            results = await asyncio.gather(*(batcher.submit(x) for x in (1, 2, 3)), return_exceptions=True)
        finally:
            await batcher.close()
        return results, batcher.batch_sizes

    results, sizes = asyncio.run(main())
    assert results[0] == 10 and results[2] == 30 and isinstance(results[1], ValueError)
    assert sizes == [3]


def test_cli_prints_the_table_and_writes_files(tmp_path, monkeypatch):
    from rlvr.cli.main import app

    (tmp_path / "clipolicies.py").write_text("def oracle(messages, task):\n    return task['reference']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "cli" / "rollouts.jsonl"
    result = CliRunner().invoke(app, ["eval", ENV_ID, "--policy", "python:clipolicies:oracle", "-n", "3", "-k", "2",
                                      "-c", "2", "-o", str(out), "-E", "max_attempts=2"])
    assert result.exit_code == 0, result.output
    for text in ("pass@1", "pass@2", "mean reward", "correct", "ok=6", "wall time"):
        assert text in result.output
    assert len(out.read_text().splitlines()) == 6
    assert json.loads((out.parent / "summary.json").read_text())["settings"]["env_kwargs"] == {"max_attempts": 2}


def test_cli_bad_env_id_exits_2_with_one_line():
    r = subprocess.run([sys.executable, "-m", "rlvr.cli.main", "eval", "rlvr/NoSuchEnv-v0", "-p", "openai:http://127.0.0.1:9/v1#m",
                        "-n", "1", "-q"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "env_id" in r.stderr and "Traceback" not in r.stderr


SIGINT_MODULE = '''
import time, gymnasium

class Echo(gymnasium.Env):
    """One-turn env: the answer is the task number."""
    observation_space = action_space = gymnasium.spaces.Text(64)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.ref = str(seed)
        return [{"role": "user", "content": f"Say {seed}"}], {"task": {"prompt": "", "reference": self.ref, "metadata": {}},
                                                             "task_id": self.ref, "env_id": "sigint/Echo-v0"}

    def step(self, action):
        ok = action == self.ref
        return [], float(ok), True, False, {"reward_components": {"correct": float(ok)}, "success": ok,
                                            "status": "ok" if ok else "wrong"}

gymnasium.register(id="sigint/Echo-v0", entry_point=Echo)

def slow_oracle(messages, task):
    time.sleep(0.1)
    return task["reference"]
'''


def _ctrl_c_as_in_a_terminal() -> None:
    # A background job (`make test &`, some CI runners) starts with SIGINT ignored, and children
    # inherit that; a user's Ctrl-C reaches a foreground process with the default handling.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_on_the_cli_exits_130_and_keeps_finished_episodes(tmp_path):
    """A real SIGINT to `rlvr eval` (a plain gymnasium env without async twins, run in threads)."""
    (tmp_path / "sigintpolicy.py").write_text(SIGINT_MODULE)
    out = tmp_path / "r" / "rollouts.jsonl"
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "rlvr.cli.main", "eval", "sigint/Echo-v0", "-p", "python:sigintpolicy:slow_oracle",
                             "-n", "500", "-c", "2", "-o", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 4):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    summary = json.loads((out.parent / "summary.json").read_text())
    kept = len(out.read_text().splitlines())
    assert summary["interrupted"] is True and summary["episodes_done"] == kept >= 4 and kept < 500
    assert summary["pass_at_1"] == 1.0
