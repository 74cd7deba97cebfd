"""acme-riddle: an example rlvr environment plugin — riddles with one-word answers.

Installing this package is all it takes: its entry point (group ``rlvr.envs``, name
``acme/Riddle-v0``) makes ``gymnasium.make("acme/Riddle-v0")`` and ``rlvr envs list`` find it.
"""

from __future__ import annotations

from rlvr.envs import Component, ListSource, SingleTurnEnv, Task

RIDDLES = [
    {"prompt": "What has keys but can't open locks?", "answer": "piano"},
    {"prompt": "What gets wetter the more it dries?", "answer": "towel"},
    {"prompt": "What has a neck but no head?", "answer": "bottle"},
    {"prompt": "What can you catch but not throw?", "answer": "cold"},
    {"prompt": "What has hands but can't clap?", "answer": "clock"},
    {"prompt": "What runs but never walks, and has a bed but never sleeps?", "answer": "river"},
]


class RiddleEnv(SingleTurnEnv):
    """Riddles with one-word answers, judged by normalised string match."""

    description = "Riddles with one-word answers (the rlvr plugin example)."

    def __init__(self, render_mode: str | None = None, **kwargs) -> None:
        components = [Component("correct", 1.0, "string", {"mode": "normalized"}, help="1 when the word matches")]
        super().__init__(ListSource(RIDDLES, name="riddles"), components, render_mode=render_mode, **kwargs)

    def solution(self, task: Task) -> str:
        return str(task.reference)
