"""The run's own model card and directory README (instead of TRL's generic card)."""

from __future__ import annotations

import json

from rlvr.trainer.run.model_card import write_run_docs

TRL_CARD = "This model is a fine-tuned version of [None](https://huggingface.co/None).\nRLVR, a method introduced in DeepSeekMath"


def test_card_says_what_was_trained_how_and_how_well_and_replaces_trls(tmp_path):
    run = tmp_path / "arith"
    (run / "final").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "README.md").write_text(TRL_CARD)
    (run / "config.yaml").write_text(
        "seed: 2\nmodel: {name_or_path: tiny}\nalgorithm: {preset: dr_grpo, overrides: {clip_eps_high: 0.28}}\n"
        "environments: [{id: rlvr/CompactArithmetic-v0, weight: 1.0, kwargs: {config: {digits: 2}}}]\n"
        "generation: {prompts_per_step: 16, num_generations: 8}\noptim: {max_steps: 600, learning_rate: 1.0e-4}\n"
        "sft: {steps: 1500, stop_at_success: 0.3}\n")
    (run / "summary.json").write_text(json.dumps({
        "steps": 600, "wall_s": 250.0, "device": "cpu",
        "eval_before": {"pass@1": 0.31, "pass@4": 0.7, "tasks": 200, "samples_per_task": 4, "temperature": 1.0},
        "eval_after": {"pass@1": 0.72, "pass@4": 0.9, "tasks": 200, "samples_per_task": 4, "temperature": 1.0}}))
    (run / "data_order.jsonl").write_text('{"step": 1, "round": 1, "keys": []}\n')
    written = write_run_docs(run)
    assert {p.relative_to(run).as_posix() for p in written} == {"final/README.md", "checkpoints/README.md", "README.md"}
    card = (run / "final" / "README.md").read_text()
    assert (run / "checkpoints" / "README.md").read_text() == card
    assert "[None]" not in card and "DeepSeekMath" not in card
    for fact in ("dr_grpo", "clip_eps_high", "rlvr/CompactArithmetic-v0", "600 x 16 prompts x 8 rollouts", "seed 2",
                 "built in code", "SFT warm-up", "| pass@1 | 0.310 | 0.720 |", "200 tasks never used in training",
                 f"rlvr train {run / 'config.yaml'}"):
        assert fact in card, fact
    readme = (run / "README.md").read_text()
    assert "`data_order.jsonl`" in readme and "reset(seed=S)" in readme and "--resume" in readme
    assert "`eval_after.json`" not in readme  # only files the run holds are listed
