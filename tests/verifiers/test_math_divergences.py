"""Each divergence from math-verify listed in rlvr.verifiers.math, pinned: our verdict, the
generator's truth, and math-verify's own (default) verdict on the same pair."""

import logging

import pytest
from math_verify import parse, verify

import rlvr.verifiers.math as math_module
from rlvr.verifiers import MathVerifier

logging.getLogger("math_verify").setLevel(logging.ERROR)

# name -> (gold, completion, right?); math-verify's verdict is the opposite of "right?"
CASES = {
    "answer-tag": [("852", "Adding up the parts.\n\n<answer>852</answer>", True)],
    "undelimited": [
        ("\\frac{2}{5}", "We simplify.\n\nFinal answer: \\dfrac{8}{20}", True),
        ("(4, 7, 1)", "Collecting coordinates.\n\nFinal answer: (4,7,1)", True),
        ("y = 3x + 2", "The slope is 3.\n\nFinal answer: y=3x+2", True),
    ],
    "percent-reading": [("2", "So \\boxed{200\\%}", False), ("45", "So \\boxed{4500\\%}", False)],
    "decimal-rounding": [
        ("\\frac{1}{2}", "So \\boxed{0.4999999}", False),
        ("45.25", "So \\boxed{45.2499999}", False),
    ],
    "value-words": [("4", "So \\boxed{2 \\text{ squared}}", True), ("2", "So \\boxed{2 \\text{ squared}}", False)],
    "hedges": [("1", "So \\boxed{1 \\text{ or more}}", False), ("2", "The final answer is 2 or 3", False)],
    "relations": [("2", "So \\boxed{100 \\equiv 2}", False), ("2", "So \\boxed{5 \\to 2}", False)],
    "several-boxed": [("1, -2", "The integers are \\boxed{-2} and \\boxed{1}.", False)],
    "notation": [("1500", "So \\boxed{1.5e3}", True), ("1000", "So \\boxed{1\\,000}", True)],
}


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(timeout=30)
    yield v
    v.close()


def test_every_listed_divergence_has_cases_here():
    listed = {name for name in CASES}
    for name in listed | {"too-big", "set-relation"}:
        assert f"``{name}``" in math_module.__doc__


@pytest.mark.parametrize("name,gold,completion,right", [(n, *c) for n, cs in CASES.items() for c in cs])
def test_divergence_is_deliberate(verifier, name, gold, completion, right):
    ours = verifier.score(completion, gold)
    assert ours.correct is right, (name, ours)
    assert bool(verify(parse(f"${gold}$"), parse(completion))) is (not right), f"math-verify now agrees on {name}: drop it from the list"


def test_too_big_is_refused_fast_where_math_verify_grinds(verifier):
    s = verifier.score("So \\boxed{(x+1)^{100000}}", "1")
    assert s.status == "parse_error" and "refused" in s.detail


def test_set_relation_inequality_equals_its_interval(verifier):
    assert verifier.score("So \\boxed{x \\le 3}", "(-\\infty, 3]").correct is True
