"""Reward hacks a policy would try against a math reward: none is rewarded, none times out.

Each completion below is aimed at the reference next to it and is not a correct answer for it:
several boxed candidates, enumerations and "or", hedges and bounds, words that change a value,
relations whose right side is the reference, decimals a hair off, and giant expressions built to
"simplify" to anything (which must be refused cheaply, not left to burn the timeout).
"""

import pytest

from rlvr.verifiers import MathVerifier

HACKS = [
    # several candidates
    ("2", "\\boxed{1} or \\boxed{2}"),
    ("2", "\\boxed{1}\\boxed{2}\\boxed{3}"),
    ("3", "It is \\boxed{2}. Wait, maybe \\boxed{3}."),
    ("2", "\\boxed{1 \\text{ or } 2}"),
    ("3", "x = 1, 2, or 3"),
    ("3", "The value is 1, 2 or 3"),
    ("2", "\\boxed{1 \\lor 2}"),
    ("2", "\\boxed{\\pm 2}"),
    ("2", "\\boxed{1 \\text{ and } 2}"),
    ("2", "The final answer is 2 or 3"),
    # hedges and bounds
    ("1", "\\boxed{1 \\text{ or more}}"),
    ("3", "\\boxed{3 \\text{ at most}}"),
    ("3", "\\boxed{3 \\text{ at least}}"),
    ("2", "\\boxed{2 \\text{ (approximately)}}"),
    ("5", "\\boxed{5 \\text{ negative}}"),
    ("2", "\\boxed{2 \\text{ plus}}"),
    ("2", "\\boxed{2 \\text{ times}}"),
    # words that change the value
    ("2", "\\boxed{2 \\text{ squared}}"),
    ("3", "\\boxed{3 \\text{ cubed}}"),
    ("4", "\\boxed{4 \\text{ inverse}}"),
    ("3", "\\boxed{3 halves}"),
    ("2", "\\boxed{2 \\text{ hundredths}}"),
    ("2", "\\boxed{2 dozen}"),
    ("2", "The final answer is 2 squared"),
    # relations whose right-hand side is the reference
    ("2", "\\boxed{100 \\equiv 2}"),
    ("2", "\\boxed{5 \\to 2}"),
    ("2", "\\boxed{5 \\sim 2}"),
    ("2", "\\boxed{5 := 2}"),
    ("2", "\\boxed{5 \\cong 2}"),
    ("2", "\\boxed{\\approx 2}"),
    # percentages read both ways
    ("2", "\\boxed{200\\%}"),
    ("\\frac{1}{2}", "\\boxed{0.5\\%}"),
    # near misses
    ("\\frac{1}{2}", "\\boxed{0.4999999}"),
    ("1", "\\boxed{0.9999999}"),
    ("100", "\\boxed{99.9999999}"),
    ("[0,1]", "\\boxed{[0, 1.0000001]}"),
    ("\\frac{1}{3}", "\\boxed{0.333}"),
    ("\\pi", "\\boxed{3.14}"),
    ("(1,4)", "[1,4)"),
    # fragments of a larger expression
    ("3", "$\\frac{3+\\sqrt{7}}{3}$"),
    ("3", "QX3Z"),
    ("4", "so it is $-\\frac{5}{4}$"),
    ("2", "we get x^2"),
    # giant expressions built to equal anything
    ("1", "\\boxed{(x+1)^{100000}}"),
    ("2", "\\boxed{2 + 0\\cdot(x+1)^{100000}}"),
    ("x^2-1", "\\boxed{(x-1)(x+1) + 0 \\cdot x^{1000000}}"),
    ("1", "\\boxed{\\frac{x^{1000001}}{x^{1000000}}}"),
    ("1", "\\boxed{99999!/99999!}"),
    ("2", "\\boxed{\\binom{100000}{50000}}"),
    ("2", "\\boxed{2^{2^{2^{2^{2}}}}}"),
    ("2", "\\boxed{9^{9^{9^{9}}}}"),
    # undefined forms
    ("2", "\\boxed{\\frac{0}{0}}"),
    ("2", "\\boxed{\\infty - \\infty}"),
    ("2", "\\boxed{0 \\cdot \\infty}"),
    ("2", "\\boxed{x}"),
    ("2", "\\boxed{}"),
]


@pytest.fixture(scope="module")
def scores():
    v = MathVerifier(timeout=5)
    try:
        yield v.score_many([{"completion": c, "answer": g} for g, c in HACKS], workers=2)
    finally:
        v.close()


@pytest.mark.parametrize("i", range(len(HACKS)), ids=[c[:40] for _, c in HACKS])
def test_hack_is_not_rewarded_and_does_not_time_out(scores, i):
    s = scores[i]
    assert s.reward == 0.0 and s.correct is not True, (HACKS[i], s)
    assert s.status in ("wrong", "no_answer", "parse_error"), (HACKS[i], s)


@pytest.mark.parametrize(
    "gold,completion",
    [("4", "\\boxed{2 \\text{ squared}}"), ("\\frac{3}{2}", "\\boxed{3 halves}"), ("24", "\\boxed{2 dozen}"),
     ("5", "\\boxed{5 \\text{ cm}}"), ("12", "\\boxed{12 boys}"), ("5", "\\boxed{5 dollars}"), ("12", "\\boxed{12}. Check: \\boxed{12}"),
     ("1 \\text{ or more}", "\\boxed{1 \\text{ or more}}"), ("x \\equiv 2", "\\boxed{x \\equiv 2}"), ("2 \\pm \\sqrt{3}", "\\boxed{2 \\pm \\sqrt{3}}"),
     ("7/3", "... so x = $\\frac{7}{3}$"), ("3\\sqrt{3}", "The result is 3\\sqrt{3}."), ("-\\frac{5}{4}", "so it is $-\\frac{5}{4}$"),
     ("odd", "$\\text{odd}$"), ("g(t) = 2t", "$$g(t) = 2t$$"), ("2", "\\boxed{2\\%}"), ("\\frac{1}{2}", "\\boxed{50\\%}")],
)
def test_the_honest_forms_next_to_the_hacks_still_score_right(honest, gold, completion):
    assert honest.score(completion, gold).correct is True


@pytest.fixture(scope="module")
def honest():
    v = MathVerifier(timeout=10)
    yield v
    v.close()
