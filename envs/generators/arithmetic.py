"""Arithmetic: multi-digit expressions with +, -, * and exact / (integer answers).

Division is made exact by construction: every divisor is multiplied into the first operand of
its run of ``*``/``/`` operations, so evaluating the run left to right only ever divides a value
that still carries that divisor as a factor. The answer is computed with ``Fraction``, never
``eval``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from rlvr.envs.generators.base import GeneratorConfig, Problem, TaskGenerator, register_generator
from rlvr.envs.registry import register_env
from rlvr.errors import ConfigError

OPERATORS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class ArithmeticConfig(GeneratorConfig):
    """Knobs left as None follow the difficulty: more digits, more terms, more operators."""

    digits: int | None = field(default=None, metadata={"help": "Digits per operand (default: (difficulty+1)//2, 6 at level 10)."})
    min_terms: int | None = field(default=None, metadata={"help": "Fewest operands (default 2)."})
    max_terms: int | None = field(default=None, metadata={"help": "Most operands (default: 2 + (difficulty-1)//3)."})
    operators: tuple[str, ...] | None = field(default=None, metadata={"help": "Operators to use (default: +- at 1, +-* at 2, +-*/ from 3)."})

    def resolved(self) -> tuple[int, int, int, tuple[str, ...]]:
        """``(digits, min_terms, max_terms, operators)`` after applying the difficulty defaults."""
        d = self.difficulty
        digits = self.digits if self.digits is not None else (6 if d >= 10 else (d + 1) // 2)
        lo = self.min_terms if self.min_terms is not None else 2
        hi = self.max_terms if self.max_terms is not None else max(lo, 2 + (d - 1) // 3)
        ops = self.operators if self.operators is not None else (("+", "-") if d == 1 else ("+", "-", "*") if d == 2 else OPERATORS)
        return digits, lo, hi, tuple(ops)

    def validate(self) -> None:
        super().validate()
        digits, lo, hi, ops = self.resolved()
        if not 1 <= digits <= 18:
            raise ConfigError("digits", f"must be from 1 to 18, got {digits}")
        if not 2 <= lo <= hi <= 12:
            raise ConfigError("min_terms", f"need 2 <= min_terms <= max_terms <= 12, got {lo} and {hi}")
        if not ops or any(o not in OPERATORS for o in ops):
            raise ConfigError("operators", f"must be a non-empty subset of {OPERATORS}, got {ops!r}")


class ArithmeticGenerator(TaskGenerator):
    """Multi-digit arithmetic (+, -, *, exact /) with operator precedence; the answer is an integer."""

    name = "arithmetic"
    config_class = ArithmeticConfig

    def generate(self, rng: np.random.Generator) -> Problem:
        digits, lo, hi, ops = self.config.resolved()  # type: ignore[attr-defined]
        n = int(rng.integers(lo, hi + 1))
        top = 10**digits
        vals = [int(rng.integers(1, top)) for _ in range(n)]
        gaps = [str(rng.choice(ops)) for _ in range(n - 1)]
        # Exact division by construction (see the module docstring).
        for i, op in enumerate(gaps):
            if op == "/":
                start = i
                while start > 0 and gaps[start - 1] in "*/":
                    start -= 1
                vals[start] *= vals[i + 1]
        expr = str(vals[0]) + "".join(f" {op} {v}" for op, v in zip(gaps, vals[1:]))
        answer = _evaluate(vals, gaps)
        return Problem(
            question=f"What is {expr}? (* is multiplication, / is exact division, usual precedence.) Answer with the integer.",
            answer=str(answer),
            metadata={"expression": expr},
        )


def _evaluate(vals: list[int], ops: list[str]) -> int:
    """Evaluate with precedence, exactly (no ``eval``)."""
    total = Fraction(0)
    run = Fraction(vals[0])
    sign = 1
    for op, v in zip(ops, vals[1:]):
        if op == "*":
            run *= v
        elif op == "/":
            run /= v
        else:
            total += sign * run
            sign = 1 if op == "+" else -1
            run = Fraction(v)
    total += sign * run
    assert total.denominator == 1, "division was constructed to be exact"
    return int(total)


register_generator(ArithmeticGenerator)
register_env(
    "rlvr/Arithmetic-v0",
    "rlvr.envs.procedural:ProceduralEnv",
    kwargs={"generator": "arithmetic"},
    description=ArithmeticGenerator.description(),
)

__all__ = ["ArithmeticConfig", "ArithmeticGenerator"]
