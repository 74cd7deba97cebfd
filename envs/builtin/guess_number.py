"""GuessNumber: a multi-turn game with deterministic feedback that rewards efficient play.

The environment picks a secret integer; the model guesses, one integer per message, and hears
"higher" or "lower" until it finds the number or runs out of guesses. Components: ``solved``
(1 when found) and ``efficiency`` (``min(1, optimal / guesses used)`` when found, where optimal
is the worst case of binary search, ``ceil(log2(range size + 1))``), each weighted 0.5.
A message that is not exactly one integer in range is an invalid guess: it costs a guess, so
listing many numbers ("1 2 3 ... 100") never wins.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rlvr.envs.core import DEFAULT_PROMPT, TextEnv, Turn
from rlvr.envs.generators.base import GeneratorConfig, Problem, TaskGenerator, get_generator, register_generator
from rlvr.envs.registry import register_env
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.sources import Curriculum, ProceduralSource, TaskSource
from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.verifiers.extract import answer_tag

_INT = re.compile(r"[+-]?\d{1,18}")


def optimal_guesses(low: int, high: int) -> int:
    """Guesses binary search needs in the worst case on ``[low, high]``."""
    return max(1, math.ceil(math.log2(high - low + 2)))


@dataclass(frozen=True)
class GuessNumberConfig(GeneratorConfig):
    """Knobs left as None follow the difficulty: the range doubles with each level."""

    low: int = field(default=1, metadata={"help": "Smallest possible secret."})
    high: int | None = field(default=None, metadata={"help": "Largest possible secret (default: low - 1 + 10 * 2**(difficulty-1))."})
    slack: int = field(default=2, metadata={"help": "Guesses allowed beyond binary search's worst case."})

    def resolved(self) -> tuple[int, int, int]:
        """``(low, high, max_guesses)`` after the difficulty defaults."""
        high = self.high if self.high is not None else self.low - 1 + 10 * 2 ** (self.difficulty - 1)
        return self.low, high, optimal_guesses(self.low, high) + self.slack

    def validate(self) -> None:
        super().validate()
        low, high, _ = self.resolved()
        if not (isinstance(low, int) and isinstance(high, int)) or high <= low:
            raise ConfigError("high", f"must be an integer above low={low}, got {high!r}")
        if high - low > 10**15:
            raise ConfigError("high", "the range may span at most 1e15 numbers")
        if not 0 <= self.slack <= 100:
            raise ConfigError("slack", f"must be from 0 to 100, got {self.slack}")


class GuessNumberGenerator(TaskGenerator):
    """A secret integer in a range; the reference is the secret."""

    name = "guess_number"
    config_class = GuessNumberConfig

    def generate(self, rng: np.random.Generator) -> Problem:
        low, high, max_guesses = self.config.resolved()  # type: ignore[attr-defined]
        secret = int(rng.integers(low, high + 1))
        return Problem(
            question=(
                f"I am thinking of an integer from {low} to {high}. Find it in as few guesses as you can: "
                f"reply with one integer per message (alone, or inside <answer></answer> tags). After each "
                f"wrong guess I will tell you whether my number is higher or lower. You have {max_guesses} guesses."
            ),
            answer=str(secret),
            metadata={"low": low, "high": high, "max_guesses": max_guesses},
        )


class GuessNumberEnv(TextEnv):
    """Guess the number: higher/lower feedback each turn; rewards finding it in few guesses."""

    description = "Guess a secret number with higher/lower feedback; rewards solving it in few guesses."
    multi_turn = True

    def __init__(
        self,
        *,
        difficulty: int | None = None,
        config: GuessNumberConfig | Mapping[str, Any] | None = None,
        seed: int = 0,
        tasks: TaskSource | None = None,
        curriculum: bool | Mapping[str, Any] = False,
        rewards: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        system_prompt: str | None = DEFAULT_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        gen = get_generator("guess_number", config, **({} if difficulty is None else {"difficulty": difficulty}))
        if tasks is None:
            tasks = ProceduralSource(gen, seed=seed)
            if curriculum:
                tasks = Curriculum(tasks, start=gen.config.difficulty, **(dict(curriculum) if isinstance(curriculum, Mapping) else {}))
        rubric = Rubric.build(
            [
                Component("solved", 0.5, help="1 when the secret is found"),
                Component("efficiency", 0.5, help="min(1, binary-search guesses / guesses used) when found"),
            ],
            rewards,
            reward_weights,
            primary="solved",
        )
        _, _, most = gen.config.resolved()  # type: ignore[attr-defined]
        super().__init__(tasks, rubric, system_prompt=system_prompt, max_turns=most, render_mode=render_mode)
        self._secret = 0
        self._low = self._high = 0
        self._guesses = 0
        self._valid = 0

    def on_reset(self, task: Task) -> None:
        try:
            self._secret = int(task.reference)
            self._low, self._high = int(task.metadata["low"]), int(task.metadata["high"])
            self.max_turns = int(task.metadata["max_guesses"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError("tasks", f"a guess-the-number task needs an integer reference and low/high/max_guesses metadata ({e})") from None
        self._guesses = self._valid = 0

    def respond(self, action: str) -> Turn:
        self._guesses += 1
        left = self.max_turns - self._guesses
        text = (answer_tag(action) or action).strip().rstrip(".")
        guess = int(text) if _INT.fullmatch(text) else None
        if guess is None or not self._low <= guess <= self._high:
            note = f"Invalid guess: reply with exactly one integer from {self._low} to {self._high}."
            if left <= 0:
                return self._lost(note)
            return Turn(reply=[{"role": "user", "content": f"{note} {left} guesses left."}])
        self._valid += 1
        if guess == self._secret:
            eff = min(1.0, optimal_guesses(self._low, self._high) / self._guesses)
            return Turn(
                reply=[{"role": "user", "content": f"Correct! The number is {self._secret}; you found it in {self._guesses} guesses."}],
                done=True,
                rewards={"solved": 1.0, "efficiency": eff},
                success=True,
                status="ok",
            )
        hint = "higher" if self._secret > guess else "lower"
        if left <= 0:
            return self._lost(f"My number is {hint} than {guess}.")
        return Turn(reply=[{"role": "user", "content": f"My number is {hint} than {guess}. {left} guesses left."}])

    def _lost(self, note: str) -> Turn:
        return Turn(
            reply=[{"role": "user", "content": f"{note} No guesses left; the number was {self._secret}."}],
            done=True,
            rewards={"solved": 0.0, "efficiency": 0.0},
            success=False,
            status="wrong" if self._valid else "no_answer",
        )

    def reference_answer(self) -> str | None:
        return None if self.task is None else str(self._secret)

    def format_response(self, answer: str) -> str:
        """A guess in answer tags (bare guesses work too)."""
        return f"<answer>{answer}</answer>"

    def reference_action(self) -> str:
        """Guess the secret."""
        return str(self._secret)


register_generator(GuessNumberGenerator)
register_env("rlvr/GuessNumber-v0", "rlvr.envs.builtin.guess_number:GuessNumberEnv", description=GuessNumberEnv.description)

__all__ = ["GuessNumberConfig", "GuessNumberGenerator", "GuessNumberEnv", "optimal_guesses"]
