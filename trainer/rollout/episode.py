"""`Episode`: one rollout as the trainer needs it — tokens, loss mask, log-probs, rewards, stats."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from rlvr.trainer.rollout.tasks import TaskKey


@dataclass
class Episode:
    """One played episode.

    prompt_ids:      the opening messages rendered with the chat template (+ assistant header).
    completion_ids:  everything after the prompt: model turns and the environment's turns.
    env_mask:        1 for model-written tokens (trained on), 0 for environment-written ones.
    logprobs:        the sampler's log-prob of each completion token (0.0 on environment tokens).
    messages:        the conversation as the environment saw it.
    reward:          the return (sum of step rewards); ``components`` its per-component sums.
    success/status:  the environment's verdict on the last step (pass@k counts ``success``).
    turns:           model turns taken.
    truncated:       the episode did not end on its own: the environment truncated it (its turn
                     limit) or the runner did (``generation.max_turns``, token budget).
    overlong:        the token budget ran out (the sequence ends without the model's stop token).
    error:           set when the environment raised; the episode then scores 0.
    """

    key: TaskKey
    task_id: str = ""
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    reward: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    success: bool = False
    status: str = "no_answer"
    turns: int = 0
    done: bool = False
    truncated: bool = False
    overlong: bool = False
    error: str | None = None
    env_seconds: float = 0.0

    @property
    def env_id(self) -> str:
        """The environment id."""
        return self.key.env_id

    @property
    def model_tokens(self) -> int:
        """Tokens the model wrote."""
        return int(sum(self.env_mask))

    @property
    def env_tokens(self) -> int:
        """Tokens the environment (and chat template) wrote after the prompt."""
        return len(self.env_mask) - self.model_tokens

    def add(self, ids: Sequence[int], mask: int, logprobs: Sequence[float] | None = None) -> None:
        """Append completion tokens, all model-written (``mask=1``) or all environment-written (0)."""
        self.completion_ids.extend(int(t) for t in ids)
        self.env_mask.extend([mask] * len(ids))
        self.logprobs.extend(float(x) for x in logprobs) if logprobs is not None else self.logprobs.extend([0.0] * len(ids))

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary (sample rollouts, eval logs)."""
        return {
            "env_id": self.env_id, "task_key": str(self.key), "task_id": self.task_id, "reward": self.reward,
            "components": self.components, "success": self.success, "status": self.status, "turns": self.turns,
            "truncated": self.truncated, "overlong": self.overlong, "error": self.error,
            "model_tokens": self.model_tokens, "env_tokens": self.env_tokens, "env_seconds": round(self.env_seconds, 6),
            "messages": self.messages,
        }


def summarize(episodes: Sequence[Episode], prefix: str = "env") -> dict[str, float]:
    """Means over ``episodes``: reward, success, turns, lengths, truncation, components, per environment."""
    if not episodes:
        return {}
    n = len(episodes)
    out: dict[str, float] = {
        f"{prefix}/reward": sum(e.reward for e in episodes) / n,
        f"{prefix}/success": sum(e.success for e in episodes) / n,
        f"{prefix}/turns": sum(e.turns for e in episodes) / n,
        f"{prefix}/model_tokens": sum(e.model_tokens for e in episodes) / n,
        f"{prefix}/env_tokens": sum(e.env_tokens for e in episodes) / n,
        f"{prefix}/truncated": sum(e.truncated for e in episodes) / n,
        f"{prefix}/overlong": sum(e.overlong for e in episodes) / n,
        f"{prefix}/errors": sum(e.error is not None for e in episodes) / n,
        f"{prefix}/step_seconds": sum(e.env_seconds for e in episodes) / n,
    }
    comp: dict[str, list[float]] = defaultdict(list)
    for e in episodes:
        for name, value in e.components.items():
            comp[name].append(float(value))
    for name, values in sorted(comp.items()):
        out[f"{prefix}/component/{name}"] = sum(values) / n  # missing = 0 for that episode
    by_env: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        by_env[e.env_id].append(e)
    if len(by_env) > 1:
        for env_id, eps in sorted(by_env.items()):
            out[f"{prefix}/{env_id}/reward"] = sum(e.reward for e in eps) / len(eps)
            out[f"{prefix}/{env_id}/success"] = sum(e.success for e in eps) / len(eps)
            out[f"{prefix}/{env_id}/count"] = float(len(eps))
    return out


__all__ = ["Episode", "summarize"]
