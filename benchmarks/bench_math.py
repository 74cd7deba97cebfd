"""Raw math-verify vs rlvr's MathVerifier on the same generated items, in one run.

    python benchmarks/bench_math.py [--seed 0] [--group 8] [--workers 2] [--scale 1.0] [--symbolic]

For four answer kinds (boxed integers; fractions/expressions; sets/intervals/matrices; and the
fractions/expressions again, unboxed, in ``$..$``, ``\\(..\\)`` or ``\\[..\\]``) a seeded generator
writes GRPO-like groups: ``--group`` completions per prompt, each a few sentences of reasoning
ending in an answer that is right (in some equivalent form) or wrong, with the label known. Both sides score every item:

- raw:  ``verify(parse(f"${gold}$"), parse(completion))`` per item, one process, math-verify's
        default arguments (how its README calls it; the ``$`` lets it find a bare gold);
- rlvr: ``MathVerifier().score_many(items, workers=N)``.

Both are warmed up once on items from another seed (pool and workers started, parsers built)
before timing. Prints one JSON line per kind: throughput of each side, their ratio, each side's
accuracy (agreement with the generator's labels), and the share of items rlvr sent to sympy
(the rest its exact in-process rules decided).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from fractions import Fraction
from typing import Callable

Item = tuple[str, str, bool]  # (gold, completion, label)

_FILLER = (
    "Let us set up the problem carefully.",
    "We first note that {a} + {b} = {c}.",
    "Multiplying both sides by {a} gives {d}.",
    "Checking the small cases {a}, {b} and {c} confirms the pattern.",
    "So the quantity we need is determined.",
    "Substituting back, the remaining term is {b}.",
)


def _reasoning(rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    vals = {"a": a, "b": b, "c": a + b, "d": a * b}
    return " ".join(rng.choice(_FILLER).format(**vals) for _ in range(rng.randint(3, 6)))


def _completion(rng: random.Random, answer: str) -> str:
    end = rng.choice(("Therefore the answer is $\\boxed{%s}$.", "Final answer: \\boxed{%s}", "\\[\\boxed{%s}\\]"))
    return _reasoning(rng) + "\n\n" + end % answer


def _unboxed(rng: random.Random, answer: str) -> str:
    """A completion that ends in LaTeX math without \\boxed (how many models answer)."""
    end = rng.choice(("So the value is $%s$.", "Putting it together we get \\(%s\\).", "Hence\n\\[\n%s\n\\]"))
    return _reasoning(rng) + "\n\n" + end % answer


def _groups(rng: random.Random, prompts: int, group: int, make: Callable[[random.Random], tuple[str, list, list]], style: Callable = _completion) -> list[Item]:
    items: list[Item] = []
    for _ in range(prompts):
        gold, rights, wrongs = make(rng)
        for _ in range(group):
            ok = rng.random() < 0.5
            items.append((gold, style(rng, rng.choice(rights if ok else wrongs)), ok))
    return items


# ----------------------------------------------------------------------------- the three kinds
def make_integer(rng: random.Random) -> tuple[str, list, list]:
    n = rng.choice((rng.randint(0, 99), rng.randint(100, 9999), rng.randint(10_000, 2_000_000), -rng.randint(1, 500)))
    rights = [str(n), str(n), f"{n:,}"] if abs(n) >= 1000 else [str(n), str(n), f"{n}.0"]
    wrongs = [str(n + d) for d in (1, -1, 2, 10, -7)] + [str(n * 2 + 1)]
    return str(n), rights, wrongs


def _poly(a: int, b: int) -> str:
    return f"x^2{a + b:+d}x{a * b:+d}".replace("+0x", "").replace("-0x", "").replace("+0", "").replace("-0", "")


def make_expression(rng: random.Random) -> tuple[str, list, list]:
    kind = rng.randrange(4)
    if kind == 0:  # a fraction
        p, q = rng.randint(1, 40), rng.randint(2, 40)
        f = Fraction(p, q) if Fraction(p, q).denominator > 1 else Fraction(p, q + 1)
        gold = f"\\frac{{{f.numerator}}}{{{f.denominator}}}"
        k = rng.randint(2, 5)
        rights = [gold, f"{f.numerator}/{f.denominator}", f"\\dfrac{{{k * f.numerator}}}{{{k * f.denominator}}}"]
        if 10**6 % f.denominator == 0:
            rights.append(str(f.numerator / f.denominator))
        wrongs = [f"\\frac{{{f.numerator + 1}}}{{{f.denominator}}}", f"\\frac{{{f.denominator}}}{{{f.numerator}}}", f"{float(f) + 0.01:.4f}"]
    elif kind == 1:  # a surd
        a, b = rng.randint(2, 9), rng.choice((2, 3, 5, 6, 7))
        gold = f"{a}\\sqrt{{{b}}}"
        rights = [gold, f"\\sqrt{{{a * a * b}}}", f"{a} \\sqrt{{{b}}}"]
        wrongs = [f"{a + 1}\\sqrt{{{b}}}", f"\\sqrt{{{a * b}}}", f"{a}\\sqrt{{{b + 1}}}"]
    elif kind == 2:  # pi over something
        p, q = rng.randint(1, 7), rng.choice((2, 3, 4, 6, 12))
        gold = f"\\frac{{{p}\\pi}}{{{q}}}"
        rights = [gold, f"\\frac{{{p}}}{{{q}}}\\pi", f"{p}\\pi/{q}"]
        wrongs = [f"\\frac{{{p + 1}\\pi}}{{{q}}}", f"\\frac{{{p}}}{{{q}}}", f"\\frac{{{q}\\pi}}{{{p + q}}}"]
    else:  # a polynomial: expanded gold, factored or reordered predictions
        a, b = rng.randint(-6, 6), rng.randint(-6, 6)
        gold = _poly(a, b)
        rights = [gold, f"(x{a:+d})(x{b:+d})", gold.replace("x^2", "x^{2}")]
        wrongs = [_poly(a + 1, b), f"(x{-a:+d})(x{b:+d})" if a else _poly(a, b + 2), f"x^2{a + b + 1:+d}x"]
    return gold, rights, wrongs


def _set(xs: list) -> str:
    return "\\{" + ", ".join(map(str, xs)) + "\\}"


def make_structure(rng: random.Random) -> tuple[str, list, list]:
    kind = rng.randrange(5)
    if kind == 0:  # a set: order-insensitive
        xs = rng.sample(range(-20, 30), rng.randint(2, 5))
        gold = _set(xs)
        rights = [gold, _set(sorted(xs)), _set(list(reversed(xs)))]
        wrongs = [_set(xs[:-1]), _set(xs[:-1] + [xs[-1] + 1]), _set(xs + [99])]
    elif kind == 1:  # an interval: brackets matter
        a = rng.randint(-10, 5)
        b = a + rng.randint(1, 10)
        lo, hi = rng.choice("(["), rng.choice(")]")
        gold = f"{lo}{a}, {b}{hi}"
        rights = [gold, f"\\left{lo}{a},{b}\\right{hi}"]
        flip = {"(": "[", "[": "(", ")": "]", "]": ")"}
        wrongs = [f"{flip[lo]}{a}, {b}{hi}", f"{lo}{a}, {b}{flip[hi]}", f"{lo}{a}, {b + 1}{hi}"]
    elif kind == 2:  # a half-line
        a = rng.randint(-9, 9)
        gold = f"(-\\infty, {a}]"
        rights = [gold, f"\\left(-\\infty, {a}\\right]", f"x \\le {a}"]
        wrongs = [f"(-\\infty, {a})", f"[{a}, \\infty)", f"(-\\infty, {a + 1}]"]
    elif kind == 3:  # a matrix
        m = [[rng.randint(-5, 9) for _ in range(2)] for _ in range(2)]
        mat = lambda env, mm: f"\\begin{{{env}}} " + " \\\\ ".join(" & ".join(map(str, r)) for r in mm) + f" \\end{{{env}}}"
        gold = mat("pmatrix", m)
        t = [[m[0][0], m[1][0]], [m[0][1], m[1][1]]]
        bumped = [[m[0][0] + 1, m[0][1]], m[1]]
        rights = [gold, mat("bmatrix", m)]
        wrongs = [mat("pmatrix", t) if t != m else mat("pmatrix", bumped), mat("pmatrix", bumped)]
    else:  # a tuple (a point): order-sensitive, some with surds
        x, y, z = rng.sample(range(-9, 10), 3)
        s = rng.choice(("", "\\sqrt{2}"))
        gold = f"({x}{s}, {y}, {z})"
        rights = [gold, f"\\left({x}{s},{y},{z}\\right)"]
        wrongs = [f"({y}, {x}{s}, {z})", f"({x}{s}, {y}, {z + 1})"]
    return gold, rights, wrongs


def make_symbolic(rng: random.Random) -> tuple[str, list, list]:
    """Only with --symbolic: answers no exact in-process rule covers (sympy's worst case)."""
    a = rng.randint(2, 9)
    kind = rng.randrange(3)
    if kind == 0:
        gold = f"\\log_{{{a}}} {a**3}"
        rights = ["3", f"\\frac{{\\ln {a**3}}}{{\\ln {a}}}"]
        wrongs = ["2", "4", f"\\log_{{{a}}} {a**2}"]
    elif kind == 1:
        gold = f"\\sin^2 x + \\cos^2 x + {a}"
        rights = [str(a + 1), f"{a} + 1"]
        wrongs = [str(a), f"{a + 2}", f"\\sin x + {a}"]
    else:
        gold = f"e^{{{a}x}}"
        rights = [f"(e^x)^{{{a}}}", f"e^{{{a}x}}"]
        wrongs = [f"e^{{{a + 1}x}}", f"{a}e^x"]
    return gold, rights, wrongs


KINDS = {
    "boxed_integers": (make_integer, 256, _completion),
    "fractions_expressions": (make_expression, 48, _completion),
    "sets_intervals_matrices": (make_structure, 40, _completion),
    "unboxed_latex": (make_expression, 48, _unboxed),  # fractions/expressions in $..$, \\(..\\), \\[..\\]
}


# ----------------------------------------------------------------------------- the two sides
def run_raw(items: list[Item]) -> list[bool]:
    from math_verify import parse, verify

    return [bool(verify(parse(f"${gold}$"), parse(completion))) for gold, completion, _ in items]


def run_rlvr(verifier, items: list[Item], workers: int) -> tuple[list[bool], float]:
    """Verdicts, and the share of items that needed sympy (the rest were decided in-process)."""
    rows = [{"completion": c, "answer": g} for g, c, _ in items]
    scores = verifier.score_many(rows, workers=workers)
    slow = sum("math-verify" in s.detail or s.status in ("parse_error", "timeout") for s in scores)
    return [s.correct is True for s in scores], slow / max(1, len(scores))


def _accuracy(verdicts: list[bool], items: list[Item]) -> float:
    return sum(v == label for v, (_, _, label) in zip(verdicts, items)) / len(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--group", type=int, default=8, help="completions per prompt (a GRPO group)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the number of prompts per kind")
    ap.add_argument("--symbolic", action="store_true", help="also run a fourth kind that always needs sympy")
    args = ap.parse_args()
    kinds = dict(KINDS, symbolic=(make_symbolic, 24, _completion)) if args.symbolic else KINDS
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" notes

    from rlvr.verifiers import MathVerifier

    verifier = MathVerifier()
    warm_rng = random.Random(10_000 + args.seed)
    warm = [it for make, _, style in KINDS.values() for it in _groups(warm_rng, 2, args.group, make, style)]
    # Items that need sympy, so the warm-up also starts the worker pool (forkserver and every
    # worker): pool start-up is a once-per-process cost, like the raw side's parser build-up.
    warm += [("1", f"so \\boxed{{\\sin^2 {v} + \\cos^2 {v}}}", True) for v in "abcdefgh"[: 2 * args.workers]]
    run_raw(warm)
    run_rlvr(verifier, warm, args.workers)

    for i, (kind, (make, prompts, style)) in enumerate(kinds.items()):
        items = _groups(random.Random(args.seed * 100 + i), max(1, int(prompts * args.scale)), args.group, make, style)
        t0 = time.perf_counter()
        raw = run_raw(items)
        t_raw = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours, sympy_share = run_rlvr(verifier, items, args.workers)
        t_ours = time.perf_counter() - t0
        raw_ips, ours_ips = len(items) / t_raw, len(items) / t_ours
        print(json.dumps({
            "kind": kind,
            "n": len(items),
            "raw_items_per_s": round(raw_ips, 1),
            "rlvr_items_per_s": round(ours_ips, 1),
            "ratio": round(ours_ips / raw_ips, 2),
            "raw_accuracy": round(_accuracy(raw, items), 4),
            "rlvr_accuracy": round(_accuracy(ours, items), 4),
            "rlvr_sympy_share": round(sympy_share, 3),
            "workers": args.workers,
            "group": args.group,
            "warm": True,
        }), flush=True)
    verifier.close()


if __name__ == "__main__":
    main()
