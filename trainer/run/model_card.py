"""The run's own documents: a model card for its checkpoints and a README for its directory.

TRL writes a generic card into the checkpoint folder ("fine-tuned version of [None]", "RLVR, a
method introduced in DeepSeekMath"); this replaces it with what the run knows: base model,
environments, algorithm, steps, held-out numbers and the command that reproduces the run. The
directory README says what every file is, including ``data_order.jsonl``. No torch: both are
written from config.yaml and summary.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rlvr.report.load import read_json

RUN_FILES = (
    ("config.yaml", "the resolved train config, every default filled in; `rlvr train config.yaml` reruns it"),
    ("metrics.jsonl", "one JSON object per logged step: `kind` is `train` (reward, entropy, clip fractions, lengths, "
                      "`algo/*` loss terms), `eval` (held-out pass@k, lengths of correct and wrong answers) or `sft`"),
    ("samples.jsonl", "sample rollouts of logged steps: the conversation turn by turn, reward and its components, "
                      "success, status, model/environment token counts, and the advantage it was trained with "
                      "(mean over its loss tokens; null where it had none, or when dynamic sampling regenerated groups)"),
    ("data_order.jsonl", "the task keys of every optimiser step, one line per generation round: "
                         "`{\"step\", \"round\", \"keys\"}`. A key `env=I ID seed=S` is the task that environment I of "
                         "the mixture poses on `reset(seed=S)`, repeated once per rollout of its group. The order is "
                         "drawn from the run's seed, so a resumed run must replay exactly these keys; `round` > 1 "
                         "appears when dynamic sampling (DAPO) generated extra groups for a step. Use it to audit "
                         "what the policy saw, or to check two runs saw the same prompts"),
    ("eval_before.json", "held-out evaluation of the starting policy (after any SFT warm-up)"),
    ("eval_after.json", "held-out evaluation of the final policy"),
    ("summary.json", "before/after evaluation, steps, wall time per phase"),
    ("report.html", "the run report: curves, final table, pass@k, lengths, rollout browser (`rlvr report DIR` redraws it)"),
    ("reward_curve.png", "the report's curves as one image"),
    ("async.jsonl", "asynchronous runs (generation.max_off_policy_steps >= 1): generator orders, consumptions with "
                    "their staleness, generator restarts, and after a resume which in-flight orders were regenerated"),
    ("retired.jsonl", "tasks retired once solved (no-positive-resampling, generation.retire_pass_rate): "
                      "`{\"step\", \"key\", \"fingerprint\", \"pass_rate\"}`; a later key posing a retired task is "
                      "replaced by a spare one, and a resumed run reads the rows up to its checkpoint back"),
    ("run_state.json", "wall time of earlier segments and each segment's start step and max_steps (a resumed or extended run adds one)"),
    ("start_policy/", "the policy RL started from (the SFT warm-up's result), also the KL reference of a resumed run"),
    ("checkpoints/", "checkpoint-N/ folders for `rlvr train --resume` (model, optimiser, scheduler, RNG, trainer state)"),
    ("final/", "the final policy and tokenizer, loadable with `from_pretrained`; README.md is its model card"),
)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("–" if value is None else str(value))


def reproduce_command(run_dir: str | Path) -> str:
    """The command that reruns this run from its own saved config."""
    return f"rlvr train {Path(run_dir) / 'config.yaml'} --output-dir NEW_DIR"


def model_card(run_dir: str | Path) -> str:
    """Markdown model card of the run's final policy (front matter + what was trained, how, and how well)."""
    run_dir = Path(run_dir)
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        cfg = {}
    summary = read_json(run_dir / "summary.json") or {}
    model = (cfg.get("model") or {}).get("name_or_path", "?")
    algo = cfg.get("algorithm") or {}
    envs = [e for e in cfg.get("environments") or [] if isinstance(e, dict)]
    g, o, sft, ev = (cfg.get(k) or {} for k in ("generation", "optim", "sft", "eval"))
    base = "a small Qwen2 built in code by rlvr (`model.name_or_path: tiny`), no pretrained weights" if model == "tiny" \
        else f"`{model}`"
    lines = [
        "---",
        "library_name: transformers",
        "tags: [rlvr, reinforcement-learning, verifiable-rewards]",
        *( [f"base_model: {model}"] if model != "tiny" and not Path(str(model)).is_absolute() else []),
        "---",
        "",
        f"# {run_dir.name}: {algo.get('preset', '?')} on {', '.join(str(e.get('id')) for e in envs) or '?'}",
        "",
        f"Trained with [rlvr](https://pypi.org/project/rlvr/) by reinforcement learning against environments whose "
        f"verifiers score each answer. Base model: {base}.",
        "",
        "## Training",
        "",
        f"- algorithm: `{algo.get('preset', '?')}`" + (f" with overrides `{algo.get('overrides')}`" if algo.get("overrides") else ""),
        "- environments: " + "; ".join(f"`{e.get('id')}` (weight {e.get('weight', 1.0)}"
                                        + (f", {e.get('kwargs')}" if e.get("kwargs") else "") + ")" for e in envs),
        f"- RL steps: {summary.get('steps', o.get('max_steps', '?'))} x {g.get('prompts_per_step', '?')} prompts x "
        f"{g.get('num_generations', '?')} rollouts, learning rate {o.get('learning_rate', '?')}, seed {cfg.get('seed', '?')}",
    ]
    if sft.get("steps"):
        lines.append(f"- SFT warm-up first: up to {sft['steps']} steps on the environments' reference solutions"
                     + (f", stopping once {sft['stop_at_success']:.0%} of probe tasks were solved" if sft.get("stop_at_success") else ""))
    if summary.get("wall_s") is not None:
        lines.append(f"- wall time: {summary['wall_s']:.0f} s on {summary.get('device', '?')}")
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    if before or after:
        lines += ["", "## Held-out evaluation", "",
                  f"{(after or before).get('tasks', '?')} tasks never used in training, "
                  f"{(after or before).get('samples_per_task', '?')} samples each at temperature "
                  f"{(after or before).get('temperature', ev.get('temperature', '?'))}.", "",
                  "| metric | before RL | after RL |", "|---|---:|---:|"]
        keys = [k for k in (after or before) if k.startswith(("pass@", "greedy_pass@"))] + ["reward", "response_tokens"]
        lines += [f"| {k} | {_fmt(before.get(k))} | {_fmt(after.get(k))} |" for k in keys]
    lines += ["", "## Reproduce", "", "```", reproduce_command(run_dir), "```", "",
              "The run directory's `README.md` lists what every file holds; `report.html` shows the curves.", ""]
    return "\n".join(lines)


def run_readme(run_dir: str | Path) -> str:
    """Markdown README of a run directory: one line per file it holds."""
    run_dir = Path(run_dir)
    rows = [f"- `{name}`: {what}" for name, what in RUN_FILES if (run_dir / name.rstrip("/")).exists()]
    return "\n".join([f"# Run directory {run_dir.name}", "", "Written by `rlvr train` / `rlvr demo`.", "", *rows,
                      "", "Reproduce: `" + reproduce_command(run_dir) + "`", ""])


def write_run_docs(run_dir: str | Path) -> list[Path]:
    """Write README.md into the run directory, and the model card into final/ and checkpoints/ (replacing TRL's)."""
    run_dir = Path(run_dir)
    written = []
    card = model_card(run_dir)
    for folder in (run_dir / "final", run_dir / "checkpoints"):
        if folder.is_dir():
            (folder / "README.md").write_text(card, encoding="utf-8")
            written.append(folder / "README.md")
    (run_dir / "README.md").write_text(run_readme(run_dir), encoding="utf-8")
    written.append(run_dir / "README.md")
    return written


__all__ = ["model_card", "run_readme", "write_run_docs", "reproduce_command", "RUN_FILES"]
