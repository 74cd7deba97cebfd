"""Training rollouts played by an evaluation policy (``generation.backend: policy``).

The episodes come from the evaluation's own loop; the trainer gets its chat template's tokens
with the policy's text re-tokenised, environment turns masked, and no behaviour log-probs.
"""

from __future__ import annotations

import json
import math
import textwrap

import pytest

pytest.importorskip("transformers")
pytestmark = pytest.mark.train

import rlvr.envs  # noqa: E402,F401  (registers the built-in environments)
from rlvr.envs.generation import SamplingParams  # noqa: E402
from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.rollout.chat import ChatFormatter  # noqa: E402
from rlvr.trainer.rollout.policy_runner import PolicyRunner, check_policy_rollouts  # noqa: E402
from rlvr.trainer.rollout.tasks import TaskKey  # noqa: E402
from rlvr.trainer.run.config import EnvConfig, check_algorithm, config_from_dict  # noqa: E402
from rlvr.trainer.tiny import tiny_tokenizer  # noqa: E402

GUESS = EnvConfig("rlvr/GuessNumber-v0", kwargs={"difficulty": 1})
ARITH = EnvConfig("rlvr/Arithmetic-v0", kwargs={"difficulty": 1, "system_prompt": ""})

POLICY_FILE = textwrap.dedent('''
    CALLS = []

    def count(messages):
        """Guesses the number of messages so far (never the secret on the first turn)."""
        return str(len(messages))

    def oracle(messages, task):
        return str(task["reference"])

    def chatty(messages):
        return "I think the answer might be " + " ".join(["seven"] * 50)
''')


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policies.py"
    path.write_text(POLICY_FILE)
    return path


def _runs(mask):
    runs = []
    for m in mask:
        if runs and runs[-1][0] == m:
            runs[-1][1] += 1
        else:
            runs.append([m, 1])
    return runs


def test_multi_turn_episode_is_the_trainers_chat_transcript_with_environment_tokens_masked(tok, policy_file):
    runner = PolicyRunner([GUESS], ChatFormatter(tok), f"python:{policy_file}:count", max_new_tokens=8,
                          max_completion_length=400, max_turns=4)
    [ep] = runner.run([TaskKey(0, GUESS.id, 7)], SamplingParams(max_new_tokens=8))
    runner.close()
    assert ep.turns == 4 and ep.done and ep.truncated and ep.status == "no_answer"
    # The token sequence is the trainer's template rendering of the conversation up to the last model turn.
    last = max(i for i, m in enumerate(ep.messages) if m["role"] == "assistant")
    rendered = tok.apply_chat_template(ep.messages[: last + 1], tokenize=True, return_dict=False)
    seq = ep.prompt_ids + ep.completion_ids
    assert rendered[: len(seq)] == seq
    assistant = [m["content"] for m in ep.messages if m["role"] == "assistant"]
    assert assistant == ["1", "3", "5", "7"]  # the policy saw the growing conversation
    model_runs, pos = [], 0
    for value, n in _runs(ep.env_mask):
        if value:
            model_runs.append(ep.completion_ids[pos : pos + n])
        pos += n
    assert [tok.decode(r, skip_special_tokens=True) for r in model_runs] == assistant
    assert all(r[-1] == tok.eos_token_id for r in model_runs)  # the model is trained to end its turn
    # No behaviour log-probs: zeros throughout, and the runner says so.
    assert set(ep.logprobs) == {0.0} and len(ep.logprobs) == len(ep.completion_ids)
    assert PolicyRunner.behaviour_logprobs is False


def test_an_oracle_policy_solves_and_groups_share_their_task(tok, policy_file):
    runner = PolicyRunner([GUESS, ARITH], ChatFormatter(tok), f"python:{policy_file}:oracle", max_new_tokens=16,
                          max_completion_length=200)
    keys = [TaskKey(0, GUESS.id, 3), TaskKey(0, GUESS.id, 3), TaskKey(1, ARITH.id, 5), TaskKey(1, ARITH.id, 5)]
    episodes = runner.run(keys, SamplingParams(max_new_tokens=16))
    runner.close()
    assert [e.success for e in episodes] == [True] * 4
    assert episodes[0].prompt_ids == episodes[1].prompt_ids != episodes[2].prompt_ids
    assert set(episodes[0].components) == {"solved", "efficiency"} and episodes[2].reward == 1.0


def test_long_text_is_cut_to_the_turn_limit_in_trainer_tokens_and_the_environment_judges_the_cut(tok, policy_file):
    runner = PolicyRunner([ARITH], ChatFormatter(tok), f"python:{policy_file}:chatty", max_new_tokens=5,
                          max_completion_length=200)
    [ep] = runner.run([TaskKey(0, ARITH.id, 1)], SamplingParams(max_new_tokens=5))
    runner.close()
    assert ep.model_tokens == 5 and ep.completion_ids[-1] != tok.eos_token_id
    [answer] = [m["content"] for m in ep.messages if m["role"] == "assistant"]
    assert answer == tok.decode(ep.completion_ids, skip_special_tokens=True)
    assert not ep.success


def test_token_budget_ends_the_episode_as_overlong(tok, policy_file):
    runner = PolicyRunner([GUESS], ChatFormatter(tok), f"python:{policy_file}:count", max_new_tokens=8,
                          max_completion_length=30, max_turns=20)
    [ep] = runner.run([TaskKey(0, GUESS.id, 7)], SamplingParams(max_new_tokens=8))
    runner.close()
    assert ep.overlong and ep.truncated and not ep.success and ep.status == "no_answer"
    assert len(ep.completion_ids) == 30


def _cfg(**generation):
    return config_from_dict({"environments": [{"id": "rlvr/Arithmetic-v0"}], "generation": generation})


def test_policy_settings_that_need_sampler_logprobs_or_a_spec_are_refused(policy_file):
    spec = f"python:{policy_file}:oracle"
    with pytest.raises(ConfigError, match="generation.policy"):
        _cfg(backend="policy")
    with pytest.raises(ConfigError, match="generation.policy"):
        _cfg(policy=spec)
    cfg = _cfg(backend="policy", policy=spec)
    check_policy_rollouts(spec, check_algorithm(cfg), None)  # GRPO: the trainer's own log-probs suffice
    with pytest.raises(ConfigError, match="max_off_policy_steps"):
        check_policy_rollouts(spec, check_algorithm(cfg), 2)
    dppo = config_from_dict({"environments": [{"id": "rlvr/Arithmetic-v0"}], "algorithm": {"preset": "dppo"},
                             "generation": {"backend": "policy", "policy": spec}})
    with pytest.raises(ConfigError, match="sampler's log-probs"):
        check_policy_rollouts(spec, check_algorithm(dppo), None)
    with pytest.raises(ConfigError, match="^generation.policy: unknown policy kind 'nosuch'"):
        check_policy_rollouts("nosuch:thing", check_algorithm(cfg), None)
    with pytest.raises(ConfigError, match="^generation.policy: cannot import module"):
        check_policy_rollouts("python:no_such_module_here:fn", check_algorithm(cfg), None)


@pytest.mark.slow
def test_rlvr_train_rolls_out_with_a_python_policy_for_two_steps(tmp_path, policy_file):
    pytest.importorskip("trl")
    from rlvr.trainer.run.train import run_training

    out = tmp_path / "run"
    cfg = config_from_dict({
        "output_dir": str(out), "seed": 0, "device": "cpu",
        "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}},
        "environments": [{"id": "rlvr/GuessNumber-v0", "kwargs": {"difficulty": 1}}],
        "algorithm": {"preset": "grpo"},
        "generation": {"num_generations": 2, "prompts_per_step": 2, "max_new_tokens": 6, "max_completion_length": 200,
                       "max_turns": 3, "backend": "policy", "policy": f"python:{policy_file}:count"},
        "optim": {"max_steps": 2, "learning_rate": 1e-4},
        "eval": {"num_tasks": 2, "samples_per_task": 2, "every_steps": 0},
        "logging": {"sample_rollouts": 4, "progress": False, "logging_steps": 1},
        "checkpoint": {"save_steps": 2},
    })
    summary = run_training(cfg)
    assert summary["steps"] == 2
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["turns"] == 3 for s in samples)  # the policy played every turn of the training episodes
    assert [m["content"] for m in samples[0]["messages"] if m["role"] == "assistant"] == ["1", "3", "5"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train" and "loss" in r]
    assert [r["step"] for r in train] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in train)
    assert (out / "final" / "config.json").exists()


@pytest.mark.slow
def test_rlvr_train_rolls_out_with_an_openai_policy_behind_a_real_transformers_serve(tmp_path):
    """The policy is another model behind a real OpenAI-compatible server (`transformers serve`)."""
    pytest.importorskip("trl")
    from rlvr.trainer.run.train import run_training
    from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer

    from ..transformers_serve import transformers_serve

    served = tmp_path / "served"
    tok = tiny_tokenizer()
    tiny_model(tok, TinyModelConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=256, seed=5)) \
        .save_pretrained(served)
    tok.save_pretrained(served)
    out = tmp_path / "run"
    with transformers_serve(served, tmp_path / "serve.log") as base_url:
        cfg = config_from_dict({
            "output_dir": str(out), "seed": 0, "device": "cpu",
            "model": {"tiny": {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}},
            "environments": [{"id": "rlvr/Arithmetic-v0", "kwargs": {"difficulty": 1, "system_prompt": ""}}],
            "generation": {"num_generations": 2, "prompts_per_step": 2, "max_new_tokens": 6,
                           "max_completion_length": 32, "backend": "policy", "policy": f"openai:{base_url}#{served}"},
            "optim": {"max_steps": 2, "learning_rate": 1e-4},
            "eval": {"num_tasks": 0},
            "logging": {"sample_rollouts": 4, "progress": False, "logging_steps": 1},
            "checkpoint": {"save_steps": 2},
        })
        summary = run_training(cfg)
    assert summary["steps"] == 2
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["status"] != "error" for s in samples)
    # The served model's replies, re-tokenised: the trained tokens are what the environment judged.
    assert all(s["model_tokens"] >= 1 and s["turns"] == 1 for s in samples)
