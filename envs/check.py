"""`rlvr.envs.check(env)`: Gymnasium's ``check_env`` plus the checks that catch broken or hackable rewards.

Beyond the Gymnasium API (spaces, seeding, determinism, returned data), an RLVR environment is
only useful when its reward means something. So ``check`` also runs, on a few seeds:

* **reference**: following ``env.reference_action()`` earns the full reward (``max_reward``) and
  ``success`` — the verifier accepts a right answer written the way the prompt asks;
* **no-op**: an empty (or blank) answer earns exactly zero and the episode still ends;
* **answer spam**: "1 2 3 ... 100" with the reference hidden in the middle, bare and in the answer
  format, is never a success and earns nothing from the primary component;
* **seeds**: ``reset(seed=s)`` twice gives the same task; different seeds give different tasks;
* **contract**: every step's ``reward == Σ weight · value``, terminal info has ``success``,
  ``status`` and the episode transcript, and the async twins agree with the sync methods.
"""

from __future__ import annotations

import asyncio
import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from rlvr.envs.core import TextEnv
from rlvr.envs.spaces import ROLES
from rlvr.errors import RlvrError
from rlvr.verifiers import STATUSES

TOL = 1e-6
MAX_CHECK_STEPS = 200  # an episode in a check gets at most this many steps, whatever max_turns says


class EnvCheckError(RlvrError, AssertionError):
    """An environment failed ``rlvr.envs.check``; ``problems`` lists every failed check."""

    def __init__(self, env_id: str, problems: list[str]) -> None:
        self.env_id = env_id
        self.problems = problems
        super().__init__(f"{env_id} failed {len(problems)} check(s):\n  - " + "\n  - ".join(problems))


@dataclass
class CheckReport:
    """Which checks passed and which problems were found."""

    env_id: str
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


@dataclass
class _Episode:
    rewards: list[float]
    infos: list[dict[str, Any]]
    terminated: bool
    truncated: bool

    @property
    def ret(self) -> float:
        return float(sum(self.rewards))

    @property
    def last(self) -> dict[str, Any]:
        return self.infos[-1] if self.infos else {}


def check(env: gym.Env, seeds: Sequence[int] = (0, 1, 2), raise_on_failure: bool = True) -> CheckReport:
    """Run every check on ``env``; raise ``EnvCheckError`` listing all problems (or return the report)."""
    raw = env.unwrapped
    env_id = raw.spec.id if raw.spec is not None else type(raw).__name__
    report = CheckReport(env_id)

    def run(name: str, fn: Callable[[], list[str] | None]) -> None:
        try:
            problems = fn() or []
        except Exception as e:
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            report.problems.extend(f"{name}: {p}" for p in problems)
        else:
            report.passed.append(name)

    run("gymnasium check_env", lambda: _gym_check(raw))
    if isinstance(raw, TextEnv):
        run("seeds reproduce tasks", lambda: _check_seeds(raw, seeds))
        run("reference answer earns full reward", lambda: _check_reference(raw, seeds))
        run("empty answer earns zero", lambda: _check_noop(raw, seeds, ""))
        run("blank answer earns zero", lambda: _check_noop(raw, seeds, " \n\t "))
        run("answer spam is not rewarded", lambda: _check_spam(raw, seeds))
        run("async twins agree with sync", lambda: _check_async(raw, seeds[0]))
    if raise_on_failure and report.problems:
        raise EnvCheckError(env_id, report.problems)
    return report


# ---------------------------------------------------------------------- individual checks
def _gym_check(raw: gym.Env) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(raw, skip_render_check=False)
    # Gymnasium reports many API problems only as warnings: treat them as failures.
    return [f"warning: {w.message}" for w in caught if "gymnasium" in (w.filename or "") and issubclass(w.category, UserWarning)]


def _check_seeds(env: TextEnv, seeds: Sequence[int]) -> list[str]:
    problems = []
    for s in seeds:
        obs1, info1 = env.reset(seed=s)
        obs2, info2 = env.reset(seed=s)
        if info1["task_id"] != info2["task_id"] or obs1 != obs2:
            problems.append(f"reset(seed={s}) gave different tasks ({info1['task_id']} vs {info2['task_id']})")
    if len(env.tasks) > 1:
        ids = {env.reset(seed=s)[1]["task_id"] for s in range(8)}
        if len(ids) == 1:
            problems.append("8 different seeds all gave the same task")
    return problems


def _play(env: TextEnv, seed: int, policy: Callable[[TextEnv, list], str]) -> tuple[_Episode, list[str]]:
    obs, _ = env.reset(seed=seed)
    first = list(obs)
    ep = _Episode([], [], False, False)
    problems: list[str] = []
    limit = min(env.max_turns, MAX_CHECK_STEPS)
    for _ in range(limit + 1):
        obs, reward, terminated, truncated, info = env.step(policy(env, obs))
        ep.rewards.append(float(reward))
        ep.infos.append(info)
        problems += _contract(env, reward, info, terminated or truncated, first)
        if terminated or truncated:
            ep.terminated, ep.truncated = terminated, truncated
            return ep, problems
    problems.append(f"seed {seed}: the episode did not end within {limit + 1} steps (max_turns={env.max_turns})")
    return ep, problems


def _contract(env: TextEnv, reward: float, info: dict[str, Any], last: bool, first: list) -> list[str]:
    problems = []
    comps = info.get("reward_components")
    if not isinstance(comps, dict):
        return ["step info has no 'reward_components' dict"]
    total = sum(env.rubric.components[n].weight * v for n, v in comps.items())
    if not math.isclose(total, reward, abs_tol=TOL):
        problems.append(f"reward {reward} != Σ weight·value {total} of {comps}")
    if last:
        if not isinstance(info.get("success"), bool):
            problems.append("terminal info has no boolean 'success'")
        if info.get("status") not in STATUSES:
            problems.append(f"terminal info 'status' {info.get('status')!r} is not one of {STATUSES}")
        ep = info.get("episode")
        if not isinstance(ep, dict) or "messages" not in ep or "turns" not in ep:
            problems.append("terminal info has no 'episode' with 'turns' and 'messages'")
        else:
            msgs = ep["messages"]
            if msgs[: len(first)] != first:
                problems.append("the episode transcript does not start with the reset observation")
            if any(m.get("role") not in ROLES for m in msgs):
                problems.append("the transcript has a message with an unknown role")
            if ep["turns"] != sum(m["role"] == "assistant" for m in msgs[len(first) :]):
                problems.append("episode 'turns' does not count the model's messages")
    return problems


def _check_reference(env: TextEnv, seeds: Sequence[int]) -> list[str]:
    problems = []
    for s in seeds:
        ep, p = _play(env, s, lambda e, obs: e.reference_action())
        problems += p
        if not ep.terminated:
            problems.append(f"seed {s}: the reference path did not terminate")
        if not math.isclose(ep.ret, env.max_reward, abs_tol=TOL):
            problems.append(f"seed {s}: the reference path earned {ep.ret:g}, not the full {env.max_reward:g} ({_why(ep)})")
        if ep.last.get("success") is not True:
            problems.append(f"seed {s}: the reference path is not a success ({_why(ep)})")
    return problems


def _check_noop(env: TextEnv, seeds: Sequence[int], action: str) -> list[str]:
    problems = []
    for s in seeds:
        ep, p = _play(env, s, lambda e, obs: action)
        problems += p
        if not ep.terminated and not ep.truncated:
            continue
        if ep.ret != 0.0:
            problems.append(f"seed {s}: the answer {action!r} earned {ep.ret:g} ({_why(ep)})")
        if ep.last.get("success"):
            problems.append(f"seed {s}: the answer {action!r} counts as a success")
    return problems


def _spam(env: TextEnv) -> str:
    ref = env.reference_answer() or ""
    nums = [str(i) for i in range(1, 101)]
    if ref and len(ref) <= 60 and "\n" not in ref:
        nums.insert(50, ref)
    return " ".join(nums)


def _check_spam(env: TextEnv, seeds: Sequence[int]) -> list[str]:
    problems = []
    primary = env.rubric.primary
    for s in seeds:
        for wrapped in (False, True):
            env.reset(seed=s)
            text = _spam(env)
            text = env.format_response(text) if wrapped else text
            ep, p = _play(env, s, lambda e, obs: text)
            problems += p
            label = "formatted spam" if wrapped else "spam"
            if ep.last.get("success"):
                problems.append(f"seed {s}: {label} counts as a success ({_why(ep)})")
            earned = sum(i.get("reward_components", {}).get(primary, 0.0) for i in ep.infos)
            if earned != 0.0:
                problems.append(f"seed {s}: {label} earned {earned:g} from the primary component {primary!r}")
    return problems


def _check_async(env: TextEnv, seed: int) -> list[str]:
    sync_ep, problems = _play(env, seed, lambda e, obs: e.reference_action())

    async def play() -> tuple[float, bool]:
        await env.areset(seed=seed)
        total, info = 0.0, {}
        for _ in range(min(env.max_turns, MAX_CHECK_STEPS) + 1):
            _, r, term, trunc, info = await env.astep(env.reference_action())
            total += float(r)
            if term or trunc:
                break
        return total, bool(info.get("success"))

    ret, success = _run_coroutine(play)
    if not math.isclose(ret, sync_ep.ret, abs_tol=TOL) or success != bool(sync_ep.last.get("success")):
        problems.append(f"astep earned {ret:g} (success={success}), step earned {sync_ep.ret:g} (success={sync_ep.last.get('success')})")
    return problems


def _run_coroutine(factory: Callable[[], Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Called from inside an event loop (a notebook, an async test): use a private loop in a thread.
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(factory())
        except BaseException as e:
            out["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _why(ep: _Episode) -> str:
    last = ep.last
    scores = last.get("scores") or {}
    details = "; ".join(f"{n}: {s.get('status')} {s.get('detail', '')}".strip() for n, s in scores.items())
    return f"status={last.get('status')}, components={last.get('reward_components')}" + (f", {details}" if details else "")


__all__ = ["check", "CheckReport", "EnvCheckError"]
