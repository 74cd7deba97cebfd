"""A trained run's final/ behind a real `transformers serve`: the run's prompt rendering, the reply alone.

The policy is trained with the CPU examples' compact chat template (no assistant header) on a
Qwen2: served without the response template the run writes, every reply came back starting with
the prompt (serve's Qwen2 parser looks for "<|im_start|>assistant" and, not finding it, returns
the whole text) and scored 0.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

COMPACT = ("{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] + '<|im_end|>' }}"
           "{% else %}{{ m['content'] + '\\n' }}{% endif %}{% endfor %}")
CONFIG = f"""
seed: 0
device: cpu
model:
  tiny: {{hidden_size: 32, intermediate_size: 64, max_position_embeddings: 256}}
  chat_template: "{COMPACT}"
environments:
  - {{id: rlvr/Arithmetic-v0, kwargs: {{difficulty: 1, system_prompt: ""}}}}
algorithm: {{preset: dr_grpo}}
generation: {{num_generations: 2, prompts_per_step: 2, max_new_tokens: 8, max_completion_length: 8}}
optim: {{max_steps: 1, learning_rate: 1.0e-3}}
eval: {{num_tasks: 0}}
logging: {{progress: false}}
checkpoint: {{save_steps: 0}}
"""
ENV_KWARGS = {"difficulty": 1, "system_prompt": ""}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_final(tmp_path):
    """(base_url, final_dir): a one-step run's final/ behind `transformers serve` (logged to a file)."""
    from rlvr.trainer.run.config import load_config
    from rlvr.trainer.run.train import run_training

    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    run_training(load_config(config, {"output_dir": str(tmp_path / "run")}))
    final = tmp_path / "run" / "final"
    port = _free_port()
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")  # a file, not a pipe: an unread pipe fills up and stalls the server
    proc = subprocess.Popen([str(Path(sys.executable).with_name("transformers")), "serve", str(final), "--host",
                             "127.0.0.1", "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("transformers serve did not come up in 180 s")
        yield f"http://127.0.0.1:{port}/v1", final
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_serve_renders_the_runs_prompt_and_returns_only_the_models_reply(served_final):
    import gymnasium as gym
    import httpx
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import rlvr.envs  # noqa: F401  (registers the environments)
    from rlvr.envs.evaluation import evaluate
    from rlvr.envs.evaluation.runner import echoes_prompt
    from rlvr.trainer.rollout.chat import ChatFormatter

    base_url, final = served_final
    env = gym.make("rlvr/Arithmetic-v0", **ENV_KWARGS)
    messages, _ = env.reset(seed=5)
    env.close()
    body = httpx.post(f"{base_url}/chat/completions", timeout=120,
                      json={"model": str(final), "messages": messages, "max_tokens": 8, "temperature": 0}).json()
    served = body["choices"][0]["message"]["content"]

    # The server renders the prompt with the run's template: the very tokens the policy was trained on.
    tokenizer = AutoTokenizer.from_pretrained(final)
    prompt_ids = ChatFormatter(tokenizer).prompt_ids(messages)
    assert body["usage"]["prompt_tokens"] == len(prompt_ids)
    # ... and its reply is the model's greedy continuation alone, not the prompt followed by it.
    model = AutoModelForCausalLM.from_pretrained(final)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=8, do_sample=False)
    expected = tokenizer.decode(out[0, len(prompt_ids):], skip_special_tokens=True)
    assert served.rstrip() == expected.rstrip()
    assert not echoes_prompt([*messages, {"role": "assistant", "content": served}])

    # `rlvr eval openai:` against it: no completion repeats the prompt, and no warning says so.
    rollouts = final.parent / "eval_rollouts.jsonl"
    report = evaluate("rlvr/Arithmetic-v0", f"openai:{base_url}#{final}", n=4, env_kwargs=ENV_KWARGS, max_tokens=8,
                      temperature=0.0, concurrency=2, output=rollouts)
    assert report.episodes_done == 4 and report.status_counts.get("error", 0) == 0, report.status_counts
    records = [json.loads(line) for line in rollouts.read_text().splitlines()]
    assert len(records) == 4 and not any(echoes_prompt(r["messages"]) for r in records)
    assert not [w for w in report.warnings if "repeating the prompt" in w], report.warnings
