"""rlvr's one episode loop: reset, then policy turn / environment step until the episode ends.

``rlvr eval`` plays every episode with it, and so does the trainer (its ``EnvRunner``
adds the token view through a token-level policy and the ``on_step`` hook).

An episode's rewards are summed over its steps (turn-level and final rewards alike), and so are
its named reward components. What ends an episode abnormally is recorded, never raised: a
policy call that failed after its retries (``policy_error``), an environment that raised
(``env_error``, an environment bug, logged with its traceback), or the turn cap (``truncated``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from rlvr.envs.evaluation.policies.base import Completion, Policy, PolicyCallFailed, SamplingParams

logger = logging.getLogger(__name__)

#: statuses of episodes that were not scored; they are counted but left out of reward and pass@k.
#: ``error`` is the verifier's "could not judge" (its fault or the task's, never the policy's: a
#: program that breaks its own test run is ``wrong``), so it carries no verdict either.
UNSCORED_STATUSES = frozenset({"policy_error", "env_error", "error"})

AsyncReset = Callable[..., Awaitable[tuple[Any, dict]]]
AsyncStep = Callable[[str], Awaitable[tuple[Any, float, bool, bool, dict]]]
#: ``on_step(completion, (obs, reward, terminated, truncated, info)) -> go_on``: see :func:`run_episode`.
StepHook = Callable[[Completion, tuple[Any, float, bool, bool, Any]], bool]


@dataclass(frozen=True)
class EpisodeRecord:
    """Everything `rlvr eval` keeps about one episode (one line of rollouts.jsonl)."""

    task_index: int
    sample: int
    task_id: str
    env_id: str
    seed: int
    messages: list[dict[str, Any]]
    reward: float
    components: dict[str, float]
    success: bool
    status: str
    turns: int
    truncated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    wall_s: float = 0.0
    reference: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the env's ``reward_weights`` (name -> weight), when its step info reports them.
    component_weights: dict[str, float] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """False for episodes that ended by a policy or environment failure."""
        return self.status not in UNSCORED_STATUSES

    def to_json(self) -> dict[str, Any]:
        """The rollouts.jsonl row."""
        row = asdict(self)
        row["tokens"] = {"prompt": row.pop("prompt_tokens"), "completion": row.pop("completion_tokens"),
                         "estimated": row.pop("tokens_estimated")}
        row["wall_s"] = round(self.wall_s, 4)
        del row["component_weights"]  # the same on every row: summary.json has them once
        if not row["error"]:
            del row["error"]
        if not row["extra"]:
            del row["extra"]
        return row


def async_api(env: Any) -> tuple[AsyncReset, AsyncStep]:
    """The environment's ``areset``/``astep``; a plain gymnasium env's sync pair run in a thread."""
    try:
        return env.get_wrapper_attr("areset"), env.get_wrapper_attr("astep")
    except AttributeError:
        async def areset(**kw: Any) -> tuple[Any, dict]:
            return await asyncio.to_thread(env.reset, **kw)

        async def astep(action: str) -> tuple[Any, float, bool, bool, dict]:
            return await asyncio.to_thread(env.step, action)

        return areset, astep


def sample_seed(seed: int, task_index: int, sample: int, turn: int) -> int:
    """A reproducible 31-bit sampling seed for one policy call (differs across samples of a task)."""
    return zlib.crc32(f"{seed}/{task_index}/{sample}/{turn}".encode()) & 0x7FFFFFFF


async def run_episode(
    env: Any,
    policy: Policy,
    sampling: SamplingParams,
    *,
    env_id: str,
    task_index: int,
    sample: int,
    seed: int,
    max_turns: int,
    options: Mapping[str, Any] | None = None,
    on_step: StepHook | None = None,
) -> EpisodeRecord:
    """Play one episode of the task that ``seed`` (or ``options``, e.g. ``{"index": i}``) selects;
    never raises for model output or env bugs.

    This is the one episode loop of rlvr: ``rlvr eval`` calls it with a chat policy, and the
    trainer's ``EnvRunner`` with a token-level policy that records each turn's tokens. ``on_step``
    sees every successful environment step (the turn's completion and the step's 5-tuple); when it
    returns False on a step that did not end the episode, the episode ends there as truncated
    (the trainer's token budget and turn cap work this way).

    :class:`~rlvr.envs.evaluation.policies.PolicyError` (the policy cannot work at all) and
    ``KeyboardInterrupt``/cancellation propagate: they end the whole run.
    """
    areset, astep = async_api(env)
    t0 = time.perf_counter()
    state = _State()
    base = dict(env_id=env_id, task_index=task_index, sample=sample, seed=seed)
    try:
        obs, info = await areset(seed=seed, options=dict(options)) if options else await areset(seed=seed)
    except Exception as e:
        logger.warning("%s reset(seed=%d) raised; episode recorded as env_error", env_id, seed, exc_info=True)
        return state.record(base, task_id=f"seed:{seed}", status="env_error", error=f"reset raised {type(e).__name__}: {e}", t0=t0)
    task = info.get("task") if isinstance(info, Mapping) else None
    task_id = str(info.get("task_id", f"seed:{seed}")) if isinstance(info, Mapping) else f"seed:{seed}"
    state.reference = task.get("reference") if isinstance(task, Mapping) else None
    state.messages = [dict(m) for m in obs]
    terminated = truncated = False
    step_info: Mapping[str, Any] = {}
    while not (terminated or truncated):
        if state.turns >= max_turns:
            truncated = True
            state.capped = True
            break
        try:
            completion = await policy.complete(obs, sampling.with_seed(sample_seed(seed, task_index, sample, state.turns)), task=task)
        except PolicyCallFailed as e:
            return state.record(base, task_id=task_id, status="policy_error", error=str(e), t0=t0)
        state.add_tokens(completion)
        state.turns += 1
        before = obs
        try:
            obs, reward, terminated, truncated, step_info = await astep(completion.text)
        except Exception as e:
            logger.warning("%s step raised on task %s; episode recorded as env_error", env_id, task_id, exc_info=True)
            state.messages = list(before) + [{"role": "assistant", "content": completion.text}]
            return state.record(base, task_id=task_id, status="env_error", error=f"step raised {type(e).__name__}: {e}", t0=t0)
        state.reward += float(reward)
        for name, value in (step_info.get("reward_components") or {}).items():
            state.components[name] = state.components.get(name, 0.0) + float(value)
        weights = step_info.get("reward_weights")
        if isinstance(weights, Mapping):
            state.weights.update({str(k): float(v) for k, v in weights.items()})
        state.messages = _transcript(before, completion.text, obs)
        terminated, truncated = bool(terminated), bool(truncated)
        if on_step is not None and not on_step(completion, (obs, reward, terminated, truncated, step_info)):
            if not (terminated or truncated):
                truncated = state.capped = True
    episode = step_info.get("episode") if isinstance(step_info.get("episode"), Mapping) else {}
    if isinstance(episode.get("messages"), list):
        state.messages = [dict(m) for m in episode["messages"]]
    success = bool(step_info.get("success", False)) and not state.capped
    status = "truncated" if state.capped else str(step_info.get("status") or ("ok" if success else "truncated" if truncated else "wrong"))
    return state.record(base, task_id=task_id, status=status, success=success, truncated=truncated, t0=t0)


@dataclass
class _State:
    messages: list[dict[str, Any]] = field(default_factory=list)
    reward: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    capped: bool = False
    reference: Any = None

    def add_tokens(self, c: Completion) -> None:
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        self.estimated = self.estimated or c.estimated

    def record(self, base: dict[str, Any], *, task_id: str, status: str, t0: float, success: bool = False,
               truncated: bool = False, error: str | None = None) -> EpisodeRecord:
        return EpisodeRecord(
            **base, task_id=task_id, messages=self.messages, reward=self.reward, components=dict(self.components),
            success=success, status=status, turns=self.turns, truncated=truncated, prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens, tokens_estimated=self.estimated,
            wall_s=time.perf_counter() - t0, reference=self.reference, error=error, component_weights=dict(self.weights),
        )


def _transcript(before: Any, action: str, after: Any) -> list[dict[str, Any]]:
    """The conversation after a step: the env's new observation when it includes the action."""
    before, after = list(before), list(after or [])
    if len(after) > len(before) and after[len(before)].get("role") == "assistant":
        return [dict(m) for m in after]
    return [dict(m) for m in before] + [{"role": "assistant", "content": action}] + [dict(m) for m in after[len(before):]]


__all__ = ["EpisodeRecord", "run_episode", "async_api", "sample_seed", "StepHook", "UNSCORED_STATUSES"]
