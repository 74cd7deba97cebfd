"""One training run, start to finish: ``run_training(cfg)`` is what ``rlvr train`` and ``rlvr demo`` call.

Phases: check the config (algorithm, environment ids) -> load/build the policy -> optional SFT
warm-up on reference solutions -> held-out evaluation (``eval_before``) -> RL with
``RLVRTrainer`` and environment rollouts (checkpoints, metrics, samples, periodic evaluation,
progress bar) -> held-out evaluation (``eval_after``) -> final model, plot, ``summary.json``.

``resume=True`` continues a killed run from its newest complete checkpoint: the policy, optimiser,
scheduler, RNG and step counter come from the checkpoint (transformers' ``resume_from_checkpoint``),
the task keys are the same list drawn from the config's seed and TRL's sampler skips the batches
already trained, and every per-step file is cut back to the checkpoint's step, so no step is lost
or logged twice. With a different ``optim.max_steps`` (``--resume --max-steps N``) it extends the
run: the data order, the learning-rate schedule and what is recorded are explained in
``rlvr.trainer.run.extend``; a finished run asked for no more steps returns its summary and
touches nothing. Under ``accelerate launch`` every rank runs this function; files are written by
the main process only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from rlvr.errors import ConfigError
from rlvr.trainer.run.config import TrainConfig, check_algorithm, check_environments, dump_config
from rlvr.trainer.run.rundir import RunDir

logger = logging.getLogger(__name__)

Say = Callable[[str], None]


def _key_stream(entries: list[Any], seed: int, base: int) -> Iterator[Any]:
    """Endless task keys (for SFT) from their own seed range."""
    from rlvr.trainer.rollout.tasks import draw_keys

    chunk = 0
    while True:
        yield from draw_keys(entries, 4096, seed + chunk, base)
        chunk += 1


class _Fingerprints:
    """Prompt fingerprints of task keys (one environment reset each), with env instances reused."""

    def __init__(self, entries: list[Any]) -> None:
        self.entries = entries
        self.envs: dict[int, Any] = {}

    def __call__(self, key: Any) -> str:
        from rlvr.trainer.rollout.runner import make_env
        from rlvr.trainer.rollout.tasks import task_fingerprint

        if key.env not in self.envs:
            self.envs[key.env] = make_env(self.entries[key.env])
        obs, info = self.envs[key.env].reset(seed=key.seed)
        return task_fingerprint(obs, info)

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def vllm_options(cfg: TrainConfig) -> Any:
    """The vLLM server options of ``generation`` (None unless ``generation.backend`` is vllm)."""
    from rlvr.trainer.rollout.backends import VLLMOptions

    g = cfg.generation
    return VLLMOptions(g.vllm_url, g.vllm_sync_weights) if g.backend == "vllm" else None


def model_backend(cfg: TrainConfig) -> str:
    """The backend over the trainer's own model (evaluation, probes): ``auto`` when an evaluation
    policy plays the training episodes (``generation.backend: policy``)."""
    backend = cfg.generation.backend
    return "auto" if backend == "policy" else backend


def _world(cfg: TrainConfig, device: str) -> Any:
    from accelerate import PartialState

    return PartialState(cpu=device == "cpu")


def _rl_args(cfg: TrainConfig, rundir: RunDir, device: str, world: int, dtype: Any) -> Any:
    """RLVRConfig (TRL GRPOConfig + algorithm) from the train config."""
    import torch

    from rlvr.trainer.algorithms.presets import fp32_lm_head
    from rlvr.trainer.trl.config import RLVRConfig

    g, o = cfg.generation, cfg.optim
    completions = g.prompts_per_step * g.num_generations
    per_rank_step = completions // world
    if completions % world or per_rank_step % o.gradient_accumulation_steps:
        raise ConfigError("generation.prompts_per_step", f"{g.prompts_per_step} prompts x {g.num_generations} "
                          f"generations = {completions} completions do not split over {world} processes x "
                          f"{o.gradient_accumulation_steps} accumulation steps",
                          "make prompts_per_step x num_generations a multiple of processes x gradient_accumulation_steps")
    return RLVRConfig(
        output_dir=str(rundir.checkpoints),
        algorithm=cfg.algorithm.preset,
        algorithm_overrides=dict(cfg.algorithm.overrides) or None,
        per_device_train_batch_size=per_rank_step // o.gradient_accumulation_steps,
        gradient_accumulation_steps=o.gradient_accumulation_steps,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature, top_p=g.top_p, top_k=g.top_k,
        max_steps=o.max_steps, learning_rate=o.learning_rate, lr_scheduler_type=o.lr_scheduler,
        warmup_steps=o.warmup_steps, weight_decay=o.weight_decay, adam_beta2=o.adam_beta2,
        max_grad_norm=o.max_grad_norm, num_iterations=o.num_iterations,
        gradient_checkpointing=o.gradient_checkpointing,
        # FP32 LM head: only a half-precision model has anything to cast.
        cast_lm_head_to_fp32=fp32_lm_head(cfg.model.fp32_lm_head, cfg.algorithm.preset) and dtype != torch.float32,
        use_cpu=device == "cpu", bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        logging_steps=cfg.logging.logging_steps, report_to=cfg.logging.report_to,
        save_strategy="steps" if cfg.checkpoint.save_steps else "no",
        save_steps=cfg.checkpoint.save_steps or 500, save_total_limit=cfg.checkpoint.save_total_limit,
        # The task keys are a random, prefix-stable draw already; TRL's shuffle over the whole list
        # would reorder the steps already trained when --max-steps extends the run (see run/extend.py).
        shuffle_dataset=False,
        seed=cfg.seed, disable_tqdm=True, log_completions=False, remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def component_weights(entries: list[Any]) -> dict[str, float]:
    """Every reward component of the training environments with its weight, in first-seen order.

    For algorithms that normalise each component on its own (GDPO). An environment without a
    rubric contributes its return as one component ``reward``; a name two environments weight
    differently is refused, since one reward column cannot carry two weights.
    """
    from rlvr.envs.evaluation import make_env

    weights: dict[str, float] = {}
    for i, entry in enumerate(entries):
        env = make_env(entry.id, entry.kwargs, field=f"environments[{i}].id", kwargs_field=f"environments[{i}].kwargs")
        try:
            rubric = getattr(env.unwrapped, "rubric", None)
            mine = rubric.weights if rubric is not None else {"reward": 1.0}
        finally:
            env.close()
        for name, weight in mine.items():
            if weights.setdefault(name, float(weight)) != float(weight):
                raise ConfigError(f"environments[{i}].kwargs.reward_weights", f"component {name!r} has weight "
                                  f"{weight} here and {weights[name]} in another environment",
                                  "give it the same weight everywhere (the algorithm normalises each component on its own)")
    return weights


def check_config(cfg: TrainConfig) -> Any:
    """Everything that can be checked without loading a model: algorithm, environment ids, vLLM server."""
    algo = check_algorithm(cfg)
    check_environments(cfg)
    from rlvr.trainer.asynchronous.checks import check_async, resolve_off_policy_steps

    g = cfg.generation
    if g.backend == "policy":
        from rlvr.trainer.rollout.policy_runner import check_policy_rollouts

        check_policy_rollouts(g.policy, algo, g.max_off_policy_steps)
    else:
        check_async(resolve_off_policy_steps(g.max_off_policy_steps, cfg.algorithm.preset, g.backend),
                    cfg.algorithm.preset, algo, g.backend, vllm_sync_weights=g.vllm_sync_weights)
    if cfg.generation.backend == "vllm":
        from rlvr.trainer.rollout.vllm_backend import preflight

        preflight(cfg.generation.vllm_url, cfg.generation.vllm_sync_weights)
    return algo


def run_training(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    say: Say | None = None,
    console: Any = None,
    title: str = "",
) -> dict[str, Any]:
    """Run (or resume) a whole training run; returns the summary written to summary.json."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    say = say or (lambda msg: logger.info("%s", msg))
    t_start = time.perf_counter()
    check_config(cfg)

    from rlvr.trainer.rollout.backends import make_backend
    from rlvr.trainer.rollout.chat import ChatFormatter
    from rlvr.trainer.trl.rollout_func import EnvRollouts, build_train_dataset, make_env_reward, trainer_backend
    from rlvr.trainer.rollout.runner import EnvRunner
    from rlvr.trainer.rollout.tasks import heldout_keys, train_keys
    from rlvr.trainer.run.callbacks import EvalCallback, MetricsCallback, ProgressCallback
    from rlvr.trainer.run.evaluate import eval_seed, evaluate_heldout
    from rlvr.trainer.run.policy import load_policy, resolve_device, resolve_dtype
    from rlvr.trainer.run.sft import ReferenceExamples, sft_warmup
    from rlvr.trainer.trl.trainer import RLVRTrainer

    device = resolve_device(cfg.device)
    state = _world(cfg, device)
    main, rank, world = state.is_main_process, state.process_index, state.num_processes
    if device != "cpu":
        device = str(state.device)
    rundir = RunDir(cfg.output_dir)
    from rlvr.trainer.run.extend import align_learning_rate, plan_resume, record_segment

    plan = plan_resume(rundir, cfg.optim.max_steps) if resume and rundir.config.exists() else None
    if plan is not None and plan.nothing_to_do:
        say(plan.describe(str(cfg.output_dir)))
        return rundir.read_json(rundir.summary) or {}
    if main:
        rundir.prepare(resume)
    state.wait_for_everyone()
    checkpoint = rundir.last_checkpoint() if resume else None
    start_step = RunDir.checkpoint_step(checkpoint)
    previous = (rundir.read_json(rundir.state) or {}) if resume else {}
    if main:
        if resume:
            rundir.truncate_after(start_step)
        dump_config(cfg, rundir.config)
    segments = record_segment(rundir, previous, start_step, cfg.optim.max_steps, write=main)
    if plan is not None and plan.extended:
        say(f"extending the run from max_steps {plan.saved_max_steps} to {cfg.optim.max_steps}"
            + ("" if checkpoint else " (it saved no checkpoint: training again from step 0)"))
    phases: dict[str, float] = dict(previous.get("phases", {}))

    g = cfg.generation
    train_entries = list(cfg.environments)
    eval_entries = list(cfg.eval.environments or cfg.environments)
    heldout = heldout_keys(eval_entries, cfg.eval.num_tasks, cfg.seed) if cfg.eval.num_tasks else []
    # Held-out tasks never appear in training (matters when the task space is small).
    fingerprints = _Fingerprints(train_entries)
    exclude: set[str] = set()
    if heldout and not cfg.eval.environments:
        eval_fp = _Fingerprints(eval_entries)
        exclude = {eval_fp(k) for k in heldout}
        eval_fp.close()
    num_prompts = g.prompts_per_step * cfg.optim.max_steps
    keys = train_keys(train_entries, num_prompts, cfg.seed, exclude, fingerprints)

    # ------------------------------------------------------------------ policy (+ SFT warm-up)
    start_dir = rundir.path / "start_policy"
    have_start = resume and (start_dir / "config.json").exists()
    model, tokenizer = load_policy(cfg.model, cfg.seed, device, start_dir if have_start else None)
    dtype = resolve_dtype(cfg.model, device)
    formatter = ChatFormatter(tokenizer)
    if cfg.sft.steps and not have_start:
        s = cfg.sft
        say(f"SFT warm-up: up to {s.steps} steps x {s.batch_size} reference solutions"
            + (f", until {s.stop_at_success:.0%} of probe tasks are solved" if s.stop_at_success else ""))
        t0 = time.perf_counter()
        examples = ReferenceExamples(train_entries, formatter, s.target, exclude=exclude)
        stream = _key_stream(train_entries, cfg.seed, 1 << 38)
        progress = _PhaseBar("SFT", s.steps, console) if main and cfg.logging.progress else None
        probe = _SFTProbe(cfg, model, tokenizer, formatter, train_entries, exclude, rank, world) if s.stop_at_success else None
        losses = sft_warmup(model, examples, stream, steps=s.steps, batch_size=s.batch_size,
                            learning_rate=s.learning_rate, warmup_steps=s.warmup_steps, device=device, seed=cfg.seed,
                            on_step=progress.update if progress else None,
                            should_stop=probe.should_stop if probe else None)
        if progress:
            progress.close()
        examples.close()
        phases["sft_s"] = round(time.perf_counter() - t0, 2)
        row = {"step": 0, "kind": "sft", "sft/loss_first": losses[0], "sft/loss_last": losses[-1], "sft/steps": len(losses)}
        if probe is not None:
            row["sft/probe_success"] = probe.last
            probe.close()
            say(f"SFT stopped after {len(losses)} steps (probe success {probe.last:.2f})")
        if main:
            # The SFT'd policy is the start of RL (and the KL reference): keep it so a resumed run
            # rebuilds the same reference without redoing SFT.
            model.save_pretrained(start_dir)
            tokenizer.save_pretrained(start_dir)
            RunDir.append_jsonl(rundir.metrics, row)
    fingerprints.close()
    state.wait_for_everyone()

    # ------------------------------------------------------------------ held-out evaluation (before)
    def make_eval(runner: EnvRunner, step: Callable[[], int] = lambda: 0) -> Callable[[], dict[str, Any]]:
        def run_eval() -> dict[str, Any]:
            # seeded by (run seed, step): every algorithm of a seed starts from the same eval_before
            result = evaluate_heldout(runner, heldout, samples_per_task=cfg.eval.samples_per_task,
                                      temperature=cfg.eval.temperature, max_new_tokens=g.max_new_tokens,
                                      rank=rank, world=world, seed=eval_seed(cfg.seed, step(), rank))
            if cfg.eval.greedy and cfg.eval.temperature > 0:
                greedy = evaluate_heldout(runner, heldout, samples_per_task=1, temperature=0.0,
                                          max_new_tokens=g.max_new_tokens, rank=rank, world=world)
                result["greedy_pass@1"] = greedy["pass@1"]
            return result
        return run_eval

    def eval_runner(backend: Any) -> EnvRunner:
        return EnvRunner(eval_entries, formatter, backend, max_new_tokens=g.max_new_tokens,
                         max_completion_length=g.max_completion_length, max_turns=g.max_turns,
                         env_workers=g.env_workers)

    eval_before = rundir.read_json(rundir.eval_before) if resume else None
    if heldout and cfg.eval.before and eval_before is None:
        say(f"evaluating the starting policy on {len(heldout)} held-out tasks")
        t0 = time.perf_counter()
        backend = make_backend(model_backend(cfg), model, tokenizer, max_batch=min(256, len(heldout) * cfg.eval.samples_per_task),
                               max_seq_len=512 + g.max_completion_length, vllm=vllm_options(cfg))
        runner = eval_runner(backend)
        eval_before = make_eval(runner)()
        runner.close()
        getattr(backend, "release", lambda: None)()
        phases["eval_before_s"] = round(time.perf_counter() - t0, 2)
        if main:
            rundir.write_json(rundir.eval_before, eval_before)
            RunDir.append_jsonl(rundir.metrics, {"step": 0, "kind": "eval",
                                                 **{f"eval/{k}": v for k, v in eval_before.items() if k != "per_env"}})
        say(f"held-out pass@1 before RL: {eval_before['pass@1']:.3f}")

    # ------------------------------------------------------------------ RL
    rounds: dict[int, int] = {}
    pending: dict[int, list[dict[str, Any]]] = {}  # sample rollouts waiting for their advantages

    def sink(step: int, episodes: list[Any], all_keys: list[str]) -> None:
        rounds[step] = rounds.get(step, 0) + 1  # dynamic sampling (DAPO) may generate several rounds a step
        RunDir.append_jsonl(rundir.data_order, {"step": step, "round": rounds[step], "keys": all_keys})
        # one batch serves `span` optimiser steps (optim.num_iterations > 1): log it if any of them is a logging step
        span = rollouts.steps_per_call(trainer)
        due = any(s % cfg.logging.logging_steps == 0 for s in range(step, step + span))
        if cfg.logging.sample_rollouts and due and rounds[step] == 1:
            pending[step] = [{"step": step, **ep.record(), "advantage": None, "env_mask_runs": _runs(ep.env_mask)}
                             for ep in episodes[: cfg.logging.sample_rollouts]]

    def write_samples(step: int, advantages: list[float | None] | None) -> None:
        """Write the step's sample rollouts (and any older ones still waiting) once advantages exist."""
        for s in sorted(k for k in pending if k <= step):
            for i, rec in enumerate(pending.pop(s)):
                if s == step and advantages is not None and i < len(advantages):
                    rec["advantage"] = advantages[i]  # sample i is gathered row i (rank 0 plays rows 0..n-1)
                RunDir.append_jsonl(rundir.samples, rec)

    from rlvr.trainer.asynchronous.checks import check_async, resolve_off_policy_steps

    k = 0 if g.backend == "policy" else resolve_off_policy_steps(g.max_off_policy_steps, cfg.algorithm.preset,
                                                                   g.backend, world)
    check_async(k, cfg.algorithm.preset, check_algorithm(cfg), g.backend, world, vllm_sync_weights=g.vllm_sync_weights)
    rollout_kwargs = dict(max_new_tokens=g.max_new_tokens, max_completion_length=g.max_completion_length,
                          max_turns=g.max_turns, env_workers=g.env_workers, backend=g.backend, vllm=vllm_options(cfg),
                          sink=sink, policy=g.policy)
    if k:
        from rlvr.trainer.trl.async_rollouts import AsyncEnvRollouts

        rollouts = AsyncEnvRollouts(train_entries, max_off_policy_steps=k, generator_threads=g.generator_threads or None,
                                    journal=rundir.path / "async.jsonl" if main else None, **rollout_kwargs)
    else:
        rollouts = EnvRollouts(train_entries, **rollout_kwargs)
    from rlvr.trainer.rollout.retirement import Retirement, resolve_retire_pass_rate

    retire_at = resolve_retire_pass_rate(g.retire_pass_rate, cfg.algorithm.preset)
    retire_fp = _Fingerprints(train_entries) if retire_at is not None else None
    if retire_fp is not None:  # no-positive-resampling: solved tasks leave the pool (retired.jsonl)
        rollouts.retirement = Retirement(retire_at, retire_fp, path=rundir.retired, write=main, exclude=exclude,
                                         seed=cfg.seed)
        rollouts.retirement.load(start_step if resume else -1)
    args = _rl_args(cfg, rundir, device, world, dtype)
    metrics_cb = MetricsCallback(rundir, title or f"{cfg.algorithm.preset} on {', '.join(e.id for e in cfg.environments)}")
    callbacks: list[Any] = [metrics_cb]
    progress_cb = ProgressCallback(cfg.optim.max_steps, console) if main and cfg.logging.progress else None
    if progress_cb:
        callbacks.append(progress_cb)
    if checkpoint:
        callbacks.append(align_learning_rate())  # the resumed step's learning rate from the (rebuilt) schedule
    if k:
        from rlvr.trainer.trl.async_rollouts import PushWeights

        callbacks.append(PushWeights(rollouts))  # new weights reach the generator after every optimiser step
    if check_algorithm(cfg).uses_reward_components:  # GDPO: one reward column per named component
        from rlvr.trainer.trl.rollout_func import make_component_rewards

        comps = component_weights(train_entries)
        reward_funcs = make_component_rewards(rollouts, list(comps))
        args.reward_weights = list(comps.values())
    else:
        reward_funcs = [make_env_reward(rollouts)]
    trainer = RLVRTrainer(model, reward_funcs=reward_funcs, args=args,
                          train_dataset=build_train_dataset(keys), processing_class=tokenizer,
                          rollout_func=rollouts, callbacks=callbacks)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # metrics go to metrics.jsonl and the progress bar, not stdout
    trainer.advantage_hook = write_samples
    if heldout and cfg.eval.every_steps:
        periodic = eval_runner(trainer_backend(trainer, model_backend(cfg), max_batch=256, max_seq_len=512 + g.max_completion_length,
                                             vllm=vllm_options(cfg)))
        trainer.add_callback(EvalCallback(cfg.eval.every_steps, make_eval(periodic, lambda: trainer.state.global_step), rundir,
                                          progress_cb.eval_result if progress_cb else None))
    say(f"RL: {cfg.algorithm.preset}, {cfg.optim.max_steps} steps x {g.prompts_per_step} prompts x "
        f"{g.num_generations} rollouts" + (f", resuming from step {start_step}" if checkpoint else ""))
    t0 = time.perf_counter()
    if checkpoint is None and resume and start_step == 0:
        logger.info("no checkpoint to resume from: training from the start")
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        write_samples(1 << 62, None)  # whatever never reached the loss is still shown, without advantage
    phases["rl_s"] = round(phases.get("rl_s", 0.0) + time.perf_counter() - t0, 2)
    steps = int(trainer.state.global_step)

    # ------------------------------------------------------------------ held-out evaluation (after)
    eval_after = None
    if heldout and cfg.eval.after:
        say("evaluating the trained policy")
        t0 = time.perf_counter()
        runner = eval_runner(rollouts.runner.backend if rollouts.runner is not None and g.backend != "policy" else
                             trainer_backend(trainer, model_backend(cfg), max_batch=256, max_seq_len=512 + g.max_completion_length,
                                             vllm=vllm_options(cfg)))
        eval_after = make_eval(runner, lambda: steps)()
        runner.close()
        phases["eval_after_s"] = round(time.perf_counter() - t0, 2)
        if main:
            rundir.write_json(rundir.eval_after, eval_after)
            RunDir.append_jsonl(rundir.metrics, {"step": steps, "kind": "eval",
                                                 **{f"eval/{k}": v for k, v in eval_after.items() if k != "per_env"}})
    rollouts.close()
    if retire_fp is not None:
        retire_fp.close()
    if cfg.checkpoint.save_final_model:
        trainer.save_model(str(rundir.final))
        if main:  # so that `transformers serve final/` answers with the reply alone (see run/serving.py)
            from rlvr.trainer.run.serving import write_reply_template

            write_reply_template(rundir.final, tokenizer, model.config.model_type, formatter.stop_ids)
    state.wait_for_everyone()

    wall = float(previous.get("wall_s", 0.0)) + (time.perf_counter() - t_start)
    summary = {
        "eval_before": eval_before,
        "eval_after": eval_after,
        "steps": steps,
        "wall_s": round(wall, 2),
        "algorithm": cfg.algorithm.preset,
        "environments": [{"id": e.id, "weight": e.weight} for e in cfg.environments],
        "model": cfg.model.name_or_path,
        "device": device,
        "world_size": world,
        "resumed_from_step": start_step if resume else None,
        "phases_s": phases,
        "segments": segments,
    }
    if main:
        train_rows = rundir.metrics_rows("train")
        rewards = [r["reward"] for r in train_rows if isinstance(r.get("reward"), (int, float))]
        if rewards:
            summary["train_reward_first"], summary["train_reward_last"] = rewards[0], rewards[-1]
        rundir.write_json(rundir.state, {"wall_s": wall, "phases": phases, "segments": segments})
        rundir.write_json(rundir.summary, summary)
        metrics_cb.redraw()
    return summary


def _runs(mask: list[int]) -> list[list[int]]:
    """Run-length form of an env mask, ``[[value, count], ...]`` (compact sample records)."""
    out: list[list[int]] = []
    for m in mask:
        if out and out[-1][0] == m:
            out[-1][1] += 1
        else:
            out.append([int(m), 1])
    return out


class _SFTProbe:
    """Sampled success of the policy on a fixed probe of training tasks, for ``sft.stop_at_success``."""

    def __init__(self, cfg: TrainConfig, model: Any, tokenizer: Any, formatter: Any, entries: list[Any],
                 exclude: set[str], rank: int, world: int) -> None:
        from rlvr.trainer.rollout.backends import make_backend
        from rlvr.trainer.rollout.runner import EnvRunner
        from rlvr.trainer.rollout.tasks import draw_keys

        g, s = cfg.generation, cfg.sft
        self.cfg, self.rank, self.world = cfg, rank, world
        self.step = 0
        self.backend = make_backend(model_backend(cfg), model, tokenizer, max_batch=min(256, 2 * s.probe_tasks),
                                    max_seq_len=512 + g.max_completion_length, vllm=vllm_options(cfg),
                                    weights_version=lambda: self.step)
        self.runner = EnvRunner(entries, formatter, self.backend, max_new_tokens=g.max_new_tokens,
                                max_completion_length=g.max_completion_length, max_turns=g.max_turns,
                                env_workers=g.env_workers)
        fingerprints = _Fingerprints(entries)
        pool = draw_keys(entries, 4 * s.probe_tasks + 64, cfg.seed, 1 << 39)  # its own seed range
        self.keys = [k for k in pool if not exclude or fingerprints(k) not in exclude][: s.probe_tasks]
        fingerprints.close()
        self.last = 0.0

    def should_stop(self, step: int) -> bool:
        s = self.cfg.sft
        if step < s.min_steps or step % s.check_every:
            return False
        self.step = step  # the weights moved since the last probe (vLLM re-syncs on a new version)
        from rlvr.trainer.run.evaluate import evaluate_heldout

        result = evaluate_heldout(self.runner, self.keys, samples_per_task=2, temperature=self.cfg.generation.temperature,
                                  max_new_tokens=self.cfg.generation.max_new_tokens, rank=self.rank, world=self.world)
        self.last = float(result["pass@1"])
        logger.info("SFT step %d: probe success %.3f", step, self.last)
        return self.last >= float(s.stop_at_success or 1.0)

    def close(self) -> None:
        self.runner.close()
        getattr(self.backend, "release", lambda: None)()


class _PhaseBar:
    """A rich progress bar for the SFT warm-up (main process)."""

    def __init__(self, name: str, total: int, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.name = name
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console)
        self.progress.start()
        self.task = self.progress.add_task(name, total=total)

    def update(self, step: int, loss: float) -> None:
        self.progress.update(self.task, completed=step, description=f"{self.name} | loss {loss:.3f}")

    def close(self) -> None:
        self.progress.stop()


__all__ = ["run_training", "check_config"]
