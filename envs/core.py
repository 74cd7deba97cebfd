"""`TextEnv`: the whole contract of an rlvr environment in one Gymnasium class.

An episode is a conversation. ``reset`` poses a task and returns the opening messages; each
``step`` takes the model's next message (the action, a string), lets the environment reply
(feedback, tool output) and returns the full conversation so far with the step's reward.
Messages with role ``assistant`` are model-written (trained on); every other role is
environment-written (masked out of the loss).

Subclasses implement :meth:`TextEnv.respond` (what the environment does with one model message)
and :meth:`TextEnv.reference_action` (what a perfect model would say now, for ``rlvr.envs.check``);
rewards come from a :class:`~rlvr.envs.rewards.Rubric` of named, weighted components.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, SupportsFloat

import gymnasium as gym
from gymnasium.error import ResetNeeded

from rlvr.envs.rewards import Rubric, RubricResult
from rlvr.envs.sources.base import TaskSource
from rlvr.envs.spaces import ROLES, ChatMessages, UnicodeText
from rlvr.envs.task import Message, Task
from rlvr.errors import ConfigError
from rlvr.validate import positive_int
from rlvr.verifiers import STATUSES

MAX_CONTENT_CHARS = 1_000_000


class _DefaultPrompt:
    """The type of :data:`DEFAULT_PROMPT`: "use the environment's own default system prompt"."""

    def __repr__(self) -> str:
        return "DEFAULT_PROMPT"

    def __reduce__(self) -> str:  # one instance per process, also after pickling
        return "DEFAULT_PROMPT"


#: The ``system_prompt`` default: the class's ``DEFAULT_SYSTEM_PROMPT``. ``None`` or ``""`` means none.
DEFAULT_PROMPT: Any = _DefaultPrompt()


class _MultiTurn:
    """``multi_turn`` unless a class sets it: an instance is multi-turn when ``max_turns > 1``.

    Read on the class (before any instance exists) it answers False, as before.
    """

    def __get__(self, obj: Any, objtype: type | None = None) -> bool:
        return False if obj is None else obj.max_turns > 1


@dataclass
class Turn:
    """What the environment does in reply to one model message (returned by ``respond``).

    reply:   environment-written messages to append (``user`` feedback, ``tool`` output).
    done:    the episode ends here (``terminated``).
    rewards: values of turn-level components earned on this step, ``{name: value}``.
    answer:  on ``done``, the text the final components score (default: the model's last message).
    success: on ``done``, overrides "the primary component judged the answer correct".
    status:  on ``done``, overrides the primary component's Score status.
    score_final: on ``done``, whether to run the final components at all (False: they count 0).
    """

    reply: list[Message] = field(default_factory=list)
    done: bool = False
    rewards: dict[str, float] = field(default_factory=dict)
    answer: str | None = None
    success: bool | None = None
    status: str | None = None
    score_final: bool = True


class TextEnv(gym.Env[list, str]):
    """A Gymnasium environment whose observations are chat messages and whose actions are text.

    Observation: the full conversation, a list of ``{"role", "content"}`` dicts (fresh copies).
    Action: the model's next message, any Unicode string (empty is allowed and scores nothing).

    ``reset(seed=None, options=None) -> (obs, info)``: picks a task with the seeded RNG (or
    ``options["index"]`` / ``options["task"]``); ``info`` = ``{"task": {prompt, reference,
    metadata}, "task_id", "env_id"}``.

    ``step(action) -> (obs, reward, terminated, truncated, info)``: ``info["reward_components"]``
    maps component names to values earned this step and ``reward == Σ weight · value`` (weights in
    ``info["reward_weights"]``; the last step lists every component, 0.0 where none was earned).
    On the last step (terminated, or truncated at ``max_turns``) ``info`` also has ``success`` (bool), ``status`` (a Score status) and ``episode``
    (``turns``, ``messages``, ``reward``: the return, ``reward_components``: per-episode sums).

    ``areset``/``astep`` are the async twins: final scoring awaits the shared verifier pools
    without holding a thread, so hundreds of episodes can run concurrently with ``asyncio.gather``.

    ``system_prompt``: left out, the class's ``DEFAULT_SYSTEM_PROMPT`` opens every episode;
    a string replaces it; ``None`` (``-E system_prompt=null`` on the CLI) or ``""`` removes it.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}
    #: One line for ``rlvr envs list``.
    description: ClassVar[str] = ""
    #: True when an episode can take more than one model message: derived from ``max_turns``
    #: (a subclass may still set it to a constant).
    multi_turn = _MultiTurn()
    #: True when ``respond`` blocks (runs programs, waits on I/O): ``astep`` then runs it in a thread.
    blocking_respond: ClassVar[bool] = False

    #: The system message opening every episode unless ``system_prompt=`` says otherwise.
    DEFAULT_SYSTEM_PROMPT: ClassVar[str | None] = None

    def __init__(
        self,
        tasks: TaskSource,
        rubric: Rubric,
        *,
        system_prompt: str | None = DEFAULT_PROMPT,
        max_turns: int = 1,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(tasks, TaskSource):
            raise ConfigError("tasks", f"expected a TaskSource, got {type(tasks).__name__}")
        positive_int("max_turns", max_turns)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError("render_mode", f"{render_mode!r} is not supported", f"choose from {self.metadata['render_modes']}")
        self.tasks = tasks
        self.rubric = rubric
        if system_prompt is not DEFAULT_PROMPT and system_prompt is not None and not isinstance(system_prompt, str):
            raise ConfigError("system_prompt", f"must be a string or None (no system message), got {type(system_prompt).__name__}")
        self.system_prompt = self.DEFAULT_SYSTEM_PROMPT if system_prompt is DEFAULT_PROMPT else system_prompt
        self.max_turns = max_turns
        self.render_mode = render_mode
        self.observation_space = ChatMessages(ROLES, max_content_length=MAX_CONTENT_CHARS)
        self.action_space = UnicodeText(MAX_CONTENT_CHARS)
        self._task: Task | None = None
        self._messages: list[Message] = []
        self._done = True
        self._turns = 0
        self._return = 0.0
        self._totals: dict[str, float] = {}

    # ================================================================== hooks for subclasses
    def respond(self, action: str) -> Turn:
        """React to the model's message ``action`` (already appended to the transcript).

        Default: a single-turn episode that ends on the first answer.
        """
        return Turn(done=True)

    async def arespond(self, action: str) -> Turn:
        """Async ``respond``: in a worker thread when ``blocking_respond``, else inline."""
        if self.blocking_respond:
            return await asyncio.to_thread(self.respond, action)
        return self.respond(action)

    def reference_action(self) -> str:
        """What a perfect model would say next in the current episode (for ``rlvr.envs.check``)."""
        raise ConfigError(type(self).__name__, "has no reference solution path", "implement reference_action()")

    def reference_answer(self) -> str | None:
        """The bare right answer to the current task, if it has one (hidden in the answer-spam probe)."""
        return None

    def format_response(self, answer: str) -> str:
        """``answer`` wrapped the way the prompt asks final answers to be written."""
        return answer

    def initial_messages(self, task: Task) -> list[Message]:
        """The opening messages: the system prompt (if any) and the task's prompt."""
        msgs: list[Message] = []
        if self.system_prompt:
            msgs.append({"role": "system", "content": self.system_prompt})
        if isinstance(task.prompt, str):
            msgs.append({"role": "user", "content": task.prompt})
        else:
            msgs.extend({"role": m["role"], "content": m["content"]} for m in task.prompt)
        return msgs

    def on_reset(self, task: Task) -> None:
        """Set up per-episode state for ``task`` (called by ``reset`` before the first message)."""

    def extra_reset_info(self) -> dict[str, Any]:
        """More keys for the reset ``info`` (e.g. tool schemas)."""
        return {}

    # ================================================================== properties
    @property
    def task(self) -> Task | None:
        """The current episode's task."""
        return self._task

    @property
    def messages(self) -> list[Message]:
        """A copy of the current transcript."""
        return copy.deepcopy(self._messages)

    @property
    def max_reward(self) -> float:
        """The return of a perfect episode."""
        return self.rubric.max_reward

    @property
    def env_id(self) -> str:
        """The registered id (``rlvr/Math-v0``), or the class name when built directly."""
        return self.spec.id if self.spec is not None else type(self).__name__

    # ================================================================== Gymnasium API
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[list, dict[str, Any]]:
        """Start an episode; see the class docstring for the returned ``(obs, info)``."""
        super().reset(seed=seed)
        task = self._pick_task(options or {})
        self._task = task
        self._turns = 0
        self._return = 0.0
        self._totals = {}
        self._done = False
        self.on_reset(task)
        self._messages = [self._checked(m, allow_assistant=True) for m in self.initial_messages(task)]
        info = {"task": task.to_dict(), "task_id": task.id, "env_id": self.env_id, **copy.deepcopy(self.extra_reset_info())}
        return self._obs(), info

    def step(self, action: str) -> tuple[list, SupportsFloat, bool, bool, dict[str, Any]]:
        """Take the model's message; see the class docstring for the returned tuple."""
        action = self._begin_step(action)
        turn = self.respond(action)
        final = self._final_needed(turn, action)
        result = self.rubric.score(final[0], final[1]) if final else None
        return self._end_step(turn, result)

    async def areset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[list, dict[str, Any]]:
        """Async twin of ``reset`` (runs it in a worker thread: task sources may read files)."""
        return await asyncio.to_thread(lambda: self.reset(seed=seed, options=options))

    async def astep(self, action: str) -> tuple[list, SupportsFloat, bool, bool, dict[str, Any]]:
        """Async twin of ``step``: awaits the verifier pools instead of blocking a thread."""
        action = self._begin_step(action)
        turn = await self.arespond(action)
        final = self._final_needed(turn, action)
        result = await self.rubric.ascore(final[0], final[1]) if final else None
        return self._end_step(turn, result)

    def render(self) -> str | None:
        """``ansi``: the transcript as text, one ``[role]`` header per message."""
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{m['role']}]\n{m['content']}" for m in self._messages)

    def close(self) -> None:
        """Nothing to release by default (verifier pools are shared per process)."""

    # ================================================================== plumbing
    def _pick_task(self, options: Mapping[str, Any]) -> Task:
        if "task" in options:
            t = options["task"]
            if isinstance(t, Task):
                return t
            ref_key = "reference" if isinstance(t, Mapping) and "reference" in t else "answer"
            return Task.from_row(t, reference_key=ref_key, default_id="options.task", where="options['task']")
        if "index" in options:
            return self.tasks.get(options["index"])
        return self.tasks.sample(self.np_random)

    def _begin_step(self, action: str) -> str:
        if self._done or self._task is None:
            raise ResetNeeded("the episode has ended (or never started): call reset() before step()")
        if not isinstance(action, str):
            raise TypeError(f"an action is the model's message text (str), got {type(action).__name__}")
        if len(action) > MAX_CONTENT_CHARS:
            action = action[:MAX_CONTENT_CHARS]
        action = action.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be stored or scored
        self._turns += 1
        self._messages.append({"role": "assistant", "content": action})
        return action

    def _final_needed(self, turn: Turn, action: str) -> tuple[str, Task] | None:
        if turn.done and turn.score_final and self.rubric.final_components:
            assert self._task is not None
            return (action if turn.answer is None else turn.answer), self._task
        return None

    def _end_step(self, turn: Turn, result: RubricResult | None) -> tuple[list, float, bool, bool, dict[str, Any]]:
        assert self._task is not None
        for m in turn.reply:
            self._messages.append(self._checked(m, allow_assistant=False))
        terminated = bool(turn.done)
        truncated = not terminated and self._turns >= self.max_turns
        values = self.rubric.check_values(turn.rewards)
        if terminated or truncated:
            for c in self.rubric.final_components:
                values[c.name] = result.values.get(c.name, 0.0) if result else 0.0
            for name in self.rubric.components:  # the last step names every component, so logs line up
                values.setdefault(name, 0.0)
        reward = self.rubric.total(values)
        self._return += reward
        for n, v in values.items():
            self._totals[n] = self._totals.get(n, 0.0) + v
        info: dict[str, Any] = {
            "reward_components": dict(values),
            "reward_weights": {n: self.rubric.components[n].weight for n in values},
            "turn": self._turns,
        }
        if terminated or truncated:
            self._done = True
            primary = result.primary if result else None
            if turn.success is not None:
                success = bool(turn.success)
            else:
                success = bool(terminated and primary is not None and primary.correct is True)
            status = turn.status or (primary.status if primary else None)
            if status is None:
                status = "ok" if success else ("no_answer" if truncated else "wrong")
            if status not in STATUSES:
                raise ConfigError("status", f"the environment reported {status!r}", f"use one of {STATUSES}")
            info["success"] = success
            info["status"] = status
            if result is not None:
                info["scores"] = {n: {"status": s.status, "parsed": s.parsed, "detail": s.detail} for n, s in result.scores.items()}
            info["episode"] = {
                "turns": self._turns,
                "messages": copy.deepcopy(self._messages),
                "reward": self._return,
                "reward_components": dict(self._totals),
            }
            self.tasks.record(self._task, success)
        return self._obs(), float(reward), terminated, truncated, info

    def _checked(self, m: Mapping[str, Any], allow_assistant: bool) -> Message:
        role, content = m.get("role"), m.get("content")
        if role not in ROLES or (role == "assistant" and not allow_assistant):
            raise ConfigError("reply", f"an environment message needs role system/user/tool, got {role!r}")
        if not isinstance(content, str):
            raise ConfigError("reply", f"message content must be a string, got {type(content).__name__}")
        return {"role": role, "content": content[:MAX_CONTENT_CHARS]}

    def _obs(self) -> list[Message]:
        return copy.deepcopy(self._messages)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.env_id} tasks={self.tasks!r} rubric={self.rubric!r}>"


__all__ = ["TextEnv", "Turn", "MAX_CONTENT_CHARS"]
