"""Linear equations in one unknown: ``3x + 7 = 22`` up to ``-4(y - 3) = 7y + 5`` with fractional roots."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from rlvr.envs.generators.base import GeneratorConfig, Problem, TaskGenerator, register_generator
from rlvr.envs.registry import register_env
from rlvr.errors import ConfigError

FORMS = ("one_side", "both_sides", "parentheses")
VARIABLES = "xyzntmk"


@dataclass(frozen=True)
class LinearEquationConfig(GeneratorConfig):
    """Knobs left as None follow the difficulty: bigger coefficients, both sides, parentheses, fractions."""

    max_coefficient: int | None = field(default=None, metadata={"help": "Largest |coefficient| (default: 5 + 5 * difficulty)."})
    forms: tuple[str, ...] | None = field(default=None, metadata={"help": f"Equation shapes from {FORMS} (default grows with difficulty)."})
    fractional: bool | None = field(default=None, metadata={"help": "Allow non-integer solutions like -7/2 (default: from level 8)."})
    random_variable: bool | None = field(default=None, metadata={"help": "Use letters other than x (default: from level 5)."})

    def resolved(self) -> tuple[int, tuple[str, ...], bool, bool]:
        """``(max_coefficient, forms, fractional, random_variable)`` after the difficulty defaults."""
        d = self.difficulty
        coeff = self.max_coefficient if self.max_coefficient is not None else 5 + 5 * d
        forms = self.forms if self.forms is not None else (FORMS[:1] if d <= 3 else FORMS[:2] if d <= 6 else FORMS)
        fractional = self.fractional if self.fractional is not None else d >= 8
        variable = self.random_variable if self.random_variable is not None else d >= 5
        return coeff, tuple(forms), bool(fractional), bool(variable)

    def validate(self) -> None:
        super().validate()
        coeff, forms, _, _ = self.resolved()
        if not 2 <= coeff <= 10**6:
            raise ConfigError("max_coefficient", f"must be from 2 to 1e6, got {coeff}")
        if not forms or any(f not in FORMS for f in forms):
            raise ConfigError("forms", f"must be a non-empty subset of {FORMS}, got {forms!r}")


class LinearEquationGenerator(TaskGenerator):
    """Solve a linear equation in one unknown; the answer is the exact value (integer or fraction)."""

    name = "linear_equation"
    config_class = LinearEquationConfig

    def generate(self, rng: np.random.Generator) -> Problem:
        coeff, forms, fractional, random_variable = self.config.resolved()  # type: ignore[attr-defined]
        var = VARIABLES[int(rng.integers(len(VARIABLES)))] if random_variable else "x"
        form = forms[int(rng.integers(len(forms)))]

        def nz(limit: int) -> int:
            v = int(rng.integers(1, limit + 1))
            return v if rng.random() < 0.7 else -v

        q = int(rng.integers(2, 6)) if fractional and rng.random() < 0.6 else 1
        p = int(rng.integers(-coeff, coeff + 1))
        root = Fraction(p, q)
        b = nz(coeff)
        if form == "one_side":
            a = q * nz(max(1, coeff // q))  # a multiple of q keeps the right side whole
            lhs, rhs = _side(a, var, b), str(int(a * root + b))
        else:
            c = nz(coeff)
            k = q * nz(max(1, coeff // q))  # a - c, a multiple of q
            a = c + k
            if a == 0:
                a, c = c + 2 * k, c + k
            if form == "both_sides":
                d = int(k * root + b)
                lhs, rhs = _side(a, var, b), _side(c, var, d)
            else:  # a(var + b) = c var + d  =>  d = (a - c) root + a b
                d = int(k * root + a * b)
                lhs = f"{a if a not in (1, -1) else '-' if a == -1 else ''}({var}{_const(b)})"
                rhs = _side(c, var, d)
        answer = str(root.numerator) if root.denominator == 1 else f"{root.numerator}/{root.denominator}"
        return Problem(
            question=f"Solve for {var}: {lhs} = {rhs}. Give the exact value of {var} (a fraction if it is not whole).",
            answer=answer,
            metadata={"equation": f"{lhs} = {rhs}", "variable": var, "form": form},
        )


def _side(coef: int, var: str, const: int) -> str:
    """``coef·var + const`` written the usual way (``3x - 7``, ``-x``, ``5``)."""
    return str(const) if coef == 0 else f"{_term(coef, var)}{_const(const)}"


def _term(a: int, var: str) -> str:
    return var if a == 1 else f"-{var}" if a == -1 else f"{a}{var}"


def _const(b: int) -> str:
    return "" if b == 0 else f" + {b}" if b > 0 else f" - {-b}"


register_generator(LinearEquationGenerator)
register_env(
    "rlvr/LinearEquation-v0",
    "rlvr.envs.procedural:ProceduralEnv",
    kwargs={"generator": "linear_equation"},
    description=LinearEquationGenerator.description(),
)

__all__ = ["LinearEquationConfig", "LinearEquationGenerator"]
