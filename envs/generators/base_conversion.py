"""Base conversion: write a number given in one base (2-36) in another.

Answers are judged by value, not by spelling (:class:`BaseDigitsVerifier`): ``FF``, ``ff`` and
``0xff`` are all right for 255 in base 16, using Python's bounded ``int(text, base)`` parser.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlvr.envs.generators.base import GeneratorConfig, Problem, TaskGenerator, register_generator
from rlvr.envs.registry import register_env
from rlvr.errors import ConfigError
from rlvr.verifiers import Score, Verifier
from rlvr.verifiers.extract import check_order, extract

DIGITS = string.digits + string.ascii_lowercase
COMMON_BASES = (2, 8, 10, 16)
_PREFIXES = {2: "0b", 8: "0o", 16: "0x"}
MAX_ANSWER_CHARS = 200


def to_base(n: int, base: int) -> str:
    """``n`` (>= 0) written in ``base`` with lowercase digits."""
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, base)
        out.append(DIGITS[r])
    return "".join(reversed(out))


@dataclass(frozen=True)
class BaseConversionConfig(GeneratorConfig):
    """Knobs left as None follow the difficulty: larger numbers, then unusual bases."""

    max_bits: int | None = field(default=None, metadata={"help": "Largest number as a bit count (default: 4 + 4 * difficulty)."})
    bases: tuple[int, ...] | None = field(default=None, metadata={"help": "Bases to draw from (default: 2/8/10/16 up to level 4, then 2-36)."})

    def resolved(self) -> tuple[int, tuple[int, ...]]:
        """``(max_bits, bases)`` after the difficulty defaults."""
        bits = self.max_bits if self.max_bits is not None else 4 + 4 * self.difficulty
        bases = self.bases if self.bases is not None else (COMMON_BASES if self.difficulty <= 4 else tuple(range(2, 37)))
        return bits, tuple(bases)

    def validate(self) -> None:
        super().validate()
        bits, bases = self.resolved()
        if not 2 <= bits <= 128:
            raise ConfigError("max_bits", f"must be from 2 to 128, got {bits}")
        if len(set(bases)) < 2 or any(not 2 <= b <= 36 for b in bases):
            raise ConfigError("bases", f"need at least two distinct bases from 2 to 36, got {bases!r}")


class BaseConversionGenerator(TaskGenerator):
    """Convert a number between bases 2-36; judged by value, so case and 0x/0b/0o prefixes are fine."""

    name = "base_conversion"
    config_class = BaseConversionConfig

    def generate(self, rng: np.random.Generator) -> Problem:
        bits, bases = self.config.resolved()  # type: ignore[attr-defined]
        src, dst = (int(b) for b in rng.choice(sorted(set(bases)), size=2, replace=False))
        n = int.from_bytes(rng.bytes((bits + 7) // 8), "big") % (2**bits - 1) + 1  # 1 .. 2**bits - 1
        return Problem(
            question=(
                f"Convert the base-{src} number {to_base(n, src)} to base {dst}. "
                f"Digits above 9 are the letters a-z. Answer with the base-{dst} digits only."
            ),
            answer=to_base(n, dst),
            metadata={"base": dst, "from_base": src, "value": str(n)},
        )

    def make_verifier(self) -> Verifier:
        return BaseDigitsVerifier()


class BaseDigitsVerifier(Verifier):
    """Right when the answer, read in ``base``, has the reference's value (case, prefix, ``_`` and spaces ignored)."""

    name = "base_digits"
    inline = True  # microseconds in-process: scored without a thread hop
    item_kwargs = ("base",)

    def __init__(self, extractors: tuple[str, ...] = ("answer_tag", "boxed", "final_answer", "whole")) -> None:
        self.extractors = check_order("extractors", extractors)

    def _score(self, completion: str, reference: Any, base: int = 10, **kw: Any) -> Score:
        if not isinstance(base, int) or not 2 <= base <= 36:
            return Score.failed("error", f"base must be an integer from 2 to 36, got {base!r}")
        answer, _ = extract(completion, self.extractors)
        if answer is None:
            return Score.failed("no_answer", "no answer found")
        text = answer.strip().lower().replace("_", "").replace(" ", "")
        if text.startswith(_PREFIXES.get(base, "\0")):
            text = text[2:]
        if len(text) > MAX_ANSWER_CHARS:
            return Score.failed("parse_error", f"answer longer than {MAX_ANSWER_CHARS} digits", parsed=text[:100])
        try:
            got = int(text, base)
            want = int(str(reference), base)
        except ValueError:
            return Score.failed("parse_error", f"not a base-{base} number", parsed=text)
        return Score.right(text, f"base {base}") if got == want else Score.wrong(text, f"{text} is not {reference} in base {base}")


register_generator(BaseConversionGenerator)
register_env(
    "rlvr/BaseConversion-v0",
    "rlvr.envs.procedural:ProceduralEnv",
    kwargs={"generator": "base_conversion"},
    description=BaseConversionGenerator.description(),
)

__all__ = ["BaseConversionConfig", "BaseConversionGenerator", "BaseDigitsVerifier", "to_base"]
