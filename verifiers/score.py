"""`Score`: the one result type every verifier returns, whatever the model wrote."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping

Status = Literal["ok", "wrong", "no_answer", "parse_error", "timeout", "error"]
STATUSES: tuple[str, ...] = ("ok", "wrong", "no_answer", "parse_error", "timeout", "error")


@dataclass(frozen=True)
class Score:
    """The verdict on one completion.

    reward:     the number a trainer optimises (0.0 for anything but a right answer by default).
    correct:    True/False when the verifier could decide, None when it could not (timeout, error).
    status:     ``ok`` right, ``wrong`` wrong, ``no_answer`` nothing to extract, ``parse_error``
                extracted text is not understood, ``timeout`` killed at the hard limit,
                ``error`` the verifier or the input row itself is broken (see ``detail``).
    parsed:     the answer text the verifier extracted, if any.
    detail:     a human-readable reason (per-test results for code, which rule matched, ...).
    ms:         wall time spent scoring this item, in milliseconds.
    components: named sub-rewards for composite verifiers (weight 0 components are metrics).
    """

    reward: float
    correct: bool | None
    status: Status
    parsed: str | None = None
    detail: str = ""
    ms: float = 0.0
    components: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def right(cls, parsed: str | None, detail: str = "") -> "Score":
        return cls(reward=1.0, correct=True, status="ok", parsed=parsed, detail=detail)

    @classmethod
    def wrong(cls, parsed: str | None, detail: str = "") -> "Score":
        return cls(reward=0.0, correct=False, status="wrong", parsed=parsed, detail=detail)

    @classmethod
    def failed(cls, status: Status, detail: str, parsed: str | None = None) -> "Score":
        """A score for an item that could not be judged right (no answer, parse error, timeout, error)."""
        correct = False if status in ("no_answer", "parse_error", "wrong") else None
        return cls(reward=0.0, correct=correct, status=status, parsed=parsed, detail=detail)

    def with_ms(self, ms: float) -> "Score":
        # Positional construction, not dataclasses.replace: this runs once per scored item and
        # replace() costs ~10 us, a tenth of a fast-path item's whole budget.
        return Score(self.reward, self.correct, self.status, self.parsed, self.detail, ms, self.components)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["components"] = dict(self.components)
        return d


__all__ = ["Score", "Status", "STATUSES"]
