"""Differential check of MathVerifier against math-verify, by answer kind and completion style.

    python scripts/math_agreement.py [--per-cell 30] [--seed 0] [--workers 2] [--show 5]

A seeded generator writes (gold, completion) pairs for every answer kind in ``KINDS`` times every
completion style in ``STYLES``: half of them right (the gold in some equivalent form), half near
misses (a neighbouring value, a swapped entry, a flipped bracket). Both sides judge every pair:

- math-verify: ``verify(parse(f"${gold}$"), parse(completion))`` with its default configuration
  (the ``$`` lets it read a bare gold such as ``y = 2x + 3``, as its README does);
- rlvr: ``MathVerifier().score_many(rows, workers=N)``.

Every pair where the two disagree is attributed to one of the deliberate divergences listed in
``rlvr.verifiers.math``'s docstring (``divergence``); an unattributed one is a bug. Prints the
agreement table by kind and by style, the disagreements by divergence, and each side's accuracy
against the generator's labels, then one JSON summary line. ``tests/verifiers/
test_math_differential.py`` runs the same pairs and fails on any unattributed disagreement.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import random
import re
import time
from collections import Counter, defaultdict
from fractions import Fraction
from typing import Callable

Forms = list[tuple[str, str | None]]  # (answer text, divergence it probes or None)


def _f(*answers: str, tag: str | None = None) -> Forms:
    return [(a, tag) for a in answers]


# ----------------------------------------------------------------------------- answer kinds
def k_integer(rng: random.Random) -> tuple[str, Forms, Forms]:
    n = rng.choice((rng.randint(0, 99), rng.randint(100, 999), rng.randint(1000, 999_999)))
    rights = _f(str(n), f"{n}.0") + (_f(f"{n:,}") if n >= 1000 else [])
    return str(n), rights, _f(str(n + 1), str(n - 1), str(10 * n + 1))


def k_negative(rng: random.Random) -> tuple[str, Forms, Forms]:
    n = rng.randint(1, 500)
    return f"-{n}", _f(f"-{n}", f"- {n}", f"-{n}.0"), _f(str(n), f"-{n + 1}", f"-{n - 1}" if n > 1 else "-7")


def k_decimal(rng: random.Random) -> tuple[str, Forms, Forms]:
    q = Fraction(rng.randint(1, 999), rng.choice((4, 8, 20, 25, 40)))
    text = f"{float(q):g}"
    if "." not in text:
        q += Fraction(1, 4)
        text = f"{float(q):g}"
    rights = _f(text, text + "0", f"\\frac{{{q.numerator}}}{{{q.denominator}}}")
    near = _f(f"{float(q) + 0.01:g}", f"{float(q) * 10:g}", f"{float(q) - 1e-7:.7f}")
    return text, rights, near


def k_fraction(rng: random.Random) -> tuple[str, Forms, Forms]:
    p, qd = rng.randint(1, 30), rng.randint(2, 30)
    f = Fraction(p, qd) if Fraction(p, qd).denominator > 1 else Fraction(p, qd + 1)
    a, b = f.numerator, f.denominator
    k = rng.randint(2, 4)
    rights = _f(f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\dfrac{{{k * a}}}{{{k * b}}}")
    rounded = f"{float(f):.2f}" if Fraction(f"{float(f):.2f}") != f else f"{float(f) + 0.01:.2f}"
    near = _f(f"\\frac{{{b}}}{{{a}}}" if a != 1 else f"\\frac{{2}}{{{b}}}", f"\\frac{{{a + 1}}}{{{b}}}", rounded)
    return f"\\frac{{{a}}}{{{b}}}", rights, near


def k_mixed(rng: random.Random) -> tuple[str, Forms, Forms]:
    w, b = rng.randint(1, 9), rng.choice((2, 3, 4, 5, 7))
    a = rng.randint(1, b - 1)
    v = Fraction(w * b + a, b)
    gold = f"{w}\\frac{{{a}}}{{{b}}}"
    rights = _f(gold, f"\\frac{{{v.numerator}}}{{{v.denominator}}}", f"{v.numerator}/{v.denominator}")
    near = _f(f"\\frac{{{a}}}{{{b}}}", f"{w + 1}\\frac{{{a}}}{{{b}}}", f"\\frac{{{v.numerator + 1}}}{{{v.denominator}}}")
    return gold, rights, near


def k_percentage(rng: random.Random) -> tuple[str, Forms, Forms]:
    p = rng.choice((5, 10, 12, 20, 25, 30, 40, 45, 60, 75, 80, 90))
    if rng.random() < 0.5:  # gold written as a percentage
        gold = f"{p}\\%"
        rights = _f(gold, f"{p}", f"{p / 100:g}")
        near = _f(f"{p + 5}\\%", f"{p / 10:g}\\%", f"{p / 100:g}\\%", tag=None)
        near = [(a, "percent-reading" if a == f"{p / 100:g}\\%" else None) for a, _ in near]
    else:  # gold a plain number, answered as a percentage
        gold = str(p)
        rights = _f(f"{p}\\%", str(p))
        near = _f(f"{p + 1}\\%", str(p + 1)) + _f(f"{p * 100}\\%", tag="percent-reading")
    return gold, rights, near


def k_surd(rng: random.Random) -> tuple[str, Forms, Forms]:
    a, b = rng.randint(2, 9), rng.choice((2, 3, 5, 6, 7))
    gold = f"{a}\\sqrt{{{b}}}"
    return gold, _f(gold, f"\\sqrt{{{a * a * b}}}", f"{a} \\sqrt{{{b}}}"), _f(f"{a + 1}\\sqrt{{{b}}}", f"\\sqrt{{{a * b}}}", f"{a}\\sqrt{{{b + 1}}}")


def k_pi(rng: random.Random) -> tuple[str, Forms, Forms]:
    p, q = rng.randint(1, 7), rng.choice((2, 3, 4, 6, 12))
    gold = f"\\frac{{{p}\\pi}}{{{q}}}"
    rights = _f(gold, f"\\frac{{{p}}}{{{q}}}\\pi", f"{p}\\pi/{q}")
    return gold, rights, _f(f"\\frac{{{p + 1}\\pi}}{{{q}}}", f"\\frac{{{p}}}{{{q}}}", f"\\frac{{{q}\\pi}}{{{p + q}}}")


def _poly(a: int, b: int) -> str:
    return f"x^2{a + b:+d}x{a * b:+d}".replace("+0x", "").replace("-0x", "").replace("+0", "").replace("-0", "")


def k_polynomial(rng: random.Random) -> tuple[str, Forms, Forms]:
    a, b = rng.randint(-6, 6), rng.randint(-6, 6)
    gold = _poly(a, b)
    rights = _f(gold, f"(x{a:+d})(x{b:+d})", gold.replace("x^2", "x^{2}"))
    near = _f(_poly(a + 1, b), f"(x{-a:+d})(x{b:+d})" if a else _poly(a, b + 2), f"x^2{a + b + 1:+d}x")
    return gold, rights, near


def k_equation(rng: random.Random) -> tuple[str, Forms, Forms]:
    m, c = rng.sample(range(2, 10), 2)
    gold = f"y = {m}x + {c}"
    rights = _f(gold, f"y = {c} + {m}x", f"y={m}x+{c}")
    near = _f(f"y = {m}x - {c}", f"y = {c}x + {m}", f"y = {m + 1}x + {c}")
    return gold, rights, near


def k_interval(rng: random.Random) -> tuple[str, Forms, Forms]:
    a = rng.randint(-10, 5)
    b = a + rng.randint(1, 10)
    lo, hi = rng.choice("(["), rng.choice(")]")
    flip = {"(": "[", "[": "(", ")": "]", "]": ")"}
    gold = f"{lo}{a}, {b}{hi}"
    rights = _f(gold, f"\\left{lo}{a},{b}\\right{hi}", f"{lo}{a},{b}{hi}")
    return gold, rights, _f(f"{flip[lo]}{a}, {b}{hi}", f"{lo}{a}, {b}{flip[hi]}", f"{lo}{a}, {b + 1}{hi}")


def _set(xs: list) -> str:
    return "\\{" + ", ".join(map(str, xs)) + "\\}"


def k_set(rng: random.Random) -> tuple[str, Forms, Forms]:
    xs = rng.sample(range(-20, 30), rng.randint(2, 4))
    gold = _set(xs)
    rights = _f(gold, _set(sorted(xs)), _set(list(reversed(xs))))
    return gold, rights, _f(_set(xs[:-1]), _set(xs[:-1] + [xs[-1] + 1]), _set(xs + [99]))


def k_tuple(rng: random.Random) -> tuple[str, Forms, Forms]:
    x, y, z = rng.sample(range(-9, 10), 3)
    gold = f"({x}, {y}, {z})"
    rights = _f(gold, f"\\left({x},{y},{z}\\right)", f"({x},{y},{z})")
    return gold, rights, _f(f"({y}, {x}, {z})", f"({x}, {y}, {z + 1})", f"({x}, {y})")


def k_matrix(rng: random.Random) -> tuple[str, Forms, Forms]:
    m = [[rng.randint(-5, 9) for _ in range(2)] for _ in range(2)]
    mat = lambda env, mm: f"\\begin{{{env}}} " + " \\\\ ".join(" & ".join(map(str, r)) for r in mm) + f" \\end{{{env}}}"
    gold = mat("pmatrix", m)
    t = [[m[0][0], m[1][0]], [m[0][1], m[1][1]]]
    bumped = [[m[0][0] + 1, m[0][1]], m[1]]
    return gold, _f(gold, mat("bmatrix", m)), _f(mat("pmatrix", t) if t != m else mat("pmatrix", bumped), mat("pmatrix", bumped))


_WORDS = (("odd", "even"), ("yes", "no"), ("true", "false"), ("north", "south"), ("Tuesday", "Monday"))


def k_text(rng: random.Random) -> tuple[str, Forms, Forms]:
    right, wrong = rng.choice(_WORDS)
    gold = f"\\text{{{right}}}"
    return gold, _f(gold, f"\\text{{ {right} }}", f"\\textbf{{{right}}}"), _f(f"\\text{{{wrong}}}", f"\\textbf{{{wrong}}}")


KINDS: dict[str, Callable[[random.Random], tuple[str, Forms, Forms]]] = {
    "integer": k_integer, "negative": k_negative, "decimal": k_decimal, "fraction": k_fraction,
    "mixed_number": k_mixed, "percentage": k_percentage, "surd": k_surd, "pi_expression": k_pi,
    "polynomial": k_polynomial, "equation": k_equation, "interval": k_interval, "set": k_set,
    "tuple": k_tuple, "matrix": k_matrix, "text": k_text,
}

# ----------------------------------------------------------------------------- completion styles
_REASONING = (
    "Let us set up the problem carefully.", "We first note that {a} + {b} = {c}.",
    "Multiplying both sides by {a} gives {d}.", "Checking the cases {a} and {b} confirms the pattern.",
    "So the quantity we need is determined.",
)

STYLES: dict[str, str] = {
    "boxed": "Therefore the answer is $\\boxed{%s}$.",
    "dollar": "Putting everything together we get $%s$.",
    "paren": "Putting everything together we get \\(%s\\).",
    "bracket": "Putting everything together:\n\\[\n%s\n\\]",
    "final_line": "Final answer: %s",
    "plain": "Putting everything together, the result is %s.",
    "answer_tag": "<answer>%s</answer>",
}


def _reasoning(rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    vals = {"a": a, "b": b, "c": a + b, "d": a * b}
    return " ".join(rng.choice(_REASONING).format(**vals) for _ in range(rng.randint(2, 4)))


def pairs(per_cell: int = 30, seed: int = 0) -> list[dict]:
    """``per_cell`` pairs for every (kind, style), half right and half near misses, deterministic."""
    out = []
    for ki, (kind, make) in enumerate(KINDS.items()):
        for si, (style, template) in enumerate(STYLES.items()):
            rng = random.Random(f"{seed}/{kind}/{style}")
            for j in range(per_cell):
                gold, rights, near = make(rng)
                label = j % 2 == 0
                answer, tag = rng.choice(rights if label else near)
                completion = _reasoning(rng) + "\n\n" + template % answer
                out.append({"kind": kind, "style": style, "gold": gold, "answer": answer, "completion": completion, "label": label, "tag": tag})
    return out


# ----------------------------------------------------------------------------- the two judges
def _mv_one(pair: tuple[str, str]) -> bool:
    from math_verify import parse, verify

    gold, completion = pair
    try:
        return bool(verify(parse(f"${gold}$"), parse(completion)))
    except Exception:  # math-verify's own failure counts as "not equal", as verify() itself does
        return False


def run_math_verify(rows: list[dict], workers: int = 2) -> list[bool]:
    """math-verify's default verdicts, computed in ``workers`` processes (it is single-threaded)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    jobs = [(r["gold"], r["completion"]) for r in rows]
    if workers <= 1:
        return [_mv_one(j) for j in jobs]
    with mp.get_context("forkserver").Pool(workers) as pool:
        return pool.map(_mv_one, jobs, chunksize=64)


def run_rlvr(rows: list[dict], workers: int = 2) -> list:
    from rlvr.verifiers import MathVerifier

    v = MathVerifier()
    try:
        return v.score_many([{"completion": r["completion"], "answer": r["gold"]} for r in rows], workers=workers)
    finally:
        v.close()


# ----------------------------------------------------------------------------- attribution
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def divergence(row: dict, ours: bool, theirs: bool) -> str | None:
    """Which divergence listed in rlvr.verifiers.math's docstring explains a disagreement, or None.

    Only a disagreement where rlvr gives the generator's label can be explained: one where rlvr
    is wrong is a bug whatever math-verify says.
    """
    if ours != row["label"]:
        return None
    if row["tag"]:
        return row["tag"]  # the form was written to probe that divergence
    style, answer = row["style"], row["answer"]
    if style == "answer_tag":
        return "answer-tag"
    if style in ("final_line", "plain") and not _PLAIN_NUMBER.fullmatch(answer):
        return "undelimited"
    if row["kind"] == "decimal" and re.fullmatch(r"-?\d+\.\d{7,}", answer):
        return "decimal-rounding"
    return None


def compare(rows: list[dict], ours: list, theirs: list[bool]) -> dict:
    """Agreement counts by kind and style, and the disagreements grouped by divergence."""
    by_kind: dict[str, Counter] = defaultdict(Counter)
    by_style: dict[str, Counter] = defaultdict(Counter)
    explained: dict[str, list] = defaultdict(list)
    unexplained = []
    acc: Counter = Counter()
    rlvr_misses = []
    for r, s, t in zip(rows, ours, theirs):
        o = s.correct is True
        agree = o == t
        for table, key in ((by_kind, r["kind"]), (by_style, r["style"])):
            table[key]["n"] += 1
            table[key]["agree"] += agree
        acc["rlvr"] += o == r["label"]
        acc["math_verify"] += t == r["label"]
        if o != r["label"]:
            rlvr_misses.append({**{k: r[k] for k in ("kind", "style", "gold", "answer", "label")}, "status": s.status, "detail": s.detail})
        if not agree:
            why = divergence(r, o, t)
            entry = {**{k: r[k] for k in ("kind", "style", "gold", "answer", "label")}, "rlvr": o, "math_verify": t, "status": s.status, "detail": s.detail}
            (explained[why] if why else unexplained).append(entry)
    return {"n": len(rows), "by_kind": by_kind, "by_style": by_style, "explained": explained, "unexplained": unexplained, "accuracy": acc, "rlvr_misses": rlvr_misses}


def _table(title: str, table: dict[str, Counter]) -> str:
    lines = [f"{title:<16} {'pairs':>6} {'agree':>6} {'rate':>7}"]
    for key, c in table.items():
        lines.append(f"{key:<16} {c['n']:>6} {c['agree']:>6} {c['agree'] / c['n']:>7.2%}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-cell", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--show", type=int, default=5, help="examples to print per divergence")
    args = ap.parse_args()
    rows = pairs(args.per_cell, args.seed)
    t0 = time.perf_counter()
    theirs = run_math_verify(rows, args.workers)
    t1 = time.perf_counter()
    ours = run_rlvr(rows, args.workers)
    t2 = time.perf_counter()
    res = compare(rows, ours, theirs)
    print(_table("kind", res["by_kind"]))
    print()
    print(_table("style", res["by_style"]))
    print()
    for why, entries in sorted(res["explained"].items()):
        print(f"divergence {why}: {len(entries)}")
        for e in entries[: args.show]:
            print("   ", json.dumps(e, ensure_ascii=False))
    print(f"UNEXPLAINED: {len(res['unexplained'])}")
    for e in res["unexplained"][: 10 * args.show]:
        print("   ", json.dumps(e, ensure_ascii=False))
    print(f"rlvr against the labels: {len(res['rlvr_misses'])} misses")
    for e in res["rlvr_misses"][: 10 * args.show]:
        print("   ", json.dumps(e, ensure_ascii=False))
    n = res["n"]
    outside = n - sum(len(v) for v in res["explained"].values())
    agree_outside = outside - len(res["unexplained"])
    print(json.dumps({
        "pairs": n,
        "kinds": len(res["by_kind"]),
        "styles": len(res["by_style"]),
        "agreement": round(sum(c["agree"] for c in res["by_kind"].values()) / n, 4),
        "agreement_outside_divergences": round(agree_outside / max(1, outside), 4),
        "divergences": {k: len(v) for k, v in sorted(res["explained"].items())},
        "unexplained": len(res["unexplained"]),
        "rlvr_accuracy": round(res["accuracy"]["rlvr"] / n, 4),
        "math_verify_accuracy": round(res["accuracy"]["math_verify"] / n, 4),
        "math_verify_s": round(t1 - t0, 1),
        "rlvr_s": round(t2 - t1, 1),
    }))


if __name__ == "__main__":
    main()
