"""Named, weighted reward components and the `Rubric` that combines them.

A component is *final* when it has a scorer (a verifier, a verifier name, or a function): the
environment runs it once on the episode's final answer. A component without a scorer is
*turn-level*: the environment itself reports its value on whichever steps it applies (test
progress in a code env, efficiency in a game). Every step's reward is ``Σ weight · value`` over
the components reported that step; weight 0 makes a component a logged metric only. Values are
in [0, 1] by convention, so a perfect episode earns ``Rubric.max_reward`` (the sum of positive
weights).

Users re-weight or replace components without subclassing::

    gymnasium.make("rlvr/Math-v0", reward_weights={"format": 0.0})
    gymnasium.make("rlvr/Math-v0", rewards={"correct": {"verifier": "math", "options": {...}}})
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

from rlvr.envs import scoring
from rlvr.envs.task import Task
from rlvr.errors import ConfigError
from rlvr.verifiers import Score, Verifier

#: A final scorer: a verifier, a registered verifier name, or ``fn(answer, task) -> float | Score``.
Scorer = Union[Verifier, str, Callable[[str, Task], Union[float, Score]]]


@dataclass
class Component:
    """One named reward component (see the module docstring)."""

    name: str
    weight: float = 1.0
    scorer: Scorer | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    help: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("rewards", f"component name must be a non-empty string, got {self.name!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not math.isfinite(self.weight):
            raise ConfigError(f"rewards.{self.name}.weight", f"must be a finite number, got {self.weight!r}")
        self.weight = float(self.weight)
        if isinstance(self.scorer, str):
            self.scorer = scoring.shared_verifier(self.scorer, **dict(self.options))
        elif self.scorer is not None and not isinstance(self.scorer, Verifier) and not callable(self.scorer):
            raise ConfigError(f"rewards.{self.name}", f"scorer must be a Verifier, a verifier name or a function, got {type(self.scorer).__name__}")

    @property
    def final(self) -> bool:
        """True when the environment scores this component on the final answer."""
        return self.scorer is not None

    @property
    def scorer_name(self) -> str:
        """A short label of what scores this component, for listings."""
        if self.scorer is None:
            return "env"
        if isinstance(self.scorer, Verifier):
            return f"verifier:{self.scorer.name}"
        return f"fn:{getattr(self.scorer, '__name__', type(self.scorer).__name__)}"

    def row(self, answer: str, task: Task) -> dict[str, Any]:
        """The verifier row for ``answer`` on ``task`` (reference plus any fields the verifier takes)."""
        assert isinstance(self.scorer, Verifier)
        row: dict[str, Any] = {"completion": answer, self.scorer.reference_key: task.reference}
        for key in getattr(self.scorer, "item_kwargs", ()):
            if key in task.metadata:
                row[key] = task.metadata[key]
            elif key == "prompt":  # verifiers that read the question (an LLM judge) get the task's prompt
                row[key] = task.prompt
        return row

    def score_fn(self, answer: str, task: Task) -> Score:
        """Run a function scorer; its exceptions become an ``error`` Score, never a crash."""
        try:
            out = self.scorer(answer, task)  # type: ignore[misc]
        except Exception as e:
            return Score.failed("error", f"reward function {self.name!r} raised {type(e).__name__}: {e}"[:500])
        return _coerce(self.name, out)


def _coerce(name: str, out: Any) -> Score:
    """A reward function's return value as a Score (a number >= 1 counts as correct)."""
    if isinstance(out, Score):
        return out
    try:
        value = float(out)
    except (TypeError, ValueError):
        return Score.failed("error", f"reward function {name!r} returned {type(out).__name__}, not a number")
    if not math.isfinite(value):
        return Score.failed("error", f"reward function {name!r} returned {value}")
    return Score(reward=value, correct=value >= 1.0, status="ok" if value >= 1.0 else "wrong")


@dataclass(frozen=True)
class RubricResult:
    """The final components' values and the primary component's full Score."""

    values: dict[str, float]
    scores: dict[str, Score]
    primary: Score | None


class Rubric:
    """An ordered set of components; the primary one decides ``success`` and ``status``."""

    def __init__(self, components: Sequence[Component], primary: str | None = None) -> None:
        names = [c.name for c in components]
        if not components:
            raise ConfigError("rewards", "an environment needs at least one reward component")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError("rewards", f"duplicate component names {dupes}")
        self.components: dict[str, Component] = {c.name: c for c in components}
        if primary is None:
            primary = next((c.name for c in components if c.weight > 0), names[0])
        if primary not in self.components:
            raise ConfigError("primary", f"{primary!r} is not a component", f"choose from {names}")
        self.primary = primary

    # ------------------------------------------------------------------ construction from config
    @classmethod
    def build(
        cls,
        defaults: Sequence[Component],
        rewards: Mapping[str, Any] | Sequence[Component] | None = None,
        reward_weights: Mapping[str, float] | None = None,
        primary: str | None = None,
    ) -> "Rubric":
        """The env's default components, with ``rewards`` added/replaced and ``reward_weights`` applied.

        ``rewards`` maps a name to a Component, a Verifier, a verifier name, a function, or a dict
        ``{"verifier": name, "options": {...}, "weight": w}`` / ``{"fn": callable, "weight": w}``.
        A dict with only ``weight`` re-weights an existing component.
        """
        comps: dict[str, Component] = {c.name: Component(c.name, c.weight, c.scorer, c.options, c.help) for c in defaults}
        if rewards is not None:
            items = [(c.name, c) for c in rewards] if isinstance(rewards, (list, tuple)) else list(dict(rewards).items())
            for name, spec in items:
                comps[name] = _component_from_spec(name, spec, comps.get(name))
        for name, weight in dict(reward_weights or {}).items():
            if name not in comps:
                raise ConfigError(f"reward_weights.{name}", "is not a reward component of this environment", f"components: {sorted(comps)}")
            comps[name] = Component(name, weight, comps[name].scorer, comps[name].options, comps[name].help)
        return cls(list(comps.values()), primary=primary if primary in comps else None)

    # ------------------------------------------------------------------ introspection
    @property
    def weights(self) -> dict[str, float]:
        """Component name -> weight."""
        return {n: c.weight for n, c in self.components.items()}

    @property
    def max_reward(self) -> float:
        """The return of a perfect episode: the sum of positive weights."""
        return sum(c.weight for c in self.components.values() if c.weight > 0)

    def describe(self) -> list[dict[str, Any]]:
        """One dict per component: name, weight, kind (final/turn), scorer, help."""
        return [
            {"name": c.name, "weight": c.weight, "kind": "final" if c.final else "turn", "scorer": c.scorer_name, "help": c.help}
            for c in self.components.values()
        ]

    def check_values(self, values: Mapping[str, float]) -> dict[str, float]:
        """Validate env-reported turn values (names must be declared): a clear error for env authors."""
        out: dict[str, float] = {}
        for name, v in values.items():
            if name not in self.components:
                raise ConfigError("rewards", f"the environment reported an undeclared component {name!r}", f"declare it; components: {sorted(self.components)}")
            out[name] = float(v)
        return out

    def total(self, values: Mapping[str, float]) -> float:
        """``Σ weight · value`` over the given component values."""
        return float(sum(self.components[n].weight * v for n, v in values.items()))

    # ------------------------------------------------------------------ scoring final answers
    def score(self, answer: str, task: Task) -> RubricResult:
        """Score every final component on ``answer`` (blocking)."""
        futures = {}
        scores: dict[str, Score] = {}
        for c in self.final_components:
            if isinstance(c.scorer, Verifier):
                futures[c.name] = scoring.submit(c.scorer, c.row(answer, task))
            else:
                scores[c.name] = c.score_fn(answer, task)
        for name, fut in futures.items():
            scores[name] = fut.result()
        return self._result(scores)

    async def ascore(self, answer: str, task: Task) -> RubricResult:
        """Score every final component on ``answer`` without blocking the event loop."""
        import asyncio

        pending = {}
        scores: dict[str, Score] = {}
        for c in self.final_components:
            if isinstance(c.scorer, Verifier):
                pending[c.name] = asyncio.wrap_future(scoring.submit(c.scorer, c.row(answer, task)))
            elif inspect.iscoroutinefunction(c.scorer):
                scores[c.name] = await _await_fn(c, answer, task)
            else:
                scores[c.name] = c.score_fn(answer, task)
        if pending:
            done = await asyncio.gather(*pending.values())
            scores.update(zip(pending.keys(), done))
        return self._result(scores)

    @property
    def final_components(self) -> list[Component]:
        """Components scored on the final answer."""
        return [c for c in self.components.values() if c.final]

    def _result(self, scores: dict[str, Score]) -> RubricResult:
        ordered = {n: scores[n] for n in self.components if n in scores}
        return RubricResult(
            values={n: float(s.reward) for n, s in ordered.items()},
            scores=ordered,
            primary=ordered.get(self.primary),
        )

    def __repr__(self) -> str:
        parts = ", ".join(f"{c.name}={c.weight:g}({c.scorer_name})" for c in self.components.values())
        return f"Rubric({parts}; primary={self.primary})"


async def _await_fn(c: Component, answer: str, task: Task) -> Score:
    try:
        out = await c.scorer(answer, task)  # type: ignore[misc]
    except Exception as e:
        return Score.failed("error", f"reward function {c.name!r} raised {type(e).__name__}: {e}"[:500])
    return _coerce(c.name, out)


def _component_from_spec(name: str, spec: Any, existing: Component | None) -> Component:
    if isinstance(spec, Component):
        return Component(name, spec.weight, spec.scorer, spec.options, spec.help)
    if isinstance(spec, (Verifier, str)) or (callable(spec) and not isinstance(spec, Mapping)):
        return Component(name, existing.weight if existing else 1.0, spec)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"verifier", "options", "fn", "weight", "help"}
        if unknown:
            raise ConfigError(f"rewards.{name}", f"unknown keys {sorted(unknown)}", "use verifier/options/fn/weight/help")
        weight = spec.get("weight", existing.weight if existing else 1.0)
        if "verifier" in spec and "fn" in spec:
            raise ConfigError(f"rewards.{name}", "give either 'verifier' or 'fn', not both")
        if "verifier" in spec:
            return Component(name, weight, spec["verifier"], dict(spec.get("options") or {}), spec.get("help", ""))
        if "fn" in spec:
            return Component(name, weight, spec["fn"], {}, spec.get("help", ""))
        if existing is None:
            raise ConfigError(f"rewards.{name}", "a new component needs a 'verifier' or an 'fn'")
        return Component(name, weight, existing.scorer, existing.options, spec.get("help", existing.help))
    raise ConfigError(f"rewards.{name}", f"cannot make a reward component from {type(spec).__name__}")


__all__ = ["Component", "Rubric", "RubricResult", "Scorer"]
