"""Weighted composition of named reward components (weight 0 = a logged metric only)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from rlvr.errors import ConfigError
from rlvr.verifiers.base import Verifier
from rlvr.verifiers.registry import register_verifier
from rlvr.verifiers.score import Score


class CompositeVerifier(Verifier):
    """Combine verifiers into one reward: ``reward = Σ weight_i · reward_i``.

    Every component's reward is reported in ``Score.components`` by name, so a weight-0 component
    (e.g. response format while training on correctness alone) is still logged. ``correct`` and
    ``status`` come from the ``primary`` component (default: the first one with a non-zero weight).
    Each component keeps its own worker pool; ``score_many`` batches each component once.
    """

    name = "composite"

    def __init__(self, components: Mapping[str, tuple[Verifier, float] | Verifier], primary: str | None = None) -> None:
        if not components:
            raise ConfigError("components", "needs at least one named verifier", "e.g. {'math': (MathVerifier(), 1.0)}")
        self.components: dict[str, tuple[Verifier, float]] = {}
        for name, spec in components.items():
            verifier, weight = (spec, 1.0) if isinstance(spec, Verifier) else spec
            if not isinstance(verifier, Verifier):
                raise ConfigError(f"components.{name}", f"is not a Verifier ({type(verifier).__name__})")
            if not isinstance(weight, (int, float)) or weight != weight:
                raise ConfigError(f"components.{name}", f"weight must be a number, got {weight!r}")
            self.components[name] = (verifier, float(weight))
        if primary is None:
            primary = next((n for n, (_, w) in self.components.items() if w != 0), next(iter(self.components)))
        if primary not in self.components:
            raise ConfigError("primary", f"{primary!r} is not a component", f"choose from {sorted(self.components)}")
        self.primary = primary

    @property
    def needs_reference(self) -> bool:  # type: ignore[override]
        return any(v.needs_reference for v, _ in self.components.values())

    def _combine(self, parts: dict[str, Score]) -> Score:
        reward = sum(w * parts[n].reward for n, (_, w) in self.components.items())
        main = parts[self.primary]
        detail = "; ".join(f"{n}={parts[n].reward:g} ({parts[n].status})" for n in self.components)
        return Score(
            reward=reward,
            correct=main.correct,
            status=main.status,
            parsed=main.parsed,
            detail=detail,
            ms=sum(p.ms for p in parts.values()),
            components={n: p.reward for n, p in parts.items()},
        )

    def _score(self, completion: str, reference: Any, **kw: Any) -> Score:
        return self._combine({n: v.score(completion, reference, **kw) for n, (v, _) in self.components.items()})

    def score_many(
        self,
        items: Iterable[Mapping[str, Any]],
        workers: int | None = None,
        timeout: float | None = None,
        on_result: Callable[[int, Score], None] | None = None,
    ) -> list[Score]:
        rows = list(items)
        per = {n: v.score_many(rows, workers=workers, timeout=timeout) for n, (v, _) in self.components.items()}
        out = [self._combine({n: per[n][i] for n in self.components}) for i in range(len(rows))]
        if on_result is not None:
            for i, s in enumerate(out):
                on_result(i, s)
        return out

    def as_reward_funcs(self, reference_key: str | None = None, none_on_error: bool = True) -> list[Callable[..., list[float | None]]]:
        """One TRL reward function per component, each named after its component.

        Pass them with :attr:`reward_weights` to a stock trainer, ``GRPOTrainer(reward_funcs=
        composite.as_reward_funcs(), args=GRPOConfig(reward_weights=composite.reward_weights))``:
        TRL then sums them with these weights (the same reward as :meth:`score`) and logs each one
        as ``rewards/<name>/mean``, weight-0 components included, with no glue code.
        """
        return [
            v.as_reward_func(reference_key=reference_key, name=name, none_on_error=none_on_error)
            for name, (v, _) in self.components.items()
        ]

    @property
    def reward_weights(self) -> list[float]:
        """The component weights in :meth:`as_reward_funcs` order (for ``GRPOConfig.reward_weights``)."""
        return [w for _, w in self.components.values()]

    def close(self) -> None:
        for v, _ in self.components.values():
            v.close()


register_verifier("composite", CompositeVerifier)

__all__ = ["CompositeVerifier"]
