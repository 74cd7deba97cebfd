"""A guess-the-number OpenEnv environment served by openenv-core's own server code (``create_app``).

Run: ``python guess_server.py PORT``. The secret is 1..10 from the reset seed; each step's
action is ``{"guess": TEXT}``; the observation says "higher"/"lower" until the guess is right
(reward 1.0, done). A guess that is not a number costs -0.1. At most 5 guesses.
"""

from __future__ import annotations

import random
import sys
from typing import Any, Optional

from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field


class GuessAction(Action):
    """One guess: the model's message."""

    guess: str = Field(..., description="The guessed number, as text")


class GuessObservation(Observation):
    """What the host says."""

    feedback: str = Field(default="", description="The host's reply")


class GuessEnvironment(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True
    MAX_GUESSES = 5

    def __init__(self) -> None:
        self._state = State(episode_id="none", step_count=0)
        self._secret = 0

    def reset(self, seed: Optional[int] = None, episode_id: Optional[str] = None, **kwargs: Any) -> GuessObservation:
        self._secret = random.Random(seed).randint(1, 10)
        self._state = State(episode_id=episode_id or f"seed-{seed}", step_count=0)
        return GuessObservation(feedback="I picked a number from 1 to 10. Guess it.", done=False, reward=0.0,
                                metadata={"secret": self._secret})

    def step(self, action: GuessAction, timeout_s: Optional[float] = None, **kwargs: Any) -> GuessObservation:  # type: ignore[override]
        self._state.step_count += 1
        text = action.guess.strip()
        out_of_guesses = self._state.step_count >= self.MAX_GUESSES
        if not text.lstrip("-").isdigit():
            return GuessObservation(feedback="That is not a number.", done=out_of_guesses, reward=-0.1)
        guess = int(text)
        if guess == self._secret:
            return GuessObservation(feedback="Correct!", done=True, reward=1.0)
        hint = "higher" if guess < self._secret else "lower"
        return GuessObservation(feedback=f"No, {hint}.", done=out_of_guesses, reward=0.0)

    @property
    def state(self) -> State:
        return self._state


app = create_app(GuessEnvironment, GuessAction, GuessObservation, env_name="guess", max_concurrent_envs=16)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
