"""The trainer's backends as `rlvr eval` policies: hf: through the engine and model.generate."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")
pytestmark = pytest.mark.train

from rlvr.envs.evaluation import evaluate, make_policy, policy_schemes  # noqa: E402
from rlvr.envs.generation import SamplingParams  # noqa: E402
from rlvr.trainer.policies import BackendPolicy  # noqa: E402
from rlvr.trainer.policies.hf import HFPolicy  # noqa: E402
from rlvr.trainer.tiny import tiny_model, tiny_tokenizer  # noqa: E402

ENV_ID = "rlvr/Arithmetic-v0"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("policies") / "tiny"
    tokenizer = tiny_tokenizer()
    tiny_model(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_hf_and_vllm_schemes_are_listed_without_importing_their_code():
    schemes = policy_schemes()
    assert schemes["hf"].startswith("hf:PATH") and schemes["vllm"].startswith("vllm:")


def test_hf_policy_generates_with_a_tiny_local_model_and_both_backends_agree(tiny_dir, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    auto = make_policy(f"hf:{tiny_dir}")
    assert isinstance(auto, HFPolicy)
    report = evaluate(ENV_ID, auto, n=1, k=2, concurrency=2, max_tokens=6, temperature=0, output=out)
    assert auto.backend == "engine"  # the tiny model is a family the rollout engine supports
    assert report.episodes_done == 2 and set(report.status_counts) <= {"ok", "wrong", "no_answer", "parse_error"}
    assert not report.tokens_estimated
    assert 0 < report.completion_tokens <= 2 * 6 and report.prompt_tokens > 2 * 20
    rows = sorted((json.loads(line) for line in out.read_text().splitlines()), key=lambda r: (r["task_index"], r["sample"]))
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)

    # Greedy decoding: model.generate on the padded batch gives the same text and token counts.
    plain = make_policy(f"hf:{tiny_dir}?backend=generate")
    again = evaluate(ENV_ID, plain, n=1, k=2, concurrency=2, max_tokens=6, temperature=0, output=tmp_path / "g.jsonl")
    rows_g = sorted((json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()),
                    key=lambda r: (r["task_index"], r["sample"]))
    assert plain.backend == "hf" and sum(plain.batch_sizes) == 2
    assert [r["messages"] for r in rows_g] == [r["messages"] for r in rows]
    assert (again.prompt_tokens, again.completion_tokens) == (report.prompt_tokens, report.completion_tokens)


def test_backend_policy_keeps_token_ids_and_logprobs(tiny_dir):
    import asyncio

    policy = HFPolicy(tiny_dir, concurrency=2)

    async def main():
        await policy.astart()
        try:
            return await asyncio.gather(*(policy.complete([{"role": "user", "content": f"2 + {i} ="}],
                                                          SamplingParams(max_new_tokens=5, temperature=1.0))
                                          for i in range(3)))
        finally:
            await policy.aclose()

    completions = asyncio.run(main())
    assert isinstance(policy, BackendPolicy)
    for c in completions:
        assert 1 <= len(c.token_ids) <= 5 and len(c.logprobs) == len(c.token_ids)
        assert all(lp <= 0 for lp in c.logprobs) and c.prompt_tokens == len(c.prompt_ids) > 0
        assert c.finish_reason in ("stop", "length")


def test_unknown_hf_option_names_the_fix(tiny_dir):
    from rlvr.errors import ConfigError

    with pytest.raises(ConfigError, match="backend=engine"):
        make_policy(f"hf:{tiny_dir}?device=cpu")
