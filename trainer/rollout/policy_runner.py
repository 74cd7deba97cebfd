"""`PolicyRunner`: training rollouts played by an evaluation policy (``openai:``, ``python:``).

The episodes are played by the evaluation's own loop (:func:`rlvr.envs.evaluation.episode.run_episode`:
reset, policy turn, environment step, ...), so a run trained with ``generation.backend: policy``
sees exactly the episodes ``rlvr eval --policy SPEC`` would. A per-episode token recorder sits
between that loop and the policy and builds the one token sequence the trainer needs, the way
:class:`~rlvr.trainer.rollout.runner.EnvRunner` does for its own backends: the opening messages
rendered with the trainer's chat template, each model turn's *text re-tokenised with the
trainer's tokenizer* (plus the end-of-turn token when the turn ended on its own; mask 1), the
environment's replies between turns (mask 0), cut at ``max_completion_length``.

Behaviour log-probs are unknown: the policy's tokenizer and weights are not the trainer's, so
``Episode.logprobs`` holds zeros and ``EnvRollouts`` hands TRL ``logprobs=None``. The loss then
uses the trainer's own log-probs as the "old" policy; settings that need the sampler's log-probs
(a ratio anchored to the rollout, rollout corrections, asynchronous rollouts) are refused by
:func:`check_policy_rollouts` with a config error.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import replace
from typing import Any, Mapping, Sequence

from rlvr.envs.evaluation.episode import EpisodeRecord, run_episode
from rlvr.envs.evaluation.policies import PolicyCallFailed, make_policy
from rlvr.envs.evaluation.policies.base import Policy
from rlvr.envs.generation import Completion, Message, SamplingParams
from rlvr.errors import ConfigError
from rlvr.trainer.rollout.chat import ChatFormatter
from rlvr.trainer.rollout.episode import Episode
from rlvr.trainer.rollout.runner import EnvRunner
from rlvr.trainer.rollout.tasks import TaskKey
from rlvr.trainer.run.config import EnvConfig

logger = logging.getLogger(__name__)


class _BudgetSpent(PolicyCallFailed):
    """The episode's token budget ran out before this turn (ends the episode as overlong)."""


class TokenRecorder(Policy):
    """Wraps a policy for one episode and records the turns as the trainer's tokens.

    ``run_episode`` calls :meth:`complete` with the whole conversation so far; the messages after
    the previous call's conversation and the model's reply are the environment's turn.
    """

    def __init__(self, policy: Policy, formatter: ChatFormatter, key: TaskKey, *, max_new_tokens: int,
                 max_completion_length: int) -> None:
        self.policy = policy
        self.formatter = formatter
        self.max_new_tokens = max_new_tokens
        self.max_completion_length = max_completion_length
        self.episode = Episode(key=key)
        self.spec = policy.spec
        self._seen: list[dict] | None = None
        self._ended = True
        self.cut = False

    async def complete(self, messages: Sequence[Message], sampling: SamplingParams, *,
                       task: Mapping[str, Any] | None = None) -> Completion:
        f, ep = self.formatter, self.episode
        if self._seen is None:
            ep.prompt_ids = f.prompt_ids(messages)
        else:
            new = [dict(m) for m in list(messages)[len(self._seen) + 1:]]  # after the model's message
            ids = ([] if self._ended else [f.turn_end_id]) + f.env_turn_ids(new)
            room = self.max_completion_length - len(ep.completion_ids)
            if len(ids) >= room:  # the reply does not fit with room for a model token: keep what fits
                ep.add(ids[:room], 0)
                self._spend()
            ep.add(ids, 0)
        self._seen = [dict(m) for m in messages]
        budget = self.max_completion_length - len(ep.completion_ids)
        if budget <= 0:
            self._spend()
        limit = min(self.max_new_tokens, budget)
        comp = await self.policy.complete(messages, replace(sampling, max_new_tokens=limit), task=task)
        ids = list(f.tokenizer(comp.text, add_special_tokens=False)["input_ids"])
        whole = ids + ([] if comp.finish_reason == "length" else [f.turn_end_id])
        tokens = whole[:limit]
        self._ended = bool(tokens) and tokens[-1] in f.stop_ids
        ep.add(tokens, 1)
        ep.turns += 1
        # What the environment scores is what the trainer trains on: a turn cut to the budget is
        # the decoded cut, not the policy's longer text.
        text = comp.text if len(tokens) == len(whole) else f.tokenizer.decode(tokens, skip_special_tokens=True)
        return Completion(text=text, token_ids=tokens, prompt_ids=[], finish_reason="stop" if self._ended else "length",
                          prompt_tokens=comp.prompt_tokens, completion_tokens=len(tokens))

    def _spend(self) -> None:
        self.cut = True
        raise _BudgetSpent("token budget (generation.max_completion_length) spent")

    def finish(self, record: EpisodeRecord, max_turns: int) -> Episode:
        """The trainer's episode: the recorded tokens with the evaluation record's outcome."""
        ep = self.episode
        ep.task_id, ep.messages, ep.reward, ep.done = record.task_id, list(record.messages), float(record.reward), True
        ep.components = dict(record.components) or {"reward": float(record.reward)}
        if self.cut or (record.status == "truncated" and record.turns >= max_turns):
            # Ended by the runner, not the environment (as EnvRunner records it): no success, reward so far.
            ep.truncated, ep.overlong, ep.success, ep.status = True, self.cut, False, "no_answer"
        elif record.status in ("policy_error", "env_error"):
            logger.warning("episode %s scored 0: %s", ep.key, record.error)
            ep.error, ep.status, ep.success = record.error, "error", False
        else:
            ep.success, ep.status, ep.truncated = bool(record.success), record.status, bool(record.truncated)
        return ep


class PolicyRunner(EnvRunner):
    """``EnvRunner``'s interface (``run(keys, sampling) -> [Episode]``, ``close()``) over an eval policy.

    Args:
        entries: the environments (index = ``TaskKey.env``).
        formatter: the trainer's chat template (renders prompts and environment turns).
        policy: a policy or a spec (``openai:BASE_URL#MODEL``, ``python:module:fn``).
        max_new_tokens / max_completion_length / max_turns: as for ``EnvRunner``, counted in the
            trainer's tokens.
        env_workers: episodes in flight at once.
    """

    #: the sampler's log-probs are not known (see the module docstring).
    behaviour_logprobs = False

    def __init__(self, entries: Sequence[EnvConfig], formatter: ChatFormatter, policy: Policy | str, *,
                 max_new_tokens: int, max_completion_length: int, max_turns: int = 8, env_workers: int = 16) -> None:
        policy = make_policy(policy)
        super().__init__(entries, formatter, policy, max_new_tokens=max_new_tokens,
                         max_completion_length=max_completion_length, max_turns=max_turns, env_workers=env_workers)
        self.policy = policy
        self._started = False
        self._samples = itertools.count()

    def run(self, keys: Sequence[TaskKey], params: SamplingParams) -> list[Episode]:
        """Play one episode per key with the policy; returns them in order."""
        envs = self._envs_for(keys)
        return self.loop.run(self._play_all(list(keys), envs, params))

    async def _play_all(self, keys: list[TaskKey], envs: list[Any], params: SamplingParams) -> list[Episode]:
        if not self._started:
            await self.policy.astart()
            self._started = True
        sem = asyncio.Semaphore(self.env_workers)

        async def one(key: TaskKey, env: Any) -> Episode:
            async with sem:
                return await self._play(key, env, params, next(self._samples))

        return list(await asyncio.gather(*(one(k, e) for k, e in zip(keys, envs))))

    async def _play(self, key: TaskKey, env: Any, params: SamplingParams, sample: int) -> Episode:
        rec = TokenRecorder(self.policy, self.formatter, key, max_new_tokens=self.max_new_tokens,
                            max_completion_length=self.max_completion_length)
        record = await run_episode(env, rec, params, env_id=key.env_id, task_index=key.env, sample=sample,
                                   seed=key.seed, max_turns=self.max_turns)
        if record.status == "env_error" and record.turns == 0 and (record.error or "").startswith("reset raised"):
            raise ConfigError(f"environments[{key.env_id}]", f"reset(seed={key.seed}) failed: {record.error}",
                              "check the environment's arguments")
        return rec.finish(record, self.max_turns)

    def close(self) -> None:
        """Close the policy, pooled environments and the event loop."""
        if self._started and self._loop is not None:
            try:
                self.loop.run(self.policy.aclose())
            except Exception:  # closing is best effort
                logger.debug("closing %r failed", self.policy, exc_info=True)
            self._started = False
        super().close()


def check_policy_rollouts(spec: str, algo: Any, max_off_policy_steps: int | None) -> None:
    """Refuse a ``generation.backend: policy`` setup that would need the sampler's log-probs."""
    if not spec:
        raise ConfigError("generation.policy", "generation.backend is policy but no policy is given",
                          "set generation.policy, e.g. python:my_module:answer or openai:http://localhost:8000/v1#MODEL")
    try:
        make_policy(spec)  # an unknown scheme or a missing function fails here, before any model loads
    except ConfigError as e:
        raise ConfigError("generation.policy", e.problem, e.fix) from e
    if max_off_policy_steps:
        raise ConfigError("generation.max_off_policy_steps", "an evaluation policy's rollouts carry no behaviour "
                          "log-probs, which asynchronous training reads", "set generation.max_off_policy_steps: 0")
    if algo.needs_rollout_logp:
        raise ConfigError("algorithm", "this algorithm reads the sampler's log-probs (a ratio anchored to the "
                          "rollout, or a rollout correction), and an evaluation policy's are unknown",
                          "use ratio_anchor: old and rollout_correction: none, or a trainer backend")


__all__ = ["PolicyRunner", "TokenRecorder", "check_policy_rollouts"]
