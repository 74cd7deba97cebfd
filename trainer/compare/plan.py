"""What a comparison runs: one warm-up per seed, then one run per algorithm and seed, all from one config.

A comparison config is a train config (the same YAML ``rlvr train`` reads) with an optional
``compare:`` section::

    compare:
      algorithms:                # label -> preset and overrides (a bare list of preset names also works)
        grpo: {preset: grpo}
        grpo_no_std: {preset: grpo, overrides: {scale: none}}
      seeds: 3                   # seeds config.seed, config.seed + 1, ...
      budget_samples: 4096       # rollouts trained on per run (sets optim.max_steps)

Fairness by construction: every run of a seed starts from that seed's warm-up checkpoint (the
SFT is done once per seed and reused), draws the same prompts in the same order (the task keys
are a function of the seed), trains on the same number of rollouts, and is evaluated on the
same held-out tasks at the same steps. Only the algorithm section differs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError, InputError
from rlvr.trainer.run.config import check_algorithm, check_environments, config_from_dict


@dataclass(frozen=True)
class Algorithm:
    """One contender: a label, an rlvr preset and field overrides."""

    label: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One training run of the comparison."""

    name: str  # folder name under runs/
    algorithm: str  # the label
    seed: int
    config: dict[str, Any]  # the full train config (plain data)
    phase: str = "run"  # "warmup" or "run"


@dataclass
class ComparePlan:
    """Everything a comparison will run, in order: warm-ups first, then the runs."""

    output_dir: Path
    algorithms: list[Algorithm]
    seeds: list[int]
    steps: int
    budget_samples: int
    warmups: list[RunSpec]
    runs: list[RunSpec]

    def warmup_policy(self, seed: int) -> Path | None:
        """Where the warm-up of ``seed`` leaves its policy (None when the config has no SFT warm-up)."""
        return (self.output_dir / "warmup" / f"seed-{seed}" / "start_policy") if self.warmups else None


def _algorithms(section: Any, names: list[str] | None) -> list[Algorithm]:
    """The contenders: ``--algorithms`` names, each a label of ``compare.algorithms`` or a preset name."""
    table: dict[str, Algorithm] = {}
    if isinstance(section, list):
        section = {str(n): {"preset": str(n)} for n in section}
    if section is not None and not isinstance(section, dict):
        raise ConfigError("compare.algorithms", "expected a mapping of label -> {preset, overrides} or a list of presets")
    for label, spec in (section or {}).items():
        spec = {"preset": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or set(spec) - {"preset", "overrides"}:
            raise ConfigError(f"compare.algorithms.{label}", "expected {preset: NAME, overrides: {...}}")
        overrides = spec.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"compare.algorithms.{label}.overrides", "expected a mapping of AlgorithmConfig fields")
        table[str(label)] = Algorithm(str(label), str(spec.get("preset") or label), dict(overrides))
    chosen = names if names else list(table)
    if not chosen:
        raise ConfigError("--algorithms", "no algorithm to compare", "pass e.g. --algorithms grpo,dr_grpo "
                          "or list them under compare.algorithms in the config")
    out = [table.get(n) or Algorithm(n, n) for n in chosen]
    if len({a.label for a in out}) != len(out):
        raise ConfigError("--algorithms", "an algorithm is named twice", "give each contender once")
    return out


def make_plan(
    config_path: str | Path,
    *,
    algorithms: list[str] | None = None,
    seeds: int | None = None,
    budget_samples: int | None = None,
    output_dir: str | Path | None = None,
) -> ComparePlan:
    """Read a comparison config and check every run's config before anything trains."""
    from rlvr.trainer.run.config import read_config_file

    path = Path(config_path)
    data = read_config_file(path)
    section = data.pop("compare", None) or {}
    if not isinstance(section, dict) or set(section) - {"algorithms", "seeds", "budget_samples"}:
        raise ConfigError("compare", "allowed fields: algorithms, seeds, budget_samples")
    contenders = _algorithms(section.get("algorithms"), algorithms)
    n_seeds = int(seeds if seeds is not None else section.get("seeds", 3))
    if n_seeds < 1:
        raise ConfigError("--seeds", f"must be >= 1, got {n_seeds}")
    base = config_from_dict(data)  # the config as rlvr train would read it: every field checked
    check_environments(base)
    g = base.generation
    per_step = g.prompts_per_step * g.num_generations
    budget = budget_samples if budget_samples is not None else section.get("budget_samples")
    if budget is not None:
        if int(budget) < per_step:
            raise ConfigError("--budget-samples", f"{budget} is less than one step's {per_step} rollouts "
                              f"(prompts_per_step {g.prompts_per_step} x num_generations {g.num_generations})",
                              f"pass at least {per_step}")
        steps = int(budget) // per_step
    else:
        steps = base.optim.max_steps
    out = Path(output_dir or Path(base.output_dir)).resolve()
    seed_list = [base.seed + i for i in range(n_seeds)]

    warmups: list[RunSpec] = []
    if base.sft.steps:
        for seed in seed_list:
            cfg = copy.deepcopy(data)
            cfg.update(seed=seed, output_dir=str(out / "warmup" / f"seed-{seed}"))
            cfg["algorithm"] = {"preset": contenders[0].preset, "overrides": dict(contenders[0].overrides)}
            # The warm-up's product is start_policy/ (the SFT'd weights); one RL step is the least run_training does.
            cfg.setdefault("optim", {})["max_steps"] = 1
            cfg.setdefault("eval", {}).update(before=False, after=False, every_steps=0)
            cfg.setdefault("checkpoint", {}).update(save_steps=0, save_final_model=False)
            cfg.setdefault("logging", {}).update(progress=False, sample_rollouts=0)
            config_from_dict(cfg)
            warmups.append(RunSpec(f"seed-{seed}", "warmup", seed, cfg, phase="warmup"))

    runs: list[RunSpec] = []
    for algo in contenders:
        for seed in seed_list:
            cfg = copy.deepcopy(data)
            name = f"{algo.label}-seed{seed}"
            cfg.update(seed=seed, output_dir=str(out / "runs" / name))
            cfg["algorithm"] = {"preset": algo.preset, "overrides": dict(algo.overrides)}
            cfg.setdefault("optim", {})["max_steps"] = steps
            cfg.setdefault("logging", {})["progress"] = False
            if warmups:
                cfg.setdefault("model", {})["name_or_path"] = str(out / "warmup" / f"seed-{seed}" / "start_policy")
                cfg.setdefault("sft", {})["steps"] = 0
            cfg_obj = config_from_dict(cfg)
            try:
                check_algorithm(cfg_obj)
            except ConfigError as e:
                raise ConfigError(f"--algorithms {algo.label}" if not algo.overrides else
                                  f"compare.algorithms.{algo.label}", e.problem, e.fix) from None
            runs.append(RunSpec(name, algo.label, seed, cfg))
    return ComparePlan(out, contenders, seed_list, steps, steps * per_step, warmups, runs)


__all__ = ["Algorithm", "RunSpec", "ComparePlan", "make_plan"]
