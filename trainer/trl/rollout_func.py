"""Environment rollouts plugged into TRL: ``EnvRollouts`` is a ``rollout_func``, ``env_reward`` its reward.

TRL's ``GRPOTrainer(rollout_func=...)`` (trl 1.16, ``_generate``) is the entry point that fits:
it hands us the batch's prompts and takes back token ids, per-token log-probs and an
``env_mask``, so multi-turn episodes, environment-written tokens and engine log-probs all reach
the loss unchanged. Its other two entry points do not fit: ``tools=`` only runs Python callables
inside TRL's own tool-call loop (no environment rewards, turns or feedback), and
``environment_factory=`` gives an environment tools and one ``reset(**row)`` string, not the
Gymnasium ``step(text) -> (obs, reward, ...)`` contract with rewards per turn.

Contract details that matter (TRL 1.16's ``rollout_func``, as ``GRPOTrainer._generate`` uses it):

* ``prompts`` arrive already repeated ``num_generations`` times (one per completion), so we play
  exactly ONE episode per incoming prompt. Each prompt is a task key (see ``tasks.TaskKey``);
  the G copies of a key reset the same task, so a group shares its task.
* Every key we return besides ``prompt_ids``/``completion_ids``/``logprobs`` is forwarded to the
  reward functions as a per-completion keyword; ``env_reward`` reads ``env_reward`` from there.
* ``env_mask`` (1 = model token) becomes TRL's ``tool_mask``: environment tokens never enter the
  loss nor the completion-length metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Sequence

from rlvr.trainer.engine import SamplingParams
from rlvr.trainer.rollout.backends import GenerationBackend, VLLMOptions, make_backend
from rlvr.trainer.rollout.chat import ChatFormatter
from rlvr.trainer.rollout.episode import Episode, summarize
from rlvr.trainer.rollout.retirement import Retirement
from rlvr.trainer.rollout.runner import EnvRunner
from rlvr.trainer.rollout.tasks import TaskKey
from rlvr.trainer.run.config import EnvConfig

logger = logging.getLogger(__name__)

EpisodeSink = Callable[[int, list[Episode], list[str]], None]


def trainer_backend(trainer: Any, kind: str, max_batch: int, max_seq_len: int,
                    vllm: VLLMOptions | None = None) -> GenerationBackend:
    """A generation backend over a TRL trainer's live policy (unwrapped; gathered when sharded).

    Its weights version is the trainer's global step: they change with each optimiser step.
    """
    from trl.models import unwrap_model_for_generation

    acc = trainer.accelerator
    model = acc.unwrap_model(trainer.model)
    ds = getattr(acc.state, "deepspeed_plugin", None)
    sharded = bool(getattr(trainer, "is_fsdp_enabled", False)) or (ds is not None and getattr(ds, "zero_stage", 0) == 3)

    def context() -> Any:
        import contextlib

        stack = contextlib.ExitStack()
        unwrapped = stack.enter_context(unwrap_model_for_generation(
            trainer.model_wrapped, acc, gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs))
        dist = getattr(trainer, "_dist", None)  # TRL's FSDP helper (private in trl 1.16)
        if dist is not None and sharded:
            stack.enter_context(dist.summon_full_params(trainer.model_wrapped, recurse=False))

        @contextlib.contextmanager
        def wrapped() -> Any:
            with stack:
                yield unwrapped

        return wrapped()

    return make_backend(kind, model, trainer.processing_class, max_batch=max_batch, max_seq_len=max_seq_len,
                        context=context, sharded=sharded, vllm=vllm,
                        weights_version=lambda: int(trainer.state.global_step))


class EnvRollouts:
    """A TRL ``rollout_func`` that plays environment episodes (one per incoming prompt).

    Args:
        entries: the training mixture (``TaskKey.env`` indexes it).
        max_new_tokens / max_completion_length / max_turns / env_workers: episode limits (see
            ``EnvRunner``).
        backend: ``auto`` | ``engine`` | ``hf`` | ``vllm`` (with ``vllm``: the server options), or
            ``policy``: the evaluation policy ``policy`` plays the episodes (``PolicyRunner``; its
            behaviour log-probs are unknown, so TRL gets ``logprobs=None``).
        policy: with ``backend="policy"``, the policy spec (``python:module:fn``, ``openai:URL#MODEL``).
        chat_template: optional template override for the tokenizer.
        sink: called on the main process after each batch with ``(step, episodes, all_keys)``
            (sample rollouts, data-order records); ``all_keys`` are every rank's task keys.
    """

    def __init__(
        self,
        entries: Sequence[EnvConfig],
        *,
        max_new_tokens: int,
        max_completion_length: int,
        max_turns: int = 8,
        env_workers: int = 16,
        backend: str = "auto",
        vllm: VLLMOptions | None = None,
        chat_template: str | None = None,
        sink: EpisodeSink | None = None,
        policy: str = "",
    ) -> None:
        self.entries = list(entries)
        self.max_new_tokens = max_new_tokens
        self.max_completion_length = max_completion_length
        self.max_turns = max_turns
        self.env_workers = env_workers
        self.backend_kind = backend
        self.vllm = vllm
        self.chat_template = chat_template
        self.sink = sink
        self.policy = policy
        self.runner: EnvRunner | None = None
        self.pending_metrics: dict[str, float] = {}
        # No-positive-resampling (rlvr.trainer.rollout.retirement): retired keys are replaced, groups observed.
        self.retirement: Retirement | None = None
        self.__name__ = "rlvr_env_rollouts"

    def steps_per_call(self, trainer: Any) -> int:
        """Optimiser steps between two generation calls of ``trainer``."""
        args = trainer.args
        return max(1, args.steps_per_generation * trainer.num_iterations // args.gradient_accumulation_steps)

    def build_runner(self, trainer: Any, prompt_len: int, batch: int) -> EnvRunner:
        """The runner over ``trainer``'s policy (built on first use)."""
        if self.runner is None and self.backend_kind == "policy":
            from rlvr.trainer.rollout.policy_runner import PolicyRunner

            logger.info("rollouts: evaluation policy %s (text re-tokenised)", self.policy)
            self.runner = PolicyRunner(
                self.entries, ChatFormatter(trainer.processing_class, self.chat_template), self.policy,
                max_new_tokens=self.max_new_tokens, max_completion_length=self.max_completion_length,
                max_turns=self.max_turns, env_workers=self.env_workers,
            )
        if self.runner is None:
            backend = trainer_backend(trainer, self.backend_kind, max_batch=max(batch, 1),
                                      max_seq_len=prompt_len + self.max_completion_length + 64, vllm=self.vllm)
            logger.info("rollouts: %s backend", backend.name)
            self.runner = EnvRunner(
                self.entries, ChatFormatter(trainer.processing_class, self.chat_template), backend,
                max_new_tokens=self.max_new_tokens, max_completion_length=self.max_completion_length,
                max_turns=self.max_turns, env_workers=self.env_workers,
            )
        return self.runner

    def sampling_params(self, trainer: Any) -> SamplingParams:
        """The trainer's sampling settings (temperature, top-p, top-k)."""
        args = trainer.args
        return SamplingParams(max_new_tokens=self.max_new_tokens, temperature=float(args.temperature),
                              top_p=float(args.top_p if args.top_p is not None else 1.0), top_k=int(args.top_k or 0))

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        """Play one episode per prompt (task key) and return TRL's rollout dict plus episode fields."""
        if self.retirement is not None:
            self.retirement.lag = self.steps_per_call(trainer)
            prompts = self.retirement.substitute([str(p) for p in prompts], int(trainer.state.global_step) + 1)
        keys = [TaskKey.parse(p) for p in prompts]
        runner = self.build_runner(trainer, prompt_len=256, batch=len(keys))
        episodes = runner.run(keys, self.sampling_params(trainer))
        self._report(trainer, episodes)
        fields = rollout_fields(episodes)
        if not getattr(runner, "behaviour_logprobs", True):
            fields["logprobs"] = None  # unknown: TRL then has no sampling log-probs, the loss uses its own
        return fields

    def _report(self, trainer: Any, episodes: list[Episode]) -> None:
        """Gather per-episode stats over ranks; stash them for ``env_reward`` to log; feed the sink."""
        from accelerate.utils import gather_object

        acc = trainer.accelerator
        local = [(e.record() | {"messages": None}) for e in episodes]
        rows = gather_object(local) if acc.num_processes > 1 else local
        light = [_episode_from_record(r) for r in rows]
        self.pending_metrics = summarize(light)
        if self.retirement is not None:  # every rank sees every group, so all ranks retire alike
            self.retirement.observe([r["task_key"] for r in rows], [bool(r["success"]) for r in rows],
                                    int(trainer.state.global_step) + 1)
            self.pending_metrics.update(self.retirement.metrics())
        if self.sink is not None and acc.is_main_process:
            self.sink(int(trainer.state.global_step) + 1, episodes, [r["task_key"] for r in rows])

    def close(self) -> None:
        """Release environments and the engine cache."""
        if self.runner is not None:
            self.runner.close()
            release = getattr(self.runner.backend, "release", None) if self.backend_kind != "policy" else None
            if release is not None:
                release()
            self.runner = None


def rollout_fields(episodes: Sequence[Episode]) -> dict[str, list[Any]]:
    """TRL's rollout dict for ``episodes``: token ids, log-probs, env mask, and the ``env_*``
    per-completion fields the reward functions read (``env_components``: each episode's
    per-component returns, which GDPO's one-reward-function-per-component setup reads)."""
    return {
        "prompt_ids": [e.prompt_ids for e in episodes],
        "completion_ids": [e.completion_ids for e in episodes],
        "logprobs": [e.logprobs for e in episodes],
        "env_mask": [e.env_mask for e in episodes],
        "env_reward": [e.reward for e in episodes],
        "env_components": [dict(e.components) for e in episodes],
        "env_success": [e.success for e in episodes],
        "env_status": [e.status for e in episodes],
        "env_turns": [e.turns for e in episodes],
        "env_truncated": [e.truncated for e in episodes],
        "env_id": [e.env_id for e in episodes],
        "task_id": [e.task_id for e in episodes],
    }


def _episode_from_record(r: dict[str, Any]) -> Episode:
    ep = Episode(key=TaskKey.parse(r["task_key"]), reward=r["reward"], components=r["components"],
                 success=r["success"], status=r["status"], turns=r["turns"], truncated=r["truncated"],
                 overlong=r["overlong"], error=r["error"], env_seconds=r.get("env_seconds", 0.0))
    ep.env_mask = [1] * r["model_tokens"] + [0] * r["env_tokens"]
    return ep


def make_env_reward(rollouts: EnvRollouts) -> Callable[..., list[float]]:
    """The reward function for TRL: each completion's episode return (and logs the episode stats)."""

    def env_reward(prompts: list[Any], completions: list[Any], env_reward: list[float] | None = None,
                   log_metric: Callable[[str, float], None] | None = None, **kwargs: Any) -> list[float | None]:
        """Episode return from the environment (computed during the rollout)."""
        if env_reward is None:
            return [None] * len(prompts)
        if log_metric is not None:
            for name, value in rollouts.pending_metrics.items():
                log_metric(name, value)
            rollouts.pending_metrics = {}
        return [float(r) for r in env_reward]

    return env_reward


def make_component_rewards(rollouts: EnvRollouts, names: Sequence[str]) -> list[Callable[..., list[float | None]]]:
    """One TRL reward function per named reward component (for algorithms that normalise each
    component on its own, e.g. GDPO); a completion whose environment lacks the component gets
    None (missing, left out of that component's statistics). Weight them with the components'
    weights (``RLVRConfig.reward_weights``) so their weighted sum is the episode return."""
    funcs = []
    for i, name in enumerate(names):
        def component(prompts: list[Any], completions: list[Any], env_components: list[dict] | None = None,
                      log_metric: Callable[[str, float], None] | None = None, _name: str = name,
                      _first: bool = i == 0, **kwargs: Any) -> list[float | None]:
            if env_components is None:
                return [None] * len(prompts)
            if _first and log_metric is not None:  # episode stats are logged once per batch
                for metric, value in rollouts.pending_metrics.items():
                    log_metric(metric, value)
                rollouts.pending_metrics = {}
            return [None if c.get(_name) is None else float(c[_name]) for c in env_components]

        component.__name__ = f"env_{name}"
        funcs.append(component)
    return funcs


def build_train_dataset(keys: Sequence[TaskKey]) -> Any:
    """A ``datasets.Dataset`` whose ``prompt`` column holds the task keys (TRL's sampler shuffles it)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [str(k) for k in keys]})


__all__ = ["EnvRollouts", "make_env_reward", "make_component_rewards", "rollout_fields", "build_train_dataset", "trainer_backend"]
