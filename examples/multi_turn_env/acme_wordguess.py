"""acme-wordguess: an example multi-turn rlvr environment — guess a five-letter word from feedback.

A multi-turn environment subclasses ``TextEnv`` and implements three things:

* ``respond(action) -> Turn``: what the environment says back to one model message. ``Turn.reply``
  is the feedback (``user`` or ``tool`` messages), ``Turn.done`` ends the episode, and
  ``Turn.rewards`` reports turn-level reward components by name;
* ``on_reset(task)``: per-episode state (``self.task`` is the current :class:`~rlvr.envs.Task`);
* ``reference_action()``: what a perfect player says now, so ``rlvr envs check`` can prove the
  reward is reachable.

``max_turns`` caps the episode (it is truncated there) and makes it multi-turn in listings.
"""

from __future__ import annotations

from rlvr.envs import Component, ListSource, Rubric, Task, TextEnv, Turn

WORDS = ["crane", "plumb", "ghost", "vivid", "sworn", "jazzy", "fable", "mirth"]

RULES = (
    "Guess my secret five-letter English word. After each guess I mark every letter: "
    "G = right letter, right place; Y = in the word, elsewhere; . = not in the word. "
    "Reply with one five-letter word and nothing else."
)


def feedback(guess: str, secret: str) -> str:
    """Wordle marks for ``guess`` against ``secret`` (repeated letters counted like Wordle)."""
    marks = ["."] * len(secret)
    left: dict[str, int] = {}
    for i, (g, s) in enumerate(zip(guess, secret)):
        if g == s:
            marks[i] = "G"
        else:
            left[s] = left.get(s, 0) + 1
    for i, g in enumerate(guess):
        if marks[i] != "G" and left.get(g, 0) > 0:
            marks[i] = "Y"
            left[g] -= 1
    return "".join(marks)


class WordGuessEnv(TextEnv):
    """Guess a five-letter word in at most ``max_turns`` tries, with letter-by-letter feedback."""

    description = "Guess a five-letter word from letter feedback (the rlvr multi-turn plugin example)."
    DEFAULT_SYSTEM_PROMPT = RULES

    def __init__(self, max_turns: int = 6, render_mode: str | None = None, **kwargs) -> None:
        rubric = Rubric(
            [
                Component("solved", 1.0, help="1 when the word is found"),
                Component("speed", 0.5, help="(turns left + 1) / max_turns when found"),
                Component("valid", 0.0, help="1 per guess that is a five-letter word (a logged metric)"),
            ],
            primary="solved",
        )
        tasks = ListSource([{"prompt": "I have picked a word. Your first guess?", "answer": w} for w in WORDS], name="words")
        super().__init__(tasks, rubric, max_turns=max_turns, render_mode=render_mode, **kwargs)
        self._guesses = 0

    def on_reset(self, task: Task) -> None:
        self._guesses = 0

    def respond(self, action: str) -> Turn:
        secret = str(self.task.reference)
        guess = action.strip().lower().rstrip(".")
        self._guesses += 1
        left = self.max_turns - self._guesses
        if len(guess) != 5 or not guess.isalpha():
            note = "That is not a five-letter word."
            return Turn(reply=[{"role": "user", "content": f"{note} {left} guesses left."}], rewards={"valid": 0.0})
        if guess == secret:
            return Turn(done=True, rewards={"valid": 1.0, "solved": 1.0, "speed": (left + 1) / self.max_turns}, success=True, status="ok")
        if left <= 0:
            return Turn(reply=[{"role": "user", "content": f"Out of guesses: the word was {secret}."}], done=True,
                        rewards={"valid": 1.0}, success=False, status="wrong")
        return Turn(reply=[{"role": "user", "content": f"{feedback(guess, secret)}  ({left} guesses left)"}], rewards={"valid": 1.0})

    def reference_action(self) -> str:
        return str(self.task.reference)

    def reference_answer(self) -> str | None:
        return None if self.task is None else str(self.task.reference)
