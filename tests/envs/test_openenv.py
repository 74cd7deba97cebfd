"""OpenEnv servers as rlvr environments (``openenv:URL``).

Played against a real server built by openenv-core's own ``create_app`` (a guess-the-number
environment in ``openenv_servers/guess_server.py``, run in a subprocess on 127.0.0.1), and against
misbehaving servers (silent, garbage, oversized, wrong-shaped, closing, not OpenEnv at all, dead
mid-episode): each is a clear :class:`OpenEnvError` within its deadline, never a hang.
"""

from __future__ import annotations

import http
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import gymnasium
import pytest
from typer.testing import CliRunner

pytest.importorskip("openenv.core.env_server.http_server")
pytest.importorskip("websockets.sync.server")

import rlvr.envs as E  # noqa: E402
from rlvr.cli.main import app  # noqa: E402
from rlvr.envs.adapters.openenv import OpenEnvEnv, OpenEnvError  # noqa: E402
from rlvr.envs.evaluation import evaluate, make_env  # noqa: E402
from rlvr.errors import ConfigError  # noqa: E402

SERVER = Path(__file__).parent / "openenv_servers" / "guess_server.py"
cli = CliRunner()

BISECT = '''
def guess(messages):
    lo, hi, last = 1, 10, None
    for m in messages:
        if m["role"] == "assistant":
            last = int(m["content"]) if m["content"].isdigit() else None
        elif last is not None and "higher" in m["content"]:
            lo = last + 1
        elif last is not None and "lower" in m["content"]:
            hi = last - 1
    return str((lo + hi) // 2)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    """The guess server in a subprocess; returns once /health answers (importing openenv takes a while)."""
    import httpx

    import tempfile

    port = free_port()
    log = tempfile.TemporaryFile()  # not a pipe: a server whose log fills an unread pipe blocks
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the OpenEnv test server exited: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError("the OpenEnv test server did not come up within 120 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.log.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def server():
    proc, url = start_server()
    yield url
    stop(proc)


def bisect(messages):
    namespace: dict = {}
    exec(BISECT, namespace)
    return namespace["guess"](messages)


# ---------------------------------------------------------------- a real server


def test_an_episode_against_a_real_openenv_server_carries_its_rewards(server):
    env = gymnasium.make("openenv/Server-v0", url=server)
    obs, info = env.reset(seed=3)
    assert obs == [{"role": "user", "content": "I picked a number from 1 to 10. Guess it."}]
    assert info["env_id"] == f"openenv:{server}" and info["task_id"].endswith("#seed=3")
    _, reward, terminated, truncated, step = env.step("not a number")
    assert (reward, terminated, truncated) == (-0.1, False, False)
    assert step["reward_components"] == {"reward": -0.1}
    rewards = [reward]
    while not (terminated or truncated):
        obs, reward, terminated, truncated, step = env.step(bisect(obs))
        rewards.append(reward)
    assert terminated and step["success"] and step["status"] == "ok"
    assert obs[-1] == {"role": "user", "content": "Correct!"} and rewards[-1] == 1.0
    assert step["episode"]["reward"] == pytest.approx(sum(rewards))
    assert [m["role"] for m in obs] == ["user"] + ["assistant", "user"] * len(rewards)
    env.close()


def test_the_same_seed_poses_the_same_game_and_sessions_do_not_leak_between_episodes(server):
    env = E.make(f"openenv:{server}")
    games = []
    for _ in range(2):
        obs, _ = env.reset(seed=11)
        moves = []
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, _ = env.step(bisect(obs))
            moves.append(obs[-1]["content"])
        games.append(moves)
    assert games[0] == games[1] and games[0][-1] == "Correct!"
    env.close()


def test_a_registered_id_pointing_at_a_url_and_describe(server):
    E.register_env("acme/Guess-v0", "rlvr.envs.adapters.openenv:OpenEnvEnv", kwargs={"url": server, "max_turns": 4},
                   description="guess the number, served by OpenEnv")
    try:
        env = gymnasium.make("acme/Guess-v0")
        assert env.unwrapped.max_turns == 4 and env.unwrapped.env_id == "acme/Guess-v0"
        info = E.describe("acme/Guess-v0")
        assert info.kind == "multi-turn" and info.max_turns == 4 and [c["name"] for c in info.components] == ["reward"]
        report = evaluate("acme/Guess-v0", lambda m: "1", n=3)  # never right in 4 guesses for most secrets
        assert report.settings["max_turns"] == 4 and 1 <= report.mean_turns <= 4 and report.episodes_done == 3
    finally:
        gymnasium.registry.pop("acme/Guess-v0", None)
        E.registry._REG.records.pop("acme/Guess-v0", None)


def test_rlvr_eval_and_envs_show_take_an_openenv_url(server, tmp_path):
    policy = tmp_path / "bisect.py"
    policy.write_text(BISECT)
    out = tmp_path / "eval" / "rollouts.jsonl"
    result = cli.invoke(app, ["eval", f"openenv:{server}", "--policy", f"python:{policy}:guess", "-n", "6", "-c", "3",
                              "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["env_id"] == f"openenv:{server}" and summary["pass_at_1"] == 1.0
    assert summary["episodes_done"] == 6 and summary["status_counts"] == {"ok": 6}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["messages"][-1]["content"] == "Correct!" for r in rows)

    shown = cli.invoke(app, ["envs", "show", f"openenv:{server}", "--json", "-E", "max_turns=3"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert info["kind"] == "multi-turn" and info["max_turns"] == 3 and info["origin"] == "openenv"
    assert info["sample"]["messages"][0]["content"].startswith("I picked a number")


def test_a_server_that_dies_mid_episode_is_a_clear_error_and_eval_goes_on(tmp_path):
    proc, url = start_server()
    try:
        env = E.make(f"openenv:{url}", timeout=5.0)
        env.reset(seed=1)
        env.step("5")
        stop(proc)
        t0 = time.monotonic()
        with pytest.raises(OpenEnvError, match="closed the session|connection failed") as e:
            env.step("6")
        assert time.monotonic() - t0 < 5 and url in str(e.value)
        with pytest.raises(gymnasium.error.ResetNeeded):
            env.step("7")
        with pytest.raises(OpenEnvError, match="cannot reach the OpenEnv server"):
            env.reset(seed=2)
        report = evaluate(f"openenv:{url}", lambda m: "5", n=3, env_kwargs={"timeout": 5.0})
        assert report.status_counts == {"env_error": 3} and report.mean_reward is None
    finally:
        stop(proc)


# ---------------------------------------------------------------- misbehaving servers

SCHEMA = {"action": {"properties": {"metadata": {"type": "object"}, "text": {"type": "string"}}, "required": ["text"]},
          "observation": {"properties": {"done": {"type": "boolean"}, "reward": {}, "prompt": {"type": "string"}}}}


class FakeServer:
    """A hand-written HTTP + WebSocket server: ``/schema`` and ``/ws`` misbehave as ``mode`` says."""

    def __init__(self, mode: str, schema: dict | str = SCHEMA) -> None:
        from websockets.sync.server import serve

        self.mode, self.schema = mode, schema
        self.server = serve(self.handle, "127.0.0.1", 0, process_request=self.http, max_size=None, compression=None)
        self.url = f"http://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def http(self, connection, request):
        if request.path == "/schema":
            if self.mode == "schema-silent":
                time.sleep(5)
            body = self.schema if isinstance(self.schema, str) else json.dumps(self.schema)
            return connection.respond(http.HTTPStatus.OK, body)
        return None  # /ws: go on with the WebSocket handshake

    def handle(self, ws) -> None:
        reset = json.dumps({"type": "observation", "data": {"observation": {"prompt": "go"}, "reward": None, "done": False}})
        try:
            for raw in ws:
                kind = json.loads(raw)["type"]
                if kind == "reset":
                    ws.send(reset)
                elif self.mode == "silent":
                    time.sleep(30)
                elif self.mode == "garbage":
                    ws.send("<html>surprise</html>")
                elif self.mode == "huge":
                    ws.send("x" * (4 << 20))
                elif self.mode == "bad-reward":
                    ws.send(json.dumps({"type": "observation", "data": {"observation": {}, "reward": "lots", "done": False}}))
                elif self.mode == "close":
                    ws.close()
                    return
                elif self.mode == "echo":
                    ws.send(json.dumps({"type": "observation", "data": {"observation": {"prompt": raw}, "reward": 0.5,
                                                                         "done": True}}))
        except Exception:
            return

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def fake(request):
    servers = []

    def make(mode: str, schema: dict | str = SCHEMA) -> FakeServer:
        servers.append(FakeServer(mode, schema))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_the_action_goes_in_the_schemas_text_field(fake):
    env = OpenEnvEnv(fake("echo").url)
    obs, _ = env.reset(seed=0)
    assert obs == [{"role": "user", "content": "go"}]
    obs, reward, terminated, _, info = env.step("hello")
    assert json.loads(obs[-1]["content"]) == {"type": "step", "data": {"text": "hello"}}
    assert (reward, terminated, info["success"], info["status"]) == (0.5, True, False, "wrong")


@pytest.mark.parametrize(("mode", "message"), [
    ("silent", "no answer to step within 1 s"),
    ("garbage", "not JSON"),
    ("huge", "over the 1,048,576 byte cap"),
    ("bad-reward", "reward in the answer to step is not a finite number"),
    ("close", "closed the session during step"),
])
def test_a_misbehaving_server_is_a_clear_error_within_the_deadline(fake, mode, message):
    env = OpenEnvEnv(fake(mode).url, timeout=1.0, max_message_bytes=1 << 20)
    env.reset(seed=0)
    t0 = time.monotonic()
    with pytest.raises(OpenEnvError, match=message):
        env.step("hi")
    assert time.monotonic() - t0 < 4
    env.close()


def test_a_silent_or_foreign_schema_endpoint_is_a_clear_error(fake):
    t0 = time.monotonic()
    with pytest.raises(OpenEnvError, match="schema: no complete answer within 1 s"):
        OpenEnvEnv(fake("schema-silent").url, timeout=1.0).reset()
    assert time.monotonic() - t0 < 4
    with pytest.raises(OpenEnvError, match="did not answer JSON.*is this an OpenEnv server"):
        OpenEnvEnv(fake("echo", schema="<html>hello</html>").url).reset()


def test_an_action_with_several_text_fields_asks_for_action_field(fake):
    schema = {"action": {"properties": {"a": {"type": "string"}, "b": {"type": "string"}}}}
    url = fake("echo", schema=schema).url
    with pytest.raises(ConfigError, match=r"action_field.*\['a', 'b'\].*-E action_field=NAME"):
        OpenEnvEnv(url).reset()
    env = OpenEnvEnv(url, action_field="b")
    env.reset()
    assert json.loads(env.step("x")[0][-1]["content"])["data"] == {"b": "x"}


def test_no_server_and_bad_urls_are_clear_errors():
    t0 = time.monotonic()
    with pytest.raises(OpenEnvError, match="cannot reach the OpenEnv server"):
        E.make(f"openenv:http://127.0.0.1:{free_port()}").reset()
    assert time.monotonic() - t0 < 10
    for bad in ("openenv:", "openenv:ftp://host", "openenv:not a url", "openenv:http://h:port"):
        with pytest.raises(ConfigError, match="env_id"):
            make_env(bad)
    with pytest.raises(ConfigError, match="url"):
        gymnasium.make("openenv/Server-v0")
    with pytest.raises(ConfigError, match="timeout"):
        make_env("openenv:http://127.0.0.1:1", {"timeout": -1})


def test_cli_bad_openenv_url_is_one_line_and_exit_2(capsys, monkeypatch):
    from rlvr.cli import main

    monkeypatch.setattr(sys, "argv", ["rlvr", "envs", "show", "openenv:ftp://nowhere"])
    with pytest.raises(SystemExit) as e:
        main.run()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.count("\n") == 0 and "openenv:http://" in err
