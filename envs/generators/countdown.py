"""Countdown: reach a target number with the given numbers and + - * / (TinyZero's task).

Answers are checked by :class:`CountdownVerifier`, which parses the expression with ``ast`` and
evaluates only integer literals and the four operators itself, with ``Fraction`` — model text is
never passed to ``eval`` (reasoning-gym's countdown scorer does exactly that).
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from rlvr.envs.generators.base import GeneratorConfig, Problem, TaskGenerator, register_generator
from rlvr.envs.registry import register_env
from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.verifiers import Score, Verifier
from rlvr.verifiers.extract import check_order, extract

MAX_EXPRESSION_CHARS = 300
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_UNICODE_OPS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})


@dataclass(frozen=True)
class CountdownConfig(GeneratorConfig):
    """Knobs left as None follow the difficulty: more numbers, larger numbers and targets."""

    count: int | None = field(default=None, metadata={"help": "How many numbers (default: 3 at levels 1-3, up to 6 at 9-10)."})
    max_number: int | None = field(default=None, metadata={"help": "Largest given number (default: 10 * difficulty, at least 20)."})
    max_target: int | None = field(default=None, metadata={"help": "Largest target (default: 100 * difficulty)."})
    use_all: bool = field(default=True, metadata={"help": "Every number must be used exactly once (else at most once)."})

    def resolved(self) -> tuple[int, int, int]:
        """``(count, max_number, max_target)`` after applying the difficulty defaults."""
        d = self.difficulty
        count = self.count if self.count is not None else (3 if d <= 3 else 4 if d <= 6 else 5 if d <= 8 else 6)
        max_number = self.max_number if self.max_number is not None else max(20, 10 * d)
        max_target = self.max_target if self.max_target is not None else 100 * d
        return count, max_number, max_target

    def validate(self) -> None:
        super().validate()
        count, max_number, max_target = self.resolved()
        if not 2 <= count <= 8:
            raise ConfigError("count", f"must be from 2 to 8, got {count}")
        if not 2 <= max_number <= 10_000:
            raise ConfigError("max_number", f"must be from 2 to 10000, got {max_number}")
        if not 1 <= max_target <= 10**9:
            raise ConfigError("max_target", f"must be from 1 to 1e9, got {max_target}")


class CountdownGenerator(TaskGenerator):
    """Countdown: combine the given numbers with + - * / to hit the target exactly."""

    name = "countdown"
    config_class = CountdownConfig

    def generate(self, rng: np.random.Generator) -> Problem:
        count, max_number, max_target = self.config.resolved()  # type: ignore[attr-defined]
        use_all = self.config.use_all  # type: ignore[attr-defined]
        for _ in range(200):
            numbers = [int(x) for x in rng.integers(1, max_number + 1, size=count)]
            built = _random_expression(rng, numbers, max_target * max_number)
            if built is not None and 1 <= built[1] <= max_target:
                expr, target = built
                break
        else:  # every number added up always reaches a valid target
            numbers = [int(x) for x in rng.integers(1, max(2, max_target // count) + 1, size=count)]
            expr, target = " + ".join(map(str, numbers)), sum(numbers)
        rule = "each number exactly once" if use_all else "each number at most once"
        return Problem(
            question=(
                f"Using the numbers {numbers}, write an arithmetic expression that equals {target}. "
                f"You may use +, -, *, / and parentheses, and must use {rule}. Answer with the expression only."
            ),
            answer={"target": int(target), "numbers": numbers, "use_all": bool(use_all)},
            metadata={"solution": expr},
        )

    def make_verifier(self) -> Verifier:
        return CountdownVerifier()

    def solution(self, task: Task) -> str:
        return str(task.metadata["solution"])


def _random_expression(rng: np.random.Generator, numbers: list[int], cap: int) -> tuple[str, int] | None:
    """Combine all ``numbers`` at random into one expression with a positive integer value."""
    pool: list[tuple[str, Fraction]] = [(str(n), Fraction(n)) for n in numbers]
    while len(pool) > 1:
        i, j = (int(k) for k in rng.choice(len(pool), size=2, replace=False))
        (ea, a), (eb, b) = pool[i], pool[j]
        if a < b:
            (ea, a), (eb, b) = (eb, b), (ea, a)
        options = [("+", a + b)]
        if a - b > 0:
            options.append(("-", a - b))
        if a * b <= cap:
            options.append(("*", a * b))
        if b > 1 and (a / b).denominator == 1:
            options.append(("/", a / b))
        op, value = options[int(rng.integers(len(options)))]
        for k in sorted((i, j), reverse=True):
            pool.pop(k)
        pool.append((f"({ea} {op} {eb})", value))
    expr, value = pool[0]
    if value.denominator != 1:
        return None
    if expr.startswith("(") and expr.endswith(")"):
        expr = expr[1:-1]
    return expr, int(value)


class CountdownVerifier(Verifier):
    """Right when the answer is an expression over the given numbers that equals the target.

    Reference: ``{"target": int, "numbers": [int, ...], "use_all": bool}``. Only integer literals,
    ``+ - * /`` and parentheses are accepted (``×``/``÷`` are read as ``*``/``/``); a trailing
    ``= target`` is ignored. Parsing uses ``ast`` on at most 300 characters; evaluation is exact.
    """

    name = "countdown"
    inline = True  # microseconds in-process: scored without a thread hop

    def __init__(self, extractors: tuple[str, ...] = ("answer_tag", "boxed", "final_answer", "whole")) -> None:
        self.extractors = check_order("extractors", extractors)

    def _score(self, completion: str, reference: Any, **kw: Any) -> Score:
        if not isinstance(reference, dict) or "target" not in reference or "numbers" not in reference:
            return Score.failed("error", "reference must be {'target': int, 'numbers': [...]}")
        answer, _ = extract(completion, self.extractors)
        if answer is None:
            return Score.failed("no_answer", "no expression found")
        text = answer.translate(_UNICODE_OPS).split("=")[0].strip()
        if len(text) > MAX_EXPRESSION_CHARS:
            return Score.failed("parse_error", f"expression longer than {MAX_EXPRESSION_CHARS} characters", parsed=text[:200])
        try:
            used, value = _safe_eval(ast.parse(text, mode="eval").body)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            return Score.failed("parse_error", f"not an expression over + - * / and integers: {e}"[:300], parsed=text[:200])
        except ZeroDivisionError:
            return Score.wrong(text, "division by zero")
        have, need = Counter(used), Counter(int(n) for n in reference["numbers"])
        if reference.get("use_all", True) and have != need:
            return Score.wrong(text, f"uses {sorted(used)}, must use each of {sorted(need.elements())} exactly once")
        if have - need:
            return Score.wrong(text, f"uses numbers not given: {sorted((have - need).elements())}")
        if value != int(reference["target"]):
            return Score.wrong(text, f"evaluates to {value}, not {reference['target']}")
        return Score.right(text, "reaches the target")


def _safe_eval(node: ast.AST) -> tuple[list[int], Fraction]:
    """Numbers used and exact value of an expression tree of integer literals and + - * /."""
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        return [node.value], Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        lu, lv = _safe_eval(node.left)
        ru, rv = _safe_eval(node.right)
        op = _OPS[type(node.op)]
        value = lv + rv if op == "+" else lv - rv if op == "-" else lv * rv if op == "*" else lv / rv
        return lu + ru, value
    raise ValueError(f"{type(node).__name__} is not allowed")


register_generator(CountdownGenerator)
register_env(
    "rlvr/Countdown-v0",
    "rlvr.envs.procedural:ProceduralEnv",
    kwargs={"generator": "countdown"},
    description=CountdownGenerator.description(),
)

__all__ = ["CountdownConfig", "CountdownGenerator", "CountdownVerifier"]
