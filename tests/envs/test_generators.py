"""Procedural generators: reproducible, difficulty-scaled, correct references, safe verifiers."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
import sympy
from sympy.parsing.sympy_parser import implicit_multiplication_application, parse_expr, standard_transformations

import rlvr.envs as E
from rlvr.envs import ProceduralSource, get_generator
from rlvr.envs.generators.base_conversion import BaseDigitsVerifier
from rlvr.envs.generators.countdown import CountdownVerifier
from rlvr.errors import ConfigError

GENERATORS = ["arithmetic", "countdown", "linear_equation", "letter_counting", "base_conversion", "guess_number"]


def test_all_generators_are_registered():
    assert set(GENERATORS) <= set(E.generator_names())


@pytest.mark.parametrize("name", GENERATORS)
def test_a_task_is_reproducible_from_seed_and_index(name):
    a, b = ProceduralSource(name, seed=3), ProceduralSource(name, seed=3)
    assert [a.get(i) for i in range(20)] == [b.get(i) for i in range(20)]
    assert len({(a.get(i).prompt, str(a.get(i).reference)) for i in range(20)}) > 5
    assert a.get(0) != ProceduralSource(name, seed=4).get(0)


@pytest.mark.parametrize("name", GENERATORS)
def test_every_difficulty_level_generates_valid_tasks(name):
    gen = get_generator(name)
    for d in range(1, gen.config.max_difficulty + 1):
        src = ProceduralSource(name, difficulty=d, seed=1)
        for i in range(10):
            t = src.get(i)
            assert isinstance(t.prompt, str) and t.prompt
            assert t.metadata["difficulty"] == d


@pytest.mark.parametrize("name", [g for g in GENERATORS if g != "guess_number"])
def test_generated_reference_solutions_verify_as_correct(name):
    gen = get_generator(name)
    verifier = gen.make_verifier()
    for d in (1, 4, 7, 10):
        src = ProceduralSource(name, difficulty=d, seed=2)
        for i in range(15):
            t = src.get(i)
            row = {"completion": f"<answer>{gen.solution(t)}</answer>", verifier.reference_key: t.reference}
            row.update({k: t.metadata[k] for k in verifier.item_kwargs if k in t.metadata})
            assert verifier.score_many([row])[0].correct, (name, d, t)


def test_higher_difficulty_means_bigger_problems():
    def digits(src):
        return max(len(n) for i in range(30) for n in re.findall(r"\d+", src.get(i).prompt.split("?")[0]))

    assert digits(ProceduralSource("arithmetic", difficulty=1)) < digits(ProceduralSource("arithmetic", difficulty=9))
    easy = ProceduralSource("countdown", difficulty=1).get(0).reference
    hard = ProceduralSource("countdown", difficulty=10).get(0).reference
    assert len(easy["numbers"]) < len(hard["numbers"])


def test_arithmetic_answers_match_an_independent_evaluation():
    src = ProceduralSource("arithmetic", difficulty=10, seed=9)
    for i in range(50):
        t = src.get(i)
        assert sympy.Integer(sympy.sympify(t.metadata["expression"])) == int(t.reference)


def test_linear_equation_roots_satisfy_their_equations():
    tr = standard_transformations + (implicit_multiplication_application,)
    for d in (1, 5, 8, 10):
        src = ProceduralSource("linear_equation", difficulty=d, seed=4)
        for i in range(30):
            t = src.get(i)
            var = sympy.Symbol(t.metadata["variable"])
            lhs, rhs = (parse_expr(side, transformations=tr, local_dict={str(var): var}) for side in t.metadata["equation"].split("="))
            root = Fraction(t.reference)
            assert sympy.simplify(lhs.subs(var, sympy.Rational(root.numerator, root.denominator)) - rhs.subs(var, sympy.Rational(root.numerator, root.denominator))) == 0


def test_letter_counting_answer_is_the_true_count():
    src = ProceduralSource("letter_counting", difficulty=6)
    for i in range(30):
        t = src.get(i)
        assert int(t.reference) == t.metadata["text"].count(t.metadata["letter"])


def test_bad_generator_config_is_one_clear_error_naming_the_field():
    with pytest.raises(ConfigError, match="difficulty"):
        get_generator("arithmetic", difficulty=11)
    with pytest.raises(ConfigError, match="operators"):
        get_generator("arithmetic", operators=("^",))
    with pytest.raises(ConfigError, match="did you mean 'digits'"):
        get_generator("arithmetic", {"digit": 3})
    with pytest.raises(ConfigError, match="did you mean 'countdown'"):
        get_generator("countdwn")
    with pytest.raises(ConfigError, match="bases"):
        get_generator("base_conversion", bases=(10,))


def test_config_knobs_override_the_difficulty_defaults():
    gen = get_generator("arithmetic", difficulty=9, operators=("+",), digits=2, max_terms=2)
    src = ProceduralSource(gen)
    for i in range(20):
        expr = src.get(i).metadata["expression"]
        assert re.fullmatch(r"\d{1,2} \+ \d{1,2}", expr)


COUNTDOWN = {"target": 24, "numbers": [4, 6, 1], "use_all": True}


@pytest.mark.parametrize(
    "answer, correct",
    [
        ("<answer>4 * 6 * 1</answer>", True),
        ("<answer>(6 - 1) * 4 + 4</answer>", False),  # 4 used twice
        ("<answer>4 × 6 ÷ 1</answer>", True),
        ("<answer>4 * 6 * 1 = 24</answer>", True),
        ("<answer>24</answer>", False),
        ("<answer>4 * 6</answer>", False),  # must use every number
        ("<answer>4 * 6 / (1 - 1)</answer>", False),  # division by zero is wrong, not a crash
    ],
)
def test_countdown_verifier_judges_expressions(answer, correct):
    assert CountdownVerifier().score(answer, COUNTDOWN).correct is correct


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch /tmp/rlvr_pwned')",
        "(lambda: 24)()",
        "[24][0]",
        "4 ** 6",
        "x",
        "9" * 400,
        "(" * 150 + "1" + ")" * 150,
    ],
)
def test_countdown_verifier_never_evaluates_model_code(payload, tmp_path):
    s = CountdownVerifier().score(f"<answer>{payload}</answer>", COUNTDOWN)
    assert s.correct is not True and s.status in ("parse_error", "wrong")
    import os

    assert not os.path.exists("/tmp/rlvr_pwned")


def test_base_digits_verifier_judges_by_value():
    v = BaseDigitsVerifier()
    for answer in ("ff", "FF", "0xff", "f f"):
        assert v.score_many([{"completion": f"<answer>{answer}</answer>", "answer": "ff", "base": 16}])[0].correct
    assert not v.score_many([{"completion": "<answer>fe</answer>", "answer": "ff", "base": 16}])[0].correct
    assert v.score_many([{"completion": "<answer>zz</answer>", "answer": "ff", "base": 16}])[0].status == "parse_error"
