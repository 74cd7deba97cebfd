"""PythonTool: multi-turn tool use — run Python in the sandbox as often as the budget allows, then answer.

Call syntax (also in the system prompt; see :mod:`rlvr.envs.tools`):

* a fenced ```` ```python ```` block, or ``<tool_call>{"name": "python", "arguments": {"code": ...}}</tool_call>``,
  or an OpenAI-style message ``{"tool_calls": [{"type": "function", "function": {"name": "python",
  "arguments": "{\\"code\\": ...}"}}]}`` — each call runs as a fresh ``python3`` process in its
  own sandbox run and its output comes back as a ``tool`` message. Nothing a call leaves behind
  (files, kernel keys, processes) is visible to a later call, in the same episode or a later one:
  episodes cannot pass values to each other through the tool;
* a message with ``<answer>...</answer>`` (or with no tool call at all) is the final answer, scored
  by the task's verifier (``metadata["verifier"]``, default ``verifier=``, i.e. ``math``).

After ``max_tool_calls`` calls, a further call is refused and the next message is final. Tool
output comes back as a ``tool`` message; ``tool_role="user"`` sends it as a ``user`` message
instead, for chat servers that reject ``tool`` messages without a structured ``tool_call_id``.
Components: ``correct`` (weight 1) and ``tool_calls`` (calls made, weight 0: a logged metric).
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any, Mapping

from rlvr.envs.core import DEFAULT_PROMPT, TextEnv, Turn
from rlvr.envs.registry import register_env
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.sandboxes import as_limits, shared_sandbox
from rlvr.envs.scoring import TaskVerifier
from rlvr.envs.sources import as_source
from rlvr.envs.task import Task
from rlvr.envs.tools import ToolCall, parse_tool_calls, python_tool_schema
from rlvr.errors import ConfigError
from rlvr.verifiers.extract import answer_tag

SAMPLE_TASKS = "compute_sample.jsonl"
TOOL_DESCRIPTION = "Run Python 3 code in a sandbox (no network, a fresh process each call) and return what it prints."

SYSTEM_PROMPT = """You can run Python code to help you answer.
To run code, write one fenced block and stop:
```python
print(2 ** 100)
```
The next message shows what the code printed (only printed output is shown; every run is a fresh \
process, so define everything you use). OpenAI-style tool calls to the function "python" with \
argument "code" also work. You may run code at most {budget} times.
When you know the answer, reply with it inside <answer> </answer> tags."""


def sample_tasks_path() -> str:
    """The bundled computation problems (used when no ``tasks`` are given)."""
    return str(resources.files("rlvr.envs.data").joinpath(SAMPLE_TASKS))


class PythonToolEnv(TextEnv):
    """Answer questions with the help of a sandboxed Python tool (a budget of calls), then get scored."""

    description = "Multi-turn tool use: call a sandboxed Python tool up to a budget, then answer; scored by the task's verifier."
    multi_turn = True
    blocking_respond = True

    def __init__(
        self,
        tasks: Any = None,
        *,
        prompt_key: str = "prompt",
        reference_key: str = "answer",
        verifier: str = "math",
        verifier_options: Mapping[str, Any] | None = None,
        max_tool_calls: int = 4,
        backend: str = "auto",
        limits: Any = None,
        max_output_chars: int = 4000,
        tool_role: str = "tool",
        rewards: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        system_prompt: str | None = DEFAULT_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(max_tool_calls, bool) or not isinstance(max_tool_calls, int) or not 0 <= max_tool_calls <= 100:
            raise ConfigError("max_tool_calls", f"must be an integer from 0 to 100, got {max_tool_calls!r}")
        if isinstance(max_output_chars, bool) or not isinstance(max_output_chars, int) or max_output_chars < 100:
            raise ConfigError("max_output_chars", f"must be an integer >= 100, got {max_output_chars!r}")
        if tool_role not in ("tool", "user"):
            raise ConfigError("tool_role", f"must be 'tool' or 'user', got {tool_role!r}", "'user' suits chat servers that reject tool messages without a tool_call_id")
        source = as_source(sample_tasks_path() if tasks is None else tasks, prompt_key=prompt_key, reference_key=reference_key)
        rubric = Rubric.build(
            [
                Component("correct", 1.0, TaskVerifier(verifier, **dict(verifier_options or {})), help="1 when the final answer is right"),
                Component("tool_calls", 0.0, help="number of tool calls made (a metric)"),
            ],
            rewards,
            reward_weights,
            primary="correct",
        )
        prompt = SYSTEM_PROMPT.format(budget=max_tool_calls) if system_prompt is DEFAULT_PROMPT else system_prompt
        # Each call may be refused once at the budget; then one more message is the final answer.
        super().__init__(source, rubric, system_prompt=prompt, max_turns=max_tool_calls + 2, render_mode=render_mode)
        self.max_tool_calls = max_tool_calls
        self.backend = backend
        self.limits = as_limits(limits, time_limit_s=10.0, memory_mb=1024)
        self.max_output_chars = max_output_chars
        self.tool_role = tool_role
        self.tools = [python_tool_schema(TOOL_DESCRIPTION)]
        self._calls = 0
        self._refused = False

    # ------------------------------------------------------------------ episode
    def on_reset(self, task: Task) -> None:
        self._calls = 0
        self._refused = False

    def extra_reset_info(self) -> dict[str, Any]:
        """The OpenAI ``tools`` list, for policies that speak the tool-calling API."""
        return {"tools": self.tools}

    def _plan(self, action: str) -> tuple[str, list[ToolCall]]:
        """``("final", [])``, ``("refuse", calls)`` or ``("run", calls)`` for one model message."""
        calls = [] if answer_tag(action) is not None else parse_tool_calls(action)
        if not calls or self._refused:
            return "final", []
        if self._calls >= self.max_tool_calls:
            return "refuse", calls
        return "run", calls[: self.max_tool_calls - self._calls]

    def respond(self, action: str) -> Turn:
        kind, calls = self._plan(action)
        if kind != "run":
            return self._other(kind)
        return self._ran([self._run(c) for c in calls])

    async def arespond(self, action: str) -> Turn:
        kind, calls = self._plan(action)
        if kind != "run":
            return self._other(kind)
        return self._ran(list(await asyncio.gather(*(self._arun(c) for c in calls))))

    def _other(self, kind: str) -> Turn:
        if kind == "refuse":
            self._refused = True
            note = f"Tool budget exhausted ({self.max_tool_calls} calls). Reply with your final answer inside <answer> </answer> tags."
            return Turn(reply=[self._message(note)])
        return Turn(done=True, rewards={"tool_calls": float(self._calls)})

    def _ran(self, outputs: list[str]) -> Turn:
        return Turn(reply=[self._message(out) for out in outputs])

    def _message(self, text: str) -> dict[str, str]:
        if self.tool_role == "tool":
            return {"role": "tool", "content": text}
        return {"role": "user", "content": f"Tool output:\n{text}"}

    # ------------------------------------------------------------------ running one call
    def _check_call(self, call: ToolCall) -> str | None:
        if call.error:
            return f"error: {call.error}"
        if call.name != "python":
            return f"error: unknown tool {call.name!r}; the only tool is 'python' with argument 'code'"
        if not isinstance(call.arguments.get("code"), str):
            return "error: the python tool needs a string argument 'code'"
        return None

    def _run(self, call: ToolCall) -> str:
        problem = self._check_call(call)
        if problem:
            return problem
        self._calls += 1
        from rlvr.sandbox import Program

        result = shared_sandbox(self.backend, self.limits).run(Program("python", call.arguments["code"]))
        return self._render(result)

    async def _arun(self, call: ToolCall) -> str:
        problem = self._check_call(call)
        if problem:
            return problem
        self._calls += 1
        from rlvr.sandbox import Program

        result = await shared_sandbox(self.backend, self.limits).arun(Program("python", call.arguments["code"]))
        return self._render(result)

    def _render(self, result: Any) -> str:
        parts = []
        if result.status != "ok":
            parts.append(f"[status: {result.status}{' - ' + result.detail if result.detail else ''}]")
        parts.append(result.stdout if result.stdout else "(no output)" if result.status == "ok" else "")
        if result.stderr:
            parts.append(f"[stderr]\n{result.stderr}")
        text = "\n".join(p for p in parts if p).rstrip()
        if len(text) > self.max_output_chars:
            text = text[: self.max_output_chars] + f"\n... [{len(text) - self.max_output_chars} more characters cut]"
        return text

    # ------------------------------------------------------------------ reference path
    def reference_answer(self) -> str | None:
        return None if self.task is None else str(self.task.reference)

    def format_response(self, answer: str) -> str:
        """A final answer in the requested tags."""
        return f"<answer>{answer}</answer>"

    def reference_action(self) -> str:
        """Run the task's ``solution_code`` once (if it has one), then answer with the reference."""
        assert self.task is not None, "call reset() first"
        code = self.task.metadata.get("solution_code")
        if isinstance(code, str) and self._calls == 0 and self.max_tool_calls > 0 and not self._refused:
            return f"Let me compute it.\n```python\n{code}\n```"
        return self.format_response(str(self.task.reference))


register_env("rlvr/PythonTool-v0", "rlvr.envs.builtin.python_tool:PythonToolEnv", description=PythonToolEnv.description)

__all__ = ["PythonToolEnv", "SYSTEM_PROMPT", "sample_tasks_path"]
