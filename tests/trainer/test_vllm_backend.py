"""The vLLM rollout backend against a loopback server that speaks vLLM's /v1/completions dialect.

No real vLLM can run here; the fake server checks what we send (token-id prompts, vLLM's extra
fields) and answers the way vLLM does (token ids, sampled-token log-probs, finish/stop reasons).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gymnasium
import pytest

pytest.importorskip("transformers")
pytestmark = pytest.mark.train

import rlvr.envs  # noqa: E402,F401  (registers the built-in environments)
from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.engine import SamplingParams  # noqa: E402
from rlvr.trainer.rollout.backends import VLLMOptions, make_backend  # noqa: E402
from rlvr.trainer.rollout.chat import ChatFormatter  # noqa: E402
from rlvr.trainer.rollout.runner import EnvRunner  # noqa: E402
from rlvr.trainer.run.config import EnvConfig  # noqa: E402
from rlvr.trainer.rollout.tasks import TaskKey  # noqa: E402
from rlvr.trainer.rollout.vllm_backend import VLLMBackend  # noqa: E402
from rlvr.trainer.tiny import tiny_tokenizer  # noqa: E402


class FakeVLLM:
    """``reply(prompt_text) -> text``, tokenized and cut like vLLM: max_tokens, stop ids, EOS."""

    def __init__(self, tokenizer, reply) -> None:
        self.tokenizer, self.reply, self.requests = tokenizer, reply, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send({"data": [{"id": "served-policy"}]} if self.path == "/v1/models" else {}, 200)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                self._send({"choices": [fake.choice(i, p, body) for i, p in enumerate(body["prompt"])]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def choice(self, index: int, prompt: list[int], body: dict) -> dict:
        ids = self.tokenizer(self.reply(self.tokenizer.decode(prompt)), add_special_tokens=False)["input_ids"]
        stops = set(body["stop_token_ids"]) | ({self.tokenizer.eos_token_id} if not body["ignore_eos"] else set())
        ids = ids + [self.tokenizer.eos_token_id]
        out, reason, stop_reason = [], "length", None
        for t in ids[: body["max_tokens"]]:
            out.append(t)
            if t in stops:
                reason = "stop"
                stop_reason = None if t == self.tokenizer.eos_token_id else t
                break
        return {"index": index, "text": self.tokenizer.decode(out, skip_special_tokens=True), "token_ids": out,
                "finish_reason": reason, "stop_reason": stop_reason, "prompt_token_ids": prompt,
                "logprobs": {"tokens": [f"token_id:{t}" for t in out], "token_logprobs": [-0.5] * len(out),
                             "top_logprobs": [{} for _ in out]}}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture()
def server(tok):
    fake = FakeVLLM(tok, lambda prompt: "42")
    yield fake
    fake.close()


def test_token_prompts_and_sampling_controls_reach_the_server_and_completions_come_back_in_order(tok, server):
    backend = VLLMBackend(server.url + "/v1", tok, max_batch=2)
    prompts = [tok(f"q{i}", add_special_tokens=False)["input_ids"] for i in range(5)]
    params = SamplingParams(max_new_tokens=8, temperature=0.7, top_p=0.9, top_k=0, stop_token_ids=(7,))
    out = backend.generate(prompts, params)
    backend.release()
    assert [c.index for c in out] == [0, 1, 2, 3, 4] and [c.prompt_ids for c in out] == prompts
    assert len(server.requests) == 3  # chunks of max_batch=2
    body = server.requests[0]
    assert body["model"] == "served-policy" and body["prompt"] in (prompts[0:2], prompts[2:4], prompts[4:])
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["top_k"]) == (8, 0.7, 0.9, -1)
    assert body["stop_token_ids"] == [7] and body["return_token_ids"] and body["logprobs"] == 0
    answer = tok("42", add_special_tokens=False)["input_ids"]
    for c in out:
        assert c.token_ids == answer + [tok.eos_token_id] and c.text == "42"
        assert c.finish_reason == "stop" and c.stop_reason == tok.eos_token_id
        assert c.logprobs == [-0.5] * len(c.token_ids)


def test_a_completion_cut_by_max_tokens_reports_length(tok, server):
    backend = VLLMBackend(server.url, tok)
    [c] = backend.generate([[1, 2, 3]], SamplingParams(max_new_tokens=1))
    backend.release()
    assert c.finish_reason == "length" and len(c.token_ids) == 1 and c.stop_reason is None


def test_weights_are_pushed_once_per_version_and_only_by_the_main_process(tok, server):
    pushed, barriers, version = [], [], [0]
    model = object()
    main = VLLMBackend(server.url, tok, model=model, weight_sync=pushed.append, weights_version=lambda: version[0],
                       barrier=lambda: barriers.append("main"))
    other = VLLMBackend(server.url, tok, model=model, weight_sync=pushed.append, weights_version=lambda: version[0],
                        is_main=False, barrier=lambda: barriers.append("other"))
    params = SamplingParams(max_new_tokens=4)
    main.generate([[1]], params)
    main.generate([[1]], params)  # same weights: no second push
    assert pushed == [model]
    version[0] = 1  # an optimiser step
    main.generate([[1]], params)
    assert pushed == [model, model]
    other.generate([[1]], params)  # a non-main rank waits at the barrier, never talks to the server's NCCL group
    assert pushed == [model, model] and barriers == ["main", "main", "other"]
    main.release()
    other.release()


def test_multi_turn_episodes_play_through_the_server(tok):
    entry = EnvConfig("rlvr/GuessNumber-v0", kwargs={"difficulty": 1})
    env = gymnasium.make(entry.id, **entry.kwargs)
    _, info = env.reset(seed=3)
    secret = str(info["task"]["reference"])
    fake = FakeVLLM(tok, lambda prompt: secret)
    try:
        backend = VLLMBackend(fake.url, tok)
        runner = EnvRunner([entry], ChatFormatter(tok), backend, max_new_tokens=8, max_completion_length=200)
        [ep] = runner.run([TaskKey(0, entry.id, 3)], SamplingParams(max_new_tokens=8))
        runner.close()
        backend.release()
    finally:
        fake.close()
    assert ep.success and ep.turns == 1 and ep.reward > 0
    assert fake.requests[0]["prompt"][0] == ep.prompt_ids


def test_no_server_or_no_address_is_a_config_error_naming_the_field(tok):
    with pytest.raises(ConfigError, match="generation.vllm_url"):
        VLLMBackend("http://127.0.0.1:9", tok, timeout=2.0)
    with pytest.raises(ConfigError, match="generation.vllm_url"):
        make_backend("vllm", None, tok, max_batch=1, max_seq_len=8)


def test_weight_sync_without_the_vllm_package_says_how_to_fix_it(tok, server):
    pytest.importorskip("torch")
    from trl.import_utils import is_vllm_available

    if is_vllm_available():
        pytest.skip("vllm is installed here")
    import torch

    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="pip install vllm"):
        make_backend("vllm", model, tok, max_batch=1, max_seq_len=8, vllm=VLLMOptions(server.url))
    backend = make_backend("vllm", model, tok, max_batch=1, max_seq_len=8,
                           vllm=VLLMOptions(server.url, sync_weights=False))
    assert backend.name == "vllm" and backend.generate([[1]], SamplingParams(max_new_tokens=2))
    backend.release()


def test_train_config_requires_a_server_address_for_the_vllm_backend():
    from rlvr.trainer.run.config import config_from_dict

    env = [{"id": "rlvr/Arithmetic-v0"}]
    with pytest.raises(ConfigError, match="generation.vllm_url"):
        config_from_dict({"environments": env, "generation": {"backend": "vllm"}})
    cfg = config_from_dict({"environments": env, "generation": {"backend": "vllm", "vllm_url": "http://h:8000"}})
    assert cfg.generation.vllm_sync_weights is True


def test_rlvr_train_checks_the_vllm_server_before_loading_a_model(tmp_path):
    from typer.testing import CliRunner

    from rlvr.cli.main import app

    config = tmp_path / "c.yaml"
    config.write_text("environments: [{id: rlvr/Arithmetic-v0}]\n")
    result = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(tmp_path / "run"),
                                      "--set", "generation.backend=vllm", "--set", "generation.vllm_url=http://127.0.0.1:9"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and result.exception.field == "generation.vllm_url"
    assert not (tmp_path / "run" / "checkpoints").exists()
