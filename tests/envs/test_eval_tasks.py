"""`rlvr eval` task selection and the settings it reports: N distinct tasks on a finite list (all of
them, said so, when N is larger), the environment's real turn cap, rlvr's own "did you mean"."""

from __future__ import annotations

import json
import sys
from collections import Counter

import gymnasium
import pytest

import rlvr.envs as E
from rlvr.envs import Component, ListSource, Rubric, SingleTurnEnv, TextEnv, Turn
from rlvr.envs.evaluation import evaluate, make_env
from rlvr.envs.evaluation.runner import distinct_task_indices, effective_max_turns
from rlvr.errors import ConfigError

ROWS = [{"prompt": f"Repeat the word w{i}.", "answer": f"w{i}"} for i in range(18)]


def words(**kw) -> SingleTurnEnv:
    return SingleTurnEnv(ListSource(ROWS, name="words"), [Component("correct", 1.0, "string")], system_prompt=None, **kw)


class Capped(TextEnv):
    """A multi-turn environment capped at 3 turns that never ends by itself."""

    def __init__(self) -> None:
        super().__init__(ListSource(ROWS[:2]), Rubric([Component("turn", 1.0)]), max_turns=3)

    def respond(self, action: str) -> Turn:
        return Turn(reply=[{"role": "user", "content": "go on"}], rewards={"turn": 0.0})


@pytest.fixture(scope="module", autouse=True)
def registered():
    ids = {"test/Words-v0": words, "test/Capped-v0": Capped}
    for env_id, entry in ids.items():
        E.register_env(env_id, entry)
    yield
    for env_id in ids:
        gymnasium.registry.pop(env_id, None)
        E.registry._REG.records.pop(env_id, None)


def echo_word(messages):
    return messages[-1]["content"].split()[-1].rstrip(".")


def test_n_equal_to_a_finite_list_evaluates_every_task_once():
    report = evaluate("test/Words-v0", echo_word, n=18, k=2, concurrency=4)
    counts = Counter(t.task_id for t in report.per_task)
    assert len(counts) == 18 and set(counts.values()) == {1}
    assert report.episodes_done == 36 and report.pass_at_1 == 1.0
    assert report.settings["task_selection"] == "distinct" and not report.warnings


def test_n_larger_than_the_source_takes_all_tasks_and_says_so(tmp_path, caplog):
    out = tmp_path / "rollouts.jsonl"
    with caplog.at_level("WARNING"):
        report = evaluate("test/Words-v0", echo_word, n=30, output=out)
    assert report.n_tasks == 18 and report.episodes_planned == 18
    assert len({t.task_id for t in report.per_task}) == 18
    [warning] = report.warnings
    assert "18 distinct tasks, fewer than the 30 asked for" in warning and warning in caplog.text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["warnings"] == [warning] and summary["n_tasks"] == 18


def test_distinct_tasks_are_prefix_stable_and_seeded():
    env = make_env("test/Words-v0")
    assert distinct_task_indices(env, 5, 0) == distinct_task_indices(env, 18, 0)[:5]
    assert distinct_task_indices(env, 18, 0) != distinct_task_indices(env, 18, 1)
    assert sorted(distinct_task_indices(env, 18, 7)) == list(range(18))


def test_procedural_environments_keep_drawing_tasks_by_seed():
    assert distinct_task_indices(make_env("rlvr/Arithmetic-v0"), 10, 0) is None
    report = evaluate("rlvr/Arithmetic-v0", lambda m: "<answer>0</answer>", n=3)
    assert report.settings["task_selection"] == "seeded"


def test_the_summary_reports_the_environments_own_turn_cap():
    report = evaluate("test/Capped-v0", lambda m: "more", n=2)
    assert report.settings["max_turns"] == 3 and report.mean_turns == 3.0
    assert effective_max_turns(make_env("test/Capped-v0"), 10) == 3
    assert effective_max_turns(make_env("test/Capped-v0"), 2) == 2
    assert evaluate("test/Capped-v0", lambda m: "more", n=1, max_turns=2).settings["max_turns"] == 2


@pytest.mark.parametrize(("typed", "meant"), [("test/words-V0", "test/Words-v0"), ("test/Words-v3", "test/Words-v0"),
                                              ("RLVR/math-v0", "rlvr/Math-v0")])
def test_make_env_suggests_rlvrs_own_id_for_wrong_case_or_version(typed, meant):
    with pytest.raises(ConfigError, match=f"did you mean '{meant}'") as e:
        make_env(typed)
    assert "`Words`" not in str(e.value) and e.value.field == "env_id"


def test_cli_eval_with_a_wrong_case_id_is_one_line_with_exit_2(capsys, monkeypatch):
    from rlvr.cli import main

    monkeypatch.setattr(sys, "argv", ["rlvr", "eval", "rlvr/math-V0", "--policy", "python:json:dumps", "-q"])
    with pytest.raises(SystemExit) as e:
        main.run()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.count("\n") == 0 and "did you mean 'rlvr/Math-v0'" in err


# ---------------------------------------------------------------- served-model diagnostics

def test_completions_that_repeat_the_prompt_get_a_warning(tmp_path):
    def echo(messages):
        return messages[-1]["content"] + " and then some more text"

    report = evaluate("test/Words-v0", echo, n=4, output=tmp_path / "r.jsonl")
    [warning] = report.warnings
    assert "4 of 4 completions start by repeating the prompt" in warning and "generation prompt" in warning
    assert json.loads((tmp_path / "summary.json").read_text())["warnings"] == [warning]
    assert not evaluate("test/Words-v0", echo_word, n=4).warnings


class LongPrompts:
    """A policy that reports exact token counts and a small served context."""

    spec = "test:long-prompts"
    context_length = 8

    async def astart(self):
        pass

    async def aclose(self):
        pass

    async def complete(self, messages, sampling, *, task=None):
        from rlvr.envs.evaluation import Completion

        return Completion("w0", prompt_tokens=40, completion_tokens=1, estimated=False)


def test_prompts_longer_than_the_served_context_get_a_warning():
    from rlvr.envs.evaluation.policies.base import Policy

    policy = type("LongPromptPolicy", (LongPrompts, Policy), {})()
    report = evaluate("test/Words-v0", policy, n=3)
    [warning] = report.warnings
    assert "3 of 3 episodes sent prompts longer than the served model's context of 8 tokens (up to 40)" in warning


def test_the_openai_policy_reads_the_served_context_from_models_or_a_local_model_dir(tmp_path):
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from rlvr.envs.evaluation import OpenAIPolicy

    class Models(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"data": [{"id": "m", "max_model_len": 2048}]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = tmp_path / "model"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))

    async def context(model):
        p = OpenAIPolicy(f"http://127.0.0.1:{server.server_address[1]}/v1", model)
        await p.astart()
        await p.aclose()
        return p.context_length

    try:
        assert asyncio.run(context("m")) == 2048
        assert asyncio.run(context(str(local))) == 512
        assert asyncio.run(context("unknown")) is None
    finally:
        server.shutdown()


def test_echo_detection_needs_a_real_repeat():
    from rlvr.envs.evaluation.runner import echoes_prompt

    user = {"role": "user", "content": "What is  2 + 2? Answer with a number."}
    assert echoes_prompt([user, {"role": "assistant", "content": "What is 2 + 2? Answer with a number. 4"}])
    assert not echoes_prompt([user, {"role": "assistant", "content": "4"}])
    assert not echoes_prompt([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi there"}])
