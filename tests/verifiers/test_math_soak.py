"""Soak: 20,000 math items, 1% pathological, through ``MathVerifier.score_many`` with workers.

Every benign item must get its exact verdict (right answers correct, near misses wrong) whatever
the pathological neighbours do; pathological ones may end as ``parse_error``/``timeout``/``wrong``
but never ``error`` and never slower than the timeout; afterwards no worker process of ours is
left and this process's memory stays flat between two halves of the run. ``RLVR_MATH_SOAK_N``
sets the number of items (default 20,000). One JSON line of figures is printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import random
import resource
import time
from collections import Counter
from pathlib import Path

import pytest

from rlvr.verifiers import MathVerifier

pytestmark = pytest.mark.slow

N = int(os.environ.get("RLVR_MATH_SOAK_N", "20000"))
TIMEOUT = 3.0


def benign(rng: random.Random, i: int) -> tuple[dict, bool]:
    """(row, expected correct) over answer kinds models produce, right and near-miss."""
    a, b = rng.randint(1, 99), rng.randint(2, 99)
    right = rng.random() < 0.5
    kind = i % 8
    if kind == 0:
        gold, ans = str(a), str(a if right else a + 1)
        text = f"so the answer is \\boxed{{{ans}}}"
    elif kind == 1:
        gold, ans = f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{a * 2}}}{{{b * 2}}}" if right else f"\\frac{{{a + 1}}}{{{b}}}"
        text = f"Therefore $x = {ans}$."
    elif kind == 2:
        gold, ans = f"{a}\\sqrt{{{b}}}", (f"\\sqrt{{{a * a * b}}}" if right else f"{a}\\sqrt{{{b + 1}}}")
        text = f"The final answer is ${ans}$"
    elif kind == 3:
        gold = f"x^2 + {a}x"
        ans = f"x(x + {a})" if right else f"x(x + {a + 1})"
        text = f"\\[ {ans} \\]"
    elif kind == 4:
        gold, ans = f"({a}, {a + b})", f"({a},{a + b})" if right else f"[{a}, {a + b})"
        text = f"<answer>{ans}</answer>"
    elif kind == 5:
        gold, ans = f"{a}.{b:02d}", f"{a}.{b:02d}0" if right else f"{a}.{b:02d}1"
        text = f"\\boxed{{{ans}}}"
    elif kind == 6:
        gold, ans = f"\\{{{a}, {b}\\}}", f"\\{{{b}, {a}\\}}" if right else f"\\{{{a}, {b + 100}\\}}"
        text = f"\\boxed{{{ans}}}"
    else:
        gold, ans = f"{a}\\pi", f"\\pi \\cdot {a}" if right else f"{a + 1}\\pi"
        text = f"\\boxed{{{ans}}}"
    return {"completion": text, "answer": gold}, right


PATHOLOGICAL = [
    "\\boxed{(x+1)^{100000}}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{" + "(" * 400 + "1" + ")" * 400 + "}",
    "\\boxed{" + "\\frac{1}{" * 200 + "2" + "}" * 200 + "}",
    "\\boxed{" + "1+" * 50_000 + "1}",
    "x" * 1_000_000,
    "\\boxed{\\frac{",
    "\\boxed{1000000!}",
    "\\boxed{\\sum_{n=1}^{10^{12}} n^{n}}",
    "\\boxed{\\left(\\sin(x)^{2}+\\cos(x)^{2}\\right)^{999}}",
    "\\boxed{" + "\\sqrt{" * 300 + "2" + "}" * 300 + "}",
    "$" * 100_000,
]


def _descendants() -> set[int]:
    """Live descendants of this process, except multiprocessing's forkserver and resource tracker:
    those are per-process singletons that later pools reuse (and that die with us), not workers."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - found
        found |= frontier

    def singleton(pid: int) -> bool:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True
        return b"multiprocessing.forkserver" in cmd or b"multiprocessing.resource_tracker" in cmd

    return {pid for pid in found if not singleton(pid)}


def test_twenty_thousand_items_with_one_percent_pathological_keep_every_benign_verdict():
    rng = random.Random(0)
    rows, expected = [], []
    for i in range(N):
        if i % 100 == 50:  # 1%
            rows.append({"completion": PATHOLOGICAL[(i // 100) % len(PATHOLOGICAL)], "answer": "2"})
            expected.append(None)
        else:
            row, right = benign(rng, i)
            rows.append(row)
            expected.append(right)
    before = _descendants()
    verifier = MathVerifier(timeout=TIMEOUT)
    half = N // 2
    t0 = time.perf_counter()
    first = verifier.score_many(rows[:half], workers=2, timeout=TIMEOUT)
    rss_mid = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    second = verifier.score_many(rows[half:], workers=2, timeout=TIMEOUT)
    rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall = time.perf_counter() - t0
    scores = first + second

    wrong_benign = [(rows[i]["completion"], rows[i]["answer"], s.status, s.detail) for i, s in enumerate(scores)
                    if expected[i] is not None and s.correct is not expected[i]]
    assert not wrong_benign, wrong_benign[:5]
    patho = [s for i, s in enumerate(scores) if expected[i] is None]
    assert all(not s.correct for s in patho), [s.parsed for s in patho if s.correct][:5]
    assert all(s.status != "error" for s in patho), Counter(s.detail[:80] for s in patho if s.status == "error")
    assert max(s.ms for s in scores) < TIMEOUT * 1000 * 3  # killed at the deadline, never left running
    assert rss_end - rss_mid < 200 * 1024  # KiB: flat between the two halves

    verifier.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _descendants() - before:
        time.sleep(0.1)
    assert not (_descendants() - before), "scoring workers left behind"
    print(json.dumps({"soak": "math", "items": N, "pathological": len(patho), "wall_s": round(wall, 1),
                      "items_per_s": round(N / wall, 1), "statuses": dict(Counter(s.status for s in scores)),
                      "pathological_statuses": dict(Counter(s.status for s in patho)),
                      "max_rss_mib": round(rss_end / 1024), "rss_growth_second_half_mib": round((rss_end - rss_mid) / 1024, 1)}))
