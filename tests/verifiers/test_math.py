"""MathVerifier: one test group per answer kind, statuses, extraction, strict mode, caching."""

import subprocess
import sys

import pytest

from rlvr.errors import ConfigError
from rlvr.verifiers import MathVerifier, get_verifier
from rlvr.verifiers.math import prepare_gold


class FastOnly(MathVerifier):
    """Test double: any item that reaches the sympy path is scored as an error."""

    isolated = False

    def _score(self, completion, reference, **kw):
        raise AssertionError("reached the sympy path")


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(timeout=20)
    yield v
    v.close()


def check(verifier, cases):
    rows = [{"completion": f"... so the answer is \\boxed{{{pred}}}.", "answer": gold} for gold, pred, _ in cases]
    scores = verifier.score_many(rows, workers=2)
    got = [(gold, pred, s.correct) for (gold, pred, _), s in zip(cases, scores)]
    assert got == [(gold, pred, expected) for gold, pred, expected in cases]


def test_integers(verifier):
    check(verifier, [("42", "42", True), ("42", "43", False), ("1000", "1,000", True), ("1000", "1\\,000", True),
                     ("-7", "-7", True), ("-7", "7", False), ("12", "1 2", False), ("1024", "2^{10}", True)])


def test_decimals_and_fractions(verifier):
    check(verifier, [("0.5", "\\frac{1}{2}", True), ("\\frac{1}{2}", "0.51", False), ("\\frac12", "\\dfrac{2}{4}", True),
                     ("-\\frac{3}{4}", "\\frac{-3}{4}", True), ("\\frac{1}{3}", "0.333333", True), ("\\frac{1}{3}", "0.33", False),
                     ("\\frac{1}{3}", "0.\\overline{3}", True), ("1.5", "1\\frac{1}{2}", True)])


def test_percentages(verifier):
    check(verifier, [("50\\%", "50", True), ("50\\%", "0.5", True), ("0.25", "25\\%", True), ("50\\%", "5\\%", False),
                     ("50\\%", "0.5\\%", False)])


def test_scientific_notation(verifier):
    check(verifier, [("1500", "1.5e3", True), ("1500", "1.5\\times10^{3}", True), ("1500", "1.5\\times10^{4}", False),
                     ("0.0003", "3\\times 10^{-4}", True), ("1e-9", "2e-9", False)])


def test_expressions(verifier):
    check(verifier, [("2\\sqrt{3}", "\\sqrt{12}", True), ("2\\sqrt{3}", "3\\sqrt{2}", False), ("x^2+2x+1", "(x+1)^2", True),
                     ("x^2-9", "(x-3)^2", False), ("\\frac{\\pi}{4}", "\\pi/4", True), ("3x-2", "3y-2", False)])


def test_equations(verifier):
    check(verifier, [("y=2x+1", "y=1+2x", True), ("x=3", "3", True), ("x=3", "y=3", False), ("2x+3y=6", "4x+6y=12", True)])


def test_intervals_open_and_closed_differ(verifier):
    check(verifier, [("[1,2)", "[1,2)", True), ("[1,2)", "[1,2]", False), ("(0,1)", "[0,1]", False),
                     ("(-\\infty, 3]", "x \\le 3", True), ("[1,2]\\cup[3,4]", "[3,4]\\cup[1,2]", True)])


def test_sets_ignore_order_and_tuples_keep_it(verifier):
    check(verifier, [("\\{1,2,3\\}", "\\{3,2,1\\}", True), ("\\{1,2,3\\}", "\\{1,2\\}", False), ("(1,2)", "(2,1)", False),
                     ("(1,2,3)", "(1,2,3)", True), ("(1,2,3)", "(3,2,1)", False), ("\\{\\sqrt{2}, 1\\}", "\\{1, \\sqrt{2}\\}", True)])


def test_matrices(verifier):
    m = "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"
    check(verifier, [(m, "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", True), (m, "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", False),
                     ("\\begin{pmatrix}2\\sqrt{2}\\\\1\\end{pmatrix}", "\\begin{pmatrix}\\sqrt{8}\\\\1\\end{pmatrix}", True)])


def test_units_are_stripped_where_safe(verifier):
    check(verifier, [("5", "5\\text{ cm}", True), ("5", "5 dollars", True), ("30", "30^\\circ", True), ("12", "12 square units", True),
                     ("5", "\\$5.00", True), ("5", "5\\text{ million}", False), ("5000000", "5 million", True)])


def test_statuses(verifier):
    scores = verifier.score_many([
        {"completion": "\\boxed{4}", "answer": "4"},
        {"completion": "\\boxed{5}", "answer": "4"},
        {"completion": "I have no idea.", "answer": "4"},
        {"completion": "\\boxed{@@@}", "answer": "\\sqrt{2}"},
        {"completion": "\\boxed{4}", "answer": {"not": "a reference"}},
    ])
    assert [s.status for s in scores] == ["ok", "wrong", "no_answer", "parse_error", "error"]
    assert [s.correct for s in scores] == [True, False, False, False, None]
    assert [s.reward for s in scores] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert scores[3].parsed == "@@@"


def test_extractor_order_and_fallbacks(verifier):
    assert verifier.score("First \\boxed{10}, then \\boxed{12}", "12").correct is False  # two different boxed answers
    assert verifier.score("So \\boxed{12}. Check: \\boxed{12}", "12").correct is True
    assert verifier.score("<answer>12</answer>", "12").detail.endswith("(via answer_tag)")
    assert verifier.score("Final answer: 12", "12").correct is True
    assert verifier.score("3 * 4 = 12", "12").detail.endswith("(via expression)")
    assert verifier.score("so there are 12 apples in all", "12").detail.endswith("(via last_number)")
    assert verifier.score("Since $x = 3$, the total is 12.", "12").correct is True


def test_strict_mode_needs_a_boxed_or_tagged_answer():
    strict = MathVerifier(strict=True)
    assert strict.score("The answer is 12", "12").status == "no_answer"
    assert strict.score("so \\boxed{12}", "12").correct is True
    assert strict.score("<answer>12</answer>", "12").correct is True


def test_extractors_are_configurable():
    only_last_number = MathVerifier(extractors=["last_number"])
    assert only_last_number.score("\\boxed{12} and then 13", "13").correct is True


@pytest.mark.parametrize(
    "kwargs,field",
    [({"extractors": ["nope"]}, "extractors"), ({"strict": True, "extractors": ["last_number"]}, "extractors"),
     ({"timeout": 0}, "timeout"), ({"workers": 0}, "workers")],
)
def test_bad_configuration_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as e:
        MathVerifier(**kwargs)
    assert e.value.field == field


def test_registered_as_math():
    assert isinstance(get_verifier("math", strict=True), MathVerifier)


def test_a_list_of_references_accepts_any_of_them(verifier):
    assert verifier.score("\\boxed{0.5}", ["\\sqrt{2}", "\\frac{1}{2}"]).correct is True
    assert verifier.score("\\boxed{3}", [1, 2]).correct is False


def test_simple_numeric_answers_never_reach_sympy():
    v = FastOnly()
    golds = ["42", "-1,234", "\\frac{3}{4}", "12.5\\%", "1.5\\times10^{3}", "\\{1,2\\}", "[0,1)", "x^2-1"]
    preds = ["42", "-1234", "0.75", "0.125", "1500", "\\{2,1\\}", "[0,1)", "(x-1)(x+1)",
             "43", "1234", "\\dfrac{3}{5}", "12", "1.5e4", "\\{1,3\\}", "(0,1)", "(x-1)^2"]
    rows = [{"completion": f"Thus \\boxed{{{p}}}", "answer": golds[i % len(golds)]} for i, p in enumerate(preds)]
    scores = v.score_many(rows)
    assert [s.status for s in scores] == ["ok"] * 8 + ["wrong"] * 8


def test_the_gold_answer_is_parsed_once_per_group():
    gold = "\\frac{123}{457}"  # unique to this test
    before = prepare_gold.cache_info()
    FastOnly().score_many([{"completion": f"\\boxed{{{p}}}", "answer": gold} for p in ["1/2", "123/457", "0.3"] * 3])
    after = prepare_gold.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits >= 8


def test_the_worker_caches_parsed_answers():
    from rlvr.verifiers import math_sympy

    math_sympy.equivalent("\\sqrt{5}+1", "1+\\sqrt{5}")
    before = math_sympy._parse_cached.cache_info()
    assert math_sympy.equivalent("\\sqrt{5}+1", "2\\sqrt{5}") is False
    after = math_sympy._parse_cached.cache_info()
    assert after.misses - before.misses == 1  # only the new prediction was parsed


def test_importing_the_verifiers_does_not_import_sympy():
    code = "import sys, rlvr.verifiers; print('sympy' in sys.modules or 'math_verify' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
