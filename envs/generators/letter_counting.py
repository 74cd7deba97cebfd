"""Letter counting: how many times does a letter occur in a text ("r" in "strawberry")?

Tokenizers hide letters inside multi-character tokens, so this small task probes something
models really get wrong. The answer is an integer (zero happens: sometimes the letter is absent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rlvr.envs.generators.base import GeneratorConfig, Problem, TaskGenerator, register_generator
from rlvr.envs.registry import register_env
from rlvr.errors import ConfigError

WORDS = (
    "strawberry raspberry banana apple orange mississippi committee bookkeeper balloon coffee "
    "letter little parallel necessary occurrence embarrass accommodate possession success tomorrow "
    "address assessment beginning different millennium recommend referral vacuum weird rhythm "
    "queue onomatopoeia bureaucracy pneumonia psychology entrepreneur hippopotamus kaleidoscope "
    "zigzag jazz pizza puzzle buzz fizz razzmatazz mammal summer hammer comma dilemma grammar "
    "cinnamon broccoli spaghetti zucchini tattoo cappuccino espresso mozzarella parmesan "
    "river mirror error terror horror carrier barrier berry cherry ferry sorry worry hurry "
    "elephant giraffe kangaroo koala penguin dolphin octopus squirrel rabbit turtle "
    "algorithm variable function iterator recursion compiler parser lexer tokenizer gradient "
    "reinforcement learning reward policy verifier sandbox environment curriculum benchmark"
).split()


@dataclass(frozen=True)
class LetterCountingConfig(GeneratorConfig):
    """Knobs left as None follow the difficulty: longer texts."""

    min_words: int | None = field(default=None, metadata={"help": "Fewest words in the text (default: difficulty)."})
    max_words: int | None = field(default=None, metadata={"help": "Most words in the text (default: 2 * difficulty)."})
    absent_rate: float = field(default=0.1, metadata={"help": "Share of questions about a letter that does not occur."})

    def resolved(self) -> tuple[int, int]:
        """``(min_words, max_words)`` after the difficulty defaults."""
        lo = self.min_words if self.min_words is not None else self.difficulty
        hi = self.max_words if self.max_words is not None else max(lo, 2 * self.difficulty)
        return lo, hi

    def validate(self) -> None:
        super().validate()
        lo, hi = self.resolved()
        if not 1 <= lo <= hi <= 500:
            raise ConfigError("min_words", f"need 1 <= min_words <= max_words <= 500, got {lo} and {hi}")
        if not 0.0 <= self.absent_rate <= 1.0:
            raise ConfigError("absent_rate", f"must be between 0 and 1, got {self.absent_rate}")


class LetterCountingGenerator(TaskGenerator):
    """Count how many times a letter occurs in a short text; the answer is an integer."""

    name = "letter_counting"
    config_class = LetterCountingConfig

    def generate(self, rng: np.random.Generator) -> Problem:
        lo, hi = self.config.resolved()  # type: ignore[attr-defined]
        n = int(rng.integers(lo, hi + 1))
        words = [WORDS[int(i)] for i in rng.integers(len(WORDS), size=n)]
        text = " ".join(words)
        present = sorted(set(text) - {" "})
        absent = sorted(set("abcdefghijklmnopqrstuvwxyz") - set(present))
        pool = absent if absent and rng.random() < self.config.absent_rate else present  # type: ignore[attr-defined]
        letter = pool[int(rng.integers(len(pool)))]
        return Problem(
            question=f'How many times does the letter "{letter}" occur in the text below? Answer with a number.\n\nText: {text}',
            answer=str(text.count(letter)),
            metadata={"letter": letter, "text": text},
        )


register_generator(LetterCountingGenerator)
register_env(
    "rlvr/LetterCounting-v0",
    "rlvr.envs.procedural:ProceduralEnv",
    kwargs={"generator": "letter_counting"},
    description=LetterCountingGenerator.description(),
)

__all__ = ["LetterCountingConfig", "LetterCountingGenerator"]
