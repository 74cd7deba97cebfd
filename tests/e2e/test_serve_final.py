"""A trained run's final/ behind a real `transformers serve`: the run's prompt rendering, the reply alone.

The policy is trained with the CPU examples' compact chat template (no assistant header) on a
Qwen2: served without the response template the run writes, every reply came back starting with
the prompt (serve's Qwen2 parser looks for "<|im_start|>assistant" and, not finding it, returns
the whole text) and scored 0.
"""

from __future__ import annotations

import json

import pytest

from ..transformers_serve import transformers_serve
from .runs import run_config

pytest.importorskip("trl")
pytestmark = [pytest.mark.slow, pytest.mark.train]

COMPACT = ("{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] + '<|im_end|>' }}"
           "{% else %}{{ m['content'] + '\\n' }}{% endif %}{% endfor %}")
MODEL = f'{{tiny: {{hidden_size: 32, intermediate_size: 64, max_position_embeddings: 256}}, chat_template: "{COMPACT}"}}'
CONFIG = run_config(seed=0, preset="dr_grpo", model=MODEL,
                    generation="{num_generations: 2, prompts_per_step: 2, max_new_tokens: 8, max_completion_length: 8}",
                    optim="{max_steps: 1, learning_rate: 1.0e-3}", checkpoint="{save_steps: 0}")
ENV_KWARGS = {"difficulty": 1, "system_prompt": ""}


@pytest.fixture
def served_final(tmp_path):
    """(base_url, final_dir): a one-step run's final/ behind `transformers serve` (logged to a file)."""
    from rlvr.trainer.run.config import load_config
    from rlvr.trainer.run.train import run_training

    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    run_training(load_config(config, {"output_dir": str(tmp_path / "run")}))
    final = tmp_path / "run" / "final"
    with transformers_serve(final, tmp_path / "serve.log") as base_url:
        yield base_url, final


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
