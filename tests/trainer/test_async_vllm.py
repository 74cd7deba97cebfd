"""Asynchronous training against a vLLM server: requests keep flowing while the trainer pushes weights.

The server is a loopback fake that speaks vLLM's ``/v1/completions`` dialect (token ids, sampled-token
log-probs) and the weight-transfer routes TRL's ``VLLMClient`` calls (``/start_weight_update``,
``/update_weights``, ``/finish_weight_update``, ``/reset_prefix_cache``). The pushes go through TRL's
real ``VLLMClient`` and rlvr's ``push_weights``; only the NCCL broadcast (which needs vllm and a CUDA
device) is replaced by an in-process channel into the fake server, and the NCCL rendezvous
(``init_communicator``) is not run.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

from rlvr.trainer.rollout.backends import VLLMOptions  # noqa: E402
from rlvr.trainer.rollout.tasks import train_keys  # noqa: E402
from rlvr.trainer.run.config import EnvConfig  # noqa: E402
from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer  # noqa: E402

ENTRIES = [EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 1, "system_prompt": ""})]
HOLD_S = 60.0  # the longest the fake waits for the interleaving it arranges (never reached when it works)


class WeightServer:
    """A fake vLLM server that records completions requests and weight pushes in one timeline.

    To make the interleaving certain rather than likely, the second completions request is held
    until a push has finished, and that push does not start before the request has arrived: a
    request that is out while the weights change.
    """

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        self.events: list[tuple[str, int, int]] = []  # (what, index, server version at that moment)
        self.version = 0  # pushes completed
        self.pushes: list[dict[str, torch.Tensor]] = []
        self.announced: list[list[str]] = []
        self.channel: list[tuple[str, torch.Tensor]] = []  # stands in for the NCCL broadcast
        self.lock = threading.Lock()
        self.n_requests = self.n_starts = 0
        self.second_request = threading.Event()
        self.second_push_done = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send({"data": [{"id": "served-policy"}]} if self.path == "/v1/models" else {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._send(fake.handle(self.path, body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def log(self, what: str, index: int) -> None:
        with self.lock:
            self.events.append((what, index, self.version))

    def handle(self, path: str, body: dict) -> dict:
        if path == "/v1/completions":
            with self.lock:
                n = self.n_requests
                self.n_requests += 1
            self.log("request", n)
            if n == 1:
                self.second_request.set()
                self.second_push_done.wait(HOLD_S)
            choices = [self.choice(i, p, body) for i, p in enumerate(body["prompt"])]
            self.log("answer", n)
            return {"choices": choices}
        if path == "/start_weight_update":
            with self.lock:
                p = self.n_starts
                self.n_starts += 1
            if p == 1:
                self.second_request.wait(HOLD_S)
            self.log("push_start", p)
        elif path == "/update_weights":
            names = body["update_info"]["names"]
            deadline = time.monotonic() + HOLD_S
            while len(self.channel) < len(names) and time.monotonic() < deadline:  # the NCCL receive
                time.sleep(0.01)
            with self.lock:
                got, self.channel = dict(self.channel[: len(names)]), self.channel[len(names) :]
            self.announced.append(list(names))
            self.pushes.append(got)
        elif path == "/finish_weight_update":
            with self.lock:
                self.version += 1
            self.log("push_finish", self.version - 1)
            if self.version == 2:
                self.second_push_done.set()
        elif path == "/reset_prefix_cache":
            self.log("reset_prefix_cache", self.version - 1)
        return {}

    def choice(self, index: int, prompt: list[int], body: dict) -> dict:
        ids = self.tok("7", add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
        ids = ids[: body["max_tokens"]]
        return {"index": index, "text": self.tok.decode(ids, skip_special_tokens=True), "token_ids": ids,
                "finish_reason": "stop" if ids[-1] == self.tok.eos_token_id else "length", "stop_reason": None,
                "logprobs": {"token_logprobs": [-0.5] * len(ids)}}

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture()
def fake(monkeypatch):
    import trl.generation.vllm_client as vc

    server = WeightServer(tiny_tokenizer())

    class Channel:
        """TRL's NCCL sender, replaced: the tensors go to the fake server in this process."""

        @staticmethod
        def trainer_send_weights(iterator, trainer_args):
            for name, tensor in iterator:
                server.channel.append((name, tensor.detach().clone()))

    monkeypatch.setattr(vc, "is_vllm_available", lambda *a, **k: True)
    monkeypatch.setattr(vc, "NCCLWeightTransferEngine", Channel, raising=False)
    monkeypatch.setattr(vc, "NCCLTrainerSendWeightsArgs", lambda **kw: kw, raising=False)
    monkeypatch.setattr(vc, "_HAS_STATEFUL_TRAINER_ENGINE", False)
    yield server
    server.close()


def test_three_async_steps_push_weights_while_requests_are_out_and_tag_the_older_version(fake, tmp_path):
    from trl.generation.vllm_client import VLLMClient

    from rlvr.trainer.trl.async_rollouts import AsyncEnvRollouts, PushWeights
    from rlvr.trainer.trl.config import RLVRConfig
    from rlvr.trainer.trl.rollout_func import build_train_dataset, make_env_reward
    from rlvr.trainer.trl.trainer import RLVRTrainer
    from rlvr.trainer.trl.vllm_sync import push_weights

    tok = tiny_tokenizer()
    client = VLLMClient(base_url=fake.url)
    client.communicator = "in-process channel"  # what init_communicator's NCCL rendezvous would have set
    rollouts = AsyncEnvRollouts(ENTRIES, max_new_tokens=4, max_completion_length=4, max_off_policy_steps=1,
                                backend="vllm", vllm=VLLMOptions(fake.url, timeout=120.0),
                                weight_sync=lambda model: push_weights(client, model))
    model = tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=256))
    args = RLVRConfig(output_dir=str(tmp_path), algorithm="grpo", per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=4, max_steps=3, learning_rate=1e-2, weight_decay=0.5, use_cpu=True,
                      bf16=False, report_to="none", logging_steps=1, save_strategy="no", disable_tqdm=True)
    trainer = RLVRTrainer(model, reward_funcs=[make_env_reward(rollouts)], args=args,
                          train_dataset=build_train_dataset(train_keys(ENTRIES, 8, seed=0)), processing_class=tok,
                          rollout_func=rollouts, callbacks=[PushWeights(rollouts)])
    try:
        trainer.train()
        pipeline = rollouts.pipeline
        assert pipeline is not None and not hasattr(pipeline, "weights")  # no shared-memory model copy: HTTP only
        spanned = pipeline.versions.spanned
    finally:
        rollouts.close()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logs] == [1, 2, 3]
    assert all(math.isfinite(h["loss"]) and h["async/staleness_max"] <= 1 for h in logs)

    # one push before the first request, then one after each optimiser step: versions 0, 1, 2, 3
    names = [n for n, _ in model.named_parameters()]
    assert fake.announced == [names] * 4 and [set(p) for p in fake.pushes] == [set(names)] * 4
    kinds = [(what, i) for what, i, _ in fake.events if what.startswith("push") or what == "reset_prefix_cache"]
    assert kinds == [e for p in range(4) for e in (("push_start", p), ("push_finish", p), ("reset_prefix_cache", p))]
    assert not torch.equal(fake.pushes[0]["lm_head.weight"], fake.pushes[3]["lm_head.weight"])  # the weights moved
    for name, p in model.named_parameters():  # the server ends with the trained weights, bit for bit
        assert torch.equal(fake.pushes[3][name], p.detach())

    # the second request was out while push 1 ran: sent at version 0, back at version 1
    at = {(what, i): k for k, (what, i, _) in enumerate(fake.events)}
    assert at[("request", 1)] < at[("push_start", 1)] < at[("push_finish", 1)] < at[("answer", 1)]
    assert at[("push_finish", 0)] < at[("request", 0)]  # nothing sampled before the first push
    assert spanned >= 8, fake.events  # its 8 completions saw a push land ...
    assert logs[1]["async/staleness_max"] == 1  # ... and count as sampled by the older version
    assert fake.n_requests == 3  # one request per step's order: nothing dropped or regenerated


def test_a_server_that_dies_mid_run_is_an_error_naming_it_not_a_hang(fake):
    from rlvr.errors import RlvrError
    from rlvr.envs.generation import SamplingParams
    from rlvr.trainer.asynchronous.server import ServerGenerator
    from rlvr.trainer.asynchronous.versioned import VersionedRunner
    from rlvr.trainer.rollout.chat import ChatFormatter
    from rlvr.trainer.rollout.tasks import draw_keys
    from rlvr.trainer.rollout.vllm_backend import VLLMBackend

    tok = tiny_tokenizer()
    fake.second_push_done.set()  # no arranged interleaving here
    fake.second_request.set()
    backend = VLLMBackend(fake.url, tok, timeout=20.0)

    def make_runner(server):
        return VersionedRunner(ENTRIES, ChatFormatter(tok), server, max_new_tokens=4, max_completion_length=4,
                               max_turns=1, env_workers=2)

    keys = [str(k) for k in draw_keys(ENTRIES, 2, 0, 0) for _ in range(2)]
    gen = ServerGenerator(backend, make_runner, SamplingParams(max_new_tokens=4), None, model=None, version=0)
    try:
        produced, stats = gen.take(gen.submit(0, keys, 0), version=0, k=1, group_size=2)
        assert [str(e.key) for e in produced.episodes] == keys and stats.staleness == [0, 0]
        assert all(set(v) == {0} for v in produced.token_versions)
        fake.close()
        with pytest.raises(RlvrError, match="vLLM server http://127.0.0.1"):
            gen.take(gen.submit(1, keys, 0), version=1, k=1, group_size=2)
    finally:
        gen.close()
    assert gen.proc is None


def test_rlvr_train_refuses_async_on_a_server_that_never_gets_weights_before_loading_anything(tmp_path):
    from typer.testing import CliRunner

    from rlvr.cli.main import app
    from rlvr.errors import ConfigError

    config = tmp_path / "c.yaml"
    config.write_text("environments: [{id: rlvr/Arithmetic-v0}]\n")
    result = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(tmp_path / "run"),
                                      "--set", "generation.backend=vllm", "--set", "generation.vllm_url=http://127.0.0.1:9",
                                      "--set", "generation.vllm_sync_weights=false",
                                      "--set", "generation.max_off_policy_steps=1"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and result.exception.field == "generation.vllm_sync_weights"
    assert not (tmp_path / "run" / "checkpoints").exists()
