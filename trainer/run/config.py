"""The train config: one dataclass tree for a whole run, loaded from YAML and validated at once.

Every section is a frozen-free dataclass with documented fields (TRL's ``GRPOConfig`` habit: each
field says what it does and why its default is what it is). ``load_config(path, overrides)``
reads YAML, applies dotted overrides (the CLI flags), and checks every field name, type and
choice before any model is loaded: a typo fails with the field's full path, the allowed names
and a "did you mean" suggestion.

The field-by-field loader lives in ``schema.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlvr.errors import ConfigError, InputError
from rlvr.registry import close_names, did_you_mean, unknown_name_error
from rlvr.validate import positive_int
from rlvr.trainer.run.schema import build, set_dotted

Device = Literal["auto", "cpu", "cuda", "mps"]


@dataclass
class TinyModelSpec:
    """Shape of a policy built in code (``model.name_or_path: tiny``): a small Qwen2, byte tokenizer."""

    hidden_size: int = field(default=64, metadata={"help": "Width of the transformer."})
    intermediate_size: int = field(default=128, metadata={"help": "MLP width."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Number of transformer blocks."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    num_key_value_heads: int = field(default=2, metadata={"help": "Key/value heads (GQA)."})
    max_position_embeddings: int = field(default=512, metadata={"help": "Longest sequence, prompt + completion."})


@dataclass
class ModelConfig:
    """Which policy to train."""

    name_or_path: str = field(
        default="tiny",
        metadata={"help": "A local Hugging Face model directory or hub id, or 'tiny' for a small Qwen2 built in code."},
    )
    tiny: TinyModelSpec = field(default_factory=TinyModelSpec, metadata={"help": "Shape when name_or_path is 'tiny'."})
    chat_template: str | None = field(
        default=None,
        metadata={"help": "Override the tokenizer's chat template: a jinja string or a TRL bundled template name."},
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(
        default="auto", metadata={"help": "Weights dtype; 'auto' = bfloat16 on a GPU that supports it, else float32."}
    )
    fp32_lm_head: bool | None = field(
        default=None,
        metadata={"help": "Compute the LM head (logits, log-probs) in float32 when the weights are bf16/fp16 (TRL's "
                          "cast_lm_head_to_fp32; ScaleRL, arXiv:2510.13786, after MiniMax-M1): trainer and sampler "
                          "probabilities then agree. None = the preset's recipe: on for scalerl, else off."},
    )


@dataclass
class EnvConfig:
    """One environment of a mixture: its id, sampling weight and ``gymnasium.make`` kwargs.

    The one environment-entry type of the trainer: the config's ``environments`` lists hold it and
    the rollout code reads it as is (``TaskKey.env`` indexes such a list).
    """

    id: str = field(default="", metadata={"help": "A registered environment id, e.g. rlvr/Arithmetic-v0."})
    weight: float = field(default=1.0, metadata={"help": "Share of training prompts drawn from it (normalised)."})
    kwargs: dict = field(default_factory=dict, metadata={"help": "Keyword arguments for gymnasium.make."})


@dataclass
class AlgorithmSection:
    """The policy-gradient algorithm: a preset of rlvr.trainer.algorithms plus field overrides."""

    preset: str = field(default="grpo", metadata={"help": "grpo, dr_grpo, dapo, rloo, ppo, cispo, gspo, ... "})
    overrides: dict = field(default_factory=dict, metadata={"help": "AlgorithmConfig fields to change."})


@dataclass
class GenerationConfig:
    """How rollouts are sampled."""

    num_generations: int = field(default=8, metadata={"help": "G: completions (episodes) per prompt."})
    prompts_per_step: int = field(default=8, metadata={"help": "P: prompts per optimiser step (all processes)."})
    max_new_tokens: int = field(default=128, metadata={"help": "Longest assistant turn, in tokens."})
    max_completion_length: int = field(
        default=512, metadata={"help": "Token budget of a whole episode after the prompt (model + environment turns)."}
    )
    max_turns: int = field(default=8, metadata={"help": "Most assistant turns per episode (the env may end sooner)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature for training rollouts."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling; 1.0 keeps exact log-probs."})
    top_k: int = field(default=0, metadata={"help": "Top-k sampling; 0 = off."})
    backend: Literal["auto", "engine", "hf", "vllm", "policy"] = field(
        default="auto",
        metadata={"help": "'engine' = rlvr RolloutEngine (static KV cache), 'hf' = model.generate, 'auto' = engine "
                          "if present, 'vllm' = a `vllm serve` server at vllm_url, 'policy' = the evaluation policy "
                          "in generation.policy (its text re-tokenised; behaviour log-probs unknown)."},
    )
    policy: str = field(
        default="",
        metadata={"help": "With backend 'policy': an evaluation policy spec that plays the training episodes, e.g. "
                          "python:my_module:answer or openai:http://localhost:8000/v1#MODEL. The loss uses the "
                          "trainer's own log-probs; settings that read the sampler's are refused."},
    )
    vllm_url: str = field(
        default="", metadata={"help": "With backend 'vllm': the server's address, e.g. http://localhost:8000."}
    )
    vllm_sync_weights: bool = field(
        default=True,
        metadata={"help": "With backend 'vllm': push the policy's weights to the server after each optimiser step "
                          "(TRL's NCCL transfer; needs the vllm package). Off = sample from the served weights."},
    )
    env_workers: int = field(default=16, metadata={"help": "Environment steps run concurrently (thread pool)."})
    max_off_policy_steps: int | None = field(
        default=None,
        metadata={"help": "k: generate asynchronously in a generator process, training on groups whose oldest token "
                          "is at most k optimiser steps old (staler ones are regenerated). 0 = synchronous. None = the "
                          "preset's recipe: 8 for scalerl (its paper's PipelineRL bound), else 0."},
    )
    retire_pass_rate: float | None = field(
        default=None,
        metadata={"help": "No-positive-resampling (ScaleRL, arXiv:2510.13786): a task whose group pass rate reaches "
                          "this leaves the training pool for the rest of the run (recorded in retired.jsonl, so "
                          "--resume keeps it out); later keys posing it are replaced by spare tasks. 0 = never. "
                          "None = the preset's recipe: 0.9 for scalerl, else never."},
    )
    generator_threads: int = field(
        default=0, metadata={"help": "With max_off_policy_steps >= 1: torch threads of the generator process "
                                     "(the trainer keeps the other cores); 0 = half the cores."},
    )


@dataclass
class OptimConfig:
    """Optimisation."""

    max_steps: int = field(default=100, metadata={"help": "Optimiser steps of RL."})
    learning_rate: float = field(default=1e-6, metadata={"help": "Peak learning rate (AdamW)."})
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = field(
        default="constant_with_warmup", metadata={"help": "Learning-rate schedule."}
    )
    warmup_steps: int = field(default=0, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW beta2."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimiser step."})
    num_iterations: int = field(default=1, metadata={"help": "mu: optimiser passes over each rollout batch."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Trade compute for memory."})


@dataclass
class SFTConfig:
    """Optional supervised warm-up on the environments' reference solutions (DeepSeek-R1's 'SFT then RL')."""

    steps: int = field(default=0, metadata={"help": "SFT optimiser steps before RL (at most, with stop_at_success); 0 = none."})
    batch_size: int = field(default=32, metadata={"help": "Examples per SFT step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "SFT learning rate (constant after warm-up)."})
    warmup_steps: int = field(default=20, metadata={"help": "SFT linear warm-up steps."})
    target: Literal["action", "answer"] = field(
        default="action",
        metadata={"help": "'action' = the environment's full reference response; 'answer' = the bare answer "
                  "(single-turn environments whose verifier accepts it, e.g. with system_prompt: '')."},
    )
    stop_at_success: float | None = field(
        default=None,
        metadata={"help": "Stop SFT once sampled success (at generation.temperature) on a probe of training tasks "
                  "reaches this: a warm-up that is partial by design, whatever the seed. None = run all steps."},
    )
    check_every: int = field(default=25, metadata={"help": "SFT steps between probes (with stop_at_success)."})
    min_steps: int = field(default=0, metadata={"help": "No probe before this many SFT steps."})
    probe_tasks: int = field(default=128, metadata={"help": "Training tasks in the probe (2 samples each)."})


@dataclass
class EvalConfig:
    """Held-out evaluation: tasks from seeds disjoint from training, pass@1 from the success flag."""

    num_tasks: int = field(default=100, metadata={"help": "Held-out tasks (spread over the mixture)."})
    samples_per_task: int = field(default=4, metadata={"help": "n samples per task for pass@1 (and pass@k, k<=n)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of evaluation; 0 = greedy."})
    every_steps: int = field(default=0, metadata={"help": "Evaluate every N steps during RL; 0 = only before/after."})
    environments: list[EnvConfig] = field(
        default_factory=list,
        metadata={"help": "Held-out environments (e.g. a test split); empty = the training mixture with unseen seeds."},
    )
    greedy: bool = field(default=False, metadata={"help": "Also report greedy pass@1 (greedy_pass@1) when sampling."})
    before: bool = field(default=True, metadata={"help": "Evaluate the starting policy (eval_before)."})
    after: bool = field(default=True, metadata={"help": "Evaluate the final policy (eval_after)."})


@dataclass
class LoggingConfig:
    """What the run writes while it goes."""

    logging_steps: int = field(default=1, metadata={"help": "Write metrics.jsonl every N steps."})
    sample_rollouts: int = field(default=2, metadata={"help": "Rollouts per logged step saved to samples.jsonl."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar with the live reward."})
    report_to: str = field(default="none", metadata={"help": "Extra trackers for transformers (e.g. 'wandb')."})


@dataclass
class CheckpointConfig:
    """Checkpoints for --resume."""

    save_steps: int = field(default=50, metadata={"help": "Save a checkpoint every N steps (0 = only at the end)."})
    save_total_limit: int = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    save_final_model: bool = field(default=True, metadata={"help": "Save the final policy to OUTPUT_DIR/final."})


@dataclass
class TrainConfig:
    """A whole training run."""

    output_dir: str = field(default="runs/run", metadata={"help": "Run directory (created)."})
    seed: int = field(default=0, metadata={"help": "Seed of model init, data order and sampling."})
    device: Device = field(default="auto", metadata={"help": "auto = cuda when available, else cpu."})
    model: ModelConfig = field(default_factory=ModelConfig)
    environments: list[EnvConfig] = field(default_factory=list, metadata={"help": "The training mixture."})
    algorithm: AlgorithmSection = field(default_factory=AlgorithmSection)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready)."""
        return dataclasses.asdict(self)


def parse_env_flag(spec: str) -> list[dict[str, Any]]:
    """``--env`` syntax: ``ID[:WEIGHT][,ID[:WEIGHT]...]`` -> the ``environments`` list."""
    envs = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        env_id, _, weight = part.partition(":") if part.count(":") == 1 and "/" in part.split(":")[0] else (part, "", "")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError("--env", f"weight {weight!r} of {env_id!r} is not a number", "write ID:WEIGHT, e.g. rlvr/Math-v0:0.5") from None
        envs.append({"id": env_id, "weight": w})
    if not envs:
        raise ConfigError("--env", "no environment id given", "write e.g. --env rlvr/Arithmetic-v0")
    return envs


def validate(cfg: TrainConfig) -> TrainConfig:
    """Cross-field checks that a single field's type cannot express."""
    g, o, e, c = cfg.generation, cfg.optim, cfg.eval, cfg.checkpoint
    positive = {
        "generation.num_generations": g.num_generations, "generation.prompts_per_step": g.prompts_per_step,
        "generation.max_new_tokens": g.max_new_tokens, "generation.max_completion_length": g.max_completion_length,
        "generation.max_turns": g.max_turns, "generation.env_workers": g.env_workers,
        "optim.max_steps": o.max_steps, "optim.gradient_accumulation_steps": o.gradient_accumulation_steps,
        "optim.num_iterations": o.num_iterations, "eval.samples_per_task": e.samples_per_task,
        "logging.logging_steps": cfg.logging.logging_steps, "sft.batch_size": cfg.sft.batch_size,
    }
    for name, value in positive.items():
        positive_int(name, value)
    for name, value in {"eval.num_tasks": e.num_tasks, "eval.every_steps": e.every_steps, "sft.steps": cfg.sft.steps,
                        "checkpoint.save_steps": c.save_steps, "optim.warmup_steps": o.warmup_steps,
                        "logging.sample_rollouts": cfg.logging.sample_rollouts}.items():
        if value < 0:
            raise ConfigError(name, f"must be >= 0, got {value}")
    sft = cfg.sft
    if sft.stop_at_success is not None and not 0.0 < sft.stop_at_success <= 1.0:
        raise ConfigError("sft.stop_at_success", f"must be in (0, 1], got {sft.stop_at_success}")
    for name, value in {"sft.check_every": sft.check_every, "sft.probe_tasks": sft.probe_tasks}.items():
        positive_int(name, value)
    if g.num_generations < 2:
        raise ConfigError("generation.num_generations", "must be >= 2 (group baselines need at least two completions)")
    if not 0.0 < g.top_p <= 1.0:
        raise ConfigError("generation.top_p", f"must be in (0, 1], got {g.top_p}")
    if g.temperature <= 0:
        raise ConfigError("generation.temperature", f"must be > 0 for sampling, got {g.temperature}")
    if e.temperature < 0:
        raise ConfigError("eval.temperature", f"must be >= 0 (0 = greedy), got {e.temperature}")
    if o.learning_rate <= 0:
        raise ConfigError("optim.learning_rate", f"must be > 0, got {o.learning_rate}")
    if g.max_new_tokens > g.max_completion_length:
        raise ConfigError("generation.max_new_tokens", f"{g.max_new_tokens} exceeds generation.max_completion_length "
                          f"{g.max_completion_length}", "raise max_completion_length or lower max_new_tokens")
    if (g.prompts_per_step * g.num_generations) % o.gradient_accumulation_steps:
        raise ConfigError("optim.gradient_accumulation_steps", f"{o.gradient_accumulation_steps} does not divide the "
                          f"{g.prompts_per_step * g.num_generations} completions of a step (prompts_per_step x num_generations)")
    if c.save_steps and c.save_steps % o.num_iterations:
        # TRL regenerates rollouts every num_iterations steps; a checkpoint in between would resume
        # with an empty rollout buffer.
        raise ConfigError("checkpoint.save_steps", f"{c.save_steps} is not a multiple of optim.num_iterations "
                          f"{o.num_iterations}", f"use a multiple of {o.num_iterations}")
    if g.max_off_policy_steps is not None and g.max_off_policy_steps < 0:
        raise ConfigError("generation.max_off_policy_steps", f"must be >= 0, got {g.max_off_policy_steps}",
                          "use 0 for synchronous training")
    if g.retire_pass_rate is not None and not 0.0 <= g.retire_pass_rate <= 1.0:
        raise ConfigError("generation.retire_pass_rate", f"must be in [0, 1], got {g.retire_pass_rate}",
                          "use e.g. 0.9 (ScaleRL's value), or 0 to never retire a task")
    if g.generator_threads < 0:
        raise ConfigError("generation.generator_threads", f"must be >= 0, got {g.generator_threads}", "use 0 for half the cores")
    if g.backend == "vllm" and not g.vllm_url:
        raise ConfigError("generation.vllm_url", "generation.backend is vllm but no server address is given",
                          "set generation.vllm_url, e.g. http://localhost:8000")
    if g.policy and g.backend != "policy":
        raise ConfigError("generation.policy", f"is set, but generation.backend is {g.backend!r}",
                          "set generation.backend: policy to roll out with it, or remove generation.policy")
    if g.backend == "policy" and not g.policy:
        raise ConfigError("generation.policy", "generation.backend is policy but no policy is given",
                          "set generation.policy, e.g. python:my_module:answer or openai:http://localhost:8000/v1#MODEL")
    if not cfg.environments:
        raise ConfigError("environments", "no environment given", "list at least one, e.g. [{id: rlvr/Arithmetic-v0}]")
    for i, env in enumerate(cfg.environments):
        if not env.id:
            raise ConfigError(f"environments[{i}].id", "missing", "give a registered id such as rlvr/Arithmetic-v0")
        if env.weight <= 0:
            raise ConfigError(f"environments[{i}].weight", f"must be > 0, got {env.weight}")
    if cfg.model.name_or_path == "tiny":
        t = cfg.model.tiny
        if t.hidden_size % t.num_attention_heads:
            raise ConfigError("model.tiny.hidden_size", f"{t.hidden_size} is not divisible by num_attention_heads {t.num_attention_heads}")
        if t.num_attention_heads % t.num_key_value_heads:
            raise ConfigError("model.tiny.num_key_value_heads", f"{t.num_key_value_heads} does not divide num_attention_heads {t.num_attention_heads}")
    return cfg


def check_algorithm(cfg: TrainConfig) -> Any:
    """Resolve the algorithm section to an ``AlgorithmConfig`` (unknown preset/override -> ConfigError)."""
    from rlvr.trainer.algorithms import PRESETS, preset

    name = cfg.algorithm.preset
    if name not in PRESETS:
        raise unknown_name_error("algorithm.preset", "preset", name, PRESETS.names())
    try:
        return preset(name, **cfg.algorithm.overrides)
    except ConfigError as e:
        if e.field.startswith("algorithm."):
            raise
        raise ConfigError(f"algorithm.overrides.{e.field}", e.problem, e.fix) from None
    except TypeError as e:  # an unknown keyword
        import dataclasses as dc

        from rlvr.trainer.algorithms import AlgorithmConfig

        names = [f.name for f in dc.fields(AlgorithmConfig)]
        bad = [k for k in cfg.algorithm.overrides if k not in names]
        key = bad[0] if bad else "?"
        near = did_you_mean(key, names)
        hint = f"did you mean {near!r}? " if near else ""
        raise ConfigError(f"algorithm.overrides.{key}", f"unknown field ({e})", f"{hint}allowed: {', '.join(names)}") from None


def check_environments(cfg: TrainConfig) -> None:
    """Every environment id is registered (did-you-mean on a typo), before any model is loaded."""
    import gymnasium

    import rlvr.envs  # noqa: F401  (registers built-ins and plugins)

    known = list(gymnasium.registry.keys())
    for i, env in enumerate(cfg.environments):
        if env.id not in gymnasium.registry:
            near = close_names(env.id, known)
            hint = f"did you mean {' or '.join(map(repr, near))}? " if near else ""
            rlvr_ids = sorted(k for k in known if "/" in k and not k.startswith(("ale_py", "phys2d", "tabular")))
            raise ConfigError(f"environments[{i}].id", f"{env.id!r} is not a registered environment",
                              f"{hint}registered: {', '.join(rlvr_ids) or '(none)'}; `rlvr envs list` shows them all")


def config_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Build and validate a ``TrainConfig`` from plain data plus dotted-key overrides."""
    data = dict(data or {})
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, dotted, value)
    return validate(build(TrainConfig, data))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file; InputError naming the file otherwise."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{p}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: the top level must be a mapping of sections (model, environments, ...)")
    return data


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML train config (or start from defaults when ``path`` is None) and apply overrides."""
    return config_from_dict(read_config_file(path) if path is not None else {}, overrides)


def dump_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (the run directory's config.yaml)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


__all__ = [
    "TrainConfig", "ModelConfig", "TinyModelSpec", "EnvConfig", "AlgorithmSection", "GenerationConfig", "OptimConfig",
    "SFTConfig", "EvalConfig", "LoggingConfig", "CheckpointConfig", "build", "config_from_dict", "load_config",
    "dump_config", "validate", "check_algorithm", "check_environments", "parse_env_flag",
]
