"""The numbers a report draws: curves per run, mean and band over seeds, the final table, pass@k.

Pure functions on :class:`~rlvr.report.load.RunData`; the HTML page, the PNG figures and
``compare.json`` all take their numbers from here, so they cannot disagree.

Bands are the min-max over seeds (with two or three seeds a standard deviation says little);
training curves are smoothed with a trailing mean over a few logged steps because one step's
reward is a mean over a handful of groups, while held-out curves are drawn as measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from rlvr.report.load import RunData, Source

Point = tuple[float, float]


@dataclass(frozen=True)
class Panel:
    """One chart: which metrics.jsonl keys it reads (first present wins) and how its axis starts."""

    name: str
    title: str
    keys: tuple[str, ...]
    kind: str  # "train" or "eval" rows
    ylabel: str
    rate: bool = False  # a fraction: the axis spans 0..1 whatever the data
    caption: str = ""


PANELS: tuple[Panel, ...] = (
    Panel("reward", "training reward", ("reward", "env/reward"), "train", "mean reward per rollout",
          caption="mean reward of the step's rollouts (trailing mean)"),
    Panel("pass1", "held-out pass@1", ("eval/pass@1",), "eval", "pass@1", rate=True,
          caption="held-out tasks never seen in training, sampled at the eval temperature"),
    Panel("greedy", "held-out greedy pass@1", ("eval/greedy_pass@1",), "eval", "pass@1", rate=True),
    Panel("entropy", "policy entropy", ("entropy",), "train", "nats per token",
          caption="mean token entropy of the sampled completions"),
    Panel("length", "response length (training)", ("completions/mean_length", "env/model_tokens"), "train",
          "model tokens"),
    Panel("len_correct", "length of correct answers (held-out)", ("eval/response_tokens_correct",), "eval",
          "model tokens"),
    Panel("len_wrong", "length of wrong answers (held-out)", ("eval/response_tokens_wrong",), "eval", "model tokens"),
    Panel("clip", "clipped fraction", ("algo/clip_frac",), "train", "fraction of tokens",
          caption="tokens whose ratio left the trust region"),
    Panel("kl", "KL to reference", ("algo/kl", "kl"), "train", "nats"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def raw_series(run: RunData, panel: Panel) -> list[Point]:
    """(step, value) of ``panel`` in one run, from the first of its keys that the run logged."""
    rows = run.train if panel.kind == "train" else run.evals
    for key in panel.keys:
        points = [(float(r["step"]), v) for r in rows if (v := _number(r.get(key))) is not None]
        if points:
            return _dedupe(points)
    return []


def _dedupe(points: list[Point]) -> list[Point]:
    """One value per step (the last logged), in step order: a resumed run may log a step twice."""
    return sorted(dict(points).items())


def smooth(points: Sequence[Point], window: int) -> list[Point]:
    """Trailing mean over ``window`` points (the first points average what exists so far)."""
    if window <= 1:
        return list(points)
    out, total, values = [], 0.0, []
    for x, y in points:
        values.append(y)
        total += y
        if len(values) > window:
            total -= values[-window - 1]
        out.append((x, total / min(len(values), window)))
    return out


def smoothing_window(n: int) -> int:
    """About 1/20 of a curve's points, at least 1."""
    return max(1, round(n / 20))


@dataclass(frozen=True)
class Band:
    """One algorithm's curve: mean over seeds with the min and max, at each step, and how many seeds."""

    label: str
    xs: tuple[float, ...]
    mean: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    seeds: int


def aggregate(label: str, per_seed: Sequence[Sequence[Point]]) -> Band | None:
    """Mean and min-max band over seeds at every step some seed logged (None when no seed has data)."""
    by_step: dict[float, list[float]] = {}
    for points in per_seed:
        for x, y in points:
            by_step.setdefault(x, []).append(y)
    if not by_step:
        return None
    xs = sorted(by_step)
    return Band(label, tuple(xs), tuple(sum(by_step[x]) / len(by_step[x]) for x in xs),
                tuple(min(by_step[x]) for x in xs), tuple(max(by_step[x]) for x in xs),
                sum(1 for p in per_seed if p))


# Panels left out when every value is exactly 0 (on-policy runs never clip; no KL term is logged as 0).
ZERO_MEANS_ABSENT = ("clip", "kl")


def panel_bands(source: Source, panel: Panel) -> list[Band]:
    """One band per algorithm for ``panel``; empty when no run logged it (or only zeros, for
    ``ZERO_MEANS_ABSENT``): the panel is then left out rather than drawn empty."""
    bands = []
    for algo in source.algorithms:
        per_seed = []
        for run in source.runs_of(algo):
            points = raw_series(run, panel)
            if panel.kind == "train":
                points = smooth(points, smoothing_window(len(points)))
            per_seed.append(points)
        band = aggregate(algo, per_seed)
        if band is not None:
            bands.append(band)
    if panel.name in ZERO_MEANS_ABSENT and not any(v for b in bands for v in b.hi + b.lo):
        return []
    return bands


def y_range(panel: Panel, bands: Sequence[Band]) -> tuple[float, float]:
    """The axis: 0..1 for rates; otherwise from 0 (or the lowest value, when negative) to a round top."""
    if panel.rate:
        return 0.0, 1.0
    lo = min((v for b in bands for v in b.lo), default=0.0)
    hi = max((v for b in bands for v in b.hi), default=1.0)
    if lo >= 0 and hi <= 1 and panel.name == "reward":
        return 0.0, 1.0  # a 0/1 reward: the whole range, so noise does not look like a trend
    lo = min(0.0, lo)
    return lo, nice_ceiling(hi if hi > lo else lo + 1.0)


def nice_ceiling(value: float) -> float:
    """The next 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 2.5, 5, 10) if s * power >= raw - 1e-12)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], first
    while t <= hi + 1e-9 * max(1.0, abs(hi)):
        ticks.append(round(t, 10))
        t += step
    return ticks


# ---------------------------------------------------------------------- final numbers of a run
def final_eval(run: RunData) -> dict[str, Any]:
    """The final held-out evaluation (eval_after.json, else the last eval row, without the ``eval/`` prefix)."""
    if run.eval_after:
        return run.eval_after
    if run.evals:
        last = max(run.evals, key=lambda r: r["step"])
        return {k[5:]: v for k, v in last.items() if k.startswith("eval/")}
    return {}


def start_eval(run: RunData) -> dict[str, Any]:
    """The held-out evaluation of the starting policy (eval_before.json, else the step-0 eval row)."""
    if run.eval_before:
        return run.eval_before
    first = [r for r in run.evals if r["step"] == 0]
    return {k[5:]: v for k, v in first[0].items() if k.startswith("eval/")} if first else {}


def pass_at_k(result: dict[str, Any]) -> dict[int, float]:
    """``{k: pass@k}`` of one evaluation result."""
    out = {}
    for key, value in result.items():
        if key.startswith("pass@") and key[5:].isdigit() and (v := _number(value)) is not None:
            out[int(key[5:])] = v
    return dict(sorted(out.items()))


def _tail_mean(points: Sequence[Point], frac: float = 0.1) -> float | None:
    if not points:
        return None
    tail = points[-max(1, math.ceil(len(points) * frac)):]
    return sum(y for _, y in tail) / len(tail)


def _mean(points: Sequence[Point]) -> float | None:
    return sum(y for _, y in points) / len(points) if points else None


def budget(run: RunData) -> int | None:
    """Rollouts the run was configured to train on: steps x prompts per step x generations."""
    g, o = run.config.get("generation") or {}, run.config.get("optim") or {}
    try:
        return int(o["max_steps"]) * int(g["prompts_per_step"]) * int(g["num_generations"])
    except (KeyError, TypeError, ValueError):
        return None


def run_numbers(run: RunData) -> dict[str, Any]:
    """One run's headline numbers: final pass@k, lengths of right and wrong answers, entropy, clipping, time."""
    after, before = final_eval(run), start_eval(run)
    panel = {p.name: p for p in PANELS}
    entropy = raw_series(run, panel["entropy"])
    clip = raw_series(run, panel["clip"])
    reward = raw_series(run, panel["reward"])
    out: dict[str, Any] = {
        "finished": run.finished,
        "steps": int(max((r["step"] for r in run.train), default=0)),
        "pass@k_before": pass_at_k(before),
        "pass@k": pass_at_k(after),
        "pass@1_before": _number(before.get("pass@1")),
        "pass@1": _number(after.get("pass@1")),
        "greedy_pass@1": _number(after.get("greedy_pass@1")),
        "reward": _number(after.get("reward")),
        "response_tokens": _number(after.get("response_tokens")),
        "response_tokens_correct": _number(after.get("response_tokens_correct")),
        "response_tokens_wrong": _number(after.get("response_tokens_wrong")),
        "per_env_pass@1": {env: _number(v.get("pass@1")) for env, v in (after.get("per_env") or {}).items()
                           if isinstance(v, dict)},
        "per_env_pass@1_before": {env: _number(v.get("pass@1")) for env, v in (before.get("per_env") or {}).items()
                                  if isinstance(v, dict)},
        "train_reward_last": _tail_mean(reward),
        "entropy_first": entropy[0][1] if entropy else None,
        "entropy_last": _tail_mean(entropy),
        "clip_frac_mean": _mean(clip),
        "wall_s": _number((run.summary or {}).get("wall_s")),
        "samples_budget": budget(run),
        "samples_generated": run.generated,
    }
    return out


def run_curves(run: RunData) -> dict[str, list[Point]]:
    """Every panel's raw (step, value) series of one run (what compare.json stores per run)."""
    return {p.name: points for p in PANELS if (points := raw_series(run, p))}


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean, sample standard deviation (None for one value) and count of the numbers present."""
    xs = [v for v in values if v is not None]
    if not xs:
        return None, None, 0
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return m, sd, len(xs)


# (column title, run_numbers key, format) of the final table
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("pass@1 at start", "pass@1_before", "{:.3f}"),
    ("pass@1 final", "pass@1", "{:.3f}"),
    ("greedy pass@1", "greedy_pass@1", "{:.3f}"),
    ("reward final", "reward", "{:.3f}"),
    ("tokens, correct", "response_tokens_correct", "{:.1f}"),
    ("tokens, wrong", "response_tokens_wrong", "{:.1f}"),
    ("entropy (last 10%)", "entropy_last", "{:.3f}"),
    ("clip fraction", "clip_frac_mean", "{:.4f}"),
    ("wall s", "wall_s", "{:.0f}"),
    ("rollouts generated", "samples_generated", "{:.0f}"),
)


def final_table(source: Source) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per algorithm, ``mean ± sd`` over seeds) of the final table.

    Columns nobody has a number for are dropped; per-environment pass@1 and pass@k (largest k
    every run has) are added when present.
    """
    numbers = {a: [run_numbers(r) for r in source.runs_of(a)] for a in source.algorithms}
    columns = list(TABLE_COLUMNS)
    ks = [set(n["pass@k"]) for ns in numbers.values() for n in ns if n["pass@k"]]
    common = set.intersection(*ks) if ks else set()
    k_max = max((k for k in common if k > 1), default=None)
    envs = sorted({e for ns in numbers.values() for n in ns for e in n["per_env_pass@1"]})
    header = ["algorithm", "seeds"]
    getters: list[tuple[str, Any, str]] = []
    for title, key, fmt in columns:
        getters.append((title, lambda n, key=key: n.get(key), fmt))
        if key == "pass@1" and k_max:
            getters.append((f"pass@{k_max} final", lambda n, k=k_max: n["pass@k"].get(k), "{:.3f}"))
        if key == "greedy_pass@1":
            for env in envs:
                getters.append((f"pass@1 {env}", lambda n, env=env: n["per_env_pass@1"].get(env), "{:.3f}"))
    present = [g for g in getters if any(g[1](n) is not None for ns in numbers.values() for n in ns)]
    header += [g[0] for g in present]
    rows = []
    for algo, ns in numbers.items():
        row = [algo, str(len(ns))]
        for _, get, fmt in present:
            m, sd, count = mean_sd([get(n) for n in ns])
            if m is None:
                row.append("–")
            elif sd is None:
                row.append(fmt.format(m))
            else:
                row.append(f"{fmt.format(m)} ± {fmt.format(sd)}")
        rows.append(row)
    return header, rows


def pass_at_k_bands(source: Source) -> list[Band]:
    """Final pass@k against k, one band per algorithm, plus the starting policy's (dashed in charts)."""
    bands = []
    starts: list[list[Point]] = []
    for algo in source.algorithms:
        per_seed = []
        for run in source.runs_of(algo):
            per_seed.append([(float(k), v) for k, v in pass_at_k(final_eval(run)).items()])
            starts.append([(float(k), v) for k, v in pass_at_k(start_eval(run)).items()])
        band = aggregate(algo, per_seed)
        if band is not None:
            bands.append(band)
    start = aggregate("start (warm-up)", starts)
    if start is not None and bands:
        bands.append(start)
    return bands


def length_bands(source: Source) -> dict[str, list[Band]]:
    """Length of correct and of wrong answers over training, per algorithm.

    From held-out evaluations when they report it (``eval/response_tokens_correct``/``_wrong``);
    otherwise from the sample rollouts (a few per logged step, so noisier).
    """
    panels = {p.name: p for p in PANELS}
    out = {"correct": [], "wrong": []}
    held = {k: panel_bands(source, panels[f"len_{k}"]) for k in out}
    if any(held.values()):
        return held
    for algo in source.algorithms:
        for verdict, want in (("correct", True), ("wrong", False)):
            per_seed = []
            for run in source.runs_of(algo):
                by_step: dict[float, list[float]] = {}
                for s in run.samples:
                    step, tokens = _number(s.get("step")), _number(s.get("model_tokens"))
                    if step is not None and tokens is not None and bool(s.get("success")) == want:
                        by_step.setdefault(step, []).append(tokens)
                points = [(x, sum(v) / len(v)) for x, v in sorted(by_step.items())]
                per_seed.append(smooth(points, smoothing_window(len(points))))
            band = aggregate(algo, per_seed)
            if band is not None:
                out[verdict].append(band)
    return out


__all__ = ["Panel", "PANELS", "Band", "raw_series", "smooth", "aggregate", "panel_bands", "y_range", "nice_ticks",
           "nice_ceiling", "final_eval", "start_eval", "pass_at_k", "run_numbers", "run_curves", "final_table",
           "pass_at_k_bands", "length_bands", "mean_sd", "budget"]
