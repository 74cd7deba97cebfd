"""`rlvr eval --run RUN_DIR`: a run's model on the run's own environments, template and sampling."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")
pytestmark = pytest.mark.train

from typer.testing import CliRunner  # noqa: E402

from rlvr.cli.main import app  # noqa: E402
from rlvr.errors import ConfigError  # noqa: E402
from rlvr.trainer.demo import DEMO_CHAT_TEMPLATE, demo_settings  # noqa: E402
from rlvr.trainer.rollout.tasks import HELDOUT_SEED_BASE  # noqa: E402
from rlvr.trainer.run.config import config_from_dict, dump_config  # noqa: E402
from rlvr.trainer.run.eval_run import checkpoint_dir, load_run_config, plan_run_eval, run_chat_template  # noqa: E402
from rlvr.trainer.tiny import TinyModelConfig, tiny_model, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The demo's run directory, shaped as `rlvr demo` leaves it: config.yaml, final/ and one checkpoint."""
    run = tmp_path_factory.mktemp("demo_run")
    settings = demo_settings(str(run), device="cpu")
    settings["eval"].update(num_tasks=3, samples_per_task=2)
    dump_config(config_from_dict(settings), run / "config.yaml")
    tokenizer = tiny_tokenizer(DEMO_CHAT_TEMPLATE)
    spec = settings["model"]["tiny"]
    model = tiny_model(tokenizer, TinyModelConfig(**spec))
    for where in (run / "final", run / "checkpoints" / "checkpoint-100"):
        model.save_pretrained(where)
        tokenizer.save_pretrained(where)
    return run


def test_the_plan_is_the_runs_own_environments_and_settings(run_dir):
    cfg = load_run_config(run_dir)
    [plan] = plan_run_eval(cfg)
    assert plan.env_id == "rlvr/CompactArithmetic-v0"
    assert plan.env_kwargs == {"config": {"difficulty": 3, "digits": 2, "operators": ["+"], "max_terms": 2}}
    assert (plan.n, plan.k, plan.max_tokens, plan.max_turns, plan.temperature) == (3, 2, 6, 1, 1.0)
    assert plan.seed >= HELDOUT_SEED_BASE  # held-out seeds: never a training task
    assert run_chat_template(cfg) == DEMO_CHAT_TEMPLATE
    assert checkpoint_dir(run_dir) == run_dir / "final"
    assert checkpoint_dir(run_dir, "checkpoint-100") == run_dir / "checkpoints" / "checkpoint-100"
    with pytest.raises(ConfigError, match="--checkpoint"):
        checkpoint_dir(run_dir, "checkpoint-7")


def test_rlvr_eval_run_evaluates_the_final_model_with_the_runs_template(run_dir):
    result = CliRunner().invoke(app, ["eval", "--run", str(run_dir), "-c", "2"])
    assert result.exit_code == 0, result.output
    out = run_dir / "eval" / "final" / "rlvr_CompactArithmetic-v0"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes_done"] == 6 and summary["settings"]["max_tokens"] == 6
    assert summary["settings"]["env_kwargs"]["config"]["digits"] == 2
    rows = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    # the prompt is the compact expression, with no system message: the run's task, not rlvr/Arithmetic-v0's
    first = rows[0]["messages"][0]
    assert first["role"] == "user" and first["content"].endswith(" =") and "+" in first["content"]
    assert all(r["seed"] >= HELDOUT_SEED_BASE for r in rows)
    assert "pass@1" in result.output


def test_rlvr_eval_run_takes_a_checkpoint_and_refuses_a_policy(run_dir, tmp_path):
    result = CliRunner().invoke(app, ["eval", "--run", str(run_dir), "--checkpoint", "checkpoint-100", "-n", "1",
                                      "-k", "1", "-o", str(tmp_path / "ck"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ck" / "rlvr_CompactArithmetic-v0" / "summary.json").is_file()
    with pytest.raises(ConfigError, match="--run"):
        CliRunner().invoke(app, ["eval", "--run", str(run_dir), "--policy", "python:x:y"], catch_exceptions=False)


def test_a_directory_that_is_not_a_run_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not an rlvr run directory"):
        load_run_config(tmp_path)
